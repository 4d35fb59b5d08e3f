"""The instructor's path on the bundled demo class: grade (headless), feedback, report."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from autograder.paths import DEMO_CLASS, GRADING, ROOT
from qa.demo import EXPECTED

pytestmark = [pytest.mark.kernel]


def _cli(*args):
    proc = subprocess.run([sys.executable, "-m", "autograder", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_grade_feedback_report_on_the_demo_class():
    table = _cli("grade")
    for student, (score, top) in EXPECTED.items():
        line = next((ln for ln in table.splitlines() if ln.startswith(student)), None)
        assert line is not None, f"{student} missing from the table:\n{table}"
        assert f"{score:g}/{top:g}" in line.split()[-1] or f"{score:g}/{top:g}" in line, (
            f"{student}: expected {score:g}/{top:g}:\n{table}")

    _cli("feedback")
    for student in EXPECTED:
        html = list((GRADING / "feedback" / student).rglob("*.html"))
        assert html, f"no feedback for {student}"
        assert "BEGIN HIDDEN TESTS" not in html[0].read_text()

    out = _cli("report")
    assert "softmax" in out and "one_hot_embed" in out
    assert "flagged for review" not in out, out  # honest work, right or wrong: no review flag, no audit tripwire
    assert (GRADING / "reports" / "grades.csv").exists()
    assert (GRADING / "reports" / "score_histogram.png").stat().st_size > 1000
    page = (GRADING / "reports" / "class_report.html").read_text()
    assert "Items most students missed" in page and "softmax" in page and "BEGIN HIDDEN" not in page
    assert (GRADING / "reports" / "canvas_grades.csv").read_text().startswith(
        "Student,ID,SIS User ID,SIS Login ID,Section,00_orientation")


def test_grade_lms_zip_downloads(tmp_path):
    """An LMS download: one zip holding <student>_<ids>_<notebook>.ipynb files, collected by nbgrader's zip_collect."""
    import zipfile

    from autograder.paths import DEMO_CLASS

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    with zipfile.ZipFile(downloads / "submissions.zip", "w") as z:
        for i, student in enumerate(EXPECTED):
            z.write(DEMO_CLASS / student / "00_orientation" / "00_orientation.ipynb",
                    f"{student}_{1000 + i}_{5000 + i}_00_orientation.ipynb")
    table = _cli("grade", str(downloads), "--assignment", "00_orientation")
    for student, (score, top) in EXPECTED.items():
        line = next((ln for ln in table.splitlines() if ln.startswith(student)), "")
        assert f"{score:g}/{top:g}" in line, f"{student}: expected {score:g}/{top:g}:\n{table}"


def test_nbgraders_own_autograde_runs_the_same_chain_in_one_process(tmp_path):
    """`nbgrader autograde` (what the formgrader's Autograde button runs) with the course's configuration: execution,
    the hidden tests' judgement and the saving in one process — the same points as `grade`."""
    import os

    from qa.demo import ASSIGNMENT

    env = dict(os.environ, ATTENTION_STEPS_GRADING_DIR=str(tmp_path), JUPYTER_CONFIG_PATH=str(ROOT / "autograder"))
    release = f"from autograder import grading; grading._ensure_in_gradebook({ASSIGNMENT!r})"
    subprocess.run([sys.executable, "-c", release], cwd=ROOT, env=env, check=True, capture_output=True, timeout=300)
    for student in ("alice", "bob"):
        shutil.copytree(DEMO_CLASS / student, tmp_path / "submitted" / student)
        proc = subprocess.run([str(Path(sys.executable).with_name("nbgrader")), "autograde", ASSIGNMENT, "--student",
                               student, "--force"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    rows = subprocess.run([sys.executable, "-c", "from autograder.grading import read_row; print([(s, read_row("
                           f"{ASSIGNMENT!r}, s).score) for s in ('alice', 'bob')])"], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=True, timeout=120).stdout
    assert rows.strip() == str([(s, EXPECTED[s][0]) for s in ("alice", "bob")]), rows
