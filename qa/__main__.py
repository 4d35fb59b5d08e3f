"""``python -m qa COMMAND`` — the course's quality checks (the instructor's commands are ``python -m autograder``)."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qa", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("discrimination",
                       help="run every item's catalog of wrong and correct versions; print rejected/accepted")
    p.add_argument("assignments", nargs="*")
    sub.add_parser("classes", help="rebuild the demo class and the adversarial class from the release of 00")
    p = sub.add_parser("seeds", help="judge the solution and every right catalog version on many grading seeds, "
                                     "in-process (a right answer must never lose points to an unlucky seed)")
    p.add_argument("assignments", nargs="*")
    p.add_argument("--seeds", type=int, default=30, help="how many seeds (default 30)")
    p.add_argument("--start", type=int, default=1000, help="the first seed (default 1000)")
    args = parser.parse_args(argv)
    if args.command == "seeds":
        from autograder.paths import assignments

        from .in_process import seed_sweep

        failed = False
        for assignment in args.assignments or assignments():
            failures, seconds = seed_sweep(assignment, range(args.start, args.start + args.seeds))
            print(f"{assignment:<34} {args.seeds} seeds  {len(failures)} failure(s)  {seconds:.0f} s", flush=True)
            for line in failures[:10]:
                print("   ", line)
            failed |= bool(failures)
        return 1 if failed else 0
    if args.command == "discrimination":
        from .discrimination import discrimination_table

        table, ok = discrimination_table(args.assignments or None)
        print(table)
        return 0 if ok else 1
    from .adversarial import build_adversarial_class
    from .demo import build_demo_class

    build_demo_class()
    print("rebuilt", build_adversarial_class())
    return 0


if __name__ == "__main__":
    sys.exit(main())
