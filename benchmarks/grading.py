"""Grading time per submission: the demo class and the adversarial class, graded for real in a private folder.

    .venv/bin/python -m benchmarks.grading [--adversarial-only | --demo-only]

Prints seconds per submission (preflight + nbgrader autograde in the sandbox: one kernel start each, fast path)
and the means. Limits are the defaults unless AG_CELL_TIMEOUT / AG_NOTEBOOK_TIMEOUT are set; the hostile
submissions that hit a limit take at least that limit, by design.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo-only", action="store_true")
    parser.add_argument("--adversarial-only", action="store_true")
    args = parser.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="grading-bench-"))
    os.environ["ATTENTION_STEPS_GRADING_DIR"] = str(base / "grading")
    os.environ.setdefault("AG_CELL_TIMEOUT", "15")
    os.environ.setdefault("AG_NOTEBOOK_TIMEOUT", "50")
    from autograder import grading
    from autograder.paths import DEMO_CLASS
    from qa.adversarial import build_adversarial_class

    classes = []
    if not args.adversarial_only:
        classes.append(("demo", DEMO_CLASS))
    if not args.demo_only:
        classes.append(("adversarial", build_adversarial_class(base / "adversarial", base / "grading")))
    print(f"limits: {os.environ['AG_CELL_TIMEOUT']} s a cell, {os.environ['AG_NOTEBOOK_TIMEOUT']} s a notebook; "
          f"{os.cpu_count()} CPUs; load {os.getloadavg()[0]:.1f}")
    try:
        for label, folder in classes:
            start = time.perf_counter()
            rows = grading.grade(folder, "00_orientation")
            total = time.perf_counter() - start
            print(f"\n== {label} class: {len(rows)} submissions in {total:.1f} s "
                  f"(including one release of the assignment into the gradebook)")
            for r in sorted(rows, key=lambda r: r.seconds):
                print(f"  {r.student:<20} {r.seconds:6.1f} s   {r.score:g}/{r.max_score:g}")
            secs = sorted(r.seconds for r in rows)
            print(f"  mean {sum(secs) / len(secs):.1f} s, median {secs[len(secs) // 2]:.1f} s per submission")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
