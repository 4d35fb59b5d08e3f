"""Hidden tests judged outside the learner's process.

A graded item's hidden tests are not code in the notebook: they are :class:`probe.Step`\\ s here, one module per
notebook. At grading time the grader draws a seed, writes each item's inputs as ``.npy`` files, lets a small probe in
the kernel (``autograder/kernel/grading_probe.py``) call the learner's definitions on them, reads the outputs back
as data and compares them, in its own process, with references it computes itself (``expect.py``). The test cell
earns its points only when it raised nothing *and* this comparison passed (``autograder/scoring.py``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np

from . import (
    attention_at_scale,
    bahdanau,
    dot_product_attention,
    message_passing,
    multi_head_attention,
    orientation,
    rnn,
    senet,
    seq2seq,
    transformer,
    vision_transformer,
)
from .probe import Step, Verdict, collect_item, judge_collected, run_item

#: the module of each assignment's checks (its source is hidden-test text: it must never reach a learner)
MODULES = {"00_orientation": orientation, "01_rnn": rnn, "02_seq2seq": seq2seq, "03_bahdanau_attention": bahdanau,
           "04_senet": senet, "05_dot_product_attention": dot_product_attention,
           "06_multi_head_attention": multi_head_attention, "07_transformer": transformer,
           "08_vision_transformer": vision_transformer,
           "09_attention_as_message_passing": message_passing, "10_attention_at_scale": attention_at_scale}

#: assignment -> {grade_id -> steps(rng)}; an assignment listed here has every graded item judged outside the kernel
CHECKS: dict[str, dict[str, Callable[[np.random.Generator], list[Step]]]] = {
    assignment: module.ITEMS for assignment, module in MODULES.items()
}


def has_check(assignment: str, grade_id: str) -> bool:
    return grade_id in CHECKS.get(assignment, {})


def steps_for(assignment: str, grade_id: str, seed: int) -> list[Step]:
    """The hidden tests of one item for one grading run (``seed``: drawn per run, so inputs differ every time)."""
    digest = hashlib.sha256(f"{seed}:{assignment}:{grade_id}".encode()).digest()
    return CHECKS[assignment][grade_id](np.random.default_rng(int.from_bytes(digest[:8], "little")))


async def judge_item(assignment: str, grade_id: str, seed: int, host_folder: Path, kernel_folder: str,
                     execute: Callable[[str], Awaitable[bool]]) -> Verdict:
    """Run one item's hidden tests through the probe and judge them here (see :func:`probe.run_item`)."""
    return await run_item(steps_for(assignment, grade_id, seed), host_folder, kernel_folder, execute)


async def collect(assignment: str, grade_id: str, seed: int, host_folder: Path, kernel_folder: str,
                  execute: Callable[[str], Awaitable[bool]]) -> dict:
    """Where the kernel runs: one item's hidden tests through the probe, the kernel's results taken back as bytes."""
    return await collect_item(steps_for(assignment, grade_id, seed), host_folder, kernel_folder, execute)


def judge(assignment: str, grade_id: str, seed: int, collected: dict | None) -> Verdict:
    """Where the grader decides: the item's steps drawn again from ``seed``, the collected results judged as data."""
    return judge_collected(steps_for(assignment, grade_id, seed), collected)


def source_lines(assignment: str) -> set[str]:
    """Every distinctive line of an assignment's hidden tests here (for the checks that none reaches a learner)."""
    module = MODULES.get(assignment)
    if module is None:
        return set()
    lines = Path(module.__file__).read_text().splitlines()
    return {s for line in lines if len(s := line.strip()) >= 20 and not s.startswith(("#", '"""', "from ", "import "))}
