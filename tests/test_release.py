"""course/ is exactly what nbgrader generates from solutions/ now, and gives nothing away."""

import re
import shutil

import nbformat
import pytest

from autograder import grading
from autograder.notebooks import head_problems, items, nbgrader_meta, read_source
from autograder.paths import COURSE, ROOT, assignments, release_notebook, source_notebook
from qa.kernel import Kernel

MARKERS = ["BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS", "BEGIN MARK SCHEME",
           "END MARK SCHEME"]


def _strip(nb):
    return [(c.cell_type, c.get("id"), c.source, c.metadata.get("nbgrader")) for c in nb.cells]


def test_course_holds_exactly_the_assignments_of_solutions():
    assert sorted(p.name for p in COURSE.iterdir() if p.is_dir()) == assignments()
    for a in assignments():
        files = sorted(p.name for p in (COURSE / a).iterdir())
        assert files == [f"{a}.ipynb"], f"course/{a} should hold only the release notebook, has {files}"


@pytest.mark.parametrize("assignment", assignments())
def test_solution_ipynb_is_built_from_its_text(assignment):
    built = read_source(assignment)
    committed = nbformat.read(source_notebook(assignment), as_version=4)
    assert _strip(committed) == _strip(built), (
        f"solutions/{assignment}/{assignment}.ipynb is stale: run `python -m autograder release {assignment}`")
    assert not head_problems(built, assignment), head_problems(built, assignment)


@pytest.mark.parametrize("assignment", assignments())
def test_course_is_what_nbgrader_generates_now(assignment, tmp_path):
    api = grading.api(release_dir=tmp_path / "release")
    result = api.generate_assignment(assignment, force=True)
    assert result["success"], result.get("log", "") + result.get("error", "")
    fresh = (tmp_path / "release" / assignment / f"{assignment}.ipynb").read_text()
    assert release_notebook(assignment).read_text() == fresh, (
        f"course/{assignment} differs from nbgrader's release of solutions/: run `python -m autograder release`")


def _solution_lines(nb) -> set[str]:
    """Distinctive lines found only inside solution regions and hidden tests.

    A line that the visible part of the source also contains gives nothing away: a `with forbid(...)` shared by
    visible and hidden tests, or an attribute a docstring fixes on purpose (``self.rnn = nn.GRU(...)``).
    """
    inside_lines, visible = set(), []
    for cell in nb.cells:
        inside = False
        for line in cell.source.splitlines():
            if re.search(r"### BEGIN (SOLUTION|HIDDEN TESTS)", line):
                inside = True
            elif re.search(r"### END (SOLUTION|HIDDEN TESTS)", line):
                inside = False
            elif inside:
                if len(line.strip()) >= 25 and not line.strip().startswith("#"):
                    inside_lines.add(line.strip())
            else:
                visible.append(line)
    visible_text = "\n".join(visible)
    return {line for line in inside_lines if line not in visible_text}


@pytest.mark.parametrize("assignment", assignments())
def test_release_gives_nothing_away(assignment):
    text = release_notebook(assignment).read_text()
    for marker in MARKERS:
        assert marker not in text, f"course/{assignment} contains '{marker}'"
    release = nbformat.read(release_notebook(assignment), as_version=4)
    released_code = "\n".join(c.source for c in release.cells)
    leaked = [line for line in _solution_lines(read_source(assignment)) if line in released_code]
    assert not leaked, f"course/{assignment} contains solution or hidden-test lines: {leaked[:5]}"
    for cell in release.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, f"course/{assignment} has stored outputs"
    for item in items(release):
        assert "raise NotImplementedError()" in item.answer.source, f"{assignment}.{item.name} is not stubbed"


@pytest.mark.kernel
@pytest.mark.parametrize("assignment", assignments())
def test_released_notebook_fails_every_test_until_filled(assignment, tmp_path):
    shutil.copytree(COURSE / assignment, tmp_path / assignment)
    release = nbformat.read(tmp_path / assignment / f"{assignment}.ipynb", as_version=4)
    passed = []
    with Kernel(tmp_path / assignment, fast=True) as kernel:
        for cell in release.cells:
            if cell.cell_type != "code":
                continue
            result = kernel.run(cell.source)
            meta = nbgrader_meta(cell)
            if meta.get("grade") and not meta.get("solution") and result.ok:
                passed.append(meta["grade_id"])
    assert not passed, f"{assignment}: these test cells pass on the blank release: {passed}"


def test_no_grading_state_or_outputs_are_tracked():
    import subprocess

    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    assert not [f for f in tracked if f.startswith((".grading/", ".venv/"))]
