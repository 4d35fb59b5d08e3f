"""Run the GPU-relevant notebooks (06-08) in full and print their timings and headline figures.

    python -m benchmarks.gpu [NN_name ...] [--fast] [--cpu] [--json FILE]

On a machine with CUDA the notebooks pick the GPU themselves, train in float16 mixed precision, and switch to their
bigger configuration (``USE_BIG_CONFIG = torch.cuda.is_available()``). ``--cpu`` hides the GPU
(``CUDA_VISIBLE_DEVICES=""``) to time the default CPU path on the same machine for comparison. Execution reuses
``benchmarks.run_notebooks.run_notebook``: one fresh kernel per notebook, every cell, hidden tests included.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import torch

from .run_notebooks import format_metrics, run_notebook

GPU_NOTEBOOKS = ["06_multi_head_attention", "07_transformer", "08_vision_transformer", "10_attention_at_scale"]


def describe_machine() -> str:
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        gpu = f"{props.name}, {props.total_memory / 2**30:.0f} GiB"
    else:
        gpu = "no CUDA device"
    return f"{platform.node()}: {os.cpu_count()} CPUs, torch {torch.__version__}, {gpu}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("assignments", nargs="*", help=f"default: {' '.join(GPU_NOTEBOOKS)}")
    parser.add_argument("--fast", action="store_true", help="the grading fast path instead of the full run")
    parser.add_argument("--cpu", action="store_true", help="hide the GPU: time the CPU path on this machine")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)

    extra_env = {"CUDA_VISIBLE_DEVICES": ""} if args.cpu else {}
    print(f"# {describe_machine()}{' (GPU hidden: CPU path)' if args.cpu else ''}")
    head = f"{'notebook':<28} {'mode':<5} {'seconds':>8}  {'status':<8} headline figures"
    print(head)
    print("-" * len(head))
    results = []
    for assignment in args.assignments or GPU_NOTEBOOKS:
        result = run_notebook(assignment, fast=args.fast, extra_env=extra_env)
        result["device"] = "cpu" if args.cpu or not torch.cuda.is_available() else "cuda"
        results.append(result)
        status = "ok" if not result["failures"] else f"{len(result['failures'])} FAIL"
        print(f"{assignment:<28} {result['mode']:<5} {result['seconds']:>8.1f}  {status:<8} "
              f"{format_metrics(result['metrics'])}", flush=True)
        for failure in result["failures"]:
            print(f"    failed: {failure}")
    if args.json:
        args.json.write_text(json.dumps({"machine": describe_machine(), "results": results}, indent=2))
    return 0 if all(not r["failures"] for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
