"""Points only from the grader's own judgement: nbgrader's SaveAutoGrades, with two rules added.

nbgrader scores a test cell by its outputs: an error scores 0, a number printed as the cell's result
(``execute_result``) is read as partial credit, anything else earns full points. Learner code shares the kernel
with the tests, so it can make a cell end quietly, or display ``'ok'`` or a number, whatever it computed.
:class:`SaveVerifiedGrades` runs in nbgrader's autograde chain in place of ``SaveAutoGrades`` (so the CLI, the
formgrader's Autograde button and any other path that runs that chain use it) and

- drops ``execute_result`` outputs of graded test cells before scoring (no partial credit by display);
- gives a graded test cell its points only when the grader's own judgement of the item (``autograder/external/``),
  made by :class:`autograder.execute.SandboxExecute` in this process during this run, passed; otherwise (no
  verdict, a failed one, or an item without a check) the cell gets an error output saying so, and scores 0.
"""

from __future__ import annotations

from nbformat import NotebookNode
from nbgrader import utils
from nbgrader.preprocessors import SaveAutoGrades

from . import external


class SaveVerifiedGrades(SaveAutoGrades):
    def preprocess_cell(self, cell, resources, cell_index):
        if utils.is_grade(cell) and cell.cell_type == "code" and not utils.is_solution(cell):
            cell.outputs = [o for o in cell.outputs if o.get("output_type") != "execute_result"]
            grade_id = cell.metadata["nbgrader"]["grade_id"]
            judged = resources.get("attention_steps", {}).get("verdicts", {}).get(grade_id) is True
            failed = any(o.get("output_type") == "error" for o in cell.outputs)
            if not judged and not failed:  # fail closed: no verdict of the grader's own, no points
                if external.has_check(resources["nbgrader"]["assignment"], grade_id):
                    text = "the grader's own check of this item did not run, so it cannot earn points"
                else:
                    text = ("the grader has no check of its own for this item (autograder/external/), so it cannot "
                            "earn points")
                cell.outputs.append(NotebookNode(output_type="error", ename="HiddenTestFailed", evalue=text,
                                                 traceback=[f"HiddenTestFailed: {text}"]))
        return super().preprocess_cell(cell, resources, cell_index)
