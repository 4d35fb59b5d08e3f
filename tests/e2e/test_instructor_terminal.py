"""The instructor's path: the README's grading commands, run as written, on the bundled demo class.

``grade`` (no argument: the demo class) must print the table with each student's expected total; ``feedback`` must
write one HTML page per student with no hidden test in it; ``report`` must print the per-exercise table and write
``grades.csv`` and ``score_histogram.png``. Grading state goes to a scratch folder (``ATTENTION_STEPS_GRADING_DIR``),
never to the instructor's ``.grading/``.
"""

from __future__ import annotations

import csv
import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest
from e2e_support import ROOT, hidden_test_lines, html_text, squash, visible_test_lines

from qa.demo import ASSIGNMENT, EXPECTED

COMMANDS = ("grade", "feedback", "report")


def readme_commands() -> dict[str, list[str]]:
    """The instructor commands as the README writes them (``.venv/bin/python -m autograder grade`` …), no options."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = {}
    for snippet in re.findall(r"`([^`\n]*-m autograder [^`\n]*)`", text):
        words = [w for w in shlex.split(snippet) if not w.startswith("[")]
        if words[words.index("autograder") + 1:][:1] and words[words.index("autograder") + 1] in COMMANDS:
            found.setdefault(words[words.index("autograder") + 1], words[:words.index("autograder") + 2])
    return found


@pytest.fixture(scope="module")
def terminal(tmp_path_factory):
    """Run the README's commands in order in the repository, grading into a scratch folder; keep their output."""
    commands = readme_commands()
    missing = [c for c in COMMANDS if c not in commands]
    assert not missing, f"README.md does not give the instructor command(s) {missing} as `… -m autograder NAME`"
    grading = tmp_path_factory.mktemp("grading")
    env = dict(os.environ, ATTENTION_STEPS_GRADING_DIR=str(grading))
    outputs = {}
    for name in COMMANDS:
        proc = subprocess.run(commands[name], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, (f"`{' '.join(commands[name])}` exited with {proc.returncode}:\n"
                                      f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        outputs[name] = proc.stdout
    return grading, outputs


def test_grade_prints_the_demo_class_table(terminal):
    _, out = terminal
    table = out["grade"]
    assert f"== {ASSIGNMENT}" in table, table
    for student, (score, top) in EXPECTED.items():
        line = next((ln for ln in table.splitlines() if ln.split()[:1] == [student]), None)
        assert line, f"no row for {student} in:\n{table}"
        assert f"{score:g}/{top:g}" in line.split(), f"{student} should have {score:g}/{top:g}: {line}"


def test_feedback_is_written_without_hidden_tests(terminal):
    grading, out = terminal
    hidden = [squash(line) for line in hidden_test_lines(ASSIGNMENT)]
    visible = [squash(line) for line in visible_test_lines(ASSIGNMENT)]
    assert hidden and visible
    for student in EXPECTED:
        pages = sorted((grading / "feedback" / student / ASSIGNMENT).glob("*.html"))
        assert pages, f"no feedback for {student} under {grading / 'feedback'}; feedback printed:\n{out['feedback']}"
        for page in pages:
            markup = page.read_text(encoding="utf-8")
            assert "HIDDEN TESTS" not in markup, f"{page.name} for {student} shows hidden-test markers"
            text = squash(html_text(markup))
            shown = [line for line in visible if line in text]
            assert shown, f"{page.name} for {student} shows none of the visible tests (is it the notebook?)"
            leaked = [line for line in hidden if line in text]
            assert not leaked, f"{page.name} for {student} shows hidden-test lines: {leaked[:5]}"


def test_report_writes_csv_and_histogram(terminal):
    grading, out = terminal
    text = out["report"]
    written = {Path(path).name: path for path in re.findall(r"^wrote (.+)$", text, re.MULTILINE)}
    written.update(csv=written.get("grades.csv"), png=written.get("score_histogram.png"))
    wanted = {"grades.csv", "score_histogram.png", "class_report.html", "canvas_grades.csv"}
    assert wanted <= written.keys(), f"report did not say where it wrote {wanted - written.keys()}:\n{text}"
    assert "exercise" in text and all(item in text for item in ("softmax", "one_hot_embed")), text
    with open(written["csv"], newline="", encoding="utf-8") as f:
        rows = {r["student"]: r for r in csv.DictReader(f) if r["assignment"] == ASSIGNMENT}
    for student, (score, top) in EXPECTED.items():
        assert student in rows, f"{student} missing from {written['csv']}"
        assert (float(rows[student]["score"]), float(rows[student]["max_score"])) == (score, top), rows[student]
    from PIL import Image, ImageStat

    with Image.open(written["png"]) as im:
        assert im.format == "PNG" and im.width > 100 and im.height > 100
        assert max(ImageStat.Stat(im.convert("L")).stddev) > 5.0, "the histogram is a blank image"
