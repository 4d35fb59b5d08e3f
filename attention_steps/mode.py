"""Full run or grading fast path, decided in one place.

nbgrader sets ``NBGRADER_EXECUTION`` (to ``autograde`` or ``validate``) while it executes a notebook. Cells that
train or draw ask :func:`by_mode` for their size, so a learner's default run is the full experiment and grading
runs a tiny version of the same code in seconds.
"""

from __future__ import annotations

import json
import os
from typing import TypeVar

T = TypeVar("T")

#: Set by nbgrader during ``autograde`` and ``validate``.
GRADING_ENV = "NBGRADER_EXECUTION"
#: Set to ``1`` to take the fast path by hand (the project's tests and benchmark do).
FAST_ENV = "ATTENTION_STEPS_FAST"
#: When set, :func:`report_metric` appends its figures to this JSON-lines file (used by the benchmark).
METRICS_ENV = "ATTENTION_STEPS_METRICS"


def is_grading() -> bool:
    """True while nbgrader autogrades or validates this notebook."""
    return bool(os.environ.get(GRADING_ENV))


def fast_path() -> bool:
    """True when cells should run their tiny version: during grading, or when ``ATTENTION_STEPS_FAST=1``."""
    return is_grading() or os.environ.get(FAST_ENV, "") == "1"


def by_mode(full: T, fast: T) -> T:
    """Return ``full`` for a learner's run and ``fast`` on the grading fast path.

    >>> steps = by_mode(full=1500, fast=10)
    """
    return fast if fast_path() else full


def report_metric(name: str, value: float, *, notebook: str | None = None, fmt: str = ".4f") -> None:
    """Print a notebook's headline figure, and record it for the benchmark when ``ATTENTION_STEPS_METRICS`` is set."""
    mode = "fast" if fast_path() else "full"
    print(f"{name}: {value:{fmt}}  ({mode} run)")
    path = os.environ.get(METRICS_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"notebook": notebook, "name": name, "value": float(value), "mode": mode}) + "\n")
