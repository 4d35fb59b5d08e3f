# Setup — run this cell first.
# On Colab it installs the course's helper package, pinned to the course release; locally the README's set-up has
# installed it already and this cell does nothing.
import importlib.util
import os
import subprocess
import sys

PIP_SPEC = "{pip_spec}"


class SetupFailed(Exception):
    def _render_traceback_(self):  # Jupyter shows this one line, not a traceback
        return [f"Setup failed: {self}"]


def _why_pip_failed(log, spec):
    url, _, tag = spec.partition("git+")[2].rpartition("@")
    if any(s in log for s in ("Could not resolve host", "name resolution", "Network is unreachable",
                              "Failed to connect", "Connection timed out", "unable to connect")):
        return ("this runtime could not reach the internet to download the course's helper package; connect it "
                "(on Colab: Runtime > Connect) and run this cell again.")
    if "did not match any file(s) known to git" in log or "Remote branch" in log:
        return (f"the course release {tag} is not published in {url}; open this notebook again from the course's "
                "page (its Colab badge), or ask your instructor for the current link.")
    if any(s in log for s in ("not found", "not exported", "could not read Username",
                              "does not appear to be a git repository")):
        return (f"the course repository {url} does not exist (or is private); open this notebook again from the "
                "course's page (its Colab badge), or ask your instructor for the right link.")
    last = [line.strip() for line in log.splitlines() if line.strip()][-1:] or ["no message"]
    return (f"pip could not install the course's helper package ({last[0]}); run this cell again, and if it "
            "fails again, send this message to your instructor.")


if importlib.util.find_spec("attention_steps") is None:
    if os.path.isfile(os.path.join("..", "..", "attention_steps", "__init__.py")):
        raise SetupFailed("this notebook is in a local copy of the course, but its kernel's Python lacks the course's "
                          "environment; run `make course` in the course folder (README, Set-up) and open the "
                          "notebook in the JupyterLab it starts.")
    _spec = os.environ.get("ATTENTION_STEPS_PIP_SPEC", PIP_SPEC)
    _pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", _spec], capture_output=True, text=True,
                          env=dict(os.environ, GIT_TERMINAL_PROMPT="0"))  # never wait for a password
    if _pip.returncode != 0:
        raise SetupFailed(_why_pip_failed(_pip.stdout + _pip.stderr, _spec))
