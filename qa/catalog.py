"""What the catalogs of wrong and right versions (``tests/catalogs/``) are written from: the solutions, and edits.

A wrong version is the solution with one mistake put in, written as :func:`edit` of :func:`solution`: it differs
from the right answer by the mistake alone, so a rejection proves the tests catch *that* mistake, not some other
difference; and when the solution changes so that an edit's target is gone or ambiguous, the catalog fails loudly
instead of quietly testing something else. Right versions are other ways to write the item, in full.
"""

from __future__ import annotations

import re
from functools import cache

from autograder.notebooks import items, read_source

_SOLUTION_MARKERS = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*(\n|\Z)", re.MULTILINE)


def as_typed(source: str) -> str:
    """A solution cell as a learner would have written it: the solution markers gone."""
    return _SOLUTION_MARKERS.sub("", source)


@cache
def solutions(assignment: str) -> dict[str, str]:
    """Each graded item's answer cell in the solution notebook, as a learner would type it."""
    return {item.name: as_typed(item.answer.source) for item in items(read_source(assignment))}


def solution(assignment: str, name: str) -> str:
    return solutions(assignment)[name]


_DOCSTRING = re.compile(r'"""[\s\S]*?"""')


def edit(source: str, *changes: tuple[str, str]) -> str:
    """``source`` with each ``(old, new)`` applied in turn. Every ``old`` must occur exactly once in the code (the
    docstrings, which quote the code they describe, are neither counted nor changed)."""
    for old, new in changes:
        docs = [m.span() for m in _DOCSTRING.finditer(source)]
        found, at = [], source.find(old)
        while at != -1:
            if not any(a <= at < b for a, b in docs):
                found.append(at)
            at = source.find(old, at + 1)
        if len(found) != 1:
            raise ValueError(f"catalog edit: {old!r} occurs {len(found)} times in the code it edits (must be once)")
        source = source[:found[0]] + new + source[found[0] + len(old):]
    return source
