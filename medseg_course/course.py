"""The map of the course: its notebooks, in order, and where the course lives.

Everything that names the repository (badges, the Colab install cell, Binder links) derives from
:data:`REPO_URL` here, so moving the course to another home is a one-line change followed by
``medseg-course sync-notebooks``.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The canonical home of the course. Badges and install cells are generated from it.
REPO_URL = "https://github.com/medseg-course/medseg-course"
#: The branch that badges and the Colab install cell point at.
BRANCH = "main"


@dataclass(frozen=True)
class Notebook:
    """One notebook of the course.

    Parameters
    ----------
    stem : str
        File name without ``.ipynb``, e.g. ``"01_medical_images"``.
    title : str
        Human title shown in the course map.
    part : str
        The part of the course it belongs to.
    exercises : str or None
        Dotted module holding its graded questions, or None if it has none.
    """

    stem: str
    title: str
    part: str
    exercises: str | None

    @property
    def filename(self) -> str:
        return f"{self.stem}.ipynb"


#: The notebooks that exist, in teaching order. Later notebooks are added here when they land.
NOTEBOOKS: tuple[Notebook, ...] = (
    Notebook("00_welcome", "Welcome: the map of the course, your environment, how exercises work",
             "Start", "medseg_course.exercises.welcome"),
    Notebook("01_medical_images", "Medical images: formats, spacing, intensities, labels and metrics",
             "Start", "medseg_course.exercises.medical_images"),
    Notebook("02_thresholding", "Thresholding: global, Otsu, multi-level, adaptive",
             "I", "medseg_course.exercises.thresholding"),
    Notebook("03_region_growing", "Region growing: seeds, connectivity, homogeneity criteria",
             "I", "medseg_course.exercises.region_growing"),
    Notebook("04_classifiers", "Pixel classifiers: hand-made features and a few labelled pixels",
             "I", "medseg_course.exercises.classifiers"),
    Notebook("05_clustering", "Clustering: k-means, fuzzy c-means, spatial regularisation",
             "I", "medseg_course.exercises.clustering"),
    Notebook("06_cnn", "Convolutional networks and patch-based sliding-window segmentation",
             "II", "medseg_course.exercises.cnn"),
    Notebook("07_fcn", "Fully convolutional networks: dense prediction, transposed convolution, skips",
             "II", "medseg_course.exercises.fcn"),
    Notebook("08_unet", "U-Net: concatenated skips, overlap-tile, elastic deformation, weighted loss",
             "III", "medseg_course.exercises.unet"),
    Notebook("09_unet3d", "3D U-Net: volumetric convolutions, memory, sliding windows, sparse labels",
             "III", "medseg_course.exercises.unet3d"),
    Notebook("10_unetpp", "UNet++: nested skips, deep supervision, pruning",
             "III", "medseg_course.exercises.unetpp"),
)


def notebook(stem: str) -> Notebook:
    """Return the course notebook called ``stem`` (with or without ``.ipynb``).

    Raises
    ------
    KeyError
        If no course notebook has that name; the message lists the ones that exist.
    """
    stem = stem.removesuffix(".ipynb")
    for nb in NOTEBOOKS:
        if nb.stem == stem:
            return nb
    known = ", ".join(nb.stem for nb in NOTEBOOKS)
    raise KeyError(f"no course notebook is called {stem!r}; the course has: {known}")
