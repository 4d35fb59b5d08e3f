"""Kernel launcher for grading: start an IPython kernel with resource limits and, as root, as a throw-away user.

Run by jupyter_client from the ``attention-steps-sandbox`` kernelspec (see ``autograder/sandbox.py``) as a plain
script (``python sandbox_launch.py CONNECTION_FILE``), so it imports nothing from the project. It:

1. reads its settings from ``AG_SANDBOX_*`` variables (set by the grader for this kernel only);
2. makes a private working folder, copies the data files of the grading folder into it (never ``*.ipynb``:
   the autograded copy of the notebook holds the hidden tests) and a copy of the connection file;
3. as root: gives the folder to the throw-away uid/gid chosen by the grader, drops every group, switches to that
   uid (no passwd entry needed), sets no-new-privileges; the kernel can then not write the gradebook, the source
   notebooks or other students' folders, cannot read folders the grader made private, and cannot signal the
   grading process (a non-root process may only signal its own uid);
4. applies resource limits (address space, CPU seconds, processes, file size, open files, no core dumps) and a
   parent-death signal, cleans the environment, and ``exec``s ``python -m ipykernel_launcher`` in that folder.
"""

from __future__ import annotations

import ctypes
import os
import resource
import shutil
import signal
import sys

KEEP_ENV = ("PATH", "JPY_PARENT_PID", "JPY_INTERRUPT_EVENT", "LANG",
            "LC_ALL", "NBGRADER_EXECUTION", "ATTENTION_STEPS_FAST", "MPLBACKEND", "PYTHONHASHSEED",
            "OMP_NUM_THREADS", "MKL_NUM_THREADS", "TZ", "VIRTUAL_ENV", "ATTENTION_STEPS_PIP_SPEC")


def _int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


def _limit(which: int, value: int) -> None:
    if value <= 0:
        return
    try:
        soft, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(which, (value, value))
    except (ValueError, OSError):
        pass


def _copy_data_files(src: str, dst: str) -> None:
    for entry in os.scandir(src):
        if entry.name.endswith(".ipynb") or entry.name.startswith("."):
            continue
        target = os.path.join(dst, entry.name)
        if entry.is_dir(follow_symlinks=False):
            shutil.copytree(entry.path, target, symlinks=False,
                            ignore=shutil.ignore_patterns("*.ipynb", ".*"))
        elif entry.is_file(follow_symlinks=False):
            shutil.copy(entry.path, target)


def _chown_tree(path: str, uid: int, gid: int) -> None:
    os.chown(path, uid, gid)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.chown(os.path.join(root, name), uid, gid, follow_symlinks=False)


MS_BIND, MS_REC, MS_PRIVATE, MS_RDONLY, MS_NOSUID, MS_NODEV = 4096, 16384, 1 << 18, 1, 2, 4
CLONE_NEWNS, MNT_DETACH = 0x00020000, 2


def _mount(libc, source, target, fstype, flags, data=None) -> None:
    enc = (lambda x: x.encode() if x is not None else None)
    if libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {target}: {os.strerror(err)}")


def _others_can_enter(path: str) -> bool:
    """Whether every folder on the way to ``path`` lets "others" through (the sandbox uid is in no group)."""
    parts = os.path.realpath(path).split(os.sep)
    for i in range(1, len(parts)):
        d = os.sep + os.path.join(*parts[1:i]) if i > 1 else os.sep
        try:
            if not os.stat(d).st_mode & 0o001:
                return False
        except OSError:
            return False
    return True


def _first_closed(path: str) -> str | None:
    parts = os.path.realpath(path).split(os.sep)
    for i in range(1, len(parts)):
        d = os.sep + os.path.join(*parts[1:i]) if i > 1 else os.sep
        if not os.stat(d).st_mode & 0o001:
            return d
    return None


def _private_mounts(libc, workdir: str) -> list[str]:
    """In a new mount namespace: hide the private folders, and open the way to the Python installation.

    Returns what was done; raises OSError when mount namespaces are not available (no CAP_SYS_ADMIN).
    """
    if libc.unshare(CLONE_NEWNS) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS) failed")
    _mount(libc, None, "/", None, MS_REC | MS_PRIVATE)
    done = []
    for path in filter(None, os.environ.get("AG_SANDBOX_HIDE", "").split(os.pathsep)):
        if os.path.isdir(path):
            _mount(libc, "tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, "mode=0000,size=4k")
            done.append(f"hid {path}")
    # The interpreter may live in a folder others cannot enter (e.g. pyenv under /root): put an empty tmpfs over
    # that folder and bind just the installation back into it.
    for needed in (sys.base_prefix, sys.prefix):
        closed = _first_closed(needed)
        if closed is None:
            continue
        stage = workdir + ".stage"
        os.makedirs(stage, mode=0o700, exist_ok=True)
        real = os.path.realpath(needed)
        _mount(libc, real, stage, None, MS_BIND | MS_REC)
        _mount(libc, "tmpfs", closed, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=64k")
        os.makedirs(real, mode=0o755, exist_ok=True)
        _mount(libc, stage, real, None, MS_BIND | MS_REC)
        libc.umount2(stage.encode(), MNT_DETACH)
        os.rmdir(stage)
        done.append(f"exposed {real} under an empty {closed}")
    return done


def _copy_font_cache(home: str) -> None:
    """matplotlib builds a font list on first import (seconds): give the kernel the grader's."""
    src = os.path.join(os.environ.get("HOME", "/nonexistent"), ".cache", "matplotlib")
    try:
        for name in os.listdir(src):
            if name.startswith("fontlist") and name.endswith(".json"):
                shutil.copy(os.path.join(src, name), os.path.join(home, name))
    except OSError:
        pass


def main(argv: list[str]) -> None:
    connection_file = argv[1]
    workdir = os.environ.get("AG_SANDBOX_WORKDIR") or f"/tmp/ag-sandbox-{os.getpid()}"
    uid = _int("AG_SANDBOX_UID", -1)
    os.makedirs(workdir, mode=0o700, exist_ok=True)
    os.chmod(workdir, 0o700)
    _copy_data_files(os.getcwd(), workdir)
    conn = os.path.join(workdir, ".kernel-connection.json")
    shutil.copy(connection_file, conn)
    for sub in ("home", "tmp"):
        os.makedirs(os.path.join(workdir, sub), exist_ok=True)
    env = {k: os.environ[k] for k in KEEP_ENV if k in os.environ}
    env.update(HOME=os.path.join(workdir, "home"), TMPDIR=os.path.join(workdir, "tmp"), USER="sandbox",
               MPLCONFIGDIR=os.path.join(workdir, "home"), PYTHONDONTWRITEBYTECODE="1",
               JUPYTER_RUNTIME_DIR=os.path.join(workdir, "tmp"), IPYTHONDIR=os.path.join(workdir, "home", ".ipython"))
    _copy_font_cache(env["HOME"])
    libc = ctypes.CDLL(None, use_errno=True)
    prctl = getattr(libc, "prctl", None)  # Linux only
    isolation = "limits"
    if os.geteuid() == 0 and uid > 0:
        try:
            _private_mounts(libc, workdir)
            isolation = "uid+mounts"
        except OSError:
            isolation = "uid"
        if not (_others_can_enter(sys.executable) and _others_can_enter(sys.base_prefix)):
            uid, isolation = -1, "limits (the Python installation is closed to other users)"
    with open(os.path.join(workdir, ".isolation"), "w") as f:
        f.write(isolation)
    if os.geteuid() == 0 and uid > 0:
        _chown_tree(workdir, uid, uid)
    os.chdir(workdir)
    if prctl is not None:
        prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG: die with the grader
    # Limits first (as root the hard limits then bind the unprivileged kernel for good).
    _limit(resource.RLIMIT_AS, _int("AG_SANDBOX_MEMORY", 0))
    _limit(resource.RLIMIT_CPU, _int("AG_SANDBOX_CPU", 0))
    _limit(resource.RLIMIT_FSIZE, _int("AG_SANDBOX_FSIZE", 0))
    _limit(resource.RLIMIT_NOFILE, _int("AG_SANDBOX_NOFILE", 0))
    _limit(resource.RLIMIT_CORE, 0)
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ValueError, OSError):
        pass
    if os.geteuid() == 0 and uid > 0:
        # RLIMIT_NPROC counts the processes (and threads) of the real uid: a fresh uid means only this kernel's.
        _limit(resource.RLIMIT_NPROC, _int("AG_SANDBOX_NPROC", 0))
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
        if os.getuid() != uid or os.geteuid() != uid:
            sys.exit("sandbox: could not drop privileges")
    if prctl is not None:
        prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS
    try:
        os.setsid()  # its own session: a signal to its process group reaches no one else
    except OSError:
        pass  # already a session leader (jupyter_client starts kernels in a new session)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", conn, "--IPKernelApp.log_level=ERROR",
            "--HistoryManager.hist_file=:memory:"]
    os.execve(sys.executable, argv, env)


if __name__ == "__main__":
    main(sys.argv)
