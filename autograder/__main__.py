"""``python -m autograder COMMAND`` — the instructor's commands. ``--help`` on any of them says more."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("build", help="build solutions/*/*.ipynb from their jupytext .py text")
    p.add_argument("assignments", nargs="*")
    p = sub.add_parser("release", help="build, then regenerate course/ with nbgrader generate_assignment")
    p.add_argument("assignments", nargs="*")
    p = sub.add_parser("grade", help="autograde a class (default: the bundled demo class) and print the table")
    p.add_argument("submissions", nargs="?", type=Path,
                   help="folder laid out <student>/<assignment>/<notebook>.ipynb, or a folder of LMS .zip files")
    p.add_argument("--assignment", help="only this assignment (required for zip downloads)")
    p.add_argument("--trusted", action="store_true",
                   help="run kernels without the sandbox: only for notebooks you wrote yourself")
    p.add_argument("--jobs", "-j", type=int, default=None,
                   help="notebooks executed at once on this machine (default: the number of cores)")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help="execute on the workers of this Dask cluster instead (autograder/README.md)")
    p.add_argument("--regrade", action="store_true",
                   help="grade every submission again (default: keep those graded before from the same files)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p = sub.add_parser("feedback", help="write HTML feedback per student under .grading/feedback/")
    p.add_argument("--assignment")
    p = sub.add_parser("report", help="grades CSV, per-exercise table, score histogram, HTML class report and "
                       "Canvas CSV under .grading/reports/")
    p.add_argument("--assignment")
    p = sub.add_parser("exchange", help="a class server's nbgrader exchange: release an assignment to the students, "
                       "collect their submissions (then `grade` them), return their feedback (hub/README.md)")
    p.add_argument("action", choices=["release", "collect", "feedback"])
    p.add_argument("assignment")
    p.add_argument("--due", help="with release: the deadline, e.g. '2026-12-10 17:00' (local time unless a zone "
                   "is given); nbgrader records how late each submission came")
    args = parser.parse_args(argv)

    from . import grading, notebooks, sandbox

    if args.command == "build":
        for a in args.assignments or notebooks.assignments():
            notebooks.sync_head(a)
            print(notebooks.build(a))
    elif args.command == "release":
        for path in grading.release(args.assignments or None):
            print("released", path)
        if not args.assignments or "00_orientation" in args.assignments:
            print("00_orientation changed: `python -m qa classes` rebuilds the demo and adversarial classes from it")
    elif args.command == "grade":
        try:
            rows = grading.grade(args.submissions, args.assignment, trusted=args.trusted, jobs=args.jobs,
                                 scheduler=args.scheduler, regrade=args.regrade, progress=not args.no_progress)
        except sandbox.SandboxUnavailable as e:
            print(e, file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("\ninterrupted: the submissions graded so far are saved; `grade` again grades the rest",
                  file=sys.stderr)
            return 130
        print(grading.format_table(rows))
    elif args.command == "feedback":
        for path in grading.feedback(args.assignment):
            print(path)
    elif args.command == "exchange":
        return _exchange(args)
    elif args.command == "report":
        table, written = grading.report(args.assignment)
        print(table)
        print("")
        for path in written:
            print(f"wrote {path}")
    return 0


def _exchange(args) -> int:
    from . import exchange

    changed = exchange.private_course()
    if changed:
        print(changed)
    try:
        if args.action == "release":
            where = exchange.release(args.assignment, due=exchange.parse_due(args.due) if args.due else None)
            print(f"released {args.assignment} to {where}" + (f" (due {args.due})" if args.due else ""))
        elif args.action == "collect":
            students, left_out = exchange.collect(args.assignment)
            print(f"collected {len(students)} submission(s) of {args.assignment} into {exchange.COLLECTED}")
            for line in left_out:
                print(line)
            print(f"grade them: python -m autograder grade {exchange.COLLECTED} --assignment {args.assignment}")
        else:
            students = exchange.release_feedback(args.assignment)
            print(f"feedback on {args.assignment} released to {len(students)} student(s)")
    except exchange.ExchangeError as e:
        print(e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
