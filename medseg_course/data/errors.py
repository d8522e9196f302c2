"""The exceptions of the data layer: one base class, and one subclass per kind of trouble.

Catch :class:`DataError` to handle every problem with a dataset at once. Each subclass also
derives from the built-in exception a Python user would expect, so ``except FileNotFoundError``
and ``except ValueError`` keep working.

Introduced in 01_medical_images.
"""

from __future__ import annotations

__all__ = ["DataError", "DatasetNotFoundError", "ChecksumError", "DataFormatError"]


class DataError(Exception):
    """Base class of every error raised by :mod:`medseg_course.data`.

    Introduced in 01_medical_images.

    Examples
    --------
    >>> issubclass(ChecksumError, DataError)
    True
    """


class DatasetNotFoundError(DataError, FileNotFoundError):
    """A dataset is not on disk and could not be downloaded.

    The message says what to download, from where, and the exact folder layout to put it in.

    Introduced in 01_medical_images.

    Examples
    --------
    >>> issubclass(DatasetNotFoundError, FileNotFoundError)
    True
    """


class ChecksumError(DataError, ValueError):
    """A file on disk, or a downloaded archive, does not match its published checksum.

    The message names the file and how to fix it (delete it and download it again).

    Introduced in 01_medical_images.

    Examples
    --------
    >>> issubclass(ChecksumError, ValueError)
    True
    """


class DataFormatError(DataError, ValueError):
    """Files that cannot be used as image/mask pairs.

    Raised for unreadable files, images without masks (or masks without images), shapes that
    do not match, and mask values that are not integer labels. The message names the files.

    Introduced in 01_medical_images.

    Examples
    --------
    >>> issubclass(DataFormatError, ValueError)
    True
    """
