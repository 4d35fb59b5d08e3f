"""The grading kernel's bubblewrap sandbox, grader side: whether it runs here, the kernelspec, one box per kernel.
Where bwrap can't run (not installed, no user namespaces, macOS) grading refuses untrusted work and says why."""

import importlib.util
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psutil

from .config import Limits
from .paths import GRADING
from .sandbox_launch import WORK  # noqa: F401 - the kernel's working folder, as the kernel sees it

KERNEL_NAME = "attention-steps-sandbox"
LAUNCHER = Path(__file__).with_name("sandbox_launch.py")
UID_RANGE = (1_900_000_000, 1_999_999_999)  # as root, each kernel's own uid (no passwd entry, no groups)


class SandboxUnavailable(RuntimeError):
    """Grading kernels can't be sandboxed on this machine (the message says why and what to do)."""


def readable_paths() -> list[str]:  # besides the system: the Python installation (venv and base), the helper package
    helper = os.path.dirname(importlib.util.find_spec("attention_steps").origin)
    return sorted({os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, os.path.dirname(sys.executable), helper)})


_why_not: list[str] = []  # the probe's answer, once


def unavailable_reason() -> str:
    """Empty when a bwrap sandbox starts here; otherwise why not (probed once)."""
    if not _why_not:
        argv = ["bwrap", "--unshare-ipc", "--unshare-pid", "--unshare-net", *([] if os.geteuid() == 0 else [
            "--unshare-user"]), *(a for p in ("/usr", "/bin", "/lib", "/lib64", *readable_paths())
                                  for a in ("--ro-bind-try", p, p)), sys.executable, "-c", "pass"]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
            error = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
            _why_not.append(f"bwrap cannot start here ({error})" if done.returncode else "")
        except (OSError, subprocess.SubprocessError) as e:
            _why_not.append(f"bubblewrap (bwrap) cannot be run ({e})")
    return _why_not[0]


def require() -> None:
    """Raise :class:`SandboxUnavailable`, saying what to do, when grading kernels can't be sandboxed here."""
    if why := unavailable_reason():
        raise SandboxUnavailable(f"refusing to grade untrusted submissions: {why}. Each grading kernel runs in a "
                                 "bubblewrap sandbox (Debian/Ubuntu: `sudo apt-get install bubblewrap`; not as root "
                                 "it needs unprivileged user namespaces too), or grade in the container of "
                                 "autograder/README.md, or pass --trusted for notebooks you wrote yourself.")


def prepare_host() -> None:
    """Once per grading process, before its first kernel: matplotlib's font list built in the grader's cache, which
    the launcher copies into each sandbox (without it every kernel would build its own, running ``fc-list``: seconds,
    and an audit event the tripwire flags)."""
    if not _prepared:
        import matplotlib.font_manager  # noqa: F401 - builds ~/.cache/matplotlib/fontlist-*.json when missing

        _prepared.append(True)


_prepared: list[bool] = []
_live: set["Box"] = set()  # this process's boxes, for stop_all


def stop_all() -> None:
    """Kill every process this one started (kernels, their launchers and sandboxes) and remove its boxes: a
    grading worker told to stop (``autograder/batch.py``)."""
    for child in psutil.Process().children(recursive=True):
        try:
            child.kill()
        except psutil.Error:
            continue
    for box in list(_live):
        box.destroy()


def use_kernelspec() -> None:
    """Write the sandbox kernelspec under the grading folder and put that folder on JUPYTER_PATH."""
    spec = GRADING / "jupyter" / "kernels" / KERNEL_NAME
    spec.mkdir(parents=True, exist_ok=True)
    content = {"argv": [sys.executable, str(LAUNCHER), "{connection_file}"], "language": "python",
               "display_name": "Python 3 (grading sandbox)", "interrupt_mode": "message"}  # bwrap passes no SIGINT
    text, target = json.dumps(content, indent=1), spec / "kernel.json"
    # several grading workers start at once and each writes it: a reader must never see a half-written file
    # (JSONDecodeError in another worker's kernel start), so write a private copy and rename it into place
    if not target.exists() or target.read_text() != text:
        partial = spec / f"kernel.json.{os.getpid()}"
        partial.write_text(text)
        os.replace(partial, target)
    parts = [p for p in os.environ.get("JUPYTER_PATH", "").split(os.pathsep) if p]
    if str(GRADING / "jupyter") not in parts:
        os.environ["JUPYTER_PATH"] = os.pathsep.join([str(GRADING / "jupyter"), *parts])


def write_files(folder: Path, files: dict[str, bytes], uid: int = -1) -> None:
    """Write a submission's files (relative paths) below ``folder``, never elsewhere; owned by ``uid`` when >= 0 (as
    root: the sandboxed kernel's own uid, which must be able to read and write them)."""
    base = Path(folder).resolve()
    for name, data in files.items():
        path = (base / name).resolve()
        if base not in path.parents:
            continue  # not below the folder: never written
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        if uid >= 0:
            for made in [path, *(p for p in path.parents if base in p.parents)]:
                os.chown(made, uid, uid, follow_symlinks=False)


@dataclass(eq=False)
class Box:
    """One kernel's private folder (``work/``, ``sockets/`` for the ipc transport, ``pid``: the sandbox's PID 1) and,
    as root, its uid."""

    base: Path
    uid: int

    @classmethod
    def new(cls) -> "Box":
        base = Path(tempfile.mkdtemp(prefix="agk-", dir="/tmp"))  # short: a socket path has at most 107 bytes
        base.chmod(0o711)
        for sub in ("work", "sockets"):
            (base / sub).mkdir(mode=0o700)
        if os.geteuid() != 0:
            box = cls(base, -1)
        else:
            used = {p.info["uids"].real for p in psutil.process_iter(["uids"]) if p.info["uids"]}
            box = cls(base, next(u for u in iter(lambda: random.randint(*UID_RANGE), None) if u not in used))
        _live.add(box)
        return box

    def kernel_env(self, limits: Limits) -> dict[str, str]:
        return {"AG_SANDBOX_BASE": str(self.base), "AG_SANDBOX_UID": str(self.uid),
                "AG_SANDBOX_READ": os.pathsep.join(readable_paths()), "AG_SANDBOX_MEMORY": str(limits.memory_bytes),
                "AG_SANDBOX_CPU": str(limits.cpu_seconds), "AG_SANDBOX_NPROC": str(limits.processes),
                "AG_SANDBOX_FSIZE": str(limits.file_bytes), "AG_SANDBOX_NOFILE": str(limits.open_files),
                "OMP_NUM_THREADS": "1"}  # one torch thread: the kernel needs no new thread after a fork bomb

    def sandbox_pid(self) -> int:
        pid = self.base / "pid"
        return int(pid.read_text() or 0) if pid.exists() else 0

    def destroy(self) -> None:
        """SIGKILL the sandbox's PID 1 (every process in the sandbox goes with it); remove the folder."""
        try:
            if self.sandbox_pid() > 1 and (proc := psutil.Process(self.sandbox_pid())).name() == "bwrap":
                proc.kill()  # the kernel tears the PID namespace down; waiting for it would cost seconds of polling
        except psutil.Error:
            pass
        shutil.rmtree(self.base, ignore_errors=True)
        _live.discard(self)
