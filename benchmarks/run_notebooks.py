"""Execute every solution notebook twice — the learner's full run and the grading fast path — and print a table.

    python -m benchmarks.run_notebooks [NN_name ...] [--full-only | --fast-only] [--json FILE]

Each run starts its own kernel in the notebook's folder and executes every code cell in order, hidden tests
included; seconds are wall-clock from kernel start to the last cell. Headline figures are what the notebook
reports with ``attention_steps.report_metric``. Run it on an otherwise idle machine: it measures time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from attention_steps.mode import FAST_ENV, METRICS_ENV
from autograder.kernel import Kernel
from autograder.notebooks import nbgrader_meta, read_source
from autograder.paths import SOLUTIONS, assignments


def run_notebook(assignment: str, fast: bool, extra_env: dict[str, str] | None = None) -> dict:
    """Run ``solutions/A/A`` top to bottom; return seconds, reported metrics and the cells that failed."""
    nb = read_source(assignment)
    with tempfile.TemporaryDirectory() as tmp:
        metrics_file = Path(tmp) / "metrics.jsonl"
        env = {METRICS_ENV: str(metrics_file), FAST_ENV: "1" if fast else "0", **(extra_env or {})}
        start = time.perf_counter()
        failures = []
        with Kernel(SOLUTIONS / assignment, fast=fast, extra_env=env) as kernel:
            for cell in nb.cells:
                if cell.cell_type == "code":
                    result = kernel.run(cell.source, timeout=900)
                    if not result.ok:
                        failures.append(f"{nbgrader_meta(cell).get('grade_id', cell.id)}: {result.error}")
        seconds = time.perf_counter() - start
        metrics = [json.loads(line) for line in metrics_file.read_text().splitlines()] if metrics_file.exists() else []
    return {"assignment": assignment, "mode": "fast" if fast else "full", "seconds": seconds, "metrics": metrics,
            "failures": failures}


def format_metrics(metrics: list[dict]) -> str:
    return "; ".join(f"{m['name']} = {m['value']:.4g}" for m in metrics) or "—"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("assignments", nargs="*")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--full-only", action="store_true")
    group.add_argument("--fast-only", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)

    print(f"# {platform.node()}: {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"cuda {'yes: ' + torch.cuda.get_device_name() if torch.cuda.is_available() else 'no'}")
    results = []
    head = f"{'notebook':<34} {'full s':>7} {'fast s':>7}  {'status':<8} headline (full run)"
    print(head)
    print("-" * len(head))
    for a in args.assignments or assignments():
        full = None if args.fast_only else run_notebook(a, fast=False)
        fast = None if args.full_only else run_notebook(a, fast=True)
        runs = [r for r in (full, fast) if r]
        results += runs
        failures = [f for r in runs for f in r["failures"]]
        status = "ok" if not failures else f"{len(failures)} FAIL"
        seconds = [r["seconds"] if r else float("nan") for r in (full, fast)]
        print(f"{a:<34} {seconds[0]:>7.1f} {seconds[1]:>7.1f}  {status:<8} {format_metrics((full or fast)['metrics'])}",
              flush=True)
        for f in failures:
            print(f"    failed: {f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0 if all(not r["failures"] for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
