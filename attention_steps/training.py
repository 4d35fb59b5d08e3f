"""A small, explicit training loop with a progress bar and a loss history."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from .device import amp_dtype
from .mode import fast_path


@dataclass
class History:
    """What :func:`train` records: the loss at every step, optional evaluations, and wall-clock seconds."""

    losses: list[float] = field(default_factory=list)
    evals: list[tuple[int, float]] = field(default_factory=list)
    seconds: float = 0.0

    def smoothed(self, window: int = 20) -> list[float]:
        """Running mean of the loss over ``window`` steps (for plots)."""
        out, total = [], 0.0
        for i, loss in enumerate(self.losses):
            total += loss
            if i >= window:
                total -= self.losses[i - window]
            out.append(total / min(i + 1, window))
        return out


def batch_sampler(*tensors: torch.Tensor, batch_size: int, seed: int = 0, device=None) -> Callable[[int], tuple]:
    """Return ``get(step) -> tuple of batches``: shuffled mini-batches, a fresh permutation every epoch.

    All tensors share their first dimension; batches are moved to ``device`` when given.
    """
    n = tensors[0].shape[0]
    if any(t.shape[0] != n for t in tensors):
        raise ValueError(f"tensors disagree on their first dimension: {[tuple(t.shape) for t in tensors]}")
    batch_size = min(batch_size, n)
    per_epoch = n // batch_size
    gen = torch.Generator().manual_seed(seed)
    state = {"epoch": -1, "perm": None}

    def get(step: int) -> tuple:
        epoch, k = divmod(step, per_epoch)
        if epoch != state["epoch"]:
            state["epoch"], state["perm"] = epoch, torch.randperm(n, generator=gen)
        idx = state["perm"][k * batch_size : (k + 1) * batch_size]
        return tuple(t[idx].to(device) if device is not None else t[idx] for t in tensors)

    return get


def train(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[torch.nn.Module, Sequence], torch.Tensor],
    batches: Callable[[int], Sequence],
    steps: int,
    *,
    scheduler=None,
    clip_grad: float | None = 1.0,
    evaluate: Callable[[], float] | None = None,
    eval_every: int = 0,
    amp: bool | None = None,
    desc: str = "training",
) -> History:
    """Train ``model`` for ``steps`` optimiser steps and return its :class:`History`.

    - ``batches(step)`` gives the batch for a step (see :func:`batch_sampler`);
    - ``loss_fn(model, batch)`` returns the scalar loss;
    - ``evaluate()`` (optional) returns a figure to record every ``eval_every`` steps and at the end;
    - ``amp`` uses float16 autocast with loss scaling on CUDA (default: on when the model is on CUDA).

    A tqdm bar shows the running loss, and a line printed at the end its final figures (a bar drawn as a widget is
    not saved with an executed notebook; the line is); both stay quiet on the grading fast path.
    """
    device = next(model.parameters()).device
    dtype = amp_dtype(device) if amp is None or amp else None
    scaler = torch.amp.GradScaler(device.type) if dtype == torch.float16 else None
    history = History()
    start = time.perf_counter()
    model.train()
    bar = tqdm(range(steps), desc=desc, disable=fast_path(), leave=True)
    for step in bar:
        batch = batches(step)
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            loss = loss_fn(model, batch)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
        else:
            loss.backward()
        if clip_grad is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        if scheduler is not None:
            scheduler.step()
        history.losses.append(loss.item())
        last = step + 1 == steps
        if evaluate is not None and ((eval_every and (step + 1) % eval_every == 0) or last):
            model.eval()
            with torch.no_grad():
                history.evals.append((step + 1, float(evaluate())))
            model.train()
        if step % 10 == 0 or last:
            post = {"loss": f"{history.smoothed(10)[-1]:.4f}"}
            if history.evals:
                post["eval"] = f"{history.evals[-1][1]:.4f}"
            bar.set_postfix(post)
    model.eval()
    history.seconds = time.perf_counter() - start
    if not fast_path() and steps:
        # a widget bar is not saved with an executed notebook (a copy shows "0/400"): this line always is
        summary = f"{desc}: {steps} steps in {history.seconds:.1f} s, loss {history.smoothed(10)[-1]:.4f}"
        print(summary + (f", eval {history.evals[-1][1]:.4f}" if history.evals else ""))
    return history
