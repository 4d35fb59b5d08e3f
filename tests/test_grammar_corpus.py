"""Notebook 10's language-modelling corpus: one derivation per sentence, and the entropy floor the tree computes."""

import math
import random

import pytest

from attention_steps.data import BOS, EOS, PAD, grammar_task
from attention_steps.data.grammar import (
    GRAMMAR,
    Choice,
    Seq,
    Word,
    entropy,
    expected_length,
    maybe,
    one_of,
    probability,
    sample,
    words,
)


def test_every_sampled_sentence_has_exactly_one_derivation():
    """The chart parse sums the probability of every way to generate a sentence; if it equals the probability of
    the one derivation that made it, no other derivation exists — so the entropy of the choices is that of the text."""
    rng = random.Random(1)
    for _ in range(1500):
        tokens, logp = sample(GRAMMAR, rng)
        assert math.log(probability(GRAMMAR, tokens)) == pytest.approx(logp, abs=1e-9), " ".join(tokens)


def test_the_parse_notices_an_ambiguous_grammar():
    ambiguous = Seq((maybe(0.5, words("big")), maybe(0.5, words("big"))))  # "big" two ways
    assert probability(ambiguous, ["big"]) == pytest.approx(0.5)  # 0.25 + 0.25: two derivations
    assert probability(ambiguous, ["big", "big"]) == pytest.approx(0.25)


def test_entropy_and_length_match_the_samples():
    rng = random.Random(2)
    draws = [sample(GRAMMAR, rng) for _ in range(4000)]
    info = [-lp for _, lp in draws]
    mean = sum(info) / len(info)
    sd = math.sqrt(sum((x - mean) ** 2 for x in info) / (len(info) - 1))
    assert abs(mean - entropy(GRAMMAR)) < 4 * sd / math.sqrt(len(info))
    lengths = [len(t) for t, _ in draws]
    assert sum(lengths) / len(lengths) == pytest.approx(expected_length(GRAMMAR), rel=0.03)


def test_entropy_of_small_trees_by_hand():
    coin = Choice(((0.5, Word("heads")), (0.5, Word("tails"))))
    assert entropy(coin) == pytest.approx(math.log(2))
    assert entropy(Seq((coin, coin))) == pytest.approx(2 * math.log(2))
    skewed = Choice(((0.9, Word("a")), (0.1, Seq((Word("b"), coin)))))
    assert entropy(skewed) == pytest.approx(-0.9 * math.log(0.9) - 0.1 * math.log(0.1) + 0.1 * math.log(2))
    assert expected_length(skewed) == pytest.approx(0.9 + 0.1 * 2)
    with pytest.raises(ValueError):
        Choice(((0.5, Word("a")), (0.6, Word("b"))))
    zipf = one_of("a", "b", "c")  # Zipf's weights 1, 1/2, 1/3: a most likely word, never an exact tie
    assert [p for p, _ in zipf.options] == pytest.approx([6 / 11, 3 / 11, 2 / 11])


def test_agreement_reaches_across_the_relative_clause():
    """The main verb agrees with the subject, not with the nearer noun of the relative clause; the pronoun too."""
    rng = random.Random(3)
    seen = 0
    for _ in range(3000):
        tokens, _ = sample(GRAMMAR, rng)
        if "that" in tokens and "and" in tokens:
            seen += 1
            subject_plural = tokens[tokens.index("that") - 1].endswith("s")
            assert tokens[tokens.index("and") + 1] == ("they" if subject_plural else "it"), " ".join(tokens)
    assert seen > 50


def test_grammar_task_splits_and_floor():
    task = grammar_task(n_train=300, n_valid=50, n_test=60, seed=0)
    again = grammar_task(n_train=300, n_valid=50, n_test=60, seed=0)
    assert task.train.texts == again.train.texts and len(task.valid) == 50 and len(task.test) == 60
    row = task.train.tokens[0]
    n = len(task.train.texts[0].split())
    assert row[0] == BOS and row[n + 1] == EOS and (row[n + 2 :] == PAD).all()
    assert task.decode(row) == task.train.texts[0]
    assert task.encode("the cat")[0] == BOS
    assert task.entropy_per_token == pytest.approx(entropy(GRAMMAR) / (expected_length(GRAMMAR) + 1))
    assert 1.0 < task.entropy_per_token < 2.5  # nats per token: a real task, far from both 0 and log(V)
    three = grammar_task(n_train=200, n_valid=10, n_test=10, sentences_per_row=3, seed=1)
    assert all(text.count(" .") == 3 for text in three.train.texts)
    assert three.entropy_per_token == pytest.approx(3 * entropy(GRAMMAR) / (3 * expected_length(GRAMMAR) + 1))
    with pytest.raises(ValueError):
        grammar_task(n_train=1, n_valid=1, n_test=1, sentences_per_row=0)
