"""Building blocks for hidden tests: a call checked against a reference, its gradients, an error it must raise.

References run here, in the grader's process, on float64 copies of the inputs (``torch`` is fine: nothing of this
runs in the learner's kernel). Inputs are numpy arrays; a dtype of the array is the dtype the learner's code gets.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .expect import all_of, gradient, no_error, parameters_are, raises, returns, unchanged
from .probe import Step, dtype, method, ref, tensor


def as_reference_input(a):
    """A float64 tensor for a float array, an int64 one for an integer array, bool as bool; anything else as it is
    (a :func:`tensor` argument as the tensor the learner gets, permuted)."""
    if isinstance(a, dict) and "__array__" in a:
        array = a["__array__"]
        return as_reference_input(array.transpose(a["permute"]) if a.get("permute") else array)
    if isinstance(a, np.ndarray):
        if a.dtype.kind == "f":
            return torch.from_numpy(a.astype(np.float64))
        if a.dtype.kind in "iu":
            return torch.from_numpy(a.astype(np.int64))
        return torch.from_numpy(a.copy())
    return a


def _numpy(value):
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def _numpy_or_none(grad):
    return None if grad is None else grad.numpy()


def checked_call(call: str, args: list, reference: Callable, *, label: str, kwargs: dict | None = None,
                 atol: float = 1e-10, rtol: float = 1e-8, dtype: str | None = "same", outputs: int | None = None,
                 **step) -> Step:
    """``call(*args, **kwargs)`` must return what ``reference`` returns on float64 copies (a tuple of ``outputs``
    elements when given), in ``dtype`` (default: the dtype of the first float argument), and leave its arguments
    as they were. ``step``: more :class:`Step` fields (``forbid``, ``exercise``, ``stand_ins``)."""
    with torch.no_grad():
        want = reference(*(as_reference_input(a) for a in args), **(kwargs or {}))
    if dtype == "same":
        first = next((a for a in args if isinstance(a, np.ndarray) and a.dtype.kind == "f"), None)
        dtype = first.dtype.name if first is not None else None
    if outputs is None:
        expects = [returns(_numpy(want), name=label, atol=atol, rtol=rtol, dtype=dtype)]
    else:
        expects = [returns(_numpy(w), index=i, name=f"{label}, output {i}", atol=atol, rtol=rtol, dtype=dtype)
                   for i, w in enumerate(want[:outputs])]
    arrays = [a for a in args if isinstance(a, np.ndarray)]
    return Step(call, list(args), dict(kwargs or {}), **step,
                expect=all_of(*expects, unchanged(*[a if isinstance(a, np.ndarray) else None for a in args],
                                                  name=label)) if arrays else all_of(*expects))


def checked_gradients(call: str, args: list, reference: Callable, *, wrt: tuple[int, ...], rng: np.random.Generator,
                      label: str, kwargs: dict | None = None, output: int | None = None, atol: float = 1e-9,
                      rtol: float = 1e-7, **step) -> Step:
    """A backward pass from a random upstream gradient of the output (element ``output`` of a tuple) reaches the
    float64 arguments ``wrt`` with the gradients of ``reference``."""
    inputs = [as_reference_input(a) for a in args]
    for i in wrt:
        inputs[i] = inputs[i].clone().requires_grad_(True)
    out = reference(*inputs, **(kwargs or {}))
    out = out[output] if output is not None else out
    upstream = rng.standard_normal(tuple(out.shape))
    out.backward(torch.from_numpy(upstream))
    sent = [tensor(a, requires_grad=True) if i in wrt else a for i, a in enumerate(args)]
    return Step(call, sent, dict(kwargs or {}), upstream=upstream, output=output or 0, **step, expect=all_of(
        *[gradient(_numpy_or_none(inputs[i].grad), arg=i, name=f"{label}: the gradient of argument {i + 1}", atol=atol,
                   rtol=rtol) for i in wrt]))


def must_raise(call: str, args: list, *, label: str, kwargs: dict | None = None, kind: str = "ValueError",
               mention: tuple[str, ...] = (), **step) -> Step:
    """``call(*args)`` must raise ``kind`` with each of ``mention`` in its message."""
    return Step(call, list(args), dict(kwargs or {}), **step, expect=raises(kind, mention=mention, name=label))


def _default_weight(shape: tuple, rng: np.random.Generator) -> np.ndarray:
    """Weights of a sane scale: 1/sqrt(fan-in) for matrices and kernels, 0.5 for vectors (biases, norms)."""
    scale = 1 / np.sqrt(np.prod(shape[1:])) if len(shape) >= 2 else 0.5
    return rng.standard_normal(shape) * scale


class ModuleCase:
    """The learner's module built, cast, set to a mode and loaded with the grader's weights, and beside it, in the
    grader's process, a trusted ``reference`` module (same parameter names) loaded with the same weights.

    ``steps`` build the learner's module in the kernel (its parameter names and shapes must be the reference's);
    :meth:`call` adds one call of it, judged against the reference's output and, with an ``rng``, the gradients of
    a backward pass to the inputs and every parameter. ``init(name, shape, rng)`` may choose a weight (None: the
    default scale); weights are rounded to ``dtype`` first, so both sides hold the same numbers. ``facts`` (dotted
    attribute paths) are read from the module as built and judged by ``built(result)``, before any weight loads.
    """

    def __init__(self, cls: str, ctor: list, reference: torch.nn.Module, rng: np.random.Generator, *, label: str,
                 keep: str = "module", dtype_name: str = "float64", training: bool = False,
                 ctor_kwargs: dict | None = None, init: Callable | None = None, facts: tuple[str, ...] = (),
                 built: Callable | None = None, **step):
        self.keep, self.label, self.dtype, self.step = keep, label, dtype_name, step
        self.reference = reference.double().train(training)
        shapes = {n: tuple(p.shape) for n, p in self.reference.named_parameters()}
        tensors = {**dict(self.reference.named_parameters()),
                   **{n: b for n, b in self.reference.named_buffers() if b.is_floating_point()}}
        weights = {}
        for name, t in tensors.items():
            chosen = init(name, tuple(t.shape), rng) if init is not None else None
            array = np.asarray(chosen if chosen is not None else _default_weight(tuple(t.shape), rng), dtype=np.float64)
            weights[name] = array.astype(dtype_name).astype(np.float64)
            with torch.no_grad():
                t.copy_(torch.from_numpy(weights[name]))
        self.weights = weights
        self.steps = [
            Step(cls, list(ctor), dict(ctor_kwargs or {}), keep=keep, facts=("parameters", *facts), **step,
                 expect=all_of(parameters_are(shapes, name=label), *([built] if built else []))),
            Step(method(keep, "to"), [dtype(dtype_name)], expect=no_error(name=f"{label}.to(torch.{dtype_name})")),
            Step(method(keep, "train"), [training], expect=no_error(name=f"{label}.train({training})")),
            Step(None, set_parameters=weights, on=keep, expect=no_error(name=f"{label}: loading the weights")),
        ]

    def _dtype_of(self, value) -> str:
        """The dtype the learner's output should have: the module's for a float output, the reference's otherwise."""
        if isinstance(value, torch.Tensor) and not value.is_floating_point():
            return str(value.dtype).removeprefix("torch.")
        return self.dtype

    def mode(self, training: bool) -> Step:
        """Switch both modules to training or evaluation mode (batch norm, dropout)."""
        self.reference.train(training)
        return Step(method(self.keep, "train"), [training], expect=no_error(name=f"{self.label}.train({training})"))

    def call(self, args: list, *, label: str, call: str | None = None, rng: np.random.Generator | None = None,
             grad_args: tuple[int, ...] = (), outputs: int | None = None, output: int | None = None,
             kwargs: dict | None = None, atol: float = 1e-9, rtol: float = 1e-7, where: np.ndarray | None = None,
             **step) -> Step:
        """``module(*args)`` (or ``module.<call>(*args)``) returns what the reference returns; with ``rng``, a
        backward pass from a random upstream gradient of the output (element ``output`` of a tuple) gives the
        reference's gradients for the arguments ``grad_args`` and every parameter."""
        inputs = [as_reference_input(a) for a in args]
        for i in grad_args:
            inputs[i] = inputs[i].clone().requires_grad_(True)
        target = getattr(self.reference, call) if call else self.reference
        self.reference.zero_grad(set_to_none=True)
        with torch.set_grad_enabled(rng is not None):
            want = target(*inputs, **(kwargs or {}))
        expects = []
        if outputs is None:
            expects.append(returns(_numpy(want), name=label, atol=atol, rtol=rtol, dtype=self._dtype_of(want),
                                   where=where))
        else:
            expects += [returns(_numpy(w), index=i, name=f"{label}, output {i}", atol=atol, rtol=rtol,
                                dtype=self._dtype_of(w)) for i, w in enumerate(want[:outputs])]
        arrays = [a if isinstance(a, np.ndarray) else None for a in args]
        if any(a is not None for a in arrays):
            expects.append(unchanged(*arrays, name=label))
        upstream = None
        if rng is not None:
            out = want[output] if output is not None else want
            upstream = rng.standard_normal(tuple(out.shape))
            out.backward(torch.from_numpy(upstream))
            expects += [gradient(_numpy_or_none(inputs[i].grad), arg=i, atol=atol, rtol=rtol,
                                 name=f"{label}: the gradient of argument {i + 1}") for i in grad_args]
            expects += [gradient(_numpy_or_none(p.grad), param=n, name=f"{label}: the gradient of {n}", atol=atol,
                                 rtol=rtol) for n, p in self.reference.named_parameters()]
        sent = [tensor(a, requires_grad=True) if i in grad_args else a for i, a in enumerate(args)]
        return Step(method(self.keep, call) if call else ref(self.keep), sent, dict(kwargs or {}),
                    upstream=upstream, output=output or 0, parameter_grads=self.keep if rng is not None else None,
                    **{**self.step, **step}, expect=all_of(*expects))
