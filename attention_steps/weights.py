"""Copy the weights of PyTorch's own modules into the learner's, for "same weights, same output" tests.

These only move numbers between tensors; they contain no solution. Conventions follow the course spec:
hand-written weights are row-vector style (``x @ W`` with W of shape (in, out)), i.e. the transpose of torch's
``nn.Linear.weight`` (out, in).
"""

from __future__ import annotations

import torch
from torch import nn


def rnn_weights(rnn: nn.RNN, layer: int = 0, reverse: bool = False) -> dict[str, torch.Tensor]:
    """The weights of one layer of a ``torch.nn.RNN`` in the course's row-vector convention.

    Returns ``{"W_xh": (input, hidden), "W_hh": (hidden, hidden), "b": (hidden,)}`` with
    ``W_xh = weight_ih.T``, ``W_hh = weight_hh.T``, ``b = bias_ih + bias_hh`` (torch keeps two biases; their sum is
    the one bias of the textbook RNN). Detached clones: the RNN is untouched.
    """
    suffix = f"_l{layer}" + ("_reverse" if reverse else "")
    w_ih = getattr(rnn, "weight_ih" + suffix).detach()
    w_hh = getattr(rnn, "weight_hh" + suffix).detach()
    if rnn.bias:
        b = (getattr(rnn, "bias_ih" + suffix) + getattr(rnn, "bias_hh" + suffix)).detach()
    else:
        b = torch.zeros(w_hh.shape[0], dtype=w_hh.dtype)
    return {"W_xh": w_ih.T.clone(), "W_hh": w_hh.T.clone(), "b": b.clone()}


@torch.no_grad()
def copy_mha_weights(source: nn.MultiheadAttention, target: nn.Module) -> nn.Module:
    """Copy a ``torch.nn.MultiheadAttention``'s projections into a module with ``q_proj, k_proj, v_proj, out_proj``.

    Each of the target's four projections is an ``nn.Linear(d_model, d_model)`` (with bias). Torch packs the three
    input projections into one ``in_proj_weight`` of shape (3·d_model, d_model) — rows [0, D) are W_Q, [D, 2D) W_K,
    [2D, 3D) W_V — unless it was built with different key/value widths. Returns ``target``.
    """
    d = source.embed_dim
    for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
        layer = getattr(target, proj, None)
        if not isinstance(layer, nn.Linear) or tuple(layer.weight.shape) != (d, d):
            raise ValueError(f"target.{proj} must be an nn.Linear({d}, {d}); got {layer!r}")
        if layer.bias is None:
            raise ValueError(f"target.{proj} must have a bias, as torch's MultiheadAttention does")
    if source._qkv_same_embed_dim:
        w_q, w_k, w_v = source.in_proj_weight.chunk(3, dim=0)
    else:
        w_q, w_k, w_v = source.q_proj_weight, source.k_proj_weight, source.v_proj_weight
    if source.in_proj_bias is not None:
        b_q, b_k, b_v = source.in_proj_bias.chunk(3, dim=0)
    else:
        b_q = b_k = b_v = torch.zeros(d)
    for layer, w, b in ((target.q_proj, w_q, b_q), (target.k_proj, w_k, b_k), (target.v_proj, w_v, b_v)):
        layer.weight.copy_(w)
        layer.bias.copy_(b)
    target.out_proj.weight.copy_(source.out_proj.weight)
    if source.out_proj.bias is not None:
        target.out_proj.bias.copy_(source.out_proj.bias)
    else:
        target.out_proj.bias.zero_()
    return target
