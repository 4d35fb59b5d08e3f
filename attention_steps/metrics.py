"""Accuracy figures used across notebooks (no graded exercise computes these)."""

from __future__ import annotations

import torch

from .data.vocab import EOS, PAD


def classification_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of rows whose arg-max equals the label."""
    return (logits.argmax(-1) == labels).float().mean().item()


def trim_at_eos(ids: torch.Tensor) -> torch.Tensor:
    """(B, L) ids → same shape with every position after the first EOS (and the EOS itself) set to PAD."""
    is_eos = ids == EOS
    after = (is_eos.long().cumsum(-1) > 0)
    return ids.masked_fill(after, PAD)


def exact_match(predicted: torch.Tensor, target: torch.Tensor) -> float:
    """Fraction of sequences predicted exactly.

    ``predicted``: (B, L) ids without BOS, as a greedy decoder returns them (EOS and padding optional).
    ``target``: (B, T) ``BOS y … EOS PAD …`` as in the data sets. Both are compared up to their first EOS.
    """
    want = trim_at_eos(target[:, 1:])
    got = trim_at_eos(predicted)
    length = max(want.shape[1], got.shape[1])
    want = torch.nn.functional.pad(want, (0, length - want.shape[1]), value=PAD)
    got = torch.nn.functional.pad(got, (0, length - got.shape[1]), value=PAD)
    return (want == got).all(-1).float().mean().item()
