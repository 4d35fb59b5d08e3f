"""The grader's checks run here, in one process, without a kernel: fast enough to judge every catalog version on
many seeds (``tests/test_external.py``, ``python -m qa seeds``).

The probe (``autograder/kernel/grading_probe.py``) runs in-process on a namespace of the notebook's definitions;
grading runs the same probe in the sandboxed kernel, and judges the same way.
"""

from __future__ import annotations

import ast
import asyncio
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from autograder import external
from autograder.execute import GUARD_FOLDER
from autograder.external.probe import Verdict, run_item
from autograder.notebooks import items, nbgrader_meta, read_source

if str(GUARD_FOLDER) not in sys.path:
    sys.path.insert(0, str(GUARD_FOLDER))
import grading_probe  # noqa: E402


def verdict_of(steps, folder: Path, namespace: dict) -> Verdict:
    """:func:`run_item` with the probe run here, in-process, on ``namespace`` (grading runs it in the kernel)."""
    async def here(code: str) -> bool:
        grading_probe.run(str(folder), namespace)
        return True

    return asyncio.run(run_item(steps, folder, str(folder), here))


def solution_definitions(assignment: str) -> dict:
    """The notebook's definitions, run here as plain code: every import, function and class of its code cells other
    than the setup and the tests (answers and given helpers such as 06's check_attention_inputs) and its UPPER_CASE
    constants, nothing else. Outside the answer cells, a definition that needs something else (a constant set inside
    an ``if``) is left out."""
    namespace = {"torch": torch, "nn": torch.nn, "F": torch.nn.functional, "math": math, "np": np}
    for cell in read_source(assignment).cells:
        meta = nbgrader_meta(cell)
        if cell.cell_type != "code" or meta.get("grade") or meta.get("grade_id") == "setup":
            continue
        for node in ast.parse(cell.source).body:
            names = [t for target in getattr(node, "targets", []) for t in getattr(target, "elts", [target])]
            constant = isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) and t.id.isupper() for t in names)
            if constant or isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef)):
                try:
                    exec(compile(ast.Module([node], []), assignment, "exec"), namespace)
                except NameError:
                    if meta.get("solution"):
                        raise
    return namespace


def seed_sweep(assignment: str, seeds: range) -> tuple[list[str], float]:
    """The solution and every right catalog version of every item, judged on each seed of ``seeds``: what failed
    (a right answer that loses points on some grading run is unfair), and the seconds it took."""
    from attention_steps import testing

    from .discrimination import load_catalog

    start = time.perf_counter()
    base = {**vars(testing), **solution_definitions(assignment)}
    catalog, failures = load_catalog(assignment), []
    with tempfile.TemporaryDirectory(prefix="qa-seeds-") as folder:
        for item in items(read_source(assignment)):
            grade_ids = [nbgrader_meta(test)["grade_id"] for test in item.tests]
            for label, source in [("the solution", None), *catalog.get(item.name, {}).get("right", {}).items()]:
                namespace = dict(base)
                if source:
                    exec(source, namespace)
                for seed in seeds:
                    for grade_id in grade_ids:
                        got = verdict_of(external.steps_for(assignment, grade_id, seed),
                                         Path(folder) / f"{grade_id}-{seed}", namespace)
                        if not got.passed:
                            failures.append(f"{assignment} {item.name} [{label}] seed {seed}: {got.message}"[:400])
    return failures, time.perf_counter() - start
