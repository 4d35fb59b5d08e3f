"""What a hidden test expects of one probe result, as small composable checks (grader side, plain numpy).

Each function returns an ``expect(result) -> None | str`` for :class:`autograder.external.probe.Step`; the string
says what is wrong in words a learner can act on, describing the case (never the grader's code).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .probe import Result

Expect = Callable[[Result], "str | None"]


def _describe(got: np.ndarray, want: np.ndarray) -> str:
    if got.size <= 64 and want.size <= 64 and got.dtype.kind in "biu":
        return f"got {got.tolist()}, expected {want.tolist()}"
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
    diff = np.where(np.isnan(diff), np.inf, diff)
    worst = np.unravel_index(int(np.argmax(diff)), diff.shape) if diff.size else ()
    bad = int((diff > 0).sum())
    return (f"{bad} of {diff.size} elements differ; worst at index {tuple(int(i) for i in worst)}: "
            f"got {got[worst].item()!r}, expected {want[worst].item()!r}")


def compare(got, want: np.ndarray, *, name: str, atol: float = 1e-6, rtol: float = 1e-5, dtype: str | None = None,
            got_dtype: str | None = None) -> str | None:
    """Why ``got`` (an array the kernel returned) is not ``want`` (None when it is)."""
    if not isinstance(got, np.ndarray):
        return f"{name}: expected a tensor, got {got!r}"[:300]
    if dtype is not None and got_dtype != dtype:
        return f"{name}: expected dtype torch.{dtype}, got torch.{got_dtype}"
    want = np.asarray(want)
    if got.shape != want.shape:
        return f"{name}: expected shape {tuple(want.shape)}, got {tuple(got.shape)}"
    if got.dtype.kind == "b" or want.dtype.kind == "b":
        if not np.array_equal(got.astype(bool), want.astype(bool)) or got.dtype.kind != want.dtype.kind:
            return f"{name}: {_describe(got.astype(np.int64), want.astype(np.int64))}"
        return None
    g, w = got.astype(np.float64), want.astype(np.float64)
    if np.array_equal(np.isnan(g), np.isnan(w)) and np.allclose(g, w, atol=atol, rtol=rtol, equal_nan=True):
        same_inf = np.array_equal(np.isinf(g), np.isinf(w)) and np.array_equal(g[np.isinf(g)], w[np.isinf(w)])
        if same_inf:
            return None
    return f"{name}: {_describe(got, want)}"


def returns(want: np.ndarray, *, name: str, atol: float = 1e-6, rtol: float = 1e-5, dtype: str | None = None,
            index: int | None = None, where: np.ndarray | None = None) -> Expect:
    """The call returned ``want`` (or, with ``index``, element ``index`` of the tuple it returned); with ``where``
    (a bool array over the leading dimensions), only those entries are compared."""

    def expect(result: Result) -> str | None:
        if result.error:
            return f"{name}: raised {result.error}"
        got, got_dtype = result.value, result.dtype
        if index is not None:
            if not isinstance(got, list) or len(got) <= index:
                return f"{name}: expected a tuple with at least {index + 1} elements"
            got, got_dtype = got[index], got_dtype[index]
        if where is not None and isinstance(got, np.ndarray) and got.shape == np.shape(want):
            return compare(got[where], np.asarray(want)[where], name=name, atol=atol, rtol=rtol, dtype=dtype,
                           got_dtype=got_dtype)
        return compare(got, want, name=name, atol=atol, rtol=rtol, dtype=dtype, got_dtype=got_dtype)

    return expect


def raises(kind: str, *, name: str, mention: tuple[str, ...] = ()) -> Expect:
    """The call raised ``kind`` (e.g. "ValueError"), with each of ``mention`` in its message."""

    def expect(result: Result) -> str | None:
        if result.error is None:
            return f"{name}: expected {kind}, but nothing was raised"
        raised, _, message = result.error.partition(": ")
        if raised != kind:
            return f"{name}: expected {kind}, got {result.error}"[:400]
        missing = [m for m in mention if m not in message]
        if missing:
            return f"{name}: the {kind} message should mention {', '.join(map(repr, missing))}: {message!r}"[:400]
        return None

    return expect


def unchanged(*inputs: np.ndarray, name: str) -> Expect:
    """The array arguments still hold ``inputs`` after the call (the function must not modify them)."""

    def expect(result: Result) -> str | None:
        for number, (before, after) in enumerate(zip(inputs, result.args_after)):
            if before is not None and (after is None or not np.array_equal(after, before, equal_nan=True)):
                return f"{name}: argument {number + 1} was modified by the call"
        return None

    return expect


def gradient(want: np.ndarray | None, *, name: str, arg: int | None = None, param: str | None = None,
             atol: float = 1e-9, rtol: float = 1e-7) -> Expect:
    """After a backward pass from the step's upstream gradient, argument ``arg`` (or the parameter ``param`` of the
    step's ``parameter_grads`` module) holds the gradient ``want`` (None: the output does not depend on it, so no
    gradient or a zero one)."""
    key, what = (f"arg{arg}", f"argument {arg + 1}") if param is None else (f"param:{param}", param)

    def expect(result: Result) -> str | None:
        if result.error:
            return f"{name}: raised {result.error}"
        if "error" in result.grads:
            return f"{name}: the backward pass failed: {result.grads['error']}"
        got = result.grads.get(key)
        if want is None:
            return None if got is None else compare(got, np.zeros_like(got), name=name, atol=atol, rtol=rtol)
        if got is None:
            return f"{name}: no gradient reached {what}"
        return compare(got, want, name=name, atol=atol, rtol=rtol)

    return expect


def no_error(*, name: str) -> Expect:
    def expect(result: Result) -> str | None:
        return f"{name}: raised {result.error}" if result.error else None

    return expect


def parameters_are(want: dict[str, tuple], *, name: str) -> Expect:
    """The returned module's parameters have exactly these names and shapes (the docstring's layout)."""

    def expect(result: Result) -> str | None:
        if result.error:
            return f"{name}: raised {result.error}"
        got = result.facts.get("parameters")
        if not isinstance(got, dict):
            return f"{name}: expected an nn.Module"
        got = {str(k): tuple(v) for k, v in got.items()}
        missing, extra = sorted(set(want) - set(got)), sorted(set(got) - set(want))
        if missing or extra:
            return (f"{name}: parameters {', '.join(missing) or '-'} missing, {', '.join(extra) or '-'} unexpected "
                    f"(expected exactly {', '.join(want)})")[:600]
        for key, shape in want.items():
            if got[key] != tuple(shape):
                return f"{name}: parameter {key} has shape {got[key]}, expected {tuple(shape)}"
        return None

    return expect


def all_of(*expects: Expect) -> Expect:
    def expect(result: Result) -> str | None:
        for e in expects:
            if (problem := e(result)) is not None:
                return problem
        return None

    return expect


def differs(want: np.ndarray, *, name: str, index: int | None = None, atol: float = 1e-4) -> Expect:
    """The call ran and returned something that is *not* ``want`` (e.g. dropout in training mode changes the output)."""

    def expect(result: Result) -> str | None:
        if result.error:
            return f"{name}: raised {result.error}"
        got = result.value[index] if index is not None and isinstance(result.value, list) else result.value
        if not isinstance(got, np.ndarray) or got.shape != want.shape:
            return f"{name}: expected a tensor of shape {tuple(want.shape)}"
        if np.allclose(got.astype(np.float64), want, atol=atol):
            return name
        return None

    return expect


def creates_at_most(numel: int, *, name: str, why: str) -> Expect:
    """The call created no tensor with ``numel`` or more elements (watched at the dispatcher, in the kernel)."""

    def expect(result: Result) -> str | None:
        if result.error:
            return f"{name}: raised {result.error}"
        created = result.facts.get("created")
        if not isinstance(created, dict):
            return f"{name}: the tensors the call created were not recorded"
        if created["numel"] >= numel:
            return f"{name}: a tensor of shape {created['largest']} was created ({why})"
        return None

    return expect
