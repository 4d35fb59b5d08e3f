"""The adversarial demo class (qa/adversarial.py), graded for real: nbgrader, sandboxed kernels, feedback.

The whole class is graded twice, with short limits (15 s a cell, 50 s a notebook): as the user running the tests,
and as an ordinary user — the one most instructors are. Run as root (CI), the suite creates that user
(``ag-instructor``), gives it its own clone of the course and a venv of Debian's Python (the only interpreter an
ordinary user can execute there) and grades as it; not as root, the first run already is an ordinary user's. Then:
every student has a row with the expected points and reason; no feedback holds hidden-test text; the gradebook, the
sources and the other students' folders are untouched; nothing reached the network; no sandbox process survives.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import nbformat
import psutil
import pytest

from autograder import external
from autograder.paths import ROOT
from qa.adversarial import HOOKS, SHORTCUTS, STUDENTS, build_adversarial_class

pytestmark = [pytest.mark.kernel, pytest.mark.adversarial]

LIMITS = {"AG_CELL_TIMEOUT": "15", "AG_NOTEBOOK_TIMEOUT": "50", "AG_KERNEL_MEMORY_MB": "3000"}
WATCHED = ["solutions/00_orientation/00_orientation.py", "attention_steps/testing.py",
           "course/00_orientation/00_orientation.ipynb"]
USER = "ag-instructor"
IDENTITIES = ["self", "user"] if os.geteuid() == 0 else ["self"]


class Listener:
    """A TCP server on the grader's loopback that counts connections (none may come from a kernel)."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port, self.accepted = self.sock.getsockname()[1], 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()


def _as_user(base: Path) -> tuple[list[str], Path]:
    """An ordinary user with its own clone and a venv of Debian's Python: (command prefix, clone)."""
    if subprocess.run(["id", USER], capture_output=True).returncode:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", USER], check=True)
    home = Path(os.path.expanduser(f"~{USER}"))
    (home / ".ssh").mkdir(exist_ok=True)
    (home / ".ssh" / "id_secret").write_text("INSTRUCTOR-SECRET-KEY\n")
    clone = base / "course"
    shutil.copytree(ROOT, clone, ignore=shutil.ignore_patterns(".venv*", ".grading", ".bench", "__pycache__"),
                    symlinks=True)
    python = "/usr/bin/python3.11" if Path("/usr/bin/python3.11").exists() else sys.executable
    subprocess.run([str(clone / "setup" / "make_venv.sh"), python, str(base / "venv")], check=True, cwd=clone,
                   capture_output=True)
    subprocess.run(["chown", "-R", f"{USER}:{USER}", str(clone), str(home / ".ssh")], check=True)
    return ["runuser", "-u", USER, "--", str(base / "venv" / "bin" / "python")], clone


def _cli(prefix: list[str], root: Path, grading: Path, *args: str) -> str:
    env = dict(os.environ, ATTENTION_STEPS_GRADING_DIR=str(grading), **LIMITS)
    env.pop("PYTHONPATH", None)
    proc = subprocess.run([*prefix, "-m", "autograder", *args], cwd=root, env=env, capture_output=True, text=True,
                          timeout=1500)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return proc.stdout


def _digests(root: Path) -> dict[str, str]:
    return {name: hashlib.sha256((root / name).read_bytes()).hexdigest() for name in WATCHED}


@pytest.fixture(scope="module", params=IDENTITIES)
def graded(request):
    base = Path(tempfile.mkdtemp(prefix="ag-adversarial-"))
    base.chmod(0o755)
    listener = Listener()
    try:
        prefix, root = ([sys.executable], ROOT) if request.param == "self" else _as_user(base)
        grading, klass = base / "grading", base / "class"
        build_adversarial_class(klass, grading, port=listener.port)
        if request.param == "user":
            grading.mkdir()
            subprocess.run(["chown", "-R", f"{USER}:{USER}", str(grading), str(klass)], check=True)
        before = _digests(root)
        table = _cli(prefix, root, grading, "grade", str(klass))
        _cli(prefix, root, grading, "feedback")
        report = _cli(prefix, root, grading, "report")
        with open(grading / "reports" / "grades.csv") as f:
            rows = {r["student"]: r for r in csv.DictReader(f)}
        yield {"grading": grading, "table": table, "report": report, "rows": rows, "before": before, "root": root,
               "base": base,
               "listener": listener, "who": request.param}
    finally:
        listener.sock.close()
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize("student", list(STUDENTS))
def test_row(graded, student):
    case = STUDENTS[student]
    assert any(line.startswith(student + " ") for line in graded["table"].splitlines()), graded["table"]
    row = graded["rows"].get(student)
    assert row is not None, f"{student} has no row in grades.csv"
    got = (float(row["00_orientation:softmax"]), float(row["00_orientation:one_hot_embed"]))
    assert got == (case.softmax, case.one_hot_embed), f"{student} ({case.what}): got {got}; notes: {row['notes']}"
    if case.note:
        assert case.note in row["notes"], f"{student}: expected a note with {case.note!r}, got {row['notes']!r}"


def test_feedback_has_no_hidden_test_text(graded):
    lines = external.source_lines("00_orientation")
    assert len(lines) > 20
    pages = sorted((graded["grading"] / "feedback").rglob("*.html"))
    students = {p.relative_to(graded["grading"] / "feedback").parts[0] for p in pages}
    assert students >= set(STUDENTS), sorted(set(STUDENTS) - students)
    import html as _html

    for page in pages:
        text = _html.unescape(page.read_text(errors="replace"))
        leaked = [line for line in lines if line in text]
        assert not leaked, f"{page}: hidden-test text in feedback: {leaked[:3]}"
        assert "BEGIN HIDDEN TESTS" not in text


def test_report_names_every_hooking_and_forbidden_builtin_submission(graded):
    flagged = graded["report"].split("flagged for review (the score is not changed")[-1]
    for student in [*HOOKS, *SHORTCUTS, "displayhook", "gc_walk"]:
        assert f"  {student} (00_orientation): flagged for review" in flagged, graded["report"][-3000:]
    assert "  alice (00_orientation)" not in flagged
    assert "  infinite_loop (00_orientation)" not in flagged  # a cell interrupted at its time limit is no hook


def test_feedback_says_why(graded):
    page = graded["grading"] / "feedback" / "exit_early" / "00_orientation" / "00_orientation.html"
    assert "Grading notes" in page.read_text() and "kernel died" in page.read_text()
    page = graded["grading"] / "feedback" / "not_a_notebook" / "00_orientation" / "00_orientation.html"
    assert "not a readable notebook" in page.read_text()


def _printed(grading: Path, student: str) -> str:
    """What the inserted hostile cell of a graded submission printed (the instructor's autograded copy)."""
    nb = nbformat.read(grading / "autograded" / student / "00_orientation" / "00_orientation.ipynb", as_version=4)
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                   and any(word in c.source for word in ("pathlib", "os.kill", "socket")) for o in c.outputs)


def test_nothing_outside_the_sandbox_was_touched(graded):
    root, grading = graded["root"], graded["grading"]
    assert _digests(root) == graded["before"], "a watched source file changed while grading"
    assert not [*grading.rglob("PWNED"), *(root / "course").rglob("PWNED"), *Path("/").glob("PWNED")]
    assert b"pwned" not in (grading / "gradebook.db").read_bytes()
    for nb in (grading / "submitted" / "alice").rglob("*.ipynb"):
        assert "pwned" not in nb.read_text()
    text = _printed(grading, "write_everywhere")
    assert "WROTE" not in text and text.count("denied") == 8, text


def test_nothing_private_could_be_read(graded):
    text = _printed(graded["grading"], "read_private")
    assert "READ" not in text and "SECRET" not in text and "def softmax" not in text, text[:2000]
    assert text.count("missing") + text.count("denied") >= 4, text
    text = _printed(graded["grading"], "read_hidden")
    assert "reference_softmax" not in text and "BEGIN HIDDEN" not in text and "softmax_steps" not in text, text[:2000]
    assert "missing" in text or "denied" in text, text[:2000]  # the hidden tests' source is not in the sandbox


def test_no_signal_reached_the_grader(graded):
    text = _printed(graded["grading"], "kill_grader")
    assert "can see 1 other processes: [1]" in text, text  # only the sandbox's own PID 1, which ignores it


def test_no_kernel_reached_the_network(graded):
    text = _printed(graded["grading"], "network")
    assert "CONNECTED" not in text and "ROUTE" not in text and "no route out" in text, text
    assert "interfaces: ['lo']" in text, text
    assert graded["listener"].accepted == 0


def test_no_sandbox_process_survives(graded):
    kernels = [json.loads(p.read_text()) for p in (graded["grading"] / "notes").rglob("kernel.json")]
    assert len(kernels) >= len(STUDENTS) - 2  # every kernel is recorded (2 submissions never start one)
    pids = {int(pid) for _, pid in kernels if int(pid) > 0}
    uids = {int(uid) for uid, _ in kernels if int(uid) > 0}
    assert len(pids) >= len(STUDENTS) - 2, kernels
    if graded["who"] == "self" and os.geteuid() == 0:
        assert len(uids) >= len(STUDENTS) - 2, kernels  # as root, each kernel had a uid of its own
    left = [p.info for p in psutil.process_iter(["pid", "name", "uids"]) if p.info["uids"] and (
        p.info["uids"].real in uids or (p.info["pid"] in pids and p.info["name"] == "bwrap"))]
    assert not left, left
