"""The sandbox's contract with the rest of grading: the guard's names, the refusal where bwrap can't run."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys

import pytest

from autograder import execute, sandbox
from autograder.paths import ROOT


def test_the_kernel_side_guard_has_the_names_grading_calls():
    sys.path.insert(0, str(execute.GUARD_FOLDER))
    try:
        guard = importlib.import_module("grading_guard")
    finally:
        sys.path.remove(str(execute.GUARD_FOLDER))
    for name in ("install", "restore", "verdict"):
        assert callable(getattr(guard, name, None)), f"grading_guard.{name} is missing"
        assert f"grading_guard').{name}(" in execute.PROLOGUE + execute.VERDICT or f".{name}(" in execute.PREAMBLE
    assert "__dict__" not in execute.PREAMBLE + execute.PROLOGUE + execute.VERDICT


def test_what_learners_import_does_not_load_the_guard():
    code = ("import sys, attention_steps, attention_steps.testing; "
            "print([m for m in sys.modules if m.startswith(('grading_guard', 'autograder'))])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out


def test_grading_refuses_untrusted_work_without_bwrap(monkeypatch):
    monkeypatch.setattr(sandbox, "_why_not", [])
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable))  # no bwrap on it
    with pytest.raises(sandbox.SandboxUnavailable) as e:
        sandbox.require()
    message = str(e.value)
    assert "bwrap" in message and "apt-get install bubblewrap" in message and "--trusted" in message, message


def test_the_sandbox_runs_here():
    """CI and the course machines have bubblewrap (the Makefile installs it): grading must not be refused there."""
    assert sandbox.unavailable_reason() == "", sandbox.unavailable_reason()


@pytest.mark.kernel
def test_the_demo_class_is_graded_as_trusted_where_bwrap_is_missing(tmp_path):
    env = dict(os.environ, PATH=os.path.dirname(sys.executable), ATTENTION_STEPS_GRADING_DIR=str(tmp_path))
    proc = subprocess.run([sys.executable, "-m", "autograder", "grade"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "grading the bundled demo class without the sandbox" in proc.stderr
    assert [line.split()[-1] for line in proc.stdout.splitlines() if line.split()[:1] in (["alice"], ["bob"],
                                                                                            ["carol"])] == [
        "5/5", "2/5", "0/5"], proc.stdout
    refused = subprocess.run([sys.executable, "-m", "autograder", "grade", str(ROOT / "autograder" / "demo_class")],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert refused.returncode == 2 and "refusing to grade untrusted submissions" in refused.stderr, refused.stderr


_TRIPWIRE = r'''
import gc, os, sys, tempfile
sys.path.insert(0, "autograder/kernel")
import grading_guard
from autograder.execute import TRIPWIRE_EVENTS
path = os.path.join(tempfile.mkdtemp(), "tripwire")
open(path, "w").close()
grading_guard.install(path, TRIPWIRE_EVENTS)
import torch
torch.softmax(torch.randn(3, 4) @ torch.randn(4, 2), -1).sum()  # ordinary work raises none of them
getattr(__import__("g" + "c"), "get_objects")()  # a spelling no source review catches
import ctypes
ctypes.CDLL(None)
gc.get_objects()  # each event once
print(open(path).read().split())
'''


def test_the_audit_tripwire_records_hooking_events_once_and_nothing_else():
    import ast
    import subprocess

    proc = subprocess.run([sys.executable, "-c", _TRIPWIRE], capture_output=True, text=True, timeout=120,
                          cwd=execute.GUARD_FOLDER.parents[1])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert ast.literal_eval(proc.stdout.strip().splitlines()[-1]) == ["tripwire", "gc.get_objects", "ctypes.dlopen"]
