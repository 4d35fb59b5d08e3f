"""Drawing small graphs with matplotlib alone (notebook 09): nodes coloured by a value, edges by a weight."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.colors import ListedColormap


def _numpy(x) -> np.ndarray:
    return x.detach().float().cpu().numpy() if hasattr(x, "detach") else np.asarray(x, dtype=float)


def draw_graph(
    positions,
    edges: Sequence[tuple[int, int]],
    *,
    ax=None,
    node_values=None,
    node_colors=None,
    node_cmap: str = "viridis",
    node_vmin: float | None = None,
    node_vmax: float | None = None,
    node_size: float = 120.0,
    labels: Sequence[str] | None = None,
    label_size: float = 7.0,
    edge_values: Mapping[tuple[int, int], float] | None = None,
    edge_cmap: str = "magma_r",
    edge_vmax: float | None = None,
    edge_width: float = 1.2,
    highlight: Sequence[int] = (),
    title: str | None = None,
    colorbar: str | None = None,
):
    """Draw a graph at ``positions`` (N, 2).

    - ``edges``: pairs (i, j); drawn as straight segments, grey unless ``edge_values[(i, j)]`` gives a weight, in
      which case the segment is coloured by ``edge_cmap`` and its width grows with the weight.
    - ``node_values`` (N,) colours nodes with ``node_cmap``; or ``node_colors`` gives one colour per node.
    - ``labels`` writes a name beside each node; ``highlight`` rings the given nodes in red.
    - ``colorbar``: a label for a colour bar of the node values (or of the edge weights when no node values).
    """
    pos = _numpy(positions)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 5))
    segments = [(pos[i], pos[j]) for i, j in edges]
    edge_artist = None
    if edge_values is not None:
        vals = np.array([edge_values.get((i, j), edge_values.get((j, i), 0.0)) for i, j in edges], dtype=float)
        vmax = edge_vmax if edge_vmax is not None else max(float(vals.max(initial=0.0)), 1e-9)
        widths = edge_width * (0.4 + 3.0 * np.clip(vals / vmax, 0, 1))
        # the light end of a colour map (white-yellow for magma_r) vanishes on a white page: start it at 20 %, and
        # draw every edge over a thin grey line, so an edge of weight ~0 is still visibly an edge
        cmap = plt.get_cmap(edge_cmap)
        cmap = ListedColormap(cmap(np.linspace(0.2, 1.0, 256)), name=f"{cmap.name}_visible")
        ax.add_collection(LineCollection(segments, colors="0.75", linewidths=0.5, zorder=0.9))
        edge_artist = LineCollection(segments, cmap=cmap, linewidths=widths, zorder=1)
        edge_artist.set_array(vals)
        edge_artist.set_clim(0.0, vmax)
    else:
        edge_artist = LineCollection(segments, colors="0.6", linewidths=edge_width, zorder=1)
    ax.add_collection(edge_artist)
    node_artist = None
    if node_values is not None:
        node_artist = ax.scatter(pos[:, 0], pos[:, 1], c=_numpy(node_values), cmap=node_cmap, vmin=node_vmin,
                                 vmax=node_vmax, s=node_size, edgecolors="black", linewidths=0.6, zorder=2)
    else:
        ax.scatter(pos[:, 0], pos[:, 1], c=node_colors if node_colors is not None else "white", s=node_size,
                   edgecolors="black", linewidths=0.6, zorder=2)
    if len(highlight):
        idx = list(highlight)
        ax.scatter(pos[idx, 0], pos[idx, 1], s=node_size * 2.2, facecolors="none", edgecolors="red", linewidths=2,
                   zorder=3)
    if labels is not None:
        span = float(np.ptp(pos[:, 1])) or 1.0
        for (px, py), name in zip(pos, labels):
            ax.text(px, py + 0.035 * span, name, ha="center", va="bottom", fontsize=label_size, zorder=4)
    if colorbar:
        mappable = node_artist if node_artist is not None else (edge_artist if edge_values is not None else None)
        if mappable is not None:
            ax.figure.colorbar(mappable, ax=ax, fraction=0.046, pad=0.02, label=colorbar)
    ax.set_aspect("equal", adjustable="datalim")
    ax.autoscale_view()
    ax.set_xticks([])
    ax.set_yticks([])
    for side in ax.spines.values():
        side.set_visible(False)
    if title:
        ax.set_title(title)
    return ax
