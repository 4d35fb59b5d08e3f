"""Helpers for the notebooks' test cells: comparisons with useful messages, and guards on forbidden built-ins.

Everything here is safe to show learners: it checks answers, it does not contain them.

- :func:`assert_close` compares a result with an expected tensor and, when they differ, says which shapes, dtypes,
  element and tolerance were involved.
- :func:`forbid` makes named PyTorch built-ins raise while a block runs. It works at the dispatcher level (a
  ``TorchFunctionMode`` for the Python API and a ``TorchDispatchMode`` for ATen ops), so a built-in reached through an
  alias, a reference captured earlier, a method, a module or a composite op is caught all the same.
"""

from __future__ import annotations

import contextlib
import math
import os
import weakref
from collections.abc import Callable, Iterable, Sequence

import numpy
import torch
from torch.autograd import profiler_legacy as _profiler_legacy
from torch.overrides import TorchFunctionMode

from . import _torch_private as _private
from ._torch_private import TorchDispatchMode

# Captured at import, before any learner code runs in the notebook that imports this module (when grading, a
# silent preamble imports it before the first cell). Everything the checks below need is taken from here, never
# looked up again through names a learner could rebind: C-level tensor methods (their type is immutable), numpy
# ufuncs, builtins, the torch guards that switch modes off.
_float64 = torch.float64
_Tensor = torch.Tensor
_TB = _private.TensorBase
_shape_of = _private.descriptor(_TB, "shape").__get__
_dtype_of = _private.descriptor(_TB, "dtype").__get__
_detach, _to, _as_numpy, _numel, _dim = _TB.detach, _TB.to, _TB.numpy, _TB.numel, _TB.dim
_type, _tuple, _int, _float, _len, _str, _isinstance = type, tuple, int, float, len, str, isinstance
_np_abs, _np_isnan, _np_isinf, _np_where = numpy.abs, numpy.isnan, numpy.isinf, numpy.where
_np_argmax, _np_unravel, _np_count, _np_asarray = numpy.argmax, numpy.unravel_index, numpy.count_nonzero, \
    numpy.asarray
_np_errstate = numpy.errstate
_np_a2s, _np_int64 = numpy.array2string, numpy.int64
_DisableTorchFunction = _private.DisableTorchFunction
_DisableTorchDispatch = _private.DisableTorchDispatch
_Profile = _profiler_legacy.profile
_AutogradProfile = torch.autograd.profiler.profile
_environ = os.environ
_finalize = weakref.finalize


class ForbiddenBuiltinError(AssertionError):
    """A built-in the exercise asks you to write yourself was called."""


# A name a test forbids → the Python-level function names and ATen op names that implement it.
FORBIDDEN_GROUPS: dict[str, tuple[set[str], set[str]]] = {
    "softmax": (
        {"softmax", "log_softmax", "_softmax", "_log_softmax", "_safe_softmax", "gumbel_softmax"},
        {"softmax", "log_softmax", "_softmax", "_log_softmax", "_safe_softmax"},
    ),
    "scaled_dot_product_attention": (
        {"scaled_dot_product_attention", "_scaled_dot_product_attention_math", "multi_head_attention_forward"},
        {"scaled_dot_product_attention", "_scaled_dot_product_attention_math",
         "_scaled_dot_product_flash_attention", "_scaled_dot_product_flash_attention_for_cpu",
         "_scaled_dot_product_efficient_attention", "_scaled_dot_product_cudnn_attention",
         "_native_multi_head_attention"},
    ),
    "multi_head_attention": (
        {"multi_head_attention_forward", "_native_multi_head_attention"},
        {"_native_multi_head_attention"},
    ),
    "embedding": ({"embedding", "embedding_bag"}, {"embedding", "embedding_bag", "_embedding_bag"}),
    "rnn": (
        {"rnn_tanh", "rnn_relu", "rnn_tanh_cell", "rnn_relu_cell", "lstm", "gru", "lstm_cell", "gru_cell"},
        {"rnn_tanh", "rnn_relu", "rnn_tanh_cell", "rnn_relu_cell", "lstm", "gru", "lstm_cell", "gru_cell",
         "_thnn_fused_lstm_cell", "_thnn_fused_gru_cell"},
    ),
    "layer_norm": ({"layer_norm"}, {"layer_norm", "native_layer_norm"}),
    "adaptive_avg_pool2d": (
        {"adaptive_avg_pool2d", "adaptive_avg_pool1d"},
        {"adaptive_avg_pool2d", "_adaptive_avg_pool2d", "adaptive_avg_pool1d"},
    ),
}


def _names_for(name: str) -> tuple[set[str], set[str]]:
    return FORBIDDEN_GROUPS.get(name, ({name, "_" + name}, {name, "_" + name}))


def _not_for_dynamo(mode_class: type) -> None:
    """torch wraps every dispatch mode's __torch_dispatch__ so that its first call imports torch._dynamo (seconds, and
    it rewraps some torch functions). The helpers' modes never run under torch.compile: mark them as handled."""
    raw = getattr(vars(mode_class)["__torch_dispatch__"], "__wrapped__", None)
    if raw is not None:
        setattr(raw, "__dynamo_disable", raw)


class _FunctionGuard(TorchFunctionMode):
    def __init__(self, names: set[str], seen: list[str]):
        super().__init__()
        self.names, self.seen = names, seen

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in self.names:
            self.seen.append(name)
            raise ForbiddenBuiltinError(f"torch's built-in `{name}` was called")
        return func(*args, **(kwargs or {}))


if TorchDispatchMode is not None:
    class _DispatchGuard(TorchDispatchMode):
        def __init__(self, names: set[str], seen: list[str]):
            super().__init__()
            self.names, self.seen = names, seen

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            name = func.overloadpacket.__name__
            if name in self.names:
                self.seen.append(f"aten::{name}")
                raise ForbiddenBuiltinError(f"torch's built-in `aten::{name}` was called")
            return func(*args, **(kwargs or {}))

    _not_for_dynamo(_DispatchGuard)
else:  # a torch without the (private) dispatch-mode API: forbid() checks at the Python level only
    class _DispatchGuard(contextlib.nullcontext):
        def __init__(self, names: set[str], seen: list[str]):
            super().__init__()


def _profile_every_thread():
    """A profiler that records the ops of every thread of the process (Kineto with ``profile_all_threads``), so a
    built-in that the learner's code hands to a worker thread is seen too; the legacy profiler (this thread only)
    where this torch lacks the option."""
    if _private.ProfilerConfig is not None:
        try:
            config = _private.ProfilerConfig(profile_all_threads=True)
            _environ.setdefault("KINETO_LOG_LEVEL", "6")  # else Kineto writes a line to stderr at every start / stop
            return _AutogradProfile(use_kineto=True, experimental_config=config)
        except (TypeError, RuntimeError):
            pass
    return _Profile()


@contextlib.contextmanager
def forbid(*builtins: str, exercise: str = "this exercise", why: str | None = None):
    """Make the named PyTorch built-ins raise :class:`ForbiddenBuiltinError` inside the block.

    >>> with forbid("softmax"):
    ...     out = my_softmax(x)          # fails if my_softmax calls torch.softmax, F.softmax, x.softmax, nn.Softmax …

    A call that the learner's code catches and hides is still reported when the block ends. ``why`` replaces the
    default explanation ("write it yourself") where the built-in is not what the exercise needs at all.
    """
    functions: set[str] = set()
    aten: set[str] = set()
    for b in builtins:
        f, a = _names_for(b)
        functions |= f
        aten |= a
    seen: list[str] = []
    error = None
    # A third net under the two modes: the profiler records every op at the dispatcher's entry, in C++, on every
    # thread, so an op reached with the modes switched off (DisableTorchFunction, _DisableTorchDispatch, an excluded
    # Python dispatch key, a popped mode stack) or run by another thread (the modes are thread-local) is still
    # seen. Only the outermost forbid() runs it, and only when grading (the guard is installed): a learner studying
    # alone has no reason to hide a call from themselves.
    profile = _profile_every_thread() if _state["profiling"] == 0 and _state["guard"] is not None else None
    if profile is not None:
        try:
            profile.__enter__()
        except RuntimeError:  # someone else's profiler is running: the modes still apply
            profile = None
    if profile is not None:
        _state["profiling"] += 1
    try:
        try:
            with _FunctionGuard(functions, seen), _DispatchGuard(aten, seen):
                yield
        except ForbiddenBuiltinError as e:
            error = e
    finally:
        if profile is not None:
            _state["profiling"] -= 1
            try:
                profile.__exit__(None, None, None)
                ran = {e.name.removeprefix("aten::") for e in profile.function_events}
            except Exception:  # noqa: BLE001 - the learner's code stopped the profiler
                ran, error = set(), error or ForbiddenBuiltinError("the check for built-ins was switched off")
            seen += [f"aten::{n}" for n in sorted(ran & aten)]
    _verify_integrity()
    if seen or error is not None:
        what = ", ".join(dict.fromkeys(seen)) or str(error)
        if why is not None:
            raise ForbiddenBuiltinError(f"{exercise} called {what}: {why}") from None
        raise ForbiddenBuiltinError(
            f"{exercise} asks you to write {' / '.join(builtins)} yourself, but your code called {what}. "
            "Use elementary operations (exp, sum, max, matmul, …) instead."
        ) from None


def _tree_leaves(tree) -> list:
    """The leaves of an op's output (a tensor, or nested tuples and lists of them)."""
    if _isinstance(tree, (_tuple, list)):
        return [leaf for item in tree for leaf in _tree_leaves(item)]
    return [tree]


if TorchDispatchMode is not None:
    class TensorWatch(TorchDispatchMode):
        """What a computation creates, seen at the dispatcher: every output's shape (``largest``, ``largest_numel``)
        and the most bytes of tensor storage alive at once (``peak_bytes``; storages that existed before the block
        are not counted)."""

        available = True

        def __init__(self):
            super().__init__()
            self.largest, self.largest_numel, self.peak_bytes = (), 0, 0
            self._live: dict[int, int] = {}
            self._bytes = 0

        def _free(self, key: int) -> None:
            self._bytes -= self._live.pop(key, 0)

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in _tree_leaves(out):
                if not _isinstance(t, _Tensor):
                    continue
                n = _numel(t)
                if n > self.largest_numel:
                    self.largest, self.largest_numel = _shape(t), n
                storage = t.untyped_storage()
                key, size = storage.data_ptr(), storage.nbytes()
                if size == 0 or key in self._live:  # a view of a storage already counted
                    continue
                self._live[key] = size
                self._bytes += size
                self.peak_bytes = max(self.peak_bytes, self._bytes)
                _finalize(storage, self._free, key)
            return out

    _not_for_dynamo(TensorWatch)
else:
    class TensorWatch(contextlib.nullcontext):
        """This torch has no dispatch modes: nothing is watched (``available`` is False, every figure 0)."""

        available, largest, largest_numel, peak_bytes = False, (), 0, 0

        def __enter__(self):
            return self


def watch_tensors() -> TensorWatch:
    """Watch every tensor a block creates, at the dispatcher (aliases, methods and modules included).

    >>> with watch_tensors() as watch:
    ...     out = attention(q, k, v)
    >>> watch.largest, watch.largest_numel, watch.peak_bytes   # shape and size of the largest, most bytes alive

    ``peak_bytes`` counts the storages created inside the block while they are alive (inputs made before it are
    not counted). On a torch without dispatch modes ``watch.available`` is False and every figure is 0.
    """
    return TensorWatch()


def _shape(x) -> tuple:
    return _tuple(_int(n) for n in _shape_of(x))


def _values(t) -> numpy.ndarray:
    """The values of a plain tensor as float64 numpy, with every torch mode and override switched off."""
    with _DisableTorchFunction(), _DisableTorchDispatch():
        return _as_numpy(_to(_detach(t), "cpu", _float64))


def assert_tensor(actual, *, shape: Sequence[int] | None = None, dtype: torch.dtype | None = None,
                  name: str = "output") -> None:
    """Check that ``actual`` is a plain torch.Tensor with the given shape and dtype; the message says why not."""
    _verify_integrity()
    if _type(actual) is not _Tensor:
        raise AssertionError(f"{name} should be a torch.Tensor, but it is a {_type(actual).__name__}")
    if shape is not None and _shape(actual) != _tuple(shape):
        raise AssertionError(f"{name} has shape {_shape(actual)}, expected {_tuple(shape)}")
    if dtype is not None and _dtype_of(actual) is not dtype:
        raise AssertionError(f"{name} has dtype {_dtype_of(actual)}, expected {dtype}")


SHOW_WHOLE = 64  # integer and bool results up to this many elements are shown whole when they differ


def assert_close(actual, expected, *, atol: float = 1e-5, rtol: float = 1e-4, name: str = "output",
                 check_dtype: bool = True) -> None:
    """Assert ``actual`` equals ``expected`` within ``atol + rtol·|expected|``, element by element.

    ``actual`` must be a plain torch.Tensor (not a subclass, not an object that claims equality) of the expected
    shape and, with ``check_dtype``, dtype. The message on failure names the shapes, the worst element, its two
    values, the tolerance there, and how many elements are off. NaN only matches NaN.
    """
    if not _isinstance(expected, _Tensor):  # the test's own value (a Parameter is fine): read through TensorBase
        with _DisableTorchFunction(), _DisableTorchDispatch():
            expected = torch.as_tensor(expected)
    assert_tensor(actual, name=name)
    if _shape(actual) != _shape(expected):
        raise AssertionError(f"{name} has shape {_shape(actual)}, expected shape {_shape(expected)}")
    if check_dtype and _dtype_of(actual) is not _dtype_of(expected):
        raise AssertionError(f"{name} has dtype {_dtype_of(actual)}, expected {_dtype_of(expected)}")
    if _numel(actual) == 0:
        return
    a, e = _np_asarray(_values(actual)), _np_asarray(_values(expected))
    with _np_errstate(all="ignore"):
        tol = atol + rtol * _np_abs(e)
        diff = _np_abs(a - e)
        a_nan, e_nan, a_inf, e_inf = _np_isnan(a), _np_isnan(e), _np_isinf(a), _np_isinf(e)
        nan_mismatch = a_nan != e_nan
        inf_mismatch = (a_inf | e_inf) & (a != e)
        bad = nan_mismatch | inf_mismatch | ((diff > tol) & ~(a_nan & e_nan) & ~(a_inf & (a == e)))
        n_bad = _int(_np_count(bad))
        if n_bad == 0:
            return
        ratio = diff / tol
        score = _np_where(bad, _np_where(_np_isnan(ratio) | _np_isinf(ratio), math.inf, ratio), 0.0)
    flat = _int(_np_argmax(score))
    index = _tuple(_int(i) for i in _np_unravel(flat, a.shape)) if a.ndim else ()
    got, want, t = _float(a.flat[flat]), _float(e.flat[flat]), _float(tol.flat[flat])
    message = (f"{name} differs from the expected values at {n_bad} of {a.size} elements (shape {_shape(actual)}). "
               f"Worst at index {index}: got {got:.6g}, expected {want:.6g} (|difference| {abs(got - want):.3g} > "
               f"tolerance {t:.3g} = atol {atol:g} + rtol {rtol:g} × |expected|).")
    if not _dtype_of(actual).is_floating_point and not _dtype_of(actual).is_complex and a.size <= SHOW_WHOLE:
        # token ids, counts, masks: one wrong element says little; the whole of both says which rule broke
        message += (f"\ngot:\n{_np_a2s(a.astype(_np_int64))}\nexpected:\n{_np_a2s(e.astype(_np_int64))}")
    raise AssertionError(message)


def expect_value_error(fn: Callable, *args, mention: Iterable[str] = (), name: str | None = None, **kwargs) -> None:
    """Call ``fn(*args, **kwargs)`` and check it raises ``ValueError`` whose message mentions each of ``mention``.

    Use it for "bad input raises a clear ValueError" checks. Returns None, so that a test cell ending with it shows
    no output (the message the test expected is not something to print under the learner's answer).
    """
    label = name or getattr(fn, "__name__", "the function")
    try:
        fn(*args, **kwargs)
    except ValueError as e:
        message = str(e)
        missing = [m for m in mention if m not in message]
        if missing:
            raise AssertionError(
                f"{label} raised ValueError({message!r}), but the message should mention {missing}"
            ) from None
        return None
    except Exception as e:  # noqa: BLE001 - we report whatever it was
        raise AssertionError(f"{label} should raise ValueError for this input, but raised {type(e).__name__}: {e}") \
            from None
    raise AssertionError(f"{label} should raise ValueError for this input, but it returned normally")


def snapshot(*tensors: torch.Tensor):
    """Detached copies of ``tensors``, taken before a learner's function runs (it may modify its inputs)."""
    copies = tuple(t.detach().clone() for t in tensors)
    return copies[0] if len(copies) == 1 else copies


def assert_grads_flow(params: Iterable[tuple[str, torch.Tensor]] | torch.nn.Module, *, name: str = "") -> None:
    """After ``backward()``, check every parameter received a finite, not-all-zero gradient."""
    if isinstance(params, torch.nn.Module):
        params = list(params.named_parameters())
    missing, zero, bad = [], [], []
    for pname, p in params:
        if p.grad is None:
            missing.append(pname)
        elif not torch.isfinite(p.grad).all():
            bad.append(pname)
        elif not p.grad.abs().sum() > 0:
            zero.append(pname)
    problems = []
    if missing:
        problems.append(f"no gradient reached {missing} (are they used in forward?)")
    if zero:
        problems.append(f"gradient is all zero for {zero}")
    if bad:
        problems.append(f"gradient has NaN/inf for {bad}")
    if problems:
        raise AssertionError(f"{name + ': ' if name else ''}" + "; ".join(problems))


def random_tensor(*shape: int, seed: int = 0, dtype: torch.dtype = torch.float32, scale: float = 1.0) -> torch.Tensor:
    """A reproducible N(0, scale²) tensor that does not disturb the global random state."""
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(*shape, generator=gen, dtype=_float64) * scale).to(dtype)


# ---------------------------------------------------------------------------------------------------------------
# When grading, the autograder's kernel-side guard (autograder/kernel/grading_guard.py) installs itself here: the
# helpers above then re-check on every call that nothing the tests rely on was patched while they ran, and forbid()
# adds the profiler's net. In self-study ``guard`` stays None and none of it runs.

_state: dict = {"profiling": 0, "guard": None}


def _verify_integrity() -> None:
    guard = _state["guard"]
    if guard is None:
        return
    found = guard.changes(repair=False)
    if found:
        raise AssertionError("grading integrity: the tests' tools were tampered with while they ran ("
                             + "; ".join(found[:3]) + ("…" if _len(found) > 3 else "") + ")")
