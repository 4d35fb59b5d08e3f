"""Hidden tests of 07_transformer as data: ``sinusoidal_positional_encoding``, ``PositionwiseFeedForward``,
``EncoderLayer``, ``DecoderLayer``, ``Transformer``, ``greedy_decode``."""

from __future__ import annotations

import numpy as np
import torch

from .cases import ModuleCase, as_reference_input, checked_call, must_raise
from .expect import all_of, compare, differs, returns, unchanged
from .probe import Opaque, Result, Step, method, ref, trusted
from .reference_layers import trusted as layers

PAD, BOS, EOS = 0, 1, 2
#: items are graded independently: each runs on trusted versions of the items it builds on
FFN_ALONE = {"PositionwiseFeedForward": "PositionwiseFeedForward"}
MODEL_ALONE = {**FFN_ALONE, "sinusoidal_positional_encoding": "sinusoidal_positional_encoding",
               "EncoderLayer": "EncoderLayer", "DecoderLayer": "DecoderLayer"}


def reference_encoding(max_len, d_model):
    position = np.arange(max_len, dtype=np.float64)[:, None]
    out = np.zeros((max_len, d_model))
    for i in range(0, d_model, 2):
        out[:, i] = np.sin(position[:, 0] / 10000.0 ** (i / d_model))
        out[:, i + 1] = np.cos(position[:, 0] / 10000.0 ** (i / d_model))
    return torch.from_numpy(out)


def encoding_steps(rng: np.random.Generator) -> list:
    steps = [checked_call("sinusoidal_positional_encoding", [n, d], reference_encoding, dtype="float32", atol=1e-5,
                          rtol=0, label=f"sinusoidal_positional_encoding({n}, {d})")
             for n, d in [(1, 2), (1, 64), (int(rng.integers(20, 40)), 64), (100, 6), (64, 128), (10_001, 8)]]
    steps += [must_raise("sinusoidal_positional_encoding", list(bad), mention=(str(bad[1] if bad[0] else bad[0]),),
                         label=f"sinusoidal_positional_encoding{bad}") for bad in [(5, 3), (5, 0), (5, -4), (0, 8)]]
    return steps


def ffn_steps(rng: np.random.Generator) -> list:
    steps = []
    for number, (shape, d, f) in enumerate([((2, 7, 16), 16, 64), ((5, 8), 8, 3), ((1, 1, 1, 6), 6, 24),
                                            ((3, 4, 32), 32, 32)]):
        label = f"PositionwiseFeedForward({d}, {f})"
        case = ModuleCase("PositionwiseFeedForward", [d, f], layers.PositionwiseFeedForward(d, f), rng, label=label,
                          keep=f"ffn{number}", dtype_name="float32")
        steps += [*case.steps, case.call([rng.standard_normal(shape).astype(np.float32)], label=f"{label} on {shape}",
                                         atol=1e-5, rtol=1e-5)]
    case = ModuleCase("PositionwiseFeedForward", [6, 12], layers.PositionwiseFeedForward(6, 12), rng, keep="grads",
                      label="PositionwiseFeedForward(6, 12)")
    steps += [*case.steps, case.call([rng.standard_normal((2, 5, 6))], rng=rng, grad_args=(0,),
                                     label="PositionwiseFeedForward(6, 12), gradients")]
    case = ModuleCase("PositionwiseFeedForward", [8, 16], layers.PositionwiseFeedForward(8, 16), rng, keep="dropout",
                      label="PositionwiseFeedForward(8, 16, dropout=0.5)", ctor_kwargs={"dropout": 0.5})
    x = rng.standard_normal((4, 3, 8))
    want = case.reference(as_reference_input(x)).detach().numpy()
    steps += [*case.steps, case.call([x], label="FFN with dropout=0.5 in eval mode (dropout must be off)"),
              case.mode(True), Step(ref("dropout"), [x], seed=0, expect=differs(
                  want, name="dropout(p=0.5) had no effect on the FFN in training mode"))]
    steps.append(must_raise(ref("grads"), [rng.standard_normal((2, 5, 12))], mention=("12",),
                            label="PositionwiseFeedForward(6, 12) on a (2, 5, 12) input"))
    return steps


def _norms_spread(name, shape, rng):
    """Random gains and biases for the layer norms, so that a swapped norm1 / norm2 shows."""
    if "norm" in name:
        return rng.standard_normal(shape) * 0.3 + (1.0 if name.endswith("weight") else 0.0)
    return None


def _encoder_mask(rng, kind, batch, length):
    if kind == "padding":
        return (np.arange(length)[None, :] < rng.integers(1, length + 1, batch)[:, None])[:, None, :]
    if kind == "square":
        mask = rng.random((batch, length, length)) < 0.6
        mask[..., 0] = True
        return mask
    if kind == "one key":
        mask = np.zeros((batch, 1, length), dtype=bool)
        mask[:, :, min(2, length - 1)] = True
        return mask
    if kind == "empty row":
        mask = rng.random((batch, length, length)) < 0.5
        mask[:, 0, :] = True
        mask[:, 1, :] = False  # query 1 may attend to nothing: a zero attention output, never NaN
        return mask
    if kind == "2-d":
        return np.tril(np.ones((length, length), dtype=bool))
    return None


def encoder_layer_steps(rng: np.random.Generator) -> list:
    steps = []
    exercise = dict(forbid=("transformer_encoder_layer_fwd",), exercise="EncoderLayer", stand_ins=FFN_ALONE)
    for norm_first in (False, True):
        kind_name = "pre" if norm_first else "post"
        for number, (b, s, d, h, f, kind) in enumerate([(3, 7, 16, 4, 32, "padding"), (1, 1, 8, 2, 16, None),
                                                       (2, 6, 24, 3, 48, "square"), (2, 5, 16, 1, 8, "one key"),
                                                       (2, 4, 16, 4, 16, "empty row"), (4, 9, 32, 8, 64, "2-d")]):
            label = f"{kind_name}-LN EncoderLayer({d}, {h}, {f})"
            case = ModuleCase("EncoderLayer", [d, h, f], layers.EncoderLayer(d, h, f, 0.0, norm_first), rng,
                              label=label, keep=f"{kind_name}{number}", init=_norms_spread,
                              ctor_kwargs=dict(dropout=0.0, norm_first=norm_first), stand_ins=FFN_ALONE)
            mask = _encoder_mask(rng, kind, b, s)
            steps += [*case.steps, case.call([rng.standard_normal((b, s, d))] + ([mask] if mask is not None else []),
                                             label=f"{label}, B={b}, S={s}, mask: {kind}", **exercise)]
        case = ModuleCase("EncoderLayer", [16, 4, 32], layers.EncoderLayer(16, 4, 32, 0.0, norm_first), rng,
                          label=f"{kind_name}-LN EncoderLayer(16, 4, 32)", keep=f"{kind_name}_grads",
                          init=_norms_spread, ctor_kwargs=dict(dropout=0.0, norm_first=norm_first),
                          stand_ins=FFN_ALONE)
        steps += [*case.steps, case.call([rng.standard_normal((2, 5, 16)), (np.arange(5) < 4)[None, None, :]],
                                         rng=rng, grad_args=(0,), label=f"{kind_name}-LN EncoderLayer, gradients",
                                         **exercise)]
    steps += [must_raise("EncoderLayer", [10, 4, 20], mention=("4", "10"), label="EncoderLayer(10, num_heads=4, ...)",
                         stand_ins=FFN_ALONE),
              must_raise(ref("post_grads"), [rng.standard_normal((5, 16))], mention=("5", "16"),
                         label="EncoderLayer on a 2-D input", stand_ins=FFN_ALONE)]
    return steps


def _decoder_masks(rng, kind, batch, t, s):
    causal = np.tril(np.ones((t, t), dtype=bool))
    if kind == "causal+padding":
        return causal, (np.arange(s)[None, :] < rng.integers(1, s + 1, batch)[:, None])[:, None, :]
    if kind == "none":
        return None, None
    if kind == "one source key":
        memory_mask = np.zeros((batch, 1, s), dtype=bool)
        memory_mask[:, :, s - 1] = True
        return causal, memory_mask
    if kind == "empty memory row":
        memory_mask = rng.random((batch, t, s)) < 0.5
        memory_mask[:, 0, :] = True
        memory_mask[:, 2, :] = False
        return causal, memory_mask
    return causal, None


def decoder_layer_steps(rng: np.random.Generator) -> list:
    steps = []
    for norm_first in (False, True):
        kind_name = "pre" if norm_first else "post"
        for number, (b, t, s, d, h, f, kind) in enumerate([
                (3, 5, 7, 16, 4, 32, "causal+padding"), (1, 1, 1, 8, 2, 16, "causal+padding"),
                (2, 6, 3, 24, 3, 48, "none"), (2, 4, 6, 16, 2, 8, "one source key"),
                (2, 5, 4, 16, 4, 16, "empty memory row"), (2, 7, 5, 32, 8, 64, "causal only")]):
            label = f"{kind_name}-LN DecoderLayer({d}, {h}, {f})"
            case = ModuleCase("DecoderLayer", [d, h, f], layers.DecoderLayer(d, h, f, 0.0, norm_first), rng,
                              label=label, keep=f"{kind_name}{number}", init=_norms_spread,
                              ctor_kwargs=dict(dropout=0.0, norm_first=norm_first), stand_ins=FFN_ALONE)
            tgt_mask, memory_mask = _decoder_masks(rng, kind, b, t, s)
            steps += [*case.steps, case.call([rng.standard_normal((b, t, d)), rng.standard_normal((b, s, d)),
                                              tgt_mask, memory_mask],
                                             label=f"{label}, B={b}, T={t}, S={s}, masks: {kind}",
                                             stand_ins=FFN_ALONE)]
        case = ModuleCase("DecoderLayer", [16, 4, 32], layers.DecoderLayer(16, 4, 32, 0.0, norm_first), rng,
                          label=f"{kind_name}-LN DecoderLayer(16, 4, 32)", keep=f"{kind_name}_grads",
                          init=_norms_spread, ctor_kwargs=dict(dropout=0.0, norm_first=norm_first),
                          stand_ins=FFN_ALONE)
        args = [rng.standard_normal((2, 5, 16)), rng.standard_normal((2, 3, 16)), np.tril(np.ones((5, 5), dtype=bool)),
                np.array([[True] * 3, [True, True, False]])[:, None, :]]
        steps += [*case.steps, case.call(args, rng=rng, grad_args=(0, 1), stand_ins=FFN_ALONE,
                                         label=f"{kind_name}-LN DecoderLayer, gradients (to x and the memory)")]
    steps += [must_raise("DecoderLayer", [12, 5, 24], mention=("5", "12"), label="DecoderLayer(12, num_heads=5, ...)",
                         stand_ins=FFN_ALONE),
              must_raise(ref("post_grads"), [rng.standard_normal((2, 5, 16)), rng.standard_normal((2, 3, 8))],
                         mention=("(2, 3, 8)",), label="DecoderLayer with memory of width 8", stand_ins=FFN_ALONE),
              must_raise(ref("post_grads"), [rng.standard_normal((5, 16)), rng.standard_normal((2, 3, 16))],
                         mention=("(5, 16)",), label="DecoderLayer with a 2-D x", stand_ins=FFN_ALONE)]
    return steps


def _as_built(d_model, max_len):
    """The model as built: pe holds the encoding, the embeddings start N(0, 1/d_model), post-LN has no final norm."""
    def built(result: Result) -> str | None:
        facts = result.facts
        problem = compare(facts.get("pe"), reference_encoding(max_len, d_model).numpy(), atol=1e-5, rtol=0,
                          name="Transformer(...).pe (the buffer should hold sinusoidal_positional_encoding(max_len, "
                               "d_model))")
        if problem:
            return problem
        for name in ("src_embed.weight", "tgt_embed.weight"):
            weight = facts.get(name)
            if not isinstance(weight, np.ndarray):
                return f"Transformer(...).{name} is missing"
            std = float(np.std(weight.astype(np.float64)))
            if abs(std - d_model ** -0.5) > 0.1 * d_model ** -0.5:
                return f"{name} should start with std d_model**-0.5 = {d_model ** -0.5:.3f}, got {std:.3f}"
        for name in ("encoder_norm", "decoder_norm"):
            if facts.get(name) != Opaque("Identity"):
                return (f"post-LN (norm_first=False) has no final norm: {name} should be nn.Identity(), got "
                        f"{facts.get(name)!r}")
        return None
    return built


def transformer_steps(rng: np.random.Generator) -> list:
    d_model, max_len = 64, 8
    steps = [Step("Transformer", [400, 300], dict(d_model=d_model, max_len=max_len), stand_ins=MODEL_ALONE,
                  facts=("pe", "src_embed.weight", "tgt_embed.weight", "encoder_norm", "decoder_norm"),
                  expect=_as_built(d_model, max_len))]
    for number, (norm_first, d, h, layers_, longest) in enumerate([(False, 32, 4, 2, 20), (True, 16, 2, 1, 12),
                                                                   (False, 24, 3, 3, 10)]):
        kind = "pre" if norm_first else "post"
        label = f"{kind}-LN Transformer(d_model={d}, layers={layers_})"
        options = dict(d_model=d, num_heads=h, num_layers=layers_, d_ff=2 * d, dropout=0.0, max_len=longest,
                       norm_first=norm_first)
        # every weight the grader's, pe included: encode / decode must read the encoding from self.pe
        case = ModuleCase("Transformer", [17, 13], layers.Transformer(17, 13, **options), rng, label=label,
                          keep=f"model{number}", ctor_kwargs=options, init=_norms_spread, stand_ins=MODEL_ALONE)
        b, s, t = 3, min(9, longest), min(7, longest)
        src = rng.integers(3, 17, (b, s))
        for row, length in enumerate([s, 1, s - 3]):
            src[row, length:] = PAD
        tgt = rng.integers(3, 13, (b, t))
        tgt[:, 0] = BOS
        tgt[2, t - 2:] = PAD
        steps += [*case.steps,
                  case.call([src, tgt], where=tgt != PAD, stand_ins=MODEL_ALONE,
                            label=f"{label} logits at non-PAD positions of tgt_in"),
                  case.call([src], call="encode", outputs=2, stand_ins=MODEL_ALONE,
                            label=f"{label}.encode(src) (memory, src_mask)")]
        if number == 0:
            full = rng.integers(3, 13, (b, t))
            full[:, 0] = BOS
            steps += [case.mode(True), case.call([src, full], rng=rng, stand_ins=MODEL_ALONE,
                                                 label=f"{label} in training mode (dropout 0), gradients")]
    steps += [must_raise(method("model0", "decode"), [np.zeros((2, 21), dtype=np.int64), np.zeros((2, 3, 32)),
                                                      np.ones((2, 1, 3), dtype=bool)], mention=("21",),
                         label="decode of a target longer than max_len = 20", stand_ins=MODEL_ALONE),
              must_raise(method("model0", "encode"), [np.zeros((2, 3, 4), dtype=np.int64)], mention=("(2, 3, 4)",),
                         label="encode of 3-D ids", stand_ins=MODEL_ALONE)]
    return steps


def _prefix_greedy(src, max_len, bos, eos, vocab):
    out = []
    for row in src.tolist():
        prefix, tokens = [bos], []
        for _ in range(max_len):
            total = sum(prefix) + row[0] * len(prefix)
            token = eos if total % 5 == 0 else 3 + total % (vocab - 3)
            tokens.append(token)
            if token == eos:
                break
            prefix.append(token)
        out.append(tokens + [PAD] * (max_len - len(tokens)))
    return np.array(out, dtype=np.int64)


def _growing_prefix(result: Result) -> str | None:
    if result.error or not isinstance(result.value, list) or len(result.value) != 2:
        return "greedy_decode: the scripted model's record could not be read"
    encode_calls, lengths = result.value
    if encode_calls != 1:
        return f"encode should run once per batch, it ran {encode_calls} times"
    if not lengths or lengths[0] != 1 or any(b != a + 1 for a, b in zip(lengths, lengths[1:])):
        return f"decode should see the growing prefix BOS, BOS y1, ... (lengths seen: {lengths})"
    return None


@torch.no_grad()
def reference_greedy(model, src, max_len, bos, eos):
    memory, src_mask = model.encode(src)
    prefix = torch.full((src.shape[0], 1), bos)
    for _ in range(max_len):
        prefix = torch.cat([prefix, model.decode(prefix, memory, src_mask)[:, -1].argmax(-1, keepdim=True)], 1)
    out = prefix[:, 1:].clone()
    for row in out:
        hits = (row == eos).nonzero()
        if len(hits):
            row[hits[0, 0] + 1:] = PAD
    return out.numpy()


def greedy_decode_steps(rng: np.random.Generator) -> list:
    steps = []
    for number, (b, s, longest, bos, eos, vocab) in enumerate([(6, 4, 9, 1, 2, 17), (1, 1, 1, 1, 2, 11),
                                                              (8, 3, 15, 1, 2, 23), (5, 2, 7, 4, 9, 13)]):
        src = rng.integers(3, 30, (b, s))
        label = f"greedy_decode (B={b}, max_len={longest}, BOS={bos}, EOS={eos}) with a prefix-dependent model"
        steps += [Step(trusted("PrefixModel"), [vocab, eos], keep=f"prefix{number}"),
                  Step("greedy_decode", [ref(f"prefix{number}"), src, longest, bos, eos], expect=all_of(
                      returns(_prefix_greedy(src, longest, bos, eos, vocab), name=label, dtype="int64", atol=0,
                              rtol=0), unchanged(None, src, name=label))),
                  Step(method(f"prefix{number}", "record"), [], expect=_growing_prefix)]
    options = dict(d_model=16, num_heads=2, num_layers=1, d_ff=32, dropout=0.0, max_len=16)
    case = ModuleCase(trusted("Transformer"), [20, 15], layers.Transformer(20, 15, **options), rng, keep="model",
                      label="an untrained Transformer", ctor_kwargs=options)
    src = rng.integers(3, 20, (4, 6))
    want = reference_greedy(case.reference, torch.from_numpy(src), 8, BOS, EOS)
    steps += [*case.steps, Step("greedy_decode", [ref("model"), src, 8, BOS, EOS], expect=returns(
        want, name="greedy_decode of an untrained Transformer vs step-by-step decoding", dtype="int64", atol=0,
        rtol=0)), case.mode(True), Step("greedy_decode", [ref("model"), src, 3, BOS, EOS]),
        Step(trusted("training_flag"), [ref("model")], expect=lambda r: None if r.value is True else
             "greedy_decode must not switch the model to eval mode")]
    steps += [must_raise("greedy_decode", [ref("prefix0"), np.array([[3, 4]]), 0, BOS, EOS],
                         label="greedy_decode with max_len = 0"),
              must_raise("greedy_decode", [ref("prefix0"), np.array([1, 2]), 3, BOS, EOS],
                         label="greedy_decode of a 1-D src")]
    return steps


ITEMS = {"test_sinusoidal_positional_encoding": encoding_steps, "test_PositionwiseFeedForward": ffn_steps,
         "test_EncoderLayer": encoder_layer_steps, "test_DecoderLayer": decoder_layer_steps,
         "test_Transformer": transformer_steps, "test_greedy_decode": greedy_decode_steps}
