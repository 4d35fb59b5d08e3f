"""Points only from the grader's own judgement: the hidden tests judged here, and nbgrader's SaveAutoGrades with two
rules added. Both run in the grader's process (the coordinator, the only writer of the gradebook), after the
notebook was executed — in this process or on a grading worker (``autograder/batch.py``).

:class:`JudgeHidden` judges, for each graded test cell whose visible tests passed, what the probe took back from the
kernel (``resources["attention_steps"]["probes"]``, as bytes) against references computed here from the run's seed
(``autograder/external/``); a failure becomes an error output of the test cell, which the learner's feedback shows.
It also writes the execution notes beside the gradebook.

nbgrader scores a test cell by its outputs: an error scores 0, a number printed as the cell's result
(``execute_result``) is read as partial credit, anything else earns full points. Learner code shares the kernel
with the tests, so it can make a cell end quietly, or display ``'ok'`` or a number, whatever it computed.
:class:`SaveVerifiedGrades` runs in nbgrader's autograde chain in place of ``SaveAutoGrades`` (so the CLI, the
formgrader's Autograde button and any other path that runs that chain use it) and

- drops ``execute_result`` outputs of graded test cells before scoring (no partial credit by display);
- gives a graded test cell its points only when the grader's own judgement of the item (``autograder/external/``),
  made by :class:`JudgeHidden` in this process during this run, passed; otherwise (no verdict, a failed one, or an
  item without a check) the cell gets an error output saying so, and scores 0.
"""

from __future__ import annotations

from nbgrader import utils
from nbgrader.preprocessors import NbGraderPreprocessor, SaveAutoGrades

from . import external
from .notebooks import TEST_ID, error_output
from .notes import write_notes


def _failed(cell) -> bool:
    return any(o.get("output_type") == "error" for o in cell.outputs)


class JudgeHidden(NbGraderPreprocessor):
    """The hidden tests' verdicts, decided here on the kernel's results as data (see the module's docstring)."""

    def preprocess(self, nb, resources):
        found = resources.setdefault("attention_steps", {})
        info = resources.get("nbgrader", {})
        assignment = info.get("assignment", "")
        verdicts = found.setdefault("verdicts", {})
        for cell in nb.cells:
            if not (utils.is_grade(cell) and cell.cell_type == "code" and not utils.is_solution(cell)):
                continue
            grade_id = cell.metadata["nbgrader"]["grade_id"]
            verdicts[grade_id] = False
            if _failed(cell) or not external.has_check(assignment, grade_id) or "seed" not in found:
                continue  # failed visibly (or the guard's integrity check), or nothing to judge with
            verdict = external.judge(assignment, grade_id, int(found["seed"]), found.get("probes", {}).get(grade_id))
            verdicts[grade_id] = verdict.passed
            if not verdict.passed:
                item = m["name"] if (m := TEST_ID.match(grade_id)) else grade_id
                text = f"A hidden test of `{item}` failed: {verdict.message}"
                cell.outputs.append(error_output("HiddenTestFailed", text))
        if info.get("student") and assignment:
            write_notes(assignment, info["student"], "execution", found.get("notes", []))
            write_notes(assignment, info["student"], "kernel", found.get("kernel", ["-1", "0"]))
        return nb, resources


class SaveVerifiedGrades(SaveAutoGrades):
    def preprocess_cell(self, cell, resources, cell_index):
        if utils.is_grade(cell) and cell.cell_type == "code" and not utils.is_solution(cell):
            cell.outputs = [o for o in cell.outputs if o.get("output_type") != "execute_result"]
            grade_id = cell.metadata["nbgrader"]["grade_id"]
            judged = resources.get("attention_steps", {}).get("verdicts", {}).get(grade_id) is True
            if not judged and not _failed(cell):  # fail closed: no verdict of the grader's own, no points
                if external.has_check(resources["nbgrader"]["assignment"], grade_id):
                    text = "the grader's own check of this item did not run, so it cannot earn points"
                else:
                    text = ("the grader has no check of its own for this item (autograder/external/), so it cannot "
                            "earn points")
                cell.outputs.append(error_output("HiddenTestFailed", text))
        return super().preprocess_cell(cell, resources, cell_index)
