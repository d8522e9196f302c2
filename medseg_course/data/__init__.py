"""Data for the course: real datasets (registry, verified download, loaders), your own folders,
synthetic images with difficulty knobs, and intensity transforms.

Modules, by stage:

* :mod:`~medseg_course.data.registry` — the dataset manifests in ``data/`` (URLs, checksums,
  licences, citations, fixed splits);
* :mod:`~medseg_course.data.download` — the cache (``MEDSEG_DATA_DIR``), verified downloads;
* :mod:`~medseg_course.data.io` — reading NIfTI, PNG and TIFF files;
* :mod:`~medseg_course.data.datasets` — :func:`load_dataset` and the dataset/sample types;
* :mod:`~medseg_course.data.folder` — :func:`load_folder` for your own image/mask pairs;
* :mod:`~medseg_course.data.synthetic` and :mod:`~medseg_course.data.degrade` — synthetic scenes and
  volumes with exact ground truth, and one knob per difficulty (contrast, blur, noise, bias field);
* :mod:`~medseg_course.data.transforms` — normalisation and windowing.

Introduced in 01_medical_images.
"""

from medseg_course.data.datasets import Sample, SegmentationDataset, load_dataset
from medseg_course.data.download import LocalCopy, data_dir, dataset_path, download_dataset, verify_dataset
from medseg_course.data.errors import ChecksumError, DataError, DataFormatError, DatasetNotFoundError
from medseg_course.data.folder import load_folder
from medseg_course.data.io import read_image, read_mask, read_volume
from medseg_course.data.registry import DatasetInfo, dataset_info, list_datasets, make_split

__all__ = [
    "ChecksumError", "DataError", "DataFormatError", "DatasetInfo", "DatasetNotFoundError", "LocalCopy",
    "Sample", "SegmentationDataset", "data_dir", "dataset_info", "dataset_path", "download_dataset",
    "list_datasets", "load_dataset", "load_folder", "make_split", "read_image", "read_mask", "read_volume",
    "verify_dataset",
]
