"""Trusted layers the grader compares learners' modules with, in its own process (plain torch, float64 in use).

``trusted`` is the kernel-side stand-ins module (``autograder/kernel/grading_references.py``), loaded here as plain
code: one correct implementation of each earlier item serves both as the stand-in in the kernel and as a building
block of the grader's references. Added here: attention with the course's mask rule (05, 09) and notebook 06's
multi-head attention (06, and inside 07's layers). Parameter names are the docstrings' own, so the grader's weights
load into both sides.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

from torch import nn


def _kernel_side_layers():
    """``autograder/kernel/grading_references.py``, the trusted layers the probe puts in the kernel in place of
    earlier items, loaded here as plain code: the grader composes its references for the later notebooks from the
    same, correct implementations of the course's contracts (they run in the grader's own process here)."""
    name = "autograder_trusted_layers"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).parents[1] / "kernel" /
                                                      "grading_references.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[name] = module
    return sys.modules[name]


trusted = _kernel_side_layers()


def masked_attention(q, k, v, mask=None):
    """(output, weights) of softmax(q k^T / sqrt(d)) v with :func:`masked_softmax`'s mask rule."""
    weights = trusted.masked_softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), mask)
    return weights @ v, weights


class ReferenceMultiHeadAttention(nn.Module):
    """Notebook 06's ``MultiHeadAttention`` without dropout (the grader compares in evaluation mode)."""

    def __init__(self, d_model, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.q_proj, self.k_proj = nn.Linear(d_model, d_model), nn.Linear(d_model, d_model)
        self.v_proj, self.out_proj = nn.Linear(d_model, d_model), nn.Linear(d_model, d_model)

    def forward(self, query, key, value, mask=None):
        heads = self.num_heads
        split = trusted.split_heads
        out, weights = masked_attention(split(self.q_proj(query), heads), split(self.k_proj(key), heads),
                                        split(self.v_proj(value), heads), mask)
        return self.out_proj(trusted.merge_heads(out)), weights
