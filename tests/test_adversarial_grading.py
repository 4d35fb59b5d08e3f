"""The adversarial demo class (autograder/adversarial.py), graded for real: nbgrader, sandboxed kernels, feedback.

One grading run of the whole class (short limits: 15 s a cell, 50 s a notebook) in a private grading folder, then:
every student has a row with the expected points and reason; no feedback file holds any hidden-test text; the
gradebook, the sources, the helper package and the other students' folders are untouched; no sandbox process
survives. Cases marked ``root_only`` need the uid sandbox and are left out without it (not root, or a Python
installation the sandbox uid cannot reach and no mount namespaces).
"""

from __future__ import annotations

import csv
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from autograder import sandbox
from autograder.adversarial import STUDENTS, build_adversarial_class
from autograder.feedback import hidden_lines
from autograder.notebooks import read_source
from autograder.paths import ROOT

ROOT_ONLY = [s for s, c in STUDENTS.items() if c.root_only]
LIMITS = {"AG_CELL_TIMEOUT": "15", "AG_NOTEBOOK_TIMEOUT": "50", "AG_KERNEL_MEMORY_MB": "3000"}
WATCHED = [ROOT / "solutions" / "00_orientation" / "00_orientation.py", ROOT / "attention_steps" / "testing.py",
           ROOT / "course" / "00_orientation" / "00_orientation.ipynb"]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _cli(grading: Path, *args: str) -> str:
    env = dict(os.environ, ATTENTION_STEPS_GRADING_DIR=str(grading), **LIMITS)
    proc = subprocess.run([sys.executable, "-m", "autograder", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=1500)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return proc.stdout


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    base = tmp_path_factory.mktemp("adversarial")
    grading, klass = base / "grading", base / "class"
    build_adversarial_class(klass, grading)
    if not sandbox.uid_isolation():
        for student in ROOT_ONLY:
            import shutil

            shutil.rmtree(klass / student)
    before = {p: _digest(p) for p in WATCHED}
    assert not any(b"pwned" in p.read_bytes() for p in WATCHED)
    table = _cli(grading, "grade", str(klass))
    _cli(grading, "feedback")
    _cli(grading, "report")
    with open(grading / "reports" / "grades.csv") as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    return {"grading": grading, "table": table, "rows": rows, "before": before}


def _expected_students():
    return [s for s, c in STUDENTS.items() if sandbox.uid_isolation() or not c.root_only]


@pytest.mark.parametrize("student", list(STUDENTS))
def test_row(graded, student):
    case = STUDENTS[student]
    if case.root_only and not sandbox.uid_isolation():
        pytest.skip("needs the uid sandbox (root, and a Python installation the sandbox uid can reach)")
    assert any(line.startswith(student + " ") for line in graded["table"].splitlines()), graded["table"]
    row = graded["rows"].get(student)
    assert row is not None, f"{student} has no row in grades.csv"
    got = (float(row["00_orientation:softmax"]), float(row["00_orientation:one_hot_embed"]))
    assert got == (case.softmax, case.one_hot_embed), f"{student} ({case.what}): got {got}; notes: {row['notes']}"
    if case.note:
        assert case.note in row["notes"], f"{student}: expected a note with {case.note!r}, got {row['notes']!r}"


def test_feedback_has_no_hidden_test_text(graded):
    lines = hidden_lines(read_source("00_orientation"))
    assert len(lines) > 20
    pages = sorted((graded["grading"] / "feedback").rglob("*.html"))
    students = {p.relative_to(graded["grading"] / "feedback").parts[0] for p in pages}
    assert students >= set(_expected_students()), sorted(set(_expected_students()) - students)
    import html as _html

    for page in pages:
        text = _html.unescape(page.read_text(errors="replace"))
        leaked = [line for line in lines if line in text]
        assert not leaked, f"{page}: hidden-test text in feedback: {leaked[:3]}"
        assert "BEGIN HIDDEN TESTS" not in text


def test_feedback_says_why(graded):
    page = graded["grading"] / "feedback" / "exit_early" / "00_orientation" / "00_orientation.html"
    assert "Grading notes" in page.read_text() and "kernel died" in page.read_text()
    page = graded["grading"] / "feedback" / "not_a_notebook" / "00_orientation" / "00_orientation.html"
    assert "not a readable notebook" in page.read_text()


def test_nothing_outside_the_sandbox_was_touched(graded):
    for path in graded["before"]:  # (others may edit these files meanwhile: look for the hostile write itself)
        assert b"pwned" not in path.read_bytes(), f"{path} was written by a submission"
    grading = graded["grading"]
    pwned = [p for p in [*grading.rglob("PWNED"), *(ROOT / "course").rglob("PWNED")]]
    assert not pwned, pwned
    assert b"pwned" not in (grading / "gradebook.db").read_bytes()
    for nb in (grading / "submitted" / "alice").rglob("*.ipynb"):
        assert "pwned" not in nb.read_text()
    if sandbox.uid_isolation():
        text = _printed(grading, "write_everywhere")
        assert "WROTE" not in text and text.count("denied") == 6, text
        text = _printed(grading, "kill_grader")
        assert "signalled" not in text and "denied" in text, text
        text = _printed(grading, "read_hidden")
        assert "denied" in text and "_reference_softmax" not in text, text[:2000]


def _printed(grading: Path, student: str) -> str:
    """What the cells of a graded submission printed (the instructor's autograded copy)."""
    import nbformat

    nb = nbformat.read(grading / "autograded" / student / "00_orientation" / "00_orientation.ipynb", as_version=4)
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs
                   if "pathlib" in c.source or "os.kill" in c.source)


def test_no_sandbox_process_survives(graded):
    import json

    uids = {int(json.loads(p.read_text())[0]) for p in (graded["grading"] / "notes").rglob("kernel.json")}
    uids.discard(-1)
    if sandbox.uid_isolation():
        assert len(uids) >= len(_expected_students()) - 2  # every kernel had its own uid (2 never start one)
    left = {uid: sandbox.pids_of_uid(uid) for uid in uids}
    assert not any(left.values()), left
