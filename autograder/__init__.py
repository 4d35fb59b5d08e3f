"""Instructor tooling for *Attention, step by step*: build and release notebooks, grade, feedback, reports.

Run ``python -m autograder --help``. Everything goes through nbgrader's own Python API; this package adds the
course's layout, the demo class, the tables and the checks around it.
"""
