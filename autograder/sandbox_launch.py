"""Kernel launcher for grading: an IPython kernel in a bubblewrap sandbox (autograder/README.md, "The sandbox").

Run by jupyter_client as a plain script (it imports nothing from the project), settings in ``AG_SANDBOX_*``. Outside:
copy the data files (never an ``.ipynb``), run ``bwrap`` as a child (the sandbox dies with this process), write the
sandbox's PID 1 for the grader. Inside (``--inside``): resource limits, as root the kernel's own uid, the kernel."""

import json
import os
import resource
import shutil
import subprocess
import sys

KEEP_ENV = ("PATH", "LANG", "LC_ALL", "NBGRADER_EXECUTION", "ATTENTION_STEPS_FAST", "MPLBACKEND", "PYTHONHASHSEED",
            "OMP_NUM_THREADS", "TZ", "VIRTUAL_ENV", "AG_SANDBOX_UID")
WORK, LAUNCHER, GUARD = "/sandbox", "/opt/attention-steps/launch.py", "/opt/attention-steps/guard"
SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/etc/ld.so.cache", "/etc/alternatives", "/etc/fonts",
          "/etc/localtime")
LIMITS = {"AG_SANDBOX_MEMORY": resource.RLIMIT_AS, "AG_SANDBOX_CPU": resource.RLIMIT_CPU,
          "AG_SANDBOX_FSIZE": resource.RLIMIT_FSIZE, "AG_SANDBOX_NOFILE": resource.RLIMIT_NOFILE,
          "AG_SANDBOX_NPROC": resource.RLIMIT_NPROC}


def bwrap_argv(base: str, env: dict[str, str], *, root: bool, info_fd: int) -> list[str]:
    """Own PID, IPC, UTS, network (and, not as root, user) namespaces; the system, the Python installation, the
    helper package and the grading guard read-only; a private working folder, /tmp, and the ipc socket folder."""
    argv = ["bwrap", "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
            "--die-with-parent", "--new-session", "--info-fd", str(info_fd), "--clearenv", "--proc", "/proc",
            "--dev", "/dev", "--perms", "01777", "--tmpfs", "/tmp"]
    # as root: no user namespace (the limits would not count), and two capabilities to switch to the kernel's uid
    argv += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"] if root else [
        "--unshare-user", "--uid", "1000", "--gid", "1000"]
    read, sockets = [*SYSTEM, *filter(None, env["AG_SANDBOX_READ"].split(os.pathsep))], f"{base}/sockets"
    above = set()  # folders on the way to a bound path, open to the kernel (bwrap would make them 0700 as root)
    for path in (*read, sockets, LAUNCHER, GUARD):
        while (path := os.path.dirname(path)) not in ("/", "/tmp"):
            above.add(path)
    for folder in sorted(a for a in above if not any(a == r or a.startswith(r + "/") for r in read)):
        argv += ["--perms", "0755", "--dir", folder]
    for path in read:
        argv += ["--ro-bind-try", path, path]
    argv += ["--ro-bind", os.path.abspath(__file__), LAUNCHER, "--ro-bind", env["PYTHONPATH"], GUARD,
             "--bind", f"{base}/work", WORK, "--bind", sockets, sockets, "--remount-ro", "/", "--chdir", WORK]
    inner = {k: env[k] for k in (*KEEP_ENV, *LIMITS) if k in env}
    inner.update(HOME=f"{WORK}/.home", MPLCONFIGDIR=f"{WORK}/.home", PYTHONPATH=GUARD, TMPDIR="/tmp",
                 USER="sandbox", JUPYTER_RUNTIME_DIR="/tmp", IPYTHONDIR="/tmp/ipython", PYTHONDONTWRITEBYTECODE="1")
    for key, value in inner.items():
        argv += ["--setenv", key, value]
    return [*argv, "--", sys.executable, LAUNCHER, "--inside", f"{sockets}/connection.json"]


def _die_with_parent(base: str) -> list:
    """Linux: this launcher gets SIGTERM when the grading process that started it dies (a Dask worker killed
    mid-job, a pool worker stopped): it kills the sandbox (bwrap's --die-with-parent takes the rest) and removes the
    sandbox's folder, which the dead grader can no longer do. Returns the list the sandbox's process goes into."""
    import signal

    running: list = []

    def stop(*_):
        for proc in running:
            proc.kill()
            try:
                os.waitpid(proc.pid, 0)  # not proc.wait(): the interrupted main thread holds its lock
            except ChildProcessError:
                pass
        shutil.rmtree(base, ignore_errors=True)
        os._exit(1)

    signal.signal(signal.SIGTERM, stop)
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() == 1:  # the grader died before the line above
        stop()
    return running


def outside(connection_file: str) -> int:
    base = os.environ["AG_SANDBOX_BASE"]
    running = _die_with_parent(base)
    shutil.copytree(os.getcwd(), f"{base}/work", dirs_exist_ok=True, ignore=lambda d, names: [  # no links either
        n for n in names if n.endswith(".ipynb") or n.startswith(".") or os.path.islink(os.path.join(d, n))])
    os.makedirs(f"{base}/work/.home", exist_ok=True)
    fonts = os.path.join(os.environ.get("HOME", "/nonexistent"), ".cache", "matplotlib")
    for name in os.listdir(fonts) if os.path.isdir(fonts) else []:  # matplotlib's font list: seconds to rebuild
        if name.startswith("fontlist"):
            shutil.copy(os.path.join(fonts, name), f"{base}/work/.home")
    shutil.copy(connection_file, f"{base}/sockets/connection.json")
    root = os.geteuid() == 0
    uid = int(os.environ["AG_SANDBOX_UID"])
    for folder, dirs, files in [*os.walk(f"{base}/work"), *os.walk(f"{base}/sockets")] if root else []:
        for name in [folder, *(os.path.join(folder, n) for n in dirs + files)]:  # the kernel's uid owns these alone
            os.chown(name, uid, uid, follow_symlinks=False)
    read_end, write_end = os.pipe()
    proc = subprocess.Popen(bwrap_argv(base, dict(os.environ), root=root, info_fd=write_end), pass_fds=(write_end,),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # the kernel's own noise
    running.append(proc)
    os.close(write_end)
    with os.fdopen(read_end) as info, open(f"{base}/pid", "w") as pid:
        pid.write(str(json.loads(info.read() or "{}").get("child-pid", 0)))
    return proc.wait()


def inside(connection: str) -> None:
    for name, which in LIMITS.items():
        if (value := int(os.environ.pop(name, "0") or 0)) > 0:
            resource.setrlimit(which, (value, value))
    if os.geteuid() == 0:  # as root: the kernel's own uid, no groups (and with that, no capabilities)
        os.setgroups([])
        os.setresgid(uid := int(os.environ.pop("AG_SANDBOX_UID")), uid, uid)
        os.setresuid(uid, uid, uid)
    os.execv(sys.executable, [sys.executable, "-m", "ipykernel_launcher", "-f", connection,
                              "--IPKernelApp.log_level=CRITICAL", "--HistoryManager.hist_file=:memory:"])


if __name__ == "__main__":
    sys.exit(inside(sys.argv[2]) if sys.argv[1] == "--inside" else outside(sys.argv[1]))
