"""The nbgrader configuration of the course, in one place (also loaded by ``autograder/nbgrader_config.py``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from traitlets.config import Config

from .paths import GRADING, ROOT

#: Files in an assignment's source folder that are never released: the authored .py and local artefacts.
IGNORED = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "*.py", "jupytext.toml"]

#: nbgrader's feedback steps, with the course's scrubbing first (autograder/feedback.py).
FEEDBACK_PREPROCESSORS = ["autograder.feedback.ScrubFeedback", "nbgrader.preprocessors.ClearHiddenTests",
                          "nbgrader.preprocessors.GetGrades", "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor"]

CODE_STUB = "# YOUR CODE HERE\nraise NotImplementedError()"


def autograde_preprocessors(executed_by: type | None = None) -> list:
    """nbgrader's autograde steps: Execute replaced by ``executed_by`` — the sandboxed, limited kernel
    (``autograder/execute.py``), or, when a class is graded on workers, the notebook a worker executed
    (``autograder/batch.py``) — then the hidden tests judged here, and SaveAutoGrades replaced by the one that also
    needs that judgement (``autograder/scoring.py``)."""
    from nbconvert.preprocessors import ClearMetadataPreprocessor
    from nbgrader.preprocessors import AssignLatePenalties, CheckCellMetadata, IgnorePattern, LimitOutput

    from .execute import SandboxExecute
    from .scoring import JudgeHidden, SaveVerifiedGrades

    return [executed_by or SandboxExecute, JudgeHidden, IgnorePattern, ClearMetadataPreprocessor, LimitOutput,
            SaveVerifiedGrades, AssignLatePenalties, CheckCellMetadata]


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


@dataclass
class Limits:
    """What one grading kernel may use (the sandbox sets the resource limits inside it, the grader the rest)."""

    cell_seconds: int = 60          # one cell, wall clock (the kernel is interrupted, then killed)
    notebook_seconds: int = 300     # the whole notebook, wall clock
    cpu_seconds: int = 300          # the kernel process, CPU time (RLIMIT_CPU)
    memory_bytes: int = 4 << 30     # address space of the kernel (RLIMIT_AS; a kernel with torch maps ~1 GB)
    processes: int = 256            # processes + threads in the sandbox (RLIMIT_NPROC, counted per sandbox)
    file_bytes: int = 64 << 20      # largest file the kernel may write (RLIMIT_FSIZE)
    open_files: int = 1024
    cell_output_bytes: int = 100_000      # text a cell may print before it is cut
    notebook_output_bytes: int = 2_000_000


def course_config(*, release_dir: Path | None = None, grading_dir: Path = GRADING, cell_timeout: int | None = None,
                  notebook_timeout: int | None = None) -> Config:
    """nbgrader settings: ``solutions/`` is the source, ``course/`` the release, grading state under ``.grading/``.

    The grading limits default to :class:`Limits`; ``AG_CELL_TIMEOUT``, ``AG_NOTEBOOK_TIMEOUT``
    (seconds) and ``AG_KERNEL_MEMORY_MB`` override them (the tests use short ones).
    """
    grading_dir = Path(grading_dir)
    limits = Limits()
    cell_timeout = cell_timeout or _env_int("AG_CELL_TIMEOUT", limits.cell_seconds)
    notebook_timeout = notebook_timeout or _env_int("AG_NOTEBOOK_TIMEOUT", limits.notebook_seconds)
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
    # nbgrader's exchange on a class server (autograder/exchange.py, hub/): one folder every account can write to
    c.Exchange.root = os.environ.get("ATTENTION_STEPS_EXCHANGE", "/srv/nbgrader/exchange")
    c.ExchangeFactory.collect = "autograder.exchange.CollectForGrading"  # into .grading/collected, for `grade`
    # feedback without hidden-test text (the formgrader's Generate Feedback button too)
    c.GenerateFeedback.preprocessors = FEEDBACK_PREPROCESSORS
    c.ClearSolutions.code_stub = {"python": CODE_STUB}
    c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
    c.ExecutePreprocessor.timeout = cell_timeout
    c.Execute.timeout = cell_timeout
    c.Execute.interrupt_on_timeout = False  # SandboxExecute interrupts, then kills a kernel that will not stop
    c.Execute.extra_arguments = ["--IPKernelApp.log_level=ERROR"]
    c.Autograde.create_student = True
    c.Autograde.autograde_preprocessors = autograde_preprocessors()
    c.SandboxExecute.notebook_timeout = notebook_timeout
    c.SandboxExecute.cpu_seconds = max(notebook_timeout, limits.cpu_seconds)
    c.SandboxExecute.memory_bytes = _env_int("AG_KERNEL_MEMORY_MB", limits.memory_bytes >> 20) << 20
    c.SandboxExecute.kill_grace = min(5, cell_timeout)
    c.LimitOutput.max_lines = 200
    c.LimitOutput.max_traceback = 40
    c.Autograde.exclude_overwriting = {}
    c.OverwriteCells.add_missing_cells = True  # a deleted test cell comes back (preflight.repair does the rest)
    return c
