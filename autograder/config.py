"""The nbgrader configuration of the course, in one place (also loaded by ``autograder/nbgrader_config.py``)."""

from __future__ import annotations

from pathlib import Path

from traitlets.config import Config

from .paths import GRADING, ROOT

#: Files in an assignment's source folder that are never released: the authored .py and local artefacts.
IGNORED = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "*.py", "jupytext.toml"]

CODE_STUB = "# YOUR CODE HERE\nraise NotImplementedError()"


def course_config(*, release_dir: Path | None = None, grading_dir: Path = GRADING, cell_timeout: int = 120) -> Config:
    """nbgrader settings: ``solutions/`` is the source, ``course/`` the release, grading state under ``.grading/``."""
    grading_dir = Path(grading_dir)
    c = Config()
    c.CourseDirectory.course_id = "attention-step-by-step"
    c.CourseDirectory.root = str(ROOT)
    c.CourseDirectory.source_directory = "solutions"
    c.CourseDirectory.release_directory = str(release_dir or ROOT / "course")
    c.CourseDirectory.submitted_directory = str(grading_dir / "submitted")
    c.CourseDirectory.autograded_directory = str(grading_dir / "autograded")
    c.CourseDirectory.feedback_directory = str(grading_dir / "feedback")
    c.CourseDirectory.db_url = f"sqlite:///{grading_dir / 'gradebook.db'}"
    c.CourseDirectory.ignore = IGNORED
    c.ClearSolutions.code_stub = {"python": CODE_STUB}
    c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
    c.ExecutePreprocessor.timeout = cell_timeout
    c.Execute.timeout = cell_timeout
    c.Execute.interrupt_on_timeout = True
    c.Execute.extra_arguments = ["--IPKernelApp.log_level=ERROR"]
    c.Autograde.create_student = True
    c.Autograde.exclude_overwriting = {}
    return c
