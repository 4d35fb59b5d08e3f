"""The course's data sets, all generated with a fixed seed or shipped with a package: nothing is downloaded.

Every text data set uses the same special ids: ``PAD = 0``, ``BOS = 1``, ``EOS = 2``.
"""

from .dates import date_task
from .digits import DigitsSplit, load_digits_split
from .en_ja import en_ja_task
from .grammar import LanguageSplit, LanguageTask, grammar_task
from .recall import recall_task
from .sequences import sequence_task
from .vocab import BOS, EOS, PAD, SPECIALS, Seq2SeqSplit, TranslationTask, Vocab, pad_sequences

__all__ = [
    "BOS",
    "EOS",
    "PAD",
    "SPECIALS",
    "DigitsSplit",
    "LanguageSplit",
    "LanguageTask",
    "Seq2SeqSplit",
    "TranslationTask",
    "Vocab",
    "date_task",
    "en_ja_task",
    "grammar_task",
    "load_digits_split",
    "pad_sequences",
    "recall_task",
    "sequence_task",
]
