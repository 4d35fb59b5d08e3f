"""Copy the weights of PyTorch's Transformer layers into the learner's, for "same weights, same output" tests.

Notebook 07's layers keep PyTorch's parameter layout under the attribute names fixed in their docstrings:

==========================================  ==========================================
``torch.nn.TransformerEncoderLayer``        the course's ``EncoderLayer``
==========================================  ==========================================
``self_attn``                               ``self_attn`` (an ``nn.MultiheadAttention``)
``linear1``, ``linear2``                    ``ffn.linear1``, ``ffn.linear2``
``norm1``, ``norm2``                        ``norm1``, ``norm2``
==========================================  ==========================================

and for the decoder ``self_attn`` → ``self_attn``, ``multihead_attn`` → ``cross_attn``, ``linear1``/``linear2`` →
``ffn.linear1``/``ffn.linear2``, ``norm1``/``norm2``/``norm3`` → ``norm1``/``norm2``/``norm3``.
These functions only move numbers between tensors; they contain no solution.
"""

from __future__ import annotations

import torch
from torch import nn

from .weights import copy_mha_weights


def _copy_attention(source: nn.MultiheadAttention, target: nn.Module, where: str) -> None:
    if isinstance(target, nn.MultiheadAttention):
        if target.embed_dim != source.embed_dim or target.num_heads != source.num_heads:
            raise ValueError(f"{where}: torch has {source.embed_dim} wide / {source.num_heads} heads, "
                             f"the target {target.embed_dim} / {target.num_heads}")
        target.load_state_dict(source.state_dict())
    else:  # a hand-written attention with q_proj, k_proj, v_proj, out_proj (notebook 06's layout)
        copy_mha_weights(source, target)


def _copy_module(source: nn.Module, target: nn.Module | None, where: str) -> None:
    if target is None:
        raise ValueError(f"the target has no {where}")
    for name in ("weight", "bias"):
        s, t = getattr(source, name, None), getattr(target, name, None)
        if s is None:
            continue
        if t is None or tuple(t.shape) != tuple(s.shape):
            raise ValueError(f"{where}.{name}: expected shape {tuple(s.shape)}, "
                             f"got {None if t is None else tuple(t.shape)}")
        t.copy_(s)


@torch.no_grad()
def copy_encoder_layer_weights(source: nn.TransformerEncoderLayer, target: nn.Module) -> nn.Module:
    """Copy a ``torch.nn.TransformerEncoderLayer``'s weights into ``target`` (see the table above); returns it."""
    _copy_attention(source.self_attn, target.self_attn, "self_attn")
    ffn = getattr(target, "ffn", None)
    _copy_module(source.linear1, getattr(ffn, "linear1", None), "ffn.linear1")
    _copy_module(source.linear2, getattr(ffn, "linear2", None), "ffn.linear2")
    _copy_module(source.norm1, getattr(target, "norm1", None), "norm1")
    _copy_module(source.norm2, getattr(target, "norm2", None), "norm2")
    return target


@torch.no_grad()
def copy_decoder_layer_weights(source: nn.TransformerDecoderLayer, target: nn.Module) -> nn.Module:
    """Copy a ``torch.nn.TransformerDecoderLayer``'s weights into ``target`` (see the table above); returns it."""
    _copy_attention(source.self_attn, target.self_attn, "self_attn")
    _copy_attention(source.multihead_attn, target.cross_attn, "cross_attn")
    ffn = getattr(target, "ffn", None)
    _copy_module(source.linear1, getattr(ffn, "linear1", None), "ffn.linear1")
    _copy_module(source.linear2, getattr(ffn, "linear2", None), "ffn.linear2")
    for name in ("norm1", "norm2", "norm3"):
        _copy_module(getattr(source, name), getattr(target, name, None), name)
    return target
