"""Training recipes: the settings and loops that reach the course's results on its datasets.

* :mod:`~medseg_course.recipes.nuclei` -- the 2D U-Net recipe for DSB2018 nuclei
  (:class:`NucleiRecipe`, ``train_nuclei_unet``, ``evaluate_nuclei``); 08_unet and 10_unetpp;
* :mod:`~medseg_course.recipes.hippocampus` -- the 3D U-Net recipe for MSD Task04 Hippocampus
  (:class:`HippocampusRecipe`, ``train_hippocampus``, ``evaluate_hippocampus``); 09_unet3d;
* :mod:`~medseg_course.recipes.folder` -- ``train_on_folder``: any course model on a folder of
  your own image/mask pairs, returning a :class:`Segmenter` that predicts new images.

Introduced in 08_unet.
"""
