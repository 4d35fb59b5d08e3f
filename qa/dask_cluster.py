"""A Dask distributed cluster on this machine, as the grading tests and the benchmark use it: a real
``dask scheduler`` and ``dask worker`` processes (one thread each, under a nanny that restarts a killed one)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from autograder.paths import ROOT


class Cluster:
    """``dask scheduler`` and ``workers`` ``dask worker`` processes (each one thread, under a nanny that restarts
    it); the scheduler gives each worker one job at a time and fails a job after ``allowed_failures`` deaths."""

    def __init__(self, base: Path, allowed_failures: int = 3, workers: int = 2):
        self.file = base / "scheduler.json"
        dask = str(Path(sys.executable).with_name("dask"))
        env = dict(os.environ, PYTHONPATH=str(ROOT), DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES=str(
            allowed_failures), DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION="1.0")
        self.procs = [subprocess.Popen([dask, "scheduler", "--scheduler-file", str(self.file), "--port", "0",
                                        "--no-dashboard", "--host", "127.0.0.1"], env=env, cwd=base,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
        deadline = time.monotonic() + 60
        while not self.file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        for n in range(workers):
            worker_env = dict(env, ATTENTION_STEPS_GRADING_DIR=str(base / f"worker{n}"))
            self.procs.append(subprocess.Popen(
                [dask, "worker", "--scheduler-file", str(self.file), "--nthreads", "1", "--no-dashboard",
                 "--host", "127.0.0.1", "--local-directory", str(base / f"worker{n}")],
                env=worker_env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        from distributed import Client

        self.client = Client(scheduler_file=str(self.file), timeout=60)
        self.client.wait_for_workers(workers, timeout=120)
        self.address = self.client.scheduler.address

    def kill_worker_running(self, student: str) -> bool:
        """SIGKILL the worker process that holds ``student``'s job right now (True when one did)."""
        for worker, keys in self.client.processing().items():
            if any(f"-{student}-" in str(k) for k in keys):
                try:
                    pid = self.client.run(os.getpid, workers=[worker])[worker]
                except Exception:  # noqa: BLE001 - it went away in between
                    return False
                os.kill(pid, signal.SIGKILL)
                return True
        return False

    def close(self):
        self.client.close()
        for proc in reversed(self.procs):
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
