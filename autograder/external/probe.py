"""Hidden tests as data, grader side: write a probe's inputs, read what the kernel wrote, judge it here.

An item's hidden checks are :class:`Step`\\ s (what to call, on which arrays, with what upstream gradient) and, for
each step, an ``expect`` function that the grader runs in its own process on the kernel's results (a
:class:`Result`), against references it computes itself. Nothing here runs in the learner's kernel, and nothing the
kernel writes is trusted beyond being data: files are read with ``allow_pickle=False``, size caps, no links, and
names the probe could have written only.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import stat
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

#: the most the kernel may hand back for one item: result.json, and the arrays together
MAX_JSON_BYTES = 1 << 20
MAX_ARRAY_BYTES = 64 << 20
_ARRAY_NAME = re.compile(r"^out\d{1,6}\.npy$")
_ALLOWED_KINDS = set("biuf")  # bool, signed, unsigned, float: never objects, strings or structured arrays


class ProbeError(Exception):
    """The kernel's results could not be read as data (missing, too large, malformed): the item fails."""


@dataclass
class Step:
    """One call the probe makes in the kernel, and what the grader expects of its result.

    ``args``/``kwargs`` hold numpy arrays (written as ``.npy`` and loaded as tensors; ``dtype`` in :func:`tensor`
    forces a torch dtype such as float16), ``ref(name)`` for an object kept by an earlier step, or JSON values.
    ``expect(result) -> None | str`` returns why the result is wrong (None when it is right).
    """

    call: str | dict
    args: list = field(default_factory=list)
    kwargs: dict = field(default_factory=dict)
    expect: Callable[[Result], str | None] | None = None
    forbid: tuple[str, ...] = ()
    exercise: str = ""
    upstream: Any = None           # gradient of the output for a backward pass (array)
    output: int = 0                # which element of a tuple output the upstream gradient belongs to
    keep: str | None = None        # keep the returned object under this name for later steps
    facts: tuple[str, ...] = ()    # "parameters", "type", or attribute names of the returned object
    set_parameters: dict = field(default_factory=dict)  # on ``on``: parameter name -> array
    on: str | None = None
    parameter_grads: str | None = None  # a kept module whose parameters' gradients to return
    seed: int | None = None
    stand_ins: dict = field(default_factory=dict)  # notebook name -> trusted version (kernel/grading_references.py)
    watch: bool = False            # record the largest tensor the call creates (facts["created"])


def tensor(array: np.ndarray, *, dtype: str | None = None, requires_grad: bool = False,
           permute: tuple[int, ...] | None = None) -> dict:
    """An argument loaded as a tensor in the kernel (``dtype``: a torch dtype name, e.g. ``"float16"``; ``permute``:
    the learner gets ``tensor.permute(*permute)``, a non-contiguous view of ``array``)."""
    return {"__array__": np.asarray(array), "dtype": dtype, "requires_grad": requires_grad,
            "permute": list(permute) if permute else None}


def dtype(name: str) -> dict:
    """A ``torch.dtype`` argument (``dtype("float64")`` is ``torch.float64``), e.g. for ``module.to``."""
    return {"torch_dtype": name}


def device(name: str) -> dict:
    """A ``torch.device`` argument."""
    return {"device": name}


@dataclass(frozen=True)
class MetaTensor:
    """A tensor on PyTorch's ``meta`` device came back: it has a shape and a dtype, and no values."""

    shape: tuple
    dtype: str


@dataclass(frozen=True)
class Opaque:
    """A value that is not a tensor, number, string or sequence came back: only its type's name is known."""

    type: str


def generator(seed: int) -> dict:
    """A ``torch.Generator`` argument, seeded with ``seed``."""
    return {"generator": int(seed)}


def ref(name: str) -> dict:
    return {"ref": name}


def trusted(name: str) -> dict:
    """A call of the grader's own kernel-side helper ``name`` (``autograder/kernel/grading_references.py``)."""
    return {"trusted": name}


def method(kept: str, name: str) -> dict:
    return {"ref": kept, "attr": name}


@dataclass
class Result:
    """What the kernel wrote for one step, loaded: ``value`` (arrays as numpy), ``error`` ("Type: message" or None),
    ``forbidden``, ``args_after`` (the array arguments after the call), ``grads``, ``facts``."""

    error: str | None
    forbidden: bool
    value: Any = None
    dtype: Any = None              # the torch dtype name(s) of the value, same structure as ``value``
    args_after: list = field(default_factory=list)
    grads: dict = field(default_factory=dict)
    facts: dict = field(default_factory=dict)


# -- writing ----------------------------------------------------------------------------------------------------------

def write_spec(folder: Path, steps: list[Step]) -> None:
    """Write ``spec.json`` and the input arrays of ``steps`` into ``folder`` (created, readable by the kernel)."""
    folder.mkdir(mode=0o755, parents=True, exist_ok=False)
    counter = iter(range(1_000_000))

    def encode(value):
        if isinstance(value, np.ndarray):
            value = tensor(value)
        if isinstance(value, dict) and "__array__" in value:
            name = f"in{next(counter)}.npy"
            np.save(folder / name, value["__array__"], allow_pickle=False)
            return {"array": name, "dtype": value["dtype"], "requires_grad": value["requires_grad"],
                    "permute": value.get("permute")}
        if isinstance(value, tuple):
            return {"tuple": [encode(v) for v in value]}
        if isinstance(value, list):
            return [encode(v) for v in value]
        if isinstance(value, (np.integer, np.floating)):
            return value.item()
        return value

    spec = []
    for number, step in enumerate(steps):
        entry = {"id": number, "call": step.call, "args": [encode(a) for a in step.args],
                 "kwargs": {k: encode(v) for k, v in step.kwargs.items()}, "forbid": list(step.forbid),
                 "exercise": step.exercise, "output": step.output, "keep": step.keep, "facts": list(step.facts),
                 "set_parameters": {k: encode(v) for k, v in step.set_parameters.items()}, "on": step.on,
                 "parameter_grads": step.parameter_grads, "seed": step.seed, "stand_ins": step.stand_ins,
                 "watch": step.watch,
                 "upstream": encode(step.upstream) if step.upstream is not None else None}
        if step.call is None:
            entry.pop("call")
        spec.append(entry)
    (folder / "spec.json").write_text(json.dumps({"steps": spec}))


# -- reading ----------------------------------------------------------------------------------------------------------

def _open_regular(name: str, limit: int, folder: int) -> bytes:
    """The bytes of a regular file the kernel wrote in the folder open as ``folder`` (no links, at most ``limit``
    bytes)."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0), dir_fd=folder)
    except OSError as e:  # a link (ELOOP), a folder, …
        raise ProbeError(f"{name} cannot be read as a plain file ({e.strerror})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ProbeError(f"{name} is not a regular file")
        if info.st_size > limit:
            raise ProbeError(f"{name} is larger than {limit} bytes")
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read(limit + 1)
    finally:
        os.close(fd)


def take_results(folder: Path) -> dict[str, bytes]:
    """What the probe wrote into ``folder``, as bytes: ``result.json`` and the ``out*.npy`` arrays, plain files only,
    within the size caps (ProbeError otherwise). Taken where the kernel ran; judged wherever the grader is."""
    try:
        dfd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as e:  # the kernel removed the folder, or put a link in its place
        raise ProbeError(f"the probe's folder cannot be read ({e.strerror})") from None
    try:
        files, budget = {}, MAX_ARRAY_BYTES
        for name in sorted(os.listdir(dfd)):
            if name == "result.json":
                files[name] = _open_regular(name, MAX_JSON_BYTES, dfd)
            elif _ARRAY_NAME.match(name):
                files[name] = _open_regular(name, budget, dfd)
                budget -= len(files[name])
        return files
    finally:
        os.close(dfd)


class _Reader:
    def __init__(self, files: dict[str, bytes]):
        self.files, self.budget = files, MAX_ARRAY_BYTES

    def array(self, entry: dict) -> np.ndarray:
        name = entry.get("array")
        if not isinstance(name, str) or not _ARRAY_NAME.match(name):
            raise ProbeError(f"unexpected array name {name!r}")
        data = self.files.get(name)
        if not isinstance(data, bytes):
            raise ProbeError(f"{name} is missing")
        if len(data) > self.budget:
            raise ProbeError(f"{name} is larger than {self.budget} bytes")
        self.budget -= len(data)
        try:
            array = np.load(io.BytesIO(data), allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise ProbeError(f"{name} is not a plain .npy array ({e})") from None
        if array.dtype.kind not in _ALLOWED_KINDS:
            raise ProbeError(f"{name} holds dtype {array.dtype}")
        return array

    def value(self, entry, depth: int = 0):
        """(value, dtype) of an encoded value: arrays as numpy, sequences as lists, scalars as they are."""
        if not isinstance(entry, dict) or depth > 4:
            raise ProbeError("malformed value")
        if "array" in entry:
            return self.array(entry), str(entry.get("dtype"))
        if isinstance(entry.get("meta"), dict):
            meta = entry["meta"]
            return MetaTensor(tuple(int(n) for n in meta.get("shape", [])[:16]), str(meta.get("dtype"))), "meta"
        if "sequence" in entry:
            pairs = [self.value(e, depth + 1) for e in entry["sequence"][:64]]
            return [p[0] for p in pairs], [p[1] for p in pairs]
        if "scalar" in entry:
            return entry["scalar"], type(entry["scalar"]).__name__
        return Opaque(str(entry.get("object"))[:200]), "object"


def _created(entry) -> dict:
    """The probe's record of the largest tensor a call created: {"largest": shape, "numel": n}."""
    try:
        return {"largest": tuple(int(n) for n in entry["largest"][:16]), "numel": int(entry["numel"])}
    except (TypeError, KeyError, ValueError):
        raise ProbeError("malformed record of the tensors created") from None


def read_results(files: dict[str, bytes], steps: int) -> list[Result]:
    """The kernel's ``result.json`` for ``steps`` steps (``files``: :func:`take_results`), loaded as
    :class:`Result`\\ s (ProbeError when it can't be)."""
    data = files.get("result.json")
    if not isinstance(data, bytes):
        raise ProbeError("the probe wrote no results")
    if len(data) > MAX_JSON_BYTES:
        raise ProbeError(f"result.json is larger than {MAX_JSON_BYTES} bytes")
    try:
        raw = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise ProbeError(f"result.json is not JSON ({e})") from None
    entries = raw.get("steps") if isinstance(raw, dict) else None
    if not isinstance(entries, list) or len(entries) != steps:
        raise ProbeError("result.json does not hold one result per step")
    reader, results = _Reader(files), []
    for number, entry in enumerate(entries):
        if not isinstance(entry, dict) or entry.get("id") != number:
            raise ProbeError("result.json is out of order")
        error = entry.get("error")
        result = Result(error=str(error)[:2000] if error is not None else None, forbidden=bool(entry.get("forbidden")))
        if error is None and "value" in entry:
            result.value, result.dtype = reader.value(entry["value"])
            result.args_after = [reader.array(a) if isinstance(a, dict) else None
                                 for a in entry.get("args_after", [])[:32]]
            grads = entry.get("grads") or {}
            if "error" in grads:
                result.grads = {"error": str(grads["error"])[:500]}
            else:
                result.grads = {str(k): (reader.array(v) if isinstance(v, dict) else None)
                                for k, v in list(grads.items())[:256]}
            facts = entry.get("facts") or {}
            result.facts = {str(k): (v if k in ("parameters", "type") else _created(v) if k == "created"
                                     else reader.value(v)[0])
                            for k, v in list(facts.items())[:32]}
        results.append(result)
    return results


# -- running an item --------------------------------------------------------------------------------------------------

@dataclass
class Verdict:
    passed: bool
    message: str = ""  # why not, for the learner's feedback (describes the case, never the grader's code)


def judge(steps: list[Step], results: list[Result]) -> Verdict:
    for step, result in zip(steps, results):
        if result.forbidden:
            return Verdict(False, f"{result.error} (forbidden built-in)")
        problem = step.expect(result) if step.expect is not None else None
        if problem:
            return Verdict(False, problem)
    return Verdict(True)


def probe_code(kernel_folder: str) -> str:
    """The silent cell that runs the probe on ``kernel_folder`` (its path as the kernel sees it)."""
    return f"__import__('grading_probe').run({kernel_folder!r})"


async def collect_item(steps: list[Step], host_folder: Path, kernel_folder: str,
                       execute: Callable[[str], Awaitable[bool]]) -> dict:
    """Where the kernel runs: write the spec into ``host_folder``, let ``execute(code)`` run the probe in the kernel,
    take back what it wrote. ``{"files": {name: bytes}}``, or ``{"error": why}`` for the learner's feedback.

    ``execute`` answers False when the kernel did not answer (timeout, death); the folder is removed afterwards.
    A coroutine, because grading runs it on nbclient's event loop (``SandboxExecute.on_cell_executed``)."""
    try:
        write_spec(host_folder, steps)
        if os.geteuid() == 0:  # the sandboxed kernel runs as its own uid: it must be able to write here
            os.chmod(host_folder, 0o777)
        if not await execute(probe_code(kernel_folder)):
            return {"error": "the hidden tests could not run: the kernel did not answer"}
        return {"files": take_results(host_folder)}
    except ProbeError as e:
        return {"error": f"the hidden tests could not read your results: {e}"}
    finally:
        shutil.rmtree(host_folder, ignore_errors=True)


def judge_collected(steps: list[Step], collected: dict | None) -> Verdict:
    """Where the grader decides: judge what :func:`collect_item` took back, as data, against ``steps``."""
    if not isinstance(collected, dict) or not isinstance(collected.get("files"), dict):
        error = collected.get("error") if isinstance(collected, dict) else None
        return Verdict(False, str(error or "the hidden tests did not run"))
    try:
        return judge(steps, read_results(collected["files"], len(steps)))
    except ProbeError as e:
        return Verdict(False, f"the hidden tests could not read your results: {e}")


async def run_item(steps: list[Step], host_folder: Path, kernel_folder: str,
                   execute: Callable[[str], Awaitable[bool]]) -> Verdict:
    """:func:`collect_item`, then :func:`judge_collected`, in one process (the QA checks)."""
    return judge_collected(steps, await collect_item(steps, host_folder, kernel_folder, execute))
