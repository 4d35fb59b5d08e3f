"""The helper package: data sets are fixed and disjoint, test helpers fail loudly and precisely, no solutions."""

import ast
import re

import pytest
import torch

from attention_steps import by_mode, fast_path, use_course_threads
from attention_steps.data import BOS, EOS, PAD, date_task, en_ja_task, load_digits_split, sequence_task
from attention_steps.device import COURSE_THREADS, THREADS_ENV
from attention_steps.metrics import exact_match
from attention_steps.testing import (
    ForbiddenBuiltinError,
    assert_close,
    assert_grads_flow,
    expect_value_error,
    forbid,
)
from attention_steps.training import batch_sampler, train
from attention_steps.weights import copy_mha_weights, rnn_weights
from autograder.notebooks import all_sources, items
from autograder.paths import ROOT


def test_special_ids_are_fixed():
    assert (PAD, BOS, EOS) == (0, 1, 2)
    for task in (date_task(n_train=50, n_valid=10, n_test=20), en_ja_task(n_train=50, n_valid=10, n_test=20)):
        assert task.src_vocab.itos[:3] == task.tgt_vocab.itos[:3] == ["<pad>", "<bos>", "<eos>"]
        assert (task.train.tgt[:, 0] == BOS).all()
        assert ((task.train.tgt == EOS).sum(1) == 1).all()


def test_dates_are_reproducible_and_the_test_split_is_held_out():
    a, b = date_task(), date_task()
    assert torch.equal(a.train.src, b.train.src) and torch.equal(a.test.tgt, b.test.tgt)
    assert len(a.test) == 2000
    assert not set(a.test.src_text) & set(a.train.src_text)
    assert not set(a.valid.src_text) & set(a.train.src_text)
    assert a.decode_target(a.test.tgt[0]) == a.test.tgt_text[0]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", a.test.tgt_text[0])
    assert len({len(s) for s in a.train.src_text}) > 10, "dates should come in many formats"


def test_en_ja_reorders_verb_to_the_end():
    task = en_ja_task()
    pairs = dict(zip(task.train.src_text, task.train.tgt_text))
    assert not set(task.test.src_text) & set(pairs)
    for en, ja in list(pairs.items())[:200]:
        assert ja.split()[-1] in {"食べる", "食べた", "飲む", "飲んだ", "読む", "読んだ", "書く", "書いた", "買う",
                                  "買った", "見る", "見た", "です"}, (en, ja)
    ids, lengths = task.encode_source(["i eat an apple"])
    assert task.src_vocab.decode(ids[0]) == ["i", "eat", "an", "apple"] and lengths.tolist() == [4]


def test_sequences_cover_every_length_equally():
    task = sequence_task("reverse", n_train=460, n_valid=46, n_test=460)
    counts = torch.bincount(task.test.src_lengths, minlength=51)[5:51]
    assert counts.min() >= 5 and counts.max() <= 15
    assert task.test.tgt_text[0] == task.test.src_text[0][::-1]


def test_digits_split_is_fixed_and_stratified():
    d = load_digits_split()
    assert d.x_test.shape == (360, 1, 8, 8) and d.x_test.dtype == torch.float32
    assert 0 <= float(d.x_train.min()) and float(d.x_train.max()) <= 1
    assert torch.bincount(d.y_test).min() >= 35
    assert torch.equal(load_digits_split(valid_fraction=0.0).x_test, d.x_test)


def test_assert_close_reports_shapes_worst_element_and_tolerance():
    expected = torch.zeros(2, 3)
    actual = expected.clone()
    actual[1, 2] = 0.5
    with pytest.raises(AssertionError, match=r"1 of 6 elements.*shape \(2, 3\).*index \(1, 2\).*got 0\.5.*tolerance"):
        assert_close(actual, expected)
    with pytest.raises(AssertionError, match=r"shape \(3,\), expected shape \(2, 3\)"):
        assert_close(torch.zeros(3), expected)
    with pytest.raises(AssertionError, match="dtype"):
        assert_close(expected.double(), expected)
    with pytest.raises(AssertionError, match="NaN|differs"):
        assert_close(torch.full((2, 3), float("nan")), expected)

    class AlwaysEqual:
        def __eq__(self, other):
            return True

    with pytest.raises(AssertionError, match="should be a torch.Tensor"):
        assert_close(AlwaysEqual(), expected)

    class Sneaky(torch.Tensor):
        pass

    with pytest.raises(AssertionError, match="should be a torch.Tensor"):
        assert_close(expected.as_subclass(Sneaky), expected)


@pytest.mark.parametrize("call", [
    lambda x: torch.softmax(x, -1),
    lambda x: x.softmax(-1),
    lambda x: torch.nn.functional.softmax(x, -1),
    lambda x: torch.nn.Softmax(dim=-1)(x),
    lambda x: torch.nn.functional.log_softmax(x, -1).exp(),
    lambda x: torch.special.softmax(x, -1),
    lambda x: torch.ops.aten._softmax(x, -1, False),
])
def test_forbid_catches_the_builtin_however_it_is_reached(call):
    captured = call  # a reference taken before the guard is entered
    with pytest.raises(ForbiddenBuiltinError):
        with forbid("softmax"):
            try:
                captured(torch.randn(2, 3))
            except Exception:
                pass  # hiding the error does not help: the call is reported when the block ends


def test_forbid_lets_elementary_ops_through():
    x = torch.randn(2, 3)
    with forbid("softmax", "scaled_dot_product_attention"):
        y = x.exp() / x.exp().sum(-1, keepdim=True)
    assert_close(y, torch.softmax(x, -1))


def test_assert_close_shows_small_integer_results_whole():
    with pytest.raises(AssertionError) as failed:  # token ids: the whole of both says which rule broke
        assert_close(torch.tensor([[5, 6, 2, 0]]), torch.tensor([[5, 6, 2, 7]]), atol=0, name="greedy_decode output")
    assert "got:\n[[5 6 2 0]]\nexpected:\n[[5 6 2 7]]" in str(failed.value)
    with pytest.raises(AssertionError) as failed:  # floats, and large results: the worst element only
        assert_close(torch.zeros(2), torch.ones(2))
    assert "got:" not in str(failed.value) and "Worst at index" in str(failed.value)
    with pytest.raises(AssertionError) as failed:
        assert_close(torch.zeros(100, dtype=torch.long), torch.ones(100, dtype=torch.long))
    assert "got:" not in str(failed.value)


def test_forbid_can_say_why_the_builtin_is_wrong_here():
    with pytest.raises(ForbiddenBuiltinError, match=r"SEBlock called .*softmax.*: a gate is a sigmoid"):
        with forbid("softmax", exercise="SEBlock", why="a gate is a sigmoid"):
            torch.softmax(torch.zeros(3), 0)
    with pytest.raises(ForbiddenBuiltinError, match="asks you to write softmax yourself"):
        with forbid("softmax", exercise="softmax"):
            torch.softmax(torch.zeros(3), 0)


def test_course_thread_count(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.setenv(THREADS_ENV, "2")
        assert use_course_threads() == 2
        monkeypatch.delenv(THREADS_ENV)
        assert use_course_threads() == COURSE_THREADS == torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


def test_expect_value_error_and_grads_flow():
    def picky(x):
        if x.dim() != 2:
            raise ValueError(f"expected 2-D, got shape {tuple(x.shape)}")

    assert expect_value_error(picky, torch.zeros(3), mention=["(3,)"]) is None  # nothing shown under a test cell
    with pytest.raises(AssertionError, match="should mention"):
        expect_value_error(picky, torch.zeros(3), mention=["(4,)"])
    with pytest.raises(AssertionError, match="returned normally"):
        expect_value_error(picky, torch.zeros(2, 2))
    with pytest.raises(AssertionError, match="raised TypeError"):
        expect_value_error(lambda: (_ for _ in ()).throw(TypeError("no")))
    lin = torch.nn.Linear(3, 2)
    lin.weight.sum().backward()
    with pytest.raises(AssertionError, match="bias"):
        assert_grads_flow(lin)


def test_copy_mha_weights_reproduces_torch():
    torch.manual_seed(0)
    mha = torch.nn.MultiheadAttention(8, 2, batch_first=True)

    class Projections(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.q_proj, self.k_proj, self.v_proj, self.out_proj = (torch.nn.Linear(8, 8) for _ in range(4))

    ours = copy_mha_weights(mha, Projections())
    x = torch.randn(1, 5, 8)
    q, k, v = ours.q_proj(x), ours.k_proj(x), ours.v_proj(x)
    heads = lambda t: t.view(1, 5, 2, 4).transpose(1, 2)
    w = (heads(q) @ heads(k).transpose(-1, -2) / 2.0).softmax(-1)
    out = ours.out_proj((w @ heads(v)).transpose(1, 2).reshape(1, 5, 8))
    assert_close(out, mha(x, x, x, need_weights=False)[0], atol=1e-6)


def test_rnn_weights_use_the_row_vector_convention():
    rnn = torch.nn.RNN(3, 4, batch_first=True)
    w = rnn_weights(rnn)
    x = torch.randn(2, 1, 3)
    h = torch.tanh(x[:, 0] @ w["W_xh"] + torch.zeros(2, 4) @ w["W_hh"] + w["b"])
    assert_close(h, rnn(x)[0][:, 0], atol=1e-6)


def test_training_loop_learns_and_records(monkeypatch):
    monkeypatch.setenv("ATTENTION_STEPS_FAST", "1")
    torch.manual_seed(0)
    x = torch.randn(256, 4)
    y = x @ torch.tensor([1.0, -2.0, 0.5, 3.0])
    model = torch.nn.Linear(4, 1)
    batches = batch_sampler(x, y, batch_size=32)
    history = train(model, torch.optim.Adam(model.parameters(), lr=0.05),
                    lambda m, b: ((m(b[0]).squeeze(-1) - b[1]) ** 2).mean(), batches, 200,
                    evaluate=lambda: 1.0, eval_every=100)
    assert len(history.losses) == 200 and history.losses[-1] < 0.01 * history.losses[0]
    assert [s for s, _ in history.evals] == [100, 200]


def test_training_prints_a_final_line_a_saved_notebook_keeps(monkeypatch, capsys):
    """A widget progress bar is not saved with an executed notebook; the line printed at the end is."""
    monkeypatch.delenv("ATTENTION_STEPS_FAST", raising=False)
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    model = torch.nn.Linear(2, 1)
    train(model, torch.optim.SGD(model.parameters(), lr=0.1), lambda m, b: m(b).pow(2).mean(),
          lambda step: torch.ones(4, 2), 5, desc="tiny run")
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert re.fullmatch(r"tiny run: 5 steps in \d+\.\d s, loss \d+\.\d{4}", line), line
    monkeypatch.setenv("ATTENTION_STEPS_FAST", "1")
    train(model, torch.optim.SGD(model.parameters(), lr=0.1), lambda m, b: m(b).pow(2).mean(),
          lambda step: torch.ones(4, 2), 5, desc="tiny run")
    assert capsys.readouterr().out == "", "the grading fast path prints nothing"


def test_fast_path_switch(monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.delenv("ATTENTION_STEPS_FAST", raising=False)
    assert not fast_path() and by_mode(full=10, fast=1) == 10
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    assert fast_path() and by_mode(full=10, fast=1) == 1


def test_exact_match_compares_up_to_eos():
    target = torch.tensor([[BOS, 5, 6, EOS, PAD], [BOS, 5, 6, EOS, PAD]])
    predicted = torch.tensor([[5, 6, EOS, 9], [5, 7, EOS, PAD]])
    assert exact_match(predicted, target) == 0.5


def test_japanese_labels_render_with_the_bundled_font():
    import warnings

    from matplotlib import font_manager

    from attention_steps import plotting

    assert plotting.HAS_JAPANESE_FONT
    path = font_manager.findfont(font_manager.FontProperties(family=plotting.JAPANESE_FONT), fallback_to_default=False)
    assert path.endswith("ipaexg.ttf")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig = plotting.attention_grid(torch.rand(2, 3, 4), ["私", "は", "猫"], ["i", "see", "a", "cat"])
        fig.canvas.draw()
    missing = [str(w.message) for w in caught if "missing from font" in str(w.message)]
    assert not missing, f"Japanese labels would render as boxes: {missing[:2]}"


def test_helper_package_defines_no_graded_name():
    graded = {i.name for nb in all_sources().values() for i in items(nb)}
    offenders = []
    for path in (ROOT / "attention_steps").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.ClassDef) and node.name in graded:
                offenders.append(f"{path.relative_to(ROOT)}: {node.name}")
    assert not offenders, f"the helper package must hold no solution: {offenders}"


# Every private torch name attention_steps reaches, removed before it is imported: what a later torch might do.
_WITHOUT_PRIVATE_TORCH = r'''
import sys, types, torch
gone = {"TensorBase", "DisableTorchFunction", "_DisableTorchDispatch", "_len_torch_function_stack",
        "_len_torch_dispatch_stack", "_get_function_stack_at", "_get_dispatch_stack_at", "_pop_torch_function_stack",
        "_pop_torch_dispatch_stack", "_is_torch_function_enabled", "_dispatch_tls_is_dispatch_key_excluded",
        "DispatchKey"}
# torch keeps working (it holds its own reference to torch._C); what attention_steps imports by name lacks them
real_c = sys.modules["torch._C"]
moved = types.ModuleType("torch._C")
moved.__dict__.update({k: v for k, v in vars(real_c).items() if k not in gone})
sys.modules["torch._C"] = moved
sys.modules["torch.utils._python_dispatch"] = None  # import fails
real_profiler = sys.modules["torch._C._profiler"]
sys.modules["torch._C._profiler"] = types.ModuleType("torch._C._profiler")  # no _ExperimentalConfig
import attention_steps, attention_steps.testing as t
sys.modules["torch._C"], sys.modules["torch._C._profiler"] = real_c, real_profiler
assert not [m for m in sys.modules if "grading_guard" in m], "the learner's import must not load the grading guard"
from attention_steps import _torch_private
assert len(_torch_private.MISSING) == 14 and not _torch_private.GUARD_AVAILABLE, _torch_private.MISSING
t.assert_close(torch.ones(2, 3), torch.ones(2, 3))
try:
    t.assert_close(torch.ones(2), torch.zeros(2))
    raise SystemExit("assert_close accepted different values")
except AssertionError as e:
    assert "differs" in str(e)
with t.forbid("softmax"):
    torch.exp(torch.ones(3))
try:
    with t.forbid("softmax"):
        torch.nn.functional.softmax(torch.ones(3), dim=0)
    raise SystemExit("forbid missed F.softmax")
except t.ForbiddenBuiltinError:
    pass
with t.watch_tensors() as watch:  # nothing to watch with: it says so, and every figure is 0
    torch.ones(50, 50) @ torch.ones(50, 50)
assert not watch.available and watch.largest_numel == 0 and watch.peak_bytes == 0
sys.path.insert(0, "autograder/kernel")
import grading_guard  # the autograder's kernel-side guard: it refuses (grading runs on the pinned torch)
try:
    grading_guard.install()
    raise SystemExit("the grading guard installed without the internals it needs")
except RuntimeError as e:
    assert "lacks" in str(e)
print("fallbacks ok")
'''


def test_helpers_import_and_work_when_private_torch_apis_are_gone():
    """A torch that moved its internals must not break a learner's import: forbid() falls back to the Python level."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", _WITHOUT_PRIVATE_TORCH], capture_output=True, text=True, timeout=120,
                          cwd=ROOT)
    assert proc.returncode == 0 and "fallbacks ok" in proc.stdout, proc.stderr[-3000:]


# forbid() while grading (the guard installed): a built-in run by another thread for the learner's code is seen too.
_WORKER_THREAD = r'''
import queue, sys, threading, torch
sys.path.insert(0, "autograder/kernel")
import grading_guard
from attention_steps.testing import ForbiddenBuiltinError, forbid
grading_guard.install()
jobs, results = queue.Queue(), queue.Queue()
threading.Thread(target=lambda: [results.put(torch.softmax(jobs.get(), -1)) for _ in range(2)], daemon=True).start()

def softmax_by_proxy(x):  # started before forbid(); the thread-local modes never see its calls
    jobs.put(x)
    return results.get()

try:
    with forbid("softmax", exercise="softmax"):
        softmax_by_proxy(torch.randn(3, 4))
    raise SystemExit("forbid missed torch.softmax run by a worker thread")
except ForbiddenBuiltinError as e:
    assert "softmax" in str(e), e
with forbid("softmax", exercise="softmax"):  # the worker's other ops are not a problem
    torch.exp(torch.ones(3))
print("threads seen")
'''


def test_forbid_sees_a_builtin_run_by_another_thread_when_grading():
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", _WORKER_THREAD], capture_output=True, text=True, timeout=120,
                          cwd=ROOT)
    assert proc.returncode == 0 and "threads seen" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "USDT" not in proc.stderr and "profiler_start" not in proc.stderr, proc.stderr[-1000:]


def test_grading_code_stands_apart_from_the_qa_code():
    """autograder/ (what grades) never imports qa/ (the course's own checks) and never reads tests/."""
    offenders = []
    for path in (ROOT / "autograder").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            offenders += [f"{path.relative_to(ROOT)} imports {n}" for n in names if n == "qa" or n.startswith("qa.")]
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and (
                    node.value == "tests" or node.value.startswith("tests/")):
                offenders.append(f"{path.relative_to(ROOT)} names {node.value!r}")
    assert not offenders, offenders


def test_watch_tensors_sees_the_largest_tensor_and_the_peak_of_live_bytes():
    from attention_steps.testing import watch_tensors

    q = k = v = torch.randn(2, 64, 8)
    with watch_tensors() as whole:
        torch.softmax(q @ k.transpose(-2, -1), dim=-1) @ v
    assert whole.available and whole.largest == (2, 64, 64) and whole.largest_numel == 2 * 64 * 64
    assert 2 * (2 * 64 * 64 * 4) <= whole.peak_bytes < 3 * (2 * 64 * 64 * 4)  # scores and weights alive together
    with watch_tensors() as blocks:
        for begin in range(0, 64, 16):
            (q @ k[:, begin : begin + 16].transpose(-2, -1)).exp()
    assert blocks.largest == (2, 64, 16)
    assert blocks.peak_bytes < 3 * (2 * 64 * 16 * 4) < whole.peak_bytes  # each block freed before the next
    with watch_tensors() as views:
        x = torch.zeros(1000)
        x.view(10, 100).t().reshape(100, 10)[:5]  # views of one storage: counted once
    assert views.peak_bytes == 4000 and views.largest_numel == 1000
