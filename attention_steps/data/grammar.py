"""A language-modelling corpus from a small probabilistic grammar whose entropy is known exactly (notebook 10).

English-like sentences with agreement that reaches across other words — "the cat that the dogs see sleeps ." (the
verb agrees with *cat*, not with the nearer *dogs*), "… , and they run ." (the pronoun agrees with the subject) — so
a language model needs its context, not only the previous word.

Word choices follow Zipf's law (the most frequent word of a kind twice as likely as the second, …), so a most likely
continuation always exists: greedy decoding of a trained model settles on it and repeats it sentence after sentence.

The grammar is a tree of three kinds of node: a word, a sequence, and a weighted choice. Every sentence has exactly
one derivation (the tests check it by parsing samples), so the entropy of a sentence is the expected information of
the choices made while generating it, computed exactly from the tree:

    H(word) = 0,  H(sequence) = Σ H(part),  H(choice) = H(p) + Σ p_i H(option_i).

A model that predicts every token of ``BOS w_1 … w_n EOS`` cannot do better, on average over the corpus, than
``H(sentence) / E[n + 1]`` nats per token — the floor notebook 10 plots its validation loss against.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from functools import cached_property

import torch

from .vocab import Vocab, pad_sequences


@dataclass(frozen=True)
class Word:
    token: str


@dataclass(frozen=True)
class Seq:
    parts: tuple


@dataclass(frozen=True)
class Choice:
    options: tuple  # ((probability, node), …), probabilities summing to 1

    def __post_init__(self):
        total = sum(p for p, _ in self.options)
        if abs(total - 1.0) > 1e-9 or any(p <= 0 for p, _ in self.options):
            raise ValueError(f"choice probabilities must be positive and sum to 1, got {total}")


EMPTY = Seq(())


def words(text: str) -> Seq:
    """A fixed phrase: one Word per space-separated token."""
    return Seq(tuple(Word(t) for t in text.split()))


def one_of(*phrases: str) -> Choice:
    """A choice between fixed phrases with Zipf's weights (the first twice as likely as the second, …), as word
    frequencies are in real text: a most likely phrase always exists, so greedy decoding has no ties to break."""
    weights = [1 / rank for rank in range(1, len(phrases) + 1)]
    return Choice(tuple((w / sum(weights), words(p)) for w, p in zip(weights, phrases)))


def maybe(probability: float, node) -> Choice:
    return Choice(((probability, node), (1 - probability, EMPTY)))


# --- the grammar ---------------------------------------------------------------------------------------------------
NOUNS = ["cat", "dog", "bird", "goat", "horse", "teacher", "student", "farmer"]  # plural: + "s"
ADJECTIVES = ["big", "small", "young", "happy", "hungry", "lazy"]
INTRANSITIVE = ["sleep", "run", "sing", "wait"]  # third person singular: + "s"
TRANSITIVE = ["see", "like", "follow", "find", "help"]
ADVERBS = ["quickly", "quietly", "today", "again"]
PLACES = ["in the park", "at home", "near the river"]
DETERMINERS = {"sg": ["the", "a", "this", "my"], "pl": ["the", "some", "these", "my"]}
PRONOUN = {"sg": "it", "pl": "they"}


def _noun(number: str) -> Choice:
    return one_of(*(n if number == "sg" else n + "s" for n in NOUNS))


def _verb(stems: list[str], number: str) -> Choice:
    return one_of(*(v + "s" if number == "sg" else v for v in stems))


def _noun_phrase(number: str) -> Seq:
    return Seq((one_of(*DETERMINERS[number]), maybe(0.3, one_of(*ADJECTIVES)), _noun(number)))


def _any_noun_phrase() -> Choice:
    return Choice(((0.5, _noun_phrase("sg")), (0.5, _noun_phrase("pl"))))


def _relative_clause() -> Seq:
    """'that the dogs see': an object relative clause with a number of its own."""
    inner = Choice(tuple((0.5, Seq((_noun_phrase(m), _verb(TRANSITIVE, m)))) for m in ("sg", "pl")))
    return Seq((Word("that"), inner))


def _verb_phrase(number: str) -> Choice:
    intransitive = Seq((_verb(INTRANSITIVE, number), maybe(0.4, one_of(*ADVERBS))))
    transitive = Seq((_verb(TRANSITIVE, number), _any_noun_phrase(), maybe(0.3, one_of(*PLACES))))
    return Choice(((0.5, intransitive), (0.5, transitive)))


def _sentence(number: str) -> Seq:
    subject = Seq((_noun_phrase(number), maybe(0.25, _relative_clause())))
    second = Seq((Word(","), Word("and"), Word(PRONOUN[number]), _verb_phrase(number)))
    return Seq((subject, _verb_phrase(number), maybe(0.35, second), Word(".")))


GRAMMAR = Choice(((0.5, _sentence("sg")), (0.5, _sentence("pl"))))


# --- what the tree knows -----------------------------------------------------------------------------------------
def entropy(node) -> float:
    """Entropy in nats of the choices made below ``node`` (= of the phrases it generates, if unambiguous)."""
    if isinstance(node, Word):
        return 0.0
    if isinstance(node, Seq):
        return sum(entropy(part) for part in node.parts)
    return sum(-p * math.log(p) + p * entropy(option) for p, option in node.options)


def expected_length(node) -> float:
    """Expected number of words ``node`` generates."""
    if isinstance(node, Word):
        return 1.0
    if isinstance(node, Seq):
        return sum(expected_length(part) for part in node.parts)
    return sum(p * expected_length(option) for p, option in node.options)


def vocabulary(node) -> list[str]:
    """Every word ``node`` can generate, in first-seen order."""
    seen: dict[str, None] = {}
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, Word):
            seen.setdefault(n.token)
        elif isinstance(n, Seq):
            stack.extend(reversed(n.parts))
        else:
            stack.extend(option for _, option in reversed(n.options))
    return list(seen)


def sample(node, rng: random.Random) -> tuple[list[str], float]:
    """One phrase from ``node`` and the log-probability of the choices that made it."""
    if isinstance(node, Word):
        return [node.token], 0.0
    if isinstance(node, Seq):
        out, logp = [], 0.0
        for part in node.parts:
            tokens, lp = sample(part, rng)
            out += tokens
            logp += lp
        return out, logp
    r, acc, pick = rng.random(), 0.0, len(node.options) - 1  # the last option also takes r's rounding leftovers
    for i, (p, _) in enumerate(node.options):
        acc += p
        if r < acc:
            pick = i
            break
    p, option = node.options[pick]
    tokens, lp = sample(option, rng)
    return tokens, lp + math.log(p)


def probability(node, tokens: list[str]) -> float:
    """Total probability that ``node`` generates exactly ``tokens``, summed over every derivation (a chart parse)."""
    memo: dict[tuple[int, int], dict[int, float]] = {}

    def ends(n, i: int) -> dict[int, float]:
        key = (id(n), i)
        if key in memo:
            return memo[key]
        if isinstance(n, Word):
            out = {i + 1: 1.0} if i < len(tokens) and tokens[i] == n.token else {}
        elif isinstance(n, Seq):
            out = {i: 1.0}
            for part in n.parts:
                nxt: dict[int, float] = {}
                for j, pj in out.items():
                    for k, pk in ends(part, j).items():
                        nxt[k] = nxt.get(k, 0.0) + pj * pk
                out = nxt
        else:
            out = {}
            for p, option in n.options:
                for k, pk in ends(option, i).items():
                    out[k] = out.get(k, 0.0) + p * pk
        memo[key] = out
        return out

    return ends(node, 0).get(len(tokens), 0.0)


# --- the data set ------------------------------------------------------------------------------------------------
@dataclass
class LanguageSplit:
    """``tokens`` (N, L) int64: ``BOS w_1 … w_n EOS`` then PAD; ``texts``: the same words joined by spaces."""

    tokens: torch.Tensor
    texts: list[str]

    def __len__(self) -> int:
        return len(self.texts)


@dataclass
class LanguageTask:
    """A corpus for a language model, with the grammar's exact entropy.

    Each row holds ``sentences_per_row`` independent sentences between BOS and EOS. ``entropy_per_row`` (nats: that
    many times the entropy of one sentence; EOS, which always follows the last sentence, adds none) over
    ``tokens_per_row`` (the mean number of predicted tokens: words + EOS) is ``entropy_per_token``, the lowest mean
    cross-entropy per predicted token any model can reach on this corpus.
    """

    vocab: Vocab
    train: LanguageSplit
    valid: LanguageSplit
    test: LanguageSplit
    sentences_per_row: int
    entropy_per_sentence: float
    words_per_sentence: float

    @cached_property
    def entropy_per_row(self) -> float:
        return self.sentences_per_row * self.entropy_per_sentence

    @cached_property
    def tokens_per_row(self) -> float:
        return self.sentences_per_row * self.words_per_sentence + 1

    @cached_property
    def entropy_per_token(self) -> float:
        return self.entropy_per_row / self.tokens_per_row

    def encode(self, text: str) -> list[int]:
        """Words → ids, with BOS in front (a prompt to continue); unknown words raise a KeyError naming them."""
        return self.vocab.encode(text.split(), bos=True)

    def decode(self, ids) -> str:
        """Ids → words, stopping at the first EOS."""
        return " ".join(self.vocab.decode(ids))


def grammar_task(n_train: int = 20_000, n_valid: int = 1_000, n_test: int = 2_000, *, sentences_per_row: int = 1,
                 seed: int = 0) -> LanguageTask:
    """Rows of ``sentences_per_row`` sentences drawn independently from :data:`GRAMMAR` (one random generator,
    ``seed``), ``n_train`` + ``n_valid`` + ``n_test`` rows."""
    if sentences_per_row < 1:
        raise ValueError(f"sentences_per_row must be at least 1, got {sentences_per_row}")
    vocab = Vocab(vocabulary(GRAMMAR))
    rng = random.Random(seed)
    sentences = [sum((sample(GRAMMAR, rng)[0] for _ in range(sentences_per_row)), [])
                 for _ in range(n_train + n_valid + n_test)]
    length = max(len(s) for s in sentences) + 2

    def split(part: list[list[str]]) -> LanguageSplit:
        ids = [vocab.encode(s, bos=True, eos=True) for s in part]
        return LanguageSplit(pad_sequences(ids, length=length), [" ".join(s) for s in part])

    return LanguageTask(
        vocab=vocab,
        train=split(sentences[:n_train]),
        valid=split(sentences[n_train : n_train + n_valid]),
        test=split(sentences[n_train + n_valid :]),
        sentences_per_row=sentences_per_row,
        entropy_per_sentence=entropy(GRAMMAR),
        words_per_sentence=expected_length(GRAMMAR),
    )
