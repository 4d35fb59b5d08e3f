"""The adversarial demo class: broken and hostile submissions of notebook 00, each with the row it must get.

``python -m autograder grade qa/adversarial_class`` grades it; ``tests/test_adversarial_grading.py`` checks
every row, that no feedback file holds hidden-test text, that the gradebook, the sources and the other students'
folders are untouched, and that no sandbox process survives. Rebuilt from ``course/`` and ``solutions/`` by
:func:`build_adversarial_class` (``python -m qa classes`` does it with the demo class).

Each entry of :data:`STUDENTS`: what the submission does, the expected (softmax, one_hot_embed) points, and a
fragment the row's notes must contain ("" when no note is required).
"""

from __future__ import annotations

import copy
import shutil
from dataclasses import dataclass
from pathlib import Path

import nbformat

from autograder.paths import ROOT, release_notebook

from .catalog import solutions
from .demo import ASSIGNMENT
from .discrimination import load_catalog

ADVERSARIAL_CLASS = ROOT / "qa" / "adversarial_class"
WRONG_SOFTMAX = "no max subtraction (overflows for large inputs)"
RUFF = ('# The adversarial class is hostile and broken on purpose (syntax errors, os._exit, ...): never lint it.\n'
        'extend = "../../pyproject.toml"\nextend-exclude = ["*.ipynb", "**/*.ipynb"]\n')


@dataclass
class Case:
    what: str
    softmax: float
    one_hot_embed: float
    note: str = ""


STUDENTS: dict[str, Case] = {
    "alice": Case("a correct submission (graded first: the hostile ones aim at her folder)", 3, 2),
    "exit_early": Case("os._exit(0) in the second answer cell", 3, 0, "the kernel died"),
    "infinite_loop": Case("`while True: pass` in the first answer cell, before the def", 0, 2,
                          "interrupted at the cell"),
    "sleeper": Case("time.sleep(10**6) in the second answer cell, before the def", 3, 0, "interrupted at the cell"),
    "stubborn_loop": Case("ignores SIGINT and spins in an ordinary cell after softmax's tests", 3, 0,
                          "would not stop"),
    "slow_everywhere": Case("cells after softmax's tests sleep under the cell limit; the notebook limit stops them",
                            3, 0, "the notebook limit"),
    "fork_bomb": Case("forks until the process limit stops it (children sleep)", 3, 2, ""),
    "memory_hog": Case("allocates until the memory limit stops it, in the first answer cell, then lets go", 0, 2,
                       "out of memory"),
    "huge_print": Case("prints a 10 MB line", 3, 2, "output was cut"),
    "syntax_error": Case("a syntax error in the first answer cell", 0, 2, "syntax error"),
    "deleted_cells": Case("deleted the softmax answer cell and the one_hot_embed test cell", 0, 2, "was deleted"),
    "duplicated_cell": Case("copy-pasted the softmax answer cell (wrong copy first, right copy last)", 3, 2,
                            "appeared 2 times"),
    "renamed": Case("submitted as '00_orientation (1).ipynb'", 3, 2, "renamed"),
    "stripped_metadata": Case("all cell metadata stripped", 3, 2, "restored the grading metadata"),
    "not_a_notebook": Case("the file is not JSON", 0, 0, "not a readable notebook"),
    "always_equal": Case("returns objects whose __eq__ is always True", 0, 0, ""),
    "patch_helpers": Case("wrong softmax; rebinds assert_close/assert_tensor/forbid, patches the helper module "
                          "and torch.allclose/Tensor.__eq__", 0, 2, ""),
    "patch_midtest": Case("wrong softmax that patches the helpers and numpy while the tests run", 0, 2,
                          "tampered"),
    "disable_modes": Case("calls torch.softmax with torch function/dispatch modes switched off", 0, 2, ""),
    "persistent_mode": Case("wrong softmax; leaves a torch function mode on that fakes comparisons", 0, 2, ""),
    "write_everywhere": Case("tries to write the gradebook, the sources, the helper package, another student's "
                             "folder, the Python installation and /", 3, 2, ""),
    "kill_grader": Case("sends SIGKILL to every process it can see", 3, 2, ""),
    "read_hidden": Case("reads the hidden tests from disk and from IPython's history, and prints them", 3, 2,
                        "frame, garbage-collector"),
    "read_private": Case("reads ../../solutions, ~/.ssh and every home's .ssh, another student's folder", 3, 2, ""),
    "network": Case("opens a TCP connection to the grader's machine (127.0.0.1) and looks for a route out", 3, 2, ""),
    "displayhook": Case("wrong softmax that shows 'ok' as the test cell's result (sys.displayhook)", 0, 2,
                        "IPython / ipykernel internals"),
}

#: Learner code that changes how the kernel runs every later cell, so that the test cells "pass" without testing
#: anything; each submission also answers softmax wrongly (``return x``) and leaves one_hot_embed blank. One entry
#: per spelling: the verdict must not depend on which one.
HOOKS = {
    "hook_input_transformer": ("empties every later cell that asserts (IPython's input transformers)", '''
get_ipython().input_transformers_cleanup.append(lambda lines: [] if any("assert" in l for l in lines) else lines)
'''),
    "hook_ast_transformer": ("turns every later cell into `pass` (IPython's AST transformers)", '''
import ast as _ast
class _Pass(_ast.NodeTransformer):
    def visit_Module(self, node):
        return _ast.Module(body=[_ast.Pass()], type_ignores=[]) if "assert" in _ast.dump(node) else node
get_ipython().ast_transformers.append(_Pass())
'''),
    "hook_run_cell": ("replaces the shell's run_cell and run_cell_async with ones that report success", '''
from IPython.core.interactiveshell import ExecutionInfo, ExecutionResult
_shell = get_ipython()
_real_sync, _real_async = _shell.run_cell, _shell.run_cell_async
def _ok(raw_cell):
    result = ExecutionResult(ExecutionInfo(raw_cell, False, False, False, None))
    result.execution_count = _shell.execution_count
    return result
def _run_cell(raw_cell, *a, **k):
    return _ok(raw_cell) if "assert" in raw_cell or "probe" in raw_cell else _real_sync(raw_cell, *a, **k)
async def _run_cell_async(raw_cell, *a, **k):
    return _ok(raw_cell) if "assert" in raw_cell or "probe" in raw_cell else await _real_async(raw_cell, *a, **k)
_shell.run_cell, _shell.run_cell_async = _run_cell, _run_cell_async
'''),
    "hook_do_execute": ("replaces the kernel's do_execute with one that answers 'ok' without running", '''
_kernel = get_ipython().kernel
_real_execute = _kernel.do_execute
async def _do_execute(code, silent, *args, **kwargs):
    if "assert" in code or "grading" in code:
        return {"status": "ok", "execution_count": _kernel.execution_count, "payload": [], "user_expressions": {}}
    return await _real_execute(code, silent, *args, **kwargs)
_kernel.do_execute = _do_execute
'''),
}
STUDENTS.update({name: Case(what + "; softmax returns x, one_hot_embed blank", 0, 0, "IPython / ipykernel internals")
                 for name, (what, _) in HOOKS.items()})

#: A softmax with the right values reached by a route the exercise forbids, and the one_hot_embed solution. One
#: entry per spelling: (what, softmax source, softmax points, the note that must name it). A torch built-in is caught
#: in the kernel however it is reached (softmax scores 0); another library's built-in gives the right values without
#: touching torch's, so it keeps its points and is flagged for a human.
SHORTCUTS = {
    "worker_thread": ("hands torch.softmax to a worker thread started earlier (torch's modes are thread-local)", 0,
                      "threads", '''
import queue, threading
_jobs, _results = queue.Queue(), queue.Queue()
def _worker():
    while True:
        x, dim = _jobs.get()
        _results.put(torch.softmax(x, dim))
threading.Thread(target=_worker, daemon=True).start()
def softmax(x, dim=-1):
    _jobs.put((x, dim))
    return _results.get()
'''),
    "scipy_softmax": ("SciPy's softmax inside a hand-written autograd function", 3, "the built-in softmax", '''
import scipy.special
class _Softmax(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, dim):
        y = torch.from_numpy(scipy.special.softmax(x.detach().cpu().numpy(), axis=dim)).to(x.dtype)
        ctx.save_for_backward(y)
        ctx.dim = dim
        return y
    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return y * (grad - (grad * y).sum(ctx.dim, keepdim=True)), None
def softmax(x, dim=-1):
    return _Softmax.apply(x, dim)
'''),
}
STUDENTS.update({name: Case(what, points, 2, note) for name, (what, points, note, _) in SHORTCUTS.items()})
STUDENTS["gc_walk"] = Case("wrong softmax; walks the garbage collector through a spelling no source review reads "
                           "(the audit tripwire)", 0, 2, "audit events")
GC_WALK = '''
_everything = getattr(__import__("g" + "c"), "get_" + "objects")()  # looking for the guard's snapshot to edit
def softmax(x, dim=-1):
    return x
'''

# -- the hostile code -----------------------------------------------------------------------------------------------

ALWAYS_EQUAL = '''
class _Yes:
    def __eq__(self, other):
        return True
    def __getattr__(self, name):
        return lambda *a, **k: self
    shape = property(lambda self: None)

def softmax(x, dim=-1):
    return _Yes()
'''
ALWAYS_EQUAL_EMBED = '''
def one_hot_embed(ids, weight):
    return _Yes()
'''
PATCH_HELPERS = '''
import attention_steps
import attention_steps.testing as _testing
import contextlib
_noop = lambda *a, **k: None
assert_close = assert_tensor = _noop
forbid = lambda *a, **k: contextlib.nullcontext()
_testing.assert_close = _testing.assert_tensor = _noop
_testing.forbid = forbid
attention_steps.assert_close = _noop
torch.allclose = lambda *a, **k: True
torch.Tensor.__eq__ = lambda self, other: True
torch.isfinite = lambda t: torch.ones_like(t, dtype=torch.bool)
'''
PATCH_MIDTEST = '''
import numpy
import attention_steps.testing as _testing

def softmax(x, dim=-1):
    _testing.assert_close = lambda *a, **k: None
    numpy.abs = lambda a: a * 0
    torch.Tensor.__sub__ = lambda a, b: a * 0
    return x * 0
'''
DISABLE_MODES = '''
def softmax(x, dim=-1):
    with torch._C.DisableTorchFunction(), torch._C._DisableTorchDispatch():
        return torch.softmax(x, dim)
'''
PERSISTENT_MODE = '''
from torch.overrides import TorchFunctionMode

class _Liar(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if getattr(func, "__name__", "") in ("__gt__", "gt", "ne", "__ne__", "isnan", "isinf", "any"):
            return torch.zeros_like(out, dtype=torch.bool) if isinstance(out, torch.Tensor) else out
        return out

_Liar().__enter__()

def softmax(x, dim=-1):
    return torch.zeros_like(x)
'''
EXIT = "import os\nos._exit(0)\n"
LOOP = "while True:\n    pass\n"
SLEEP = "import time\ntime.sleep(10**6)\n"
STUBBORN = "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass\n"
SLOW = "import time\ntime.sleep({seconds})\n"
FORK = '''
import os, time
_children = 0
while _children < 100000:
    try:
        pid = os.fork()
    except OSError as e:
        print("fork stopped after", _children, "children:", e)
        break
    if pid == 0:
        time.sleep(3600)
        os._exit(0)
    _children += 1
'''
MEMORY = '''
_hog = []
try:
    while True:
        _hog.append(bytearray(256 * 2**20))
except MemoryError:
    print("memory limit reached after", len(_hog) * 256, "MiB")
    _hog.clear()  # let go, so that what the later cells need fits under the limit (whatever the limit)
    raise
'''
HUGE = 'print("x" * 10_000_000)\n'
SYNTAX = "def softmax(x, dim=-1)\n    return x\n"
WRITE = '''
import os, pathlib, sys, attention_steps
_root = str(pathlib.Path(attention_steps.__file__).resolve().parents[1])
_targets = [t.format(root=_root) for t in {targets!r}] + [sys.prefix]
for _t in _targets:
    try:
        p = pathlib.Path(_t)
        if p.is_dir():
            (p / "PWNED").write_text("pwned")
        else:
            with open(p, "a") as f:
                f.write("pwned")
        print("WROTE", _t)
    except OSError as e:
        print("denied", _t, type(e).__name__)
'''
KILL = '''
import os, signal
_others = [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()]
print("can see", len(_others), "other processes:", _others)
for _pid in _others:
    try:
        os.kill(_pid, signal.SIGKILL)
        print("sent SIGKILL to", _pid)
    except OSError as e:
        print("denied", _pid, type(e).__name__)
'''
READ = '''
import pathlib, attention_steps
_root = str(pathlib.Path(attention_steps.__file__).resolve().parents[1])
for _p in [p.format(root=_root) for p in {paths!r}]:
    p = pathlib.Path(_p)
    if not p.exists():
        print("missing", _p)
        continue
    try:
        files = [p] if p.is_file() else sorted(x for x in p.rglob("*") if x.is_file())[:50]
        for f in files:
            print(f, f.read_text(errors="replace"))
    except OSError as e:
        print("denied", _p, type(e).__name__)
'''
READ_PRIVATE = '''
import glob, os, pathlib
_places = ["../../solutions", os.path.expanduser("~/.ssh"), "/root/.ssh", *glob.glob("/home/*/.ssh"), {alice!r}]
for _p in _places:
    p = pathlib.Path(_p)
    if not p.exists():
        print("missing", _p)
        continue
    try:
        for f in [p] if p.is_file() else sorted(x for x in p.rglob("*") if x.is_file())[:20]:
            print("READ", f, f.read_text(errors="replace")[:200])
    except OSError as e:
        print("denied", _p, type(e).__name__)
'''
NETWORK = '''
import socket
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=5).close()
    print("CONNECTED to 127.0.0.1")
except OSError as e:
    print("no connection to 127.0.0.1:", type(e).__name__, e)
# a route to a public address, looked up without sending anything (UDP connect): TEST-NET-1, RFC 5737
try:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.1", 9))
        print("ROUTE to a public address from", s.getsockname()[0])
except OSError as e:
    print("no route out:", type(e).__name__, e)
print("interfaces:", [name for _, name in socket.if_nameindex()])
'''
DISPLAYHOOK = '''
import sys

def softmax(x, dim=-1):
    sys.displayhook("ok")  # shown as the test cell's result: nbgrader would read it as the cell's score
    return x
'''
READ_HISTORY = '''
import linecache
print("\\n".join(In))
print("".join("".join(v[2]) for v in list(linecache.cache.values()) if isinstance(v, tuple) and len(v) > 2))
'''


def _index(nb, grade_id: str) -> int:
    return next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def _edited(nb, edits) -> nbformat.NotebookNode:
    """``nb`` with each edit made: ``("answer", grade_id, source)`` replaces an answer cell, ``("after", grade_id,
    source)`` adds a cell after a graded one, ``("append", None, source)`` one at the end. Added cells get ids from
    their place, so a rebuilt class is the same file."""
    for kind, grade_id, source in edits:
        if kind == "answer":
            nb.cells[_index(nb, grade_id)].source = source
            continue
        cell = nbformat.v4.new_code_cell(source)
        cell["id"] = f"learner-{sum(c.get('id', '').startswith('learner-') for c in nb.cells)}"
        nb.cells.insert(_index(nb, grade_id) + 1 if kind == "after" else len(nb.cells), cell)
    return nb


def _submissions(grading_dir: Path, port: int) -> dict[str, nbformat.NotebookNode | str]:
    """student -> notebook (or raw text for a broken file): the release filled with the solutions, then each
    student's edits (one table entry per student), and the cases that change the file itself."""
    sol = solutions(ASSIGNMENT)
    wrong = load_catalog(ASSIGNMENT)["softmax"]["wrong"][WRONG_SOFTMAX]
    release = nbformat.read(release_notebook(ASSIGNMENT), as_version=4)

    def good():
        return _edited(copy.deepcopy(release), [("answer", name, sol[name]) for name in ("softmax", "one_hot_embed")])

    def softmax(source):
        return [("answer", "softmax", source)]

    def embed(source):
        return [("answer", "one_hot_embed", source)]

    def after_tests(source):
        return [("after", "test_softmax", source)]

    def here(path: Path) -> str:  # paths in the repository, found at run time as a hostile learner would
        return str(path).replace(str(ROOT), "{root}")

    targets = [here(grading_dir / "gradebook.db"), here(grading_dir / "submitted" / "alice"),
               here(grading_dir / "autograded" / "alice"), here(ROOT / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.py"),
               here(ROOT / "attention_steps" / "testing.py"), here(ROOT / "course" / ASSIGNMENT), "/"]
    paths = [here(ROOT / "solutions" / ASSIGNMENT), here(grading_dir / "release"), here(grading_dir / "gradebook.db"),
             here(ROOT / ".git"), here(ROOT / "autograder" / "external")]
    edits = {
        "alice": [],
        "exit_early": embed(EXIT + sol["one_hot_embed"]),
        "infinite_loop": softmax(LOOP + sol["softmax"]),
        "sleeper": embed(SLEEP + sol["one_hot_embed"]),
        "stubborn_loop": after_tests(STUBBORN),
        "slow_everywhere": after_tests(SLOW.format(seconds=12)) * 5,
        "fork_bomb": after_tests(FORK),
        "memory_hog": softmax(MEMORY + sol["softmax"]),
        "huge_print": after_tests(HUGE),
        "syntax_error": softmax(SYNTAX),
        "always_equal": softmax(ALWAYS_EQUAL) + embed(ALWAYS_EQUAL_EMBED),
        "patch_helpers": softmax(PATCH_HELPERS + wrong),
        "patch_midtest": softmax(PATCH_MIDTEST),
        "disable_modes": softmax(DISABLE_MODES),
        "persistent_mode": softmax(PERSISTENT_MODE),
        "write_everywhere": after_tests(WRITE.format(targets=targets)),
        "kill_grader": after_tests(KILL),
        "read_hidden": after_tests(READ.format(paths=paths)) + [("append", None, READ_HISTORY)],
        "read_private": after_tests(READ_PRIVATE.format(alice=str(grading_dir / "submitted" / "alice"))),
        "network": after_tests(NETWORK.format(port=port)),
        "displayhook": softmax(DISPLAYHOOK),
        "gc_walk": softmax(GC_WALK),
        **{name: softmax(source) for name, (_, _, _, source) in SHORTCUTS.items()},
    }
    out: dict[str, nbformat.NotebookNode | str] = {student: _edited(good(), e) for student, e in edits.items()}
    # hooking the kernel, with a wrong softmax and nothing else filled in
    for name, (_, hook) in HOOKS.items():
        out[name] = _edited(copy.deepcopy(release), softmax(hook + "\n\ndef softmax(x, dim=-1):\n    return x\n"))
    # the file itself: cells deleted, duplicated, stripped of metadata; renamed; not a notebook
    nb = good()
    del nb.cells[_index(nb, "test_one_hot_embed")]
    del nb.cells[_index(nb, "softmax")]
    out["deleted_cells"] = nb
    nb = _edited(good(), softmax(wrong))
    twin = copy.deepcopy(nb.cells[_index(nb, "softmax")])
    twin.source, twin["id"] = sol["softmax"], "softmax-copy"
    nb.cells.insert(_index(nb, "softmax") + 1, twin)
    out["duplicated_cell"] = nb
    out["renamed"] = good()
    nb = good()
    for i, cell in enumerate(nb.cells):
        cell.metadata = {}
        cell["id"] = f"stripped-{i}"
    out["stripped_metadata"] = nb
    out["not_a_notebook"] = '{"cells": [ this is not json'
    return out


def build_adversarial_class(out_dir: Path = ADVERSARIAL_CLASS, grading_dir: Path | None = None,
                            port: int = 9) -> Path:
    """Write the class (``<student>/00_orientation/…``) to ``out_dir``; hostile paths aim at ``grading_dir``, the
    network case at 127.0.0.1:``port`` (the tests listen there)."""
    from autograder.paths import GRADING

    out_dir = Path(out_dir)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    for student, nb in _submissions(Path(grading_dir or GRADING), port).items():
        folder = out_dir / student / ASSIGNMENT
        folder.mkdir(parents=True)
        name = f"{ASSIGNMENT} (1).ipynb" if student == "renamed" else f"{ASSIGNMENT}.ipynb"
        if isinstance(nb, str):
            (folder / name).write_text(nb)
        else:
            nbformat.write(nb, folder / name)
    (out_dir / "ruff.toml").write_text(RUFF)
    return out_dir
