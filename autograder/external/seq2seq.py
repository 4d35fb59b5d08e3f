"""Hidden tests of 02_seq2seq as data: ``Seq2SeqEncoder``, ``Seq2SeqDecoder``, ``PeekyDecoder``, ``greedy_decode``."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .cases import ModuleCase, must_raise
from .expect import all_of, compare, returns, unchanged
from .probe import Result, Step, method, ref, trusted

PAD = 0


class ReferenceEncoder(nn.Module):
    """Each row's real tokens through the GRU on their own (no packing): outputs zero at padding, the last state."""

    def __init__(self, vocab_size, embed_dim, hidden_dim):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD)
        self.rnn = nn.GRU(embed_dim, hidden_dim, batch_first=True)

    def forward(self, src, lengths=None):
        lengths = (src != PAD).sum(1) if lengths is None else lengths
        rows, contexts = [], []
        for row, length in zip(src, lengths.tolist()):
            states, last = self.rnn(self.embedding(row[None, :length]))
            rows.append(torch.cat([states[0], states.new_zeros(src.shape[1] - length, states.shape[-1])]))
            contexts.append(last[0, 0])
        return torch.stack(rows), torch.stack(contexts)


class ReferenceDecoder(nn.Module):
    def __init__(self, vocab_size, embed_dim, hidden_dim):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD)
        self.rnn = nn.GRU(embed_dim, hidden_dim, batch_first=True)
        self.out = nn.Linear(hidden_dim, vocab_size)

    def forward(self, tokens, context, state=None):
        states, last = self.rnn(self.embedding(tokens), (context if state is None else state)[None])
        return self.out(states), last[0]


class ReferencePeeky(nn.Module):
    def __init__(self, vocab_size, embed_dim, hidden_dim):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD)
        self.rnn = nn.GRU(embed_dim + hidden_dim, hidden_dim, batch_first=True)
        self.out = nn.Linear(2 * hidden_dim, vocab_size)

    def forward(self, tokens, context, state=None):
        peek = context[:, None, :].expand(-1, tokens.shape[1], -1)
        states, last = self.rnn(torch.cat([self.embedding(tokens), peek], -1),
                                (context if state is None else state)[None])
        return self.out(torch.cat([states, peek], -1)), last[0]


def _padding_index_zero(label):
    def built(result: Result) -> str | None:
        got = result.facts.get("embedding.padding_idx")
        return None if got == 0 else f"{label}: the embedding needs padding_idx=0 (PAD), got {got!r}"
    return built


def _tolerance(dtype):
    return dict(atol=1e-5, rtol=1e-4) if dtype == "float32" else dict(atol=1e-10, rtol=1e-8)


def encoder_steps(rng: np.random.Generator) -> list:
    steps = []
    for number, (v, e, h, b, s, dtype) in enumerate([(15, 6, 9, 5, 8, "float64"), (9, 3, 4, 1, 1, "float64"),
                                                     (20, 8, 5, 4, 6, "float32")]):
        label = f"Seq2SeqEncoder({v}, {e}, {h})"
        case = ModuleCase("Seq2SeqEncoder", [v, e, h], ReferenceEncoder(v, e, h), rng, label=label, keep=f"enc{number}",
                          dtype_name=dtype, facts=("embedding.padding_idx",), built=_padding_index_zero(label))
        lengths = rng.integers(1, s + 1, b)
        lengths[0] = s
        src = rng.integers(3, v, (b, s))
        src[np.arange(s)[None, :] >= lengths[:, None]] = PAD
        what = f"{label} on B={b}, S={s}"
        steps += [*case.steps,
                  case.call([src], outputs=2, label=f"{what}, lengths None", **_tolerance(dtype)),
                  case.call([src, lengths], outputs=2, label=f"{what}, lengths given", **_tolerance(dtype))]
    case = ModuleCase("Seq2SeqEncoder", [10, 4, 6], ReferenceEncoder(10, 4, 6), rng, label="Seq2SeqEncoder(10, 4, 6)",
                      keep="grads")
    steps += [*case.steps,
              case.call([np.array([[3, 4, 5], [6, 7, 0]])], outputs=2, output=1, rng=rng,
                        label="Seq2SeqEncoder, gradients of the context (none for the PAD embedding row)"),
              must_raise(ref("grads"), [np.zeros((2, 3, 1), dtype=np.int64)], label="Seq2SeqEncoder with a 3-D src")]
    return steps


def _decoder_steps(rng, name, reference_class, label_name) -> list:
    steps = []
    for number, (v, e, h, b, t, dtype) in enumerate([(13, 5, 8, 4, 6, "float64"), (7, 2, 3, 1, 1, "float64"),
                                                     (16, 6, 10, 3, 4, "float32")]):
        label = f"{label_name}({v}, {e}, {h})"
        case = ModuleCase(name, [v, e, h], reference_class(v, e, h), rng, label=label, keep=f"dec{number}",
                          dtype_name=dtype, facts=("embedding.padding_idx",), built=_padding_index_zero(label))
        tokens = rng.integers(0, v, (b, t))
        context = rng.standard_normal((b, h)).astype(dtype)
        state = rng.standard_normal((b, h)).astype(dtype)
        what = f"{label} on B={b}, T={t}"
        steps += [*case.steps,
                  case.call([tokens, context], outputs=2, label=f"{what}, state None", **_tolerance(dtype)),
                  case.call([tokens, context, state], outputs=2, label=f"{what}, state given", **_tolerance(dtype))]
    case = ModuleCase(name, [9, 3, 5], reference_class(9, 3, 5), rng, label=f"{label_name}(9, 3, 5)", keep="grads")
    tokens = np.array([[1, 4, 5], [1, 6, 7]])
    steps += [*case.steps,
              case.call([tokens, rng.standard_normal((2, 5))], outputs=2, output=0, rng=rng, grad_args=(1,),
                        label=f"{label_name}, gradients of the logits"),
              case.call([tokens, rng.standard_normal((2, 5)), rng.standard_normal((2, 5))], outputs=2, output=0,
                        rng=rng, grad_args=(1, 2), label=f"{label_name} with a state, gradients of the logits")]
    for args, label in [([np.array([[1, 4]]), rng.standard_normal((1, 4))], "a context of width 4 (H = 5)"),
                        ([np.array([[1, 4]]), rng.standard_normal((2, 5))], "a context batch 2 vs tokens batch 1"),
                        ([np.array([1, 4]), rng.standard_normal((1, 5))], "1-D tokens")]:
        steps.append(must_raise(ref("grads"), args, label=f"{label_name} with {label}"))
    return steps


def decoder_steps(rng: np.random.Generator) -> list:
    return _decoder_steps(rng, "Seq2SeqDecoder", ReferenceDecoder, "Seq2SeqDecoder")


def peeky_steps(rng: np.random.Generator) -> list:
    return _decoder_steps(rng, "PeekyDecoder", ReferencePeeky, "PeekyDecoder")


def _planned_output(plan, max_len, eos):
    """What greedy decoding of a scripted plan gives, and how many decoder calls it takes."""
    out = np.zeros((plan.shape[0], max_len), dtype=np.int64)
    ends = []
    for b in range(plan.shape[0]):
        end = next((i for i in range(max_len) if plan[b, i] == eos), max_len - 1)
        out[b, :end + 1] = plan[b, :end + 1]
        ends.append(end)
    return out, max(ends) + 1


def _check_record(plan, src, max_len, bos, eos):
    _, calls = _planned_output(plan, max_len, eos)
    context = np.repeat(src.astype(np.float32).sum(1, keepdims=True), 4, axis=1)

    def expect(result: Result) -> str | None:
        if result.error or not isinstance(result.value, list) or len(result.value) != 4:
            return "greedy_decode: the scripted model's record could not be read"
        fed, states, contexts, encoder_calls = result.value
        if encoder_calls != 1:
            return f"greedy_decode ran the encoder {encoder_calls} times; it should run once per call"
        if len(fed) != calls:
            return (f"greedy_decode called the decoder {len(fed)} times, expected {calls} (stop once every row has "
                    "ended)")
        first = compare(fed[0], np.full((plan.shape[0], 1), bos), name=f"first decoder input (bos_id = {bos})", atol=0)
        if first:
            return first
        ended = np.zeros(plan.shape[0], dtype=bool)
        for k in range(1, calls):
            ended |= plan[:, k - 1] == eos
            got = fed[k] if isinstance(fed[k], np.ndarray) else None
            problem = compare(got[~ended] if got is not None else got, plan[~ended, k - 1:k], atol=0,
                              name=f"decoder input at step {k} for rows still running (the previous arg-max)")
            if problem:
                return problem
        for k in range(calls):
            problem = compare(contexts[k], context, atol=0, name=f"context passed at step {k} (the encoder's context)")
            if problem:
                return problem
            if k == 0 and states[0] is not None:
                return "the first decoder call should get state=None"
            if k and (problem := compare(states[k], context + k, atol=0, name=f"state passed at step {k} (the state "
                                                                              "the previous call returned)")):
                return problem
        return None

    return expect


class ReferenceSeq2Seq(nn.Module):
    """The grader's copy of the kernel's GRUSeq2Seq (same parameter names), and greedy decoding written out."""

    def __init__(self, src_vocab, tgt_vocab, embed, hidden):
        super().__init__()
        self.encoder = nn.Module()
        self.encoder.embedding = nn.Embedding(src_vocab, embed, padding_idx=PAD)
        self.encoder.rnn = nn.GRU(embed, hidden, batch_first=True)
        self.decoder = ReferenceDecoder(tgt_vocab, embed, hidden)

    @torch.no_grad()
    def greedy(self, src, max_len, bos, eos):
        lengths = (src != PAD).sum(1)
        states, _ = self.encoder.rnn(self.encoder.embedding(src))
        context = states[torch.arange(src.shape[0]), lengths - 1]
        token, state = torch.full((src.shape[0], 1), bos), None
        done, rows = torch.zeros(src.shape[0], dtype=torch.bool), []
        for _ in range(max_len):
            logits, state = self.decoder(token, context, state)
            token = logits[:, -1].argmax(-1, keepdim=True)
            rows.append(token[:, 0].masked_fill(done, PAD))
            done |= token[:, 0] == eos
            if bool(done.all()):
                break
        out = torch.stack(rows, 1)
        return torch.cat([out, out.new_zeros(src.shape[0], max_len - out.shape[1])], 1)


def greedy_decode_steps(rng: np.random.Generator) -> list:
    steps = []
    # scripted plans: other BOS / EOS ids, a row that never ends, one that ends at once, a batch of one, max_len 1
    for number, (plan, max_len, bos, eos) in enumerate([
            (np.array([[3, 7, 5, 5, 5, 5, 5, 5], [7, 3, 3, 3, 3, 3, 3, 3], [4, 4, 4, 4, 4, 4, 4, 4]]), 7, 9, 7),
            (np.array([[6, 6, 11, 4, 4, 4]]), 5, 5, 11),
            (np.array([[2, 8, 8], [8, 2, 8]]), 1, 1, 2),
            (np.array([[2, 5, 5, 5], [5, 5, 2, 5], [2, 2, 2, 2]]), 4, 1, 2)]):
        src = rng.integers(3, 9, (plan.shape[0], 5))
        want, _ = _planned_output(plan, max_len, eos)
        label = f"greedy_decode with bos={bos}, eos={eos}, max_len={max_len}"
        steps += [Step(trusted("PlanModel"), [plan], keep=f"plan{number}"),
                  Step("greedy_decode", [ref(f"plan{number}"), src, max_len, bos, eos], expect=all_of(
                      returns(want, name=label, dtype="int64", atol=0, rtol=0), unchanged(None, src, name=label))),
                  Step(method(f"plan{number}", "record"), [], expect=_check_record(plan, src, max_len, bos, eos))]
    # a real model: a small GRU seq2seq with the grader's weights, EOS made likely so rows stop at different steps
    raise_eos = lambda name, shape, rng: (rng.standard_normal(shape) * 0.5 + 1.5 * (np.arange(shape[0]) == 2)  # noqa: E731
                                          if name == "decoder.out.bias" else None)
    reference = ReferenceSeq2Seq(9, 6, 4, 8)
    case = ModuleCase(trusted("GRUSeq2Seq"), [9, 6, 4, 8], reference, rng, label="a small GRU seq2seq", keep="gru",
                      init=raise_eos)
    src = rng.integers(3, 9, (16, 7))
    src[::3, 4:] = PAD
    want = case.reference.greedy(torch.from_numpy(src), 9, 1, 2).numpy()
    steps += [*case.steps, Step("greedy_decode", [ref("gru"), src, 9, 1, 2], expect=returns(
        want, name="greedy_decode on a small GRU seq2seq", dtype="int64", atol=0, rtol=0))]
    steps += [must_raise("greedy_decode", [ref("gru"), src, 0, 1, 2], label="greedy_decode with max_len = 0"),
              must_raise("greedy_decode", [ref("gru"), src[0], 5, 1, 2], label="greedy_decode with a 1-D src")]
    return steps


ITEMS = {"test_Seq2SeqEncoder": encoder_steps, "test_Seq2SeqDecoder": decoder_steps, "test_PeekyDecoder": peeky_steps,
         "test_greedy_decode": greedy_decode_steps}
