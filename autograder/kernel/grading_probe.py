"""The grading probe, kernel side: call the learner's definitions on the grader's inputs and write what came out.

The grader writes a folder with ``spec.json`` and ``.npy`` inputs, then runs, silently, in the grading kernel::

    __import__("grading_probe").run("/sandbox/.probe-…")

Each step of the spec calls one name of the notebook (or a method of an object an earlier step kept) with arrays
loaded as tensors, optionally inside ``forbid(...)`` and with a backward pass from a given upstream gradient. The
probe writes ``result.json`` and ``.npy`` outputs beside them. It judges nothing: the grader loads the files and
compares them, in its own process, with references it computes itself (``autograder/external/``). Learner code can
rewrite this module like anything else in the kernel; all it can change is the data, and the data are judged.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys

import grading_references
import numpy
import torch

from attention_steps.testing import forbid, watch_tensors

_NUMPY_SAFE = {torch.bfloat16: torch.float32}  # dtypes numpy has no type for: written as float32, named as they were


def _namespace() -> dict:
    shell = sys.modules["IPython"].get_ipython() if "IPython" in sys.modules else None
    return shell.user_ns if shell is not None else sys.modules["__main__"].__dict__


class _Writer:
    def __init__(self, folder: str):
        self.folder, self.count = folder, 0

    def array(self, tensor: torch.Tensor) -> dict:
        dtype = str(tensor.dtype).removeprefix("torch.")
        if tensor.device.type == "meta":  # no data: its shape, dtype and device are what there is
            return {"meta": {"shape": list(tensor.shape), "dtype": dtype}}
        tensor = tensor.detach().cpu()
        if tensor.dtype in _NUMPY_SAFE:
            tensor = tensor.to(_NUMPY_SAFE[tensor.dtype])
        if tensor.is_complex() or tensor.layout != torch.strided:
            return {"object": f"tensor of dtype {dtype}, layout {tensor.layout}"}
        self.count += 1
        name = f"out{self.count}.npy"
        numpy.save(os.path.join(self.folder, name), tensor.resolve_conj().resolve_neg().numpy(), allow_pickle=False)
        return {"array": name, "dtype": dtype, "requires_grad": False}

    def value(self, value, depth: int = 0) -> dict:
        if isinstance(value, torch.Tensor):
            return {**self.array(value), "requires_grad": bool(value.requires_grad)}
        if value is None or isinstance(value, (bool, int, float, str)):
            return {"scalar": value if not isinstance(value, float) or value == value else "nan"}
        if isinstance(value, (tuple, list)) and depth < 3 and len(value) <= 64:
            return {"sequence": [self.value(v, depth + 1) for v in value], "type": type(value).__name__}
        if isinstance(value, torch.Size):
            return {"sequence": [{"scalar": int(v)} for v in value], "type": "Size"}
        return {"object": type(value).__name__}


def _arg(spec, folder: str, kept: dict):
    if isinstance(spec, dict):
        if "array" in spec:
            tensor = torch.from_numpy(numpy.load(os.path.join(folder, spec["array"]), allow_pickle=False))
            if spec.get("dtype"):
                tensor = tensor.to(getattr(torch, spec["dtype"]))
            if spec.get("permute"):
                tensor = tensor.permute(*spec["permute"])
            return tensor.requires_grad_(True) if spec.get("requires_grad") else tensor
        if "ref" in spec:
            return kept[spec["ref"]]
        if "device" in spec:
            return torch.device(spec["device"])
        if "torch_dtype" in spec:
            return getattr(torch, spec["torch_dtype"])
        if "generator" in spec:  # a seeded random generator of the grader's choosing
            return torch.Generator().manual_seed(int(spec["generator"]))
        if "tuple" in spec:
            return tuple(_arg(s, folder, kept) for s in spec["tuple"])
    if isinstance(spec, list):
        return [_arg(s, folder, kept) for s in spec]
    return spec


def _target(call, namespace: dict, kept: dict):
    if isinstance(call, str):
        if call not in namespace:
            raise NameError(f"name {call!r} is not defined")
        return namespace[call]
    if "trusted" in call:  # a helper of the grader's (a scripted model to hand to the learner's function)
        return getattr(grading_references, call["trusted"])
    target = kept[call["ref"]]
    return getattr(target, call["attr"]) if call.get("attr") else target


def _step(step: dict, folder: str, kept: dict, namespace: dict, out: _Writer) -> dict:
    result = {"id": step["id"], "error": None, "forbidden": None}
    args = [_arg(a, folder, kept) for a in step.get("args", [])]
    kwargs = {k: _arg(v, folder, kept) for k, v in step.get("kwargs", {}).items()}
    for name, spec in step.get("set_parameters", {}).items():
        module = kept[step["on"]]
        target = module.get_parameter(name) if name in dict(module.named_parameters()) else module.get_buffer(name)
        with torch.no_grad():
            target.copy_(_arg(spec, folder, kept))
    if "call" not in step:
        return result
    if step.get("seed") is not None:
        torch.manual_seed(step["seed"])
    missing = object()
    stand_ins = {name: getattr(grading_references, ref) for name, ref in step.get("stand_ins", {}).items()}
    saved = {name: namespace.get(name, missing) for name in stand_ins}
    try:
        namespace.update(stand_ins)  # earlier items the call builds on: trusted versions, graded on their own
        function = _target(step["call"], namespace, kept)
        watch = watch_tensors() if step.get("watch") else contextlib.nullcontext()
        guard = (forbid(*step["forbid"], exercise=step.get("exercise", "this exercise")) if step.get("forbid")
                 else contextlib.nullcontext())
        with guard, watch:  # the watch inside: forbid's integrity check at its end sees it gone
            value = function(*args, **kwargs)
    except Exception as error:  # noqa: BLE001 - the learner's exception is the datum
        kind = type(error).__name__
        result["error"] = f"{kind}: {str(error)[:2000]}"
        result["forbidden"] = kind == "ForbiddenBuiltinError" or None
        return result
    finally:
        for name, value_before in saved.items():
            if value_before is missing:
                namespace.pop(name, None)
            else:
                namespace[name] = value_before
    if step.get("keep"):
        kept[step["keep"]] = value
    result["value"] = out.value(value) if step.get("return", True) else {"object": type(value).__name__}
    result["args_after"] = [out.array(a) if isinstance(a, torch.Tensor) else None for a in args]
    if step.get("upstream") is not None:
        result["grads"] = _backward(step, value, args, kept, folder, out)
    if step.get("facts"):
        result["facts"] = _facts(value, step["facts"], out)
    if step.get("watch"):  # the largest tensor the call created
        result.setdefault("facts", {})["created"] = {"largest": [int(n) for n in watch.largest],
                                                     "numel": int(watch.largest_numel)}
    return result


def _backward(step: dict, value, args: list, kept: dict, folder: str, out: _Writer) -> dict:
    output = value[step.get("output", 0)] if isinstance(value, (tuple, list)) else value
    upstream = _arg(step["upstream"], folder, kept)
    if step.get("parameter_grads"):  # the gradients of this backward pass only
        for parameter in kept[step["parameter_grads"]].parameters():
            parameter.grad = None
    try:
        torch.autograd.backward(output, upstream)
    except Exception as error:  # noqa: BLE001
        return {"error": f"{type(error).__name__}: {str(error)[:500]}"}
    grads = {f"arg{i}": (out.array(a.grad) if a.grad is not None else None)
             for i, a in enumerate(args) if isinstance(a, torch.Tensor) and a.requires_grad}
    if step.get("parameter_grads"):
        module = kept[step["parameter_grads"]]
        grads.update({f"param:{n}": (out.array(p.grad) if p.grad is not None else None)
                      for n, p in module.named_parameters()})
    return grads


def _facts(value, wanted: list, out: _Writer) -> dict:
    facts = {}
    for fact in wanted:
        if fact == "parameters":
            facts[fact] = {n: list(p.shape) for n, p in value.named_parameters()}
        elif fact == "type":
            facts[fact] = type(value).__name__
        else:  # a dotted attribute path: "rnn", "rnn.num_layers", "embedding.padding_idx"
            target = value
            for part in fact.split("."):
                target = getattr(target, part, None)
            facts[fact] = out.value(target)
    return facts


def run(folder: str, namespace: dict | None = None) -> None:
    """Run every step of ``folder/spec.json`` on the notebook's names (or ``namespace``); write ``result.json``."""
    with open(os.path.join(folder, "spec.json")) as f:
        spec = json.load(f)
    namespace, kept, out = namespace if namespace is not None else _namespace(), {}, _Writer(folder)
    results = []
    for step in spec["steps"]:
        try:
            results.append(_step(step, folder, kept, namespace, out))
        except Exception as error:  # noqa: BLE001 - a step the learner's objects broke: the grader reads it as failed
            results.append({"id": step["id"], "error": f"probe: {type(error).__name__}: {str(error)[:500]}"})
    with open(os.path.join(folder, "result.json"), "w") as f:
        json.dump({"steps": results}, f)
