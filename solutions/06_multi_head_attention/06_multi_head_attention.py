# %% [markdown]
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/attention-step-by-step/attention-step-by-step/blob/main/course/06_multi_head_attention/06_multi_head_attention.ipynb)

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
# # 06 · Multi-head attention
#
# Notebook 05's attention, $\operatorname{softmax}(QK^\top/\sqrt{d_k})V$, has no parameters. Use it for
# self-attention on token vectors, $Q = K = V = X$, and there is nothing to learn: the score of token $i$ for token
# $j$ is $x_i \cdot x_j$, fixed by the embeddings; every token mostly attends to itself (05's heatmaps showed the
# bright diagonal); and what a token hands over is its own vector.
#
# The Transformer puts learned matrices around that operation and runs several copies of it side by side:
#
# $$\text{head}_i = \operatorname{Attention}(Q W_Q^{(i)},\; K W_K^{(i)},\; V W_V^{(i)}), \qquad
# \operatorname{MultiHead}(Q, K, V) = \operatorname{Concat}(\text{head}_1, \dots, \text{head}_h)\, W_O .$$
#
# In the paper $d_\text{model} = 512$, $h = 8$ heads, and each head works in $d_k = d_v = 512 / 8 = 64$ dimensions.
# This notebook explains each piece — what $W_Q$ and $W_K$ do to the scores (the video's "rotation" picture, made
# precise), what a head is, why $W_O$ — then you build `split_heads`, `merge_heads` and `MultiHeadAttention`, check
# that it computes exactly what `torch.nn.MultiheadAttention` computes, train it on a task that needs two heads, and
# measure what attention costs as sequences grow.

# %%
import math
import time

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

from attention_steps import by_mode, describe_device, get_device, report_metric, seed_everything
from attention_steps.plotting import attention_grid, plot_losses, show
from attention_steps.testing import assert_close, assert_tensor, expect_value_error, forbid
from attention_steps.training import train
from attention_steps.weights import copy_mha_weights

seed_everything(0)
device = get_device()
print("running on", describe_device(device))

# %% [markdown]
# ## What $W_Q$ and $W_K$ do: the rotation picture, made precise
#
# The AIcia video (notebook 00 lists the sources) explains the projections as *rotations*: "a large weight ⇔ a large inner product ⇔
# the same direction", and $W_Q$, $W_K$ turn the vectors before they "collide", so which pairs point the same way —
# which token attends to which — changes. Learners found this the hardest sentence of the video. Here it is in two
# dimensions. Four tokens; the query is token 0 passed through $W_Q = R(\theta)$, a rotation by $\theta$; the keys
# are the tokens themselves ($W_K = I$).

# %%
tokens = torch.tensor([[2.0, 0.0], [1.2, 1.6], [-1.6, 1.2], [0.2, -2.0]])
names = ["token 0", "token 1", "token 2", "token 3"]


def rotation(theta: float) -> torch.Tensor:
    """The 2×2 matrix that turns a row vector by theta (row-vector convention: x @ R)."""
    c, s = math.cos(theta), math.sin(theta)
    return torch.tensor([[c, s], [-s, c]])


angles = torch.linspace(0, 2 * math.pi, 181)
weights_by_angle = torch.stack([torch.softmax(tokens @ (tokens[0] @ rotation(a)) / math.sqrt(2), dim=0)
                                for a in angles.tolist()])
fig, axes = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [1, 1.6]})
colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
for j, (x, name) in enumerate(zip(tokens, names)):
    axes[0].annotate("", xy=x.tolist(), xytext=(0, 0), arrowprops={"arrowstyle": "->", "color": colors[j], "lw": 2})
    axes[0].text(*(1.12 * x).tolist(), name, color=colors[j], ha="center")
for deg in (60, 150, 240):
    qv = tokens[0] @ rotation(math.radians(deg))
    axes[0].annotate("", xy=qv.tolist(), xytext=(0, 0), arrowprops={"arrowstyle": "->", "color": "k", "ls": "--"})
    axes[0].text(*(0.8 * qv).tolist(), f"q, θ={deg}°", fontsize=8)
axes[0].set(xlim=(-2.6, 2.6), ylim=(-2.6, 2.6), aspect="equal", title="keys (colours) and the rotated query (dashed)")
for j in range(4):
    axes[1].plot(torch.rad2deg(angles), weights_by_angle[:, j], color=colors[j], label=names[j])
axes[1].set(xlabel="rotation θ of W_Q (degrees)", ylabel="weight", title="Which key token 0 attends to")
axes[1].legend()
fig.tight_layout()
show(fig)

# %% [markdown]
# **What to notice.** With $\theta = 0$ token 0 attends to itself. As $W_Q$ turns, the query sweeps round and the
# winning key changes — token 1, then token 2, then token 3 — though the tokens have not moved. That is the video's
# sentence: changing the projection changes *who attends to whom*, while the attention formula stays the same.
#
# Now the precise version. With both projections the score of query token $i$ for key token $j$ is
#
# $$\operatorname{score}(i, j) = (x_i W_Q) \cdot (x_j W_K) = x_i\, W_Q W_K^\top\, x_j^\top = x_i\, M\, x_j^\top,
# \qquad M = W_Q W_K^\top .$$
#
# Three consequences:
#
# 1. **Only $M$ matters.** Rotating queries and keys by the *same* rotation $R$ changes no score, since
#    $R R^\top = I$. "Rotating" is meaningful only as a rotation of one relative to the other — and rotations are
#    just a special case: $W_Q$ and $W_K$ are arbitrary matrices, so $M$ can also stretch some directions, ignore
#    others, and be asymmetric (token $i$ may attend to $j$ without $j$ attending to $i$). A head can compare tokens
#    by one aspect (say, grammatical role) and ignore the rest.
# 2. **Everything is learned.** Every entry of $W_Q$, $W_K$, $W_V$, $W_O$ starts random and is trained by ordinary
#    backpropagation with the rest of the model — answering several of the AIcia video's commenters. Nothing is a stored
#    key→value table that keeps learning while it translates: keys and values are recomputed from each input
#    sentence, and after training the matrices are fixed. (The original Transformer learned them from the WMT 2014
#    English–German and English–French translation corpora, about 4.5 and 36 million sentence pairs.)
# 3. **Why two matrices, not one $M$?** Per head, $W_Q$ and $W_K$ are $d_\text{model} \times d_k$, so $M$ has rank at
#    most $d_k = 64$: two thin matrices cost $2 \cdot 512 \cdot 64 = 65{,}536$ parameters where a full $M$ would cost
#    $512^2 = 262{,}144$ per head. In cross-attention queries and keys come from different sequences, which the two
#    sides express naturally. And the factorised form trains differently from a single matrix even where it computes
#    the same function (the video's author said as much).
#
# Two more questions from the comments. *Could a small nonlinear network replace the linear projections?* In
# principle yes; linear maps keep every step a matrix product that runs in parallel on all positions, and the
# nonlinearity comes from the softmax and the feed-forward layers (notebook 07). *Do trained $W$'s really act as
# "query", "key" and "value"?* Nothing forces them to: the names describe the designers' intent; training only
# lowers the loss. In cross-attention the reading is natural — the decoder's $Q$ asks, and $K$ fetches the matching
# $V$ from the source.
#
# *What does a value vector carry?* $v_j = x_j W_V$ is a linear read-out of whatever $x_j$ holds at that layer. In
# the first layer $x_j$ is a token's embedding plus its position's encoding, so $v_j$ carries the token and its
# position. In later layers $x_j$ is the residual stream after earlier attentions and feed-forward blocks have added
# to it, so $v_j$ carries a mix of the token, its position and what it has gathered from its context — how much of
# each depends on the layer and on what training found useful. It is not a dictionary entry for the word's
# "meaning", and the same word gives different values in different sentences.
#
# *Why not one matrix for queries and keys?* With $W_Q = W_K = W$, $M = W W^\top$ is symmetric — token $i$ scores
# $j$ exactly as $j$ scores $i$ — and positive semi-definite, so $\operatorname{score}(i, i) = \lVert x_i W
# \rVert^2$, and for every pair $\operatorname{score}(i,i) + \operatorname{score}(j,j) \ge 2\operatorname{score}(i,j)$:
# tokens tend to attend to themselves most. Separate random $W_Q \ne W_K$ have neither property. The second half of
# the cell below measures both on random tokens.

# %%
x = torch.randn(5, 8)
W_Q, W_K = torch.randn(8, 8), torch.randn(8, 8)
R = torch.linalg.qr(torch.randn(8, 8)).Q                       # a random rotation (orthogonal matrix)
print("scores via projections == x M x^T          :", torch.allclose((x @ W_Q) @ (x @ W_K).T, x @ (W_Q @ W_K.T) @ x.T, atol=1e-4))
print("same rotation on both sides changes nothing:", torch.allclose((x @ W_Q @ R) @ (x @ W_K @ R).T, (x @ W_Q) @ (x @ W_K).T, atol=1e-3))
print("a thin pair (8×2)(2×8) gives M of rank      :", torch.linalg.matrix_rank(torch.randn(8, 2) @ torch.randn(2, 8)).item())

tokens_many = torch.randn(200, 16, 32)  # 200 random "sentences" of 16 tokens, width 32
W_shared, W_other = torch.randn(32, 8), torch.randn(32, 8)
for label, (Wq, Wk) in {"W_Q = W_K": (W_shared, W_shared), "W_Q ≠ W_K": (W_shared, W_other)}.items():
    scores = (tokens_many @ Wq) @ (tokens_many @ Wk).transpose(-2, -1)  # (200, 16, 16)
    symmetric = torch.allclose(scores, scores.transpose(-2, -1), atol=1e-3)
    self_top = (scores.argmax(-1) == torch.arange(16)).float().mean().item()
    print(f"{label}: scores symmetric: {symmetric!s:<5}; a token's largest score is its own in {self_top:.0%} of rows "
          f"(1/16 = {1 / 16:.0%} by chance)")

# %% [markdown]
# ## Heads: several attentions, each in its own slice
#
# One attention gives every query *one* probability distribution over the keys. A token often needs several things
# at once — the previous word, the subject of its verb, the matching bracket — and one softmax cannot put most of its
# weight in two places. Multi-head attention computes $Q = X W_Q$, $K = X W_K$, $V = X W_V$ once, with full
# $d_\text{model} \times d_\text{model}$ matrices, and cuts each into $h$ slices of $d_k = d_\text{model}/h$ columns:
# head $i$ takes columns $i \cdot d_k$ to $(i+1) \cdot d_k - 1$. (That is the same as giving head $i$ its own
# $W_Q^{(i)}$, the $i$-th block of columns of $W_Q$.) Each head runs notebook 05's attention in its slice, with its
# own weights and $\sqrt{d_k}$ scale.
#
# - **A head's output is a matrix.** For one sequence it is $(T_q, d_k)$: one row per query position. (In the video
#   a single query $q$ gave a vector; stack the queries and it is a matrix — one commenter's question.)
# - **Concatenation is along the features.** The $h$ head outputs of width $d_k$ sit side by side,
#   $(T_q, h \cdot d_k) = (T_q, d_\text{model})$; each row of the result is one position's $h$ short vectors laid end
#   to end.
# - **Heads are not an ensemble.** The LiberalArts booklet and the *Attention機構* deck call multi-head attention an "ensemble" (アンサンブル) of
#   attentions. An ensemble trains complete models separately and averages their answers. Heads are slices of
#   *one* layer, trained jointly by one loss, each too narrow ($d_k = D/h$) to do the layer's job alone; their outputs
#   are concatenated — not averaged — and mixed by $W_O$. The total cost is that of one full-width attention.
# - **Not only for text.** Anything arranged as a sequence of vectors can attend: a CNN's feature map `(B, C, H, W)`
#   becomes `H·W` tokens of width `C` (SAGAN's self-attention, notebook 09), and a Vision Transformer makes image
#   patches the tokens (notebook 08).
#
# In tensors, batch first, the head axis goes right after the batch: `(B, S, D)` → `(B, h, S, D/h)`, so that
# notebook 05's attention, which treats every leading axis as a batch axis, runs all heads at once.
#
# ### Exercise 1 — `split_heads(x, num_heads)`

# %% nbgrader={"grade": false, "grade_id": "split_heads", "locked": false, "schema_version": 3, "solution": true, "task": false}
def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """Split the feature axis into heads: ``(B, S, D)`` → ``(B, num_heads, S, D // num_heads)``.

    Head ``i`` takes feature columns ``i * d_k`` … ``(i + 1) * d_k - 1`` with ``d_k = D // num_heads`` (as PyTorch's
    ``nn.MultiheadAttention`` does): ``out[b, i, s, c] == x[b, s, i * d_k + c]``.

    Args:
        x: tensor of shape ``(B, S, D)``, any dtype.
        num_heads: a positive int that divides ``D``.

    Returns:
        A tensor of shape ``(B, num_heads, S, D // num_heads)``, same dtype and device (a view is fine; it need not
        be contiguous). Gradients flow back to ``x``.

    Raises:
        ValueError: naming the shapes, if ``x`` is not 3-D, if ``num_heads < 1``, or if ``D`` is not divisible by
            ``num_heads``.
    """
    ### BEGIN SOLUTION
    if x.dim() != 3:
        raise ValueError(f"split_heads expects (B, S, D), got shape {tuple(x.shape)}")
    if num_heads < 1 or x.shape[-1] % num_heads:
        raise ValueError(f"num_heads={num_heads} must be positive and divide D={x.shape[-1]} (x {tuple(x.shape)})")
    B, S, D = x.shape
    return x.view(B, S, num_heads, D // num_heads).transpose(1, 2)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_split_heads", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Visible tests: shape, which columns each head gets, a clear error when the heads don't divide D.
x = torch.arange(2 * 3 * 8.0).reshape(2, 3, 8)
parts = split_heads(x, 4)
assert_tensor(parts, shape=(2, 4, 3, 2), dtype=torch.float32, name="split_heads(x of (2, 3, 8), 4)")
assert_close(parts[0, 0], x[0, :, 0:2], name="head 0 of sequence 0 (columns 0-1 of every position)")
assert_close(parts[1, 3], x[1, :, 6:8], name="head 3 of sequence 1 (columns 6-7 of every position)")
expect_value_error(split_heads, torch.randn(2, 3, 10), 4, mention=["10", "4"], name="split_heads with D=10, 4 heads")

# %% [markdown]
# ### Exercise 2 — `merge_heads(x)`
#
# The inverse: put the heads' outputs side by side again, head 0's columns first.

# %% nbgrader={"grade": false, "grade_id": "merge_heads", "locked": false, "schema_version": 3, "solution": true, "task": false}
def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """Concatenate the heads along the features: ``(B, h, S, d)`` → ``(B, S, h * d)``, the inverse of ``split_heads``.

    ``out[b, s, i * d + c] == x[b, i, s, c]``: head ``i``'s output fills columns ``i * d`` … ``(i + 1) * d - 1``.

    Args:
        x: tensor of shape ``(B, h, S, d)``, any dtype, contiguous or not (e.g. the output of attention applied to
            ``split_heads``' result).

    Returns:
        A tensor of shape ``(B, S, h * d)``, same dtype and device. ``merge_heads(split_heads(x, h))`` equals ``x``.
        Gradients flow back to ``x``.

    Raises:
        ValueError: naming the shape, if ``x`` is not 4-D.
    """
    ### BEGIN SOLUTION
    if x.dim() != 4:
        raise ValueError(f"merge_heads expects (B, h, S, d), got shape {tuple(x.shape)}")
    B, h, S, d = x.shape
    return x.transpose(1, 2).reshape(B, S, h * d)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_merge_heads", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Visible tests: shape, where each head lands, and the round trip with split_heads' definition.
heads = torch.arange(2 * 4 * 3 * 2.0).reshape(2, 4, 3, 2)       # (B=2, h=4, S=3, d=2)
merged = merge_heads(heads)
assert_tensor(merged, shape=(2, 3, 8), dtype=torch.float32, name="merge_heads of (2, 4, 3, 2)")
assert_close(merged[0, :, 0:2], heads[0, 0], name="columns 0-1 of sequence 0 (head 0's output)")
assert_close(merged[1, :, 6:8], heads[1, 3], name="columns 6-7 of sequence 1 (head 3's output)")
x = torch.randn(2, 5, 12)
assert_close(merge_heads(x.view(2, 5, 3, 4).transpose(1, 2)), x, name="merge_heads(split of x) (should give x back)")

# %% [markdown]
# ## $W_O$: is it needed after the concatenation?
#
# A commenter asked the sharpest question about the formula: the concatenation is already $d_\text{model} = 8 \times 64
# = 512$ wide, so why multiply by one more matrix $W_O$? Split $W_O$ into $h$ blocks of $d_k$ rows, $W_O^{(i)}$. Then
#
# $$\operatorname{Concat}(\text{head}_1, \dots, \text{head}_h)\, W_O = \sum_{i=1}^{h} \text{head}_i\, W_O^{(i)} .$$
#
# So $W_O$ is what turns "side by side" into a **sum of the heads' contributions**, each written into the full
# $d_\text{model}$-dimensional space through its own map. Without it, head $i$ could only ever write into its own
# 64 coordinates. That matters because of what comes next in a Transformer: the attention output is *added* to its
# input, $x + \operatorname{MultiHead}(x)$, and normalised; every later layer reads that running sum. With $W_O$ each
# head can add to whichever directions the rest of the network uses; without it, head 3's information is pinned to
# coordinates 192–255.
#
# Is it mathematically redundant? Partly: head $i$'s value map and its block of $W_O$ always appear as the product
# $W_V^{(i)} W_O^{(i)}$, a $d_\text{model} \times d_\text{model}$ matrix of rank $\le d_k$, so one could fold them
# together — at the price of $h$ full-size matrices instead of two thin ones. $W_O$ is the cheap way to give every head
# a full-width output.

# %%
h_demo, S_demo, d_k = 4, 3, 2
head_outputs = torch.randn(h_demo, S_demo, d_k)                 # four heads, each a (S, d_k) matrix
W_O = torch.randn(h_demo * d_k, h_demo * d_k)
concat = torch.cat(list(head_outputs), dim=-1)                  # (S, h·d_k)
per_head = sum(head_outputs[i] @ W_O[i * d_k:(i + 1) * d_k] for i in range(h_demo))
print("Concat(heads) @ W_O == Σ_i head_i @ W_O^(i):", torch.allclose(concat @ W_O, per_head, atol=1e-5))

# %% [markdown]
# ### Exercise 3 — `MultiHeadAttention(d_model, num_heads, dropout=0.0)`
#
# Put it together as an `nn.Module`. The layout follows the paper and PyTorch:
#
# 1. project: `Q = q_proj(query)`, `K = k_proj(key)`, `V = v_proj(value)` — each an `nn.Linear(d_model, d_model)` with
#    bias (torch stores the weight as `(out, in)` and computes `x @ weight.T + bias`, the row-vector $xW + b$);
# 2. split each into heads (like `split_heads`);
# 3. scaled dot-product attention in every head at once, scaled by $\sqrt{d_k}$ with $d_k$ = `d_model // num_heads`
#    (the *head* width, not `d_model`), masked with the course's convention, a fully masked query row giving zero
#    weights;
# 4. merge the heads (like `merge_heads`) and apply `out_proj`.
#
# Write the attention step inline (five lines, as in notebook 05). `torch.nn.functional.scaled_dot_product_attention`
# and `nn.MultiheadAttention`'s functional core are off limits here — the tests make them raise; `torch.softmax` is
# fine. Keep the attribute names `q_proj`, `k_proj`, `v_proj`, `out_proj`: the tests copy the weights of a
# `torch.nn.MultiheadAttention` into your module by those names (with `attention_steps.weights.copy_mha_weights`) and
# require the same outputs and weights.
#
# **Masks.** The rule of notebook 05, unchanged: `True` = allowed, the last two dimensions `(T_q or 1, T_k)`, the
# ones before them broadcast — now against `(B, H)`. A `(T_q, T_k)` mask such as `causal_mask(T)` is shared by every
# sequence and head. A per-sequence mask needs its head axis, because broadcasting lines dimensions up from the
# right: a `(B, 1, T_k)` key-padding mask would put its batch axis against the heads, so pass
# `padding_mask(lengths, S)[:, None, None, :]`, shape `(B, 1, 1, S)`.
#
# The checks of `query`, `key` and `value` are given (the cell below): they are bookkeeping, not attention. The mask
# check is yours — it is the rule above.
#
# When you finish, the test cell will tell you whether your module agrees with PyTorch's to float32 precision.

# %%
def check_attention_inputs(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, d_model: int) -> None:
    """Given code: raise ValueError, naming the shapes, unless query is (B, T_q, d_model) and key and value are
    (B, T_k, d_model)."""
    shapes = f"query {tuple(query.shape)}, key {tuple(key.shape)}, value {tuple(value.shape)}"
    if query.dim() != 3 or key.dim() != 3 or value.dim() != 3:
        raise ValueError(f"query, key and value must be (B, T, d_model); got {shapes}")
    if query.shape[-1] != d_model or key.shape[-1] != d_model or value.shape[-1] != d_model:
        raise ValueError(f"the last dim of query, key and value must be d_model={d_model}; got {shapes}")
    if not query.shape[0] == key.shape[0] == value.shape[0]:
        raise ValueError(f"query, key and value must have the same batch size; got {shapes}")
    if key.shape[1] != value.shape[1]:
        raise ValueError(f"key and value must have the same length; got {shapes}")


# %% nbgrader={"grade": false, "grade_id": "MultiHeadAttention", "locked": false, "schema_version": 3, "solution": true, "task": false}
class MultiHeadAttention(nn.Module):
    """Multi-head attention ("Attention Is All You Need"), batch first, with the course's mask convention.

    ``MultiHeadAttention(d_model, num_heads, dropout=0.0)``:

    - raises ``ValueError`` (naming both numbers) if ``num_heads < 1`` or ``d_model`` is not divisible by
      ``num_heads``;
    - has attributes ``d_model``, ``num_heads``, ``head_dim = d_model // num_heads``, and four projections
      ``q_proj``, ``k_proj``, ``v_proj``, ``out_proj``, each an ``nn.Linear(d_model, d_model)`` **with bias**, and no
      other parameters (4·(d_model² + d_model) in all);
    - applies dropout with probability ``dropout`` to the attention weights before they multiply the values, in
      training mode only (``nn.Dropout``); in ``eval()`` mode, or with ``dropout=0``, the module is deterministic.

    ``forward(query, key, value, mask=None) -> (out, weights)``:

    Args:
        query: ``(B, T_q, d_model)`` float tensor.
        key: ``(B, T_k, d_model)``; value: ``(B, T_k, d_model)``. Self-attention passes the same tensor three times.
        mask: optional **bool** tensor, ``True`` where attention is allowed (the opposite of
            ``nn.MultiheadAttention``'s masks), following notebook 05's rule: at least 2-D, last two dims
            ``(T_q or 1, T_k)``, broadcastable to ``(B, num_heads, T_q, T_k)`` — e.g. ``(T_q, T_k)``,
            ``(B, 1, 1, T_k)`` (key padding), ``(B, 1, T_q, T_k)``, ``(B, num_heads, T_q, T_k)``.

    Returns:
        ``out``: ``(B, T_q, d_model)``, ``out_proj(merge(softmax(Q_h K_h^T / sqrt(head_dim)) V_h))`` where ``Q_h, K_h,
        V_h`` are the projections split into heads as ``split_heads`` does (head ``i`` = feature columns
        ``i*head_dim … (i+1)*head_dim - 1``).
        ``weights``: ``(B, num_heads, T_q, T_k)``, the per-head softmax weights (before dropout); each row sums to 1
        over the keys, is exactly 0 at masked keys, and is all 0 for a query with no allowed key (whose attention
        output is then zero, so ``out`` there equals ``out_proj.bias``). Never NaN; masked scores are filled with
        ``torch.finfo(dtype).min`` or a safely handled ``-inf``. Gradients reach every parameter.

    Raises:
        ValueError: naming the shapes, if query/key/value are not 3-D, their last dim is not ``d_model``, their batch
            sizes differ or key and value lengths differ (the given first line of ``forward`` checks these), or
            if the mask is not a bool tensor that follows the rule above (your check).

    Do not call ``torch.nn.functional.scaled_dot_product_attention``, ``nn.MultiheadAttention`` or
    ``F.multi_head_attention_forward``.
    """

    def __init__(self, d_model: int, num_heads: int, dropout: float = 0.0):
        super().__init__()
        ### BEGIN SOLUTION
        if num_heads < 1 or d_model % num_heads:
            raise ValueError(f"num_heads={num_heads} must be positive and divide d_model={d_model}")
        self.d_model, self.num_heads, self.head_dim = d_model, num_heads, d_model // num_heads
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model)
        self.v_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(dropout)
        ### END SOLUTION

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        check_attention_inputs(query, key, value, self.d_model)  # given
        ### BEGIN SOLUTION
        B, T, D = query.shape
        S, h, d = key.shape[1], self.num_heads, self.head_dim
        q = self.q_proj(query).view(B, T, h, d).transpose(1, 2)
        k = self.k_proj(key).view(B, S, h, d).transpose(1, 2)
        v = self.v_proj(value).view(B, S, h, d).transpose(1, 2)
        scores = (q * d ** -0.5) @ k.transpose(-2, -1)                    # (B, h, T, S)
        if mask is not None:
            if mask.dtype != torch.bool:
                raise ValueError(f"mask must be a bool tensor (True = attend), got {mask.dtype}")
            try:
                if mask.dim() < 2 or mask.shape[-1] != S or mask.shape[-2] not in (1, T) or \
                        torch.broadcast_shapes(mask.shape, scores.shape) != scores.shape:
                    raise RuntimeError
            except RuntimeError:
                raise ValueError(f"mask of shape {tuple(mask.shape)} does not fit (B, H, T_q, T_k) = "
                                 f"{tuple(scores.shape)}: last two dims (T_q or 1, T_k), the rest broadcast") from None
            scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        weights = torch.softmax(scores, dim=-1)
        if mask is not None:
            weights = weights.masked_fill(~mask.any(dim=-1, keepdim=True), 0.0)
        out = (self.dropout(weights) @ v).transpose(1, 2).reshape(B, T, D)
        return self.out_proj(out), weights
        ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_MultiHeadAttention", "locked": true, "points": 8, "schema_version": 3, "solution": false, "task": false}
# Visible tests: attributes, parameter count, shapes, equality with torch.nn.MultiheadAttention (same weights), the
# mask convention, a clear error when the heads don't divide d_model, and the forbidden built-ins.
torch.manual_seed(0)
mha = MultiHeadAttention(16, 4)
for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
    layer = getattr(mha, name, None)
    assert isinstance(layer, nn.Linear) and tuple(layer.weight.shape) == (16, 16) and layer.bias is not None, \
        f"mha.{name} should be an nn.Linear(16, 16) with bias, got {layer!r}"
n_params = sum(p.numel() for p in mha.parameters())
assert n_params == 4 * (16 * 16 + 16), f"MultiHeadAttention(16, 4) has {n_params} parameters, expected 4·(16² + 16) = 1088"

q_in, kv_in = torch.randn(2, 5, 16), torch.randn(2, 7, 16)
out, w = mha(q_in, kv_in, kv_in)
assert_tensor(out, shape=(2, 5, 16), dtype=torch.float32, name="output (B, T_q, d_model)")
assert_tensor(w, shape=(2, 4, 5, 7), dtype=torch.float32, name="weights (B, num_heads, T_q, T_k)")
assert_close(w.sum(-1), torch.ones(2, 4, 5), name="weights.sum(-1) (softmax over the keys)")

torch_mha = nn.MultiheadAttention(16, 4, batch_first=True)
with torch.no_grad():                       # torch starts its biases at zero; random ones test that yours are used
    torch_mha.in_proj_bias.normal_()
    torch_mha.out_proj.bias.normal_()
copy_mha_weights(torch_mha, mha)
want_out, want_w = torch_mha(q_in, kv_in, kv_in, need_weights=True, average_attn_weights=False)
out, w = mha(q_in, kv_in, kv_in)
with torch.no_grad():  # the per-head scores Q_h K_h^T before any scale, from torch's projections
    W_in, b_in = torch_mha.in_proj_weight, torch_mha.in_proj_bias
    heads = lambda t: t.view(2, -1, 4, 4).transpose(1, 2)  # (B, T, 16) -> (B, 4 heads, T, 4)
    raw_scores = heads(q_in @ W_in[:16].T + b_in[:16]) @ heads(kv_in @ W_in[16:32].T + b_in[16:32]).transpose(-2, -1)
if torch.allclose(w, torch.softmax(raw_scores / 4, dim=-1), atol=1e-5):
    raise AssertionError("the weights are softmax(Q_h K_h^T / 4): scale by sqrt(d_k) = sqrt(head_dim) = 2 — d_k is "
                         "the width of one head (d_model // num_heads), not d_model, and the square root of it")
assert_close(w, want_w, atol=1e-5, name="weights vs torch.nn.MultiheadAttention with the same weights")
assert_close(out, want_out, atol=1e-5, name="output vs torch.nn.MultiheadAttention with the same weights")

keep = torch.arange(7) < torch.tensor([7, 3])[:, None]            # (B, T_k): True on real keys (course convention)
want_out, want_w = torch_mha(q_in, kv_in, kv_in, key_padding_mask=~keep, average_attn_weights=False)  # torch: True = blocked
out, w = mha(q_in, kv_in, kv_in, mask=keep[:, None, None, :])
assert_close(w, want_w, atol=1e-5, name="weights with a key-padding mask (ours: True = allowed; torch's: True = blocked)")
assert_close(out, want_out, atol=1e-5, name="output with a key-padding mask")

# every error the docstring promises, one call each
expect_value_error(MultiHeadAttention, 10, 3, mention=["10", "3"], name="MultiHeadAttention(10, 3)")
expect_value_error(mha, q_in[0], kv_in, kv_in, name="MultiHeadAttention with a 2-D query (the given check)")
expect_value_error(mha, q_in, kv_in, kv_in, torch.ones(5, 7), mention=["float"],
                   name="MultiHeadAttention with a float mask (masks are bool: True = allowed)")
expect_value_error(mha, q_in, kv_in, kv_in, torch.ones(7, dtype=torch.bool), mention=["(7,)"],
                   name="MultiHeadAttention with a 1-D mask (the rule: last two dims (T_q or 1, T_k))")
expect_value_error(mha, q_in, kv_in, kv_in, torch.ones(7, 5, dtype=torch.bool), mention=["(7, 5)"],
                   name="MultiHeadAttention with a (T_k, T_q) mask for 5 queries and 7 keys")
with forbid("scaled_dot_product_attention", "multi_head_attention", exercise="MultiHeadAttention"):
    mha(q_in, kv_in, kv_in)

# %% [markdown]
# Your module and PyTorch's compute the same function. Two remarks on `torch.nn.MultiheadAttention`:
#
# - **Its masks mean the opposite.** `attn_mask` and `key_padding_mask` (and every mask of `nn.Transformer*`) are
#   `True` where attention is **blocked**; the course's masks are `True` where it is allowed. Convert with `~`, as the
#   test cell did. By default it also *averages* the weights over the heads (`average_attn_weights=True`).
# - **Parameter count.** Both have $4(d_\text{model}^2 + d_\text{model})$ parameters — for the paper's sizes
#   $4 \cdot (512^2 + 512) = 1{,}050{,}624$ per attention layer — **whatever the number of heads**: heads slice the
#   same four matrices, they do not add parameters.

# %%
print(f"{'heads':>5} {'ours':>8} {'torch':>8}")
for h in (1, 2, 4, 8):
    ours_count = sum(p.numel() for p in MultiHeadAttention(512, h).parameters())
    torch_count = sum(p.numel() for p in nn.MultiheadAttention(512, h).parameters())
    print(f"{h:>5} {ours_count:>8,} {torch_count:>8,}")

# %% [markdown]
# One of those parameters can never learn anything. The key bias $b_K$ adds the same vector to every key, so it adds
# $q \cdot b_K$ to *all* of a query's scores alike — and softmax ignores a constant added to all its inputs
# (notebook 05). Its gradient is therefore zero, whatever the data, up to float32 rounding. (PyTorch's module has the
# same useless bias; it is harmless, and the tests' weight copying relies on both modules having it.)

# %%
probe = MultiHeadAttention(32, 4)
with torch.no_grad():
    probe.k_proj.bias.normal_()
xs = torch.randn(4, 10, 32)
(probe(xs, xs, xs)[0] * torch.randn(4, 10, 32)).sum().backward()
for name in ("q_proj.bias", "k_proj.bias", "v_proj.bias", "out_proj.bias"):
    print(f"|gradient of {name:13s}| = {dict(probe.named_parameters())[name].grad.norm().item():.2e}")

# %% [markdown]
# ## Experiment — a task that needs two heads
#
# Give every position of a random token sequence two jobs: name the token just **before** it and the token just
# **after** it (cyclically: position 0's left neighbour is the last token). The model is as small as it can be: token
# plus learned position embeddings, *one* multi-head self-attention layer, and two linear read-outs (left, right) of
# its output — no residual, no feed-forward, so everything a position learns must come through attention.
#
# With one head, each position has one weight distribution. If it splits its weight between both neighbours, the
# output is (a projection of) the *sum* of their embeddings, and a sum does not say which token was on which side;
# if it looks at one neighbour, the other is lost. With two heads of half the width (same parameter count), one head
# can look left and the other right, and $W_O$ routes each to its read-out.

# %%
vocab, length, width = 12, 8, 32
steps = by_mode(full=400, fast=20)


class NeighbourModel(nn.Module):
    def __init__(self, num_heads: int):
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.position = nn.Parameter(torch.randn(length, width))
        self.attention = MultiHeadAttention(width, num_heads)
        self.left, self.right = nn.Linear(width, vocab), nn.Linear(width, vocab)

    def forward(self, ids):
        x = self.embed(ids) + self.position
        h, weights = self.attention(x, x, x)
        return self.left(h), self.right(h), weights


def neighbour_batch(n: int, generator: torch.Generator):
    ids = torch.randint(0, vocab, (n, length), generator=generator)
    return ids.to(device), ids.roll(1, dims=1).to(device), ids.roll(-1, dims=1).to(device)


def neighbour_loss(model, batch):
    ids, left, right = batch
    left_logits, right_logits, _ = model(ids)
    return F.cross_entropy(left_logits.flatten(0, 1), left.flatten()) + \
        F.cross_entropy(right_logits.flatten(0, 1), right.flatten())


held_out = neighbour_batch(by_mode(full=2000, fast=200), torch.Generator().manual_seed(1234))  # fixed evaluation set
histories, accuracy, models = {}, {}, {}
for heads in (1, 2):
    seed_everything(0)
    model = NeighbourModel(heads).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    data_gen = torch.Generator().manual_seed(heads)
    histories[f"{heads} head{'s' if heads > 1 else ''}"] = train(
        model, optimizer, neighbour_loss, lambda step: neighbour_batch(64, data_gen), steps,
        desc=f"{heads} head(s)")
    with torch.no_grad():
        left_logits, right_logits, _ = model(held_out[0])
        both = (left_logits.argmax(-1) == held_out[1]) & (right_logits.argmax(-1) == held_out[2])
    accuracy[heads] = both.float().mean().item()
    models[heads] = model
    print(f"{heads} head(s): both neighbours right at {100 * accuracy[heads]:.1f} % of positions")
report_metric("neighbour task, 2 heads: both neighbours right", accuracy[2], notebook="06_multi_head_attention")
report_metric("neighbour task, 1 head: both neighbours right", accuracy[1], notebook="06_multi_head_attention")

fig, ax = plt.subplots(figsize=(6, 3.4))
plot_losses(histories, ax=ax, title="Neighbour task: one head vs two")
fig.tight_layout()
show(fig)
letters = [chr(ord("a") + int(i)) for i in held_out[0][0].tolist()]
labels = [f"{p}:{t}" for p, t in enumerate(letters)]
with torch.no_grad():
    _, _, w2 = models[2](held_out[0][:1])
    _, _, w1 = models[1](held_out[0][:1])
show(attention_grid(torch.cat([w1[0], w2[0]]).cpu(), labels, labels, ncols=3,
                    titles=["1 head: its only head", "2 heads: head 0", "2 heads: head 1"],
                    suptitle="Attention weights on one held-out sequence (row = query position)"))

# %% [markdown]
# **What to notice.** The two-head model solves the task (its loss falls to almost zero); the one-head model
# plateaus with one of the two neighbours mostly wrong. In the heatmaps, the two heads of the trained model are two
# shifted diagonals — one head looks one step left, the other one step right, wrapping around at the ends — while
# the single head of the other model can only follow one of them. Nothing told the heads to specialise; one loss,
# trained jointly, made them different, which is the "jointly trained subspaces, not an ensemble" point in action.
# (Each head here is 16 wide; together they cost exactly what the one 32-wide head costs.)
#
# ## What attention costs: $O(S^2)$
#
# Every query scores every key, so a layer with $S$ positions computes and *stores* $H \cdot S^2$ weights per
# sequence — they are needed again in the backward pass. Double the sequence, and time and memory for that part
# quadruple, while the projections only double. PyTorch has fused kernels
# (`F.scaled_dot_product_attention`, used by `nn.MultiheadAttention` when you do not ask for the weights) that never
# store the $S \times S$ matrix: they compute the softmax block by block ("flash attention") and recompute what the
# backward pass needs. They cannot return the weights, which is why your module, which must, keeps the full matrix.
#
# Below, forward + backward of one layer ($B = 2$, $d_\text{model} = 128$, 4 heads) as $S$ grows, for your module,
# `nn.MultiheadAttention` asked for the weights and not, and `F.scaled_dot_product_attention` alone (no projections).
# Memory is measured as the bytes the forward pass keeps for the backward pass (`saved_tensors_hooks` — it works the
# same on a CPU and a GPU). On a GPU the same cell shows the fused kernels' advantage in time too.

# %%
def saved_bytes(fn) -> int:
    """Bytes of the distinct tensors that autograd keeps during ``fn()`` for the backward pass."""
    seen, total = set(), [0]

    def pack(t):
        storage = t.untyped_storage()
        key = (storage.data_ptr(), storage.nbytes())
        if key not in seen:
            seen.add(key)
            total[0] += storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return total[0]


def time_fwd_bwd(fns: dict, repeats: int) -> dict:
    """Seconds of forward + backward for each function: the fastest of ``repeats`` runs (the one least disturbed by
    whatever else the machine is doing). The functions take turns, so a busy moment hits them all alike."""
    times = {name: [] for name in fns}
    for r in range(repeats + 1):
        for name, fn in fns.items():
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            out = fn()
            out.float().sum().backward()
            if device.type == "cuda":
                torch.cuda.synchronize()
            if r > 0:                                   # the first round warms up
                times[name].append(time.perf_counter() - start)
    return {name: min(ts) for name, ts in times.items()}


def contenders(ours, theirs, x, heads):
    B, S, D = x.shape
    q = x.detach().view(B, S, heads, D // heads).transpose(1, 2).contiguous().requires_grad_()
    return {
        "your MultiHeadAttention": lambda: ours(x, x, x)[0],
        "nn.MultiheadAttention, need_weights=True": lambda: theirs(x, x, x, need_weights=True,
                                                                   average_attn_weights=False)[0],
        "nn.MultiheadAttention, need_weights=False": lambda: theirs(x, x, x, need_weights=False)[0],
        "F.scaled_dot_product_attention (no projections)": lambda: F.scaled_dot_product_attention(q, q, q),
    }


B_cost, D_cost, H_cost = 2, 128, 4
lengths = by_mode(full=[64, 128, 256, 512, 1024], fast=[16, 32])
ours = MultiHeadAttention(D_cost, H_cost).to(device)
theirs = nn.MultiheadAttention(D_cost, H_cost, batch_first=True).to(device)
cost_time, cost_memory = {}, {}
for S in lengths:
    x = torch.randn(B_cost, S, D_cost, device=device, requires_grad=True)
    fns = contenders(ours, theirs, x, H_cost)
    for name, t in time_fwd_bwd(fns, repeats=by_mode(full=9 if S <= 256 else 3, fast=1)).items():
        cost_time.setdefault(name, []).append(t * 1e3)
    for name, fn in fns.items():
        cost_memory.setdefault(name, []).append(saved_bytes(fn) / 2**20)

fig, axes = plt.subplots(1, 2, figsize=(12, 4))
for name in cost_time:
    axes[0].plot(lengths, cost_time[name], "o-", label=name)
    axes[1].plot(lengths, cost_memory[name], "o-", label=name)
quad = [cost_memory["your MultiHeadAttention"][-1] * (S / lengths[-1]) ** 2 for S in lengths]
axes[1].plot(lengths, quad, "k:", label="∝ S²")
axes[0].set(xscale="log", yscale="log", xlabel="sequence length S", ylabel="ms (forward + backward)",
            title=f"Time, B={B_cost}, d_model={D_cost}, {H_cost} heads ({device.type})")
axes[1].set(xscale="log", yscale="log", xlabel="sequence length S", ylabel="MiB kept for backward",
            title="Memory kept for the backward pass")
for ax in axes:
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)  # the same four contenders in both panels
fig.tight_layout()
show(fig)

# %% [markdown]
# **What to notice.** Memory of your module and of `nn.MultiheadAttention` with weights follows the dotted $S^2$ line
# once $S$ exceeds the width: at $S = 1024$ the weights alone are $2 \cdot 4 \cdot 1024^2$ floats = 32 MiB per copy,
# for a layer with 66 k parameters. The fused paths grow only linearly: they keep $Q$, $K$, $V$, the output and one
# number per row. Time grows toward $S^2$ for all of them on a CPU; on a GPU the fused kernels pull far ahead. (Timings
# are only as good as the machine is quiet: when other programs keep the cores busy, a kernel that splits its work
# over threads waits for a free core, and the curve jumps. The memory panel does not depend on load.) This
# quadratic cost is why long-context models use fused kernels, and why so many papers (the LiberalArts booklet
# mentions Reformer's hashing) try to avoid scoring every pair.
#
# ### How fast is your module?
#
# The course's benchmark setting: $B = 8$, $S = 256$, $d_\text{model} = 256$, 8 heads, forward + backward, your module
# against `nn.MultiheadAttention` with the same weights, measured in turns in the same run.

# %%
B_b, S_b, D_b, H_b = by_mode(full=(8, 256, 256, 8), fast=(2, 32, 32, 4))
ours = MultiHeadAttention(D_b, H_b).to(device)
theirs = nn.MultiheadAttention(D_b, H_b, batch_first=True).to(device)
copy_mha_weights(theirs, ours)
x = torch.randn(B_b, S_b, D_b, device=device, requires_grad=True)
bench = contenders(ours, theirs, x, H_b)
bench.pop("F.scaled_dot_product_attention (no projections)")
fastest = time_fwd_bwd(bench, repeats=by_mode(full=9, fast=1))
for name, t in fastest.items():
    print(f"{name:45s} {t * 1e3:8.1f} ms")
report_metric("your MHA / torch MHA time (need_weights=True), fwd+bwd B=8 S=256 D=256 h=8",
              fastest["your MultiHeadAttention"] / fastest["nn.MultiheadAttention, need_weights=True"],
              notebook="06_multi_head_attention", fmt=".2f")
report_metric("your MHA / torch MHA time (need_weights=False), fwd+bwd B=8 S=256 D=256 h=8",
              fastest["your MultiHeadAttention"] / fastest["nn.MultiheadAttention, need_weights=False"],
              notebook="06_multi_head_attention", fmt=".2f")

# %% [markdown]
# **What to notice.** On a CPU your module runs about as fast as PyTorch's — the work is the same four matrix
# products, two batched products and a softmax, and PyTorch's CPU path has little to fuse. If yours is much slower,
# look for Python loops over heads or positions, or a `.contiguous()` copy you do not need.
#
# ## Summary
#
# - $W_Q$ and $W_K$ decide *who attends to whom* through the bilinear form $M = W_Q W_K^\top$ (rotations are one
#   special case); $W_V$ decides what is handed over; all are learned by backpropagation from a random start.
# - Multi-head attention slices the projections into $h$ heads of width $d_\text{model}/h$ (column $i \cdot d_k$
#   onward for head $i$), runs scaled dot-product attention in each, concatenates the heads' output *matrices* along
#   the features, and mixes them with $W_O$ — a sum of per-head contributions into the full width.
# - Heads are jointly trained subspaces of one layer, not an ensemble; the parameter count, $4(d^2 + d)$, does not
#   depend on $h$.
# - Your module equals `torch.nn.MultiheadAttention` given the same weights — once its masks are inverted (`~`):
#   PyTorch's attention modules use `True` = blocked.
# - Attention stores $H \cdot S^2$ weights per sequence: memory and time grow quadratically; fused kernels avoid
#   storing them but cannot return them.
#
# Next, notebook 07 builds the Transformer around this layer: positional encodings, the feed-forward block, residual
# connections and LayerNorm, the encoder and the decoder with its masked self-attention and cross-attention.
