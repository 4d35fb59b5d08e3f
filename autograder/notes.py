"""One-line notes per student and assignment (preflight repairs, execution problems), kept beside the gradebook.

They reach the grade table, ``grades.csv`` and the top of the student's feedback.
"""

from __future__ import annotations

import json

from .paths import GRADING

STAGES = ("preflight", "execution", "integrity")


def _path(assignment: str, student: str, stage: str):
    return GRADING / "notes" / student / assignment / f"{stage}.json"


def write_notes(assignment: str, student: str, stage: str, notes: list[str]) -> None:
    path = _path(assignment, student, stage)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(list(notes), indent=1))


def clear_notes(assignment: str, student: str) -> None:
    for stage in (*STAGES, "kernel"):
        _path(assignment, student, stage).unlink(missing_ok=True)


def read_notes(assignment: str, student: str) -> list[str]:
    notes: list[str] = []
    for stage in STAGES:
        path = _path(assignment, student, stage)
        if path.exists():
            try:
                notes += [n for n in json.loads(path.read_text()) if n not in notes]
            except ValueError:
                continue
    return notes
