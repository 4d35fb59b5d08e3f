"""Trusted layers the grader compares learners' modules with, in its own process (plain torch, float64 in use).

Shared by the notebooks that build on one another: attention with the course's mask rule (05), multi-head attention
(06, and inside 07's layers). Parameter names are the docstrings' own, so the grader's weights load into both sides.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def masked_attention(q, k, v, mask=None):
    """(output, weights) of softmax(q k^T / sqrt(d)) v; ``mask`` bool, True = allowed, broadcast to the scores; a
    query with no allowed key gets all-zero weights (and a zero output, and zero gradients, never NaN)."""
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if mask is None:
        weights = torch.softmax(scores, dim=-1)
    else:
        allowed = mask.expand_as(scores)
        has_key = allowed.any(-1, keepdim=True)
        weights = torch.softmax(scores.masked_fill(~allowed, -math.inf).masked_fill(~has_key, 0.0), dim=-1) * has_key
    return weights @ v, weights


def split(x, heads):
    batch, length, width = x.shape
    return x.reshape(batch, length, heads, width // heads).transpose(1, 2)


def merge(x):
    batch, heads, length, width = x.shape
    return x.transpose(1, 2).reshape(batch, length, heads * width)


class ReferenceMultiHeadAttention(nn.Module):
    """Notebook 06's ``MultiHeadAttention`` without dropout (the grader compares in evaluation mode)."""

    def __init__(self, d_model, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.q_proj, self.k_proj = nn.Linear(d_model, d_model), nn.Linear(d_model, d_model)
        self.v_proj, self.out_proj = nn.Linear(d_model, d_model), nn.Linear(d_model, d_model)

    def forward(self, query, key, value, mask=None):
        heads = self.num_heads
        out, weights = masked_attention(split(self.q_proj(query), heads), split(self.k_proj(key), heads),
                                        split(self.v_proj(value), heads), mask)
        return self.out_proj(merge(out)), weights
