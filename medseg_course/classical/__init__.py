"""Part I of the course: classical segmentation (thresholding, region growing, pixel classifiers,
clustering). Introduced in 02_thresholding."""
