"""A long-range memory task: read a key, then ``n_distractors`` noise tokens, then say which key it was.

Token ids ``0 … n_keys - 1`` are keys, ``n_keys … n_keys + n_noise - 1`` are distractors. Every sequence is one key
followed by ``n_distractors`` distractors; the label is the key. Chance accuracy is ``1 / n_keys``. A model that
answers from its last hidden state must carry the key through ``n_distractors`` steps of noise, so accuracy against
``n_distractors`` shows how far back a recurrent network can remember.
"""

from __future__ import annotations

import torch


def recall_task(
    n_distractors: int, n_samples: int, *, n_keys: int = 8, n_noise: int = 8, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n_samples`` sequences ``(key, noise, …, noise)`` and their keys.

    Returns ``(tokens, labels)``: tokens (n_samples, 1 + n_distractors) int64 with values in
    ``[0, n_keys + n_noise)``; labels (n_samples,) int64 in ``[0, n_keys)``, equal to ``tokens[:, 0]``.
    The same ``seed`` gives the same data; use different seeds for training and evaluation.
    """
    if n_distractors < 0 or n_samples < 1 or n_keys < 2 or n_noise < 1:
        raise ValueError(
            f"need n_distractors >= 0, n_samples >= 1, n_keys >= 2, n_noise >= 1; got {n_distractors}, {n_samples}, "
            f"{n_keys}, {n_noise}"
        )
    gen = torch.Generator().manual_seed(seed)
    keys = torch.randint(0, n_keys, (n_samples,), generator=gen)
    noise = torch.randint(n_keys, n_keys + n_noise, (n_samples, n_distractors), generator=gen)
    return torch.cat([keys[:, None], noise], dim=1), keys
