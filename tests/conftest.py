"""Shared test set-up.

- The browser / Colab-like / instructor-terminal suite in tests/e2e runs with `make test-e2e` (which sets
  ATTENTION_STEPS_E2E=1), not with `make test`.
- Grading state (gradebook, submissions, feedback) goes to a private temporary folder, never to the instructor's
  `.grading/`. autograder.paths reads ATTENTION_STEPS_GRADING_DIR at import, so it is set before anything imports it.
"""

import os
import tempfile

# `make test-e2e` sets ATTENTION_STEPS_E2E=1 to collect tests/e2e; plain `pytest` skips it.
collect_ignore = [] if os.environ.get("ATTENTION_STEPS_E2E") == "1" else ["e2e"]

os.environ.setdefault("ATTENTION_STEPS_GRADING_DIR", tempfile.mkdtemp(prefix="attention-steps-grading-"))
os.environ.setdefault("MPLBACKEND", "agg")
