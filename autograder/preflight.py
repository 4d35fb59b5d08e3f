"""Preflight: compare a submission with the release before nbgrader sees it; repair what nbgrader cannot.

nbgrader grades nothing when a notebook is renamed ("00_orientation (1).ipynb") or is not a notebook, and its own
sanitizers (``DeduplicateIds``, ``OverwriteCells`` with ``add_missing_cells``, ``OverwriteKernelspec``) stop the
whole notebook on a few edits learners make: stripped cell metadata, a copy-pasted or deleted graded cell, a grade id
it does not know (:func:`repair` says which and why). Preflight fixes those in the student's submitted copy, so the
notebook is graded on what the learner wrote, leaves the rest to nbgrader, and returns one line per repair for the
report and the feedback. What it cannot repair (an unreadable file) becomes the blank release, graded 0, with the
reason. It also flags (never scores) code worth a human look.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import nbformat

from .notebooks import TEST_ID, items, nbgrader_meta
from .review import forbidden_in, review

FLAG = "flagged for review"

#: Learner code worth a human look, by pattern: for a cell that does not parse (``review.py`` reads the others).
SUSPICIOUS = {
    "os._exit": r"\bos\s*\.\s*_exit\b",
    "fork/exec": r"\bos\s*\.\s*(fork|exec\w*|kill|killpg|setsid)\b|\bsubprocess\b|\bmultiprocessing\b",
    "signals": r"\bsignal\s*\.\s*(signal|pthread_kill|alarm|setitimer)\b",
    "ctypes": r"\bctypes\b",
    "frame inspection": r"\bsys\s*\.\s*_getframe\b|\binspect\s*\.\s*(currentframe|stack|getsource)\b|\bf_back\b"
                        r"|\blinecache\b",
    "IPython internals": r"\bget_ipython\s*\(\s*\)\s*\.\s*(run_cell|events|input_transformers|ast_transformers)"
                         r"|\b_ih\b|\bIn\s*\[",
    "patching torch or the test helpers": r"\b(torch|np|numpy|attention_steps|testing|builtins)(\.\w+)+\s*=[^=]"
                                          r"|\bsetattr\s*\(\s*(torch|np|numpy|builtins|attention_steps)",
    "torch modes / dispatch internals": r"\bTorch(Function|Dispatch)Mode\b|\bDisableTorch\w*|_DisableTorch\w*"
                                        r"|\b_pop_torch_\w+|\bExcludeDispatchKeyGuard\b",
    "sys.modules": r"\bsys\s*\.\s*modules\b",
    "gc object walking": r"\bgc\s*\.\s*(get_objects|get_referrers)\b",
    "always-equal object": r"def\s+__eq__\s*\([^)]*\)\s*:\s*(\n\s*)?return\s+True",
}

BLANK_ANSWER = "# (the answer cell was missing from the submission)"


def _read(path: Path):
    try:
        return nbformat.read(path, as_version=4), None
    except Exception as e:  # noqa: BLE001 - any unreadable file
        return None, f"{type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}"


def _release_notebooks(release_dir: Path) -> dict[str, nbformat.NotebookNode]:
    return {p.stem: nbformat.read(p, as_version=4) for p in sorted(release_dir.glob("*.ipynb"))}


def _grade_ids(nb) -> set[str]:
    return {nbgrader_meta(c).get("grade_id") for c in nb.cells if nbgrader_meta(c).get("grade_id")}


def find_notebooks(folder: Path, release: dict[str, nbformat.NotebookNode]) -> tuple[dict[str, Path], list[str]]:
    """Map each released notebook name to the submitted file that holds it, renaming strays; return notes."""
    notes = []
    found = {name: folder / f"{name}.ipynb" for name in release if (folder / f"{name}.ipynb").exists()}
    strays = sorted(p for p in folder.rglob("*.ipynb")
                    if ".ipynb_checkpoints" not in p.parts and p not in found.values())
    for name in (n for n in release if n not in found):
        want = _grade_ids(release[name])
        best, best_score = None, -1
        for p in strays:
            nb, _ = _read(p)
            score = len(_grade_ids(nb) & want) if nb is not None else 0
            if score > best_score or (score == best_score and name in p.name):
                best, best_score = p, score
        if best is not None and (best_score > 0 or len(release) == 1):
            target = folder / f"{name}.ipynb"
            best.rename(target)
            strays.remove(best)
            found[name] = target
            notes.append(f"renamed {best.relative_to(folder)} to {target.name}")
    return found, notes


def repair(nb, release_nb) -> list[str]:
    """Prepare ``nb``'s graded cells for nbgrader's sanitizers (in place); return one line per change.

    nbgrader's own steps do most of the work: ``OverwriteCells`` restores locked sources, cell types and points and,
    with ``add_missing_cells``, puts a deleted test cell back after the cell before it; ``OverwriteKernelspec``
    the kernel. What they leave undone, or fail on with a ``KeyError`` that stops the whole notebook (nbgrader
    0.9.6, measured in tests/test_grading_preflight.py), is done here:

    - a grade id the release does not know: ``OverwriteCells`` deletes only the id, and the id-less cell then
      breaks ``add_missing_cells``; the cell becomes an ordinary one;
    - stripped metadata (JupyterLab's "clear metadata", round trips through other tools): nbgrader cannot find the
      graded cells again; found here by cell id, by identical source (locked cells) or by position (answer cells);
    - a copy-pasted graded cell: ``DeduplicateIds`` leaves ``nbgrader: {}`` on the earlier copies, which
      ``add_missing_cells`` fails on; here the last copy keeps the metadata (nbgrader's rule) and the others
      lose it;
    - a deleted cell that is not a test cell (an answer, the locked set-up cell): ``add_missing_cells`` restores
      test cells only, and fails on a test cell whose neighbour is gone; it is put back here. A deleted test cell is
      only noted: nbgrader puts it back.
    """
    notes = []
    rel_cells = [c for c in release_nb.cells if nbgrader_meta(c).get("grade_id")]
    rel_by_id = {nbgrader_meta(c)["grade_id"]: c for c in rel_cells}
    # 1. grade ids the release does not know: ordinary cells again
    for cell in nb.cells:
        gid = nbgrader_meta(cell).get("grade_id")
        if gid not in rel_by_id and "nbgrader" in cell.metadata:
            cell.metadata.pop("nbgrader")
            if gid is not None:
                notes.append(f"cell with unknown grade id {gid!r} made an ordinary cell")
    # 2. stripped metadata: find each missing graded cell by cell id, by identical source (locked cells), or as the
    #    code cell just before its test cell (answer cells)
    present = {nbgrader_meta(c).get("grade_id") for c in nb.cells}
    restored = []
    for gid, rel in rel_by_id.items():
        if gid in present:
            continue
        match = None
        for cell in nb.cells:
            if nbgrader_meta(cell) or cell.cell_type != rel.cell_type:
                continue
            if cell.get("id") == rel.get("id") or (nbgrader_meta(rel).get("locked")
                                                   and cell.source.strip() == rel.source.strip()):
                match = cell
                break
        if match is None and nbgrader_meta(rel).get("solution") and rel.cell_type == "code":
            match = _answer_by_position(nb, gid)
        if match is not None:
            match.metadata["nbgrader"] = copy.deepcopy(nbgrader_meta(rel))
            present.add(gid)
            restored.append(gid)
    if restored:
        notes.append(f"restored the grading metadata of {len(restored)} cell(s): {', '.join(restored)}")
    # 3. duplicates: the last copy is the graded one (nbgrader's rule), the others ordinary cells
    for gid in rel_by_id:
        copies = [c for c in nb.cells if nbgrader_meta(c).get("grade_id") == gid]
        for c in copies[:-1]:
            c.metadata.pop("nbgrader")
        if len(copies) > 1:
            notes.append(f"cell {gid!r} appeared {len(copies)} times: the last copy is graded, the others became "
                         "ordinary cells")
    # 4. deleted: an answer or locked cell is put back after the previous graded cell; a test cell is left to nbgrader
    present = {nbgrader_meta(c).get("grade_id") for c in nb.cells}
    previous = None
    for rel in rel_cells:
        gid = nbgrader_meta(rel)["grade_id"]
        if gid in present:
            previous = gid
            continue
        if nbgrader_meta(rel).get("grade"):
            notes.append(f"test cell {gid!r} was deleted: nbgrader puts it back from the release")
            continue
        new = copy.deepcopy(rel)
        if nbgrader_meta(rel).get("solution") and rel.cell_type == "code":
            new.source = BLANK_ANSWER
            notes.append(f"answer cell {gid!r} was deleted: an empty one was put back (its tests score 0 unless the "
                         "answer is defined elsewhere)")
        else:
            notes.append(f"cell {gid!r} was deleted: put back from the release")
        new["id"] = f"{gid}-restored" if any(c.get("id") == rel.get("id") for c in nb.cells) else rel.get("id")
        at = _index_after(nb, previous) if previous else min(release_nb.cells.index(rel), len(nb.cells))
        nb.cells.insert(at, new)
        present.add(gid)
        previous = gid
    return notes


def _tests_item(cell, name: str) -> bool:
    m = TEST_ID.match(nbgrader_meta(cell).get("grade_id", "") or "")
    return bool(m and m["name"] == name and nbgrader_meta(cell).get("grade"))


def _answer_by_position(nb, name: str):
    for i, cell in enumerate(nb.cells):
        if _tests_item(cell, name):
            for j in range(i - 1, -1, -1):
                prev = nb.cells[j]
                if prev.cell_type != "code" or not prev.source.strip():
                    continue
                if nbgrader_meta(prev):
                    return None
                if re.search(rf"\b(def|class)\s+{re.escape(name)}\b", prev.source) or "NotImplementedError" in \
                        prev.source:
                    return prev
                return None
    pattern = re.compile(rf"^\s*(def|class)\s+{re.escape(name)}\b", re.MULTILINE)
    matches = [c for c in nb.cells if c.cell_type == "code" and not nbgrader_meta(c) and pattern.search(c.source)]
    return matches[-1] if matches else None


def _index_after(nb, gid: str) -> int:
    for i, cell in enumerate(nb.cells):
        if nbgrader_meta(cell).get("grade_id") == gid:
            return i + 1
    return len(nb.cells)


def flags(nb, release_nb) -> list[str]:
    """What in the learner's own code is worth a human look (``review.py``; never changes a score): the code cells
    the learner wrote or changed — an experiment cell of the release left as it was (09 compares with torch's own
    attention there) is the course's code, not the learner's."""
    locked = {nbgrader_meta(c)["grade_id"] for c in release_nb.cells if nbgrader_meta(c).get("locked")}
    given = {c.source for c in release_nb.cells if c.cell_type == "code"}
    learner = [c for c in nb.cells if c.cell_type == "code" and nbgrader_meta(c).get("grade_id") not in locked
               and c.source not in given]
    tests = {item.name: [t.source for t in item.tests] for item in items(release_nb)}  # item name -> its tests
    anywhere = forbidden_in([source for sources in tests.values() for source in sources])
    hits: set[str] = set()
    for cell in learner:  # an answer cell against its own item's forbidden built-ins (10's sampler may use softmax)
        item = nbgrader_meta(cell).get("grade_id") if nbgrader_meta(cell).get("solution") else None
        forbidden = forbidden_in(tests[item]) if item in tests else anywhere
        hits.update(review([cell.source], forbidden, fallback=SUSPICIOUS))
    return [f"{FLAG}: the learner's code uses {', '.join(sorted(hits))}"] if hits else []


def preflight(folder: Path, release_dir: Path) -> list[str]:
    """Repair one student's submission folder for one assignment in place; return what was done."""
    release = _release_notebooks(release_dir)
    found, notes = find_notebooks(folder, release)
    for name, rel in release.items():
        path = found.get(name)
        if path is None:
            notes.append(f"no {name}.ipynb in the submission: graded the blank release (0 points)")
            nbformat.write(rel, folder / f"{name}.ipynb")
            continue
        nb, error = _read(path)
        if nb is None:
            try:
                nb = nbformat.from_dict(json.loads(path.read_text(errors="replace")))
                nbformat.validator.normalize(nb)
            except Exception:  # noqa: BLE001
                nb = None
        if nb is None:
            notes.append(f"{path.name} is not a readable notebook ({error}): graded the blank release (0 points)")
            nbformat.write(rel, path)
            continue
        for cell in nb.cells:
            cell.setdefault("metadata", {})
            if cell.cell_type == "code":
                cell.setdefault("outputs", [])
                cell.setdefault("execution_count", None)
        notes += repair(nb, rel)
        notes += flags(nb, rel)
        nbformat.validator.normalize(nb)
        nbformat.write(nb, path)
    return notes
