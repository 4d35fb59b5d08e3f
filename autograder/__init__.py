"""Instructor tooling for *Attention, step by step*: build and release notebooks, grade, feedback, reports.

Run ``python -m autograder --help``. Everything goes through nbgrader's own Python API; this package adds the
course's layout, the demo class, the tables and the checks around it.
"""

import warnings

# nbgrader 0.9's gradebook (``update_or_create_submission``) touches a new submission's relationships before adding it
# to the SQLAlchemy session, and SQLAlchemy warns about it on every autograde ("Object of type <SubmittedAssignment>
# not in session …"): the rows are saved all the same; in an instructor's terminal it is noise. Only those warnings,
# only from nbgrader's gradebook module.
warnings.filterwarnings("ignore", message=r"Object of type <Submitted\w+> not in session", module=r"nbgrader\.api")
