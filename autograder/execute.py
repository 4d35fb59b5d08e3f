"""nbgrader's Execute step, hardened: sandboxed kernel, time and output limits, a row for every submission.

:class:`SandboxExecute` replaces ``nbgrader.preprocessors.Execute`` in ``Autograde.autograde_preprocessors``. It
runs the notebook cell by cell in the sandbox kernel (``autograder/sandbox.py``) and never lets one submission
break grading. The loop over the cells is its own, because nbclient's ends at the first cell that times out or kills
the kernel; everything it adds around a cell is on nbclient's hooks:

- ``on_notebook_start``: a silent grading preamble installs the integrity guard (``autograder/kernel/
  grading_guard.py``) and the audit tripwire;
- ``on_cell_execute``: before each graded test cell the guard restores what the learner may have patched (torch,
  numpy, the test helpers and their names in the notebook);
- ``on_cell_executed``: after it, the guard's verdict (tampered with while the tests ran?) and the item's hidden
  tests, run by the probe; what the kernel wrote is taken back as bytes for the grader to judge
  (:class:`autograder.scoring.JudgeHidden`, the next step of the chain, wherever this one ran); notes on memory,
  syntax and cut output;
- the loop: a cell past its time limit is interrupted, and the kernel killed if it does not stop; past the
  notebook's limit, or after the kernel died (``os._exit``, a crash, a resource limit), every remaining cell gets
  an error output saying why it did not run, so its tests score 0 and the rest of the notebook keeps its points;
- ``output``: a cell's printed output is cut at ``cell_output_bytes`` (nbgrader's LimitOutput only counts lines,
  and a single 10 MB line would land in the feedback).

What happened (one line each) goes to ``resources["attention_steps"]`` with the probes' results and the seed of the
hidden tests' inputs; JudgeHidden writes the notes beside the gradebook for the report and the student's feedback.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import secrets
import shutil
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbclient.util import ensure_async, run_sync
from nbformat import NotebookNode
from nbgrader.preprocessors import Execute
from traitlets import Bool, Integer

from . import external, sandbox
from .config import Limits
from .notebooks import error_output
from .preflight import FLAG

#: The kernel-side guard (autograder/kernel/grading_guard.py, on the kernel's path): called by these names only.
GUARD_FOLDER = Path(__file__).with_name("kernel")
PREAMBLE = ("import grading_guard as __ag_g; __ag_g.install({tripwire!r}, {events!r})\nimport grading_probe\n"
            "del __ag_g, grading_probe")
#: audit events (``sys.addaudithook``) that no notebook of this course raises and hooking code does: native code,
#: walking the interpreter's objects and frames, tracing, new audit hooks, code objects made by hand, processes and
#: sockets. The grading kernel records them (grading_guard's tripwire); a submission that raised one is flagged.
TRIPWIRE_EVENTS = ("ctypes.", "gc.get_referrers", "gc.get_referents", "gc.get_objects", "sys._current_frames",
                   "sys.setprofile", "sys.settrace", "sys.addaudithook", "code.__new__", "os.fork", "os.forkpty",
                   "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.kill", "os.killpg", "subprocess.Popen",
                   "socket.")
PROLOGUE = "__import__('grading_guard').restore(globals(), {names!r})"
VERDICT = "__import__('grading_guard').verdict()"
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


#: sent to a kernel started ahead (:meth:`SandboxExecute.prestart`): the modules every grading run imports (the
#: guard imports torch), so that they are loaded when the submission arrives; nothing is installed or run yet.
WARMUP = "import grading_guard, grading_probe, attention_steps\ndel grading_guard, grading_probe, attention_steps"


@dataclass
class Spare:
    """A kernel started ahead: its manager, sandbox (None when trusted), socket folder (trusted), the client that sent
    the warm-up, and the host folder the kernel sees as its working folder."""

    km: object
    box: object
    sockets: str | None
    client: object
    files: Path

    def alive(self) -> bool:
        try:
            return bool(_wait(self.km.is_alive()))
        except Exception:  # noqa: BLE001
            return False

    def fill(self, files: dict[str, bytes]) -> None:
        """Copy a submission's files into the kernel's working folder."""
        sandbox.write_files(self.files, files, getattr(self.box, "uid", -1))

    def discard(self) -> None:
        try:
            self.client.stop_channels()
        except Exception:  # noqa: BLE001
            pass
        _stop(self.km, self.box)
        if self.sockets:
            shutil.rmtree(self.sockets, ignore_errors=True)


def _stop(km, box) -> None:
    """Kill a kernel: its sandbox first (every process in it), then the manager's own process."""
    if box is not None:
        box.destroy()
    try:
        _wait(km.shutdown_kernel(now=True))
    except Exception:  # noqa: BLE001 - it may be gone already
        pass


_empty: list[Path] = []


def _empty_folder() -> Path:
    """An empty folder, this process's own, to start kernels ahead in (their launcher copies its contents)."""
    if not _empty:
        import atexit

        _empty.append(Path(tempfile.mkdtemp(prefix="ag-empty-")))
        atexit.register(shutil.rmtree, _empty[0], True)
    return _empty[0]


def _wait(value):
    """The result of a kernel client/manager call, which may be a coroutine (nbgrader uses the async classes)."""
    if inspect.isawaitable(value):
        async def _get():
            return await value

        return run_sync(_get)()
    return value


def _graded(cell) -> bool:
    return bool(cell.metadata.get("nbgrader", {}).get("grade", False))


def _size(out: NotebookNode) -> int:
    if out.get("output_type") == "stream":
        return len(out.get("text", ""))
    if out.get("output_type") == "error":
        return sum(len(t) for t in out.get("traceback", [])) + len(out.get("evalue", ""))
    return sum(len(v) if isinstance(v, str) else len(json.dumps(v)) for v in out.get("data", {}).values())


class SandboxExecute(Execute):
    """Execute, sandboxed and limited. Settings are traits (``c.SandboxExecute.notebook_timeout`` …)."""

    notebook_timeout = Integer(300, help="wall-clock seconds for the whole notebook").tag(config=True)
    kill_grace = Integer(5, help="seconds an interrupted cell gets to stop before the kernel is killed").tag(
        config=True)
    cell_output_bytes = Integer(100_000).tag(config=True)
    notebook_output_bytes = Integer(2_000_000).tag(config=True)
    memory_bytes = Integer(Limits.memory_bytes).tag(config=True)
    cpu_seconds = Integer(Limits.cpu_seconds).tag(config=True)
    processes = Integer(Limits.processes).tag(config=True)
    file_bytes = Integer(Limits.file_bytes).tag(config=True)

    trusted = Bool(False, help="run kernels without the sandbox (only for notebooks you wrote yourself)").tag(
        config=True)
    spare = None  # a kernel from :meth:`prestart` for the next :meth:`preprocess` (which takes it)

    # -- kernel start: the sandbox kernelspec, the ipc transport, a private folder, the limits --------------------
    def create_kernel_manager(self):
        if not self.trusted:
            sandbox.use_kernelspec()
            self.kernel_name = sandbox.KERNEL_NAME
        return super().create_kernel_manager()

    async def async_start_new_kernel(self, **kwargs):
        env = {k: v for k, v in os.environ.items() if k != "JPY_PARENT_PID"}  # ipykernel would watch a pid it can't see
        env["PYTHONPATH"] = str(GUARD_FOLDER)  # in the sandbox: where the launcher binds it
        env["NBGRADER_EXECUTION"] = "autograde"  # nbgrader sets it around its Execute; a grading worker does not
        env["OMP_NUM_THREADS"] = "1"  # one torch thread per kernel: the same in and out of the sandbox, any --jobs
        self.km.transport, self.km.cache_ports = "ipc", False  # sockets as files: no TCP, nothing to eavesdrop on
        if self.trusted:
            self._sockets = tempfile.mkdtemp(prefix="agk-")
            self.km.ip = os.path.join(self._sockets, "k")
        else:
            self._box = sandbox.Box.new()
            limits = Limits(memory_bytes=self.memory_bytes, cpu_seconds=self.cpu_seconds,
                            processes=self.processes, file_bytes=self.file_bytes)
            env.update(self._box.kernel_env(limits))
            # no network in the sandbox: the kernel's sockets are files in a folder bound into it
            self.km.ip = str(self._box.base / "sockets" / "k")
        kwargs["env"] = env
        return await super().async_start_new_kernel(**kwargs)

    start_new_kernel = run_sync(async_start_new_kernel)

    # -- output cap -----------------------------------------------------------------------------------------------
    def output(self, outs, msg, display_id, cell_index):
        before = len(outs)
        result = super().output(outs, msg, display_id, cell_index)
        if len(outs) > before:
            used = self._cell_bytes.get(cell_index, 0)
            cap = min(self.cell_output_bytes, max(self.notebook_output_bytes - self._total_bytes, 0))
            for out in outs[before:]:
                size = _size(out)
                if used + size > cap:
                    self._cut.add(cell_index)
                    if out.get("output_type") == "stream" and used < cap:
                        out["text"] = out["text"][: cap - used]
                        size = cap - used
                    else:
                        outs.remove(out)
                        continue
                used += size
                self._total_bytes += size
            self._cell_bytes[cell_index] = used
        return result

    # -- silent requests to the kernel (the grader's, never stored in its history) ---------------------------------
    async def _ask(self, code: str, *, expressions: dict | None = None, timeout: float = 30):
        """Run code silently in the kernel; return the reply content, or None when there was no reply."""
        msg_id = self.kc.execute(code, silent=True, store_history=False, user_expressions=expressions or {},
                                 allow_stdin=False)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                reply = await ensure_async(self.kc.get_shell_msg(
                    timeout=min(1.0, max(deadline - time.monotonic(), 0.01))))
            except Exception:  # noqa: BLE001 - queue.Empty, or a dead kernel's closed channel
                if not await ensure_async(self.km.is_alive()):
                    return None
                continue
            if reply["parent_header"].get("msg_id") == msg_id:
                return reply["content"]
        return None

    _silent = run_sync(_ask)  # the same, from the cell loop (outside nbclient's event loop)

    def _note(self, text: str) -> None:
        if text not in self._notes:
            self._notes.append(text)

    @staticmethod
    def _label(cell, index: int) -> str:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        return f"cell {index + 1}" + (f" ({gid})" if gid else "")

    def _kill(self) -> None:
        _stop(self.km, self._box)

    def _responsive(self) -> bool:
        content = self._silent("pass", timeout=self.kill_grace)
        return content is not None

    # -- a kernel started before its submission is known (autograder/batch.py) ------------------------------------
    def prestart(self) -> Spare:
        """Start a kernel (sandboxed unless ``trusted``) in an empty folder and send it the grading imports, without
        waiting: it boots in its own processes while the worker grades the current submission. The next submission
        gets it (:attr:`spare`), its files copied in first; used once, destroyed with that submission."""
        from nbclient import NotebookClient

        folder = str(_empty_folder())
        NotebookClient.__init__(self, nbformat.v4.new_notebook(), None, resources={"metadata": {"path": folder}})
        self._box, self._sockets = None, None
        self.km = self.create_kernel_manager()
        self.start_new_kernel()
        client = self.km.blocking_client()
        client.start_channels()
        client.execute(WARMUP, silent=True, store_history=False, allow_stdin=False)  # nobody waits for the reply
        files = self._box.base / "work" if self._box is not None else Path(folder)
        return Spare(self.km, self._box, self._sockets, client, files)

    def preprocess(self, nb, resources=None, km=None):
        """nbclient's run, with our own loop over the cells: nbclient's ``async_execute`` ends at the first cell that
        times out or kills the kernel, and grading must go on (the rest of the notebook keeps its points, the cells
        that could not run say why). What grading adds around each cell is on nbclient's hooks (below)."""
        from nbclient import NotebookClient

        self.shutdown_kernel = "immediate"  # its sandbox is destroyed next: no graceful shutdown to wait for
        spare, self.spare = self.spare, None
        NotebookClient.__init__(self, nb, spare.km if spare is not None else km)
        self._box, self._sockets = (spare.box, spare.sockets) if spare is not None else (None, None)
        if spare is not None:
            self.owns_km = True  # nbclient shuts it down at the end, as a kernel it started
            spare.client.stop_channels()
        self.reset_execution_trackers()
        self._check_assign_resources(resources)
        self._notes: list[str] = []
        self._cell_bytes: dict[int, int] = {}
        self._total_bytes = 0
        self._cut: set[int] = set()
        self._tripwire = None
        self._resources = resources if resources is not None else {}
        self._assignment = self._resources.get("nbgrader", {}).get("assignment", "")
        found = self._resources.setdefault("attention_steps", {})
        # the hidden tests' inputs: new for every grading run (the class grader draws it and hands it in)
        self._seed = found.setdefault("seed", secrets.randbits(63))
        found["probes"] = {}
        self.nb.metadata.setdefault("attention_steps", {})["hidden_test_seed"] = self._seed
        self._cell_timeout = cell_timeout = self.timeout or 60
        self._start = time.monotonic()
        phases: dict[str, float] = {}
        stopped = None  # why the remaining cells do not run
        try:
            with self.setup_kernel():  # starts the kernel; on_notebook_start runs the grading preamble
                info = self.wait_for_reply(self.kc.kernel_info())
                phases["kernel start"] = time.monotonic() - self._start  # the sandbox, the kernel, the preamble
                if info:
                    self.nb.metadata["language_info"] = info["content"]["language_info"]
                for index, cell in enumerate(self.nb.cells):
                    if cell.cell_type != "code":
                        continue
                    if stopped:
                        cell.outputs = [error_output("NotRun", stopped)]
                        continue
                    remaining = self._left()
                    if remaining <= 1:
                        stopped = f"not run: the notebook reached its time limit of {self.notebook_timeout} s"
                        self._note(f"stopped at {self._label(cell, index)}: the whole notebook ran longer than "
                                   f"{self.notebook_timeout} s; cells from there on scored 0")
                        cell.outputs = [error_output("NotRun", stopped)]
                        continue
                    self.timeout = int(max(1, min(cell_timeout, remaining)))
                    try:
                        self.preprocess_cell(cell, resources, index)
                    except CellTimeoutError:
                        _wait(self.km.interrupt_kernel())
                        limit = (f"the cell limit of {self.timeout} s" if self.timeout >= cell_timeout else
                                 f"the notebook limit of {self.notebook_timeout} s")
                        cell.outputs.append(error_output("TimeoutError", f"the cell was stopped at {limit}"))
                        if self._responsive():
                            self._note(f"{self._label(cell, index)} was interrupted at {limit}")
                        else:
                            stopped = f"not run: an earlier cell would not stop at {limit}"
                            self._note(f"{self._label(cell, index)} would not stop at {limit}: the kernel was "
                                       "killed, later cells scored 0")
                            self._kill()
                        continue
                    except DeadKernelError:
                        cell.outputs.append(error_output("KernelDied", "the kernel died while running this cell "
                                                   "(os._exit, a crash, or a memory / CPU-time limit)"))
                        stopped = "not run: the kernel died in an earlier cell"
                        self._note(f"the kernel died in {self._label(cell, index)} (os._exit, a crash, or a "
                                   "memory / CPU-time limit); later cells scored 0")
                        continue
                    if not _wait(self.km.is_alive()):
                        stopped = "not run: the kernel died in an earlier cell"
                        self._note(f"the kernel died in {self._label(cell, index)}; later cells scored 0")
                phases["cells"] = time.monotonic() - self._start - phases["kernel start"]
                found["kernel cpu"] = self._kernel_cpu()
                self._read_tripwire()  # before the kernel shuts down (its shutdown signals its own children)
        except DeadKernelError:
            self._note("the kernel died during shutdown")
        finally:
            pid = self._box.sandbox_pid() if self._box is not None else 0
            self._read_tripwire()
            if self._box is not None:
                self._box.destroy()
            if self._sockets:
                shutil.rmtree(self._sockets, ignore_errors=True)
            phases["shutdown"] = time.monotonic() - self._start - sum(phases.values())
            found["seconds"] = phases  # wall clock: where a submission's time went
            found["notes"] = list(self._notes)
            found["kernel"] = [str(self._box.uid if self._box is not None else -1), str(pid)]
        self.set_widgets_metadata()
        return self.nb, self.resources

    def _kernel_cpu(self) -> float:
        """CPU seconds used so far by the kernel and everything in its sandbox (0 when they can't be read)."""
        import psutil

        try:
            pid = self._box.sandbox_pid() if self._box is not None else self.km.provisioner.process.pid
            top = psutil.Process(pid)
            total = 0.0
            for proc in [top, *top.children(recursive=True)]:
                t = proc.cpu_times()
                total += t.user + t.system + t.children_user + t.children_system
            return round(total, 3)
        except (psutil.Error, AttributeError, ValueError):
            return 0.0

    def _left(self) -> float:
        """Seconds left of the notebook's time limit."""
        return self.notebook_timeout - (time.monotonic() - self._start)

    # -- nbclient's hooks: what grading adds around the learner's cells ------------------------------------------
    async def on_notebook_start(self, notebook, **_):
        """The kernel is up, no cell has run: install the integrity guard and the audit tripwire."""
        tripwire = self._tripwire_file()
        preamble = await self._ask(PREAMBLE.format(tripwire=tripwire, events=TRIPWIRE_EVENTS),
                                   timeout=self._cell_timeout)
        if not preamble or preamble.get("status") != "ok":
            self._note("the grading preamble could not run in the kernel")

    async def on_cell_execute(self, cell, cell_index, **_):
        """Just before a cell runs: before a test cell, restore what the learner may have patched."""
        if _graded(cell):
            names = sorted(set(_IDENT.findall(cell.source)))
            await self._ask(PROLOGUE.format(names=names), timeout=self._cell_timeout)

    async def on_cell_executed(self, cell, cell_index, execute_reply, **_):
        """A cell ran to its reply (a timeout or a dead kernel never gets here: the loop handles those): notes, and
        for a test cell the integrity verdict and the item's hidden tests, run by the probe."""
        super().on_cell_executed(cell=cell, cell_index=cell_index, execute_reply=execute_reply)
        errors = {o.get("ename") for o in cell.outputs if o.get("output_type") == "error"}
        if "MemoryError" in errors:
            self._note(f"{self._label(cell, cell_index)} ran out of memory (limit {self.memory_bytes >> 20} MB)")
        if errors & {"SyntaxError", "IndentationError", "TabError"}:
            self._note(f"{self._label(cell, cell_index)} has a syntax error")
        if cell_index in self._cut:
            cell.outputs.append(NotebookNode(output_type="stream", name="stderr",
                                             text=f"\n[output cut: more than {self.cell_output_bytes:,} characters]\n"))
            self._note(f"{self._label(cell, cell_index)} printed too much; its output was cut")
        if not _graded(cell) or not await self._verdict(cell, cell_index):
            return
        grade_id = cell.metadata.nbgrader["grade_id"]
        if external.has_check(self._assignment, grade_id):
            await self._probe_hidden(cell, grade_id, max(1, min(self._cell_timeout, self._left())))

    def _tripwire_file(self) -> str | None:
        """The kernel's path of the file its audit tripwire appends to (grading_guard.install); created here, in the
        sandbox's work folder, so that its removal shows. None without a sandbox."""
        if self._box is None:
            return None
        token = secrets.token_hex(8)
        host = self._box.base / "work" / f".tripwire-{token}"
        host.touch()
        os.chmod(host, 0o666)  # the kernel runs as its own uid
        self._tripwire = host
        return f"{sandbox.WORK}/.tripwire-{token}"

    def _read_tripwire(self) -> None:
        """Flag (never score) the audit events the kernel raised that no notebook of this course raises."""
        host, self._tripwire = getattr(self, "_tripwire", None), None
        if host is None:
            return
        try:
            fd = os.open(host, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            try:
                lines = os.read(fd, 1 << 16).decode(errors="replace").splitlines() \
                    if stat.S_ISREG(os.fstat(fd).st_mode) else []
            finally:
                os.close(fd)
        except OSError:
            lines = []
        if not lines or lines[0] != "tripwire":
            self._note(f"{FLAG}: the kernel's audit record is missing or was replaced (removed by the learner's code, "
                       "or the grading preamble did not run)")
            return
        known = [e for e in lines[1:] if e.startswith(TRIPWIRE_EVENTS)]
        if known:
            self._note(f"{FLAG}: the kernel raised audit events that no notebook of this course raises: "
                       f"{', '.join(dict.fromkeys(known))[:300]}")
        if len(known) < len(lines) - 1:
            self._note(f"{FLAG}: something other than the grader wrote into the kernel's audit record")

    async def _probe_hidden(self, cell, grade_id: str, timeout: float) -> None:
        """The item's hidden tests: the probe runs the learner's code on fresh inputs; what it wrote is taken back
        as bytes into ``resources`` (the grader judges it: :class:`autograder.scoring.JudgeHidden`)."""
        if any(o.get("output_type") == "error" for o in cell.outputs):
            return  # the visible tests failed: no points whatever the hidden ones say
        token = secrets.token_hex(8)
        if self._box is not None:
            host, inside = self._box.base / "work" / f".probe-{token}", f"{sandbox.WORK}/.probe-{token}"
        else:
            host = Path(tempfile.mkdtemp(prefix="ag-probe-")) / token
            inside = str(host)

        async def execute(code: str) -> bool:
            reply = await self._ask(code, timeout=timeout)
            return reply is not None and reply.get("status") == "ok"

        collected = await external.collect(self._assignment, grade_id, self._seed, host, inside, execute)
        if self._box is None:
            shutil.rmtree(host.parent, ignore_errors=True)
        self._resources["attention_steps"]["probes"][grade_id] = collected

    async def _verdict(self, cell, index: int) -> bool:
        """The integrity guard's word on the test cell that just ran (grading_guard.verdict)."""
        content = await self._ask("pass", expressions={"v": VERDICT}, timeout=30)
        verdict = None
        if content and content.get("status") == "ok":
            value = content.get("user_expressions", {}).get("v", {})
            if value.get("status") == "ok":
                verdict = value.get("data", {}).get("text/plain", "")
        if verdict in ("''", '""'):
            return True
        why = ("the integrity check of the tests could not run" if verdict is None else
               "the tests' tools were tampered with while they ran: " + verdict.strip("'\""))
        cell.outputs.append(error_output("IntegrityError", f"grading integrity: {why}"))
        self._note(f"{self._label(cell, index)} scored 0: {why}")
        return False
