"""A toy English → Japanese corpus from a small template grammar, after the seeds' "this is a pen → これ は ペン です".

English is subject–verb–object; Japanese is subject–object–verb, with particles (は, を, で, に) and the place and
time phrases moved in front of the verb. Attention heatmaps on this data show that reordering.
Both sides are lower-case and split into words by spaces (Japanese pre-segmented), so a token is a word.
"""

from __future__ import annotations

import itertools
import random

from .vocab import TranslationTask, Vocab, translation_task

# subject: English, Japanese, takes the third-person "-s"
SUBJECTS = [
    ("i", "私", False), ("you", "あなた", False), ("we", "私たち", False), ("they", "彼ら", False),
    ("he", "彼", True), ("she", "彼女", True), ("the teacher", "先生", True), ("the student", "学生", True),
    ("my sister", "私 の 姉", True), ("tom", "トム", True),
]
# noun: English, Japanese, article ("a" for countable, "the", or "" for mass nouns)
NOUNS = {
    "apple": ("apple", "りんご", "a"), "bread": ("bread", "パン", ""), "rice": ("rice", "ご飯", ""),
    "fish": ("fish", "魚", ""), "cake": ("cake", "ケーキ", "a"), "water": ("water", "水", ""),
    "tea": ("tea", "お茶", ""), "coffee": ("coffee", "コーヒー", ""), "milk": ("milk", "牛乳", ""),
    "book": ("book", "本", "a"), "newspaper": ("newspaper", "新聞", "the"), "letter": ("letter", "手紙", "a"),
    "pen": ("pen", "ペン", "a"), "car": ("car", "車", "a"), "bag": ("bag", "かばん", "a"),
    "movie": ("movie", "映画", "a"), "bird": ("bird", "鳥", "a"), "cat": ("cat", "猫", "a"),
    "dog": ("dog", "犬", "a"),
}
# verb: base, third person, past, Japanese present, Japanese past, objects
VERBS = [
    ("eat", "eats", "ate", "食べる", "食べた", ["apple", "bread", "rice", "fish", "cake"]),
    ("drink", "drinks", "drank", "飲む", "飲んだ", ["water", "tea", "coffee", "milk"]),
    ("read", "reads", "read", "読む", "読んだ", ["book", "newspaper", "letter"]),
    ("write", "writes", "wrote", "書く", "書いた", ["letter", "book"]),
    ("buy", "buys", "bought", "買う", "買った", ["pen", "book", "car", "bag", "bread", "cake"]),
    ("see", "sees", "saw", "見る", "見た", ["movie", "bird", "cat", "dog", "car"]),
]
ADJECTIVES = [("big", "大きい"), ("small", "小さい"), ("red", "赤い"), ("new", "新しい"), ("old", "古い")]
PLACES = [("in the park", "公園 で"), ("at home", "家 で"), ("at school", "学校 で"),
          ("in the library", "図書館 で"), ("at the station", "駅 で")]
# time: English, Japanese, tense it forces ("present", "past" or None for either)
TIMES = [("every day", "毎日", "present"), ("every morning", "毎朝", "present"), ("today", "今日", None),
         ("yesterday", "昨日", "past"), ("on sunday", "日曜日 に", None)]
DEMONSTRATIVES = [("this", "これ"), ("that", "あれ")]
COPULA_NOUNS = ["pen", "book", "cat", "dog", "car", "bag", "apple", "letter", "bird"]


def _noun_phrase(noun: str, adjective: tuple[str, str] | None) -> tuple[str, str]:
    en, ja, article = NOUNS[noun]
    words = [adjective[0], en] if adjective else [en]
    if article == "a":
        article = "an" if words[0][0] in "aeiou" else "a"
    en_np = " ".join(([article] if article else []) + words)
    ja_np = f"{adjective[1]} {ja}" if adjective else ja
    return en_np, ja_np


def _sentences():
    adjectives = [None, *ADJECTIVES]
    for (s_en, s_ja, third), (base, s_form, past, ja_now, ja_past, objects), adj, place, time in itertools.product(
        SUBJECTS, VERBS, adjectives, [None, *PLACES], [None, *TIMES]
    ):
        tenses = ["present", "past"] if time is None or time[2] is None else [time[2]]
        for noun, tense in itertools.product(objects, tenses):
            if adj is not None and NOUNS[noun][2] == "":  # "red water": skip adjectives on mass nouns
                continue
            present = s_form if third else base
            if tense == "past" and past == present and (time is None or time[2] is None):
                continue  # "i read a book" could be either tense: keep only the present, so English is unambiguous
            o_en, o_ja = _noun_phrase(noun, adj)
            verb = past if tense == "past" else present
            en = " ".join(p for p in [s_en, verb, o_en, place and place[0], time and time[0]] if p)
            ja = " ".join(p for p in [s_ja, "は", time and time[1], place and place[1], o_ja, "を",
                                      ja_past if tense == "past" else ja_now] if p)
            yield en, ja
    for (d_en, d_ja), noun, adj in itertools.product(DEMONSTRATIVES, COPULA_NOUNS, adjectives):
        o_en, o_ja = _noun_phrase(noun, adj)
        yield f"{d_en} is {o_en}", f"{d_ja} は {o_ja} です"


def _vocabularies(pairs) -> tuple[Vocab, Vocab]:
    en, ja = set(), set()
    for e, j in pairs:
        en.update(e.split())
        ja.update(j.split())
    return Vocab(sorted(en)), Vocab(sorted(ja))


def en_ja_pairs(seed: int = 0) -> list[tuple[str, str]]:
    """Every sentence pair the grammar makes, shuffled in a fixed order for ``seed``.

    Each English sentence has exactly one translation, so held-out sentences are truly unseen.
    """
    pairs = sorted(set(_sentences()))
    if len({en for en, _ in pairs}) != len(pairs):
        raise AssertionError("the grammar produced an English sentence with two translations")
    random.Random(seed).shuffle(pairs)
    return pairs


def en_ja_task(n_train: int = 12_000, n_valid: int = 500, n_test: int = 1_000, seed: int = 0) -> TranslationTask:
    """The toy EN→JA task: word-level, disjoint splits; the test sentences are never seen in training."""
    pairs = en_ja_pairs(seed)
    src_len = max(len(e.split()) for e, _ in pairs)
    tgt_len = max(len(j.split()) for _, j in pairs) + 2
    return translation_task("en_ja", pairs, _vocabularies(pairs), (str.split, str.split), " ", n_train=n_train,
                            n_valid=n_valid, n_test=n_test, src_len=src_len, tgt_len=tgt_len)
