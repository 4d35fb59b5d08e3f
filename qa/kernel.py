"""Run notebook cells in one real Jupyter kernel, cell by cell, and keep the kernel for more (catalogs, checks)."""

from __future__ import annotations

import os
import queue
import time
from dataclasses import dataclass, field
from pathlib import Path

from jupyter_client.manager import KernelManager

from attention_steps.mode import FAST_ENV

#: The kernel's own start-up warnings (e.g. about TCP on localhost) are noise in test and grading logs.
QUIET = ["--IPKernelApp.log_level=ERROR"]


@dataclass
class CellResult:
    ok: bool
    error: str = ""  # "Name: message" of the exception, when there was one
    stdout: list[str] = field(default_factory=list)
    seconds: float = 0.0


class Kernel:
    """A python3 kernel started in ``cwd``. ``fast=True`` sets the grading fast path, like nbgrader's autograde."""

    def __init__(self, cwd: Path | str, *, fast: bool = True, extra_env: dict[str, str] | None = None):
        env = dict(os.environ)
        env.pop("NBGRADER_EXECUTION", None)
        if fast:
            env["NBGRADER_EXECUTION"] = "autograde"
            env[FAST_ENV] = "1"
        env["MPLBACKEND"] = "agg"
        env.update(extra_env or {})
        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel(cwd=str(cwd), env=env, extra_arguments=QUIET)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=120)

    def run(self, code: str, timeout: float = 300) -> CellResult:
        start = time.perf_counter()
        msg_id = self.kc.execute(code, store_history=False, allow_stdin=False)
        result = CellResult(ok=True)
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.km.interrupt_kernel()
                result.ok, result.error = False, f"TimeoutError: cell ran longer than {timeout:.0f} s"
                break
            try:
                msg = self.kc.get_iopub_msg(timeout=min(remaining, 5))
            except queue.Empty:
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "error":
                result.ok, result.error = False, f"{content['ename']}: {content['evalue']}"
            elif kind == "stream" and content.get("name") == "stdout":
                result.stdout.append(content["text"])
            elif kind == "status" and content["execution_state"] == "idle":
                break
        result.seconds = time.perf_counter() - start
        return result

    def close(self) -> None:
        try:
            self.kc.stop_channels()
        finally:
            self.km.shutdown_kernel(now=True)

    def __enter__(self) -> Kernel:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
