"""Do the tests tell right from wrong? Run each graded item's catalog of wrong and correct versions.

One kernel per notebook: the solution notebook runs top to bottom on the grading fast path (every test cell,
hidden ones included, must pass), then for each item every catalogued version is swapped into the kernel in place of
the answer, only that item's test cells run again, and the answer is restored. A wrong version is *rejected* when
at least one of the item's test cells fails; a correct one is *accepted* when all pass. Hidden tests judged outside
the kernel (``autograder/external/``) run exactly as in grading: the probe in the kernel, the judgement here, on
inputs from this run's seed (``AG_HIDDEN_SEED`` repeats one).

Catalogs live in ``tests/catalogs/<assignment>.py`` as ``CATALOG = {item: {"wrong": {label: source},
"right": {label: source}}}``; each source defines the item's name, exactly as a learner's answer cell would.
An item may also name its headline mistakes, ``"visible": {wrong label: phrase}``: the *visible* tests alone (what a
learner sees, before ``### BEGIN HIDDEN TESTS``) must reject that version, and their first failure must say
``phrase`` — the message that names the mistake, not a generic one that comes first.
"""

from __future__ import annotations

import os
import re
import runpy
import secrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from . import external
from .execute import GUARD_FOLDER
from .kernel import Kernel
from .notebooks import items, nbgrader_meta, read_source
from .paths import CATALOGS, SOLUTIONS, assignments

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


def run_solution(kernel: Kernel, nb) -> list[str]:
    """Run every code cell in order; return "grade_id or cell id: error" for each that failed."""
    failures = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        result = kernel.run(cell.source)
        if not result.ok:
            failures.append(f"{nbgrader_meta(cell).get('grade_id', cell.id)}: {result.error}")
    return failures


HIDDEN_BLOCK = re.compile(r"^\s*### BEGIN HIDDEN TESTS.*?^\s*### END HIDDEN TESTS[^\n]*$", re.M | re.S)


def visible_part(source: str) -> str:
    """A test cell as the learner sees it: every hidden block removed."""
    return HIDDEN_BLOCK.sub("", source)


def judge_externally(kernel: Kernel, assignment: str, grade_id: str, seed: int) -> external.Verdict:
    """An item's hidden tests judged outside the kernel, exactly as grading does (``autograder/external/``)."""
    with tempfile.TemporaryDirectory(prefix="ag-probe-") as folder:
        probe = Path(folder) / "probe"
        return external.judge_item(assignment, grade_id, seed, probe, str(probe),
                                   lambda code: kernel.run(code).ok)


def _tests_pass(kernel: Kernel, tests, *, visible_only: bool = False, assignment: str = "",
                seed: int = 0) -> tuple[bool, str]:
    for test in tests:
        grade_id = nbgrader_meta(test)["grade_id"]
        result = kernel.run(visible_part(test.source) if visible_only else test.source)
        if not result.ok:
            return False, f"{grade_id}: {result.error}"
        if not visible_only and external.has_check(assignment, grade_id):
            verdict = judge_externally(kernel, assignment, grade_id, seed)
            if not verdict.passed:
                return False, f"{grade_id}: hidden tests (seed {seed}): {verdict.message}"
    return True, ""


def hidden_test_seed() -> int:
    """The seed of this run's hidden-test inputs: ``AG_HIDDEN_SEED`` to repeat a run, a fresh one otherwise."""
    return int(os.environ.get("AG_HIDDEN_SEED") or secrets.randbits(63))


def _visible_message_problem(kernel: Kernel, tests, label: str, phrase: str) -> str | None:
    """Why the visible tests don't name the headline mistake ``label`` with ``phrase`` (None when they do)."""
    passed, why = _tests_pass(kernel, tests, visible_only=True)
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
        out.failures = run_solution(kernel, nb)
        for item in items(nb):
            for test in item.tests:
                grade_id = nbgrader_meta(test)["grade_id"]
                if external.has_check(assignment, grade_id):
                    verdict = judge_externally(kernel, assignment, grade_id, seed)
                    if not verdict.passed:
                        out.failures.append(f"{grade_id}: hidden tests (seed {seed}): {verdict.message}")
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
                    passed, why = _tests_pass(kernel, item.tests, assignment=assignment, seed=seed)
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
