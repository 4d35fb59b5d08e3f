"""Execute every solution notebook twice — the learner's full run and the grading fast path — and print a table.

    python -m benchmarks.run_notebooks [NN_name ...] [--full-only | --fast-only] [--repeat N] [--load]
                                       [--threads N] [--json FILE]

Each run starts its own kernel in the notebook's folder and executes every code cell in order, hidden tests
included; seconds are wall-clock from kernel start to the last cell (the median of ``--repeat`` runs, taken in
rounds over all the notebooks). Headline figures are what the notebook reports with ``attention_steps.report_metric``
(from the first run). Run it on an otherwise idle machine: it measures time. Each round starts by timing a fixed
reference workload, printed at the end: on a shared machine whose speed drifts, it tells a slow machine from a slow
notebook.

``--load`` runs every notebook beside a competing CPU load: one busy-looping process per CPU, each in a session of
its own, at the same priority as the kernel, started before the kernel and stopped after it (a laptop with other
programs busy on every core).
``--threads N`` overrides the course's torch thread count (``ATTENTION_STEPS_THREADS``) to compare choices.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from attention_steps.device import THREADS_ENV
from attention_steps.mode import FAST_ENV, METRICS_ENV
from autograder.notebooks import nbgrader_meta, read_source
from autograder.paths import SOLUTIONS, assignments
from qa.kernel import Kernel


def run_notebook(assignment: str, fast: bool, extra_env: dict[str, str] | None = None) -> dict:
    """Run ``solutions/A/A`` top to bottom; return seconds, reported metrics and the cells that failed."""
    nb = read_source(assignment)
    with tempfile.TemporaryDirectory() as tmp:
        metrics_file = Path(tmp) / "metrics.jsonl"
        env = {METRICS_ENV: str(metrics_file), FAST_ENV: "1" if fast else "0", **(extra_env or {})}
        start = time.perf_counter()
        failures, cells = [], []
        with Kernel(SOLUTIONS / assignment, fast=fast, extra_env=env) as kernel:
            for number, cell in enumerate(nb.cells, 1):
                if cell.cell_type == "code":
                    began = time.perf_counter()
                    result = kernel.run(cell.source, timeout=900)
                    cells.append((time.perf_counter() - began, number, cell.source.strip().splitlines()[0][:60]))
                    if not result.ok:
                        failures.append(f"{nbgrader_meta(cell).get('grade_id', cell.id)}: {result.error}")
        seconds = time.perf_counter() - start
        metrics = [json.loads(line) for line in metrics_file.read_text().splitlines()] if metrics_file.exists() else []
    return {"assignment": assignment, "mode": "fast" if fast else "full", "seconds": seconds, "metrics": metrics,
            "failures": failures, "slowest_cells": sorted(cells, reverse=True)[:5]}


class CompetingLoad:
    """One busy-looping Python process per CPU while the block runs."""

    def __init__(self, enabled: bool):
        self.enabled, self.procs = enabled, []

    def __enter__(self):
        if self.enabled:
            # each in a session of its own, like separate programs: Linux's autogroup scheduling shares the CPUs
            # between sessions first, so busy loops inside the benchmark's own session would barely compete
            self.procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)
                          for _ in range(os.cpu_count())]
        return self

    def __exit__(self, *exc):
        for proc in self.procs:
            proc.kill()
            proc.wait()
        self.procs = []


def machine_speed(repeats: int = 5) -> float:
    """Milliseconds for a fixed one-thread torch workload (the best of ``repeats``): the machine's speed right now.

    Shared machines drift (the same notebook ran 25 % slower an hour later); each round prints this figure, so a
    slow round shows as a slow machine rather than a slow notebook.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        generator = torch.Generator().manual_seed(0)
        a, b = torch.randn(128, 256, generator=generator), torch.randn(256, 256, generator=generator)
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(200):  # small matrix products and element-wise ops, like the course's models
                torch.tanh(a @ b).sum()
            best = min(best, time.perf_counter() - start)
        return best * 1e3
    finally:
        torch.set_num_threads(threads)


def summarise(runs: list[dict]) -> dict:
    """One notebook and mode over its rounds: the first run's metrics and cells, the median seconds."""
    seconds = [r["seconds"] for r in runs]
    return {**runs[0], "seconds": statistics.median(seconds), "runs": seconds,
            "failures": [f for r in runs for f in r["failures"]]}


def format_metrics(metrics: list[dict]) -> str:
    return "; ".join(f"{m['name']} = {m['value']:.4g}" for m in metrics) or "—"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("assignments", nargs="*")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--full-only", action="store_true")
    group.add_argument("--fast-only", action="store_true")
    parser.add_argument("--repeat", type=int, default=1, help="runs per notebook and mode; the median is printed")
    parser.add_argument("--load", action="store_true", help="beside one busy-looping process per CPU")
    parser.add_argument("--threads", type=int, help="torch CPU threads in the kernels (default: the course's)")
    parser.add_argument("--cells", action="store_true", help="also print the slowest cells of each full run")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    extra_env = {THREADS_ENV: str(args.threads)} if args.threads else {}

    print(f"# {platform.node()}: {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"cuda {'yes: ' + torch.cuda.get_device_name() if torch.cuda.is_available() else 'no'}; "
          f"threads {args.threads or 'course default'}; median of {args.repeat}; "
          f"{f'competing load: {os.cpu_count()} busy-looping processes' if args.load else 'no competing load'}")
    names = args.assignments or assignments()
    modes = [fast for fast, skipped in ((False, args.fast_only), (True, args.full_only)) if not skipped]
    runs = {(a, fast): [] for a in names for fast in modes}
    # rounds, not back-to-back repeats: a slow spell of a shared machine then costs one run of several notebooks
    # (which the median drops) instead of every run of one notebook
    speeds = []
    for round_number in range(1, args.repeat + 1):
        speeds.append(machine_speed())
        print(f"  round {round_number}/{args.repeat}: reference workload {speeds[-1]:.1f} ms", file=sys.stderr,
              flush=True)
        for a in names:
            for fast in modes:
                with CompetingLoad(args.load):
                    run = run_notebook(a, fast, extra_env)
                runs[(a, fast)].append(run)
                print(f"  round {round_number}/{args.repeat}: {a} {run['mode']} {run['seconds']:.1f} s",
                      file=sys.stderr, flush=True)
    results = []
    head = f"{'notebook':<34} {'full s':>7} {'fast s':>7}  {'status':<8} headline (full run)"
    print(head)
    print("-" * len(head))
    for a in names:
        full, fast = (summarise(runs[(a, f)]) if (a, f) in runs else None for f in (False, True))
        both = [r for r in (full, fast) if r]
        results += both
        failures = [f for r in both for f in r["failures"]]
        status = "ok" if not failures else f"{len(failures)} FAIL"
        seconds = [r["seconds"] if r else float("nan") for r in (full, fast)]
        spread = f"  (full runs {', '.join(f'{s:.1f}' for s in full['runs'])} s)" if full and args.repeat > 1 else ""
        headline = format_metrics(both[0]["metrics"])
        print(f"{a:<34} {seconds[0]:>7.1f} {seconds[1]:>7.1f}  {status:<8} {headline}{spread}", flush=True)
        for f in failures:
            print(f"    failed: {f}")
        for secs, number, first_line in (full or {}).get("slowest_cells", []) if args.cells else []:
            print(f"    {secs:6.1f} s  cell {number}: {first_line}")
    print(f"reference workload per round (machine speed; lower is faster): {', '.join(f'{s:.1f}' for s in speeds)} ms")
    if args.json:
        args.json.write_text(json.dumps({"reference_workload_ms": speeds, "runs": results}, indent=2))
    return 0 if all(not r["failures"] for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
