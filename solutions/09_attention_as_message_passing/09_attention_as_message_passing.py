# %% [markdown]
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/attention-step-by-step/attention-step-by-step/blob/main/course/09_attention_as_message_passing/09_attention_as_message_passing.ipynb)

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
# Setup — run this cell first.
# On Colab it installs the course's helper package, pinned to the course release; locally the README's set-up has
# installed it already and this cell does nothing.
import importlib.util
import os
import subprocess
import sys

PIP_SPEC = "attention-steps @ git+https://github.com/attention-step-by-step/attention-step-by-step@v0.1.0"


class SetupFailed(Exception):
    def _render_traceback_(self):  # Jupyter shows this one line, not a traceback
        return [f"Setup failed: {self}"]


def _why_pip_failed(log, spec):
    url, _, tag = spec.partition("git+")[2].rpartition("@")
    if any(s in log for s in ("Could not resolve host", "name resolution", "Network is unreachable",
                              "Failed to connect", "Connection timed out", "unable to connect")):
        return ("this runtime could not reach the internet to download the course's helper package; connect it "
                "(on Colab: Runtime > Connect) and run this cell again.")
    if "did not match any file(s) known to git" in log or "Remote branch" in log:
        return (f"the course release {tag} is not published in {url}; open this notebook again from the course's "
                "page (its Colab badge), or ask your instructor for the current link.")
    if any(s in log for s in ("not found", "not exported", "could not read Username",
                              "does not appear to be a git repository")):
        return (f"the course repository {url} does not exist (or is private); open this notebook again from the "
                "course's page (its Colab badge), or ask your instructor for the right link.")
    last = [line.strip() for line in log.splitlines() if line.strip()][-1:] or ["no message"]
    return (f"pip could not install the course's helper package ({last[0]}); run this cell again, and if it "
            "fails again, send this message to your instructor.")


if importlib.util.find_spec("attention_steps") is None:
    if os.path.isfile(os.path.join("..", "..", "attention_steps", "__init__.py")):
        raise SetupFailed("this notebook is in a local copy of the course, but its kernel's Python lacks the course's "
                          "environment; run `make course` in the course folder (README, Set-up) and open the "
                          "notebook in the JupyterLab it starts.")
    _spec = os.environ.get("ATTENTION_STEPS_PIP_SPEC", PIP_SPEC)
    _pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", _spec], capture_output=True, text=True,
                          env=dict(os.environ, GIT_TERMINAL_PROMPT="0"))  # never wait for a password
    if _pip.returncode != 0:
        raise SetupFailed(_why_pip_failed(_pip.stdout + _pip.stderr, _spec))

# %% [markdown]
# # 09 · Attention as message passing: graphs, masks, and self-attention inside a CNN
#
# The LiberalArts booklet (notebook 00 lists the sources) sums up the Transformer in a sentence worth a whole notebook: *the Transformer is a graph neural network whose graph is built automatically from the similarities of
# its words*. Words are the nodes; how strongly two words attend to each other is the weight of the edge between
# them; attention passes messages along those edges, and the feed-forward layer then updates each node on its own.
#
# This notebook makes that sentence concrete, in three steps.
#
# 1. **Message passing and graph convolution** on a real railway map. You write `graph_conv`, one layer of a graph
#    convolutional network (GCN): every station collects its neighbours' features through a *fixed* graph.
# 2. **Self-attention as message passing** on a graph whose edge weights are computed from the nodes themselves.
#    You write `attention_adjacency`, which returns attention weights *as a weighted adjacency matrix*. A mask is
#    then nothing but a graph: attention restricted to a graph is attention with that graph as its mask. We train
#    a GCN and graph-restricted attention on the same node-classification task and look at the edge weights
#    attention learned.
# 3. **Self-attention inside a CNN** (SAGAN). The pixels of a feature map are nodes too. You write
#    `SelfAttention2d`, the block that the Self-Attention GAN inserted between convolutions so that every position
#    can draw on the whole image, and watch where single pixels look.
#
# Everything runs on the CPU in well under a minute.

# %%
import math

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from attention_steps import by_mode, describe_device, get_device, report_metric, seed_everything
from attention_steps.data import load_digits_split
from attention_steps.data.graphs import community_task, railway_graph
from attention_steps.plotting import attention_heatmap, show
from attention_steps.plotting_graphs import draw_graph
from attention_steps.testing import assert_close, assert_tensor, expect_value_error, forbid, random_tensor
from attention_steps.training import batch_sampler, train

seed_everything(0)
device = get_device()
print("running on", describe_device(device))

# %% [markdown]
# ## 1 · A graph is a railway map
#
# A **graph** is a set of **nodes** joined by **edges**. The LiberalArts booklet's picture is a railway map: stations are nodes, and
# an edge joins two stations that are neighbouring stops on some line. Here are sixteen stations of central Tokyo:
# the Yamanote loop, and the Chūō and Sōbu lines that cut across it.
#
# A computer stores the map as an **adjacency matrix** $A$ (隣接行列): $A_{ij} = 1$ when stations $i$ and $j$ are
# joined, $0$ otherwise. The map is undirected, so $A$ is symmetric; the **degree** $\deg_i = \sum_j A_{ij}$ counts
# a station's neighbours (Shinjuku has four, Nakano, at the end of our map, one).

# %%
rail = railway_graph()
print(f"{rail.num_nodes} stations, {len(rail.edges)} edges")
print("degrees:", dict(zip(rail.names, rail.adjacency.sum(1).int().tolist())))

fig, axes = plt.subplots(1, 2, figsize=(12, 5.2), gridspec_kw={"width_ratios": [1.25, 1]})
line_colour = {"Yamanote (loop)": "tab:green", "Chūō": "tab:orange", "Sōbu": "gold"}
for line, stops in rail.lines.items():
    xy = rail.positions[[rail.index(s) for s in stops]].numpy()
    axes[0].plot(xy[:, 0], xy[:, 1], color=line_colour[line], lw=5, alpha=0.5, label=line, zorder=0)
draw_graph(rail.positions, rail.edges, ax=axes[0], labels=rail.names, title="The railway map as a graph")
axes[0].legend(loc="lower left", fontsize=8)
attention_heatmap(rail.adjacency, rail.names, rail.names, ax=axes[1], cmap="Greys", colorbar=False,
                  title="Its adjacency matrix A")
axes[1].set(xlabel="station j", ylabel="station i")
fig.tight_layout()
show(fig)

# %% [markdown]
# ## 2 · Message passing and graph convolution
#
# Suppose each station has a feature vector $h_i$ — say, how many passengers board there each hour — and we want to
# predict something about each station, such as how crowded it gets. A station's crowding depends on its own
# passengers *and on its neighbours'*: people ride in from the next stops. **Message passing** writes that down.
# Every node sends a message along each of its edges (passengers board the train), then every node collects the
# messages arriving from its neighbours $\mathcal N(i)$ (passengers get off). The booklet writes one layer of a
# **graph convolution** (グラフ畳み込み) as their eq. 2.1:
#
# $$h^{(l+1)}_i = \sigma\Big(b^{(l)} + \sum_{j \in \mathcal N(i)} \frac{1}{c_{ij}}\, h^{(l)}_j W^{(l)}\Big).$$
#
# $W^{(l)}$ (shape `(F_in, F_out)`, row-vector convention as everywhere in this course) is learned, and is the same
# for every node, as a convolution kernel is the same at every pixel: passengers do not turn into crowding one for
# one, and $W$ learns how they do. $c_{ij}$ normalises: without it a hub with many neighbours would sum far larger
# messages than a quiet terminus.
#
# We use the choice of Kipf and Welling's GCN, $c_{ij} = \sqrt{\deg_i \deg_j}$, with one more detail: each node
# also keeps its own features, by a **self-loop** on every node. With $\hat A = A + I$ (the diagonal set to one)
# and $\hat D$ the diagonal matrix of the degrees of $\hat A$, a whole layer is one matrix product:
#
# $$H^{(l+1)} = \sigma\big(\hat D^{-1/2} \hat A\, \hat D^{-1/2}\, H^{(l)} W^{(l)}\big), \qquad
# \big(\hat D^{-1/2} \hat A\, \hat D^{-1/2}\big)_{ij} = \frac{\hat A_{ij}}{\sqrt{\widehat{\deg}_i\, \widehat{\deg}_j}}.$$
#
# Row $i$ of the matrix lists how much node $i$ takes from each $j$: zero for non-neighbours, and for neighbours a
# weight that shrinks when either end is busy. The weights are fixed by the map; only $W$ is learned.

# %% [markdown]
# ### Exercise 1 — `graph_conv(h, adj, weight)`
#
# Write one graph convolution, without the bias and nonlinearity (those belong to the layer around it). The details
# that matter:
#
# - Set the diagonal of the adjacency to one *whatever it was*: a graph that already has self-loops does not get them
#   twice, and an isolated node (no edges) ends up with degree one, so nothing divides by zero.
# - Edge weights count: `adj` may hold any non-negative weights, not only 0 and 1 (or be a `bool` tensor).
# - Work on one graph `(N, N)` or a batch of graphs `(B, N, N)`; a single `(N, N)` graph may also be shared by a
#   batch of feature matrices `(B, N, F_in)`.

# %% nbgrader={"grade": false, "grade_id": "graph_conv", "locked": false, "schema_version": 3, "solution": true, "task": false}
def graph_conv(h: torch.Tensor, adj: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """One graph-convolution layer (Kipf & Welling), without bias or nonlinearity: D̂^-1/2 Â D̂^-1/2 h W.

    Â is ``adj`` with every diagonal entry set to 1 (one self-loop per node, whatever the diagonal held before),
    deg_i = Σ_j Â[i, j] (the row sums of Â), and

        out[..., i, :] = Σ_j  Â[i, j] / sqrt(deg_i · deg_j) · (h @ weight)[..., j, :].

    Args:
        h: (N, F_in) node features of one graph, or (B, N, F_in) for a batch; float32 or float64.
        adj: (N, N) or (B, N, N) adjacency: ``adj[..., i, j]`` is the weight of the edge that carries node j's
            message to node i (0 = no edge; weights are non-negative; usually symmetric, but the formula above is
            applied as written). Bool or floating; converted to ``h.dtype``. An (N, N) ``adj`` with a 3-D ``h`` is
            the same graph for every item of the batch; a 3-D ``adj`` needs a 3-D ``h`` with the same B.
        weight: (F_in, F_out), same dtype as ``h`` (row-vector convention: ``h @ weight``).

    Returns:
        (N, F_out), or (B, N, F_out) for a batch, dtype ``h.dtype``. Inputs are not modified. Gradients flow to
        ``h``, ``weight`` and a floating ``adj``.

    Raises:
        ValueError, with a message naming the shapes, if ``h`` is not 2-D or 3-D, ``adj`` is not 2-D or 3-D or
        not square in its last two dimensions, ``adj`` has a different N from ``h``, a 3-D ``adj`` has a
        different batch size from ``h`` (or comes with a 2-D ``h``), or ``weight`` is not 2-D with F_in rows.
    """
    ### BEGIN SOLUTION
    if h.dim() not in (2, 3):
        raise ValueError(f"h must be (N, F_in) or (B, N, F_in), got shape {tuple(h.shape)}")
    if adj.dim() not in (2, 3) or adj.shape[-1] != adj.shape[-2]:
        raise ValueError(f"adj must be (N, N) or (B, N, N), got shape {tuple(adj.shape)}")
    if adj.shape[-1] != h.shape[-2]:
        raise ValueError(f"adj {tuple(adj.shape)} and h {tuple(h.shape)} disagree on the number of nodes N")
    if adj.dim() == 3 and (h.dim() != 3 or adj.shape[0] != h.shape[0]):
        raise ValueError(f"a batch of graphs adj {tuple(adj.shape)} needs h of shape (B, N, F_in) with the same B, "
                         f"got h {tuple(h.shape)}")
    if weight.dim() != 2 or weight.shape[0] != h.shape[-1]:
        raise ValueError(f"weight must be (F_in, F_out) with F_in = {h.shape[-1]} (from h {tuple(h.shape)}), "
                         f"got shape {tuple(weight.shape)}")
    n = h.shape[-2]
    on_diagonal = torch.eye(n, dtype=torch.bool, device=h.device)
    a_hat = torch.where(on_diagonal, torch.ones((), dtype=h.dtype, device=h.device), adj.to(h.dtype))
    inv_sqrt_deg = a_hat.sum(dim=-1).rsqrt()
    normalised = inv_sqrt_deg[..., :, None] * a_hat * inv_sqrt_deg[..., None, :]
    return normalised @ (h @ weight)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_graph_conv", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false}
# Visible tests: a path 0 - 1 - 2 worked by hand, shapes, an isolated node, existing self-loops, bool adjacency,
# a batch of graphs, and a clear error for a weight of the wrong size.
path = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
# With self-loops the degrees are 2, 3, 2, so entry (i, j) of D^-1/2 Â D^-1/2 is 1 / sqrt(deg_i deg_j).
expected = torch.tensor([[1 / 2, 1 / 6**0.5, 0.0], [1 / 6**0.5, 1 / 3, 1 / 6**0.5], [0.0, 1 / 6**0.5, 1 / 2]])
out = graph_conv(torch.eye(3), path, torch.eye(3))
assert_tensor(out, shape=(3, 3), dtype=torch.float32, name="graph_conv(I, path, I)")
assert_close(out, expected, name="graph_conv(I, path, I) (= the normalised matrix D^-1/2 Â D^-1/2; did you add "
                                  "self-loops and divide by sqrt(deg_i deg_j)?)")
h = random_tensor(3, 4, seed=1)
W = random_tensor(4, 2, seed=2)
assert_close(graph_conv(h, path, W), expected @ h @ W, name="graph_conv(h, path, W)")
lonely = torch.zeros(3, 3)
lonely[0, 1] = lonely[1, 0] = 1.0  # node 2 has no edges at all
assert_close(graph_conv(h, lonely, W)[2], h[2] @ W,
             name="output of an isolated node (its only neighbour is itself, with degree 1)")
assert_close(graph_conv(h, path + torch.eye(3), W), graph_conv(h, path, W),
             name="graph_conv with self-loops already in adj (they must not count twice)")
assert_close(graph_conv(h, path.bool(), W), graph_conv(h, path, W), name="graph_conv with a bool adjacency")
batch_h, batch_adj = torch.stack([h, 2 * h]), torch.stack([path, lonely])
out = graph_conv(batch_h, batch_adj, W)
assert_tensor(out, shape=(2, 3, 2), dtype=torch.float32, name="graph_conv on a batch of two graphs")
assert_close(out[1], graph_conv(2 * h, lonely, W), name="graph_conv on a batch: the second graph")
expect_value_error(graph_conv, h, path, random_tensor(5, 2), mention=["5"], name="graph_conv with a (5, 2) weight for F_in = 4")

# %% [markdown]
# ### Experiment — one hop per layer
#
# Put one unit of "passengers" at Shinjuku and nothing anywhere else, and apply the normalised graph (with
# $W = I$, one feature) again and again. Each application moves the feature one edge further.

# %%
start = torch.zeros(rail.num_nodes, 1)
start[rail.index("Shinjuku")] = 1.0
hops = [1, 2, 4, 32]
signals, h_k = {}, start
for k in range(1, max(hops) + 1):
    h_k = graph_conv(h_k, rail.adjacency, torch.eye(1))
    if k in hops:
        signals[k] = h_k[:, 0]
fig, axes = plt.subplots(1, len(hops), figsize=(16, 4))
for ax, k in zip(axes, hops):
    draw_graph(rail.positions, rail.edges, ax=ax, node_values=signals[k], node_cmap="Reds", node_vmin=0,
               labels=rail.names if k == 1 else None, highlight=[rail.index("Shinjuku")], node_size=160,
               title=f"after {k} layer{'s' * (k > 1)}")
fig.suptitle("A signal starting at Shinjuku, spread by repeated graph convolution", y=1.02)
fig.tight_layout()
show(fig)
stationary = rail.adjacency.sum(1).add(1).sqrt()
cos = F.cosine_similarity(signals[max(hops)], stationary, dim=0).item()
print(f"after {max(hops)} layers the signal is proportional to sqrt(degree + 1): cosine similarity {cos:.4f}")

# %% [markdown]
# **What to notice.** After one layer only Shinjuku and its four neighbours light up; after two, their neighbours
# too: a $k$-layer GCN sees exactly the stations within $k$ stops. After many layers the picture no longer depends on
# where the signal started: every station's value is proportional to $\sqrt{\widehat{\deg}_i}$, so the signal
# remembers the map, not its origin. Stacking many graph convolutions washes the nodes' individuality out
# (**over-smoothing**), which is why GCNs usually have two or three layers. Keep the first point in mind:
# information travels one edge per layer, along a map someone else drew.

# %% [markdown]
# ## 3 · Self-attention is message passing on a graph it builds itself
#
# Now read scaled dot-product attention (notebook 05) with a graph in mind. Every token $i$ is a node with a query
# $q_i$, a key $k_i$ and a value $v_i$. The weights
#
# $$\alpha_{ij} = \frac{\exp(q_i \cdot k_j / \sqrt d)}{\sum_{j'} \exp(q_i \cdot k_{j'} / \sqrt d)}, \qquad
# \text{out}_i = \sum_j \alpha_{ij}\, v_j$$
#
# form an $N \times N$ matrix. Compare it with the GCN's $\hat D^{-1/2} \hat A \hat D^{-1/2}$: both say how much node
# $i$ takes from node $j$, and the output is a weighted sum of neighbours' messages — message passing. Three things
# differ:
#
# | | graph convolution | self-attention |
# |---|---|---|
# | which pairs are connected | the edges of a given graph | every pair: the **complete graph** |
# | the weight of edge $i \leftarrow j$ | fixed by the degrees, $1/\sqrt{\widehat{\deg}_i \widehat{\deg}_j}$ | computed from the nodes' features, $\alpha_{ij}$ |
# | rows sum to | about 1 (exactly 1 when neighbours have equal degrees) | exactly 1 (softmax) |
#
# So the booklet's sentence holds precisely: attention is a graph convolution on the complete graph whose edge weights
# are recomputed from the input at every layer — "words as nodes, similarities as edges". The value projection
# $W_V$ plays the part of $W$ in eq. 2.1, and the position-wise feed-forward layer that follows is the per-node
# update. And a **mask** (notebook 05) removes edges. Fix the direction first: in this notebook an edge $i
# \leftarrow j$ runs from the **key** $j$ that sends a message to the **query** $i$ that receives it, so the mask's
# entry $(i, j)$ — row query, column key, as in notebook 05 — says whether that edge exists. A padding mask deletes
# the edges out of padding tokens (no one hears from them); a causal mask keeps the edge $i \leftarrow j$ only for
# $j \le i$: every token receives from itself and from earlier tokens, and sends to itself and to later ones. *Any* graph can be a mask; attention with the mask of a
# graph is message passing on that graph with learned, input-dependent weights — the idea of graph attention
# networks (GAT). Sparse-attention Transformers such as Reformer use the same freedom the other way round: they keep
# only the few edges that matter, to reach sequences too long for the complete graph.

# %% [markdown]
# ### Exercise 2 — `attention_adjacency(q, k, mask=None)`
#
# Return the attention weights $\alpha$ themselves: the weighted adjacency matrix of the graph that attention
# builds. Scale the scores by $\sqrt d$ with $d$ = the width of $q$ and $k$. The mask follows the course's rule from
# notebook 05 — last two dimensions $(N_q$ or $1, N_k)$, the ones before them broadcast — and its convention,
# **True where attention is allowed** — here: where there is an edge $i \leftarrow j$ — as in
# `F.scaled_dot_product_attention`. (Every boolean mask of `nn.MultiheadAttention` and `nn.Transformer*` —
# `attn_mask`, `key_padding_mask`, … — means the opposite: True = blocked.) A node with no allowed edge gets a row of
# zeros, never NaN. You may use `torch.softmax` (you wrote your own in notebook 00); calling
# `F.scaled_dot_product_attention` is off limits here. The checks of `q` and `k` are given (the cell below); the
# mask's are yours.

# %%
def check_queries_and_keys(q: torch.Tensor, k: torch.Tensor) -> None:
    """Given code: raise ValueError, naming the shapes, unless q is (..., N_q, d) and k (..., N_k, d) with the same
    leading dimensions and the same d."""
    if q.dim() < 2 or k.dim() < 2:
        raise ValueError(f"q and k need shape (..., N, d), got q {tuple(q.shape)} and k {tuple(k.shape)}")
    if q.shape[-1] != k.shape[-1] or q.shape[:-2] != k.shape[:-2]:
        raise ValueError(f"q {tuple(q.shape)} and k {tuple(k.shape)} must agree on d and on leading dimensions")


# %% nbgrader={"grade": false, "grade_id": "attention_adjacency", "locked": false, "schema_version": 3, "solution": true, "task": false}
def attention_adjacency(q: torch.Tensor, k: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Scaled dot-product attention weights, read as the weighted adjacency matrix of a graph.

    weights[..., i, j] = exp(s_ij) / Σ_{j' allowed} exp(s_ij')  for allowed j, 0 elsewhere, where
    s_ij = q[..., i, :] · k[..., j, :] / sqrt(d).

    Args:
        q: (..., N_q, d) queries, floating (float16, float32 or float64); any leading dimensions, e.g. (B, N, d)
            or (B, H, N, d).
        k: (..., N_k, d) keys with the same leading dimensions and the same d as ``q``.
        mask: optional bool tensor, True where query i may attend to key j (an edge j → i). Its last two
            dimensions are (N_q, N_k) or (1, N_k); its leading dimensions broadcast to those of ``q`` (an
            (N_q, N_k) mask is one graph for every batch item and head). None means the complete graph.

    Returns:
        weights of shape (..., N_q, N_k), dtype ``q.dtype``: each row sums to 1 over its allowed keys and is 0 on
        masked ones; a row with no allowed key is all zeros (never NaN, also in float16). Masked scores are never
        filled with a literal like -1e9 (it overflows float16); use ``torch.finfo(dtype).min`` or handle ``-inf``
        safely. Gradients flow to ``q`` and ``k`` (finite even for fully masked rows). Inputs are not modified.

    Raises:
        ValueError, with a message naming the shapes, if ``q`` or ``k`` has fewer than 2 dimensions or their d or
        leading dimensions differ (the given first line checks these), if ``mask`` is not bool, or if its shape
        does not fit (N_q or 1, N_k) and the leading dimensions of ``q`` (your checks).

    Do not call ``F.scaled_dot_product_attention`` (or ``nn.MultiheadAttention``); ``torch.softmax`` is allowed.
    """
    check_queries_and_keys(q, k)  # given
    ### BEGIN SOLUTION
    scores = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
    if mask is None:
        return torch.softmax(scores, dim=-1)
    if mask.dtype != torch.bool:
        raise ValueError(f"mask must be a bool tensor (True = edge / allowed), got dtype {mask.dtype}")
    fits = mask.dim() >= 2 and mask.shape[-1] == k.shape[-2] and mask.shape[-2] in (1, q.shape[-2])
    if fits:
        try:
            fits = torch.broadcast_shapes(mask.shape[:-2], q.shape[:-2]) == q.shape[:-2]
        except RuntimeError:
            fits = False
    if not fits:
        raise ValueError(f"mask of shape {tuple(mask.shape)} does not fit scores of shape {tuple(scores.shape)}")
    scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    return torch.softmax(scores, dim=-1).masked_fill(~mask, 0.0)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_attention_adjacency", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false}
# Visible tests: a case worked by hand (is the scale sqrt(d)?), rows summing to one over keys, a graph as the mask,
# a node without edges, agreement with torch's attention, and no call to the built-in.
q = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
k = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
w = attention_adjacency(q, k)
assert_tensor(w, shape=(2, 2), dtype=torch.float32, name="attention_adjacency(q, k)")
# Row 0: scores (4, 0) / sqrt(2); row 1: scores (0, 0) -> equal weights.
e = math.exp(4 / math.sqrt(2))
assert_close(w, torch.tensor([[e / (e + 1), 1 / (e + 1)], [0.5, 0.5]]),
             name="attention_adjacency(q, k) (scores divided by sqrt(d) = sqrt(2), softmax over the keys j)")
q, k = random_tensor(2, 5, 8, seed=3), random_tensor(2, 6, 8, seed=4)
w = attention_adjacency(q, k)
assert_tensor(w, shape=(2, 5, 6), dtype=torch.float32, name="attention_adjacency for 5 queries and 6 keys")
assert_close(w.sum(-1), torch.ones(2, 5), name="attention weights summed over the keys (each row must sum to 1)")
graph = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0]], dtype=torch.bool)  # node 3: no edges
q, k = random_tensor(4, 3, seed=5), random_tensor(4, 3, seed=6)
w = attention_adjacency(q, k, graph)
assert_tensor(w, shape=(4, 4), dtype=torch.float32, name="attention_adjacency with a graph as mask")
assert torch.isfinite(w).all(), "a node without edges gave NaN or inf: its row must be all zeros"
assert_close(w[3], torch.zeros(4), name="the row of node 3, which has no allowed key (it must be all zeros: with "
             "finfo.min in every position softmax returns a uniform row, so zero such rows explicitly)")
assert_close(w[~graph], torch.zeros(int((~graph).sum())), name="weights on missing edges (mask False)")
assert_close(w[:3].sum(-1), torch.ones(3), name="rows of nodes with edges summed over the keys")
v = random_tensor(4, 2, seed=7)
with torch.no_grad():
    reference = F.scaled_dot_product_attention(q[None, :3], k[None], v[None], attn_mask=graph[None, :3])
assert_close(w[:3] @ v, reference[0], name="weights @ v (compared with F.scaled_dot_product_attention, same mask)")
with forbid("scaled_dot_product_attention", exercise="attention_adjacency"):
    attention_adjacency(q, k, graph)
# every error the docstring promises, one call each
expect_value_error(attention_adjacency, q, random_tensor(4, 5, seed=8), mention=["(4, 3)", "(4, 5)"],
                   name="attention_adjacency with d = 3 for q and 5 for k (the given check)")
expect_value_error(attention_adjacency, q, k, graph.float(), mention=["float"],
                   name="attention_adjacency with a float mask (masks are bool: True = edge)")
expect_value_error(attention_adjacency, q, k, graph[0], mention=["(4,)"],
                   name="attention_adjacency with a 1-D mask (the rule: last two dims (N_q or 1, N_k))")

# %% [markdown]
# ### A mask *is* a graph
#
# Restrict attention to the railway map. Give each station a random feature vector and random projections $W_Q$,
# $W_K$, $W_V$, and compute the output two ways:
#
# 1. **message passing, written out**: for every station $i$, a softmax over its neighbours and itself only, then
#    the weighted sum of their values;
# 2. **masked attention**: `attention_adjacency` with the mask $\hat A \ne 0$ (the map plus self-loops) — and, for
#    good measure, PyTorch's `F.scaled_dot_product_attention` with the same mask (True = allowed) and
#    `nn.MultiheadAttention` with the *inverted* mask (its convention: True = blocked).

# %%
torch.manual_seed(1)
d_model = 8
x_rail = torch.randn(rail.num_nodes, d_model)
W_Q, W_K, W_V = (torch.randn(d_model, d_model) / math.sqrt(d_model) for _ in range(3))
q_rail, k_rail, v_rail = x_rail @ W_Q, x_rail @ W_K, x_rail @ W_V
edge_mask = (rail.adjacency > 0) | torch.eye(rail.num_nodes, dtype=torch.bool)

by_hand = torch.zeros(rail.num_nodes, d_model)
for i in range(rail.num_nodes):
    neighbours = torch.nonzero(edge_mask[i]).flatten()
    scores = torch.stack([q_rail[i] @ k_rail[j] for j in neighbours]) / math.sqrt(d_model)
    by_hand[i] = (torch.softmax(scores, 0)[:, None] * v_rail[neighbours]).sum(0)

as_attention = attention_adjacency(q_rail, k_rail, edge_mask) @ v_rail
as_torch = F.scaled_dot_product_attention(q_rail[None], k_rail[None], v_rail[None], attn_mask=edge_mask)[0]
mha = nn.MultiheadAttention(d_model, num_heads=1, bias=False, batch_first=True)
with torch.no_grad():
    mha.in_proj_weight.copy_(torch.cat([W_Q.T, W_K.T, W_V.T]))  # torch stores (out, in): transpose our (in, out)
    mha.out_proj.weight.copy_(torch.eye(d_model))
    as_mha, _ = mha(x_rail[None], x_rail[None], x_rail[None], attn_mask=~edge_mask)  # True = BLOCKED here
for name, result in [("attention_adjacency(q, k, mask) @ v", as_attention), ("F.scaled_dot_product_attention", as_torch),
                     ("nn.MultiheadAttention with attn_mask=~mask", as_mha[0])]:
    print(f"{name:44s} max |difference| from message passing: {(result - by_hand).abs().max():.2e}")

# %% [markdown]
# **What to notice.** All three agree with the neighbour-by-neighbour loop to rounding error: restricting attention
# to a graph and masking the complete graph are the same computation. The dense, masked form wastes work on the
# missing edges ($N^2$ scores for a graph with far fewer edges), which is why graph libraries loop over edge lists
# instead — but on a GPU, for a few hundred nodes, the dense form is usually faster.
#
# ### Multi-head attention: several graphs at once
#
# With $H$ heads (notebook 06), each head has its own $W_Q, W_K$ and so builds its **own weighted graph** over the
# same nodes. Below, two heads restricted to the railway map: the same edges, weighted differently. (The LiberalArts
# booklet and the *Attention機構* deck describe multiple heads as an *ensemble* for robustness. They are not: an ensemble trains independent models on the
# same job and averages them, while heads are low-dimensional subspaces trained *jointly*, through one loss, and
# concatenated and mixed by $W_O$ — each free to specialise in a different kind of relation, a different graph.)

# %%
torch.manual_seed(2)
two_heads = [attention_adjacency(x_rail @ (0.4 * torch.randn(d_model, 4)), x_rail @ (0.4 * torch.randn(d_model, 4)),
                                 edge_mask) for _ in range(2)]
fig, axes = plt.subplots(1, 3, figsize=(17, 5), gridspec_kw={"width_ratios": [1, 1, 0.9]})
for ax, (head, w) in zip(axes[:2], enumerate(two_heads)):
    symmetric = {(i, j): float((w[i, j] + w[j, i]) / 2) for i, j in rail.edges}
    draw_graph(rail.positions, rail.edges, ax=ax, edge_values=symmetric, edge_vmax=0.6, labels=rail.names,
               node_values=w.diagonal(), node_cmap="magma_r", node_vmin=0, node_vmax=0.6,
               title=f"head {head + 1}: edge colour = weight (mean of both directions)",
               colorbar="weight" if head == 1 else None)
attention_heatmap(two_heads[0], rail.names, rail.names, ax=axes[2], cmap="magma_r",
                  title="head 1 as a matrix: zero off the map")
fig.tight_layout()
show(fig)

# %% [markdown]
# **What to notice.** Both heads use exactly the railway's edges — the heatmap is zero wherever the map has no track
# — but they disagree about which edges matter (node colour is the weight a station gives itself). In a trained model
# one head might follow the loop while another favours the cross-town lines; with no mask at all, every head is a
# weighting of the complete graph.
#
# ## 4 · Experiment — a GCN against attention restricted to the graph
#
# A stochastic block model gives a graph with structure to find: 240 nodes in 4 communities, where two nodes of the
# same community are joined with probability 0.08 and of different communities with probability 0.02 (so about 60 %
# of a node's edges stay inside its community). Each node carries 16 noisy features: its community's mean vector
# plus noise too large to classify a node reliably on its own. Ten labelled nodes per community train the model,
# ten more per community are the validation set, the other 160 are the test set. Four two-layer models, all
# trained the same way (Adam, dropout 0.5, weight decay, full graph every step):
#
# - **MLP**: ignores the graph — the baseline;
# - **GCN**: your `graph_conv` in both layers;
# - **graph attention**: four-head dot-product attention with your `attention_adjacency`, masked to the graph's edges
#   plus self-loops (a dot-product GAT);
# - **complete-graph attention**: the same model with no mask: every node attends to every node, as a Transformer
#   layer without positional information would.

# %%
task = community_task()
task_x, task_y, task_adj = task.x.to(device), task.y.to(device), task.adjacency.to(device)
same_class = task.y[:, None] == task.y[None, :]
edge_is_same = same_class[task.adjacency > 0]
print(f"{len(task.y)} nodes, {len(task.edges)} edges, mean degree {task.adjacency.sum(1).mean():.1f}, "
      f"{edge_is_same.float().mean():.0%} of edges inside a community")
print(f"labelled: {len(task.train)} train, {len(task.valid)} validation, {len(task.test)} test nodes")


class MLP(nn.Module):
    def __init__(self, n_in, n_hidden, n_out, dropout=0.5):
        super().__init__()
        self.layer1, self.layer2, self.dropout = nn.Linear(n_in, n_hidden), nn.Linear(n_hidden, n_out), dropout

    def forward(self, x, adj):
        h = torch.relu(self.layer1(F.dropout(x, self.dropout, self.training)))
        return self.layer2(F.dropout(h, self.dropout, self.training))


class GCN(nn.Module):
    """Two graph convolutions; the bias b of eq. 2.1 is added outside graph_conv."""

    def __init__(self, n_in, n_hidden, n_out, dropout=0.5):
        super().__init__()
        self.w1, self.w2 = nn.Parameter(torch.empty(n_in, n_hidden)), nn.Parameter(torch.empty(n_hidden, n_out))
        nn.init.xavier_uniform_(self.w1)
        nn.init.xavier_uniform_(self.w2)
        self.b1, self.b2 = nn.Parameter(torch.zeros(n_hidden)), nn.Parameter(torch.zeros(n_out))
        self.dropout = dropout

    def forward(self, x, adj):
        h = torch.relu(graph_conv(F.dropout(x, self.dropout, self.training), adj, self.w1) + self.b1)
        return graph_conv(F.dropout(h, self.dropout, self.training), adj, self.w2) + self.b2


class GraphAttentionLayer(nn.Module):
    """Multi-head dot-product attention over the nodes; the mask is the graph (None: the complete graph)."""

    def __init__(self, n_in, n_out, heads, d_key=8):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(n_in, heads * d_key, bias=False)
        self.k = nn.Linear(n_in, heads * d_key, bias=False)
        self.v = nn.Linear(n_in, n_out, bias=False)  # the W of eq. 2.1, split across heads
        self.bias = nn.Parameter(torch.zeros(n_out))

    def forward(self, x, mask):
        n = x.shape[0]
        q = self.q(x).view(n, self.heads, -1).transpose(0, 1)  # (H, N, d_key)
        k = self.k(x).view(n, self.heads, -1).transpose(0, 1)
        v = self.v(x).view(n, self.heads, -1).transpose(0, 1)  # (H, N, n_out / H)
        weights = attention_adjacency(q, k, mask)  # (H, N, N): one weighted graph per head
        return (weights @ v).transpose(0, 1).reshape(n, -1) + self.bias, weights


class GraphAttentionNet(nn.Module):
    def __init__(self, n_in, n_hidden, n_out, heads=4, dropout=0.5, use_graph=True):
        super().__init__()
        self.layer1 = GraphAttentionLayer(n_in, n_hidden, heads)
        self.layer2 = GraphAttentionLayer(n_hidden, n_out, 1)
        self.dropout, self.use_graph = dropout, use_graph

    def forward(self, x, adj):
        n = adj.shape[-1]
        mask = ((adj > 0) | torch.eye(n, dtype=torch.bool, device=adj.device)) if self.use_graph else None
        h, w1 = self.layer1(F.dropout(x, self.dropout, self.training), mask)
        out, w2 = self.layer2(F.dropout(torch.relu(h), self.dropout, self.training), mask)
        self.last_weights = (w1.detach(), w2.detach())
        return out


def node_accuracy(model, nodes):
    model.eval()
    with torch.no_grad():
        predicted = model(task_x, task_adj)[nodes].argmax(-1)
    return (predicted == task_y[nodes]).float().mean().item()


def fit(make_model, seed, steps):
    seed_everything(seed)
    model = make_model().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=5e-4)
    loss_fn = lambda m, batch: F.cross_entropy(m(task_x, task_adj)[task.train], task_y[task.train])
    history = train(model, optimizer, loss_fn, lambda step: (), steps, clip_grad=None,
                    evaluate=lambda: node_accuracy(model, task.valid), eval_every=20, desc=f"seed {seed}")
    return model, history


n_in, n_hidden, n_classes = task.x.shape[1], 32, task.num_classes
models = {
    "MLP (no graph)": lambda: MLP(n_in, n_hidden, n_classes),
    "GCN": lambda: GCN(n_in, n_hidden, n_classes),
    "graph attention": lambda: GraphAttentionNet(n_in, n_hidden, n_classes),
    "complete-graph attention": lambda: GraphAttentionNet(n_in, n_hidden, n_classes, use_graph=False),
}
node_steps = by_mode(full=200, fast=3)
node_seeds = by_mode(full=[0, 1, 2], fast=[0])
results, trained = {}, {}
for name, make_model in models.items():
    results[name] = []
    for seed in node_seeds:
        model, history = fit(make_model, seed, node_steps)
        results[name].append((history.evals[-1][1], node_accuracy(model, task.test), history))
    trained[name] = model  # the last seed's model, for the pictures below
    valid = np.mean([r[0] for r in results[name]])
    test = np.mean([r[1] for r in results[name]])
    print(f"{name:26s} validation {valid:.3f}   test {test:.3f}   (mean of {len(node_seeds)} seeds)")

report_metric("GCN node accuracy (test, mean of seeds)", np.mean([r[1] for r in results["GCN"]]),
              notebook="09_attention_as_message_passing", fmt=".3f")
report_metric("graph attention node accuracy (test, mean of seeds)",
              np.mean([r[1] for r in results["graph attention"]]), notebook="09_attention_as_message_passing", fmt=".3f")
report_metric("complete-graph attention node accuracy (test, mean of seeds)",
              np.mean([r[1] for r in results["complete-graph attention"]]), notebook="09_attention_as_message_passing",
              fmt=".3f")

# %%
net = trained["graph attention"]
node_accuracy(net, task.test)  # one forward pass in eval mode fills net.last_weights
w_layer2 = net.last_weights[1][0].cpu()  # (N, N) weights of the last layer's single head
edge_rows, edge_cols = torch.nonzero(task.adjacency, as_tuple=True)
edge_weights = w_layer2[edge_rows, edge_cols]
# The weight a GCN gives the same edge, 1 / sqrt(deg_i deg_j) with self-loops: fixed by the degrees.
deg_hat = task.adjacency.sum(1) + 1
gcn_weights = (deg_hat[edge_rows] * deg_hat[edge_cols]).rsqrt()

fig, axes = plt.subplots(1, 3, figsize=(17, 5), gridspec_kw={"width_ratios": [0.8, 1.2, 1]})
names = list(results)
means = [np.mean([r[1] for r in results[n]]) for n in names]
spreads = [np.std([r[1] for r in results[n]]) for n in names]
axes[0].bar(range(len(names)), means, yerr=spreads, color=["0.6", "tab:blue", "tab:orange", "tab:red"], capsize=4)
axes[0].axhline(1 / task.num_classes, color="black", ls=":", lw=1, label="chance")
axes[0].set_xticks(range(len(names)), ["MLP\n(no graph)", "GCN", "graph\nattention", "complete-\ngraph\nattention"],
                   fontsize=8)
axes[0].set(ylabel="test accuracy", ylim=(0, 1), title="Node classification (mean ± sd over seeds)")
axes[0].legend(loc="upper right")
ratio = {(i, j): float(w_layer2[i, j] + w_layer2[j, i]) / 2 for i, j in task.edges}
draw_graph(task.positions, task.edges, ax=axes[1], node_colors=[plt.cm.tab10(c) for c in task.y.tolist()],
           edge_values=ratio, edge_vmax=float(np.quantile(list(ratio.values()), 0.95)), edge_width=0.5,
           node_size=18, title="learned edge weights (last layer), nodes coloured by community",
           colorbar="attention weight")
for label, keep, colour in [("edges inside a community", edge_is_same, "tab:green"),
                            ("edges between communities", ~edge_is_same, "tab:purple")]:
    axes[2].hist((edge_weights / gcn_weights)[keep].numpy(), bins=30, range=(0, 3), alpha=0.6, color=colour,
                 label=f"{label}: mean {(edge_weights / gcn_weights)[keep].mean():.2f}")
axes[2].axvline(1.0, color="black", ls=":", lw=1)
axes[2].set(xlabel="attention weight / GCN weight of the same edge", ylabel="edges",
            title="Attention re-weights the graph's edges")
axes[2].legend(fontsize=8)
fig.tight_layout()
show(fig)
inside, between = edge_weights[edge_is_same].mean().item(), edge_weights[~edge_is_same].mean().item()
print(f"mean attention weight on an edge inside a community {inside:.3f}, between communities {between:.3f} "
      f"(ratio {inside / max(between, 1e-9):.2f})")

# %% [markdown]
# **What to notice.**
#
# - **The graph is worth a lot.** Both graph models beat the MLP by a wide margin: averaging over neighbours, most of
#   whom share the node's community, cancels much of the feature noise.
# - **Attention over the complete graph is far behind, not far above chance (25 %).** Without the mask, every node mixes the features of all 240
#   nodes, so every node ends up with nearly the same vector — and the only place the graph entered was the mask.
#   This is the graph-side view of why Transformers need *positional* information: attention alone treats its
#   inputs as an unordered, unconnected set. (A Transformer layer also keeps each token's own vector through the
#   residual connection; ours has none, which makes the collapse total.)
# - **Attention learns which edges matter.** The GCN weights an edge by the degrees alone; the attention model,
#   given the same edges, learned to give edges inside a community more weight than edges that cross over (right
#   panel: most green mass sits right of the purple, most purple mass left of 1). On this task that buys it a
#   couple of points of accuracy over the GCN (compare the bars and their spread) — learned from the labels of only
#   40 nodes. The more edges mislead, the more learned weights matter; where the graph is clean, the GCN's fixed
#   weights are hard to beat and cheaper.
#
# ## 5 · Self-attention inside a CNN: SAGAN
#
# A learner asked: *can multi-head attention be used inside a CNN?* Yes — once the shapes are arranged. A feature
# map $x$ of shape `(B, C, H, W)` is a set of $H \cdot W$ **positions**, each a $C$-dimensional vector: flatten it
# to `(B, H·W, C)` and it is a sequence of tokens, a graph of pixels. A convolution is message passing on the grid
# graph (each pixel hears its 3 × 3 neighbours, with weights fixed by position); self-attention is message passing on
# the complete graph of pixels, with weights from content — one layer lets a pixel at the top-left use a pixel at
# the bottom-right.
#
# The Self-Attention GAN (SAGAN; Zhang, Goodfellow, Metaxas and Odena, 2018) does exactly this between the
# convolution blocks of its generator and discriminator. The *Attention機構* deck singles it out because attention let the
# network "recognise the input image's features globally": the paper's generator draws images whose distant parts
# are consistent with each other (a dog's legs and body agree), where a purely convolutional one must stack many
# layers to connect distant parts. The block:
#
# - three **1 × 1 convolutions** — a 1 × 1 convolution is a linear layer applied at every position, i.e. exactly the
#   projections $W_Q, W_K, W_V$: $f(x)$ and $g(x)$ with $C/8$ channels each (a cheap, low-rank score, like one
#   head), and $h(x)$ with $C$ channels for the values;
# - in the paper's notation, scores $s_{ij} = f(x_i)^\top g(x_j)$ between positions $i$ and $j$ (SAGAN does not
#   divide by a square root), normalised **over $i$**:
#   $\beta_{j,i} = \exp(s_{ij}) / \sum_{i'} \exp(s_{i'j})$ is how much position $j$ attends to position $i$, and
#   the output at $j$ is $o_j = \sum_i \beta_{j,i}\, h(x_i)$. In the words of notebook 05: $g(x_j)$ is the query
#   of position $j$, $f(x_i)$ the key of position $i$, $h(x_i)$ its value;
# - a learned scalar **γ, initialised to 0**: $y = \gamma\, o + x$. At the start the block is the identity, so
#   it can be dropped into a network without disturbing it; the network first learns with local features and turns
#   up γ as attention becomes useful.
#
# The cost is quadratic in the number of positions: a 64 × 64 feature map has 4,096 positions and a
# 4,096 × 4,096 weight matrix per image — why SAGAN places attention on mid-sized feature maps, and why ViT
# (notebook 08) attends between 16 × 16 patches rather than pixels.

# %% [markdown]
# ### Exercise 3 — `SelfAttention2d(channels)`
#
# Write the SAGAN block as an `nn.Module`. Keep the attribute names `f`, `g`, `h` and `gamma` — the tests copy and
# set them — and return the attention weights with the output, as every attention in this course does.

# %% nbgrader={"grade": false, "grade_id": "SelfAttention2d", "locked": false, "schema_version": 3, "solution": true, "task": false}
class SelfAttention2d(nn.Module):
    """SAGAN's self-attention over the H·W positions of a feature map (simplified: the paper's value path is a
    1×1 convolution h to C/8 channels followed by another one, v, back to C; here one h maps C to C).

    Attributes (created in ``__init__``; no other parameters):
        f: ``nn.Conv2d(channels, max(channels // 8, 1), kernel_size=1)`` — the keys, f(x_i).
        g: ``nn.Conv2d(channels, max(channels // 8, 1), kernel_size=1)`` — the queries, g(x_j).
        h: ``nn.Conv2d(channels, channels, kernel_size=1)`` — the values, h(x_i).
            (All three with their default bias and default initialisation.)
        gamma: ``nn.Parameter`` of shape (1,), initialised to 0, so a new block returns its input unchanged.

    forward(x) with x of shape (B, channels, H, W), any float dtype matching the parameters, returns
    ``(y, weights)``, following the paper's equations:
        - positions are flattened row-major, position = row · W + column (the order of ``x.flatten(2)``);
        - scores s[b, i, j] = f(x)[b, :, i] · g(x)[b, :, j] — **not** divided by any square root (as in SAGAN);
        - beta[b, j, i] = exp(s[b, i, j]) / Σ_i' exp(s[b, i', j]): normalised over i, the attended position;
          ``weights`` is beta, shape (B, H·W, H·W), each row sums to 1 (row j: where position j looks);
        - o[b, :, j] = Σ_i beta[b, j, i] · h(x)[b, :, i], reshaped to (B, channels, H, W);
        - y = gamma · o + x, shape (B, channels, H, W).
    Gradients flow to x and to every parameter (to f, g, h once gamma ≠ 0). ``x`` is not modified.

    Raises:
        ValueError naming the shapes if x is not 4-D or x.shape[1] != channels.

    Do not call ``F.scaled_dot_product_attention`` or ``nn.MultiheadAttention``; ``torch.softmax`` is allowed.
    """

    def __init__(self, channels: int):
        super().__init__()
        ### BEGIN SOLUTION
        self.channels = channels
        reduced = max(channels // 8, 1)
        self.f = nn.Conv2d(channels, reduced, kernel_size=1)
        self.g = nn.Conv2d(channels, reduced, kernel_size=1)
        self.h = nn.Conv2d(channels, channels, kernel_size=1)
        self.gamma = nn.Parameter(torch.zeros(1))
        ### END SOLUTION

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ### BEGIN SOLUTION
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise ValueError(f"x must be (B, {self.channels}, H, W), got shape {tuple(x.shape)}")
        b, c, height, width = x.shape
        keys = self.f(x).flatten(2)  # (B, C/8, HW): f(x_i)
        queries = self.g(x).flatten(2).transpose(1, 2)  # (B, HW, C/8): g(x_j)
        values = self.h(x).flatten(2)  # (B, C, HW): h(x_i)
        weights = torch.softmax(queries @ keys, dim=-1)  # beta (B, HW, HW): [j, i] = softmax over i of s_ij
        out = (values @ weights.transpose(1, 2)).view(b, c, height, width)
        return self.gamma * out + x, weights
        ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_SelfAttention2d", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false}
# Visible tests: parameter names and shapes, the identity at initialisation, weight shapes over positions (not
# channels), rows summing to one, the residual path once gamma is non-zero, and a clear error for a wrong C.
torch.manual_seed(0)
block = SelfAttention2d(16)
shapes = {name: tuple(p.shape) for name, p in block.named_parameters()}
assert shapes == {"f.weight": (2, 16, 1, 1), "f.bias": (2,), "g.weight": (2, 16, 1, 1), "g.bias": (2,),
                  "h.weight": (16, 16, 1, 1), "h.bias": (16,), "gamma": (1,)}, \
    f"parameters should be f, g: 1x1 convs 16 -> 2 channels, h: 16 -> 16, and gamma of shape (1,); got {shapes}"
assert_close(block.gamma.detach(), torch.zeros(1), name="gamma at initialisation (must start at 0)")
x = random_tensor(2, 16, 3, 5, seed=8)
with forbid("scaled_dot_product_attention", "multi_head_attention", exercise="SelfAttention2d"):
    y, weights = block(x)
assert_tensor(y, shape=(2, 16, 3, 5), dtype=torch.float32, name="SelfAttention2d output y")
assert_tensor(weights, shape=(2, 15, 15), dtype=torch.float32,
              name="SelfAttention2d weights (B, H*W, H*W): attention between the 3*5 positions, not the channels")
assert_close(y, x, atol=0, rtol=0, name="output of a new block (gamma = 0 makes it the identity)")
assert_close(weights.sum(-1), torch.ones(2, 15), name="attention weights summed over positions i (rows must sum to 1)")
with torch.no_grad():
    block.gamma.fill_(1.0)
    for conv in (block.f, block.g):  # larger scores: a square-root scale would now change the weights visibly
        conv.weight.mul_(4.0)
y, weights = block(x)
with torch.no_grad():
    keys, queries, values = block.f(x).flatten(2), block.g(x).flatten(2), block.h(x).flatten(2)
    scores = queries.transpose(1, 2) @ keys  # [b, j, i] = g(x_j) . f(x_i) = s_ij
if torch.allclose(weights, torch.softmax(scores / math.sqrt(2), dim=-1), atol=1e-5):
    raise AssertionError("SelfAttention2d divides the scores by sqrt(d): SAGAN does not scale them, "
                         "s_ij = f(x_i) . g(x_j) as it is")
if torch.allclose(weights, torch.softmax(scores.transpose(1, 2), dim=-1), atol=1e-5):
    raise AssertionError("SelfAttention2d swaps the roles of f and g: in SAGAN g(x_j) is the query of position j and "
                         "f(x_i) the key of position i (s_ij = f(x_i) . g(x_j), normalised over i)")
assert_close(weights, torch.softmax(scores, dim=-1), atol=1e-5,
             name="SelfAttention2d weights (row j: softmax over i of s_ij = f(x_i) . g(x_j), not scaled)")
assert_close(y - x, (values @ weights.transpose(1, 2)).view(2, 16, 3, 5), atol=1e-5,
             name="y - x with gamma = 1 (should be o[:, :, j] = sum over i of weights[:, j, i] * h(x)[:, :, i])")
expect_value_error(block, random_tensor(2, 8, 3, 3), mention=["8"], name="SelfAttention2d(16) on 8 channels")
expect_value_error(block, random_tensor(2, 16, 9), mention=["(2, 16, 9)"], name="SelfAttention2d on a 3-D input")

# %% [markdown]
# It is ordinary scaled dot-product attention in disguise: with the feature map flattened to tokens, the block's
# output equals PyTorch's attention with `scale=1` (no $\sqrt d$, as SAGAN) on the queries $g(x)$, keys $f(x)$ and
# values $h(x)$. So yes, MHA fits in a CNN: replace the single head by `nn.MultiheadAttention(C, num_heads,
# batch_first=True)` on `x.flatten(2).transpose(1, 2)` and reshape back.

# %%
torch.manual_seed(0)
block = SelfAttention2d(16)
with torch.no_grad():
    block.gamma.fill_(1.0)
x = torch.randn(2, 16, 6, 6)
y, _ = block(x)
tokens = lambda t: t.flatten(2).transpose(1, 2)  # (B, C, H, W) -> (B, H*W, C): positions become tokens
o = F.scaled_dot_product_attention(tokens(block.g(x)), tokens(block.f(x)), tokens(block.h(x)), scale=1.0)
print("SelfAttention2d vs scaled_dot_product_attention on flattened positions, max |difference|:",
      f"{((y - x) - o.transpose(1, 2).reshape_as(x)).abs().max():.2e}")

# %% [markdown]
# ### Experiment — giving a small CNN a global view
#
# Take the 8 × 8 handwritten digits and a deliberately short-sighted CNN: one 3 × 3 convolution, then global average
# pooling and a linear classifier. Each feature sees only a 3 × 3 patch, and pooling throws away where the patches
# were, so the classifier gets a bag of local strokes. Then insert `SelfAttention2d` between the convolution and the
# pooling: every position can now mix in features from anywhere in the digit, chosen by content. Same training, two
# seeds each; we record γ as it learns.

# %%
digits = load_digits_split()
digits_x = {split: getattr(digits, f"x_{split}").to(device) for split in ("train", "valid", "test")}
digits_y = {split: getattr(digits, f"y_{split}").to(device) for split in ("train", "valid", "test")}


class LocalCNN(nn.Module):
    def __init__(self, channels=32, attention=False):
        super().__init__()
        self.conv = nn.Conv2d(1, channels, kernel_size=3, padding=1)
        self.attention = SelfAttention2d(channels) if attention else None
        self.classify = nn.Linear(channels, 10)

    def forward(self, images):
        x = torch.relu(self.conv(images))
        if self.attention is not None:
            x, self.last_weights = self.attention(x)
        return self.classify(x.mean(dim=(2, 3)))


def digit_accuracy(model, split):
    model.eval()
    with torch.no_grad():
        return (model(digits_x[split]).argmax(-1) == digits_y[split]).float().mean().item()


cnn_steps = by_mode(full=400, fast=3)
cnn_seeds = by_mode(full=[0, 1], fast=[0])
cnn_results, gammas = {}, {}
for attention in (False, True):
    label = "conv + self-attention" if attention else "conv only"
    cnn_results[label] = []
    for seed in cnn_seeds:
        seed_everything(seed)
        model = LocalCNN(attention=attention).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        gamma_trace = []

        def loss_fn(m, batch):
            if m.attention is not None:
                gamma_trace.append(m.attention.gamma.item())
            return F.cross_entropy(m(batch[0]), batch[1])

        batches = batch_sampler(digits_x["train"], digits_y["train"], batch_size=64, seed=seed)
        train(model, optimizer, loss_fn, batches, cnn_steps, desc=f"{label}, seed {seed}")
        cnn_results[label].append((digit_accuracy(model, "valid"), digit_accuracy(model, "test")))
        if attention:
            gammas[seed] = gamma_trace
    print(f"{label:24s} validation {np.mean([r[0] for r in cnn_results[label]]):.3f}   "
          f"test {np.mean([r[1] for r in cnn_results[label]]):.3f}   (mean of {len(cnn_seeds)} seeds)")
sagan_model = model  # the last model trained has the attention block
report_metric("digits test accuracy, 1 conv + SelfAttention2d (mean of seeds)",
              np.mean([r[1] for r in cnn_results["conv + self-attention"]]), notebook="09_attention_as_message_passing",
              fmt=".3f")
report_metric("digits test accuracy, 1 conv only (mean of seeds)",
              np.mean([r[1] for r in cnn_results["conv only"]]), notebook="09_attention_as_message_passing", fmt=".3f")

# %%
sagan_model.eval()
examples = [int(torch.nonzero(digits.y_test == d)[0]) for d in (0, 4, 7)]
pixels = [(1, 3), (4, 4), (6, 2)]  # (row, column) of the pixel whose attention we draw
with torch.no_grad():
    sagan_model(digits_x["test"][examples])
maps = sagan_model.last_weights.cpu()  # (3, 64, 64)
fig, axes = plt.subplots(2, 4, figsize=(13, 6.2), gridspec_kw={"width_ratios": [1.3, 1, 1, 1]})
for seed, trace in gammas.items():
    axes[0, 0].plot(trace, label=f"seed {seed}")
axes[0, 0].axhline(0, color="black", lw=0.8)
axes[0, 0].set(xlabel="training step", ylabel="γ", title="γ starts at 0 and is learned")
axes[0, 0].legend()
labels = list(cnn_results)
axes[1, 0].bar(range(2), [np.mean([r[1] for r in cnn_results[k]]) for k in labels], color=["0.6", "tab:orange"],
               yerr=[np.std([r[1] for r in cnn_results[k]]) for k in labels], capsize=4)
axes[1, 0].set_xticks(range(2), [k.replace(" + ", "\n+ ") for k in labels])
axes[1, 0].set(ylim=(0, 1), ylabel="test accuracy", title="Digits: one 3 × 3 conv, then pooling")
for col, (index, (r, c)) in enumerate(zip(examples, pixels), start=1):
    image = digits.x_test[index, 0]
    axes[0, col].imshow(image, cmap="gray_r")
    axes[0, col].scatter([c], [r], s=120, facecolors="none", edgecolors="red", linewidths=2)
    axes[0, col].set_title(f"a test '{int(digits.y_test[index])}', pixel ({r}, {c})")
    axes[1, col].imshow(maps[col - 1, r * 8 + c].view(8, 8), cmap="magma")
    axes[1, col].scatter([c], [r], s=120, facecolors="none", edgecolors="cyan", linewidths=2)
    axes[1, col].set_title("where that pixel attends")
for ax in axes[:, 1:].flat:
    ax.set_xticks([])
    ax.set_yticks([])
fig.tight_layout()
show(fig)
for col, (index, (r, c)) in enumerate(zip(examples, pixels)):
    w = maps[col, r * 8 + c].view(8, 8)
    rows, cols = torch.meshgrid(torch.arange(8), torch.arange(8), indexing="ij")
    near = ((rows - r).abs() <= 1) & ((cols - c).abs() <= 1)
    top = int(w.argmax())
    ink = digits.x_test[index, 0] > 0.3  # the pixels the digit is drawn with
    print(f"'{int(digits.y_test[index])}', pixel ({r}, {c}): strongest key at ({top // 8}, {top % 8}), "
          f"{abs(top // 8 - r) + abs(top % 8 - c)} pixels away; {w[~near].sum():.0%} of the weight outside its "
          f"3 × 3 neighbourhood, {w[ink].sum():.0%} on the digit's strokes")

# %% [markdown]
# **What to notice.** With one convolution and pooling the classifier only knows *which* 3 × 3 strokes occur, not how
# they relate, and it does poorly. The attention block — a single head with 4-dimensional queries and keys — raises
# test accuracy by a wide margin without any extra convolution, because each position's feature now summarises
# related positions across the whole digit. γ moves away from 0 as soon as training starts (its sign does not
# matter: $h$ can absorb it) — the network chooses to use the attention path. The maps (and the lines under them)
# show each pixel reading a few far-away pixels, not its 3 × 3 neighbourhood — and not "along its own stroke": the
# pixel on the top of the '0' reads the bottom of the loop, four or more rows down, and the hole just below it; the
# pixels drawn in the background of the '4' and the '7' read the nearest heavy stroke (the 4's crossbar, the 7's
# stem). They fetch the parts of the digit that tell it apart, wherever those are. (A deeper CNN would see the
# whole 8 × 8 digit anyway; attention earns its cost on large feature maps, where convolutions would need many
# layers to connect distant parts — SAGAN's 32 × 32 and 64 × 64 maps.)
#
# ## Summary
#
# - **Message passing**: each node sums messages from its neighbours; a **graph convolution** does it with fixed
#   weights $1/\sqrt{\widehat{\deg}_i \widehat{\deg}_j}$ (with self-loops) and one learned $W$ shared by all
#   nodes. Information travels one edge per layer; many layers over-smooth.
# - **Self-attention is message passing on the complete graph** with weights computed from the nodes — a weighted
#   adjacency matrix built by the input, one per head. Heads are several graphs learned jointly, not an ensemble.
# - **A mask is a graph**: attention masked by a graph's adjacency is graph attention; without a mask (or positions),
#   attention cannot know the graph at all.
# - **SAGAN**: a feature map is a graph of pixels; 1 × 1 convolutions give queries, keys and values, and a γ that
#   starts at 0 lets the block join a CNN as the identity and grow into it.
#
# **Where the graph view leads (beyond this course).** Two well-known models are easiest to read as attention on a
# graph the model draws. **DETR** (Carion et al., 2020) detects objects with a Transformer: a fixed set of learned
# *object queries* attends by cross-attention to a CNN's feature map, and the queries attend to one another, so the
# graph's nodes are "slots for objects" and each slot's edges gather the pixels of one object. **AlphaFold2**'s
# Evoformer (Jumper et al., 2021) keeps a representation of every *pair* of amino-acid residues — the edges of a
# complete graph over the protein — and updates it with attention and "triangle" updates, in which edge $(i, j)$ is
# revised from the edges $(i, k)$ and $(k, j)$ that close a triangle with it, so the edges themselves pass messages.
# Both need data and compute far beyond a laptop, but every part of them is a piece this course has built.
#
# That closes the course's tour of mechanisms: from an RNN's one-step-at-a-time memory (01), through Bahdanau's
# alignments (03), SENet's channel gates (04), dot-product and multi-head attention (05, 06), the Transformer (07)
# and the Vision Transformer (08), to the view that ties them together — attention as learned message passing on a
# graph the model draws for itself. Notebook 10 takes the Transformer to where language models use it: a GPT-style decoder, rotary positions,
# sampling, the KV cache and FlashAttention's online softmax.
