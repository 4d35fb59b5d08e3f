"""The bundled demo class: three submissions of notebook 00 that ``python -m autograder grade`` grades headless.

- ``alice``: every answer correct (the solutions, as a learner would type them) — full marks;
- ``bob``: ``softmax`` without subtracting the maximum (overflows on large inputs), ``one_hot_embed`` correct;
- ``carol``: the blank release, nothing filled in — zero.

Rebuilt by ``python -m autograder release`` from ``course/`` and ``solutions/``, so it always matches them.
"""

from __future__ import annotations

import nbformat

from autograder.paths import DEMO_CLASS, release_notebook

from .catalog import solutions
from .discrimination import load_catalog

ASSIGNMENT = "00_orientation"
#: student -> {item: label of the wrong version from the item's catalog}
STUDENTS = {"alice": {}, "bob": {"softmax": "no max subtraction (overflows for large inputs)"}, "carol": None}
EXPECTED = {"alice": (5.0, 5.0), "bob": (2.0, 5.0), "carol": (0.0, 5.0)}

def build_demo_class() -> None:
    typed = solutions(ASSIGNMENT)
    catalog = load_catalog(ASSIGNMENT)
    for student, wrong in STUDENTS.items():
        nb = nbformat.read(release_notebook(ASSIGNMENT), as_version=4)
        if wrong is not None:
            for cell in nb.cells:
                grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
                if grade_id in typed:
                    cell.source = catalog[grade_id]["wrong"][wrong[grade_id]] if grade_id in wrong \
                        else typed[grade_id]
        out = DEMO_CLASS / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
        out.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, out)
