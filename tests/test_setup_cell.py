"""The notebooks' setup cell when things go wrong: one sentence that says what happened and what to do.

Each case runs the real setup cell in a real kernel of a bare environment (ipykernel and nbclient only, no
``attention_steps``), the way a learner's Colab runtime meets it. The repository is served by ``git daemon`` on
localhost (GitHub can't be reached from here): a URL that names no repository, a release tag that doesn't exist, and
no network at all (a network namespace with only loopback). A local checkout whose kernel lacks the course's
environment is told to run the README's set-up.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from autograder.notebooks import SETUP_METADATA, pip_spec, repository_url, setup_source
from autograder.paths import ROOT

EXECUTE = ROOT / "tests" / "e2e" / "colab_execute.py"


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory) -> Path:
    """A venv with ipykernel and nbclient only (versions from the lock)."""
    venv = tmp_path_factory.mktemp("bare") / "venv"
    uv = Path(sys.executable).with_name("uv")
    if uv.exists():
        subprocess.run([str(uv), "venv", "--quiet", "--seed", "--python", sys.executable, str(venv)], check=True)
        subprocess.run([str(uv), "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"),
                        "-c", str(ROOT / "requirements.lock"), "ipykernel", "nbclient"], check=True)
    else:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
                        "-c", str(ROOT / "requirements.lock"), "ipykernel", "nbclient"], check=True)
    return venv / "bin" / "python"


@pytest.fixture(scope="module")
def git_server(tmp_path_factory):
    """``git daemon`` on localhost serving a bare clone of this checkout as ``course.git`` (no release tag)."""
    base = tmp_path_factory.mktemp("git")
    subprocess.run(["git", "clone", "--quiet", "--bare", str(ROOT), str(base / "course.git")], check=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    daemon = subprocess.Popen(["git", "daemon", "--reuseaddr", "--export-all", f"--base-path={base}",
                               "--listen=127.0.0.1", f"--port={port}", str(base)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    yield f"git://127.0.0.1:{port}"
    daemon.terminate()
    daemon.wait(10)


def run_setup_cell(python: Path, folder: Path, spec: str | None, wrap: list[str] = ()) -> dict:
    """Run the setup cell alone in ``folder`` with ``python``'s kernel; the executed cell's one output."""
    folder.mkdir(parents=True, exist_ok=True)
    cell = nbformat.v4.new_code_cell(setup_source(), metadata={"nbgrader": dict(SETUP_METADATA)})
    nb = nbformat.v4.new_notebook(cells=[cell], metadata={"kernelspec": {"name": "python3", "language": "python",
                                                                         "display_name": "Python 3"}})
    src, dst = folder / "setup.ipynb", folder / "setup.executed.ipynb"
    nbformat.write(nb, src)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "ATTENTION_STEPS", "PYTHON"))}
    env.update(PATH=f"{python.parent}{os.pathsep}{env['PATH']}", VIRTUAL_ENV=str(python.parent.parent),
               JUPYTER_DATA_DIR=str(folder / "jd"), JUPYTER_CONFIG_DIR=str(folder / "jc"),
               JUPYTER_RUNTIME_DIR=str(folder / "jr"), IPYTHONDIR=str(folder / "ipy"))
    if spec is not None:
        env["ATTENTION_STEPS_PIP_SPEC"] = spec
    proc = subprocess.run([*wrap, str(python), str(EXECUTE), str(src), str(dst)], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=300)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("E2E-RESULT ")]
    assert lines, f"the setup cell could not be run ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    outputs = nbformat.read(dst, as_version=4).cells[0].outputs
    errors = [o for o in outputs if o.output_type == "error"]
    assert len(errors) == 1, f"expected the setup cell to stop with one error, got {outputs}"
    return errors[0]


def assert_one_sentence(error, *phrases: str) -> str:
    assert error.ename == "SetupFailed", f"the setup cell raised {error.ename}: {error.evalue}"
    assert len(error.traceback) == 1, f"expected one line, not a traceback: {error.traceback}"
    line = error.traceback[0]
    assert line.startswith("Setup failed: ") and line.endswith("."), line
    assert "Traceback" not in line and "pip._internal" not in line and "subprocess" not in line, line
    for phrase in phrases:
        assert phrase in line, f"{phrase!r} missing from: {line}"
    return line


def test_the_released_setup_cell_points_at_the_course_repository_and_tag():
    assert pip_spec() in setup_source()
    assert pip_spec().startswith(f"attention-steps @ git+{repository_url()}@v")


def test_a_repository_that_does_not_exist(bare_python, git_server, tmp_path):
    spec = f"attention-steps @ git+{git_server}/no-such-course.git@v0.1.0"
    line = assert_one_sentence(run_setup_cell(bare_python, tmp_path / "nb", spec), "does not exist",
                               "no-such-course.git", "ask your instructor")
    print(line)


def test_a_release_tag_that_is_not_published(bare_python, git_server, tmp_path):
    spec = f"attention-steps @ git+{git_server}/course.git@v99.0.0"
    line = assert_one_sentence(run_setup_cell(bare_python, tmp_path / "nb", spec), "release v99.0.0",
                               "not published", "course.git")
    print(line)


def test_no_network(bare_python, tmp_path):
    """A runtime with no connection: a network namespace with loopback only (the kernel talks over it)."""
    wrap = ["unshare", "--user", "--map-root-user", "--net", "sh", "-c", 'ip link set lo up && exec "$@"', "sh"]
    if shutil.which("unshare") is None or shutil.which("ip") is None or subprocess.run(
            [*wrap, "true"], capture_output=True).returncode:
        pytest.skip("this machine can't make a network namespace (unshare --user --net)")
    line = assert_one_sentence(run_setup_cell(bare_python, tmp_path / "nb", pip_spec(), wrap),
                               "could not reach the internet", "run this cell again")
    print(line)


def test_a_local_checkout_without_the_environment(bare_python, tmp_path):
    """A released notebook opened from a clone's course/ folder with a kernel that isn't the course's .venv."""
    clone = tmp_path / "clone"
    shutil.copytree(ROOT / "attention_steps", clone / "attention_steps")
    line = assert_one_sentence(run_setup_cell(bare_python, clone / "course" / "00_orientation", None),
                               "local copy of the course", "make course")
    print(line)
