"""Device choice, seeding and mixed precision."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

THREADS_ENV = "ATTENTION_STEPS_THREADS"
COURSE_THREADS = 1  # measured with `make bench` / `make bench-load`, --threads 1 and 2 (README, "Measured")


def use_course_threads() -> int:
    """Give torch the CPU thread count chosen for the course's small models; return it.

    One thread: on an idle 2-core machine two threads run the notebooks 1.15–1.4× faster, but beside other busy
    programs — or a second notebook training at the same time — they wait for each other at every operation (07
    had not finished after 420 s with two threads, 141 s with one; README, "Measured"). ``ATTENTION_STEPS_THREADS``
    overrides it. The helper package calls this once, when a notebook imports it.
    """
    threads = int(os.environ.get(THREADS_ENV) or COURSE_THREADS)
    torch.set_num_threads(max(threads, 1))
    return torch.get_num_threads()


def get_device(prefer: str | None = None) -> torch.device:
    """CUDA when present (Colab GPU runtime), otherwise the CPU.

    ``prefer`` (or the environment variable ``ATTENTION_STEPS_DEVICE``) forces a device, e.g. ``"cpu"``.
    Apple's MPS is not picked automatically: a few ops used in the course are slower or missing there.
    """
    choice = prefer or os.environ.get("ATTENTION_STEPS_DEVICE")
    if choice:
        return torch.device(choice)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def describe_device(device: torch.device | None = None) -> str:
    """One line saying what this notebook runs on, e.g. ``cpu (2 threads), torch 2.13.0``."""
    device = device or get_device()
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        mem = torch.cuda.get_device_properties(device).total_memory / 2**30
        what = f"cuda: {name}, {mem:.0f} GiB"
    else:
        threads = torch.get_num_threads()
        what = f"{device.type} ({threads} thread{'s' if threads != 1 else ''})"
    return f"{what}, torch {torch.__version__}"


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, NumPy and torch (CPU and CUDA); return a torch.Generator seeded the same way."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    return torch.Generator().manual_seed(seed)


def amp_dtype(device: torch.device) -> torch.dtype | None:
    """The mixed-precision dtype for ``device``: float16 on CUDA (a Colab T4 has no fast bfloat16), None on CPU."""
    return torch.float16 if device.type == "cuda" else None
