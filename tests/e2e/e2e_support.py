"""Notebook facts the end-to-end tests share: which notebooks exist, their answer cells, solutions, hidden tests.

Everything is read from the tracked files a person would use: ``course/NN/NN.ipynb`` (the release a learner opens)
and ``solutions/NN/NN.ipynb`` (nbgrader's source, built from the jupytext text by ``python -m autograder build``).
"""

from __future__ import annotations

import html
import os
import re
from html.parser import HTMLParser
from pathlib import Path

import nbformat

from qa.catalog import as_typed  # a solution cell as a learner would type it (the demo class uses it too)

ROOT = Path(__file__).resolve().parents[2]
COURSE = ROOT / "course"
SOLUTIONS = ROOT / "solutions"
#: Screenshots and other artefacts a person may want to look at after a run (ignored by git).
ARTIFACTS = Path(os.environ.get("ATTENTION_STEPS_E2E_ARTIFACTS", ROOT / ".bench" / "e2e")).resolve()

#: What matplotlib warns when a font has no glyph for a character (the label would show boxes).
MISSING_GLYPH = re.compile(r"Glyph \d+ .*missing from (current )?font", re.IGNORECASE)


def assignments() -> list[str]:
    """Every notebook of the course: the ``NN_*`` folders of ``course/`` and of ``solutions/``."""
    found = set()
    for top in (COURSE, SOLUTIONS):
        if top.is_dir():
            found.update(p.name for p in top.iterdir() if p.is_dir() and re.match(r"^\d\d_", p.name))
    return sorted(found)


def release_path(assignment: str) -> Path:
    return COURSE / assignment / f"{assignment}.ipynb"


def source_path(assignment: str) -> Path:
    return SOLUTIONS / assignment / f"{assignment}.ipynb"


def read(path: Path) -> nbformat.NotebookNode:
    if not path.exists():
        raise AssertionError(f"{path.relative_to(ROOT)} does not exist")
    return nbformat.read(path, as_version=4)


def meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def is_answer(cell) -> bool:
    m = meta(cell)
    return cell.cell_type == "code" and bool(m.get("solution")) and not m.get("grade")


def is_test(cell) -> bool:
    m = meta(cell)
    return cell.cell_type == "code" and bool(m.get("grade")) and not m.get("solution")


def solutions(assignment: str) -> dict[str, str]:
    """``grade_id`` of each answer cell -> the solution text a learner would paste there."""
    return {meta(c)["grade_id"]: as_typed(c.source) for c in read(source_path(assignment)).cells if is_answer(c)}


def answer_cells(nb: nbformat.NotebookNode) -> list[tuple[int, str]]:
    """(index, grade_id) of each answer cell of a notebook, in order."""
    return [(i, meta(c)["grade_id"]) for i, c in enumerate(nb.cells) if is_answer(c)]


def filled(assignment: str) -> nbformat.NotebookNode:
    """The released notebook with every answer cell replaced by its solution, as a learner would hand it in."""
    nb = read(release_path(assignment))
    sols = solutions(assignment)
    missing = [g for _, g in answer_cells(nb) if g not in sols]
    assert not missing, f"{assignment}: answer cells {missing} have no solution in {source_path(assignment)}"
    for i, grade_id in answer_cells(nb):
        nb.cells[i].source = sols[grade_id]
    return nb


def item_of(grade_id: str) -> str:
    """The graded item a cell belongs to: ``test_NAME`` and ``test_NAME__PART`` belong to ``NAME``."""
    m = re.match(r"^test_(.+?)(__\w+)?$", grade_id)
    return m.group(1) if m else grade_id


def hidden_test_lines(assignment: str) -> list[str]:
    """Lines only the hidden tests hold (none may reach a learner): the grader's checks of the notebook in
    ``autograder/external/`` (the hidden tests never enter the notebook).

    Non-trivial lines that appear nowhere in the release: a check may repeat a visible line, which is no secret.
    """
    from autograder import external

    released = squash("\n".join(c.source for c in read(release_path(assignment)).cells))
    return [line for line in sorted(external.source_lines(assignment)) if squash(line) not in released]


def visible_test_lines(assignment: str) -> list[str]:
    """Non-trivial lines of the released test cells (what feedback shows; a control for the hidden-line search)."""
    lines = []
    for cell in read(release_path(assignment)).cells:
        if is_test(cell):
            lines += [ln.strip() for ln in cell.source.splitlines() if len(ln.strip()) >= 12
                      and not ln.strip().startswith("#")]
    return lines


class _Text(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("style", "script"):
            self._skip += 1

    def handle_endtag(self, tag):
        if tag in ("style", "script") and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def html_text(markup: str) -> str:
    """The text of an HTML page as a reader sees it (tags of syntax highlighting gone, entities decoded)."""
    parser = _Text()
    parser.feed(markup)
    return html.unescape("".join(parser.parts))


def squash(text: str) -> str:
    """Whitespace-insensitive form for "does this code line appear in that page" checks."""
    return re.sub(r"\s+", "", text)


def output_problems(nb: nbformat.NotebookNode) -> list[str]:
    """Why an executed notebook's outputs are not what a learner should see: errors, missing glyphs."""
    problems = []
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.output_type == "error":
                problems.append(f"cell {i} ({meta(cell).get('grade_id', cell.get('id'))}): "
                                f"{out.ename}: {out.evalue}")
            elif out.output_type == "stream" and MISSING_GLYPH.search(out.text):
                problems.append(f"cell {i}: a label has characters its font lacks: {out.text.strip()[:200]}")
    return problems


def image_outputs(nb: nbformat.NotebookNode) -> int:
    return sum("image/png" in out.get("data", {}) for c in nb.cells for out in c.get("outputs", []))
