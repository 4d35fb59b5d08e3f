"""Where things live. The tracked tree holds sources and releases; grading state lives in ``.grading/`` (ignored)."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions"
COURSE = ROOT / "course"
DEMO_CLASS = ROOT / "autograder" / "demo_class"
GRADING = Path(os.environ.get("ATTENTION_STEPS_GRADING_DIR", ROOT / ".grading")).resolve()


def assignments() -> list[str]:
    """Assignment ids in course order: the folders of ``solutions/`` named ``NN_*``."""
    return sorted(p.name for p in SOLUTIONS.iterdir() if p.is_dir() and p.name[:2].isdigit())


def source_py(assignment: str) -> Path:
    """The authored text of an assignment's notebook (jupytext percent format)."""
    return SOLUTIONS / assignment / f"{assignment}.py"


def source_notebook(assignment: str) -> Path:
    return SOLUTIONS / assignment / f"{assignment}.ipynb"


def release_notebook(assignment: str) -> Path:
    return COURSE / assignment / f"{assignment}.ipynb"
