"""Do the tests tell right from wrong? Run each graded item's catalog of wrong and correct versions.

One kernel per notebook: the solution notebook runs top to bottom on the grading fast path (every test cell, and
its hidden tests, must pass), then for each item every catalogued version is swapped into the kernel in place of
the answer, only that item's test cells run again, and the answer is restored. A wrong version is *rejected* when
at least one of the item's test cells fails; a correct one is *accepted* when all pass. Hidden tests judged outside
the kernel (``autograder/external/``) run exactly as in grading: the probe in the kernel, the judgement here, on
inputs from this run's seed (``AG_HIDDEN_SEED`` repeats one).

Catalogs live in ``tests/catalogs/<assignment>.py`` as ``CATALOG = {item: {"wrong": {label: source},
"right": {label: source}}}``; each source defines the item's name, exactly as a learner's answer cell would. Wrong
versions are edits of the solution (``qa/catalog.py``).
An item may also name its headline mistakes, ``"visible": {wrong label: phrase}``: the *visible* tests alone (the
test cells a learner sees, without the hidden tests) must reject that version, and their first failure must say
``phrase`` — the message that names the mistake, not a generic one that comes first.
"""

from __future__ import annotations

import asyncio
import os
import runpy
import secrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from autograder import external
from autograder.execute import GUARD_FOLDER
from autograder.notebooks import items, nbgrader_meta, read_source
from autograder.paths import ROOT, SOLUTIONS, assignments

from .kernel import Kernel

#: where the catalogs live: QA data, read by the QA tools only, never by grading
CATALOGS = ROOT / "tests" / "catalogs"
MIN_WRONG, MIN_RIGHT = 3, 2


@dataclass
class ItemResult:
    assignment: str
    item: str
    wrong_rejected: list[str] = field(default_factory=list)
    wrong_accepted: list[str] = field(default_factory=list)
    right_accepted: list[str] = field(default_factory=list)
    right_rejected: dict[str, str] = field(default_factory=dict)  # label -> first failing test's error
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.wrong_accepted or self.right_rejected or self.problems)


@dataclass
class NotebookResult:
    assignment: str
    failures: list[str] = field(default_factory=list)  # cells of the solution notebook that failed
    items: list[ItemResult] = field(default_factory=list)
    seconds: float = 0.0


def load_catalog(assignment: str) -> dict:
    path = CATALOGS / f"{assignment}.py"
    if not path.exists():
        return {}
    return runpy.run_path(str(path))["CATALOG"]


def judge_externally(kernel: Kernel, assignment: str, grade_id: str, seed: int) -> external.Verdict:
    """An item's hidden tests judged outside the kernel, exactly as grading does (``autograder/external/``)."""
    with tempfile.TemporaryDirectory(prefix="ag-probe-") as folder:
        probe = Path(folder) / "probe"
        async def in_kernel(code: str) -> bool:
            return kernel.run(code).ok

        return asyncio.run(external.judge_item(assignment, grade_id, seed, probe, str(probe), in_kernel))


def run_test(kernel: Kernel, test, assignment: str, seed: int, *, visible_only: bool = False) -> str | None:
    """Run one test cell and, unless ``visible_only``, judge its hidden tests; why it failed (None if it passed)."""
    grade_id = nbgrader_meta(test)["grade_id"]
    result = kernel.run(test.source)
    if not result.ok:
        return f"{grade_id}: {result.error}"
    if not visible_only:
        verdict = judge_externally(kernel, assignment, grade_id, seed)
        if not verdict.passed:
            return f"{grade_id}: hidden tests (seed {seed}): {verdict.message}"
    return None


def run_solution(kernel: Kernel, nb, assignment: str, seed: int) -> list[str]:
    """Run every code cell in order, judging each test cell's hidden tests as grading does; what failed."""
    failures = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        if nbgrader_meta(cell).get("grade"):
            problem = run_test(kernel, cell, assignment, seed)
        else:
            result = kernel.run(cell.source)
            problem = None if result.ok else f"{nbgrader_meta(cell).get('grade_id', cell.id)}: {result.error}"
        failures += [problem] if problem else []
    return failures


def _tests_pass(kernel: Kernel, tests, assignment: str, seed: int, *, visible_only: bool = False) -> tuple[bool, str]:
    for test in tests:
        problem = run_test(kernel, test, assignment, seed, visible_only=visible_only)
        if problem:
            return False, problem
    return True, ""


def hidden_test_seed() -> int:
    """The seed of this run's hidden-test inputs: ``AG_HIDDEN_SEED`` to repeat a run, a fresh one otherwise."""
    return int(os.environ.get("AG_HIDDEN_SEED") or secrets.randbits(63))


def _visible_message_problem(kernel: Kernel, tests, label: str, phrase: str) -> str | None:
    """Why the visible tests don't name the headline mistake ``label`` with ``phrase`` (None when they do)."""
    passed, why = _tests_pass(kernel, tests, "", 0, visible_only=True)
    if passed:
        return f"headline mistake {label!r} passes the visible tests"
    if phrase.lower() not in why.lower():
        return f"headline mistake {label!r}: the visible tests' first failure does not say {phrase!r}: {why}"
    return None


def check_notebook(assignment: str) -> NotebookResult:
    import time

    start = time.perf_counter()
    nb = read_source(assignment)
    catalog = load_catalog(assignment)
    out = NotebookResult(assignment)
    seed = hidden_test_seed()
    path = os.pathsep.join(filter(None, [str(GUARD_FOLDER), os.environ.get("PYTHONPATH", "")]))
    with Kernel(SOLUTIONS / assignment, fast=True, extra_env={"PYTHONPATH": path}) as kernel:
        out.failures = run_solution(kernel, nb, assignment, seed)
        for item in items(nb):
            res = ItemResult(assignment, item.name)
            out.items.append(res)
            entry = catalog.get(item.name)
            if entry is None:
                res.problems.append("no catalog entry")
                continue
            wrong, right, visible = entry.get("wrong", {}), entry.get("right", {}), entry.get("visible", {})
            res.problems += [f"headline mistake {label!r} is not in the wrong versions" for label in visible
                             if label not in wrong]
            if len(wrong) < MIN_WRONG or len(right) < MIN_RIGHT:
                res.problems.append(f"catalog has {len(wrong)} wrong / {len(right)} right versions "
                                    f"(at least {MIN_WRONG} / {MIN_RIGHT} needed)")
            for kind, versions in (("wrong", wrong), ("right", right)):
                for label, source in versions.items():
                    defined = kernel.run(source)
                    if not defined.ok:
                        res.problems.append(f"{kind} version {label!r} does not even run: {defined.error}")
                        continue
                    if kind == "wrong" and label in visible:
                        problem = _visible_message_problem(kernel, item.tests, label, visible[label])
                        res.problems += [problem] if problem else []
                    passed, why = _tests_pass(kernel, item.tests, assignment, seed)
                    if kind == "wrong":
                        (res.wrong_accepted if passed else res.wrong_rejected).append(label)
                    elif passed:
                        res.right_accepted.append(label)
                    else:
                        res.right_rejected[label] = why
                    restored = kernel.run(item.answer.source)
                    if not restored.ok:
                        res.problems.append(f"restoring the solution of {item.name} failed: {restored.error}")
    out.seconds = time.perf_counter() - start
    return out


def discrimination_table(which: list[str] | None = None) -> tuple[str, bool]:
    """Run every notebook's catalog and format the table; the flag is True when everything is 100 % / 100 %."""
    rows, ok, details = [], True, []
    for a in which or assignments():
        result = check_notebook(a)
        if result.failures:
            ok = False
            details += [f"{a}: solution cell failed: {f}" for f in result.failures]
        for r in result.items:
            n_wrong = len(r.wrong_rejected) + len(r.wrong_accepted)
            n_right = len(r.right_accepted) + len(r.right_rejected)
            pct = lambda k, n: f"{k}/{n} ({100 * k / n:.0f} %)" if n else "0/0"
            rows.append((a, r.item, pct(len(r.wrong_rejected), n_wrong), pct(len(r.right_accepted), n_right)))
            ok &= r.ok
            details += [f"{a}.{r.item}: WRONG VERSION ACCEPTED: {w}" for w in r.wrong_accepted]
            details += [f"{a}.{r.item}: CORRECT VERSION REJECTED: {k} ({v})" for k, v in r.right_rejected.items()]
            details += [f"{a}.{r.item}: {p}" for p in r.problems]
        rows.append((a, f"(solution run + catalog: {result.seconds:.1f} s)", "", ""))
    head = ("notebook", "item", "wrong rejected", "correct accepted")
    widths = [max(len(x[i]) for x in [head, *rows]) for i in range(4)]
    fmt = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths))
    lines = [fmt(head), fmt(tuple("-" * w for w in widths)), *map(fmt, rows)]
    if details:
        lines += ["", *details]
    return "\n".join(lines), ok
