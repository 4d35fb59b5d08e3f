"""Release, grade, feedback and reports over nbgrader's Python API (``nbgrader.apps.NbGraderAPI``)."""

from __future__ import annotations

import csv
import os
import secrets
import shutil
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from nbgrader.api import Gradebook, MissingEntry
from nbgrader.apps import NbGraderAPI

from . import batch, notebooks, sandbox
from .config import autograde_preprocessors, course_config
from .notes import clear_notes, read_notes, write_notes
from .paths import COURSE, DEMO_CLASS, GRADING, ROOT, assignments, make_private
from .preflight import FLAG, preflight


class GradingError(RuntimeError):
    pass


def api(*, release_dir: Path | None = None) -> NbGraderAPI:
    # the gradebook, every submission and feedback: the instructor's alone, on a shared machine too (nbgrader #978)
    GRADING.mkdir(mode=0o700, parents=True, exist_ok=True)
    make_private(GRADING)
    # nbgrader runs the `alembic` executable to create a gradebook: make the one beside this Python findable
    # even when the venv is not activated (`.venv/bin/python -m autograder …`).
    bindir = str(Path(sys.executable).parent)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    return NbGraderAPI(config=course_config(release_dir=release_dir))


def _check(result: dict, what: str) -> None:
    if not result.get("success"):
        raise GradingError(f"{what} failed:\n{result.get('log', '')}\n{result.get('error', '')}")


def release(which: list[str] | None = None, *, release_dir: Path | None = None) -> list[Path]:
    """Build the solution notebooks from their text and let nbgrader generate the student release.

    With ``release_dir`` None the release goes to ``course/`` (what learners get); grading passes a private folder
    so it never rewrites tracked files.
    """
    which = which or assignments()
    for a in which:
        notebooks.sync_head(a)
        notebooks.build(a)
    grader = api(release_dir=release_dir)
    out = []
    for a in which:
        _check(grader.generate_assignment(a, force=True), f"nbgrader generate_assignment {a}")
        out.append((release_dir or COURSE) / a)
    return out


def _ensure_in_gradebook(assignment: str) -> None:
    """Grading needs nbgrader's record of the source (checksums, hidden tests): make it from ``solutions/``."""
    release([assignment], release_dir=GRADING / "release")


@dataclass
class Row:
    """One student's grade on one assignment, by item (answer name) and in total."""

    student: str
    assignment: str
    items: dict[str, tuple[float, float]] = field(default_factory=dict)  # item -> (score, max)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0  # wall clock of preflight + autograde, when this run graded it

    @property
    def score(self) -> float:
        return sum(s for s, _ in self.items.values())

    @property
    def max_score(self) -> float:
        return sum(m for _, m in self.items.values())


def item_of(grade_id: str) -> str:
    m = notebooks.TEST_ID.match(grade_id)
    return m["name"] if m else grade_id


def collect_submissions(source: Path, assignment: str | None) -> dict[str, list[str]]:
    """Copy a class's submissions into ``.grading/submitted``; return {assignment: [students]}.

    ``source`` is either a folder laid out ``<student>/<assignment>/<notebook>.ipynb`` or a folder of LMS zip
    downloads, which nbgrader's zip collection unpacks (``<student>_…_<notebook>.ipynb`` inside each archive).
    """
    source = Path(source)
    if not source.is_dir():
        raise GradingError(f"{source} is not a folder of submissions")
    if any(source.glob("*.zip")):
        return _zip_collect(source, assignment)
    found: dict[str, list[str]] = defaultdict(list)
    for student_dir in sorted(p for p in source.iterdir() if p.is_dir()):
        for assignment_dir in sorted(p for p in student_dir.iterdir() if p.is_dir()):
            if assignment and assignment_dir.name != assignment:
                continue
            target = GRADING / "submitted" / student_dir.name / assignment_dir.name
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(assignment_dir, target)
            found[assignment_dir.name].append(student_dir.name)
    if not found:
        raise GradingError(f"no submissions found in {source} (expected <student>/<assignment>/<notebook>.ipynb)")
    return dict(found)


def _zip_collect(source: Path, assignment: str | None) -> dict[str, list[str]]:
    from nbgrader.apps.zipcollectapp import ZipCollectApp

    if not assignment:
        raise GradingError("grading zip downloads needs --assignment (the archives do not name it)")
    downloaded = GRADING / "downloaded"
    archive_dir = downloaded / assignment / "archive"
    if archive_dir.parent.exists():
        shutil.rmtree(archive_dir.parent)
    archive_dir.mkdir(parents=True)
    for z in sorted(source.glob("*.zip")):
        shutil.copy(z, archive_dir / z.name)
    config = course_config()
    # nbgrader formats this as "{root}/{downloaded}/…": give it relative to the course root
    config.ZipCollectApp.downloaded_directory = os.path.relpath(downloaded, ROOT)
    config.ZipCollectApp.force = True
    config.ZipCollectApp.collector_plugin = "nbgrader.plugins.zipcollect.FileNameCollectorPlugin"
    # LMS downloads name each file "<student>_<anything>_<notebook>.ipynb"; nbgrader matches the whole path
    config.FileNameCollectorPlugin.named_regexp = (
        r"^(?:.*/)?(?P<student_id>[A-Za-z0-9.\-]+)_(?:[^/]*_)?(?P<file_id>\d\d_[A-Za-z0-9_]+\.ipynb)$"
    )
    config.CourseDirectory.assignment_id = assignment
    app = ZipCollectApp(config=config)
    app.initialize([])
    app.start()
    students = sorted(p.name for p in (GRADING / "submitted").iterdir()
                      if (p / assignment).is_dir() and any((p / assignment).glob("*.ipynb")))
    return {assignment: students}


def _settings(config, *, trusted: bool) -> dict:
    """SandboxExecute's settings as this process has them (limits from the environment), for the workers."""
    names = ("timeout", "notebook_timeout", "cpu_seconds", "memory_bytes", "kill_grace")
    values = {"timeout": config.Execute.timeout, **{n: config.SandboxExecute[n] for n in names[1:]}}
    return {**values, "trusted": trusted}


def autograde(assignment: str, students: list[str], *, trusted: bool = False, jobs: int | None = None,
              scheduler: str | None = None, regrade: bool = False, progress: bool = True) -> list[Row]:
    """Grade ``students``' submissions of ``assignment``: a row for each, the gradebook written here alone.

    The execution of each notebook, in the sandbox, runs on ``jobs`` worker processes (default: the number of
    cores), or on the Dask cluster at ``scheduler``; preflight, nbgrader's bookkeeping, the hidden tests' judgement
    and the gradebook stay in this process (``autograder/batch.py``). Submissions graded before from the same files
    are kept unless ``regrade``. ``trusted`` runs the kernels without the sandbox: only for notebooks the instructor
    wrote."""
    from tqdm.auto import tqdm

    if not trusted:
        sandbox.require()
    sandbox.prepare_host()
    _ensure_in_gradebook(assignment)
    prepare_api, finish_api = api(release_dir=GRADING / "release"), api(release_dir=GRADING / "release")
    prepare_api.config.Autograde.autograde_preprocessors = []  # bookkeeping and sanitizing only
    finish_api.config.Autograde.autograde_preprocessors = autograde_preprocessors(batch.ReplayExecuted)
    settings = _settings(prepare_api.config, trusted=trusted)
    with Gradebook(prepare_api.config.CourseDirectory.db_url) as gb:
        notebook_names = [nb.name for nb in gb.find_assignment(assignment).notebooks]
    todo = list(students) if regrade else [s for s in students if not batch.is_done(assignment, s)]
    started: dict[str, tuple[float, str, float]] = {}  # student -> (wall clock, graded from, CPU) at its prepare
    prepare_cpu: dict[str, float] = {}

    def prepare(student: str) -> list[batch.Job] | None:
        started[student] = (time.perf_counter(), batch.graded_from(assignment, student),  # before preflight edits
                            time.process_time())
        batch.unmark(assignment, student)
        clear_notes(assignment, student)
        folder = GRADING / "submitted" / student / assignment
        try:
            write_notes(assignment, student, "preflight", preflight(folder, GRADING / "release" / assignment))
        except Exception as e:  # noqa: BLE001 - a broken submission must not stop the class
            write_notes(assignment, student, "preflight", [f"preflight failed: {type(e).__name__}: {e}"])
        result = prepare_api.autograde(assignment, student, force=True, create=True)
        graded = GRADING / "autograded" / student / assignment
        why = "" if result.get("success") else "could not be autograded: " + _last_line(result)
        try:
            files = batch.data_files(graded) if not why else {}
        except (OSError, ValueError) as e:
            why = f"could not be autograded: {e}"
        jobs = [] if why else [
            batch.Job(assignment, student, name, (graded / f"{name}.ipynb").read_text(), files, secrets.randbits(63),
                      settings) for name in notebook_names if (graded / f"{name}.ipynb").exists()]
        prepare_cpu[student] = round(time.process_time() - started[student][2], 3)
        if not jobs:
            write_notes(assignment, student, "integrity", [why or "could not be autograded: no notebook to grade"])
            batch.mark_done(assignment, student, started[student][1], {"seconds": 0})
        return jobs

    def finish(student: str, jobs: list[batch.Job], results: dict[str, batch.Executed]) -> None:
        finish_cpu = time.process_time()
        for job in jobs:
            batch.RESULTS[(assignment, student, job.notebook)] = (job, results[job.notebook])
        result = finish_api.autograde(assignment, student, force=True, create=True)
        if not result.get("success"):
            write_notes(assignment, student, "integrity", ["could not be autograded: " + _last_line(result)])
        start, graded_from, _ = started.pop(student)
        batch.mark_done(assignment, student, graded_from, {
            "seconds": round(time.perf_counter() - start, 3),
            "coordinator cpu": {"prepare": prepare_cpu.pop(student, 0.0),
                                "finish": round(time.process_time() - finish_cpu, 3)},
            "worker": {job.notebook: {"where": results[job.notebook].where, **results[job.notebook].seconds}
                       for job in jobs}})

    failures = 0
    with batch.workers(jobs or os.cpu_count() or 1, scheduler) as (submit, inflight, where), \
            tqdm(total=len(todo), desc=assignment, unit="submission", disable=not progress or None,
                 dynamic_ncols=True) as bar:
        if len(todo) < len(students):
            bar.write(f"{assignment}: {len(students) - len(todo)} submission(s) kept, graded before from the same "
                      "files (--regrade grades them again)", file=sys.stderr)
        if todo:
            bar.write(f"{assignment}: grading {len(todo)} submission(s) on {where}", file=sys.stderr)

        def advance(student: str, failed: bool) -> None:
            nonlocal failures
            failures += failed
            bar.set_postfix(failed=failures, refresh=False)
            bar.update(1)

        batch.run(todo, prepare=prepare, finish=finish, submit=submit, inflight=inflight, progress=advance)
    rows = [read_row(assignment, student) for student in students]
    for row in rows:
        row.seconds = batch.seconds(assignment, row.student)
    return rows


def _last_line(result: dict) -> str:
    text = (result.get("error") or result.get("log") or "").strip().splitlines()
    return text[-1] if text else "unknown error"


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    return " ".join(f"{n} {unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "min")) if n) or "under a minute"


def read_row(assignment: str, student: str) -> Row:
    row = Row(student, assignment)
    with Gradebook(course_config().CourseDirectory.db_url) as gb:
        try:
            submission = gb.find_submission(assignment, student)
        except MissingEntry:
            row.notes.append("no submission")
            submission = None
        late = submission.total_seconds_late if submission is not None else 0
        if late > 0:
            row.notes.append(f"late: submitted {_duration(late)} after the deadline")
        for nb in submission.notebooks if submission is not None else []:
            for grade in nb.grades:
                item = item_of(grade.name)
                score, top = row.items.get(item, (0.0, 0.0))
                row.items[item] = (score + float(grade.score or 0), top + float(grade.max_score or 0))
        if not row.items:  # nothing recorded: every item of the assignment at 0
            try:
                for nb in gb.find_assignment(assignment).notebooks:
                    for cell in nb.grade_cells:
                        item = item_of(cell.name)
                        score, top = row.items.get(item, (0.0, 0.0))
                        row.items[item] = (0.0, top + float(cell.max_score or 0))
            except MissingEntry:
                pass
    row.notes += read_notes(assignment, student)
    return row


def grade(source: Path | None = None, assignment: str | None = None, *, trusted: bool = False, jobs: int | None = None,
          scheduler: str | None = None, regrade: bool = False, progress: bool = True) -> list[Row]:
    """Collect and autograde a class (:func:`autograde`); the bundled demo class when ``source`` is None.

    The demo class is the course's own: where the sandbox can't run (macOS, no bwrap) it is graded as trusted."""
    if source is None and not trusted and sandbox.unavailable_reason():
        print(f"note: {sandbox.unavailable_reason()}; grading the bundled demo class without the sandbox",
              file=sys.stderr)
        trusted = True
    found = collect_submissions(source or DEMO_CLASS, assignment)
    rows = []
    for a, students in sorted(found.items()):
        rows.extend(autograde(a, students, trusted=trusted, jobs=jobs, scheduler=scheduler, regrade=regrade,
                              progress=progress))
    return rows


def feedback(assignment: str | None = None, students: list[str] | None = None) -> list[Path]:
    """HTML feedback per student and assignment under ``.grading/feedback``: no hidden test source, no traceback
    or output that reveals it (``autograder/feedback.py``), the grading notes on top; a plain page with the notes
    where nbgrader could not produce one."""
    from .feedback import fallback_html

    grader = api(release_dir=GRADING / "release")  # feedback's steps: FEEDBACK_PREPROCESSORS in config.py
    out = []
    for a, student in graded_submissions(assignment, students):
        folder = GRADING / "feedback" / student / a
        result = grader.generate_feedback(a, student, force=True)
        pages = sorted(folder.glob("*.html")) if result.get("success") else []
        if not pages:
            folder.mkdir(parents=True, exist_ok=True)
            page = folder / f"{a}.html"
            notes = read_notes(a, student) + ["feedback could not be generated: " + _last_line(result)]
            page.write_text(fallback_html(student, a, notes))
            pages = [page]
        out.extend(pages)
    return out


def graded_submissions(assignment: str | None = None, students: list[str] | None = None) -> list[tuple[str, str]]:
    root = GRADING / "autograded"
    if not root.exists():
        return []
    pairs = []
    for sdir in sorted(p for p in root.iterdir() if p.is_dir()):
        for adir in sorted(p for p in sdir.iterdir() if p.is_dir()):
            if (assignment is None or adir.name == assignment) and (students is None or sdir.name in students) \
                    and batch.graded(adir.name, sdir.name):  # not one whose grading was interrupted
                pairs.append((adir.name, sdir.name))
    return pairs


def _aligned(cells, widths) -> str:
    return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths))


def format_table(rows: list[Row]) -> str:
    """A per-student table: one column per item (score/max), the total, and any notes."""
    if not rows:
        return "(no submissions)"
    lines = []
    for a in sorted({r.assignment for r in rows}):
        these = [r for r in rows if r.assignment == a]
        names = list(dict.fromkeys(i for r in these for i in r.items))
        head = ["student", *names, "total"]
        body = []
        for r in these:
            cells = [r.student]
            for n in names:
                s, m = r.items.get(n, (0.0, 0.0))
                cells.append(f"{s:g}/{m:g}")
            cells.append(f"{r.score:g}/{r.max_score:g}")
            body.append(cells)
        widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
        lines += [f"== {a}", _aligned(head, widths), _aligned(["-" * w for w in widths], widths)]
        for r, cells in zip(these, body):
            lines.append(_aligned(cells, widths) + ("   " + "; ".join(r.notes) if r.notes else ""))
        lines.append("")
    return "\n".join(lines).rstrip()


def report(assignment: str | None = None, out_dir: Path | None = None) -> tuple[str, list[Path]]:
    """Write grades.csv, score_histogram.png, class_report.html and canvas_grades.csv (``class_report.py``); return
    (per-exercise table, the files written)."""
    import matplotlib

    from . import class_report

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir or GRADING / "reports")
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = [read_row(a, s) for a, s in graded_submissions(assignment)]
    csv_path = out_dir / "grades.csv"
    items = list(dict.fromkeys(f"{r.assignment}:{i}" for r in rows for i in r.items))
    with open(csv_path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["student", "assignment", *items, "score", "max_score", "percent", "notes"])
        for r in rows:
            w.writerow([r.student, r.assignment,
                        *[r.items.get(i.split(":", 1)[1], ("", ""))[0] if i.startswith(r.assignment + ":") else ""
                          for i in items],
                        r.score, r.max_score, round(100 * r.score / r.max_score, 1) if r.max_score else 0,
                        "; ".join(r.notes)])
    stats = defaultdict(list)
    tops = {}
    for r in rows:
        for i, (s, m) in r.items.items():
            stats[(r.assignment, i)].append(s)
            tops[(r.assignment, i)] = m
    lines = [f"{'assignment':<22} {'exercise':<28} {'mean':>6} {'max':>5} {'full marks':>11} {'n':>3}"]
    for (a, i), scores in stats.items():
        full = sum(s >= tops[(a, i)] for s in scores)
        lines.append(f"{a:<22} {i:<28} {sum(scores) / len(scores):>6.2f} {tops[(a, i)]:>5g} "
                     f"{full:>5}/{len(scores):<5} {len(scores):>3}")
    flagged = [f"  {r.student} ({r.assignment}): {n}" for r in rows for n in r.notes if n.startswith(FLAG)]
    if flagged:
        lines += ["", f"{len(flagged)} submission(s) flagged for review (the score is not changed; read the code):",
                  *flagged]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    percents = [100 * r.score / r.max_score for r in rows if r.max_score]
    ax.hist(percents, bins=[0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100.01], edgecolor="black")
    ax.set(xlabel="score (% of points)", ylabel="submissions", title="Score distribution", xlim=(0, 100))
    fig.tight_layout()
    png_path = out_dir / "score_histogram.png"
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
    messages = {}
    item_cells = {a: {cell: item_of(cell) for cell in _test_cells(a)} for a in {r.assignment for r in rows}}
    for r in rows:
        nb_dir = GRADING / "autograded" / r.student / r.assignment
        for nb_path in sorted(nb_dir.glob("*.ipynb")):
            messages.setdefault((r.assignment, r.student), {}).update(
                class_report.failure_message(nb_path, item_cells[r.assignment]))
    html_path = class_report.write_html(rows, messages, out_dir / "class_report.html")
    canvas_path = class_report.write_canvas(rows, GRADING / "canvas_roster.csv", out_dir / "canvas_grades.csv")
    return "\n".join(lines), [csv_path, png_path, html_path, canvas_path]


def _test_cells(assignment: str) -> list[str]:
    """The grade ids of an assignment's graded test cells, from the gradebook."""
    with Gradebook(course_config().CourseDirectory.db_url) as gb:
        try:
            return [c.name for nb in gb.find_assignment(assignment).notebooks for c in nb.grade_cells
                    if c.cell_type == "code"]
        except MissingEntry:
            return []
