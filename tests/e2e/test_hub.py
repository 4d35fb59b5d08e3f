"""The class on the course's JupyterHub: release, fetch, work, submit, collect, grade, feedback, with real accounts.

One hub for the whole module (``class_server``): ``hub/install.sh`` installs the class server under a scratch prefix
(the shared course environment from Debian's Python, the proxy from npm, the per-role configuration, nbgrader's
exchange), the test makes an instructor and three students as accounts of this machine (PAM logs them in), the
instructor gets a clone of the course in a home only they can read, and ``jupyterhub -f hub/jupyterhub_config.py``
serves them on localhost. The tests then run in order, as the class would:

1. the instructor releases 00_orientation (due tomorrow) and 01_rnn (due yesterday) with ``python -m autograder
   exchange release``;
2. student 1, in headless Chromium through the hub's login page: the Assignments tab, Fetch, opens the notebook,
   answers softmax, Validate, Submit;
3. students 2 and 3 with nbgrader's command line, as themselves: student 2 submits a blank notebook, then the
   answers (the later submission counts); student 3 submits a notebook that hooks the kernel to fake passing tests,
   01_rnn after its deadline, and a blank notebook in student 1's name (``--student``), which collect leaves out;
4. what a student must not do: read the instructor's solutions or gradebook, list or read another student's
   submission or home, rename or delete the exchange's folders or another student's submission;
5. the instructor collects, grades with the course's grader (preflight, sandbox, verdicts outside the kernel), and
   releases feedback;
6. student 1 fetches the feedback in the browser and sees the scores and no hidden test.

Needs root (it makes accounts and starts servers as them) and Debian's chromium; skipped elsewhere.
"""

from __future__ import annotations

import csv
import html
import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
import pytest
from conftest import _free_port
from e2e_support import ROOT, answer_cells, filled, hidden_test_lines, read, release_path, solutions
from test_jupyterlab import _menu, _paste

from qa.adversarial import build_adversarial_class

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="makes accounts and starts servers as them: root only")

COURSE_ID = "attention-step-by-step"
INSTRUCTOR, STUDENTS = "ag-hub-teacher", ["ag-hub-ana", "ag-hub-ben", "ag-hub-cho"]
FIRST, LATER = "00_orientation", "01_rnn"
PYTHON = "/usr/bin/python3.11" if Path("/usr/bin/python3.11").exists() else "/usr/bin/python3"
RUNUSER = shutil.which("runuser") or "/usr/sbin/runuser"
WAIT_MS = 1000 * int(os.environ.get("ATTENTION_STEPS_E2E_TIMEOUT", "240"))


class ClassServer:
    """The installed hub, its accounts and passwords, and how to run a command as one of them."""

    def __init__(self, base: Path):
        self.base, self.prefix, self.exchange = base, base / "prefix", base / "exchange"
        self.passwords = {name: secrets.token_urlsafe(12) for name in [INSTRUCTOR, *STUDENTS]}
        self.url = ""
        self.proc: subprocess.Popen | None = None

    def home(self, user: str) -> Path:
        return Path(pwd.getpwnam(user).pw_dir)

    @property
    def course(self) -> Path:
        return self.home(INSTRUCTOR) / "attention-steps"

    def env(self, user: str, role: str) -> dict[str, str]:
        """What the hub gives ``user``'s JupyterLab (hub/jupyterhub_config.py), for commands run as them."""
        return {"HOME": str(self.home(user)), "USER": user, "LOGNAME": user, "LANG": "C.UTF-8",
                "PATH": f"{self.prefix / 'venv' / 'bin'}:/usr/bin:/bin",
                "JUPYTER_CONFIG_PATH": str(self.prefix / "config" / role),
                "ATTENTION_STEPS_EXCHANGE": str(self.exchange), "OMP_NUM_THREADS": "1",
                "AG_CELL_TIMEOUT": "30", "AG_NOTEBOOK_TIMEOUT": "120"}

    def run(self, user: str, *cmd: str, cwd: Path | None = None, check: bool = True, timeout: int = 900):
        role = "instructor" if user == INSTRUCTOR else "student"
        proc = subprocess.run([RUNUSER, "-u", user, "--", *cmd], cwd=cwd or self.home(user),
                              env=self.env(user, role), capture_output=True, text=True, errors="replace",
                              timeout=timeout)
        if check and proc.returncode:
            raise AssertionError(f"{user}: {' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n"
                                 f"{proc.stderr[-3000:]}")
        return proc

    def instructor(self, *args: str, timeout: int = 900) -> str:
        """``python -m autograder ARGS`` as the instructor, in their clone."""
        return self.run(INSTRUCTOR, str(self.prefix / "venv" / "bin" / "python"), "-m", "autograder", *args,
                        cwd=self.course, timeout=timeout).stdout

    def nbgrader(self, student: str, *args: str, check: bool = True):
        return self.run(student, str(self.prefix / "venv" / "bin" / "nbgrader"), *args, check=check)


def _accounts(server: ClassServer) -> None:
    for user in [INSTRUCTOR, *STUDENTS]:
        if subprocess.run(["id", user], capture_output=True).returncode == 0:  # left by a run that was killed
            subprocess.run(["pkill", "-KILL", "-u", user], capture_output=True)
            subprocess.run(["userdel", "--force", "--remove", user], capture_output=True)
        group = "instructors" if user == INSTRUCTOR else "students"
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", "--groups", group, user], check=True)
    subprocess.run(["chpasswd"], input="".join(f"{u}:{p}\n" for u, p in server.passwords.items()), text=True,
                   check=True)
    # the instructor's own clone of the course, in a home that is theirs alone
    shutil.copytree(ROOT, server.course, symlinks=True, ignore=shutil.ignore_patterns(
        ".venv*", ".grading", ".bench", "__pycache__", "node_modules", "*.egg-info", "build"))
    subprocess.run(["chown", "-R", f"{INSTRUCTOR}:{INSTRUCTOR}", str(server.course)], check=True)


def _wait_for(url: str, proc: subprocess.Popen, log: Path, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"JupyterHub exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=10):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            if time.monotonic() > deadline:
                raise RuntimeError(f"JupyterHub did not answer within {seconds} s:\n{log.read_text()[-4000:]}") \
                    from None
            time.sleep(0.3)  # polling the hub's API, not waiting a fixed time


@pytest.fixture(scope="module")
def class_server():
    base = Path(tempfile.mkdtemp(prefix="ag-hub-"))
    base.chmod(0o755)
    server = ClassServer(base)
    install_env = dict(os.environ, ATTENTION_STEPS_HUB_PREFIX=str(server.prefix),
                       ATTENTION_STEPS_EXCHANGE=str(server.exchange), HUB_PYTHON=PYTHON)
    install_env.pop("PYTHONPATH", None)
    started = time.monotonic()
    subprocess.run([str(ROOT / "hub" / "install.sh")], cwd=ROOT, env=install_env, check=True, capture_output=True)
    server.install_seconds = time.monotonic() - started
    try:
        _accounts(server)
        port, hub_port, api_port = _free_port(), _free_port(), _free_port()
        server.url = f"http://127.0.0.1:{port}"
        log = base / "jupyterhub.log"
        hub_env = dict(install_env, ATTENTION_STEPS_HUB_URL=server.url, ATTENTION_STEPS_HUB_STATE=str(base / "state"))
        with open(log, "wb") as out:
            server.proc = subprocess.Popen(
                [str(server.prefix / "venv" / "bin" / "jupyterhub"), "-f", str(ROOT / "hub" / "jupyterhub_config.py"),
                 f"--JupyterHub.hub_bind_url=http://127.0.0.1:{hub_port}",
                 f"--ConfigurableHTTPProxy.api_url=http://127.0.0.1:{api_port}"],
                cwd=base, env=hub_env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        _wait_for(f"{server.url}/hub/api", server.proc, log)
        server.log = log
        yield server
    finally:
        if os.environ.get("ATTENTION_STEPS_KEEP_HUB"):  # to look around after a failure; remove it by hand
            print(f"kept {base} (hub pid {server.proc.pid if server.proc else None})")
        else:
            _teardown(server)


def _teardown(server: ClassServer) -> None:
    if server.proc is not None:
        os.killpg(server.proc.pid, signal.SIGTERM)
        try:
            server.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.proc.pid, signal.SIGKILL)
    for user in [INSTRUCTOR, *STUDENTS]:
        subprocess.run(["pkill", "-KILL", "-u", user], capture_output=True)
        subprocess.run(["userdel", "--remove", user], capture_output=True)
    shutil.rmtree(server.base, ignore_errors=True)


def _login(browser, server: ClassServer, user: str):
    """The hub's login page, as a person uses it; returns the page once the user's JupyterLab has loaded."""
    page = browser.new_page()
    page.goto(f"{server.url}/hub/logout")  # whoever used this browser before
    page.goto(f"{server.url}/hub/login")
    page.fill("#username_input", user)
    page.fill("#password_input", server.passwords[user])
    page.click("#login_submit")
    page.wait_for_selector("#jp-main-dock-panel", timeout=WAIT_MS)  # spawned, redirected, JupyterLab up
    return page


def _assignments_tab(page):
    _menu(page, "Nbgrader", "Assignment List")
    page.wait_for_selector("#released_assignments_list", timeout=WAIT_MS)


def _rows(page, which: str, count: int):
    rows = page.locator(f"#{which}_assignments_list > .list_item")
    page.wait_for_function(f"() => document.querySelectorAll('#{which}_assignments_list > .list_item').length "
                           f"=== {count}", timeout=WAIT_MS)
    return rows


def test_instructor_releases_to_the_exchange(class_server):
    tomorrow = time.strftime("%Y-%m-%d %H:%M", time.localtime(time.time() + 86400))
    yesterday = time.strftime("%Y-%m-%d %H:%M", time.localtime(time.time() - 86400))
    out = class_server.instructor("exchange", "release", FIRST, "--due", tomorrow)
    out += class_server.instructor("exchange", "release", LATER, "--due", yesterday)
    outbound = class_server.exchange / COURSE_ID / "outbound"
    for assignment in (FIRST, LATER):
        assert (outbound / assignment / f"{assignment}.ipynb").is_file(), out
    # what students see is the release, not the source
    released = (outbound / FIRST / f"{FIRST}.ipynb").read_text()
    assert "### BEGIN SOLUTION" not in released and "BEGIN HIDDEN TESTS" not in released


def test_student_works_in_the_browser(class_server, browser, artifacts):
    page = _login(browser, class_server, STUDENTS[0])
    try:
        _assignments_tab(page)
        page.locator("#refresh_assignments_list").click()
        released = _rows(page, "released", 2)
        page.screenshot(path=str(artifacts / "screenshots" / "hub-student-assignments.png"))
        released.filter(has_text=FIRST).locator(".item_status button").click()
        fetched = _rows(page, "fetched", 1)
        assert (class_server.home(STUDENTS[0]) / FIRST / f"{FIRST}.ipynb").is_file()
        # open the notebook, answer softmax, save
        page.goto(f"{class_server.url}/user/{STUDENTS[0]}/lab/tree/{FIRST}/{FIRST}.ipynb")
        page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-Cell", timeout=WAIT_MS)
        _answer(page, FIRST, "softmax")
        page.keyboard.press("Control+s")
        page.wait_for_selector(".lm-TabBar-tab.jp-mod-dirty", state="detached", timeout=WAIT_MS)
        nb = nbformat.read(class_server.home(STUDENTS[0]) / FIRST / f"{FIRST}.ipynb", as_version=4)
        saved = {c.metadata.get("nbgrader", {}).get("grade_id"): c.source for c in nb.cells}
        assert saved["softmax"] == solutions(FIRST)["softmax"], "the answer did not land in softmax's cell"
        # back in the Assignments tab: Validate the notebook, then Submit
        _assignments_tab(page)  # the page was reloaded on the notebook: open the tab again
        fetched = _rows(page, "fetched", 1)
        page.locator(f'#fetched_assignments_list a:text("{FIRST}")').first.click()  # expand: its notebooks
        page.locator("#fetched_assignments_list .item_status button:text('Validate')").first.click()
        dialog = page.locator(".jp-Dialog")
        dialog.wait_for(timeout=WAIT_MS)
        assert "one_hot_embed" in dialog.inner_text() or "failed" in dialog.inner_text().lower()
        dialog.locator(".jp-mod-accept").click()
        fetched.first.locator('.item_status button:text("Submit")').click()
        _rows(page, "submitted", 1)
        page.screenshot(path=str(artifacts / "screenshots" / "hub-student-submitted.png"))
    except Exception:
        page.screenshot(path=str(artifacts / "screenshots" / "hub-student-at-failure.png"))
        raise
    finally:
        page.close()


def _answer(page, assignment: str, item: str) -> None:
    """Paste the solution of ``item`` into its answer cell, as a learner pastes from a clipboard; wait until the
    cell shows it (the editor may still be settling after the notebook opened)."""
    index = next(i for i, name in answer_cells(read(release_path(assignment))) if name == item)
    cell = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell").nth(index)
    cell.locator(".cm-content", has_text="NotImplementedError").wait_for(timeout=WAIT_MS)  # the stub, rendered
    _paste(page, index, solutions(assignment)[item])
    last_line = solutions(assignment)[item].strip().splitlines()[-1].strip()  # the solution's, not the stub's
    cell.locator(".cm-content", has_text=last_line[:40]).wait_for(timeout=WAIT_MS)


def _submission(server: ClassServer, student: str, assignment: str, nb: nbformat.NotebookNode | None) -> None:
    """Fetch (once), write the notebook the student worked on (or leave the release as fetched), submit."""
    folder = server.home(student) / assignment
    if not folder.exists():
        server.nbgrader(student, "fetch_assignment", assignment)
    if nb is not None:
        path = folder / f"{assignment}.ipynb"
        nbformat.write(nb, path)
        shutil.chown(path, student, student)
    server.nbgrader(student, "submit", assignment)


def test_students_on_the_command_line(class_server, tmp_path):
    ben, cho = STUDENTS[1], STUDENTS[2]
    _submission(class_server, ben, FIRST, None)  # blank first ...
    time.sleep(1.1)  # nbgrader's submission timestamps: the later one must be later
    _submission(class_server, ben, FIRST, filled(FIRST))  # ... then the answers: this one counts
    hostile = build_adversarial_class(tmp_path / "adversarial", tmp_path / "grading") / "hook_do_execute" / FIRST
    _submission(class_server, cho, FIRST, nbformat.read(hostile / f"{FIRST}.ipynb", as_version=4))
    _submission(class_server, cho, LATER, filled(LATER))  # after 01_rnn's deadline
    # cho hands in a blank notebook in ana's name, later than ana's own submission: it must not replace hers
    class_server.nbgrader(cho, "submit", FIRST, f"--student={STUDENTS[0]}", check=False)
    listed = class_server.nbgrader(ben, "list", "--cached")  # his own submissions; the inbound is not listable
    assert FIRST in listed.stdout + listed.stderr


def test_a_student_cannot_read_or_tamper(class_server):
    ben, ana = STUDENTS[1], STUDENTS[0]
    course, exchange = class_server.course, class_server.exchange / COURSE_ID
    inbound = exchange / "inbound"
    ana_submission = next(p for p in inbound.iterdir() if p.name.startswith(f"{ana}+{FIRST}+"))
    attempts = {
        "read the instructor's solutions": ["cat", str(course / "solutions" / FIRST / f"{FIRST}.py")],
        "list the instructor's course": ["ls", str(course)],
        "read the gradebook": ["cat", str(course / ".grading" / "gradebook.db")],
        "list the exchange's inbound folder": ["ls", str(inbound)],
        "read another student's home": ["cat", str(class_server.home(ana) / FIRST / f"{FIRST}.ipynb")],
        "rename the course's exchange folder": ["mv", str(exchange), str(exchange) + "-gone"],
        "delete the course's exchange folder": ["rm", "-rf", str(exchange)],
        "delete a released assignment": ["rm", "-rf", str(exchange / "outbound" / FIRST)],
        "replace a released notebook": ["cp", "/etc/hostname", str(exchange / "outbound" / FIRST / f"{FIRST}.ipynb")],
        "read another student's submission (its name known)": ["cat", str(ana_submission / f"{FIRST}.ipynb")],
        "change another student's submission": ["cp", "/etc/hostname", str(ana_submission / f"{FIRST}.ipynb")],
        "rename another student's submission": ["mv", str(ana_submission), str(inbound / f"{ben}+stolen")],
        "delete another student's submission": ["rm", "-rf", str(ana_submission)],
    }
    allowed = {what: cmd for what, cmd in attempts.items()
               if class_server.run(ben, *cmd, check=False).returncode == 0}
    assert not allowed, f"{ben} could: {sorted(allowed)}"
    assert (ana_submission / f"{FIRST}.ipynb").is_file() and (exchange / "outbound" / FIRST).is_dir()


def test_instructor_collects_grades_and_returns_feedback(class_server):
    out = class_server.instructor("exchange", "collect", FIRST)
    assert f"names {STUDENTS[0]} but was submitted by {STUDENTS[2]}" in out, out  # the forged one, left out
    out += class_server.instructor("exchange", "collect", LATER)
    collected = class_server.course / ".grading" / "collected"
    assert sorted(p.name for p in collected.iterdir()) == sorted(STUDENTS), out
    for assignment in (FIRST, LATER):
        out += class_server.instructor("grade", str(collected), "--assignment", assignment, "--no-progress",
                                       "--jobs", "2")
    out += class_server.instructor("report")
    with open(class_server.course / ".grading" / "reports" / "grades.csv") as f:
        rows = {(r["student"], r["assignment"]): r for r in csv.DictReader(f)}
    ana, ben, cho = (rows[s, FIRST] for s in STUDENTS)
    points = {s: (float(rows[s, FIRST][f"{FIRST}:softmax"]), float(rows[s, FIRST][f"{FIRST}:one_hot_embed"]))
              for s in STUDENTS}
    assert points[STUDENTS[0]] == (3.0, 0.0), (ana["notes"], out)  # softmax answered in the browser
    assert points[STUDENTS[1]] == (3.0, 2.0), (ben["notes"], out)  # the later of two submissions
    assert points[STUDENTS[2]] == (0.0, 0.0), (cho["notes"], out)  # a hook that fakes passing tests earns nothing
    assert "IPython / ipykernel internals" in cho["notes"], cho
    assert "late" not in cho["notes"] and "late: submitted" in rows[STUDENTS[2], LATER]["notes"], rows
    assert float(rows[STUDENTS[2], LATER]["score"]) == float(rows[STUDENTS[2], LATER]["max_score"])
    for assignment in (FIRST, LATER):
        out += class_server.instructor("exchange", "feedback", assignment)
    assert len(list((class_server.exchange / COURSE_ID / "feedback").glob("*.html"))) >= 4, out


def test_student_reads_feedback_in_the_browser(class_server, browser, artifacts):
    ana = STUDENTS[0]
    page = _login(browser, class_server, ana)
    try:
        _assignments_tab(page)
        submitted = _rows(page, "submitted", 1)
        submitted.first.locator('.item_status button:text("Fetch Feedback")').click()
        link = page.locator("#submitted_assignments_list a", has_text="view feedback").first
        link.wait_for(timeout=WAIT_MS)
        feedback = sorted((class_server.home(ana) / FIRST / "feedback").rglob("*.html"))
        assert feedback, "no feedback page fetched into the student's folder"
        link.click()  # the file browser goes to the fetched feedback: open its page there, in JupyterLab's viewer
        page.locator(".jp-DirListing-item", has_text=".html").first.dblclick()
        frame = page.frame_locator(".jp-HTMLViewer iframe")
        frame.locator("body").wait_for(timeout=WAIT_MS)
        text = frame.locator("body").inner_text(timeout=WAIT_MS)
        page.screenshot(path=str(artifacts / "screenshots" / "hub-student-feedback.png"))
        assert "softmax" in text and "3 / 3" in text.replace("3.0", "3"), text[:2000]
        leaked = [line for line in hidden_test_lines(FIRST) if line in html.unescape(feedback[0].read_text())]
        assert not leaked, f"hidden-test text in the feedback: {leaked[:3]}"
    except Exception:
        page.screenshot(path=str(artifacts / "screenshots" / "hub-feedback-at-failure.png"))
        raise
    finally:
        page.close()


def test_roles_see_their_own_tools(class_server):
    """A student's server has no formgrader; the instructor's does, and reads the instructor's gradebook."""
    for user, role in ((STUDENTS[1], "student"), (INSTRUCTOR, "instructor")):
        probe = ("from jupyter_server.extension.config import ExtensionConfigManager as M\n"
                 "from jupyter_core.paths import jupyter_config_path\n"
                 "import json\n"
                 "print(json.dumps(M(read_config_path=jupyter_config_path()).get_jpserver_extensions()))")
        out = class_server.run(user, str(class_server.prefix / "venv" / "bin" / "python"), "-c", probe).stdout
        enabled = json.loads(out)
        assert enabled.get("nbgrader.server_extensions.assignment_list") is True, (role, enabled)
        assert enabled.get("nbgrader.server_extensions.formgrader") is (role == "instructor"), (role, enabled)



def test_instructor_sees_the_class_in_the_formgrader(class_server, browser, artifacts):
    """The instructor's JupyterLab has the formgrader, on the gradebook the course's grader wrote; a student's
    server has no formgrader at all."""
    page = _login(browser, class_server, INSTRUCTOR)
    try:
        page.goto(f"{class_server.url}/user/{INSTRUCTOR}/formgrader/gradebook/{FIRST}/{FIRST}")
        page.get_by_text("Submission #3").wait_for(timeout=WAIT_MS)  # manual grading: the three, names hidden
        page.screenshot(path=str(artifacts / "screenshots" / "hub-instructor-formgrader.png"))
        page.goto(f"{class_server.url}/user/{INSTRUCTOR}/formgrader/manage_students")
        for student in STUDENTS:
            page.get_by_text(student).first.wait_for(timeout=WAIT_MS)
    except Exception:
        page.screenshot(path=str(artifacts / "screenshots" / "hub-formgrader-at-failure.png"))
        raise
    finally:
        page.close()
    page = _login(browser, class_server, STUDENTS[1])
    try:
        response = page.goto(f"{class_server.url}/user/{STUDENTS[1]}/formgrader")
        assert response is not None and response.status == 404, response and response.status
    finally:
        page.close()
