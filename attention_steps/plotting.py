"""Plots the notebooks share: loss curves, token-labelled attention heatmaps, image grids.

Importing this module registers a bundled Japanese font (IPAexGothic from the ``matplotlib-fontja`` package) as a
fallback, so labels such as "私 は りんご を 食べる" render as glyphs, not boxes. On the grading fast path figures
are closed instead of rendered.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping, Sequence

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from matplotlib import font_manager

from .mode import is_grading

JAPANESE_FONT = "IPAexGothic"


def _register_japanese_font() -> bool:
    spec = importlib.util.find_spec("matplotlib_fontja")
    if spec is None or not spec.submodule_search_locations:
        return False
    path = os.path.join(spec.submodule_search_locations[0], "fonts", "ipaexg.ttf")
    if not os.path.exists(path):
        return False
    font_manager.fontManager.addfont(path)
    # Glyph fallback follows an explicit family list (a generic "sans-serif" takes only its first font):
    # Latin text keeps the default font, Japanese falls back to IPAexGothic (matplotlib >= 3.6).
    family = [f for f in matplotlib.rcParams["font.family"] if f != JAPANESE_FONT]
    if family == ["sans-serif"]:
        family = list(matplotlib.rcParams["font.sans-serif"][:1])
    matplotlib.rcParams["font.family"] = [*family, JAPANESE_FONT]
    return True


HAS_JAPANESE_FONT = _register_japanese_font()


def show(fig: plt.Figure | None = None) -> None:
    """Display ``fig`` (the current figure by default); while nbgrader grades or validates, close it without drawing.

    ``ATTENTION_STEPS_FAST=1`` alone (the small sizes, e.g. for the browser tests) still draws: what the learner sees.
    """
    fig = fig or plt.gcf()
    if is_grading():
        plt.close(fig)
    else:
        plt.show()


def _values(history) -> list[float]:
    return list(history.losses) if hasattr(history, "losses") else list(history)


def plot_losses(histories: Mapping[str, object], *, smooth: int = 20, log: bool = True, ax=None, title="Training loss"):
    """Loss curves of several runs on one axis: ``{"label": History or list of losses}``."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    for label, history in histories.items():
        values = np.asarray(_values(history), dtype=float)
        if smooth > 1 and len(values) > smooth:
            kernel = np.ones(smooth) / smooth
            values = np.convolve(values, kernel, mode="valid")
        ax.plot(np.arange(len(values)) + 1, values, label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("loss" + (f" (mean of {smooth} steps)" if smooth > 1 else ""))
    if log:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return ax


def attention_heatmap(
    weights,
    query_labels: Sequence[str] | None = None,
    key_labels: Sequence[str] | None = None,
    *,
    ax=None,
    title: str | None = None,
    cmap: str = "viridis",
    colorbar: bool = True,
    vmax: float | None = None,
):
    """Heatmap of a (T_query, T_key) weight matrix, rows labelled by queries and columns by keys.

    The colour scale runs from 0 to ``vmax`` (default: the matrix's own maximum); pass the same ``vmax`` to heatmaps
    that sit side by side, so equal colours mean equal weights.
    """
    w = weights.detach().float().cpu().numpy() if hasattr(weights, "detach") else np.asarray(weights, dtype=float)
    if w.ndim != 2:
        raise ValueError(f"attention_heatmap expects a (T_query, T_key) matrix, got shape {w.shape}")
    if ax is None:
        _, ax = plt.subplots(figsize=(0.35 * w.shape[1] + 2, 0.35 * w.shape[0] + 1.5))
    top = float(w.max()) if vmax is None else vmax
    image = ax.imshow(w, cmap=cmap, vmin=0.0, vmax=max(1e-9, top), aspect="auto")
    for labels, set_ticks, set_labels, n in (
        (key_labels, ax.set_xticks, ax.set_xticklabels, w.shape[1]),
        (query_labels, ax.set_yticks, ax.set_yticklabels, w.shape[0]),
    ):
        if labels is not None:
            if len(labels) != n:
                raise ValueError(f"{len(labels)} labels for an axis of length {n}")
            set_ticks(range(n))
            set_labels([repr(t)[1:-1] if t == " " else t for t in labels])
    if key_labels is not None:
        plt.setp(ax.get_xticklabels(), rotation=90 if max(len(str(t)) for t in key_labels) > 2 else 0)
    ax.set_xlabel("key (attended to)")
    ax.set_ylabel("query")
    if title:
        ax.set_title(title)
    if colorbar:
        ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    return ax


def attention_grid(weights, query_labels=None, key_labels=None, *, titles=None, ncols=4, suptitle=None):
    """One heatmap per head (or layer): ``weights`` is (H, T_query, T_key).

    All panels share one colour scale, from 0 to the largest weight of any panel, shown by one colour bar; panels
    grow with the number of labels, and long label lists get a smaller font, so the ticks do not overlap.
    """
    n, t_query, t_key = weights.shape
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    width, height = max(3.2, 0.17 * t_key + 1.2), max(3.0, 0.17 * t_query + 1.2)
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols + 0.8, height * nrows), squeeze=False)
    top = float(weights.max())
    for i, ax in enumerate(axes.flat):
        if i >= n:
            ax.axis("off")
            continue
        attention_heatmap(weights[i], query_labels, key_labels, ax=ax, colorbar=False, vmax=top,
                          title=titles[i] if titles else f"head {i}")
        if max(t_query, t_key) > 16:
            ax.tick_params(labelsize=6)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    fig.colorbar(axes.flat[0].images[0], ax=axes.ravel().tolist(), fraction=0.02, pad=0.01, label="weight")
    return fig


def image_grid(images, labels: Sequence[str] | None = None, *, ncols: int = 8, cmap: str = "gray", size=1.2):
    """Show (N, H, W), (N, 1, H, W) or (N, 3, H, W) images in a grid, with optional captions."""
    x = images.detach().float().cpu().numpy() if hasattr(images, "detach") else np.asarray(images, dtype=float)
    if x.ndim == 4:
        x = x[:, 0] if x.shape[1] == 1 else x.transpose(0, 2, 3, 1)
    n = x.shape[0]
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + 0.3 * (labels is not None)),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(x[i], cmap=cmap if x[i].ndim == 2 else None)
            if labels is not None:
                ax.set_title(str(labels[i]), fontsize=9)
    fig.tight_layout()
    return fig
