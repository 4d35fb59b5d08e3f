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


def make_private(path: Path) -> int | None:
    """Mode 700 for a folder of ours that others can enter or read (the gradebook, the course with its solutions);
    returns its mode before (None when nothing changed: already private, or not ours to change)."""
    info = path.stat()
    if info.st_mode & 0o077 and info.st_uid == os.geteuid():
        path.chmod(0o700)
        return info.st_mode & 0o777
    return None
