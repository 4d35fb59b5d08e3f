"""Grading a class: nbgrader's autograde split so that the sandboxed execution runs on workers, in parallel.

nbgrader's autograde is one pass per submission that sanitizes the notebook, executes it and writes the gradebook
(SQLite) from inside its last steps. For a class it is cut in three, around one worker step:

1. **prepare** (here, the coordinator): preflight (``preflight.py``), then nbgrader's autograde with no autograde
   steps: its bookkeeping (student, submission, timestamps, files from the source folder) and its sanitize steps,
   which leave the clean notebook in ``autograded/``. That notebook and the submission's data files become a
   :class:`Job`, with the seed of the hidden tests' inputs drawn here.
2. **execute** (a worker: a process of a local pool, or a Dask worker on another machine): :func:`execute` runs the
   notebook in the bubblewrap sandbox (``execute.SandboxExecute``, nbclient underneath) and sends back the executed
   notebook with what the hidden tests' probe wrote, as bytes, and the notes. No gradebook, no judgement.
3. **finish** (here): nbgrader's autograde again, with ``ReplayExecuted`` in the place of Execute: the hidden tests
   judged on that data (``scoring.JudgeHidden``), the points saved (``scoring.SaveVerifiedGrades``). The coordinator
   is the gradebook's only writer.

A submission is done when its finish step saved it: ``done/<student>/<assignment>.json`` records what it was graded
from (the submitted files, the released notebook, the grader's checks). ``grade`` run again keeps those that match
and grades the rest — after Ctrl-C, or when a student resubmitted; ``--regrade`` grades all again.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import multiprocessing
import os
import signal
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbformat import NotebookNode
from nbgrader.preprocessors import NbGraderPreprocessor

from . import external, sandbox
from .notebooks import error_output
from .paths import GRADING, SOLUTIONS

#: the most a submission's data files (everything but notebooks) may hold, in all, to be sent to a worker
MAX_FILES_BYTES = 64 << 20


@dataclass
class Job:
    """One notebook of one submission, sanitized, with what its execution needs (sent to a worker)."""

    assignment: str
    student: str
    notebook: str                   # the notebook's name, without .ipynb
    nb: str                         # the sanitized notebook, as nbformat JSON
    files: dict[str, bytes]         # the submission's data files, by path relative to its folder
    seed: int                       # the hidden tests' inputs for this run
    settings: dict                  # SandboxExecute's traits (limits, trusted), as the coordinator has them

    @property
    def key(self) -> str:
        return f"grade-{self.assignment}-{self.student}-{self.notebook}-{self.seed:016x}"


@dataclass
class Executed:
    """What a worker sends back: the executed notebook, and ``resources["attention_steps"]`` without the seed
    (``probes``: the kernel's results as bytes, ``notes``, ``kernel``), or why it could not run (``error``)."""

    nb: str | None
    found: dict = field(default_factory=dict)
    error: str = ""
    seconds: dict = field(default_factory=dict)  # phase -> seconds on the worker
    where: str = ""


# -- the worker step ----------------------------------------------------------------------------------------------

#: this worker's kernel started ahead for its next job (with the settings it was started with), or None
_spare: tuple[dict, object] | None = None


def _take_spare(settings: dict):
    """The kernel started ahead, when it was started with these settings and is still alive (else it is discarded)."""
    global _spare
    found, _spare = _spare, None
    if found is None:
        return None
    made_with, spare = found
    if made_with == settings and spare.alive():
        return spare
    spare.discard()
    return None


def _discard_spare() -> None:
    if (found := _take_spare({"never": True})) is not None:
        found.discard()


def execute(job: Job) -> Executed:
    """The worker step: run ``job``'s notebook in the sandbox; return the executed notebook and the probes' data.

    The kernel is the one this worker started ahead during its previous job when there is one (its imports done,
    the job's files copied into its empty working folder); before running the notebook, the worker starts the
    kernel for its next job. ``ATTENTION_STEPS_NO_SPARE=1`` turns that off (each job starts its own kernel)."""
    from .config import course_config
    from .execute import SandboxExecute

    global _spare
    start, cpu = time.perf_counter(), _cpu()
    sandbox.prepare_host()
    folder = None
    try:
        nb = nbformat.reads(job.nb, as_version=4)
        config = course_config()
        for name, value in job.settings.items():
            setattr(config.SandboxExecute, name, value)
        executor = SandboxExecute(config=config)
        executor.spare = _take_spare(job.settings)
        if executor.spare is not None:
            executor.spare.fill(job.files)
        else:
            folder = Path(tempfile.mkdtemp(prefix="ag-job-"))  # the kernel starts here (its launcher copies it)
            sandbox.write_files(folder, job.files)
        if os.environ.get("ATTENTION_STEPS_NO_SPARE") != "1":
            if _spare is None:
                atexit.unregister(_discard_spare)
                atexit.register(_discard_spare)  # a worker leaves no kernel behind when it exits
            try:
                _spare = (job.settings, SandboxExecute(config=config).prestart())
            except Exception:  # noqa: BLE001 - no kernel ahead: the next job starts its own
                _spare = None
        resources = {"metadata": {"path": str(folder or executor.spare.files)}, "attention_steps": {"seed": job.seed},
                     "nbgrader": {"assignment": job.assignment, "student": job.student, "notebook": job.notebook}}
        ready = time.perf_counter()
        nb, resources = executor.preprocess(nb, resources)
        found = {k: v for k, v in resources["attention_steps"].items() if k in ("probes", "notes", "kernel")}
        seconds = {"worker setup": ready - start, **resources["attention_steps"].get("seconds", {}),
                   "worker cpu": _cpu() - cpu,  # the worker process (and children it reaped)
                   "kernel cpu": resources["attention_steps"].get("kernel cpu", 0.0)}  # all in the sandbox
        return Executed(nbformat.writes(nb), found, seconds=seconds, where=f"{socket.gethostname()}:{os.getpid()}")
    finally:
        if folder is not None:
            import shutil

            shutil.rmtree(folder, ignore_errors=True)


def _cpu() -> float:
    """CPU seconds of this process and of its children that have ended."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _worker_started() -> None:
    """A pool worker: Ctrl-C is the coordinator's to handle; SIGTERM (the coordinator stopping) takes the worker's
    kernels and sandboxes with it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: (sandbox.stop_all(), os._exit(143)))


# -- the coordinator's steps around it ----------------------------------------------------------------------------

#: jobs' results waiting for their finish step: (assignment, student, notebook) -> (job, executed)
RESULTS: dict[tuple[str, str, str], tuple[Job, Executed]] = {}


def _not_run(nb: NotebookNode, why: str) -> None:
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [error_output("NotRun", f"not run: {why}")]


def _cells(nb: NotebookNode) -> list[tuple[str, str, str]]:
    return [(c.cell_type, c.source, c.get("metadata", {}).get("nbgrader", {}).get("grade_id", "")) for c in nb.cells]


class ReplayExecuted(NbGraderPreprocessor):
    """In the finish step, in the place of Execute: the notebook as the worker executed it (same cells as the one
    sanitized now, or nothing runs), with the seed drawn here and the worker's probe data and notes."""

    def preprocess(self, nb, resources):
        info = resources.get("nbgrader", {})
        job, done = RESULTS.pop((info.get("assignment"), info.get("student"), info.get("notebook")), (None, None))
        why = ("its grading job did not run" if done is None else done.error or
               ("it changed while it was being graded" if _cells(nb) != _cells(nbformat.reads(job.nb, 4)) else ""))
        if not why:
            executed = nbformat.reads(done.nb, as_version=4)
            if _cells(executed) == _cells(nb):
                resources["attention_steps"] = {**done.found, "seed": job.seed}
                return executed, resources
            why = "the worker sent back a different notebook"
        _not_run(nb, why)
        resources["attention_steps"] = {"notes": [f"could not be graded: {why}"]}
        return nb, resources


def _digest(*parts: Path) -> str:
    h = hashlib.sha256()
    for part in parts:
        for path in sorted(p for p in part.rglob("*") if p.is_file()) if part.is_dir() else [part]:
            if path.exists():
                h.update(str(path.relative_to(part if part.is_dir() else part.parent)).encode() + b"\0")
                h.update(path.read_bytes() + b"\0")
    return h.hexdigest()


def graded_from(assignment: str, student: str) -> str:
    """What a grade depends on: the submitted files, the released notebook, the grader's checks of the assignment."""
    checks = external.MODULES.get(assignment)
    return _digest(GRADING / "submitted" / student / assignment, GRADING / "release" / assignment,
                   *([Path(checks.__file__)] if checks else []), SOLUTIONS / assignment)


def _done_path(assignment: str, student: str) -> Path:
    return GRADING / "done" / student / f"{assignment}.json"


def is_done(assignment: str, student: str) -> bool:
    try:
        return json.loads(_done_path(assignment, student).read_text())["from"] == graded_from(assignment, student)
    except (OSError, ValueError, KeyError):
        return False


def mark_done(assignment: str, student: str, source: str, record: dict) -> None:
    """Record that the submission is graded, from ``source`` (:func:`graded_from`, taken before preflight)."""
    path = _done_path(assignment, student)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"from": source, **record}, indent=1))
    os.replace(tmp, path)  # a marker is there whole or not at all


def seconds(assignment: str, student: str) -> float:
    """Wall-clock seconds the submission took when it was last graded (0 when unknown)."""
    try:
        return float(json.loads(_done_path(assignment, student).read_text()).get("seconds", 0))
    except (OSError, ValueError):
        return 0.0


def graded(assignment: str, student: str) -> bool:
    """Whether the submission's last grading ran to its end (whatever it was graded from)."""
    return _done_path(assignment, student).exists()


def unmark(assignment: str, student: str) -> None:
    _done_path(assignment, student).unlink(missing_ok=True)


def data_files(folder: Path) -> dict[str, bytes]:
    """A submission's files for its kernel: everything but notebooks, hidden files and links (as the sandbox's
    launcher copies them), at most :data:`MAX_FILES_BYTES` in all."""
    files, total = {}, 0
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if path.is_symlink() or not path.is_file() or path.suffix == ".ipynb" or any(
                p.startswith(".") for p in rel.parts):
            continue
        total += path.stat().st_size
        if total > MAX_FILES_BYTES:
            raise ValueError(f"the submission's files hold more than {MAX_FILES_BYTES >> 20} MB")
        files[str(rel)] = path.read_bytes()
    return files


# -- executors ----------------------------------------------------------------------------------------------------

@contextmanager
def workers(jobs: int, scheduler: str | None = None) -> Iterator[tuple[Callable[[Job], Future], int, str]]:
    """Where the jobs run: (submit, how many to keep in flight, a description).

    Without ``scheduler``, ``jobs`` worker processes on this machine (spawned: no copy of the coordinator's state);
    Ctrl-C stops them, their kernels and sandboxes. With ``scheduler`` (``tcp://host:port``), the workers of that
    Dask cluster, through ``Client.get_executor()``: the scheduler retries a job whose worker died, up to its
    ``distributed.scheduler.allowed-failures``, then the job fails with ``KilledWorker``."""
    if scheduler:
        from distributed import Client

        with Client(scheduler, timeout=60) as client:
            pool = client.get_executor(pure=False)
            threads = sum(client.nthreads().values()) or 1
            try:
                yield (lambda job: pool.submit(execute, job, key=job.key)), 2 * threads, \
                    f"{len(client.nthreads())} Dask worker(s), {threads} thread(s), at {scheduler}"
            finally:
                pool.shutdown(wait=False)
        return
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_worker_started)
    try:
        yield (lambda job: pool.submit(execute, job)), 2 * jobs, f"{jobs} local worker process(es)"
    except BaseException:
        _stop_workers()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _stop_workers() -> None:
    """SIGTERM to this process's pool workers: each stops its kernels and sandboxes, then exits."""
    import psutil

    for child in psutil.Process().children():
        try:
            if "spawn_main" in " ".join(child.cmdline()):
                child.terminate()
        except psutil.Error:
            continue


def run(students: list[str], *, prepare: Callable[[str], list[Job] | None],
        finish: Callable[[str, list[Job], dict], None], submit: Callable[[Job], Future], inflight: int,
        progress: Callable[[str, bool], None] = lambda student, failed: None) -> None:
    """Prepare, execute and finish every student's jobs: at most ``inflight`` jobs submitted at a time, each student
    finished as soon as all of its jobs are back. ``prepare`` returns None when there is nothing to run (the
    student's row is already written); ``submit`` sends a job to a worker (:func:`execute`); ``finish`` gets the
    student's jobs and {notebook: Executed}."""
    with _interrupt_between_steps() as asked:
        _run(students, prepare, finish, submit, inflight, progress, asked)


@contextmanager
def _interrupt_between_steps() -> Iterator[list]:
    """Ctrl-C stops the class between two steps, never inside nbgrader's (whose API would take it for a failed
    submission and go on): the first one is noted, and the loop stops at its next check; a second one stops now."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield []
        return
    asked: list[bool] = []

    def handler(signum, frame):
        if asked:
            raise KeyboardInterrupt
        asked.append(True)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield asked
    finally:
        signal.signal(signal.SIGINT, previous)


def _run(students, prepare, finish, submit, inflight, progress, asked) -> None:
    queue = iter(students)
    pending: dict[Future, Job] = {}
    waiting: dict[str, tuple[list[Job], dict]] = {}
    exhausted = False

    def check() -> None:
        if asked:
            raise KeyboardInterrupt

    while True:
        while not exhausted and len(pending) < inflight:
            check()
            student = next(queue, None)
            if student is None:
                exhausted = True
                break
            jobs = prepare(student)
            if not jobs:
                progress(student, True)
                continue
            waiting[student] = (jobs, {})
            for job in jobs:
                pending[submit(job)] = job
        if not pending:
            return
        check()
        finished, _ = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
        for future in finished:
            check()
            job = pending.pop(future)
            try:
                done = future.result()
            except Exception as e:  # noqa: BLE001 - a worker that died, or a job it could not run
                done = Executed(None, error=_why_failed(e))
            jobs, results = waiting[job.student]
            results[job.notebook] = done
            if len(results) == len(jobs):
                del waiting[job.student]
                finish(job.student, jobs, results)
                progress(job.student, any(r.error for r in results.values()))


def _why_failed(e: BaseException) -> str:
    name = type(e).__name__
    if name == "KilledWorker":
        return "the grading workers that ran it died, more times than a job may be retried (KilledWorker)"
    if name == "BrokenProcessPool":
        return "the grading worker running it died"
    return f"the grading worker failed: {name}: {str(e)[:300]}"

