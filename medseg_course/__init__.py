"""medseg-course: reference implementations, data, metrics and exercise checks for the course.

The notebooks in ``notebooks/`` teach; this package holds every piece of code they rely on.
Start with :func:`medseg_course.runtime.setup`, which every notebook calls first.
"""

__version__ = "0.1.0"
