"""Date-format conversion: "september 27, 1994" → "1994-09-27", in many input formats, generated with a seed.

Dates lie between 1950-01-01 and 2049-12-31 so a two-digit year is never ambiguous (50–99 → 19xx, 00–49 → 20xx).
Slashes always put the month first (US style), dots always the day first (European style).
"""

from __future__ import annotations

import datetime as dt
import random

from .vocab import TranslationTask, Vocab, translation_task

MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
          "november", "december"]
WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]

FIRST_DAY = dt.date(1950, 1, 1)
LAST_DAY = dt.date(2049, 12, 31)

#: Characters a source string may hold (fixed, so ids never depend on the sample).
SOURCE_CHARS = " ,-./0123456789abcdefghijklmnopqrstuvwxyz"
TARGET_CHARS = "-0123456789"
#: Longest source ("wednesday, september 27, 1994") and target (BOS + "1994-09-27" + EOS).
SOURCE_LEN = 29
TARGET_LEN = 12


def _formats(d: dt.date) -> list[str]:
    m, day, y = d.month, d.day, d.year
    month, mon = MONTHS[m - 1], MONTHS[m - 1][:3]
    wday, wd = WEEKDAYS[d.weekday()], WEEKDAYS[d.weekday()][:3]
    yy = f"{y % 100:02d}"
    return [
        f"{month} {day}, {y}",
        f"{mon} {day}, {y}",
        f"{month} {day} {y}",
        f"{day} {month} {y}",
        f"{day} {mon} {y}",
        f"{day:02d} {mon}, {y}",
        f"{day:02d}-{mon}-{y}",
        f"{m}/{day}/{yy}",
        f"{m:02d}/{day:02d}/{y}",
        f"{day:02d}.{m:02d}.{y}",
        f"{day}.{m}.{yy}",
        f"{y}/{m:02d}/{day:02d}",
        f"{wday}, {month} {day}, {y}",
        f"{wd}, {mon} {day}, {y}",
        f"{wday} {day} {month} {y}",
    ]


N_FORMATS = len(_formats(FIRST_DAY))


def date_pairs(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """``n`` distinct (source, target) pairs in a fixed order for a given seed."""
    rng = random.Random(seed)
    span = (LAST_DAY - FIRST_DAY).days
    seen: set[str] = set()
    pairs: list[tuple[str, str]] = []
    while len(pairs) < n:
        d = FIRST_DAY + dt.timedelta(days=rng.randrange(span + 1))
        src = _formats(d)[rng.randrange(N_FORMATS)]
        if src in seen:
            continue
        seen.add(src)
        pairs.append((src, d.isoformat()))
    return pairs


def date_task(n_train: int = 20_000, n_valid: int = 1_000, n_test: int = 2_000, seed: int = 0) -> TranslationTask:
    """The dates task: character-level sources and targets, disjoint train / validation / test source strings.

    With the defaults the 2,000 test strings are the course's fixed held-out set: never used for training or tuning.
    ``src`` is padded to 29 characters, ``tgt`` is ``BOS YYYY-MM-DD EOS`` (12 ids).
    """
    return translation_task("dates", date_pairs(n_test + n_valid + n_train, seed),
                            (Vocab(SOURCE_CHARS), Vocab(TARGET_CHARS)), (list, list), "", n_train=n_train,
                            n_valid=n_valid, n_test=n_test, src_len=SOURCE_LEN, tgt_len=TARGET_LEN)
