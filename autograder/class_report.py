"""The class at a glance, for the instructor: an HTML report and a grades CSV that Canvas's gradebook imports.

``class_report.html``: per assignment, the distribution of each item's points over the class; the items most
students missed, with the message their failing test cell showed most often (from the autograded notebooks: a
visible test's assertion, or "a hidden test failed"); the flagged submissions with their notes.

``canvas_grades.csv``: Canvas's gradebook import layout (``Student, ID, SIS User ID, SIS Login ID, Section``, then one
column per assignment named as in Canvas, ``Title (canvas assignment id)``, and a ``Points Possible`` row). Which
Canvas student is which grading id comes from ``canvas_roster.csv`` beside the gradebook (see
:data:`ROSTER_HELP`); without it, the grading id goes in ``SIS Login ID`` and Canvas matches on that.
"""

from __future__ import annotations

import csv
import html
from collections import Counter, defaultdict
from pathlib import Path

import nbformat

from .preflight import FLAG

CANVAS_COLUMNS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
ROSTER_HELP = ("canvas_roster.csv: one row per student, columns `student` (the grading id: the folder name of the "
               "submission) and any of Student, ID, SIS User ID, SIS Login ID, Section (copy them from Canvas's "
               "gradebook export). Optional rows with `student` = `@assignment:<id>` and `Student` = the Canvas "
               "column title, e.g. `Notebook 00 (12345)`, name the assignment columns.")


def failure_message(nb_path: Path, item_cells: dict[str, str]) -> dict[str, str]:
    """{item: the first error its test cell showed} for one autograded notebook (items that lost points only)."""
    try:
        nb = nbformat.read(nb_path, as_version=4)
    except (OSError, ValueError):
        return {}
    found = {}
    for cell in nb.cells:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        item = item_cells.get(grade_id or "")
        if not item or item in found:
            continue
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                name, value = out.get("ename", ""), str(out.get("evalue", "")).strip().splitlines()
                found[item] = ("a hidden test failed" if name == "HiddenTestFailed" else
                               f"{name}: {value[0][:200]}" if value else name)
                break
    return found


def _bars(counts: Counter, top: float) -> str:
    most = max(counts.values()) if counts else 1
    rows = []
    for score in sorted(counts):
        width = int(200 * counts[score] / most)
        rows.append(f"<tr><td>{score:g}/{top:g}</td><td><div class='bar' style='width:{width}px'></div></td>"
                    f"<td>{counts[score]}</td></tr>")
    return "<table class='dist'>" + "".join(rows) + "</table>"


def write_html(rows, messages: dict[tuple[str, str], dict[str, str]], path: Path) -> Path:
    """``rows``: grading.Row for every graded submission; ``messages``: (assignment, student) -> {item: message}."""
    parts = ["<!doctype html><meta charset='utf-8'><title>Class report</title><style>"
             "body{font-family:sans-serif;max-width:60em;margin:2em auto}td,th{padding:2px 8px;text-align:left}"
             ".bar{background:#4878a8;height:12px}table.dist td:first-child{text-align:right}</style>",
             "<h1>Class report</h1>"]
    for assignment in sorted({r.assignment for r in rows}):
        these = [r for r in rows if r.assignment == assignment]
        items = list(dict.fromkeys(i for r in these for i in r.items))
        totals = [r.score / r.max_score * 100 if r.max_score else 0 for r in these]
        parts.append(f"<h2>{html.escape(assignment)}</h2><p>{len(these)} submissions; mean "
                     f"{sum(totals) / len(totals):.1f} % of the points; full marks: "
                     f"{sum(r.score >= r.max_score > 0 for r in these)}</p>")
        parts.append("<h3>Points per item</h3>")
        for item in items:
            top = max(r.items.get(item, (0, 0))[1] for r in these)
            counts = Counter(r.items.get(item, (0.0, top))[0] for r in these)
            parts.append(f"<h4>{html.escape(item)}</h4>{_bars(counts, top)}")
        missed = []
        for item in items:
            lost = [r for r in these if r.items.get(item, (0, 0))[0] < r.items.get(item, (0, 0))[1]]
            said = Counter(messages.get((assignment, r.student), {}).get(item, "not run or no message") for r in lost)
            if lost:
                message, times = said.most_common(1)[0]
                missed.append((len(lost), item, message, times))
        parts.append("<h3>Items most students missed</h3><table><tr><th>item</th><th>missed by</th>"
                     "<th>most frequent message</th></tr>")
        for count, item, message, times in sorted(missed, key=lambda m: -m[0]):
            parts.append(f"<tr><td>{html.escape(item)}</td><td>{count} of {len(these)}</td>"
                         f"<td><code>{html.escape(message)}</code> ({times}×)</td></tr>")
        parts.append("</table>")
        flagged = [(r.student, n) for r in these for n in r.notes if n.startswith(FLAG) or "could not" in n]
        parts.append(f"<h3>Flagged submissions ({len({s for s, _ in flagged})})</h3><p>The flag does not change the "
                     "score: read the code.</p><ul>")
        parts += [f"<li><b>{html.escape(s)}</b>: {html.escape(n)}</li>" for s, n in flagged]
        parts.append("</ul>")
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def read_roster(path: Path) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """(student -> Canvas columns, assignment -> Canvas column title) from ``canvas_roster.csv`` (empty without)."""
    students, titles = {}, {}
    if not path.exists():
        return students, titles
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            key = (row.get("student") or "").strip()
            if key.startswith("@assignment:"):
                titles[key.split(":", 1)[1]] = (row.get("Student") or "").strip()
            elif key:
                students[key] = {c: (row.get(c) or "").strip() for c in CANVAS_COLUMNS}
    return students, titles


def write_canvas(rows, roster: Path, path: Path) -> Path:
    """Canvas's gradebook import layout, one row per student, one column per assignment (points)."""
    students, titles = read_roster(roster)
    assignments = sorted({r.assignment for r in rows})
    tops = {a: max(r.max_score for r in rows if r.assignment == a) for a in assignments}
    scores: dict[str, dict[str, float]] = defaultdict(dict)
    for r in rows:
        scores[r.student][r.assignment] = r.score
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow([*CANVAS_COLUMNS, *(titles.get(a, a) for a in assignments)])
        w.writerow(["Points Possible", "", "", "", "", *(f"{tops[a]:g}" for a in assignments)])
        for student in sorted(scores):
            known = students.get(student) or {"Student": student, "SIS Login ID": student}
            w.writerow([known.get(c, "") for c in CANVAS_COLUMNS] +
                       [f"{scores[student][a]:g}" if a in scores[student] else "" for a in assignments])
    return path
