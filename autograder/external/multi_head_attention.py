"""Hidden tests of 06_multi_head_attention as data: ``split_heads``, ``merge_heads``, ``MultiHeadAttention``."""

from __future__ import annotations

import numpy as np

from .cases import ModuleCase, as_reference_input, checked_call, checked_gradients, must_raise
from .expect import differs
from .probe import Step, ref, tensor
from .reference_layers import ReferenceMultiHeadAttention, trusted

split, merge = trusted.split_heads, trusted.merge_heads  # the grader's references: the kernel-side stand-ins

EXERCISE = dict(forbid=("scaled_dot_product_attention", "multi_head_attention"), exercise="MultiHeadAttention")
#: graded on its own: a learner's MultiHeadAttention may call their split_heads / merge_heads; trusted ones run
ALONE = dict(stand_ins={"split_heads": "split_heads", "merge_heads": "merge_heads"})


def split_heads_steps(rng: np.random.Generator) -> list:
    steps = []
    for b, s, d, h in [(1, 1, 4, 1), (2, 5, 12, 3), (3, 4, 16, 16), (2, 7, 32, 8), (4, 3, 6, 2)]:
        steps.append(checked_call("split_heads", [rng.standard_normal((b, s, d)), h], split, atol=0, rtol=0,
                                  label=f"split_heads for x {(b, s, d)}, {h} heads"))
    steps.append(checked_call("split_heads", [rng.integers(0, 9, (2, 3, 6)), 3], split, atol=0, rtol=0,
                              dtype="int64", label="split_heads of an integer tensor"))
    steps.append(checked_gradients("split_heads", [rng.standard_normal((2, 3, 8)), 2], split, wrt=(0,), rng=rng,
                                   label="split_heads"))
    for shape, heads, mention, label in [((3, 8), 2, (), "a 2-D tensor"), ((2, 3, 3, 8), 2, (), "a 4-D tensor"),
                                         ((2, 3, 8), 0, (), "0 heads"), ((2, 3, 8), 3, ("8", "3"), "D=8, 3 heads")]:
        steps.append(must_raise("split_heads", [rng.standard_normal(shape), heads], mention=mention,
                                label=f"split_heads with {label}"))
    return steps


def merge_heads_steps(rng: np.random.Generator) -> list:
    steps = [checked_call("merge_heads", [rng.standard_normal(shape)], merge, atol=0, rtol=0,
                          label=f"merge_heads for x {shape}")
             for shape in [(1, 1, 1, 4), (2, 3, 5, 4), (3, 16, 4, 1), (2, 8, 7, 4), (1, 2, 9, 3)]]
    steps.append(checked_call("merge_heads", [tensor(rng.standard_normal((2, 6, 3, 4)), permute=(0, 2, 1, 3))], merge,
                              atol=0, rtol=0, dtype="float64", label="merge_heads of a non-contiguous tensor"))
    steps.append(checked_gradients("merge_heads", [rng.standard_normal((2, 2, 3, 4))], merge, wrt=(0,), rng=rng,
                                   label="merge_heads"))
    steps += [must_raise("merge_heads", [rng.standard_normal(shape)], label=f"merge_heads of a {len(shape)}-D tensor")
              for shape in [(2, 3, 8), (2, 2, 3, 3, 8)]]
    return steps


def _case(rng, d_model, heads, label, keep, dtype="float32", **kwargs):
    return ModuleCase("MultiHeadAttention", [d_model, heads], ReferenceMultiHeadAttention(d_model, heads), rng,
                      label=f"MultiHeadAttention({d_model}, {heads})", keep=keep, dtype_name=dtype, **ALONE, **kwargs)


def _attend(rng, d_model, heads, batch, t_q, t_k, mask=None, *, label, keep, dtype="float32", self_attention=False):
    case = _case(rng, d_model, heads, label, keep, dtype)
    query = rng.standard_normal((batch, t_q, d_model)).astype(dtype)
    key = query if self_attention else rng.standard_normal((batch, t_k, d_model)).astype(dtype)
    value = query if self_attention else rng.standard_normal((batch, t_k, d_model)).astype(dtype)
    tol = dict(atol=2e-5, rtol=1e-4) if dtype == "float32" else dict(atol=1e-10, rtol=1e-8)
    args = [query, key, value] + ([mask] if mask is not None else [])
    return [*case.steps, case.call(args, outputs=2, label=label, **tol, **EXERCISE)]


def multi_head_attention_steps(rng: np.random.Generator) -> list:
    steps = []
    # shapes: cross-attention T != S, batch of one, length one, one head, head width one
    for number, (d, h, b, t, s) in enumerate([(16, 4, 2, 5, 7), (32, 8, 1, 1, 1), (24, 3, 3, 6, 6), (8, 1, 2, 4, 3),
                                             (8, 8, 2, 3, 5)]):
        steps += _attend(rng, d, h, b, t, s, label=f"d_model={d}, {h} heads, B={b}, T_q={t}, T_k={s}",
                         keep=f"shape{number}")
    steps += _attend(rng, 16, 2, 2, 6, 6, label="self-attention (query = key = value)", keep="self",
                     self_attention=True)
    steps += _attend(rng, 12, 3, 2, 4, 5, label="float64", keep="double", dtype="float64")
    # masks: causal (T, T); key padding (B, 1, 1, S); (B, 1, T, S) with a fully masked row and a one-key row; per head
    steps += _attend(rng, 16, 4, 2, 6, 6, np.tril(np.ones((6, 6), dtype=bool)), label="causal (T, T) mask",
                     keep="causal", self_attention=True)
    steps += _attend(rng, 16, 4, 3, 4, 7, (np.arange(7) < np.array([7, 2, 5])[:, None])[:, None, None, :],
                     label="(B, 1, 1, T_k) key-padding mask", keep="padding")
    mask = rng.random((2, 1, 5, 6)) > 0.5
    mask[0, 0, 1] = False
    mask[1, 0, 3] = False
    mask[1, 0, 3, 2] = True
    steps += _attend(rng, 8, 2, 2, 5, 6, mask, keep="rows", label="(B, 1, T_q, T_k) mask with a query with no "
                     "allowed key (zero weights; its output is out_proj.bias) and one with only key 2")
    steps += _attend(rng, 8, 4, 2, 3, 4, rng.random((2, 4, 3, 4)) > 0.3, label="(B, H, T_q, T_k) per-head mask",
                     keep="per_head")
    # gradients to the inputs and every parameter, in float64, with a causal mask and with a fully masked row
    case = _case(rng, 16, 4, "gradients", "grads", "float64")
    x = rng.standard_normal((2, 5, 16))
    steps += [*case.steps, case.call([x, x, x, np.tril(np.ones((5, 5), dtype=bool))], outputs=2, rng=rng, output=0,
                                     grad_args=(0, 1, 2), label="MultiHeadAttention with a causal mask")]
    mask = np.array([[True, False, True, True], [False] * 4, [True] * 4])
    case = _case(rng, 8, 2, "gradients", "grads_masked_row", "float64")
    steps += [*case.steps, case.call([rng.standard_normal((1, 3, 8)), *[rng.standard_normal((1, 4, 8))] * 2, mask],
                                     outputs=2, rng=rng, output=0, grad_args=(0, 1, 2),
                                     label="MultiHeadAttention with a query that has no allowed key")]
    # dropout on the weights, in training mode only
    case = ModuleCase("MultiHeadAttention", [16, 4], ReferenceMultiHeadAttention(16, 4), rng, keep="dropout",
                      label="MultiHeadAttention(16, 4, dropout=0.5)", dtype_name="float32",
                      ctor_kwargs={"dropout": 0.5}, **ALONE)
    q = rng.standard_normal((2, 6, 16)).astype(np.float32)
    evaluated = case.call([q, q, q], outputs=2, label="output in eval() mode with dropout=0.5 (dropout must be off in "
                                                      "eval mode)", atol=2e-5, rtol=1e-4)
    want = case.reference(*[as_reference_input(q)] * 3)[0].detach().numpy()
    steps += [*case.steps, evaluated, case.mode(True),
              Step(ref("dropout"), [q, q, q], seed=3, expect=differs(want, index=0, name=(
                  "with dropout=0.5 in training mode the output should differ from eval mode (apply dropout to the "
                  "attention weights)")))]
    # bad input
    steps += [must_raise("MultiHeadAttention", [12, 5], mention=("12", "5"), label="MultiHeadAttention(12, 5)"),
              must_raise("MultiHeadAttention", [12, 0], label="MultiHeadAttention(12, 0)")]
    case = _case(rng, 8, 2, "bad input", "bad")
    a = rng.standard_normal((2, 3, 8)).astype(np.float32)

    def bad(args, label, mention=()):
        return must_raise(ref("bad"), args, mention=mention, label=f"MultiHeadAttention with {label}", **ALONE)

    floats = lambda *shape: rng.standard_normal(shape).astype(np.float32)  # noqa: E731
    steps += [*case.steps, bad([floats(3, 8), a, a], "a 2-D query"),
              bad([a, floats(2, 3, 6), floats(2, 3, 6)], "keys of width 6 for d_model 8", ("6",)),
              bad([a, floats(2, 4, 8), floats(2, 5, 8)], "4 keys but 5 values", ("4", "5")),
              bad([a, floats(3, 4, 8), floats(3, 4, 8)], "batch 2 vs 3"),
              bad([a, a, a, np.ones((3, 3), dtype=np.float32)], "a float mask"),
              bad([a, a, a, np.ones(3, dtype=bool)], "a 1-D mask"),
              bad([a, floats(2, 4, 8), floats(2, 4, 8), np.ones((4, 3), dtype=bool)],
                  "a (T_k, T_q) mask for 3 queries and 4 keys")]
    return steps


ITEMS = {"test_split_heads": split_heads_steps, "test_merge_heads": merge_heads_steps,
         "test_MultiHeadAttention": multi_head_attention_steps}
