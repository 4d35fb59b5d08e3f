"""Helpers for the course *Attention, step by step*.

Data sets, a training loop, plots, device/seed helpers and test helpers shared by every notebook.
This package holds **no solution** to any graded exercise: a learner may import all of it.
"""

from .device import autocast, describe_device, get_device, seed_everything
from .mode import by_mode, fast_path, is_grading, report_metric

__version__ = "0.1.0"

__all__ = [
    "autocast",
    "by_mode",
    "describe_device",
    "fast_path",
    "get_device",
    "is_grading",
    "report_metric",
    "seed_everything",
]
