# An instructor's nbgrader settings on the course's JupyterHub: the course is the instructor's own clone of the
# repository (ATTENTION_STEPS_COURSE, default ~/attention-steps), with its settings (autograder/config.py): the
# formgrader shows that clone's gradebook, which `python -m autograder grade` writes.
import os
import sys
from pathlib import Path

c = get_config()  # noqa: F821
course = Path(os.environ.get("ATTENTION_STEPS_COURSE", Path.home() / "attention-steps")).expanduser()
if (course / "autograder" / "config.py").is_file():
    sys.path.insert(0, str(course))
    from autograder.config import course_config

    c.merge(course_config())
else:
    c.CourseDirectory.course_id = "attention-step-by-step"
c.Exchange.root = os.environ.get("ATTENTION_STEPS_EXCHANGE", "/srv/nbgrader/exchange")
