"""Hidden tests of 09_attention_as_message_passing as data: ``graph_conv``, ``attention_adjacency``,
``SelfAttention2d``."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .cases import ModuleCase, checked_call, checked_gradients, must_raise
from .expect import returns
from .probe import Step, ref
from .reference_layers import masked_attention

ATTENTION = dict(forbid=("scaled_dot_product_attention", "multi_head_attention"))


def reference_graph_conv(h, adj, weight):
    n = adj.shape[-1]
    a_hat = torch.where(torch.eye(n, dtype=torch.bool), torch.ones((), dtype=h.dtype), adj.to(h.dtype))
    degree = a_hat.sum(-1)
    return a_hat / torch.sqrt(degree[..., :, None] * degree[..., None, :]) @ (h @ weight)


def _graph(rng, *shape, p=0.3, weighted=False, symmetric=True):
    a = (rng.random(shape) < p).astype(np.float64)
    if weighted:
        a = a * (0.2 + 2 * rng.random(shape))
    if symmetric:
        a = np.triu(a, 1)
        a = a + np.swapaxes(a, -1, -2)
    return a


def graph_conv_steps(rng: np.random.Generator) -> list:
    steps = []
    isolated = np.zeros((6, 6))
    isolated[:4, :4] = _graph(rng, 4, 4, p=0.8)
    for label, h_shape, adj in [
            ("a random graph", (9, 5), _graph(rng, 9, 9)),
            ("a weighted graph", (7, 3), _graph(rng, 7, 7, p=0.5, weighted=True)),
            ("a directed weighted graph (degrees are row sums)", (8, 4),
             _graph(rng, 8, 8, p=0.4, weighted=True, symmetric=False)),
            ("a graph with weighted self-loops already present", (6, 3),
             _graph(rng, 6, 6, p=0.5) + np.diag([3.0, 0, 1, 0.5, 2, 0])),
            ("a graph with two isolated nodes", (6, 2), isolated),
            ("a batch of three graphs", (3, 10, 4), _graph(rng, 3, 10, 10)),
            ("one graph shared by a batch", (2, 5, 3), _graph(rng, 5, 5, p=0.6)),
            ("a single node", (1, 3), np.zeros((1, 1)))]:
        args = [rng.standard_normal(h_shape), adj, rng.standard_normal((h_shape[-1], 6))]
        steps.append(checked_call("graph_conv", args, reference_graph_conv, label=f"graph_conv on {label}"))
    args = [rng.standard_normal((2, 7, 3)).astype(np.float32), _graph(rng, 2, 7, 7) > 0,
            rng.standard_normal((3, 4)).astype(np.float32)]
    steps.append(checked_call("graph_conv", args, reference_graph_conv, atol=1e-5, rtol=1e-5,
                              label="graph_conv with float32 h and a batch of bool graphs"))
    args = [rng.standard_normal((5, 3)), _graph(rng, 5, 5, p=0.7, weighted=True), rng.standard_normal((3, 2))]
    steps.append(checked_gradients("graph_conv", args, reference_graph_conv, wrt=(0, 1, 2), rng=rng,
                                   label="graph_conv (h, adj and weight)"))
    h, adj = rng.standard_normal((4, 3)), _graph(rng, 4, 4)
    for args, mention, label in [
            ([h, np.zeros((4, 5)), np.zeros((3, 2))], ("5",), "a non-square adj (4, 5)"),
            ([h, np.zeros((7, 7)), np.zeros((3, 2))], ("7",), "adj (7, 7) for 4 nodes"),
            ([h, adj, np.zeros((3, 2, 2))], (), "a 3-D weight"),
            ([h[0], adj, np.zeros((3, 2))], (), "a 1-D h"),
            ([np.zeros((2, 4, 3)), np.zeros((5, 4, 4)), np.zeros((3, 2))], ("5",), "5 graphs for a batch of 2"),
            ([h, np.zeros((2, 4, 4)), np.zeros((3, 2))], (), "a batch of graphs for a 2-D h")]:
        steps.append(must_raise("graph_conv", args, mention=mention, label=f"graph_conv with {label}"))
    return steps


def reference_adjacency(q, k, mask=None):
    return masked_attention(q, k, k, mask)[1]


def attention_adjacency_steps(rng: np.random.Generator) -> list:
    steps = []
    exercise = dict(ATTENTION, exercise="attention_adjacency")
    for label, q_shape, k_shape, mask in [
            ("(B, N, d) without a mask", (3, 7, 16), (3, 7, 16), None),
            ("(B, H, N_q, d) with N_k != N_q and d != N_k", (2, 3, 4, 5), (2, 3, 9, 5), None),
            ("a shared (N, N) graph mask", (2, 6, 4), (2, 6, 4), rng.random((6, 6)) < 0.4),
            ("a per-item (B, N_q, N_k) mask with empty rows", (3, 5, 4), (3, 6, 4), rng.random((3, 5, 6)) < 0.3),
            ("a key-padding mask (B, 1, N_k)", (2, 4, 8), (2, 6, 8), np.array([[True] * 6, [True] * 2 + [False] * 4])[
                :, None, :]),
            ("a (B, 1, 1, N_k) mask with heads", (2, 3, 4, 8), (2, 3, 5, 8), rng.random((2, 1, 1, 5)) < 0.6),
            ("a mask that hides all but one key", (1, 4, 3), (1, 5, 3), np.tile(np.eye(5, dtype=bool)[2], (4, 1))),
            ("one query, one key", (1, 1, 2), (1, 1, 2), None)]:
        args = [rng.standard_normal(q_shape) * 2, rng.standard_normal(k_shape) * 2] + ([mask] if mask is not None
                                                                                      else [])
        steps.append(checked_call("attention_adjacency", args, reference_adjacency,
                                  label=f"attention_adjacency on {label}", **exercise))
    q = (rng.standard_normal((2, 5, 6)) * 30).astype(np.float32)
    steps.append(checked_call("attention_adjacency", [q, q], reference_adjacency, atol=1e-5, rtol=1e-4,
                              label="attention_adjacency with large scores (float32)"))
    mask16 = rng.random((2, 4, 5)) < 0.5
    mask16[0, 1] = False
    args = [(rng.standard_normal((2, 4, 8)) * 2).astype(np.float16), (rng.standard_normal((2, 5, 8)) * 2).astype(
        np.float16), mask16]
    steps.append(checked_call("attention_adjacency", args, reference_adjacency, atol=3e-3, rtol=1e-2,
                              label="attention_adjacency in float16 with a mask and an empty row"))
    mask = rng.random((2, 4, 5)) < 0.5
    mask[1, 2] = False
    mask[0, 0] = True
    steps.append(checked_gradients("attention_adjacency", [rng.standard_normal((2, 4, 3)),
                                                           rng.standard_normal((2, 5, 3)), mask],
                                   reference_adjacency, wrt=(0, 1), rng=rng,
                                   label="attention_adjacency (finite, also for a fully masked row)"))
    q = rng.standard_normal((3, 4))
    for args, mention, label in [
            ([q, rng.standard_normal((3, 5))], ("5",), "q (3, 4) and k (3, 5)"),
            ([rng.standard_normal((2, 3, 4)), rng.standard_normal((3, 3, 4))], (), "batch 2 vs 3"),
            ([q, q, np.ones((3, 7), dtype=bool)], ("7",), "a (3, 7) mask for 3 keys"),
            ([rng.standard_normal((5, 4)), rng.standard_normal((3, 4)), np.ones((3, 5), dtype=bool)], (),
             "a transposed (N_k, N_q) mask"),
            ([q, q, np.ones((3, 3))], (), "a float mask"),
            ([rng.standard_normal(4), rng.standard_normal(4)], (), "1-D q and k")]:
        steps.append(must_raise("attention_adjacency", args, mention=mention,
                                label=f"attention_adjacency with {label}"))
    return steps


class ReferenceSelfAttention2d(nn.Module):
    def __init__(self, channels):
        super().__init__()
        reduced = max(channels // 8, 1)
        self.f, self.g = nn.Conv2d(channels, reduced, 1), nn.Conv2d(channels, reduced, 1)
        self.h = nn.Conv2d(channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        b, c, height, width = x.shape
        scores = torch.einsum("bci,bcj->bji", self.f(x).flatten(2), self.g(x).flatten(2))  # [b, j, i] = s_ij
        weights = torch.softmax(scores, dim=-1)                                            # over i
        out = torch.einsum("bji,bci->bcj", weights, self.h(x).flatten(2)).reshape(b, c, height, width)
        return self.gamma * out + x, weights


def _sagan_init(gamma):
    """Query and key weights large enough that the softmax is far from uniform; gamma as given."""
    def init(name, shape, rng):
        if name == "gamma":
            return np.full(shape, gamma)
        if name in ("f.weight", "g.weight"):
            return rng.standard_normal(shape) * 3 / np.sqrt(shape[1])
        return None
    return init


def self_attention_steps(rng: np.random.Generator) -> list:
    steps = []
    exercise = dict(ATTENTION, exercise="SelfAttention2d")
    for number, (c, shape) in enumerate([(16, (2, 16, 4, 6)), (8, (1, 8, 5, 5)), (4, (3, 4, 2, 3)),
                                         (24, (2, 24, 1, 1)), (12, (1, 12, 1, 7))]):
        label = f"SelfAttention2d({c})"
        case = ModuleCase("SelfAttention2d", [c], ReferenceSelfAttention2d(c), rng, label=label, keep=f"m{number}",
                          init=_sagan_init(0.75))
        x = rng.standard_normal(shape)
        build, cast, mode, load = case.steps
        # as built (gamma starts at 0): the identity, whatever the convolutions hold
        fresh = Step(ref(f"m{number}"), [x], **exercise, expect=returns(
            x, index=0, atol=0, rtol=0, name=f"{label} at initialisation on {shape} (must be the identity: gamma = 0)"))
        steps += [build, cast, mode, fresh, load,
                  case.call([x], outputs=2, label=f"{label} with gamma = 0.75 on {shape}", **exercise)]
    case = ModuleCase("SelfAttention2d", [8], ReferenceSelfAttention2d(8), rng, label="SelfAttention2d(8)",
                      keep="at_zero", init=_sagan_init(0.0))
    steps += [*case.steps, case.call([rng.standard_normal((2, 8, 3, 4))], outputs=2, output=0, rng=rng,
                                     grad_args=(0,), label="SelfAttention2d(8) with gamma = 0 (gamma must still get a "
                                                           "gradient: y = gamma * o + x)")]
    case = ModuleCase("SelfAttention2d", [4], ReferenceSelfAttention2d(4), rng, label="SelfAttention2d(4)",
                      keep="grads", init=_sagan_init(0.9))
    steps += [*case.steps, case.call([rng.standard_normal((1, 4, 2, 2))], outputs=2, output=0, rng=rng,
                                     grad_args=(0,), label="SelfAttention2d(4) with gamma = 0.9")]
    case = ModuleCase("SelfAttention2d", [8], ReferenceSelfAttention2d(8), rng, label="SelfAttention2d(8)",
                      keep="bad")
    steps += [*case.steps,
              must_raise(ref("bad"), [np.zeros((2, 8, 9))], label="SelfAttention2d on a 3-D input"),
              must_raise(ref("bad"), [np.zeros((2, 5, 3, 3))], mention=("5",),
                         label="SelfAttention2d(8) on 5 channels")]
    return steps


ITEMS = {"test_graph_conv": graph_conv_steps, "test_attention_adjacency": attention_adjacency_steps,
         "test_SelfAttention2d": self_attention_steps}
