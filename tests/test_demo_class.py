"""The instructor's path on the bundled demo class: grade (headless), feedback, report."""

import subprocess
import sys

import pytest

from autograder.paths import GRADING, ROOT
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
