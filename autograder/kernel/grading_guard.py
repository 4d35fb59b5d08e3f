"""The grading guard, kernel side: what the silent preamble, prologue and verdict call in a grading kernel.

The autograder puts this folder on the kernel's path (bound read-only into the sandbox) and calls, by name:
:func:`install` once before the learner's first cell (a snapshot of what the tests rely on: torch, numpy, math, the
builtins they use, the test helpers), :func:`restore` before each graded test cell (undo patches, pop foreign torch
modes, rebind helper names the cell uses) and :func:`verdict` after it (what changed while the tests ran). Between
those, ``attention_steps.testing`` re-checks on every helper call. It lives here, not in the helper package, so that
what learners import uses no private torch API; it uses them through ``attention_steps._torch_private``.
"""

from __future__ import annotations

import math
import os
import signal
import sys
from collections.abc import Iterable

import numpy
import torch
from torch.autograd import profiler_legacy as _profiler_legacy
from torch.overrides import TorchFunctionMode

from attention_steps import _torch_private as _private
from attention_steps._torch_private import TorchDispatchMode
from attention_steps.testing import TensorWatch, _DispatchGuard, _FunctionGuard, _state, forbid

_GUARDED_MODULES = ("torch", "torch._C", "torch.nn", "torch.nn.functional", "torch.linalg", "torch.special",
                    "torch.autograd", "torch.autograd.profiler_legacy", "torch.autograd.profiler", "torch.overrides",
                    "torch.testing",
                    "torch.utils._python_dispatch", "numpy", "numpy.random", "math", "builtins",
                    "attention_steps", "attention_steps.testing", __name__)
#: builtins the tests use (IPython itself swaps others, such as ``_``, ``exit`` and ``get_ipython``, all the time)
_GUARDED_BUILTINS = ("isinstance", "issubclass", "type", "len", "range", "abs", "min", "max", "sum", "all", "any",
                     "float", "int", "bool", "str", "repr", "tuple", "list", "dict", "set", "frozenset", "zip",
                     "enumerate", "sorted", "reversed", "round", "map", "filter", "iter", "next", "getattr",
                     "setattr", "hasattr", "callable", "print", "object", "super", "property", "slice", "id",
                     "hash", "format", "__import__", "globals", "locals", "vars", "exec", "eval", "compile",
                     "AssertionError", "ValueError", "TypeError", "RuntimeError", "Exception", "BaseException",
                     "NotImplementedError", "KeyError", "IndexError", "StopIteration")
_sys_modules = sys.modules
_GUARDED_CLASSES = tuple(c for c in (torch.Tensor, torch.nn.Module, torch.nn.Parameter, torch.nn.Linear,
                                     torch.Generator, TorchFunctionMode, TorchDispatchMode, _profiler_legacy.profile,
                                     torch.autograd.profiler.profile, TensorWatch)
                         if c is not None)


class _Guard:
    def __init__(self):
        self.modules = {}
        for name in _GUARDED_MODULES:
            module = sys.modules.get(name)
            if module is not None:
                saved = dict(module.__dict__)
                if name == "builtins":
                    saved = {k: saved[k] for k in _GUARDED_BUILTINS if k in saved}
                self.modules[name] = (module, saved)
        self.classes = [(cls, dict(cls.__dict__)) for cls in _GUARDED_CLASSES]
        self.trusted_names = {n: v for n, v in self.modules["attention_steps.testing"][1].items()
                              if not n.startswith("_") and callable(v)}
        package = self.modules.get("attention_steps")
        if package is not None:
            self.trusted_names.update({n: v for n, v in package[1].items() if not n.startswith("_") and callable(v)})
        self.trusted_names.update(torch=torch, nn=torch.nn, F=torch.nn.functional, np=numpy, numpy=numpy, math=math)

    def changes(self, *, repair: bool) -> list[str]:
        found = []
        for name, (module, saved) in self.modules.items():
            if _sys_modules.get(name) is not module:
                found.append(f"sys.modules[{name!r}] was replaced")
                if repair:
                    _sys_modules[name] = module
            current = module.__dict__
            for key, value in saved.items():
                new = current.get(key, _MISSING)
                if new is not value:
                    if key == "__warningregistry__" or _torch_rewrap(new, value):
                        saved[key] = new
                        continue
                    found.append(f"{name}.{key} was changed")
                    if repair:
                        setattr(module, key, value)
        for cls, saved in self.classes:
            current = dict(cls.__dict__)
            for key, value in saved.items():
                if current.get(key, _MISSING) is not value:
                    found.append(f"{cls.__module__}.{cls.__name__}.{key} was changed")
                    if repair:
                        setattr(cls, key, value)
            for key in current.keys() - saved.keys():
                if key in ("__annotations__", "__weakref__"):
                    continue
                found.append(f"{cls.__module__}.{cls.__name__}.{key} was added")
                if repair:
                    delattr(cls, key)
        found += _foreign_modes(repair=repair)
        return found


_MISSING = object()
_TORCH_DIR = torch.__file__.rsplit("/", 1)[0]


def _torch_rewrap(new, old) -> bool:
    """torch itself rewraps some functions when torch._dynamo is imported (e.g. torch.manual_seed)."""
    code = getattr(new, "__code__", None)
    return (getattr(new, "__wrapped__", None) is old and code is not None
            and code.co_filename.startswith(_TORCH_DIR))


def _foreign_modes(*, repair: bool) -> list[str]:
    found = []
    ours = (_FunctionGuard, _DispatchGuard, TensorWatch)  # TensorWatch only records what is created
    for what, length, get, pop in (
        ("torch function mode", _private.len_function_stack, _private.get_function_stack_at,
         _private.pop_function_stack),
        ("torch dispatch mode", _private.len_dispatch_stack, _private.get_dispatch_stack_at,
         _private.pop_dispatch_stack),
    ):
        for i in range(length()):
            mode = get(i)
            if type(mode) not in ours:
                found.append(f"a {what} ({type(mode).__name__}) is active")
        if repair and found and _state["profiling"] == 0:
            while length():
                pop()
    if not _private.torch_function_enabled():
        found.append("torch functions were switched off (DisableTorchFunction left on)")
    if _private.dispatch_key_excluded(_private.PYTHON_KEY):
        found.append("the Python dispatch key was excluded")
    return found


def _tripwire(path: str, events: tuple[str, ...]) -> None:
    """Append the name of each audit event that starts with one of ``events``, once, to ``path`` (a file the grader
    created and reads afterwards).

    An audit hook cannot be removed. Learner code can still close the file or delete it: the grader then finds it
    missing or short of its header, which it reports as well. A flag for a human, never a score."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    write, seen, events = os.write, set(), tuple(events)
    write(fd, b"tripwire\n")
    own = {os.getpid(), os.getpgid(0)}

    def hook(event, args):
        if event in seen or not event.startswith(events):
            return
        if event in ("os.kill", "os.killpg") and args[0] in own and args[1] == signal.SIGINT:
            return  # ipykernel interrupting itself, as the grader asked it to (a cell past its time limit)
        seen.add(event)
        try:
            write(fd, event.encode() + b"\n")
        except OSError:
            pass

    sys.addaudithook(hook)


def install(tripwire: str | None = None, events: Iterable[str] = ()) -> None:
    """Snapshot what the tests rely on (called once, before the learner's first cell); with ``tripwire``, also
    record into that file the audit events the kernel raises from now on whose names start with one of ``events``."""
    if not _private.GUARD_AVAILABLE:
        raise RuntimeError(f"the grading guard needs torch internals this torch {torch.__version__} lacks: "
                           + ", ".join(_private.MISSING))
    if _state["guard"] is None:
        # A first dispatch mode imports torch._dynamo, which rewraps some torch functions: do it before the snapshot.
        with forbid("softmax"):
            torch.ones(1) + 1
        _state["guard"] = _Guard()
        if tripwire is not None:
            _tripwire(tripwire, tuple(events))


def restore(namespace: dict, names: Iterable[str] = ()) -> list[str]:
    """Undo patches made by earlier cells and rebind the helper names a test cell uses; return what was undone."""
    guard = _state["guard"]
    if guard is None:
        return []
    undone = guard.changes(repair=True)
    for name in names:
        trusted = guard.trusted_names.get(name)
        if trusted is not None and namespace.get(name, _MISSING) is not trusted:
            namespace[name] = trusted
            undone.append(f"the name {name!r} was rebound")
    _state["undone"] = undone
    return undone


def verdict() -> str:
    """Empty when the tests' tools are as the preamble left them; otherwise what changed during the test."""
    guard = _state["guard"]
    if guard is None:
        return "the grading guard is not installed"
    found = guard.changes(repair=True)
    return "; ".join(found[:5])
