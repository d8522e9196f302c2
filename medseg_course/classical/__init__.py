"""Part I of the course: classical segmentation.

=====================  ===========================================================  ==================
module                 what it holds                                                notebook
=====================  ===========================================================  ==================
``thresholding``       global, Otsu (from the histogram), multi-level, adaptive      02_thresholding
``region_growing``     seeded growing (fixed / running-mean criteria), seeds,        03_region_growing
                       watershed
``features``,          pixel feature bank; classifiers trained on a few pixels       04_classifiers
``classifiers``
``clustering``         k-means (k-means++), fuzzy c-means, spatial FCM (FCM_S1)       05_clustering
``results``            the Part I results table on the DSB2018 validation split      05_clustering
=====================  ===========================================================  ==================

Every method has a ``segment_<method>(image, category=None) -> (H, W) bool`` for DSB2018 samples.

Introduced in 02_thresholding.
"""

from medseg_course.classical.classifiers import fit_pixel_classifier, segment_pixel_classifier
from medseg_course.classical.clustering import fuzzy_cmeans, kmeans_segment, spatial_fuzzy_cmeans
from medseg_course.classical.region_growing import region_grow
from medseg_course.classical.results import classical_results
from medseg_course.classical.features import pixel_features
from medseg_course.classical.thresholding import local_threshold, multi_otsu_thresholds, otsu_threshold

__all__ = [
    "classical_results", "fit_pixel_classifier", "fuzzy_cmeans", "pixel_features", "segment_pixel_classifier", "kmeans_segment", "local_threshold", "multi_otsu_thresholds",
    "otsu_threshold", "region_grow", "spatial_fuzzy_cmeans",
]
