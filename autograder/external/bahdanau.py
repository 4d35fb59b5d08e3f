"""Hidden tests of 03_bahdanau_attention as data: ``masked_softmax``, ``AdditiveAttention``, ``AttentionDecoder``."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .cases import ModuleCase, checked_call, checked_gradients, must_raise
from .probe import method, ref
from .reference_layers import trusted

masked_softmax = trusted.masked_softmax  # the grader's reference: the kernel-side stand-in, run here

NO_ATTENTION_BUILT_INS = dict(forbid=("scaled_dot_product_attention", "multi_head_attention"))
#: items are graded independently: the layers run with trusted versions of the earlier items
ATTENTION_ALONE = dict(stand_ins={"masked_softmax": "masked_softmax"})
DECODER_ALONE = dict(stand_ins={"masked_softmax": "masked_softmax", "AdditiveAttention": "AdditiveAttention"})


def masked_softmax_steps(rng: np.random.Generator) -> list:
    steps = []
    for scores_shape, mask_shape in [((4, 7), (4, 7)), ((3, 5, 6), (3, 1, 6)), ((3, 5, 6), (3, 5, 6)),
                                     ((2, 2, 3, 5), (2, 1, 1, 5)), ((1, 1), (1, 1)), ((6,), (6,)), ((5, 4), (4,))]:
        mask = rng.random(mask_shape) < 0.6
        mask[..., 0] |= rng.random(mask[..., 0].shape) < 0.5  # some rows keep the first key
        steps.append(checked_call("masked_softmax", [rng.standard_normal(scores_shape) * 3, mask], masked_softmax,
                                  atol=1e-12, rtol=1e-9,
                                  label=f"masked_softmax on scores {scores_shape} with mask {mask_shape}"))
    lengths = np.array([1, 3, 8, 5, 2])
    steps.append(checked_call("masked_softmax", [rng.standard_normal((5, 8)).astype(np.float32),
                                                 np.arange(8)[None] < lengths[:, None]], masked_softmax,
                              atol=1e-6, rtol=1e-5, label="masked_softmax with a padded tail (one row: one key)"))
    one_hot = np.zeros((3, 6), dtype=bool)
    one_hot[np.arange(3), [4, 0, 2]] = True
    steps.append(checked_call("masked_softmax", [rng.standard_normal((3, 6)).astype(np.float32), one_hot],
                              masked_softmax, atol=1e-6, label="masked_softmax with one allowed key per row"))
    large = np.array([[0.0, 1e4, -1e4, 3.0], [5e3, 5e3, 1e4, -2.0], [-1e4, -1e4 + 1.0, 1e4, 1e4]], dtype=np.float32)
    steps.append(checked_call("masked_softmax", [large, np.array([[True, False, True, True], [True, True, False, False],
                                                                  [True, True, False, False]])], masked_softmax,
                              atol=1e-6, label="masked_softmax with large scores (masked positions hold the largest)"))
    empty_rows = np.array([[True, True, False, True, False], [False] * 5, [False] * 4 + [True], [False] * 5])
    for dtype, tol in ((np.float32, 1e-6), (np.float64, 1e-12), (np.float16, 2e-3)):
        scores = (rng.standard_normal((4, 5)) * 3).astype(dtype)
        name = np.dtype(dtype).name
        steps.append(checked_call("masked_softmax", [scores, empty_rows], masked_softmax, atol=tol, rtol=1e-2,
                                  label=f"masked_softmax in {name} with fully masked rows (all zeros, never NaN)"))
        steps.append(checked_gradients("masked_softmax", [scores, empty_rows], masked_softmax, wrt=(0,), rng=rng,
                                       atol=max(tol, 1e-9) * 10, rtol=1e-2,
                                       label=f"masked_softmax in {name} (a fully masked row: zero, finite gradients)"))
    steps.append(checked_gradients("masked_softmax", [rng.standard_normal((3, 6)), np.array(
        [[True, False, True, True, False, True], [True] * 6, [False, False, True, False, False, False]])],
        masked_softmax, wrt=(0,), rng=rng, label="masked_softmax"))
    for args, mention, label in [
            ([rng.standard_normal((2, 5)), np.ones((2, 5), dtype=np.int64)], (), "an int mask"),
            ([rng.standard_normal((3, 5)), np.ones((2, 3, 5), dtype=bool)], ("(2, 3, 5)", "(3, 5)"),
             "a mask that would enlarge the scores"),
            ([rng.standard_normal((3, 5)), np.ones((2, 1), dtype=bool)], (), "a (2, 1) mask for (3, 5) scores"),
            ([np.array(1.0), None], (), "0-d scores")]:
        steps.append(must_raise("masked_softmax", args, mention=mention, label=f"masked_softmax with {label}"))
    return steps


def _padding(rng, batch, length, kind, queries=None):
    """A (B, S) padded-tail mask ("one": the first sequence has one real key), (B, 1, S) / (B, T, S) for T queries."""
    if kind is None:
        return None
    lengths = rng.integers(1, length + 1, batch)
    if kind == "one":
        lengths[0] = 1
    mask = np.arange(length)[None] < lengths[:, None]
    if queries is not None:
        mask = mask[:, None] if kind != "per-query" else mask[:, None] & (rng.random((batch, queries, length)) < 0.7)
    return mask


def additive_attention_steps(rng: np.random.Generator) -> list:
    steps = []
    exercise = dict(NO_ATTENTION_BUILT_INS, exercise="AdditiveAttention", **ATTENTION_ALONE)
    for number, (dq, dk, a, dv, b, s, t, kind, dtype) in enumerate([
            (6, 8, 5, 3, 4, 7, None, "tail", "float32"), (6, 8, 5, 3, 4, 7, None, None, "float32"),
            (4, 4, 6, 4, 1, 5, None, "one", "float32"), (5, 3, 4, 2, 3, 1, None, "tail", "float32"),
            (6, 8, 5, 3, 2, 7, 4, "tail", "float32"), (6, 8, 5, 9, 3, 6, 5, "per-query", "float32"),
            (3, 5, 2, 4, 1, 4, 1, "one", "float32"), (7, 2, 3, 5, 3, 9, 3, None, "float32"),
            (6, 8, 5, 3, 4, 7, 2, "tail", "float64")]):
        label = f"AdditiveAttention(Dq={dq}, Dk={dk}, A={a}), Dv={dv}, B={b}, S={s}, T={t}, mask={kind}, {dtype}"
        case = ModuleCase("AdditiveAttention", [dq, dk, a], trusted.AdditiveAttention(dq, dk, a), rng, label=label,
                          keep=f"layer{number}", dtype_name=dtype, **ATTENTION_ALONE)
        query = rng.standard_normal((b, dq) if t is None else (b, t, dq)).astype(dtype)
        args = [query, rng.standard_normal((b, s, dk)).astype(dtype), rng.standard_normal((b, s, dv)).astype(dtype)]
        mask = _padding(rng, b, s, kind, t)
        tol = dict(atol=1e-5, rtol=1e-4) if dtype == "float32" else dict(atol=1e-10, rtol=1e-8)
        steps += [*case.steps, case.call(args + ([mask] if mask is not None else []), outputs=2, label=label, **tol,
                                         **exercise)]
    # a query with no allowed key; the mask convention (True = attend) with exactly one allowed key
    case = ModuleCase("AdditiveAttention", [3, 4, 5], trusted.AdditiveAttention(3, 4, 5), rng, keep="edge",
                      label="AdditiveAttention(3, 4, 5)", **ATTENTION_ALONE)
    one = np.zeros((2, 5), dtype=bool)
    one[0, 3] = one[1, 0] = True
    steps += [*case.steps,
              case.call([rng.standard_normal((2, 3)), rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 3, 2)),
                         np.array([[True, True, False], [False, False, False]])], outputs=2, **exercise,
                        label="AdditiveAttention with a query that has no allowed key (zero weights, zero context)"),
              case.call([rng.standard_normal((2, 3)), rng.standard_normal((2, 5, 4)), rng.standard_normal((2, 5, 2)),
                         one], outputs=2, label="AdditiveAttention when the mask allows exactly one key", **exercise)]
    # gradients reach every layer and every input
    case = ModuleCase("AdditiveAttention", [6, 8, 5], trusted.AdditiveAttention(6, 8, 5), rng, keep="grads",
                      label="AdditiveAttention(6, 8, 5)", **ATTENTION_ALONE)
    args = [rng.standard_normal((3, 6)), rng.standard_normal((3, 7, 8)), rng.standard_normal((3, 7, 4)),
            np.arange(7)[None] < np.array([[7], [3], [1]])]
    steps += [*case.steps, case.call(args, outputs=2, output=0, rng=rng, grad_args=(0, 1, 2), **exercise,
                                     label="AdditiveAttention, gradients of the context"),
              case.call(args, outputs=2, output=1, rng=rng, grad_args=(0, 1, 2), **exercise,
                        label="AdditiveAttention, gradients of the weights")]
    case = ModuleCase("AdditiveAttention", [6, 8, 5], trusted.AdditiveAttention(6, 8, 5), rng, keep="bad",
                      label="AdditiveAttention(6, 8, 5)", **ATTENTION_ALONE)
    q, k, v = rng.standard_normal((2, 6)), rng.standard_normal((2, 4, 8)), rng.standard_normal((2, 4, 3))
    steps += case.steps
    for args, label in [([q, rng.standard_normal((2, 4, 7)), v], "keys of width 7 (key_dim is 8)"),
                        ([q, k, rng.standard_normal((2, 5, 3))], "4 keys but 5 values"),
                        ([q, k, rng.standard_normal((3, 4, 3))], "values for a batch of 3"),
                        ([rng.standard_normal((3, 6)), k, v], "a query batch of 3, keys batch of 2"),
                        ([rng.standard_normal(6), k, v], "a 1-D query"),
                        ([q, rng.standard_normal((4, 8)), v], "2-D keys"),
                        ([q, k, v, np.ones((2, 5), dtype=bool)], "a (2, 5) mask for 4 keys"),
                        ([rng.standard_normal((2, 3, 6)), k, v, np.ones((2, 4), dtype=bool)],
                         "a (B, S) mask for a 3-D query (use (B, 1, S))")]:
        steps.append(must_raise(ref("bad"), args, label=f"AdditiveAttention with {label}", **ATTENTION_ALONE))
    return steps


class ReferenceAttentionDecoder(nn.Module):
    def __init__(self, vocab_size, embed_dim, hidden_dim, enc_dim, attn_dim):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.attention = trusted.AdditiveAttention(hidden_dim, enc_dim, attn_dim)
        self.gru = nn.GRUCell(embed_dim + enc_dim, hidden_dim)
        self.out = nn.Linear(hidden_dim + enc_dim, vocab_size)

    def step(self, token, hidden, enc_outputs, src_mask=None):
        context, weights = self.attention(hidden, enc_outputs, enc_outputs, src_mask)
        hidden = self.gru(torch.cat([self.embedding(token), context], dim=-1), hidden)
        return self.out(torch.cat([hidden, context], dim=-1)), hidden, weights

    def forward(self, tgt_in, hidden, enc_outputs, src_mask=None):
        logits, weights = [], []
        for t in range(tgt_in.shape[1]):
            step_logits, hidden, step_weights = self.step(tgt_in[:, t], hidden, enc_outputs, src_mask)
            logits.append(step_logits)
            weights.append(step_weights)
        return torch.stack(logits, dim=1), torch.stack(weights, dim=1)


def attention_decoder_steps(rng: np.random.Generator) -> list:
    steps = []
    exercise = dict(NO_ATTENTION_BUILT_INS, exercise="AttentionDecoder", **DECODER_ALONE)
    for number, (v, e, h, c, a, b, s, t, kind) in enumerate([
            (9, 4, 6, 8, 5, 3, 7, 5, "tail"), (5, 3, 4, 2, 3, 1, 1, 1, None), (11, 6, 3, 5, 4, 4, 6, 3, "one"),
            (6, 2, 5, 4, 2, 2, 9, 6, None)]):
        label = f"AttentionDecoder(V={v}, E={e}, H={h}, enc={c}, A={a}) on B={b}, S={s}, T={t}, mask={kind}"
        case = ModuleCase("AttentionDecoder", [v, e, h, c, a], ReferenceAttentionDecoder(v, e, h, c, a), rng,
                          label=label, keep=f"dec{number}", dtype_name="float32", **DECODER_ALONE)
        tgt = rng.integers(0, v, (b, t))
        enc = rng.standard_normal((b, s, c)).astype(np.float32)
        h0 = rng.standard_normal((b, h)).astype(np.float32)
        mask = _padding(rng, b, s, kind)
        extra = [mask] if mask is not None else []
        tol = dict(atol=1e-4, rtol=1e-4)
        steps += [*case.steps, case.call([tgt, h0, enc, *extra], outputs=2, label=f"forward of {label}", **tol,
                                         **exercise),
                  case.call([tgt[:, 0], h0, enc, *extra], call="step", outputs=3, label=f"one step of {label}", **tol,
                            **exercise)]
    case = ModuleCase("AttentionDecoder", [8, 3, 4, 5, 2], ReferenceAttentionDecoder(8, 3, 4, 5, 2), rng, keep="dec64",
                      label="AttentionDecoder(8, 3, 4, 5, 2) in float64", **DECODER_ALONE)
    args = [rng.integers(0, 8, (2, 3)), rng.standard_normal((2, 4)), rng.standard_normal((2, 4, 5)),
            np.array([[True, True, True, False], [True, False, False, False]])]
    steps += [*case.steps, case.call(args, outputs=2, label="AttentionDecoder forward in float64", **exercise),
              case.call(args, outputs=2, output=0, rng=rng, grad_args=(1, 2), **exercise,
                        label="AttentionDecoder in float64: gradients of the logits (the state must carry gradients "
                              "through every step: no detach; padded encoder outputs get none)")]
    case = ModuleCase("AttentionDecoder", [6, 3, 4, 5, 2], ReferenceAttentionDecoder(6, 3, 4, 5, 2), rng, keep="bad",
                      label="AttentionDecoder(6, 3, 4, 5, 2)", **DECODER_ALONE)
    enc, h0 = rng.standard_normal((2, 6, 5)), rng.standard_normal((2, 4))
    token = np.array([1, 1])
    steps += case.steps
    for call, args, label in [("step", [token[:, None], h0, enc], "step with a (B, 1) token"),
                              ("step", [token, rng.standard_normal((2, 5)), enc], "step with hidden of width 5"),
                              ("step", [token, rng.standard_normal((3, 4)), enc], "step with hidden for a batch of 3"),
                              ("step", [token, h0, rng.standard_normal((3, 6, 5))],
                               "step with enc_outputs for a batch of 3"),
                              ("forward", [token, h0, enc], "forward with a 1-D tgt_in")]:
        steps.append(must_raise(method("bad", call), args, label=f"AttentionDecoder {label}", **DECODER_ALONE))
    return steps


ITEMS = {"test_masked_softmax": masked_softmax_steps, "test_AdditiveAttention": additive_attention_steps,
         "test_AttentionDecoder": attention_decoder_steps}
