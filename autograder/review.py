"""What in a learner's code deserves a human look: an AST review of the cells the learner wrote.

Flags never change a score (the sandbox, the integrity guard and the verdicts outside the kernel do that); they put
a note on the submission's row, in its feedback and in the report, so that an instructor reads the code. The review
parses each cell (IPython magics and shell lines are blanked first) and looks for the *kinds* of code that tamper
with grading, whatever the spelling: dynamic code, threads and processes, ctypes, frame / garbage-collector /
audit access, IPython and ipykernel internals, patching torch, numpy or the test helpers, torch's mode and dispatch
internals, and the built-ins an exercise asks the learner to write. A cell that does not parse is reviewed by
pattern instead.
"""

from __future__ import annotations

import ast
import re

DYNAMIC_CODE = "dynamic code (exec, eval, compile, __import__)"
PROCESSES = "threads, processes or signals"
CTYPES = "ctypes / native code"
INTROSPECTION = "frame, garbage-collector or audit access"
IPYTHON = "IPython / ipykernel internals"
PATCHING = "patching torch, numpy or the test helpers"
TORCH_INTERNALS = "torch modes / dispatch internals"
ALWAYS_EQUAL = "an always-equal object"
EXIT = "os._exit"

_MODULE_KINDS = {
    "threading": PROCESSES, "_thread": PROCESSES, "multiprocessing": PROCESSES, "subprocess": PROCESSES,
    "concurrent": PROCESSES, "signal": PROCESSES, "asyncio": PROCESSES, "ctypes": CTYPES, "cffi": CTYPES,
    "_ctypes": CTYPES, "gc": INTROSPECTION, "inspect": INTROSPECTION, "linecache": INTROSPECTION,
    "traceback": INTROSPECTION, "IPython": IPYTHON, "ipykernel": IPYTHON, "jupyter_client": IPYTHON, "zmq": IPYTHON,
    "importlib": DYNAMIC_CODE, "builtins": PATCHING, "code": DYNAMIC_CODE, "codeop": DYNAMIC_CODE,
}
_CALLS = {"exec": DYNAMIC_CODE, "eval": DYNAMIC_CODE, "compile": DYNAMIC_CODE, "__import__": DYNAMIC_CODE,
          "get_ipython": IPYTHON, "setattr": PATCHING, "delattr": PATCHING}
_NAMES = {"In": IPYTHON, "Out": IPYTHON, "_ih": IPYTHON, "_oh": IPYTHON, "_dh": IPYTHON, "__builtins__": PATCHING,
          "TorchFunctionMode": TORCH_INTERNALS, "TorchDispatchMode": TORCH_INTERNALS}
_ATTRIBUTES = {
    "_getframe": INTROSPECTION, "f_back": INTROSPECTION, "f_globals": INTROSPECTION, "f_locals": INTROSPECTION,
    "tb_frame": INTROSPECTION, "gi_frame": INTROSPECTION, "settrace": INTROSPECTION, "setprofile": INTROSPECTION,
    "addaudithook": INTROSPECTION, "get_objects": INTROSPECTION, "get_referrers": INTROSPECTION,
    "__globals__": INTROSPECTION, "__code__": INTROSPECTION, "__closure__": INTROSPECTION,
    "run_cell": IPYTHON, "run_cell_async": IPYTHON, "run_ast_nodes": IPYTHON, "run_code": IPYTHON,
    "do_execute": IPYTHON, "execute_request": IPYTHON, "input_transformers_cleanup": IPYTHON,
    "input_transformers_post": IPYTHON, "ast_transformers": IPYTHON, "events": IPYTHON, "displayhook": IPYTHON,
    "excepthook": IPYTHON, "display_pub": IPYTHON, "user_ns": IPYTHON, "shell_handlers": IPYTHON,
    "DisableTorchFunction": TORCH_INTERNALS, "DisableTorchFunctionSubclass": TORCH_INTERNALS,
    "_DisableTorchDispatch": TORCH_INTERNALS, "_pop_torch_function_stack": TORCH_INTERNALS,
    "_pop_torch_dispatch_stack": TORCH_INTERNALS, "ExcludeDispatchKeyGuard": TORCH_INTERNALS,
    "_ExcludeDispatchKeyGuard": TORCH_INTERNALS, "_C": TORCH_INTERNALS,
}
#: attributes that are suspicious on one module only (``model.modules()`` is fine, ``sys.modules`` is not)
_ATTRIBUTES_OF = {
    ("sys", "modules"): INTROSPECTION, ("os", "_exit"): EXIT, **{("os", name): PROCESSES for name in (
        "fork", "forkpty", "kill", "killpg", "system", "popen", "spawnv", "spawnve", "execv", "execve", "execvp",
        "setsid", "posix_spawn")},
}
#: modules whose attributes the learner must not assign: the tests and the helpers rely on them
_GUARDED_ROOTS = {"torch", "np", "numpy", "attention_steps", "testing", "builtins", "math", "F", "nn", "sys", "os"}
_MAGIC = re.compile(r"^\s*[%!]")


def _root(node: ast.AST) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Call)):
        node = node.value if not isinstance(node, ast.Call) else node.func
    return node.id if isinstance(node, ast.Name) else None


class _Review(ast.NodeVisitor):
    def __init__(self, forbidden: set[str]):
        self.forbidden, self.found = forbidden, set()

    def visit_Import(self, node):
        for alias in node.names:
            self._module(alias.name)
        self.generic_visit(node)

    def visit_ImportFrom(self, node):
        self._module(node.module or "")
        for alias in node.names:
            if alias.name in _ATTRIBUTES:
                self.found.add(_ATTRIBUTES[alias.name])
            if alias.name in self.forbidden and (node.module or "").split(".")[0] == "torch":
                self.found.add(f"the built-in {alias.name} that the exercise asks you to write")
        self.generic_visit(node)

    def _module(self, name: str):
        top = name.split(".")[0]
        if top in _MODULE_KINDS:
            self.found.add(_MODULE_KINDS[top])

    def visit_Call(self, node):
        if isinstance(node.func, ast.Name) and node.func.id in _CALLS:
            self.found.add(_CALLS[node.func.id])
        if isinstance(node.func, ast.Name) and node.func.id in ("getattr", "setattr", "hasattr", "delattr") \
                and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant) \
                and isinstance(node.args[1].value, str):
            self._attribute(node.args[1].value)
        self.generic_visit(node)

    def visit_Name(self, node):
        if node.id in _NAMES:
            self.found.add(_NAMES[node.id])
        self.generic_visit(node)

    def visit_Attribute(self, node):
        self._attribute(node.attr)
        if isinstance(node.value, ast.Name) and (node.value.id, node.attr) in _ATTRIBUTES_OF:
            self.found.add(_ATTRIBUTES_OF[node.value.id, node.attr])
        if isinstance(node.ctx, (ast.Store, ast.Del)) and _root(node) in _GUARDED_ROOTS:
            self.found.add(PATCHING)
        self.generic_visit(node)

    def _attribute(self, attr: str):
        if attr in _ATTRIBUTES:
            self.found.add(_ATTRIBUTES[attr])
        if attr in self.forbidden:
            self.found.add(f"the built-in {attr} that the exercise asks you to write")

    def visit_FunctionDef(self, node):
        if node.name == "__eq__" and any(isinstance(n, ast.Return) and isinstance(n.value, ast.Constant)
                                         and n.value.value is True for n in ast.walk(node)):
            self.found.add(ALWAYS_EQUAL)
        self.generic_visit(node)


def review(sources: list[str], forbidden: set[str] = frozenset(), fallback: dict[str, str] | None = None) -> list[str]:
    """The kinds of suspicious code in ``sources`` (the learner's cells), sorted; ``forbidden``: built-in names the
    exercises ask the learner to write themselves (flagged when reached as ``torch.X``, ``F.X``, ``x.X`` …);
    ``fallback``: label -> regex for a cell that does not parse."""
    found: set[str] = set()
    for source in sources:
        text = "\n".join("" if _MAGIC.match(line) else line for line in source.splitlines())
        try:
            tree = ast.parse(text)
        except SyntaxError:
            found |= {label for label, pattern in (fallback or {}).items() if re.search(pattern, text)}
            continue
        visitor = _Review(set(forbidden))
        visitor.visit(tree)
        found |= visitor.found
    return sorted(found)


_FORBID_CALL = re.compile(r"\bforbid\(\s*((?:\"[^\"]+\"\s*,\s*)*\"[^\"]+\")")


def forbidden_in(test_sources: list[str]) -> set[str]:
    """The functions the notebook's tests forbid: ``forbid("softmax", ...)`` in a test cell gives torch's softmax
    functions (``softmax``, ``log_softmax``, …, from ``attention_steps.testing.FORBIDDEN_GROUPS``)."""
    from attention_steps.testing import FORBIDDEN_GROUPS

    names: set[str] = set()
    for source in test_sources:
        for m in _FORBID_CALL.finditer(source):
            for name in re.findall(r"\"([^\"]+)\"", m.group(1)):
                names |= FORBIDDEN_GROUPS[name][0] if name in FORBIDDEN_GROUPS else {name}
    return names
