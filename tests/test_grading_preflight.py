"""Preflight and feedback scrubbing on their own (no kernel): quick checks of each repair and of the scrubber."""

from __future__ import annotations

import copy

import nbformat
import pytest

from autograder.feedback import ScrubFeedback
from autograder.notebooks import items, nbgrader_meta, read_source
from autograder.paths import COURSE, assignments, release_notebook
from autograder.preflight import BLANK_ANSWER, flags, preflight, repair
from autograder.review import forbidden_in, review

A = "00_orientation"


@pytest.fixture()
def release():
    return nbformat.read(release_notebook(A), as_version=4)


def _graded(nb):
    return [nbgrader_meta(c).get("grade_id") for c in nb.cells if nbgrader_meta(c).get("grade_id")]


def _index(nb, gid):
    return next(i for i, c in enumerate(nb.cells) if nbgrader_meta(c).get("grade_id") == gid)


def test_an_intact_submission_needs_no_repair(release):
    nb = copy.deepcopy(release)
    assert repair(nb, release) == []
    assert _graded(nb) == _graded(release)


def test_stripped_metadata_and_ids_are_found_again(release):
    nb = copy.deepcopy(release)
    nb.cells[_index(nb, "softmax")].source = "def softmax(x, dim=-1):\n    return x\n"
    for i, cell in enumerate(nb.cells):
        cell.metadata = {}
        cell["id"] = f"x{i}"
    notes = repair(nb, release)
    assert _graded(nb) == _graded(release), notes
    assert "def softmax" in nb.cells[_index(nb, "softmax")].source
    assert any("restored the grading metadata" in n for n in notes)


def test_duplicated_cells_keep_the_last_copy_graded(release):
    nb = copy.deepcopy(release)
    i = _index(nb, "softmax")
    first = nb.cells[i]
    first.source = "def softmax(x, dim=-1):\n    return x  # first try\n"
    second = copy.deepcopy(first)
    second.source, second["id"] = "def softmax(x, dim=-1):\n    return x  # second try\n", "copy"
    nb.cells.insert(i + 1, second)
    nb.cells.insert(_index(nb, "test_softmax") + 1, copy.deepcopy(nb.cells[_index(nb, "test_softmax")]))
    notes = repair(nb, release)
    assert _graded(nb) == _graded(release), notes
    assert "second try" in nb.cells[_index(nb, "softmax")].source
    assert sum("appeared 2 times" in n for n in notes) == 2, notes


def test_deleted_answer_cells_come_back_and_test_cells_are_left_to_nbgrader(release):
    nb = copy.deepcopy(release)
    del nb.cells[_index(nb, "test_softmax")]
    del nb.cells[_index(nb, "one_hot_embed")]
    del nb.cells[_index(nb, "setup")]
    notes = repair(nb, release)
    assert _graded(nb) == [g for g in _graded(release) if g != "test_softmax"], notes
    assert nb.cells[_index(nb, "one_hot_embed")].source == BLANK_ANSWER
    assert any("'test_softmax' was deleted: nbgrader puts it back" in n for n in notes)


def _edits(release) -> dict:
    """Ways a submission's graded cells go astray, each a function of a copy of the release."""
    def unknown_id(nb):
        nb.cells[_index(nb, "softmax")].metadata.nbgrader["grade_id"] = "my_softmax"

    def deleted(nb):
        del nb.cells[_index(nb, "test_softmax")]
        del nb.cells[_index(nb, "softmax")]

    def duplicated(nb):
        i = _index(nb, "test_softmax")
        nb.cells.insert(i + 1, copy.deepcopy(nb.cells[i]))
        nb.cells[i + 1]["id"] = "copy"
        nb.cells.insert(0, copy.deepcopy(nb.cells[_index(nb, "setup")]))
        nb.cells[0]["id"] = "copy-setup"

    def stripped(nb):
        for cell in nb.cells:
            cell.metadata = {}

    def retyped(nb):
        cell = nb.cells[_index(nb, "test_softmax")]
        cell.cell_type = "markdown"
        del cell["outputs"], cell["execution_count"]

    def kernelspec(nb):
        nb.metadata.kernelspec = {"name": "mine", "display_name": "mine", "language": "python"}

    return {f.__name__: f for f in (unknown_id, deleted, duplicated, stripped, retyped, kernelspec)}


#: the edits nbgrader 0.9.6's sanitizers fail on by themselves (a KeyError that stops the notebook): what
#: preflight.repair is for. When an nbgrader release handles one, this test says so and repair() can drop it.
NBGRADER_FAILS_ON = {"unknown_id", "deleted", "duplicated", "stripped"}


def _sanitizer():
    """nbgrader's own sanitizing steps of autograde, with the course's configuration and gradebook."""
    from nbgrader.converters import Autograde

    from autograder.config import course_config
    from autograder.grading import _ensure_in_gradebook

    _ensure_in_gradebook(A)
    config = course_config()
    resources = {"nbgrader": {"notebook": A, "assignment": A, "db_url": config.CourseDirectory.db_url}}
    steps = [step(config=config) for step in Autograde(config=config).sanitize_preprocessors]

    def sanitize(nb):
        for step in steps:
            nb, _ = step.preprocess(nb, copy.deepcopy(resources))
        return nb

    return sanitize


def test_preflight_repairs_what_nbgrader_fails_on_and_nbgrader_does_the_rest(release):
    _sanitize = _sanitizer()
    failed = set()
    for name, edit in _edits(release).items():
        nb = copy.deepcopy(release)
        edit(nb)
        try:
            _sanitize(copy.deepcopy(nb))
        except KeyError:
            failed.add(name)
        repair(nb, release)
        nb = _sanitize(nb)
        assert _graded(nb) == _graded(release), name
        assert nb.metadata.kernelspec == release.metadata.kernelspec, name
        for gid in ("setup", "test_softmax", "test_one_hot_embed"):
            assert nb.cells[_index(nb, gid)].cell_type == "code", (name, gid)
            assert nb.cells[_index(nb, gid)].source.endswith(release.cells[_index(release, gid)].source), (name, gid)
    assert failed == NBGRADER_FAILS_ON, f"nbgrader alone now fails on {sorted(failed)} only: trim preflight.repair"


def test_renamed_unreadable_and_missing_notebooks(tmp_path, release):
    rel_dir = tmp_path / "release"
    rel_dir.mkdir()
    nbformat.write(release, rel_dir / f"{A}.ipynb")
    renamed = tmp_path / "renamed"
    renamed.mkdir()
    nbformat.write(release, renamed / f"Copy of {A}.ipynb")
    assert any("renamed" in n for n in preflight(renamed, rel_dir))
    assert (renamed / f"{A}.ipynb").exists()
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / f"{A}.ipynb").write_text("{ not json")
    assert any("not a readable notebook" in n for n in preflight(broken, rel_dir))
    nbformat.read(broken / f"{A}.ipynb", as_version=4)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert any("no 00_orientation.ipynb" in n for n in preflight(empty, rel_dir))


def test_flags_hostile_code_but_not_the_solution(release):
    nb = copy.deepcopy(release)
    assert flags(nb, release) == []
    nb.cells[_index(nb, "softmax")].source = "import os\nos._exit(0)\ntorch.allclose = lambda *a: True\n"
    (note,) = flags(nb, release)
    assert "os._exit" in note and "patching torch" in note


def test_scrubber_keeps_the_case_of_an_external_failure_from_the_learner():
    nb = read_source(A)
    test = nb.cells[_index(nb, "test_softmax")]
    detail = "A hidden test of `softmax` failed: softmax on a float64 tensor of shape (3, 7), dim=0: 21 of 21 differ"
    test.outputs = [nbformat.v4.new_output("error", ename="HiddenTestFailed", evalue=detail, traceback=[detail])]
    nb, _ = ScrubFeedback().preprocess(nb, {})
    (out,) = nb.cells[_index(nb, "test_softmax")].outputs
    assert out.evalue.startswith("A hidden test of `softmax` failed") and "(3, 7)" not in str(out)


HOOK_SPELLINGS = [
    'get_ipython().input_transformers_cleanup.append(lambda lines: [])',
    'shell = get_ipython()\nshell.run_cell = lambda *a, **k: None',
    'setattr(globals()["get_ipython"](), "run_cell_async", None)',
    'import IPython\nIPython.get_ipython().kernel.do_execute = None',
    'import sys\nsys.displayhook("ok")',
    'exec("x = 1")',
    'import threading\nthreading.Thread(target=print).start()',
    'import gc\ngc.get_objects()',
    'import sys\nsys._getframe(1).f_globals["assert_close"] = print',
    'import ctypes',
    'import torch\ntorch.testing.assert_close = print',
    'from torch.nn.functional import softmax as s',
    'def softmax(x, dim=-1):\n    return getattr(torch, "softmax")(x, dim)',
]


@pytest.mark.parametrize("source", HOOK_SPELLINGS)
def test_review_flags_each_spelling(source):
    assert review([source], {"softmax"}), source


def test_review_flags_no_solution_and_no_right_catalog_version():
    from autograder.paths import assignments
    from qa.discrimination import load_catalog

    for assignment in assignments():
        nb = read_source(assignment)
        for item in items(nb):
            forbidden = forbidden_in([test.source for test in item.tests])  # an answer against its own tests
            assert review([item.answer.source], forbidden) == [], f"{assignment}.{item.name}: the solution is flagged"
            for label, source in load_catalog(assignment).get(item.name, {}).get("right", {}).items():
                assert review([source], forbidden) == [], f"{assignment}.{item.name} right version {label!r} is flagged"


@pytest.mark.parametrize("assignment", assignments())
def test_an_honest_solution_of_every_notebook_is_not_flagged(assignment):
    """The release filled with the solution, as typed: no review flag (experiment cells the learner left as they
    were may call the built-ins the exercises forbid; they are the course's code)."""
    from qa.catalog import solutions

    release = nbformat.read(COURSE / assignment / f"{assignment}.ipynb", as_version=4)
    solution = solutions(assignment)
    nb = copy.deepcopy(release)
    for cell in nb.cells:
        if nbgrader_meta(cell).get("solution") and nbgrader_meta(cell).get("grade_id") in solution:
            cell.source = solution[nbgrader_meta(cell)["grade_id"]]
    assert flags(nb, release) == []


def test_a_forbidden_built_in_is_flagged_in_the_answer_of_the_item_that_forbids_it_only():
    """10's sampler may call softmax (its tests allow it); its online softmax may not (its tests forbid it)."""
    from qa.catalog import solutions

    release = nbformat.read(COURSE / "10_attention_at_scale" / "10_attention_at_scale.ipynb", as_version=4)
    solution = solutions("10_attention_at_scale")
    assert "torch.softmax" in solution["sample_next"]
    nb = copy.deepcopy(release)
    for cell in nb.cells:
        grade_id = nbgrader_meta(cell).get("grade_id")
        if nbgrader_meta(cell).get("solution") and grade_id in solution:
            cell.source = solution[grade_id]
    assert flags(nb, release) == []
    answer = next(c for c in nb.cells if nbgrader_meta(c).get("grade_id") == "online_softmax_attention")
    answer.source = answer.source.replace("p = torch.exp(scores - shift[..., None])",
                                          "p = torch.softmax(scores, -1) * torch.exp(scores).sum(-1, keepdim=True)")
    assert flags(nb, release) == ["flagged for review: the learner's code uses the built-in softmax that the exercise "
                                  "asks you to write"]
