"""Length-controlled copy / reverse sequences: the x-axis for "accuracy against input length" plots.

Dates are all 6–29 characters long, too short to show that a fixed-size context vector forgets; these run from
``min_len`` to ``max_len`` symbols (5–50 by default) with lengths spread evenly.
"""

from __future__ import annotations

import random

from .vocab import TranslationTask, Vocab, translation_task

SYMBOLS = "abcdefghijklmnopqrstuvwxyz"


def sequence_pairs(kind: str, n: int, *, min_len: int, max_len: int, n_symbols: int, seed: int):
    if kind not in ("copy", "reverse"):
        raise ValueError(f"kind must be 'copy' or 'reverse', not {kind!r}")
    if not 1 <= n_symbols <= len(SYMBOLS):
        raise ValueError(f"n_symbols must be between 1 and {len(SYMBOLS)}")
    rng = random.Random(seed)
    alphabet = SYMBOLS[:n_symbols]
    seen: set[str] = set()
    pairs = []
    while len(pairs) < n:
        length = min_len + len(pairs) % (max_len - min_len + 1)  # every length equally often
        src = "".join(rng.choice(alphabet) for _ in range(length))
        if src in seen:
            continue
        seen.add(src)
        pairs.append((src, src if kind == "copy" else src[::-1]))
    rng.shuffle(pairs)
    return pairs


def sequence_task(
    kind: str = "reverse",
    n_train: int = 20_000,
    n_valid: int = 1_000,
    n_test: int = 2_000,
    *,
    min_len: int = 5,
    max_len: int = 50,
    n_symbols: int = 10,
    seed: int = 0,
) -> TranslationTask:
    """Copy or reverse random strings of ``min_len``–``max_len`` symbols; disjoint splits, every length equally often.

    Group the test split by ``test.src_lengths`` to plot accuracy against input length.
    """
    pairs = sequence_pairs(kind, n_test + n_valid + n_train, min_len=min_len, max_len=max_len,
                           n_symbols=n_symbols, seed=seed)
    vocab = Vocab(SYMBOLS[:n_symbols])
    return translation_task(kind, pairs, (vocab, vocab), (list, list), "", n_train=n_train, n_valid=n_valid,
                            n_test=n_test, src_len=max_len, tgt_len=max_len + 2)
