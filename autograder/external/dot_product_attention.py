"""Hidden tests of 05_dot_product_attention as data: ``scaled_dot_product_attention``, ``padding_mask``,
``causal_mask``. References are computed here, in float64 (torch in the grader's own process, never the kernel's)."""

from __future__ import annotations

import numpy as np
import torch

from .expect import all_of, gradient, raises, returns, unchanged
from .probe import MetaTensor, Result, Step, device, tensor
from .reference_layers import masked_attention

EXERCISE = dict(forbid=("scaled_dot_product_attention",), exercise="scaled_dot_product_attention")


def reference_attention(q, k, v, mask=None, upstream=None):
    """(output, weights) in float64; with ``upstream`` (for the output) also the gradients of q, k and v."""
    q, k, v = (torch.from_numpy(np.asarray(a, dtype=np.float64)).requires_grad_() for a in (q, k, v))
    out, weights = masked_attention(q, k, v, None if mask is None else torch.from_numpy(np.asarray(mask, dtype=bool)))
    grads = None
    if upstream is not None:
        out.backward(torch.from_numpy(upstream))
        grads = [t.grad.numpy() for t in (q, k, v)]
    return out.detach().numpy(), weights.detach().numpy(), grads


def _attention_case(rng, qs, ks, vs, mask=None, *, label, dtype=np.float64, scale=1.0, atol=1e-10, rtol=1e-8,
                    torch_dtype=None):
    q, k, v = ((rng.standard_normal(s) * scale).astype(dtype) for s in (qs, ks, vs))
    want_out, want_w, _ = reference_attention(q, k, v, mask)
    name_dtype = torch_dtype or np.dtype(dtype).name
    args = [q, k, v] + ([mask] if mask is not None else [])
    return Step("scaled_dot_product_attention", args, **EXERCISE, expect=all_of(
        returns(want_out, index=0, name=f"output ({label})", dtype=name_dtype, atol=atol, rtol=rtol),
        returns(want_w, index=1, name=f"weights ({label})", dtype=name_dtype, atol=atol, rtol=rtol),
        unchanged(*args, name=label)))


def attention_steps(rng: np.random.Generator) -> list[Step]:
    steps = [_attention_case(rng, qs, ks, vs, label=f"q {qs}, k {ks}, v {vs}") for qs, ks, vs in [
        ((5, 4), (6, 4), (6, 3)), ((2, 3, 5, 16), (2, 3, 7, 16), (2, 3, 7, 5)), ((1, 1, 4), (1, 1, 4), (1, 1, 2)),
        ((1, 9, 64), (1, 3, 64), (1, 3, 64)), ((4, 2, 1, 8), (4, 2, 6, 8), (4, 2, 6, 1))]]
    steps.append(_attention_case(rng, (3, 6, 32), (3, 6, 32), (3, 6, 7), label="float32", dtype=np.float32,
                                 atol=1e-5, rtol=1e-4))
    steps.append(_attention_case(rng, (2, 4, 8), (2, 5, 8), (2, 5, 3), label="large scores", scale=30.0))
    # masks that broadcast, a row with one allowed key, a fully masked row
    mask = rng.random((3, 6, 9)) > 0.5
    mask[0, 0] = False
    mask[1, 2] = False
    mask[1, 2, 4] = True
    shapes = ((3, 6, 16), (3, 9, 16), (3, 9, 4))
    steps.append(_attention_case(rng, *shapes, mask, label="(B, T_q, T_k) mask with a fully masked row and a row "
                                                          "with one allowed key"))
    steps.append(_attention_case(rng, *shapes, rng.random((1, 9)) > 0.3, label="(1, T_k) key mask"))
    steps.append(_attention_case(rng, *shapes, rng.random((6, 9)) > 0.3, label="(T_q, T_k) mask shared by the batch"))
    steps.append(_attention_case(rng, *shapes, np.arange(9)[None, None, :] < np.array([9, 4, 1])[:, None, None],
                                 label="(B, 1, T_k) key-padding mask"))
    four = ((2, 3, 5, 8),) * 3
    steps.append(_attention_case(rng, *four, np.tril(np.ones((5, 5), dtype=bool)), label="4-D inputs, causal mask"))
    steps.append(_attention_case(rng, *four, (np.arange(5) < np.array([5, 2])[:, None])[:, None, None, :],
                                 label="4-D inputs, (B, 1, 1, T_k) padding mask"))
    steps.append(_attention_case(rng, *four, np.zeros((2, 3, 5, 5), dtype=bool), label="a mask that hides everything"))
    # every allowed score far below any fixed "large negative" fill: only the allowed keys may get weight
    q, k = np.full((1, 2, 4), 300.0), np.full((1, 3, 4), -300.0)
    k[0, 1] = -290.0
    v = rng.standard_normal((1, 3, 2))
    keys = np.array([[True, False, True]])
    out, weights, _ = reference_attention(q, k, v, keys)
    steps.append(Step("scaled_dot_product_attention", [q, k, v, keys], **EXERCISE, expect=all_of(
        returns(weights, index=1, name="weights with scores near -1.8e5 and key 1 masked (the fill value must be "
                                       "below every real score: torch.finfo(dtype).min)", atol=1e-10),
        returns(out, index=0, name="output with scores near -1.8e5 and key 1 masked", atol=1e-10))))
    # float16 with a fully masked row
    mask16 = rng.random((2, 5, 6)) > 0.5
    mask16[0, 3] = False
    mask16[1, :, 0] = True
    steps.append(_attention_case(rng, (2, 5, 8), (2, 6, 8), (2, 6, 4), mask16, label="float16", dtype=np.float16,
                                 scale=1.5, atol=3e-3, rtol=1e-2))
    # gradients, with a fully masked row
    q, k, v = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 5, 4)), rng.standard_normal((2, 5, 3))
    mask = rng.random((2, 3, 5)) > 0.4
    mask[0, 1] = False
    mask[1, :, 2] = True
    upstream = rng.standard_normal((2, 3, 3))
    _, _, (gq, gk, gv) = reference_attention(q, k, v, mask, upstream)
    grads = all_of(gradient(gq, arg=0, name="the gradient of q (a fully masked row must give zeros, not NaN)"),
                   gradient(gk, arg=1, name="the gradient of k"), gradient(gv, arg=2, name="the gradient of v"))
    steps.append(Step("scaled_dot_product_attention", [*(tensor(a, requires_grad=True) for a in (q, k, v)), mask],
                      upstream=upstream, output=0, expect=grads))
    # errors the docstring promises
    a, b = rng.standard_normal((5, 4)), rng.standard_normal((6, 4))
    for args, mention, label in [
        ([a, b, rng.standard_normal((7, 3))], ("6", "7"), "6 keys but 7 values"),
        ([rng.standard_normal(4), b, rng.standard_normal((6, 3))], (), "a 1-D query"),
        ([a, b, rng.standard_normal((6, 3)), np.ones((5, 6))], (), "a float mask"),
        ([a, b, rng.standard_normal((6, 3)), np.ones((5, 7), dtype=bool)], ("7",), "a (5, 7) mask for 6 keys"),
        ([a, b, rng.standard_normal((6, 3)), np.ones(6, dtype=bool)], (), "a 1-D (T_k,) mask"),
        ([rng.standard_normal((2, 5, 4)), rng.standard_normal((2, 6, 4)), rng.standard_normal((2, 6, 3)),
          np.ones((2, 3, 6), dtype=bool)], (), "3 mask rows for 5 queries"),
    ]:
        steps.append(Step("scaled_dot_product_attention", args, expect=raises(
            "ValueError", mention=mention, name=f"scaled_dot_product_attention with {label}")))
    return steps


def padding_mask_steps(rng: np.random.Generator) -> list[Step]:
    steps = []
    for batch, size, dtype in [(1, 1, np.int64), (6, 9, np.int64), (5, 12, np.int32), (3, 30, np.int64)]:
        lengths = rng.integers(0, size + 1, batch).astype(dtype)
        want = np.arange(size)[None, :] < lengths.astype(np.int64)[:, None]
        label = f"padding_mask(lengths={lengths.tolist()}, max_len={size}) with {np.dtype(dtype).name} lengths"
        steps.append(Step("padding_mask", [lengths, size], expect=all_of(
            returns(want, name=label, dtype="bool"), unchanged(lengths, name=label))))
    steps.append(Step("padding_mask", [np.array([2, 2]), 6], expect=returns(
        np.array([[True] * 2 + [False] * 4] * 2), name="padding_mask with max_len larger than every length",
        dtype="bool")))
    steps.append(Step("padding_mask", [np.zeros(0, dtype=np.int64), 3], expect=returns(
        np.zeros((0, 3), dtype=bool), name="padding_mask of an empty batch", dtype="bool")))
    steps.append(Step("padding_mask", [np.array([0, 0]), 0], expect=returns(
        np.zeros((2, 0), dtype=bool), name="padding_mask with max_len 0", dtype="bool")))
    for args, mention, label in [([np.array([-1, 2]), 4], ("-1",), "a negative length"),
                                 ([np.array([2, 5]), 4], ("5",), "a length above max_len"),
                                 ([np.array([[1, 2]]), 4], (), "2-D lengths"),
                                 ([np.array([1.0, 2.0]), 4], (), "float lengths")]:
        steps.append(Step("padding_mask", args, expect=raises("ValueError", mention=mention,
                                                              name=f"padding_mask with {label}")))
    return steps


def _on_meta(result: Result) -> str | None:
    if result.error:
        return f"causal_mask(4, device='meta') raised {result.error}"
    value = result.value
    if not isinstance(value, MetaTensor) or value.shape != (4, 4):
        return "causal_mask(4, device='meta') must create a (4, 4) mask on the requested device"
    return None


def causal_mask_steps(rng: np.random.Generator) -> list[Step]:
    steps = [Step("causal_mask", [size], expect=returns(np.tril(np.ones((size, size), dtype=bool)),
                                                         name=f"causal_mask({size})", dtype="bool"))
             for size in (1, 2, 5, int(rng.integers(9, 25)), 0)]
    steps.append(Step("causal_mask", [4], {"device": "meta"}, expect=_on_meta))
    steps.append(Step("causal_mask", [4], {"device": device("cpu")}, expect=returns(
        np.tril(np.ones((4, 4), dtype=bool)), name="causal_mask(4, device=torch.device('cpu'))", dtype="bool")))
    steps.append(Step("causal_mask", [-2], expect=raises("ValueError", mention=("-2",), name="causal_mask(-2)")))
    return steps


ITEMS = {"test_scaled_dot_product_attention": attention_steps, "test_padding_mask": padding_mask_steps,
         "test_causal_mask": causal_mask_steps}
