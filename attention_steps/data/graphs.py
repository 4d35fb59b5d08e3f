"""Small graphs for notebook 09, built in code (nothing is downloaded, no graph library is needed).

- :func:`railway_graph`: sixteen central Tokyo stations on the Yamanote loop and the Chūō/Sōbu lines, laid out as
  on a schematic railway map — the "railway map" picture of a graph from the study decks.
- :func:`community_task`: a node-classification task on a stochastic block model (communities of nodes that link
  mostly among themselves), with noisy node features and fixed train / validation / test nodes.

Adjacency matrices here are plain 0/1 tensors with an empty diagonal; any normalisation is the notebook's job.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

# (name, x, y) on a schematic map, drawn the way maps on station walls are: true order and rough direction, not
# true distances (the real stations around Akihabara are too close together to label).
_STATIONS = [
    ("Tokyo", 5.0, 2.0),
    ("Kanda", 5.0, 3.0),
    ("Akihabara", 5.0, 4.0),
    ("Ueno", 5.0, 5.0),
    ("Nippori", 4.2, 6.0),
    ("Ikebukuro", 0.6, 6.0),
    ("Takadanobaba", 0.0, 4.6),
    ("Shinjuku", 0.0, 3.0),
    ("Shibuya", 0.0, 1.2),
    ("Ebisu", 0.8, 0.3),
    ("Meguro", 2.2, 0.0),
    ("Shinagawa", 3.8, 0.0),
    ("Shimbashi", 5.0, 1.0),
    ("Ochanomizu", 3.8, 3.6),
    ("Yotsuya", 2.0, 3.0),
    ("Nakano", -1.6, 3.6),
]
_LINES = {
    "Yamanote (loop)": ["Tokyo", "Kanda", "Akihabara", "Ueno", "Nippori", "Ikebukuro", "Takadanobaba", "Shinjuku",
                        "Shibuya", "Ebisu", "Meguro", "Shinagawa", "Shimbashi", "Tokyo"],
    "Chūō": ["Kanda", "Ochanomizu", "Yotsuya", "Shinjuku", "Nakano"],
    "Sōbu": ["Akihabara", "Ochanomizu"],
}


@dataclass
class Graph:
    """An undirected graph: ``adjacency`` (N, N) float32 with 0/1 entries and a zero diagonal."""

    names: list[str]
    positions: torch.Tensor  # (N, 2) float32, for drawing
    edges: list[tuple[int, int]]  # each undirected edge once, i < j
    adjacency: torch.Tensor
    lines: dict[str, list[str]]

    @property
    def num_nodes(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        return self.names.index(name)


def _adjacency(n: int, edges: list[tuple[int, int]]) -> torch.Tensor:
    adj = torch.zeros(n, n)
    for i, j in edges:
        adj[i, j] = adj[j, i] = 1.0
    return adj


def railway_graph() -> Graph:
    """Sixteen Tokyo stations (nodes) joined by the track between neighbouring stops (edges).

    Positions are those of a schematic map (for drawing only).
    """
    names = [s[0] for s in _STATIONS]
    positions = torch.tensor([[x, y] for _, x, y in _STATIONS], dtype=torch.float32)
    edges = set()
    for stops in _LINES.values():
        for a, b in zip(stops[:-1], stops[1:]):
            i, j = sorted((names.index(a), names.index(b)))
            edges.add((i, j))
    edges = sorted(edges)
    return Graph(names, positions, edges, _adjacency(len(names), edges), {k: list(v) for k, v in _LINES.items()})


@dataclass
class CommunityTask:
    """Node classification on one graph.

    ``x`` (N, F) float32 node features, ``y`` (N,) int64 community labels, ``adjacency`` (N, N) 0/1 float32 with a
    zero diagonal; ``train`` / ``valid`` / ``test`` are int64 node indices (disjoint). ``positions`` (N, 2) is a
    drawing layout: each community in its own cluster.
    """

    x: torch.Tensor
    y: torch.Tensor
    adjacency: torch.Tensor
    train: torch.Tensor
    valid: torch.Tensor
    test: torch.Tensor
    positions: torch.Tensor
    num_classes: int

    @property
    def edges(self) -> list[tuple[int, int]]:
        i, j = torch.nonzero(torch.triu(self.adjacency, diagonal=1), as_tuple=True)
        return list(zip(i.tolist(), j.tolist()))


def community_task(
    num_classes: int = 4,
    nodes_per_class: int = 60,
    p_in: float = 0.08,
    p_out: float = 0.02,
    num_features: int = 16,
    signal: float = 0.7,
    train_per_class: int = 10,
    valid_per_class: int = 10,
    seed: int = 0,
) -> CommunityTask:
    """A stochastic block model: an edge joins two nodes of the same community with probability ``p_in`` and of
    different communities with probability ``p_out``. A node's features are its community's mean vector (length
    about ``signal`` per feature) plus N(0, 1) noise, so features alone classify it poorly and its neighbours help.

    ``train_per_class`` and ``valid_per_class`` nodes of each community are labelled for training and validation;
    every other node is a test node. The same ``seed`` always gives the same task.
    """
    gen = torch.Generator().manual_seed(seed)
    n = num_classes * nodes_per_class
    y = torch.arange(num_classes).repeat_interleave(nodes_per_class)
    same = y[:, None] == y[None, :]
    prob = torch.where(same, torch.tensor(p_in), torch.tensor(p_out))
    upper = torch.triu(torch.rand(n, n, generator=gen) < prob, diagonal=1)
    adj = (upper | upper.T).float()
    means = torch.randn(num_classes, num_features, generator=gen) * signal
    x = means[y] + torch.randn(n, num_features, generator=gen)
    train, valid, test = [], [], []
    for c in range(num_classes):
        members = torch.nonzero(y == c).flatten()
        members = members[torch.randperm(len(members), generator=gen)]
        train.append(members[:train_per_class])
        valid.append(members[train_per_class:train_per_class + valid_per_class])
        test.append(members[train_per_class + valid_per_class:])
    # Layout: communities on a circle, nodes in a disc around their community's centre.
    angle = 2 * math.pi * y.float() / num_classes
    centre = torch.stack([torch.cos(angle), torch.sin(angle)], dim=1) * 2.2
    r = torch.rand(n, generator=gen).sqrt()
    theta = torch.rand(n, generator=gen) * 2 * math.pi
    positions = centre + torch.stack([r * torch.cos(theta), r * torch.sin(theta)], dim=1)
    return CommunityTask(x, y, adj, torch.cat(train).sort().values, torch.cat(valid).sort().values,
                         torch.cat(test).sort().values, positions, num_classes)
