"""Moving assignments to students and back through nbgrader's exchange (a class server: ``hub/``).

The exchange is nbgrader's own (``nbgrader.exchange.default``): a folder every account can write to
(``ATTENTION_STEPS_EXCHANGE``, default ``/srv/nbgrader/exchange``), one course id. The instructor's steps:

- ``release``: ``course/NN`` (the generated release) to the exchange's outbound folder, with an optional due date in
  the gradebook (nbgrader then records how late each submission came).
- ``collect``: every student's latest submission from the inbound folder into ``.grading/collected``, as nbgrader
  lays it out (``<student>/<assignment>/…`` with its ``timestamp.txt``): ``grade`` reads that folder like any other
  class, so collected work goes through preflight, the sandbox and the outside verdicts. nbgrader's collect only
  warns when a submission names another student than the account that made it (``nbgrader submit --student``):
  :class:`CollectForGrading` leaves such a submission out and says so. The course's configuration makes it
  nbgrader's collect (``ExchangeFactory.collect``), so the formgrader's Collect button does the same.
- ``feedback``: the course's feedback pages (``grading.feedback``: no hidden test) into the exchange, where each
  student's Assignments tab fetches their own (nbgrader names each page by a hash of the submission's secret).
"""

from __future__ import annotations

import os
import pwd
import stat
from datetime import UTC, datetime
from pathlib import Path

from nbgrader.exchange.default.collect import ExchangeCollect
from nbgrader.utils import temp_attrs

from .config import course_config
from .paths import COURSE, GRADING, ROOT, make_private

COLLECTED = GRADING / "collected"
#: How CollectForGrading names a submission it left out (the instructor's command repeats these lines).
NOT_COLLECTED = "not collected:"


class CollectForGrading(ExchangeCollect):
    """nbgrader's collect, into ``.grading/collected`` (where ``grade`` reads), of each student's latest submission
    made by that student's own account: one whose folder another account owns is left out, with a warning."""

    def _owner(self, record: dict) -> str:
        uid = os.stat(os.path.join(self.inbound_path, record["filename"])).st_uid
        try:
            return pwd.getpwuid(uid).pw_name
        except KeyError:
            return f"uid {uid}"

    def _genuine(self, record: dict) -> bool:
        return self._owner(record) == record["username"]

    def _sort_by_timestamp(self, records):
        # nbgrader takes the first of each student's records: the latest genuine one, when there is one
        self._forged = getattr(self, "_forged", []) + [r for r in records if not self._genuine(r)]
        return sorted(records, key=lambda r: (self._genuine(r), r["timestamp"]), reverse=True)

    def copy_files(self):
        for record in getattr(self, "_forged", []):
            self.log.warning("%s %s names %s but was submitted by %s", NOT_COLLECTED, record["filename"],
                             record["username"], self._owner(record))
        self.src_records = [r for r in self.src_records if self._genuine(r)]
        with temp_attrs(self.coursedir, submitted_directory=str(COLLECTED)):
            super().copy_files()


class ExchangeError(RuntimeError):
    pass


def root() -> Path:
    return Path(course_config().Exchange.root)


def private_course() -> str | None:
    """On a class server the course folder holds the solutions: make it the instructor's alone (mode 700). Returns
    what was changed, if anything."""
    mode = make_private(ROOT)
    if mode is None:
        return None
    return f"made {ROOT} private (mode {mode:o} -> 700): it holds the solutions and the gradebook"


def _check(result: dict, what: str) -> str:
    if not result.get("success"):
        raise ExchangeError(f"{what} failed: {(result.get('error') or result.get('log') or '').strip()}")
    return result.get("log", "")


def parse_due(text: str) -> datetime:
    """An ISO date and time (``2026-12-10 17:00``, ``2026-12-10T17:00+01:00``); without a zone it is local time."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError as e:
        raise ExchangeError(f"--due {text!r}: give a date and time such as 2026-12-10 17:00") from e
    return when.astimezone(UTC)  # a naive time is taken as local time


def release(assignment: str, *, due: datetime | None = None) -> Path:
    """``course/<assignment>`` to the exchange (replacing an earlier release of it); ``due`` into the gradebook."""
    from nbgrader.api import Gradebook

    from . import grading

    if not (COURSE / assignment).is_dir():
        raise ExchangeError(f"{COURSE / assignment} does not exist (`python -m autograder release {assignment}`)")
    grading._ensure_in_gradebook(assignment)
    if due is not None:
        with Gradebook(course_config().CourseDirectory.db_url) as gb:
            gb.update_or_create_assignment(assignment, duedate=due.replace(tzinfo=None).isoformat())
    nbapi = grading.api()
    nbapi.coursedir.release_directory = str(COURSE)
    nbapi.config.ExchangeReleaseAssignment.force = True
    _check(nbapi.release_assignment(assignment), f"nbgrader release_assignment {assignment}")
    course = root() / course_config().CourseDirectory.course_id
    # nbgrader's inbound is 2733: students can't list it, but one who learns another's folder name could rename or
    # delete it. The sticky bit leaves that to the folder's owner (and to the instructor, who owns the inbound).
    inbound = course / "inbound"
    inbound.chmod(inbound.stat().st_mode & 0o7777 | stat.S_ISVTX)
    return course / "outbound" / assignment


def collect(assignment: str) -> tuple[list[str], list[str]]:
    """Each student's latest submission of ``assignment`` into ``.grading/collected`` (:class:`CollectForGrading`):
    (the students collected, a line for each submission left out)."""
    from . import grading

    log = _check(grading.api().collect(assignment, update=True), f"nbgrader collect {assignment}")
    left_out = [line[line.index(NOT_COLLECTED):] for line in log.splitlines() if NOT_COLLECTED in line]
    return sorted(p.parent.name for p in COLLECTED.glob(f"*/{assignment}") if p.is_dir()), left_out


def release_feedback(assignment: str) -> list[str]:
    """The feedback pages of ``assignment`` (written by ``grading.feedback``) into the exchange; the students."""
    from . import grading

    pages = grading.feedback(assignment)
    _check(grading.api().release_feedback(assignment), f"nbgrader release_feedback {assignment}")
    return sorted({p.relative_to(GRADING / "feedback").parts[0] for p in pages})
