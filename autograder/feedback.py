"""Feedback without leaks: a failed hidden test names its item and the kind of failure, never the case.

Every graded item's hidden tests are judged outside the learner's kernel (``autograder/external/``): their text
never enters the notebook, so nothing the kernel printed can hold it. What the grader writes when such a judgement
fails (``HiddenTestFailed``, whose message names the case: the instructor's autograded copy keeps it) is the one
thing to hide. :class:`ScrubFeedback`, in ``GenerateFeedback.preprocessors``,

- turns each of those into a generic line naming the item and the kind of failure;
- puts the grading notes of this submission (preflight repairs, time limits, kernel death, review flags …) at the
  top.
"""

from __future__ import annotations

import html

from nbconvert.preprocessors import Preprocessor
from nbformat import NotebookNode
from traitlets import Bool

from .notebooks import TEST_ID, error_output, nbgrader_meta
from .notes import read_notes


def _generic(item: str, ename: str) -> NotebookNode:
    if ename == "ForbiddenBuiltinError":
        why = "your code calls a built-in that this exercise asks you to write yourself"
    elif ename in ("NameError", "NotImplementedError"):
        why = f"`{item}` is not defined or not implemented"
    else:
        why = ("your answer disagrees with an independent reference on a case the visible tests do not cover "
               "— re-read the docstring (shapes, dtypes, edge cases, large values, gradients, errors to raise)")
    text = f"A hidden test of `{item}` failed ({ename}): {why}."
    return error_output(ename, text)


def _external(out, meta) -> NotebookNode:
    """A failure of the hidden tests judged outside the kernel: the instructor's copy names the case, the learner's
    feedback only the item and the kind of failure."""
    if out.get("output_type") != "error" or out.get("ename") != "HiddenTestFailed" \
            or not out.get("evalue", "").startswith("A hidden test of"):
        return out
    m = TEST_ID.match(meta.get("grade_id", ""))
    evalue = out["evalue"]
    kind = ("ForbiddenBuiltinError" if "forbidden built-in" in evalue else
            "NotImplementedError" if "NameError" in evalue or "NotImplementedError" in evalue else "AssertionError")
    return _generic(m["name"] if m else meta.get("grade_id", "this item"), kind)


class ScrubFeedback(Preprocessor):
    """Run before ``ClearHiddenTests`` in ``GenerateFeedback.preprocessors``."""

    enabled = Bool(True).tag(config=True)  # nbconvert's Preprocessor is off unless told otherwise

    def preprocess(self, nb, resources):
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs = [_external(o, nbgrader_meta(cell)) for o in cell.outputs]
        info = (resources or {}).get("nbgrader", {})
        notes = read_notes(info.get("assignment", ""), info.get("student", "")) if info.get("student") else []
        if notes:
            body = "\n".join(f"- {n}" for n in notes)
            cell = NotebookNode(cell_type="markdown", metadata={}, source=f"**Grading notes**\n\n{body}")
            if "id" in nb.cells[0]:
                cell["id"] = "grading-notes"
            nb.cells.insert(0, cell)
        return nb, resources


def fallback_html(student: str, assignment: str, notes: list[str]) -> str:
    """Feedback for a submission nbgrader could not turn into a notebook at all."""
    items = "".join(f"<li>{html.escape(n)}</li>" for n in notes) or "<li>no notebook could be graded</li>"
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(assignment)}</title></head>"
            f"<body><h1>{html.escape(assignment)} — feedback for {html.escape(student)}</h1>"
            f"<p>Your submission could not be graded automatically; it scored 0.</p><ul>{items}</ul></body></html>")
