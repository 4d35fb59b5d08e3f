"""A class graded four ways, on one machine, one after the other (never two at once):

    .venv/bin/python -m benchmarks.class_grading [--count 200] [--assignment 05_dot_product_attention]
                                                 [--modes nbgrader,jobs1,jobs2,dask]

The class: ``--count`` honest submissions built from the assignment's catalog (qa/synthetic.py: right, another
right way, one or two items wrong, blank). The ways: plain ``nbgrader autograde`` (its own Execute and
SaveAutoGrades, serial, no sandbox, no hidden-test judgement: the peer); ``grade --jobs 1``; ``grade --jobs 2``;
``grade --scheduler`` on a local Dask cluster of two workers (qa/dask_cluster.py); and ``--jobs 1`` with no kernel
started ahead (``jobs1-nospare``: what the kernel started ahead saves). Each grades into a fresh folder.

Prints submissions per minute, and per submission: seconds by phase on the worker (sandbox + kernel start with the
grading preamble's imports, the cells, shutdown) and CPU seconds by phase (coordinator: preflight + nbgrader's
bookkeeping + sanitizing; coordinator: judging + saving; worker: the kernel and its sandbox), and how many of the
machine's cores the run kept busy (all processes, from psutil's system CPU times): a way that already keeps most
cores busy cannot be sped up by more workers.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from autograder.paths import ROOT

PLAIN_NBGRADER = """
import os, sys, time
from nbgrader.apps import NbGraderAPI
from autograder import grading
from autograder.config import course_config
from autograder.paths import GRADING
assignment, students = sys.argv[1], sys.argv[2:]
grading._ensure_in_gradebook(assignment)
config = course_config(release_dir=GRADING / "release")
from nbconvert.preprocessors import ClearMetadataPreprocessor
from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, Execute, IgnorePattern, LimitOutput,
                                    SaveAutoGrades)
config.Autograde.autograde_preprocessors = [Execute, IgnorePattern, ClearMetadataPreprocessor, LimitOutput,
                                            SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]
api = NbGraderAPI(config=config)
start = time.perf_counter()
for student in students:
    assert api.autograde(assignment, student, force=True, create=True)["success"], student
print(time.perf_counter() - start)
"""


def _env(grading: Path) -> dict:
    return dict(os.environ, ATTENTION_STEPS_GRADING_DIR=str(grading), PYTHONPATH=str(ROOT))


def _plain(assignment: str, klass: Path, grading: Path, students: list[str]) -> float:
    for student in students:  # nbgrader's own layout, no preflight
        shutil.copytree(klass / student / assignment, grading / "submitted" / student / assignment)
    out = subprocess.run([sys.executable, "-c", PLAIN_NBGRADER, assignment, *students], cwd=ROOT,
                         env=_env(grading), capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def _grade(assignment: str, klass: Path, grading: Path, *args: str, spare: bool = True) -> float:
    start = time.perf_counter()
    env = _env(grading) if spare else dict(_env(grading), ATTENTION_STEPS_NO_SPARE="1")
    subprocess.run([sys.executable, "-m", "autograder", "grade", str(klass), "--assignment", assignment,
                    "--no-progress", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return time.perf_counter() - start


def _phases(grading: Path) -> dict[str, float]:
    """Medians per submission over the done records of one run."""
    per: dict[str, list[float]] = {}
    for path in (grading / "done").rglob("*.json"):
        record = json.loads(path.read_text())
        for name, value in record.get("coordinator cpu", {}).items():
            per.setdefault(f"coordinator cpu: {name}", []).append(value)
        for worker in record.get("worker", {}).values():
            for name, value in worker.items():
                if isinstance(value, (int, float)):
                    per.setdefault(name, []).append(value)
    return {name: statistics.median(values) for name, values in per.items()}


def _busy_seconds() -> float:
    """CPU seconds the whole machine has spent not idle (every process: coordinator, workers, kernels, sandboxes)."""
    times = psutil.cpu_times()  # Linux: guest time is already inside user; steal is the hypervisor's, not ours
    return times.user + times.nice + times.system + getattr(times, "irq", 0.0) + getattr(times, "softirq", 0.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--assignment", default="05_dot_product_attention")
    parser.add_argument("--modes", default="nbgrader,jobs1-nospare,jobs1,jobs2,dask")
    args = parser.parse_args(argv)
    from qa.dask_cluster import Cluster
    from qa.synthetic import build_class

    base = Path(tempfile.mkdtemp(prefix="class-bench-"))
    os.environ.setdefault("AG_CELL_TIMEOUT", "60")
    try:
        klass = base / "class"
        students = sorted(build_class(args.assignment, args.count, klass))
        print(f"{args.count} submissions of {args.assignment}; {os.cpu_count()} CPUs; "
              f"load {os.getloadavg()[0]:.1f} at the start")
        results = {}
        for mode in args.modes.split(","):
            grading = base / mode
            grading.mkdir()
            busy_before = _busy_seconds()
            if mode == "nbgrader":
                seconds = _plain(args.assignment, klass, grading, students)
            elif mode.startswith("jobs"):  # jobsN, or jobsN-nospare: each job starts its own kernel
                jobs, _, nospare = mode[4:].partition("-")
                seconds = _grade(args.assignment, klass, grading, "--jobs", jobs, spare=not nospare)
            elif mode == "dask":
                cluster = Cluster(base / "dask", workers=2)
                try:
                    seconds = _grade(args.assignment, klass, grading, "--scheduler", cluster.address)
                finally:
                    cluster.close()
            else:
                raise SystemExit(f"unknown mode {mode}")
            busy = _busy_seconds() - busy_before
            results[mode] = (seconds, _phases(grading))
            print(f"  {mode:<14} {seconds:7.1f} s   {60 * args.count / seconds:6.1f} submissions/min   "
                  f"{busy / seconds:4.2f} cores busy   {busy / args.count:5.2f} CPU s per submission", flush=True)
        print("\nper submission (medians)")
        names = sorted({n for _, phases in results.values() for n in phases})
        print(f"  {'':<34}" + "".join(f"{m:>14}" for m in results))
        for name in names:
            print(f"  {name:<34}" + "".join(f"{results[m][1].get(name, float('nan')):>14.2f}" for m in results))
        if "jobs1" in results and "jobs2" in results:
            print(f"\n--jobs 2 / --jobs 1 throughput: {results['jobs1'][0] / results['jobs2'][0]:.2f}x")
        if "nbgrader" in results:
            for mode in (m for m in results if m != "nbgrader"):
                print(f"{mode} / plain nbgrader throughput: {results['nbgrader'][0] / results[mode][0]:.2f}x")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
