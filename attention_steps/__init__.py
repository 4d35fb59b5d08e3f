"""Helpers for the course *Attention, step by step*.

Data sets, a training loop, plots, device/seed helpers and test helpers shared by every notebook.
This package holds **no solution** to any graded exercise: a learner may import all of it.
Importing it gives torch the course's CPU thread count (``device.use_course_threads``).
"""

from .device import describe_device, get_device, seed_everything, use_course_threads
from .mode import by_mode, fast_path, is_grading, report_metric

__version__ = "0.1.0"

use_course_threads()

__all__ = [
    "by_mode",
    "describe_device",
    "fast_path",
    "get_device",
    "is_grading",
    "report_metric",
    "seed_everything",
    "use_course_threads",
]
