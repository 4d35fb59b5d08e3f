"""The private torch APIs the test helpers use, each reached behind a fallback.

A learner on Colab gets whatever torch Colab ships, newer than the course's pin. Should a release move one of these
names, importing ``attention_steps`` must still work: the name here falls back to a public stand-in or to None, and
the helper that needs it does less (``forbid`` then checks at the Python-function level only; the grading guard,
which runs on the course's pinned torch, refuses to install). ``MISSING`` lists what was not found;
``tests/test_helpers.py`` imports the helpers with all of them removed.
"""

from __future__ import annotations

import contextlib
import importlib

import torch

MISSING: list[str] = []


def _find(module: str, name: str, fallback=None):
    """``module.name``, or ``fallback`` (recorded in MISSING) when that module or name does not exist."""
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        MISSING.append(f"{module}.{name}")
        return fallback


#: the C base class of torch.Tensor (its attributes can't be rebound by learner code)
TensorBase = _find("torch._C", "TensorBase", torch.Tensor)
#: context managers that switch torch-function / dispatch modes off while the helpers read a tensor
DisableTorchFunction = _find("torch._C", "DisableTorchFunction", contextlib.nullcontext)
DisableTorchDispatch = _find("torch._C", "_DisableTorchDispatch", contextlib.nullcontext)
#: the ATen-level mode forbid() uses beside the public torch.overrides.TorchFunctionMode
TorchDispatchMode = _find("torch.utils._python_dispatch", "TorchDispatchMode")

# Only the grading guard needs these (inspecting and clearing the mode stacks, the dispatch key state).
len_function_stack = _find("torch._C", "_len_torch_function_stack")
len_dispatch_stack = _find("torch._C", "_len_torch_dispatch_stack")
get_function_stack_at = _find("torch._C", "_get_function_stack_at")
get_dispatch_stack_at = _find("torch._C", "_get_dispatch_stack_at")
pop_function_stack = _find("torch._C", "_pop_torch_function_stack")
pop_dispatch_stack = _find("torch._C", "_pop_torch_dispatch_stack")
torch_function_enabled = _find("torch._C", "_is_torch_function_enabled")
dispatch_key_excluded = _find("torch._C", "_dispatch_tls_is_dispatch_key_excluded")
_keys = _find("torch._C", "DispatchKey")
#: Kineto's options; ``profile_all_threads=True`` makes forbid()'s profiler see ops run by other threads too
ProfilerConfig = _find("torch._C._profiler", "_ExperimentalConfig")
PYTHON_KEY = getattr(_keys, "Python", None)



def descriptor(cls: type, name: str):
    """The attribute descriptor ``name`` as defined on ``cls`` or its nearest base (not looked up on instances)."""
    return next(vars(c)[name] for c in cls.__mro__ if name in vars(c))


#: whether everything the grading guard needs is there
GUARD_AVAILABLE = not MISSING
