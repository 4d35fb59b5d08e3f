"""Feedback without leaks: what nbgrader's ClearHiddenTests leaves behind, removed.

ClearHiddenTests removes the hidden tests' *source* from the feedback, but not what they *printed*: the traceback
of a failed hidden test shows the failing line and its neighbours, an assertion message names the hidden case, and
learner code that ran during (or after) the hidden tests can print their text (IPython keeps every cell's source
in ``linecache`` and ``In``). :class:`ScrubFeedback` runs before ClearHiddenTests and

- in a test cell with hidden tests keeps no printed output and no traceback; an error raised in the visible part
  keeps its one-line message (the learner can see that code anyway), an error in the hidden part becomes a
  generic line naming the item and the kind of failure; so does a failure of the hidden tests judged outside the
  kernel (``HiddenTestFailed``, whose full text, naming the case, stays in the instructor's autograded copy);
- removes, anywhere in the notebook, every output that contains a line of any hidden test;
- puts the grading notes of this submission (preflight repairs, time limits, kernel death …) at the top.
"""

from __future__ import annotations

import html
import re

from nbconvert.preprocessors import Preprocessor
from nbformat import NotebookNode
from traitlets import Bool

from .notebooks import TEST_ID, nbgrader_meta
from .notes import read_notes

BEGIN, END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
#: errors the grader itself writes (autograder/execute.py): their text never comes from the tests
GRADER_ERRORS = {"NotRun", "KernelDied", "TimeoutError", "IntegrityError"}
_CELL_LINE = re.compile(r"(?:Cell In\s*\[\d*\],\s*line\s*|<ipython-input-[^>]*>[^\n]*\n(?:.*\n)*?---->\s*)(\d+)")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def hidden_lines(nb) -> set[str]:
    """Every distinctive line of every hidden test block in the notebook."""
    lines = set()
    for cell in nb.cells:
        inside = False
        for line in cell.source.splitlines():
            s = line.strip()
            if s.startswith(BEGIN):
                inside = True
            elif s.startswith(END):
                inside = False
            elif inside and len(s) >= 12 and not s.startswith("#"):
                lines.add(s)
    return lines


def _text(out) -> str:
    if out.get("output_type") == "stream":
        return out.get("text", "")
    if out.get("output_type") == "error":
        return "\n".join([out.get("evalue", ""), *out.get("traceback", [])])
    return "\n".join(v if isinstance(v, str) else str(v) for v in out.get("data", {}).values())


def _leaks(out, lines: set[str]) -> bool:
    text = _ANSI.sub("", _text(out))
    return any(line in text for line in lines)


def _failing_line(out) -> int | None:
    text = _ANSI.sub("", "\n".join(out.get("traceback", [])))
    m = _CELL_LINE.search(text)
    return int(m.group(1)) if m else None


def _generic(item: str, ename: str) -> NotebookNode:
    if ename == "ForbiddenBuiltinError":
        why = "your code calls a built-in that this exercise asks you to write yourself"
    elif ename in ("NameError", "NotImplementedError"):
        why = f"`{item}` is not defined or not implemented"
    else:
        why = ("your answer disagrees with an independent reference on a case the visible tests do not cover "
               "— re-read the docstring (shapes, dtypes, edge cases, large values, gradients, errors to raise)")
    text = f"A hidden test of `{item}` failed ({ename}): {why}."
    return NotebookNode(output_type="error", ename=ename, evalue=text, traceback=[f"{ename}: {text}"])


def _message_only(out, lines: set[str]) -> NotebookNode:
    evalue = out.get("evalue", "")
    if any(line in evalue for line in lines):
        evalue = "(message removed)"
    ename = out.get("ename", "Error")
    return NotebookNode(output_type="error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


def _external(out, meta) -> NotebookNode:
    """A failure of the hidden tests judged outside the kernel (autograder/external/): the instructor's copy names the
    case, the learner's feedback only the item and the kind of failure, as for hidden tests in the notebook."""
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
        lines = hidden_lines(nb)
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            meta = nbgrader_meta(cell)
            cell.outputs = [_external(o, meta) for o in cell.outputs]
            if meta.get("grade") and BEGIN in cell.source:
                cell.outputs = self._test_outputs(cell, meta, lines)
            else:
                cell.outputs = [o if not _leaks(o, lines) else NotebookNode(
                    output_type="stream", name="stderr",
                    text="[output removed from the feedback: it contained grading code]\n") for o in cell.outputs]
        info = (resources or {}).get("nbgrader", {})
        notes = read_notes(info.get("assignment", ""), info.get("student", "")) if info.get("student") else []
        if notes:
            body = "\n".join(f"- {n}" for n in notes)
            cell = NotebookNode(cell_type="markdown", metadata={}, source=f"**Grading notes**\n\n{body}")
            if "id" in nb.cells[0]:
                cell["id"] = "grading-notes"
            nb.cells.insert(0, cell)
        return nb, resources

    @staticmethod
    def _test_outputs(cell, meta, lines):
        hidden_from = next((i + 1 for i, line in enumerate(cell.source.splitlines()) if line.strip().startswith(BEGIN)),
                           None)
        m = TEST_ID.match(meta.get("grade_id", ""))
        item = m["name"] if m else meta.get("grade_id", "this item")
        kept = []
        for out in cell.outputs:
            if out.get("output_type") != "error":
                continue  # printed output of a hidden test cell: never shown
            ename = out.get("ename", "Error")
            if ename in GRADER_ERRORS:
                kept.append(out)
                continue
            at = _failing_line(out)
            if at is not None and hidden_from is not None and at < hidden_from:
                kept.append(_message_only(out, lines))
            else:
                kept.append(_generic(item, ename))
        return kept


def fallback_html(student: str, assignment: str, notes: list[str]) -> str:
    """Feedback for a submission nbgrader could not turn into a notebook at all."""
    items = "".join(f"<li>{html.escape(n)}</li>" for n in notes) or "<li>no notebook could be graded</li>"
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(assignment)}</title></head>"
            f"<body><h1>{html.escape(assignment)} — feedback for {html.escape(student)}</h1>"
            f"<p>Your submission could not be graded automatically; it scored 0.</p><ul>{items}</ul></body></html>")
