"""Vocabularies with the course's fixed special ids, padding, and the split container every text task returns."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch

PAD, BOS, EOS = 0, 1, 2
SPECIALS = ("<pad>", "<bos>", "<eos>")


class Vocab:
    """A fixed token ↔ id mapping. Ids 0, 1, 2 are always ``<pad>``, ``<bos>``, ``<eos>``.

    The token list is given explicitly (never collected from data), so ids never depend on a sample.
    """

    def __init__(self, tokens: Iterable[str]):
        tokens = list(tokens)
        if len(set(tokens)) != len(tokens):
            raise ValueError("Vocab tokens must be unique")
        clash = set(tokens) & set(SPECIALS)
        if clash:
            raise ValueError(f"{sorted(clash)} are reserved special tokens")
        self.itos: list[str] = [*SPECIALS, *tokens]
        self.stoi: dict[str, int] = {t: i for i, t in enumerate(self.itos)}

    def __len__(self) -> int:
        return len(self.itos)

    def __repr__(self) -> str:
        return f"Vocab({len(self)} tokens: {self.itos[3:13]}{' …' if len(self) > 13 else ''})"

    def encode(self, tokens: Sequence[str], *, bos: bool = False, eos: bool = False) -> list[int]:
        """Token list → ids, optionally framed by BOS/EOS. Unknown tokens raise a KeyError naming them."""
        missing = [t for t in tokens if t not in self.stoi]
        if missing:
            raise KeyError(f"tokens not in the vocabulary: {missing}")
        ids = [self.stoi[t] for t in tokens]
        return ([BOS] if bos else []) + ids + ([EOS] if eos else [])

    def decode(self, ids: Iterable[int], *, strip: bool = True) -> list[str]:
        """Ids → tokens. With ``strip`` (default) BOS and PAD are dropped and decoding stops at the first EOS."""
        out: list[str] = []
        for i in ids:
            i = int(i)
            if strip:
                if i == EOS:
                    break
                if i in (PAD, BOS):
                    continue
            out.append(self.itos[i])
        return out


def pad_sequences(seqs: Sequence[Sequence[int]], *, length: int | None = None, pad: int = PAD) -> torch.Tensor:
    """Right-pad lists of ids into a (B, L) int64 tensor; ``length`` defaults to the longest sequence."""
    length = max(len(s) for s in seqs) if length is None else length
    rows = []
    for s in seqs:
        if len(s) > length:
            raise ValueError(f"sequence of length {len(s)} does not fit in length {length}")
        rows.append([*s, *[pad] * (length - len(s))])
    return torch.tensor(rows, dtype=torch.long).reshape(len(seqs), length)


@dataclass
class Seq2SeqSplit:
    """One split of a sequence-to-sequence task, as padded tensors.

    - ``src``: (N, S) int64 source ids, right-padded with PAD, no BOS/EOS.
    - ``src_lengths``: (N,) int64 number of real source tokens.
    - ``tgt``: (N, T) int64 target ids framed as ``BOS y_1 … y_n EOS`` and right-padded with PAD.
      Teacher forcing feeds ``tgt[:, :-1]`` and predicts ``tgt[:, 1:]``.
    - ``src_text`` / ``tgt_text``: the original strings, for printing and plots.
    """

    src: torch.Tensor
    src_lengths: torch.Tensor
    tgt: torch.Tensor
    src_text: list[str]
    tgt_text: list[str]

    def __len__(self) -> int:
        return self.src.shape[0]

    def to(self, device) -> Seq2SeqSplit:
        return Seq2SeqSplit(
            self.src.to(device), self.src_lengths.to(device), self.tgt.to(device), self.src_text, self.tgt_text
        )


@dataclass
class TranslationTask:
    """A sequence-to-sequence task: vocabularies, train / validation / held-out test splits, and how text is split.

    Tune on ``valid``; ``test`` is only for the final figure.
    """

    name: str
    src_vocab: Vocab
    tgt_vocab: Vocab
    train: Seq2SeqSplit
    valid: Seq2SeqSplit
    test: Seq2SeqSplit
    src_tokenize: object  # callable str -> list[str]
    tgt_tokenize: object
    tgt_join: str  # "" for characters, " " for words

    def encode_source(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Strings → ((B, S) padded source ids, (B,) lengths), the way the task encodes its own sources."""
        ids = [self.src_vocab.encode(self.src_tokenize(t)) for t in texts]
        return pad_sequences(ids, length=max(self.train.src.shape[1], max(len(i) for i in ids))), torch.tensor(
            [len(i) for i in ids]
        )

    def decode_target(self, ids: Iterable[int]) -> str:
        """Target ids (with or without BOS, stopping at EOS) → string."""
        return self.tgt_join.join(self.tgt_vocab.decode(ids))


def build_split(
    pairs: Sequence[tuple[str, str]], task_vocab: tuple[Vocab, Vocab], tokenize: tuple, *, src_len: int, tgt_len: int
) -> Seq2SeqSplit:
    src_vocab, tgt_vocab = task_vocab
    src_tok, tgt_tok = tokenize
    src_ids = [src_vocab.encode(src_tok(s)) for s, _ in pairs]
    tgt_ids = [tgt_vocab.encode(tgt_tok(t), bos=True, eos=True) for _, t in pairs]
    return Seq2SeqSplit(
        src=pad_sequences(src_ids, length=src_len),
        src_lengths=torch.tensor([len(s) for s in src_ids], dtype=torch.long),
        tgt=pad_sequences(tgt_ids, length=tgt_len),
        src_text=[s for s, _ in pairs],
        tgt_text=[t for _, t in pairs],
    )


def translation_task(
    name: str,
    pairs: Sequence[tuple[str, str]],
    vocabs: tuple[Vocab, Vocab],
    tokenize: tuple,
    join: str,
    *,
    n_train: int,
    n_valid: int,
    n_test: int,
    src_len: int,
    tgt_len: int,
) -> TranslationTask:
    """Cut ``pairs`` (already in their fixed order) into test / validation / train, in that order, and encode them."""
    if n_train + n_valid + n_test > len(pairs):
        raise ValueError(f"{name}: {len(pairs)} pairs available, asked for {n_train + n_valid + n_test}")
    cuts = [pairs[:n_test], pairs[n_test : n_test + n_valid], pairs[n_test + n_valid : n_test + n_valid + n_train]]
    test, valid, train = (build_split(p, vocabs, tokenize, src_len=src_len, tgt_len=tgt_len) for p in cuts)
    return TranslationTask(name, *vocabs, train, valid, test, *tokenize, join)
