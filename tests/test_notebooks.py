"""Every solution notebook runs green on the grading fast path, and every graded item tells right from wrong.

One kernel per notebook (qa.discrimination.check_notebook): the solution notebook runs top to bottom with
every test cell, hidden tests included (in the cell, or judged outside the kernel as in grading); then each item's
catalog of wrong and correct versions is swapped in and only that item's tests are rerun.
"""

import pytest

from autograder import external
from autograder.notebooks import items, nbgrader_meta, read_source
from autograder.paths import assignments
from qa.discrimination import CATALOGS, MIN_RIGHT, MIN_WRONG, check_notebook, load_catalog

pytestmark = [pytest.mark.kernel]


@pytest.mark.parametrize("assignment", assignments())
def test_solution_runs_green_and_catalog_is_fully_discriminated(assignment):
    result = check_notebook(assignment)
    assert not result.failures, f"{assignment}: solution cells failed on the fast path: {result.failures}"
    for item in result.items:
        assert not item.problems, f"{assignment}.{item.item}: {item.problems}"
        assert not item.wrong_accepted, f"{assignment}.{item.item}: wrong versions accepted: {item.wrong_accepted}"
        assert not item.right_rejected, f"{assignment}.{item.item}: correct versions rejected: {item.right_rejected}"


@pytest.mark.parametrize("assignment", assignments())
def test_every_item_has_a_catalog_and_tests(assignment):
    nb = read_source(assignment)
    found = items(nb)
    assert found, f"{assignment} has no graded items"
    assert (CATALOGS / f"{assignment}.py").exists(), f"tests/catalogs/{assignment}.py is missing"
    catalog = load_catalog(assignment)
    for item in found:
        assert item.tests, f"{assignment}.{item.name} has no test cell"
        assert item.points > 0, f"{assignment}.{item.name} is worth no points"
        # every graded cell is judged outside the kernel: no hidden-test text in the notebook at all
        grade_ids = [nbgrader_meta(t)["grade_id"] for t in item.tests]
        assert all(external.has_check(assignment, g) for g in grade_ids), (
            f"{assignment}.{item.name}: a test cell without hidden tests in autograder/external/")
        assert not any("HIDDEN TESTS" in t.source for t in item.tests), (
            f"{assignment}.{item.name}: hidden tests in the notebook, where the learner's kernel would run them")
        entry = catalog.get(item.name, {})
        assert len(entry.get("wrong", {})) >= MIN_WRONG and len(entry.get("right", {})) >= MIN_RIGHT, (
            f"{assignment}.{item.name}: catalog needs ≥ {MIN_WRONG} wrong and ≥ {MIN_RIGHT} right versions"
        )
    unknown = set(catalog) - {i.name for i in found}
    assert not unknown, f"tests/catalogs/{assignment}.py names items the notebook does not have: {unknown}"


def test_every_assignment_is_judged_outside_the_kernel():
    assert set(external.CHECKS) == set(assignments()), set(assignments()) ^ set(external.CHECKS)


def test_every_external_check_belongs_to_a_graded_cell():
    for assignment, checks in external.CHECKS.items():
        grade_ids = {nbgrader_meta(t)["grade_id"] for item in items(read_source(assignment)) for t in item.tests}
        assert set(checks) <= grade_ids, f"{assignment}: checks for cells that do not exist: {set(checks) - grade_ids}"


def test_catalog_edit_changes_one_place_of_the_code():
    from qa.catalog import edit

    source = 'def f(x):\n    """Returns x + 1 (not x + 2)."""\n    return x + 1\n'
    assert edit(source, ("x + 1", "x - 1")) == source.replace("return x + 1", "return x - 1")  # docstring untouched
    with pytest.raises(ValueError, match="occurs 0 times"):
        edit(source, ("x * 3", "x"))
    with pytest.raises(ValueError, match="occurs 2 times"):
        edit(source + "y = x + 1\n", ("x + 1", "x"))


@pytest.mark.parametrize("assignment", assignments())
def test_every_wrong_version_is_an_edit_of_the_solution(assignment):
    """Each wrong version keeps the solution's signature and docstring: it differs from the right answer by its
    mistake, not by a rewrite (qa/catalog.py)."""
    from qa.catalog import solutions

    for name, entry in load_catalog(assignment).items():
        solution = solutions(assignment)[name]
        head = solution[: solution.index('"""', solution.index('"""') + 3) + 3]
        for label, source in entry.get("wrong", {}).items():
            assert head in source and source != solution, f"{assignment}.{name}: wrong version {label!r}"
