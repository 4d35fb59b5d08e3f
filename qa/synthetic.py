"""Synthetic classes: honest submissions of one notebook, built from its catalog (``tests/catalogs/``).

Student ``sNNN`` gets, in turn: the solution as typed; another right way to write an item (the catalog's right
versions); one item wrong; two items wrong (the catalog's wrong versions, drawn with a fixed seed); the blank
release. Used by the class-grading tests (a mixed class graded several ways must get the same rows) and by
``benchmarks/class_grading.py``.
"""

from __future__ import annotations

import random
from pathlib import Path

import nbformat

from autograder.paths import release_notebook

from .catalog import solutions
from .discrimination import load_catalog

KINDS = ("right", "alternative", "one wrong", "two wrong", "blank")


def build_class(assignment: str, count: int, out_dir: Path, *, seed: int = 0,
                extra: dict[str, dict[str, str]] | None = None) -> dict[str, str]:
    """Write ``count`` submissions (and ``extra``: student -> {item: source}) under ``out_dir``, laid out
    ``<student>/<assignment>/<assignment>.ipynb``; return {student: what the submission is}."""
    rng = random.Random(seed)
    typed, catalog = solutions(assignment), load_catalog(assignment)
    wrongs = [(item, label) for item in typed for label in catalog.get(item, {}).get("wrong", {})]
    rights = [(item, label) for item in typed for label in catalog.get(item, {}).get("right", {})]
    made: dict[str, str] = {}
    plans: dict[str, dict[str, str] | None] = {}
    for number in range(count):
        kind, answers, what = KINDS[number % len(KINDS)], dict(typed), []
        if kind == "blank":
            plans[f"s{number:03d}"], made[f"s{number:03d}"] = None, "blank"
            continue
        if kind == "alternative" and rights:
            item, label = rng.choice(rights)
            answers[item] = catalog[item]["right"][label]
            what.append(f"{item}: right, {label}")
        if kind in ("one wrong", "two wrong") and wrongs:
            for item, label in rng.sample(wrongs, 1 if kind == "one wrong" else min(2, len(wrongs))):
                answers[item] = catalog[item]["wrong"][label]
                what.append(f"{item}: wrong, {label}")
        plans[f"s{number:03d}"], made[f"s{number:03d}"] = answers, "; ".join(what) or "the solution"
    for student, answers in (extra or {}).items():
        plans[student], made[student] = {**typed, **answers}, "; ".join(f"{i}: special" for i in answers)
    for student, answers in plans.items():
        nb = nbformat.read(release_notebook(assignment), as_version=4)
        for cell in nb.cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            if answers is not None and grade_id in answers:
                cell.source = answers[grade_id]
        out = out_dir / student / assignment / f"{assignment}.ipynb"
        out.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, out)
    return made
