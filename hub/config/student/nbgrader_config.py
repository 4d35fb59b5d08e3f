# A student's nbgrader settings on the course's JupyterHub (the Assignments tab and `nbgrader fetch/submit`).
import os

from nbgrader.exchange.default.submit import ExchangeSubmit

c = get_config()  # noqa: F821
c.CourseDirectory.course_id = "attention-step-by-step"
c.Exchange.root = os.environ.get("ATTENTION_STEPS_EXCHANGE", "/srv/nbgrader/exchange")


class PrivateSubmit(ExchangeSubmit):
    """nbgrader's submit, leaving the submission readable by the instructor alone.

    nbgrader makes a submission's folder mode 777 and its files 644 ("hidden from other users by the timestamp"):
    a student who learns the folder's name could read, change or delete another's work. The inbound folder is
    set-group-id with the instructor's own group, so a submission's folders are made in that group: mode 750 lets
    the instructor's collect in and keeps every other account out of the folder and all in it.
    """

    def copy_files(self):
        super().copy_files()
        dest = os.path.join(self.inbound_path, self.assignment_filename)
        self.set_perms(dest, fileperms=0o644, dirperms=0o750)


c.ExchangeFactory.submit = PrivateSubmit
