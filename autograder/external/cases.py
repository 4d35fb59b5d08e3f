"""Building blocks for hidden tests: a call checked against a reference, its gradients, an error it must raise.

References run here, in the grader's process, on float64 copies of the inputs (``torch`` is fine: nothing of this
runs in the learner's kernel). Inputs are numpy arrays; a dtype of the array is the dtype the learner's code gets.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .expect import all_of, gradient, raises, returns, unchanged
from .probe import Step, tensor


def as_reference_input(a):
    """A float64 tensor for a float array, an int64 one for an integer array, bool as bool; anything else as it is."""
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
        *[gradient(inputs[i].grad.numpy(), arg=i, name=f"{label}: the gradient of argument {i + 1}", atol=atol,
                   rtol=rtol) for i in wrt]))


def must_raise(call: str, args: list, *, label: str, kwargs: dict | None = None, kind: str = "ValueError",
               mention: tuple[str, ...] = (), **step) -> Step:
    """``call(*args)`` must raise ``kind`` with each of ``mention`` in its message."""
    return Step(call, list(args), dict(kwargs or {}), **step, expect=raises(kind, mention=mention, name=label))
