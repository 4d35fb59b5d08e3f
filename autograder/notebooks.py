"""Authoring: the jupytext text of each solution notebook is the source; its .ipynb is built from it.

- Every notebook starts with the same two cells, rendered here from ``pyproject.toml`` (the repository URL and
  the helper package's version, kept there once): an "Open in Colab" badge and the setup cell.
- Cell ids are deterministic (the nbgrader ``grade_id`` where there is one), so rebuilding changes nothing.
- Graded items follow one naming rule: an answer cell has ``grade_id = NAME`` (the name it defines); its test cells
  have ``grade_id = test_NAME`` or ``test_NAME__PART``.
"""

from __future__ import annotations

import copy
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import jupytext
import nbformat

from .paths import ROOT, assignments, source_notebook, source_py  # noqa: F401  (assignments re-exported)


def error_output(ename: str, evalue: str) -> nbformat.NotebookNode:
    """An error output as grading gives it to a cell (nbgrader scores a test cell with one as failed)."""
    return nbformat.NotebookNode(output_type="error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])

BADGE_ID = "colab-badge"
SETUP_ID = "setup"
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def repository_url() -> str:
    return project()["urls"]["Repository"].rstrip("/")


def pip_spec() -> str:
    """What the setup cell installs: the helper package from the repository, pinned to the course's release tag."""
    p = project()
    return f"{p['name']} @ git+{repository_url()}@v{p['version']}"


def badge_source(assignment: str) -> str:
    path = repository_url().removeprefix("https://github.com/")
    url = f"https://colab.research.google.com/github/{path}/blob/main/course/{assignment}/{assignment}.ipynb"
    return f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({url})"


SETUP_TEMPLATE = Path(__file__).with_name("templates") / "setup_cell.py"


def setup_source() -> str:
    """The setup cell: installs the helper package where it is missing, and says in one sentence why it couldn't."""
    return SETUP_TEMPLATE.read_text().replace("{pip_spec}", pip_spec()).rstrip("\n")


SETUP_METADATA = {"grade": False, "grade_id": SETUP_ID, "locked": True, "schema_version": 3, "solution": False,
                  "task": False}


def _cell_id(cell, index: int) -> str:
    grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
    if index == 0 and "colab-badge" in cell.source:
        return BADGE_ID
    return grade_id or f"cell-{index:03d}"


def read_source(assignment: str) -> nbformat.NotebookNode:
    """Read the jupytext source and normalise it into the notebook that nbgrader sees."""
    nb = jupytext.read(source_py(assignment), fmt="py:percent")
    nb.metadata = {"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}}
    for i, cell in enumerate(nb.cells):
        cell.metadata.pop("lines_to_next_cell", None)
        cell.id = _cell_id(cell, i)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return nb


def expected_head(assignment: str) -> list[nbformat.NotebookNode]:
    badge = nbformat.v4.new_markdown_cell(badge_source(assignment))
    badge.id = BADGE_ID
    setup = nbformat.v4.new_code_cell(setup_source(), metadata={"nbgrader": dict(SETUP_METADATA)})
    setup.id = SETUP_ID
    return [badge, setup]


def head_problems(nb: nbformat.NotebookNode, assignment: str) -> list[str]:
    """Why the first two cells are not the course's badge and setup cell (empty when they are)."""
    problems = []
    want = expected_head(assignment)
    for have, expected, what in zip(nb.cells[:2], want, ("Colab badge", "setup cell")):
        if have.source.strip() != expected.source.strip():
            problems.append(f"{assignment}: the {what} differs from the course template")
    if len(nb.cells) < 2 or nb.cells[1].metadata.get("nbgrader") != SETUP_METADATA:
        problems.append(f"{assignment}: the setup cell must be a locked nbgrader cell with grade_id 'setup'")
    return problems


def sync_head(assignment: str) -> bool:
    """Rewrite the badge and setup cell in the jupytext source from the template. True when it changed."""
    path = source_py(assignment)
    nb = jupytext.read(path, fmt="py:percent")
    if not head_problems(read_source(assignment), assignment):
        return False
    head = expected_head(assignment)
    starts = [c.source for c in nb.cells[:2]]
    keep = 2 if starts and "colab-badge" in starts[0] and len(nb.cells) > 1 and "Setup" in nb.cells[1].source else 0
    nb.cells = [copy.deepcopy(c) for c in head] + nb.cells[keep:]
    jupytext.write(nb, path, fmt="py:percent")
    return True


def build(assignment: str) -> Path:
    """Write ``solutions/A/A.ipynb`` from ``solutions/A/A.py``."""
    nb = read_source(assignment)
    out = source_notebook(assignment)
    nbformat.write(nb, out)
    return out


@dataclass
class Item:
    """A graded item: the answer cell defining ``name`` and the test cells that grade it."""

    name: str
    answer: nbformat.NotebookNode
    tests: list[nbformat.NotebookNode]

    @property
    def points(self) -> float:
        return sum(float(t.metadata["nbgrader"].get("points", 0)) for t in self.tests)


TEST_ID = re.compile(r"^test_(?P<name>.+?)(__(?P<part>\w+))?$")


def nbgrader_meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def items(nb: nbformat.NotebookNode) -> list[Item]:
    """The graded items of a notebook, in order, each with its answer cell and test cells."""
    answers = {}
    for cell in nb.cells:
        meta = nbgrader_meta(cell)
        if cell.cell_type == "code" and meta.get("solution") and not meta.get("grade"):
            answers[meta["grade_id"]] = Item(meta["grade_id"], cell, [])
    for cell in nb.cells:
        meta = nbgrader_meta(cell)
        if meta.get("grade") and not meta.get("solution"):
            m = TEST_ID.match(meta["grade_id"])
            if not m or m["name"] not in answers:
                raise ValueError(f"test cell {meta['grade_id']!r} does not name an answer cell (test_NAME[__PART])")
            answers[m["name"]].tests.append(cell)
    return list(answers.values())


def all_sources() -> dict[str, nbformat.NotebookNode]:
    return {a: read_source(a) for a in assignments()}
