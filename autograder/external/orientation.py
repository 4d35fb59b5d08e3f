"""Hidden tests of 00_orientation as data: ``softmax`` and ``one_hot_embed``, with the grader's own references."""

from __future__ import annotations

import numpy as np

from .expect import all_of, gradient, raises, returns, unchanged
from .probe import Step, tensor


def reference_softmax(x: np.ndarray, dim: int) -> np.ndarray:
    a = x.astype(np.float64)
    a = np.where(np.isneginf(a), -1e300, a)
    e = np.exp(a - a.max(axis=dim, keepdims=True))
    return e / e.sum(axis=dim, keepdims=True)


def softmax_steps(rng: np.random.Generator) -> list[Step]:
    steps = []
    on = dict(forbid=("softmax",), exercise="softmax")
    for shape, dim in [((5,), 0), ((3, 7), -1), ((3, 7), 0), ((2, 3, 4, 5), 1), ((2, 3, 4, 5), -2), ((4, 1), 1)]:
        x = rng.standard_normal(shape) * 3
        name = f"softmax on a float64 tensor of shape {shape}, dim={dim}"
        steps.append(Step("softmax", [x], {"dim": dim}, **on, expect=all_of(
            returns(reference_softmax(x, dim), name=name, dtype="float64", atol=1e-12, rtol=1e-10),
            unchanged(x, name=name))))
    for scale in (1e3, 1e4):
        # a right float32 softmax differs from the float64 reference by up to one float32 step of the largest input
        # (x - logsumexp(x) rounds there): about 8 * scale * 2**-23 relative; NaN, inf or a wrong value is far off
        x = (rng.standard_normal((4, 9)) * scale).astype(np.float32)
        steps.append(Step("softmax", [x], **on, expect=returns(
            reference_softmax(x, -1), name=f"softmax of inputs of size {scale:g}", dtype="float32", atol=1e-6,
            rtol=8 * scale * 2.0 ** -23)))
    x = np.array([[0.5, -np.inf, 2.0], [-np.inf, 3.0, -np.inf]], dtype=np.float32)
    steps.append(Step("softmax", [x], **on, expect=returns(reference_softmax(x, -1), name="softmax with -inf entries",
                                                           dtype="float32")))
    x = (rng.standard_normal((3, 6)) * 4).astype(np.float16)
    steps.append(Step("softmax", [x], **on, expect=returns(
        reference_softmax(x, -1), name="softmax of a float16 tensor", dtype="float16", atol=2e-3, rtol=1e-2)))
    x, upstream = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    y = reference_softmax(x, -1)
    steps.append(Step("softmax", [tensor(x, requires_grad=True)], {"dim": -1}, upstream=upstream,
                      expect=gradient(y * (upstream - (upstream * y).sum(-1, keepdims=True)), arg=0,
                                      name="the gradient of softmax")))
    steps.append(Step("softmax", [rng.standard_normal((6, 1)).astype(np.float32)], {"dim": -1}, **on,
                      expect=returns(np.ones((6, 1)), name="softmax over a dimension of size one", dtype="float32")))
    return steps


def reference_embed(ids: np.ndarray, weight: np.ndarray) -> np.ndarray:
    return weight[ids.astype(np.int64)]


def one_hot_embed_steps(rng: np.random.Generator) -> list[Step]:
    steps = []
    on = dict(forbid=("embedding",), exercise="one_hot_embed")
    for shape, vocab, width, dtype in [((7,), 11, 5, np.float32), ((3, 9), 50, 16, np.float64),
                                       ((2, 3, 4), 6, 2, np.float32)]:
        w = rng.standard_normal((vocab, width)).astype(dtype)
        ids = rng.integers(0, vocab, shape)
        name = f"one_hot_embed for ids of shape {shape}, V={vocab}"
        steps.append(Step("one_hot_embed", [ids, w], **on, expect=all_of(
            returns(reference_embed(ids, w), name=name, dtype=np.dtype(dtype).name, atol=0, rtol=0),
            unchanged(ids, w, name=name))))
    w = rng.standard_normal((3, 4)).astype(np.float32)
    ids32 = np.array([[2, 0], [1, 1]], dtype=np.int32)
    steps.append(Step("one_hot_embed", [ids32, w], **on, expect=returns(
        reference_embed(ids32, w), name="one_hot_embed with int32 ids", dtype="float32", atol=0, rtol=0)))
    steps.append(Step("one_hot_embed", [np.array(2), w], **on, expect=returns(
        w[2], name="one_hot_embed of a single (0-d) id", dtype="float32", atol=0, rtol=0)))
    steps.append(Step("one_hot_embed", [np.zeros((0, 5), dtype=np.int64), w], **on, expect=returns(
        np.zeros((0, 5, 4), dtype=np.float32), name="one_hot_embed of an empty batch", dtype="float32")))
    steps.append(Step("one_hot_embed", [np.array([-1, 0]), w], expect=raises(
        "ValueError", mention=("-1",), name="one_hot_embed with id -1")))
    steps.append(Step("one_hot_embed", [np.array([0.0, 1.0], dtype=np.float32), w], expect=raises(
        "ValueError", name="one_hot_embed with float ids")))
    steps.append(Step("one_hot_embed", [np.array([0, 1]), rng.standard_normal((3, 4, 2)).astype(np.float32)],
                      expect=raises("ValueError", name="one_hot_embed with a 3-D weight")))
    w = rng.standard_normal((5, 3))
    ids = np.array([[4, 0, 4]])
    upstream = rng.standard_normal((1, 3, 3))
    want = np.zeros_like(w)
    np.add.at(want, ids[0], upstream[0])
    steps.append(Step("one_hot_embed", [ids, tensor(w, requires_grad=True)], upstream=upstream,
                      expect=gradient(want, arg=1, name="the gradient of one_hot_embed with respect to weight")))
    return steps


#: grade_id -> the steps of its hidden tests
ITEMS = {"test_softmax": softmax_steps, "test_one_hot_embed": one_hot_embed_steps}
