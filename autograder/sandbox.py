"""The grading kernel's sandbox, grader side: limits, a throw-away uid, private folders, clean-up.

As root (CI, a grading server) every kernel runs as a fresh unprivileged uid with resource limits (see
``sandbox_launch.py``). Not as root (an instructor's laptop) the limits still apply, but the kernel runs as the
instructor: it could write the gradebook or signal the grader. :func:`isolation` says which, and grading prints a
warning. For more, run the whole grading inside a container (README).
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from .paths import GRADING, ROOT, SOLUTIONS

KERNEL_NAME = "attention-steps-sandbox"
LAUNCHER = Path(__file__).with_name("sandbox_launch.py")
#: Throw-away uids/gids are drawn from here; nothing else on the machine uses them.
UID_RANGE = (1_900_000_000, 1_999_999_999)


@dataclass
class Limits:
    cell_seconds: int = 60          # one cell, wall clock (the kernel is interrupted, then killed)
    notebook_seconds: int = 300     # the whole notebook, wall clock
    cpu_seconds: int = 300          # the kernel process, CPU time (RLIMIT_CPU)
    memory_bytes: int = 4 << 30     # address space of the kernel (RLIMIT_AS; a kernel with torch maps ~1 GB)
    processes: int = 256            # processes + threads of the sandbox uid (RLIMIT_NPROC; root only)
    file_bytes: int = 64 << 20      # largest file the kernel may write (RLIMIT_FSIZE)
    open_files: int = 1024
    cell_output_bytes: int = 100_000      # text a cell may print before it is cut
    notebook_output_bytes: int = 2_000_000


def privileged() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


_PROBE = """
import ctypes, os, sys, tempfile
libc = ctypes.CDLL(None, use_errno=True)
d = tempfile.mkdtemp()
ok = libc.unshare(0x20000) == 0 and libc.mount(None, b"/", None, 16384 | (1 << 18), None) == 0 \
    and libc.mount(b"tmpfs", d.encode(), b"tmpfs", 0, b"size=4k") == 0
sys.exit(0 if ok else 1)
"""
_available: dict[str, bool] = {}


def mount_namespaces() -> bool:
    """Whether this (root) process may make a private mount namespace (CAP_SYS_ADMIN; not in every container)."""
    if "mounts" not in _available:
        import subprocess

        try:
            _available["mounts"] = privileged() and subprocess.run(
                [sys.executable, "-c", _PROBE], capture_output=True, timeout=30).returncode == 0
        except (OSError, subprocess.SubprocessError):
            _available["mounts"] = False
    return _available["mounts"]


def _others_can_enter(path: str) -> bool:
    parts = Path(os.path.realpath(path)).parents
    return all(p.stat().st_mode & 0o001 for p in parts)


def uid_isolation() -> bool:
    """Whether kernels will run as a throw-away uid: root, and the Python installation reachable by that uid
    (directly, or through the mount namespace the launcher makes)."""
    if not privileged():
        return False
    reachable = _others_can_enter(sys.executable) and _others_can_enter(sys.base_prefix + "/x")
    return reachable or mount_namespaces()


def isolation() -> str:
    if uid_isolation():
        return "throw-away uid" + (" + private mounts" if mount_namespaces() else "") + " + resource limits"
    return "resource limits only (the kernel runs as the grader's user)"


_warned = False


def warn_if_weak() -> None:
    global _warned
    if not uid_isolation() and not _warned:
        _warned = True
        who = "without root" if not privileged() else "as root, but the Python installation is closed to other users"
        warnings.warn(
            f"grading {who}: kernels get resource and time limits but run as the grader's user, so a hostile "
            "submission could read or write its files and signal the grader (and, as root, the process limit does "
            "not apply). Grade untrusted classes in a container (autograder/README.md).", stacklevel=2)


def kernelspec_dir() -> Path:
    """Write the sandbox kernelspec under the grading folder; return the folder to add to JUPYTER_PATH."""
    base = GRADING / "jupyter"
    spec = base / "kernels" / KERNEL_NAME
    spec.mkdir(parents=True, exist_ok=True)
    content = {
        "argv": [sys.executable, str(LAUNCHER), "{connection_file}"],
        "display_name": "Python 3 (grading sandbox)",
        "language": "python",
        "interrupt_mode": "signal",
    }
    path = spec / "kernel.json"
    if not path.exists() or json.loads(path.read_text()) != content:
        path.write_text(json.dumps(content, indent=1))
    return base


def use_kernelspec() -> None:
    base = str(kernelspec_dir())
    parts = [p for p in os.environ.get("JUPYTER_PATH", "").split(os.pathsep) if p]
    if base not in parts:
        os.environ["JUPYTER_PATH"] = os.pathsep.join([base, *parts])


def private_folders() -> list[Path]:
    """What a grading kernel must never read: the gradebook and other students' work, the hidden tests."""
    return [GRADING, SOLUTIONS, ROOT / ".git"]


def protect_private_folders() -> list[Path]:
    """As root, make the folders a kernel must not read private to root (gradebook, submissions, sources).

    The sandbox uid is in no group, so removing the permissions of "others" is enough. Returns what changed.
    """
    changed = []
    if not privileged():
        return changed
    for path in private_folders():
        if path.exists():
            mode = path.stat().st_mode & 0o7777
            if mode & 0o007:
                os.chmod(path, mode & ~0o007)
                changed.append(path)
    return changed


def workdir_for(uid: int) -> Path:
    """The kernel's private working folder (made and handed to ``uid`` by the launcher)."""
    import tempfile

    name = f"ag-sandbox-{uid}" if uid > 0 else f"ag-sandbox-{os.getpid()}-{random.randrange(1 << 30)}"
    return Path(tempfile.gettempdir()) / name


def new_uid() -> int:
    """A uid no process uses, for one kernel (-1 when not root: the kernel keeps the grader's uid)."""
    if not privileged():
        return -1
    used = {st.st_uid for st in _proc_stats()}
    while True:
        uid = random.randint(*UID_RANGE)
        if uid not in used:
            return uid


def _proc_stats():
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                yield entry.stat()
            except OSError:
                continue


def pids_of_uid(uid: int) -> list[int]:
    pids = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/status") as f:
                for line in f:
                    if line.startswith("Uid:"):
                        if int(line.split()[1]) == uid:
                            pids.append(int(entry.name))
                        break
        except (OSError, ValueError):
            continue
    return pids


def kill_uid(uid: int, *, rounds: int = 20) -> int:
    """SIGKILL every process of a sandbox uid (it is this kernel's alone); return how many were found."""
    if uid < UID_RANGE[0]:
        return 0
    found = 0
    for _ in range(rounds):
        pids = pids_of_uid(uid)
        if not pids:
            break
        found = max(found, len(pids))
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.05)
    return found


def kernel_env(limits: Limits, uid: int, workdir: Path) -> dict[str, str]:
    """What the grader adds to a sandbox kernel's environment."""
    return {
        "AG_SANDBOX_UID": str(uid if privileged() else -1),
        "AG_SANDBOX_WORKDIR": str(workdir),
        "AG_SANDBOX_MEMORY": str(limits.memory_bytes),
        "AG_SANDBOX_CPU": str(limits.cpu_seconds),
        "AG_SANDBOX_NPROC": str(limits.processes),
        "AG_SANDBOX_FSIZE": str(limits.file_bytes),
        "AG_SANDBOX_NOFILE": str(limits.open_files),
        "AG_SANDBOX_HIDE": os.pathsep.join(str(p) for p in private_folders()),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2"),
    }
