"""End-to-end suite: the learner's and the instructor's paths, exercised the way a person uses them.

Run it with ``make test-e2e`` (installs Chromium and Playwright first) or ``.venv/bin/python -m pytest tests/e2e``.
``make test`` / plain ``pytest`` leave this folder out (``collect_ignore`` in ``tests/conftest.py``).

- ``test_jupyterlab.py``: one JupyterLab server (from the course environment, on a scratch copy of ``course/``) driven
  by headless Chromium through Playwright: run every released notebook, click nbgrader's *Validate*, read the dialog.
- ``test_colab_runtime.py``: a fresh virtual environment with only what Colab ships that the course needs; the
  notebooks' own setup cell installs the helper package from a locally built wheel; every notebook runs there.
- ``test_instructor_terminal.py``: the README's instructor commands on the bundled demo class.
- ``test_hub.py``: as root, the course's JupyterHub (``hub/``) with an instructor and three student accounts: release,
  fetch, work in the browser, submit, collect, grade, feedback, and what a student must not be able to do.

Notebooks run on the grading fast path (``ATTENTION_STEPS_FAST=1``). Screenshots go to ``.bench/e2e/screenshots/``
(ignored by git; ``ATTENTION_STEPS_E2E_ARTIFACTS`` moves them). ``ATTENTION_STEPS_E2E_TIMEOUT`` (seconds, default 240)
bounds each wait in the browser for a notebook's run or its validation.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository's autograder package
from e2e_support import ARTIFACTS, COURSE, ROOT, assignments  # noqa: E402

CHROMIUM = Path(os.environ.get("ATTENTION_STEPS_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
]
#: JupyterLab settings for the test server: no news or update checks (no network), every cell in the DOM.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings":
        '{"fetchNews": "false", "checkForUpdates": false}',
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": '{"windowingMode": "none"}',
}


def pytest_generate_tests(metafunc):
    if "assignment" in metafunc.fixturenames:
        metafunc.parametrize("assignment", assignments())


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


def course_env(**extra: str) -> dict[str, str]:
    """The environment a learner's kernel gets here: the grading fast path, the inline plot backend."""
    env = dict(os.environ)
    for name in ("MPLBACKEND", "NBGRADER_EXECUTION", "PYTHONPATH", "ATTENTION_STEPS_PIP_SPEC"):
        env.pop(name, None)  # the main suite's conftest sets MPLBACKEND=agg, which would hide every plot
    env["ATTENTION_STEPS_FAST"] = "1"
    env.update(extra)
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    """A running JupyterLab server: its base URL, token, and the scratch folder it serves."""

    def __init__(self, root: Path, url: str, token: str, proc: subprocess.Popen, log: Path):
        self.root, self.url, self.token, self.proc, self.log = root, url, token, proc, log

    def api(self, path: str, method: str = "GET") -> bytes:
        req = urllib.request.Request(f"{self.url}{path}", method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.read()

    def page_url(self, path: str, workspace: str) -> str:
        return f"{self.url}/lab/workspaces/{workspace}/tree/{path}?reset&token={self.token}"

    def shutdown_kernels(self) -> None:
        import json

        for session in json.loads(self.api("/api/sessions")):
            self.api(f"/api/sessions/{session['id']}", method="DELETE")


@pytest.fixture(scope="session")
def lab(tmp_path_factory) -> Lab:
    """One JupyterLab server for the whole suite, from the course environment, on a scratch copy of course/.

    The notebooks are copied twice, ``blank/`` (the release as is) and ``filled/`` (where the test pastes the
    solutions), so Validate's save never touches the tracked release.
    """
    base = tmp_path_factory.mktemp("lab")
    root = base / "served"
    for variant in ("blank", "filled"):
        shutil.copytree(COURSE, root / variant, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    settings = base / "settings"
    for rel, text in LAB_SETTINGS.items():
        (settings / rel).parent.mkdir(parents=True, exist_ok=True)
        (settings / rel).write_text(text)
    for d in ("workspaces", "runtime", "config", "ipython"):
        (base / d).mkdir()
    env = course_env(
        JUPYTERLAB_SETTINGS_DIR=str(settings), JUPYTERLAB_WORKSPACES_DIR=str(base / "workspaces"),
        JUPYTER_RUNTIME_DIR=str(base / "runtime"), JUPYTER_CONFIG_DIR=str(base / "config"),
        IPYTHONDIR=str(base / "ipython"),
        JUPYTER_CONFIG_PATH=str(ROOT / "lab" / "learner"),  # the learner's JupyterLab, as `make lab` opens it
    )
    token, port = secrets.token_hex(16), _free_port()
    jupyter = Path(sys.executable).parent / "jupyter"
    log = base / "jupyterlab.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(jupyter), "lab", "--no-browser", f"--ServerApp.root_dir={root}", "--ServerApp.ip=127.0.0.1",
             f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
             "--ServerApp.terminals_enabled=False", "--allow-root"],
            cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    server = Lab(root, f"http://127.0.0.1:{port}", token, proc, log)
    deadline = time.monotonic() + 120
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            server.api("/api/status")
            break
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            if time.monotonic() > deadline:
                raise RuntimeError(f"JupyterLab did not answer within 120 s:\n{log.read_text()[-3000:]}") from None
            time.sleep(0.2)  # polling the server's status, not waiting a fixed time
    yield server
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _fontconfig(base: Path) -> Path:
    """A fontconfig file that adds the course's bundled Japanese font, so markdown such as 埋め込み shows glyphs."""
    import matplotlib_fontja

    fonts = Path(matplotlib_fontja.__file__).parent / "fonts"
    conf = base / "fonts.conf"
    conf.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig>\n'
        '  <include ignore_missing="yes">/etc/fonts/fonts.conf</include>\n'
        f"  <dir>{fonts}</dir>\n  <cachedir>{base / 'fontcache'}</cachedir>\n</fontconfig>\n"
    )
    return conf


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    """Debian's Chromium, headless, driven by Playwright's Python client."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test-e2e` installs Debian's chromium package")
    from playwright.sync_api import sync_playwright

    base = tmp_path_factory.mktemp("chromium")
    env = dict(os.environ, FONTCONFIG_FILE=str(_fontconfig(base)))
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(base / "profile"), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS, env=env,
            viewport={"width": 1280, "height": 1000}, device_scale_factor=1,
        )
        try:
            yield context
        finally:
            context.close()


@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> Path:
    """The helper package built into a wheel from this checkout: the stand-in for the repository on Colab."""
    out = tmp_path_factory.mktemp("wheel")
    # build from a copy of what the package is made of, so setuptools' build/ and egg-info stay out of the checkout
    src = out / "src"
    shutil.copytree(ROOT / "attention_steps", src / "attention_steps",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(src)],
                   check=True, cwd=out)
    (found,) = out.glob("attention_steps-*.whl")
    return found


#: What Colab ships that the course needs — nothing else (ipykernel and nbclient only to execute the notebooks).
COLAB_PACKAGES = ["numpy", "matplotlib", "scikit-learn", "tqdm", "ipykernel", "nbclient"]
#: The runtimes the learner's path is run in: the course's pinned torch, and the newest torch the registry serves
#: (what Colab moves to next). ATTENTION_STEPS_NEWEST_TORCH= (empty) leaves the second one out.
PINNED_TORCH = re.search(r"^torch==(\S+)", (ROOT / "requirements.txt").read_text(), re.MULTILINE)[1]
NEWEST_TORCH = os.environ.get("ATTENTION_STEPS_NEWEST_TORCH", "2.14.1")
RUNTIMES = {"pinned": PINNED_TORCH, **({"newest": NEWEST_TORCH} if NEWEST_TORCH else {})}
#: The newest torch's venv (a CUDA build of about 6 GB) is kept between runs, outside the clone.
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "attention-steps"


class Colab:
    """A Colab-like virtual environment and how to run a notebook in it (``colab_execute.py``)."""

    def __init__(self, base: Path, wheel: Path, venv: Path, torch_version: str):
        self.base, self.wheel, self.venv, self.torch_version = base, wheel, venv, torch_version
        self.python = self.venv / "bin" / "python"
        for d in ("jupyter-data", "jupyter-config", "jupyter-runtime", "ipython"):
            (base / d).mkdir(exist_ok=True)

    def env(self) -> dict[str, str]:
        """The kernel's environment: the fast path, the wheel as the setup cell's pip spec, no Jupyter config."""
        env = course_env(
            ATTENTION_STEPS_PIP_SPEC=str(self.wheel), VIRTUAL_ENV=str(self.venv),
            PATH=f"{self.venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
            JUPYTER_DATA_DIR=str(self.base / "jupyter-data"), JUPYTER_CONFIG_DIR=str(self.base / "jupyter-config"),
            JUPYTER_RUNTIME_DIR=str(self.base / "jupyter-runtime"), IPYTHONDIR=str(self.base / "ipython"),
        )
        env.pop("JUPYTER_PATH", None)
        return env

    def python_check(self, code: str) -> str:
        return subprocess.run([str(self.python), "-c", code], env=self.env(), cwd=self.base, check=True,
                              capture_output=True, text=True).stdout

    def execute(self, nb, name: str, *, check: bool = False) -> tuple[dict, object]:
        """Write ``nb`` to a scratch folder, run it there; return (result, executed notebook)."""
        import json

        import nbformat

        folder = self.base / "notebooks" / name
        folder.mkdir(parents=True, exist_ok=True)
        src, dst = folder / f"{name}.ipynb", folder / f"{name}.executed.ipynb"
        nbformat.write(nb, src)
        proc = subprocess.run(
            [str(self.python), str(Path(__file__).parent / "colab_execute.py"), str(src), str(dst),
             *(["--check"] if check else [])],
            env=self.env(), cwd=folder, capture_output=True, text=True, timeout=900,
        )
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("E2E-RESULT ")]
        if proc.returncode or not lines:
            raise AssertionError(f"running {name} in the Colab-like venv failed ({proc.returncode}):\n"
                                 f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        return json.loads(lines[-1].removeprefix("E2E-RESULT ")), nbformat.read(dst, as_version=4)


def _install_colab_packages(venv: Path, torch_version: str, env: dict[str, str]) -> None:
    """venv + pip, as Colab does: torch at ``torch_version``, the rest at the lock's versions."""
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-compile",
                    "-c", str(ROOT / "requirements.lock"), f"torch=={torch_version}", *COLAB_PACKAGES],
                   check=True, env=env)


@pytest.fixture(scope="session", params=list(RUNTIMES))
def colab_venv(request, tmp_path_factory, wheel) -> Colab:
    """A venv holding only torch and COLAB_PACKAGES, without the helper package: fresh for the pinned torch, kept in
    the user's cache for the newest (built once; the helper package is removed before each session)."""
    base = tmp_path_factory.mktemp(f"colab-{request.param}")
    version = RUNTIMES[request.param]
    if request.param == "pinned":
        colab = Colab(base, wheel, base / "venv", version)
        _install_colab_packages(colab.venv, version, colab.env())
        return colab
    lock = hashlib.sha256((ROOT / "requirements.lock").read_bytes()).hexdigest()[:8]
    colab = Colab(base, wheel, CACHE / f"colab-torch-{version}-{lock}" / "venv", version)
    done = colab.venv.parent / "complete"
    if not done.exists():
        shutil.rmtree(colab.venv.parent, ignore_errors=True)
        colab.venv.parent.mkdir(parents=True)
        _install_colab_packages(colab.venv, version, colab.env())
        done.touch()
    subprocess.run([str(colab.python), "-m", "pip", "uninstall", "--quiet", "--yes", "attention-steps",
                    "matplotlib-fontja"], check=True, env=colab.env(), capture_output=True)
    return colab




@pytest.fixture(scope="session")
def colab(colab_venv) -> Colab:
    """The Colab-like venv after a notebook's setup cell ran in it (installing the helper from the wheel)."""
    import nbformat
    from e2e_support import read, release_path

    first = assignments()[0]
    setup = [c for c in read(release_path(first)).cells if c.get("id") == "setup"
             or c.metadata.get("nbgrader", {}).get("grade_id") == "setup"]
    assert setup, f"{first}: no setup cell (nbgrader grade_id 'setup')"
    nb = nbformat.v4.new_notebook(cells=[setup[0]], metadata={"kernelspec": {"name": "python3", "language": "python",
                                                                             "display_name": "Python 3"}})
    before = colab_venv.python_check("import importlib.util as u; print(u.find_spec('attention_steps') is None)")
    assert before.strip() == "True", "the Colab-like venv already has attention_steps before the setup cell ran"
    result, _ = colab_venv.execute(nb, "setup-cell")
    assert result["ok"], f"the setup cell failed in the Colab-like venv:\n{result['error']}"
    return colab_venv
