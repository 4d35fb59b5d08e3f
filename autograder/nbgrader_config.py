# nbgrader's own command line and JupyterLab extensions read this file when started in this folder
# (e.g. `cd autograder && nbgrader generate_assignment 00_orientation`). The settings live in autograder/config.py.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from autograder.config import course_config  # noqa: E402

c = get_config()  # noqa: F821
c.merge(course_config())
