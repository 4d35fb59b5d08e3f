# %% [markdown]
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/attention-step-by-step/attention-step-by-step/blob/main/course/07_transformer/07_transformer.ipynb)

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
# # 07 · The Transformer
#
# Notebook 03 put attention on top of a recurrent network: the decoder walked through the output one step at a
# time, and at every step it looked back at all encoder states. Notebooks 05 and 06 then built attention that needs
# no recurrence at all — scaled dot-product attention, and several heads of it side by side. The Transformer
# (Vaswani et al., 2017, "Attention Is All You Need") takes the last step: **no RNN anywhere**. An encoder of
# stacked self-attention layers reads the whole source at once; a decoder of stacked layers reads what it has
# written so far and looks at the encoder's output through cross-attention.
#
# ```
#  source ids ─ embed·√D + PE ─▶ [ self-attention → Add & Norm → FFN → Add & Norm ] × N ─▶ memory
#                                                                                          │
#  target ids ─ embed·√D + PE ─▶ [ masked self-attention → Add & Norm                      │
#  (shifted right)                  → cross-attention (Q: decoder, K,V: memory) ◀──────────┘
#                                   → Add & Norm → FFN → Add & Norm ] × N ─▶ Linear ─▶ next-token logits
# ```
#
# You will build it in six pieces, then train it on the dates task of notebooks 02–03 and on the toy
# English→Japanese corpus:
#
# | exercise | what | new idea |
# |---|---|---|
# | 1 | `sinusoidal_positional_encoding` | attention alone cannot tell positions apart |
# | 2 | `PositionwiseFeedForward` | the same two-layer network applied at every position |
# | 3 | `EncoderLayer` | residual connections and LayerNorm (post-LN and pre-LN) |
# | 4 | `DecoderLayer` | the look-ahead mask and cross-attention |
# | 5 | `Transformer` | embeddings scaled by √D, the whole encoder–decoder |
# | 6 | `greedy_decode` | parallel training, sequential inference |
#
# Multi-head attention itself is not an exercise here: notebook 06 showed that your `MultiHeadAttention` and
# `torch.nn.MultiheadAttention` agree, so this notebook uses PyTorch's, and every exercise stands on its own.

# %%
import math
import time

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

from attention_steps import by_mode, describe_device, get_device, report_metric, seed_everything
from attention_steps.data import BOS, EOS, PAD, date_task, en_ja_task
from attention_steps.metrics import exact_match
from attention_steps.plotting import attention_grid, attention_heatmap, plot_losses, show
from attention_steps.testing import assert_close, assert_tensor, expect_value_error, random_tensor
from attention_steps.training import batch_sampler, train
from attention_steps.transformer_weights import copy_decoder_layer_weights, copy_encoder_layer_weights

seed_everything(0)
device = get_device()
print("running on", describe_device(device))

# %% [markdown]
# ## Attention does not know where anything is
#
# Self-attention compares every position with every other by dot products and takes a weighted sum. Nothing in
# that computation mentions *where* a token sits. Shuffle the input sequence and the outputs are shuffled the same
# way, and otherwise unchanged — self-attention is *permutation-equivariant*. For the dates task that is fatal:
# "03/04/2021" and "04/03/2021" hold the same characters.

# %%
seed_everything(0)
mha = nn.MultiheadAttention(16, 4, batch_first=True)
x = torch.randn(1, 6, 16)
perm = torch.tensor([3, 0, 5, 1, 4, 2])
out, _ = mha(x, x, x)
out_perm, _ = mha(x[:, perm], x[:, perm], x[:, perm])
print("attention of the shuffled input == shuffled attention output:", torch.allclose(out_perm, out[:, perm], atol=1e-6))

# %% [markdown]
# So the position has to be put *into* the vectors. The paper adds to each token's embedding a **positional
# encoding** $PE_{pos} \in \mathbb{R}^D$ that depends only on the position. The *Attention機構* deck describes it as
# "adding a special image that can represent position" (位置を表す特別な画像を足す): picture the $(S, D)$ matrix of
# embeddings as an image, and add a fixed image to it.
#
# Why not just add the index, $pos$ itself, or $pos / S$? The raw index grows without bound (position 500 would
# swamp every embedding), and $pos/S$ means something different for every length. The paper uses sinusoids of
# geometrically spaced wavelengths, from $2\pi$ to $10000 \cdot 2\pi$:
#
# $$PE_{pos,\,2i} = \sin\!\Big(\frac{pos}{10000^{2i/D}}\Big), \qquad PE_{pos,\,2i+1} = \cos\!\Big(\frac{pos}{10000^{2i/D}}\Big).$$
#
# Every entry lies in $[-1, 1]$, at any length. And a learner asked the better question: *how* does this encode
# position? Write $\omega_i = 10000^{-2i/D}$. The pair of columns $(2i, 2i+1)$ is the point
# $(\sin \omega_i pos, \cos \omega_i pos)$ on a circle, and by the addition theorem
#
# $$\begin{pmatrix}\sin\omega_i(pos+k)\\ \cos\omega_i(pos+k)\end{pmatrix} =
# \begin{pmatrix}\cos\omega_i k & \sin\omega_i k\\ -\sin\omega_i k & \cos\omega_i k\end{pmatrix}
# \begin{pmatrix}\sin\omega_i pos\\ \cos\omega_i pos\end{pmatrix}.$$
#
# Moving $k$ positions is a **rotation** of each pair by the angle $\omega_i k$, the same rotation wherever you
# start. Consequences you will check below: $PE_{pos+k}$ is a fixed linear function of $PE_{pos}$ (so a linear
# projection $W_Q$ or $W_K$ can learn to look "3 characters to the left"), and the dot product
# $PE_{pos} \cdot PE_{pos+k} = \sum_i \cos(\omega_i k)$ depends only on the offset $k$.
#
# Two cautions about what that buys. The dot product alone is **symmetric** — $\cos$ is even, so $PE_{pos} \cdot
# PE_{pos+k} = PE_{pos} \cdot PE_{pos-k}$: by itself it cannot tell "three to the left" from "three to the right".
# And a head does not compare $PE$ with $PE$; its score is $(x_p W_Q) \cdot (x_q W_K) = x_p W_Q W_K^\top x_q^\top$
# (notebook 06). A head attends to the token $k$ places away only if training makes $W_Q W_K^\top$, on the
# positional part of the vectors, close to $R_k$ (or a blend of such maps): then the score is $PE_p R_k \cdot
# PE_q$, largest where $q = p + k$. The rotation property makes such a matrix exist; learning has to find it.

# %% [markdown]
# ### Exercise 1 — `sinusoidal_positional_encoding(max_len, d_model)`
#
# Build the $(max\_len, D)$ table: even columns sines, odd columns cosines, column pair $(2i, 2i+1)$ sharing the
# frequency $\omega_i$. Compute the angles in float64 and return float32 (at position 1000 float32 angles lose
# digits).

# %% nbgrader={"grade": false, "grade_id": "sinusoidal_positional_encoding", "locked": false, "schema_version": 3, "solution": true, "task": false}
def sinusoidal_positional_encoding(max_len: int, d_model: int) -> torch.Tensor:
    """The sinusoidal positional encoding of "Attention Is All You Need".

    Args:
        max_len: number of positions, an int >= 1 (positions 0 … max_len - 1).
        d_model: the model width D, a positive **even** int.

    Returns:
        float32 tensor of shape (max_len, d_model) with
        ``PE[pos, 2i] = sin(pos / 10000**(2i / d_model))`` and ``PE[pos, 2i + 1] = cos(pos / 10000**(2i / d_model))``
        — sines in the even columns, cosines in the odd ones, interleaved (not the sines first and the cosines
        after). Row 0 is therefore ``[0, 1, 0, 1, …]``. Accurate to 1e-5 up to position 10,000 (compute the angles
        in float64). On the CPU, no gradient.

    Raises:
        ValueError: if ``d_model`` is odd or not positive, or ``max_len < 1`` (the message names the value).
    """
    ### BEGIN SOLUTION
    if d_model <= 0 or d_model % 2:
        raise ValueError(f"d_model must be a positive even number, got d_model = {d_model}")
    if max_len < 1:
        raise ValueError(f"max_len must be at least 1, got max_len = {max_len}")
    position = torch.arange(max_len, dtype=torch.float64)[:, None]
    frequency = 10000.0 ** (-torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)
    angle = position * frequency
    pe = torch.zeros(max_len, d_model, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle)
    return pe.float()
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_sinusoidal_positional_encoding", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Visible tests: shape and dtype, row 0, a hand-computed entry, sin/cos interleaving, the range, odd D.
pe = sinusoidal_positional_encoding(50, 16)
assert_tensor(pe, shape=(50, 16), dtype=torch.float32, name="sinusoidal_positional_encoding(50, 16)")
assert_close(pe[0], torch.tensor([0.0, 1.0] * 8), name="row 0 (position 0: sin 0 = 0 in even columns, cos 0 = 1 in odd)")
assert_close(pe[1, :2], torch.tensor([math.sin(1.0), math.cos(1.0)]),
             name="PE[1, 0:2] (frequency 1 for the first pair: sin(1), cos(1))")
assert_close(pe[7, 4], torch.tensor(math.sin(7 / 10000 ** (4 / 16))),
             name="PE[7, 4] = sin(7 / 10000^(4/16)) — even columns are sines, 2i = 4")
assert_close(pe[7, 5], torch.tensor(math.cos(7 / 10000 ** (4 / 16))),
             name="PE[7, 5] = cos(7 / 10000^(4/16)) — odd column 2i+1 = 5 shares the frequency of column 4")
assert pe.abs().max() <= 1.0 + 1e-6, "every entry of a sinusoidal encoding lies in [-1, 1]"
expect_value_error(sinusoidal_positional_encoding, 10, 7, mention=["7"], name="sinusoidal_positional_encoding(10, 7)")

# %% [markdown]
# ### Experiment — the "special image", and what it knows about offsets
#
# Left: the encoding as an image (position down, dimension across). Early columns oscillate fast, late columns
# barely move — a binary counter made smooth. Middle: the dot product $PE_p \cdot PE_q$ for all pairs: constant
# along every diagonal, i.e. a function of $q - p$ only. Right: the rotation claim, checked — one matrix $R_k$
# maps every $PE_{pos}$ to $PE_{pos+k}$.

# %%
pe = sinusoidal_positional_encoding(64, 64)
fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
image = axes[0].imshow(pe, cmap="RdBu", aspect="auto", vmin=-1, vmax=1)
axes[0].set(title="PE: the image added to the embeddings", xlabel="dimension", ylabel="position")
fig.colorbar(image, ax=axes[0], fraction=0.046)
axes[1].imshow(pe @ pe.T, cmap="viridis")
axes[1].set(title="PE[p] · PE[q]: depends on q − p only", xlabel="position q", ylabel="position p")


def rotation_for_offset(k: int, d_model: int) -> torch.Tensor:
    """The block-diagonal matrix R_k with PE[pos + k] = PE[pos] @ R_k (row vectors), from the addition theorem."""
    R = torch.zeros(d_model, d_model, dtype=torch.float64)
    for i in range(0, d_model, 2):
        a = k / 10000 ** (i / d_model)
        R[i, i], R[i, i + 1], R[i + 1, i], R[i + 1, i + 1] = math.cos(a), -math.sin(a), math.sin(a), math.cos(a)
    return R


offsets = list(range(1, 30))  # k = 0 is R_0 = I, exact: no point on a log scale
errors = [(pe[: 64 - k].double() @ rotation_for_offset(k, 64) - pe[k:].double()).abs().max().item() for k in offsets]
axes[2].plot(offsets, errors, "o-")
axes[2].set(title="max |PE[pos] R_k − PE[pos+k]|", xlabel="offset k (1 … 29)", ylabel="error", yscale="log",
            ylim=(1e-9, 1))
fig.tight_layout()
show(fig)
print(f"largest error of the rotation identity over all positions and offsets: {max(errors):.1e}")

# %% [markdown]
# **What to notice.** The rotation identity holds to float32 precision: a shift by $k$ is one fixed linear map,
# whatever the position. That is the answer to "why sinusoids rather than the index?": attention scores are dot
# products of *linear* projections, so a fixed offset becomes something a head can learn once and apply
# everywhere. (Many later models learn the position vectors instead — the Vision Transformer in notebook 08 does —
# and the original paper found both work about equally well.)
#
# ## The position-wise feed-forward network
#
# Attention only *mixes* vectors: each output is a weighted average of value vectors (passed through $W_O$). The
# second sub-layer of every Transformer layer processes each position on its own, with the same weights at every
# position ("position-wise", 位置ごとに), a two-layer network:
#
# $$\mathrm{FFN}(x) = \max(0,\; x W_1 + b_1)\, W_2 + b_2, \qquad W_1 \in \mathbb{R}^{D \times d_{ff}},\; W_2 \in \mathbb{R}^{d_{ff} \times D}.$$
#
# Why two layers, and why wider inside ($d_{ff} = 4D$ in the paper: 2048 for $D = 512$)? One linear layer is just
# another linear map, which $W_O$ and the next layer's projections could absorb; the ReLU between two layers makes
# it a genuine nonlinear function of each token's vector — the smallest network that is a universal approximator.
# With $d_{ff} = 4D$ the FFN has $8D^2$ weights against attention's $4D^2$: two thirds of an **encoder** layer's
# parameters, half of a **decoder** layer's (which has two attentions). Interpretability work (Geva et al., 2021)
# reads it as a key-value memory: each column of $W_1$ is a *key* that matches a pattern in the input, its ReLU
# output says how strongly, and the matching row of $W_2$ is the *value* written back. Stacking layers alternates
# "exchange information between positions" (attention) with "process each position" (FFN); each layer's attention
# can use what the previous layers gathered, which the per-layer maps after training show.

# %% [markdown]
# ### Exercise 2 — `PositionwiseFeedForward(d_model, d_ff, dropout=0.0)`
#
# Two `nn.Linear` layers named `linear1` and `linear2` (the names PyTorch's layers use, so weights can be copied),
# a ReLU between them, and dropout on the hidden activations.

# %% nbgrader={"grade": false, "grade_id": "PositionwiseFeedForward", "locked": false, "schema_version": 3, "solution": true, "task": false}
class PositionwiseFeedForward(nn.Module):
    """FFN(x) = max(0, x W1 + b1) W2 + b2, applied to every position independently.

    Args:
        d_model: width D of the input and output.
        d_ff: width of the hidden layer.
        dropout: dropout probability applied to the hidden activations (after the ReLU), only in training mode.

    Attributes (the tests use these names):
        linear1: ``nn.Linear(d_model, d_ff)`` (with bias) — its ``weight`` is W1ᵀ, torch's (out, in) layout.
        linear2: ``nn.Linear(d_ff, d_model)`` (with bias).
        dropout: ``nn.Dropout(dropout)``.

    forward(x): x is (..., d_model) float (any number of leading dimensions, e.g. (B, S, D));
        returns a tensor of the same shape and dtype: ``linear2(dropout(relu(linear1(x))))``.
        No activation after ``linear2``. Raises ``ValueError`` naming the shape if ``x.shape[-1] != d_model``.
    """

    def __init__(self, d_model: int, d_ff: int, dropout: float = 0.0):
        super().__init__()
        ### BEGIN SOLUTION
        self.d_model = d_model
        self.linear1 = nn.Linear(d_model, d_ff)
        self.linear2 = nn.Linear(d_ff, d_model)
        self.dropout = nn.Dropout(dropout)
        ### END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ### BEGIN SOLUTION
        if x.dim() < 1 or x.shape[-1] != self.d_model:
            raise ValueError(f"expected input of shape (..., {self.d_model}), got {tuple(x.shape)}")
        return self.linear2(self.dropout(torch.relu(self.linear1(x))))
        ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_PositionwiseFeedForward", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Visible tests: attribute shapes, output shape, a hand-built example, position-wise behaviour, bad width.
ffn = PositionwiseFeedForward(4, 8)
assert isinstance(ffn.linear1, nn.Linear) and tuple(ffn.linear1.weight.shape) == (8, 4), \
    "linear1 should be nn.Linear(d_model, d_ff): weight of shape (d_ff, d_model) = (8, 4)"
assert isinstance(ffn.linear2, nn.Linear) and tuple(ffn.linear2.weight.shape) == (4, 8), \
    "linear2 should be nn.Linear(d_ff, d_model): weight of shape (4, 8)"
assert ffn.linear1.bias is not None and ffn.linear2.bias is not None, "linear1 and linear2 need biases (b1 and b2)"
x = random_tensor(2, 5, 4, seed=1)
assert_tensor(ffn(x), shape=(2, 5, 4), dtype=torch.float32, name="ffn(x)")
with torch.no_grad():
    ffn.linear1.weight.copy_(torch.eye(8, 4))
    ffn.linear1.bias.fill_(-0.5)
    ffn.linear2.weight.copy_(torch.eye(4, 8))
    ffn.linear2.bias.fill_(-1.0)
x = torch.tensor([[1.0, 0.2, -3.0, 0.5]])
assert_close(ffn(x), torch.tensor([[-0.5, -1.0, -1.0, -1.0]]),
             name="FFN with W1 = I, b1 = -0.5, W2 = I, b2 = -1 (ReLU between the layers, none after linear2)")
x = random_tensor(3, 6, 4, seed=2)
assert_close(ffn(x)[:, [4, 1]], ffn(x[:, [4, 1]]), name="FFN of two positions alone (it must act position-wise)")
expect_value_error(ffn, torch.randn(2, 3, 5), mention=["5"], name="ffn(x) with x of width 5 when d_model = 4")

# %% [markdown]
# ## Residual connections and LayerNorm: the encoder layer
#
# Each sub-layer (attention, FFN) is wrapped the same way: its output is **added** to its input (a residual
# connection, 残差結合), and the sum is normalised by **LayerNorm** — every position's vector is shifted and scaled
# to mean 0 and variance 1 over its $D$ features, then multiplied by a learned gain and shifted by a learned bias.
# The paper's layer ("post-LN", normalise after adding):
#
# $$x \leftarrow \mathrm{LN}_1\big(x + \mathrm{SelfAttn}(x)\big), \qquad x \leftarrow \mathrm{LN}_2\big(x + \mathrm{FFN}(x)\big).$$
#
# The residual path lets each layer learn a *correction* to its input and gives gradients a direct route through a
# deep stack (the same idea as ResNet in notebook 04). Most models since GPT-2 normalise *before* the sub-layer
# instead ("pre-LN"):
#
# $$x \leftarrow x + \mathrm{SelfAttn}\big(\mathrm{LN}_1(x)\big), \qquad x \leftarrow x + \mathrm{FFN}\big(\mathrm{LN}_2(x)\big).$$
#
# In pre-LN the residual stream itself is never normalised, so the gradient reaches early layers undiminished and
# training tolerates larger learning rates without warm-up; a pre-LN stack then needs one final LayerNorm on its
# output. You will compare the two on the dates task. In both, dropout acts on each sub-layer's output just before
# it is added to the residual stream: $x + \mathrm{Dropout}(\mathrm{SelfAttn}(\cdot))$.
#
# **Masks, and PyTorch's opposite convention.** In this course a boolean mask is **True where attention is
# allowed** (as in `F.scaled_dot_product_attention`). Every boolean mask of `nn.MultiheadAttention` and of the
# `nn.Transformer*` modules — `attn_mask`, `key_padding_mask`, `src_mask`, `tgt_mask`, `memory_mask` — means the
# opposite: **True = blocked**. PyTorch also fills a query row with no allowed key with NaN, where this course wants
# a zero output. The helper below does the conversion once; use it inside your layers. Its masks follow notebook
# 05's rule: the last two dimensions are (T_query or 1, T_key), and an optional leading one is the batch (or 1) —
# `causal_mask(T)` of shape (T, T), or a key-padding mask `padding_mask(lengths, S)[:, None, :]` of shape (B, 1, S).
# (No head axis here: `nn.MultiheadAttention` takes one mask for all its heads.)

# %%
def attend(attention: nn.MultiheadAttention, query, key, value, mask=None, need_weights=False):
    """Run ``attention`` (batch_first) with the course's mask convention (True = allowed).

    ``mask``: None or bool, the course's rule: last two dims (T_query or 1, T_key), at most one leading dim (B or 1)
    — e.g. (T_q, T_k), (B, 1, T_k) or (B, T_q, T_k). Anything else raises ValueError.
    Returns ``(output (B, T_q, D), weights (B, H, T_q, T_k) or None)``; a query row with no allowed key gets a zero
    output and zero weights, never NaN.
    """
    if mask is None:
        return attention(query, key, value, need_weights=need_weights, average_attn_weights=False)
    batch, t_q, t_k = query.shape[0], query.shape[1], key.shape[1]
    if mask.dtype != torch.bool or not 2 <= mask.dim() <= 3 or mask.shape[-1] != t_k or mask.shape[-2] not in (1, t_q) \
            or (mask.dim() == 3 and mask.shape[0] not in (1, batch)):
        raise ValueError(f"mask {mask.dtype} {tuple(mask.shape)} does not fit (B, T_q, T_k) = ({batch}, {t_q}, {t_k}): "
                         "a bool mask, last two dims (T_q or 1, T_k), an optional leading B")
    allowed = mask.expand(batch, t_q, t_k)
    has_key = allowed.any(dim=-1, keepdim=True)  # (B, T_q, 1)
    # torch wants True = blocked, one (T_q, T_k) slice per batch element and head: index b * H + h.
    blocked = ~(allowed | ~has_key)  # let empty rows see everything for now, then zero them: no NaN anywhere
    blocked = blocked.repeat_interleave(attention.num_heads, dim=0)
    out, weights = attention(query, key, value, attn_mask=blocked, need_weights=need_weights,
                             average_attn_weights=False)
    out = out * has_key
    if weights is not None:
        weights = weights * has_key[:, None]
    return out, weights


# %% [markdown]
# ### Exercise 3 — `EncoderLayer(d_model, num_heads, d_ff, dropout=0.0, norm_first=False)`
#
# One encoder layer: self-attention (`nn.MultiheadAttention(..., batch_first=True)` called through `attend`), then
# the FFN of exercise 2, each wrapped in dropout, a residual connection and LayerNorm — post-LN by default, pre-LN
# when `norm_first=True`. The attribute names match `torch.nn.TransformerEncoderLayer`'s, so the tests can give
# both the same weights (`attention_steps.transformer_weights` copies them: `linear1` → `ffn.linear1`, the rest by
# the same name).

# %% nbgrader={"grade": false, "grade_id": "EncoderLayer", "locked": false, "schema_version": 3, "solution": true, "task": false}
class EncoderLayer(nn.Module):
    """One Transformer encoder layer: self-attention and a position-wise FFN, each with residual + LayerNorm.

    Args:
        d_model: width D; num_heads: H, must divide D; d_ff: FFN hidden width;
        dropout: applied to each sub-layer's output before the residual addition (and inside attention / FFN);
        norm_first: False (default) = post-LN as in the paper; True = pre-LN.

    Attributes (the tests use these names and replace ``ffn`` by their own FFN):
        self_attn: ``nn.MultiheadAttention(d_model, num_heads, dropout=dropout, batch_first=True)``
        ffn: ``PositionwiseFeedForward(d_model, d_ff, dropout)`` — called once per forward as ``self.ffn(h)``
        norm1, norm2: ``nn.LayerNorm(d_model)`` (default eps 1e-5) — norm1 around attention, norm2 around the FFN
        dropout1, dropout2: ``nn.Dropout(dropout)``

    forward(x, mask=None):
        x: (B, S, D) float. mask: None or bool broadcastable to (B, S, S), **True = may attend** (e.g. a key-padding
        mask of shape (B, 1, S), or (S, S)). A query row with no allowed key gets a zero attention output (the
        ``attend`` helper does this), never NaN.
        Computes the post-LN or the pre-LN layer of the equations above (self-attention with query = key = value),
        dropout1 / dropout2 on the attention / FFN output before each residual addition; a pre-LN layer has no
        final norm of its own. Returns (B, S, D), same dtype.

    Raises:
        ValueError: in ``__init__`` if num_heads does not divide d_model; in ``forward`` if x is not 3-D or
            ``x.shape[-1] != d_model`` (the message names the shape).

    Do not use ``nn.TransformerEncoderLayer`` / ``nn.TransformerEncoder`` (the tests check).
    """

    def __init__(self, d_model: int, num_heads: int, d_ff: int, dropout: float = 0.0, norm_first: bool = False):
        super().__init__()
        ### BEGIN SOLUTION
        if num_heads < 1 or d_model % num_heads:
            raise ValueError(f"num_heads = {num_heads} must divide d_model = {d_model}")
        self.d_model, self.norm_first = d_model, norm_first
        self.self_attn = nn.MultiheadAttention(d_model, num_heads, dropout=dropout, batch_first=True)
        self.ffn = PositionwiseFeedForward(d_model, d_ff, dropout)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        ### END SOLUTION

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        ### BEGIN SOLUTION
        if x.dim() != 3 or x.shape[-1] != self.d_model:
            raise ValueError(f"expected x of shape (B, S, {self.d_model}), got {tuple(x.shape)}")
        if self.norm_first:
            h = self.norm1(x)
            x = x + self.dropout1(attend(self.self_attn, h, h, h, mask)[0])
            return x + self.dropout2(self.ffn(self.norm2(x)))
        x = self.norm1(x + self.dropout1(attend(self.self_attn, x, x, x, mask)[0]))
        return self.norm2(x + self.dropout2(self.ffn(x)))
        ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_EncoderLayer", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false}
# Visible tests: attributes, shape, agreement with torch.nn.TransformerEncoderLayer (post-LN and pre-LN, with and
# without a padding mask), and a clear error for the wrong width.
seed_everything(0)
layer = EncoderLayer(16, 4, 32)
for name_, kind in [("self_attn", nn.MultiheadAttention), ("norm1", nn.LayerNorm), ("norm2", nn.LayerNorm),
                    ("ffn", nn.Module)]:
    assert isinstance(getattr(layer, name_, None), kind), f"EncoderLayer needs an attribute {name_} ({kind.__name__})"
assert layer.self_attn.batch_first, "self_attn must be built with batch_first=True"
x = random_tensor(2, 5, 16, seed=3)
lengths = torch.tensor([5, 3])
pad = torch.arange(5)[None, :] < lengths[:, None]  # (B, S), True on real tokens
for norm_first in (False, True):
    torch_layer = nn.TransformerEncoderLayer(16, 4, 32, dropout=0.0, batch_first=True, norm_first=norm_first)
    torch_layer.train()  # training mode (dropout is 0): skips torch's inference fast path, which zeroes padded rows
    layer = copy_encoder_layer_weights(torch_layer, EncoderLayer(16, 4, 32, norm_first=norm_first)).eval()
    kind = "pre-LN" if norm_first else "post-LN"
    out = layer(x)
    assert_tensor(out, shape=(2, 5, 16), dtype=torch.float32, name=f"{kind} EncoderLayer(x)")
    assert_close(out, torch_layer(x), name=f"{kind} EncoderLayer(x) vs torch.nn.TransformerEncoderLayer, same weights")
    assert_close(layer(x, pad[:, None, :]), torch_layer(x, src_key_padding_mask=~pad),
                 name=f"{kind} EncoderLayer(x, padding mask) vs torch (torch's key_padding_mask is True = blocked)")
expect_value_error(layer, torch.randn(2, 5, 8), mention=["8"], name="EncoderLayer(d_model=16) on a (2, 5, 8) input")

# %% [markdown]
# **What to notice.** With the same weights your layer and PyTorch's agree to float32 precision, for post-LN and
# pre-LN — once the mask is inverted. The encoder is *bidirectional*: every character may look at every other,
# before or after it; only padding is hidden.
#
# ## The decoder layer: look-ahead mask and cross-attention
#
# The decoder layer has three sub-layers, each with residual + LayerNorm:
#
# 1. **Masked self-attention** over the target prefix. During training the decoder's input is the whole correct
#    target shifted right by one (`BOS y₁ … y_{n}`, teacher forcing as in notebook 02), and position $t$ must
#    predict $y_{t+1}$. Without a mask it could simply read $y_{t+1}$ from position $t+1$ — the look-ahead
#    (causal) mask, True on and below the diagonal, forbids exactly that. This is what the paper calls "masked"
#    attention; padding masks are a separate thing and are applied everywhere keys can be padding.
# 2. **Cross-attention** (source–target attention): the **queries come from the decoder**, the keys and values from
#    the encoder's output, the *memory*. A learner asked "in English→German, is Q the German?" — yes: the side that
#    is being generated asks, the side being translated answers. The source-padding mask hides padded source
#    positions. There is no single "latent vector" between encoder and decoder: the whole memory $(S, D)$ is
#    attended to at every layer and every step, unlike notebook 02's fixed context vector.
# 3. The position-wise **FFN**.
#
# Post-LN: $x \leftarrow \mathrm{LN}_1(x + \mathrm{SelfAttn}(x)),\; x \leftarrow \mathrm{LN}_2(x + \mathrm{CrossAttn}(x, m)),\; x \leftarrow \mathrm{LN}_3(x + \mathrm{FFN}(x))$;
# pre-LN moves each LN onto the sub-layer's input, as in the encoder (the memory is not normalised again).

# %% [markdown]
# ### Exercise 4 — `DecoderLayer(d_model, num_heads, d_ff, dropout=0.0, norm_first=False)`

# %% nbgrader={"grade": false, "grade_id": "DecoderLayer", "locked": false, "schema_version": 3, "solution": true, "task": false}
class DecoderLayer(nn.Module):
    """One Transformer decoder layer: masked self-attention, cross-attention to the memory, FFN.

    Args: as ``EncoderLayer`` (d_model, num_heads dividing d_model, d_ff, dropout, norm_first).

    Attributes (the tests use these names and replace ``ffn`` by their own FFN):
        self_attn, cross_attn: ``nn.MultiheadAttention(d_model, num_heads, dropout=dropout, batch_first=True)``
        ffn: ``PositionwiseFeedForward(d_model, d_ff, dropout)``, called once per forward as ``self.ffn(h)``
        norm1, norm2, norm3: ``nn.LayerNorm(d_model)`` around self-attention, cross-attention and the FFN
        dropout1, dropout2, dropout3: ``nn.Dropout(dropout)``

    forward(x, memory, tgt_mask=None, memory_mask=None):
        x: (B, T, D) decoder input; memory: (B, S, D) encoder output.
        tgt_mask: None or bool broadcastable to (B, T, T), **True = may attend** (usually the causal mask, (T, T)).
        memory_mask: None or bool broadcastable to (B, T, S), True = may attend (usually (B, 1, S) source padding).
        A query row with no allowed key gets a zero attention output (``attend`` does this), never NaN.
        Computes the three sub-layers of the equations above in order, post-LN or pre-LN, each with its own dropout
        before the residual addition; cross-attention takes its **queries from the decoder** and its keys and values
        from ``memory`` (never normalised by this layer). Returns (B, T, D).

    Raises:
        ValueError: in ``__init__`` if num_heads does not divide d_model; in ``forward`` if x or memory is not 3-D,
            if their last dimension is not d_model, or if their batch sizes differ (the message names the shapes).

    Do not use ``nn.TransformerDecoderLayer`` / ``nn.TransformerDecoder`` (the tests check).
    """

    def __init__(self, d_model: int, num_heads: int, d_ff: int, dropout: float = 0.0, norm_first: bool = False):
        super().__init__()
        ### BEGIN SOLUTION
        if num_heads < 1 or d_model % num_heads:
            raise ValueError(f"num_heads = {num_heads} must divide d_model = {d_model}")
        self.d_model, self.norm_first = d_model, norm_first
        self.self_attn = nn.MultiheadAttention(d_model, num_heads, dropout=dropout, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(d_model, num_heads, dropout=dropout, batch_first=True)
        self.ffn = PositionwiseFeedForward(d_model, d_ff, dropout)
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(d_model), nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.dropout1, self.dropout2, self.dropout3 = nn.Dropout(dropout), nn.Dropout(dropout), nn.Dropout(dropout)
        ### END SOLUTION

    def forward(self, x: torch.Tensor, memory: torch.Tensor, tgt_mask: torch.Tensor | None = None,
                memory_mask: torch.Tensor | None = None) -> torch.Tensor:
        ### BEGIN SOLUTION
        if x.dim() != 3 or memory.dim() != 3 or x.shape[-1] != self.d_model or memory.shape[-1] != self.d_model \
                or x.shape[0] != memory.shape[0]:
            raise ValueError(f"expected x (B, T, {self.d_model}) and memory (B, S, {self.d_model}), "
                             f"got {tuple(x.shape)} and {tuple(memory.shape)}")
        if self.norm_first:
            h = self.norm1(x)
            x = x + self.dropout1(attend(self.self_attn, h, h, h, tgt_mask)[0])
            h = self.norm2(x)
            x = x + self.dropout2(attend(self.cross_attn, h, memory, memory, memory_mask)[0])
            return x + self.dropout3(self.ffn(self.norm3(x)))
        x = self.norm1(x + self.dropout1(attend(self.self_attn, x, x, x, tgt_mask)[0]))
        x = self.norm2(x + self.dropout2(attend(self.cross_attn, x, memory, memory, memory_mask)[0]))
        return self.norm3(x + self.dropout3(self.ffn(x)))
        ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_DecoderLayer", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false}
# Visible tests: shape, agreement with torch.nn.TransformerDecoderLayer (causal + source padding masks, post-LN and
# pre-LN), the causal mask really hiding the future, and a clear error for mismatched shapes.
seed_everything(0)
layer = DecoderLayer(16, 4, 32)
assert isinstance(getattr(layer, "cross_attn", None), nn.MultiheadAttention), "DecoderLayer needs cross_attn"
x, memory = random_tensor(2, 4, 16, seed=4), random_tensor(2, 6, 16, seed=5)
causal = torch.ones(4, 4, dtype=torch.bool).tril()
src_pad = torch.arange(6)[None, :] < torch.tensor([6, 2])[:, None]  # (B, S), True on real source tokens
changed = x.clone()
changed[:, 2] += 5.0  # change the decoder input at position 2
out, out_changed = layer(x, memory, causal), layer(changed, memory, causal)
assert_close(out_changed[:, :2], out[:, :2], name="outputs at positions 0-1 after changing position 2 "
             "(the causal mask must stop information from the future: pass tgt_mask to the self-attention)")
for norm_first in (False, True):
    torch_layer = nn.TransformerDecoderLayer(16, 4, 32, dropout=0.0, batch_first=True, norm_first=norm_first).train()
    layer = copy_decoder_layer_weights(torch_layer, DecoderLayer(16, 4, 32, norm_first=norm_first)).eval()
    kind = "pre-LN" if norm_first else "post-LN"
    out = layer(x, memory, causal, src_pad[:, None, :])
    assert_tensor(out, shape=(2, 4, 16), dtype=torch.float32, name=f"{kind} DecoderLayer(x, memory, ...)")
    assert_close(out, torch_layer(x, memory, tgt_mask=~causal, memory_key_padding_mask=~src_pad),
                 name=f"{kind} DecoderLayer vs torch.nn.TransformerDecoderLayer with the same weights")
expect_value_error(layer, x, random_tensor(3, 6, 16), mention=["(3, 6, 16)"],
                   name="DecoderLayer with x of batch 2 and memory of batch 3")

# %% [markdown]
# ## The whole model, and why the embeddings are scaled by √D
#
# Token ids become vectors through an embedding table (notebook 00), one for the source vocabulary and one for the
# target's. The paper multiplies the embeddings by $\sqrt{D}$ before adding the positional encoding:
#
# $$x_{pos} = \sqrt{D}\; E[\text{token}_{pos}] + PE_{pos}.$$
#
# The scale only makes sense together with the initialisation. Every row of $PE$ has norm $\sqrt{D/2}$ (half its
# entries are $\sin^2 + \cos^2$ pairs). With embeddings initialised $\mathcal{N}(0, 1/D)$ — std $D^{-1/2}$, the
# usual choice — a row of $E$ has norm about 1, and $\sqrt{D}\,E$ has norm about $\sqrt{D}$: the same size as the
# encoding, so neither drowns the other. PyTorch's `nn.Embedding` initialises $\mathcal{N}(0, 1)$ instead; times
# $\sqrt{D}$ that gives norm $D$, about eleven times the encoding's 5.7 at $D = 64$, and the model first has to shrink the
# embeddings before it can see positions. You will measure the cost below.
#
# The model, with the mask each part needs:
#
# - `encode(src)`: embed, add $PE$, run the encoder layers with the source-padding mask `(src != PAD)[:, None, :]`.
# - `decode(tgt_in, memory, src_mask)`: embed, add $PE$, run the decoder layers with the causal mask (self-attention)
#   and the source-padding mask (cross-attention), then a linear layer to vocabulary logits.

# %% [markdown]
# ### Exercise 5 — `Transformer`

# %% nbgrader={"grade": false, "grade_id": "Transformer", "locked": false, "schema_version": 3, "solution": true, "task": false}
class Transformer(nn.Module):
    """Encoder–decoder Transformer over token ids (PAD = 0), built from your layers.

    Args:
        src_vocab_size, tgt_vocab_size: vocabulary sizes.
        d_model=64, num_heads=4, num_layers=2 (encoder layers, and as many decoder layers), d_ff=128,
        dropout=0.1, max_len=64 (longest sequence), norm_first=False (True: pre-LN layers).

    Attributes (the tests use these names; they may replace layers, ``pe`` and weights with their own):
        src_embed, tgt_embed: ``nn.Embedding(vocab, d_model)``, weights initialised N(0, 1/d_model), i.e. std
            ``d_model ** -0.5`` (not torch's default N(0, 1)).
        pe: a buffer (``register_buffer``) holding ``sinusoidal_positional_encoding(max_len, d_model)``;
            encode/decode read the encoding from ``self.pe`` when they run.
        encoder_layers: ``nn.ModuleList`` of ``EncoderLayer(d_model, num_heads, d_ff, dropout, norm_first)``,
            each called as ``layer(x, src_mask)``.
        decoder_layers: ``nn.ModuleList`` of ``DecoderLayer(...)``, each called as
            ``layer(y, memory, tgt_mask, src_mask)``.
        encoder_norm, decoder_norm: ``nn.LayerNorm(d_model)`` when ``norm_first`` (pre-LN needs a final norm on
            the stack's output), otherwise ``nn.Identity()``.
        output: ``nn.Linear(d_model, tgt_vocab_size)``.
        dropout: ``nn.Dropout(dropout)``, applied to embedding + encoding.

    Methods:
        encode(src) -> (memory, src_mask): src (B, S) int64 ids, right-padded with PAD; ``src_mask`` is
            ``(src != PAD)[:, None, :]``, (B, 1, S) bool; ``x = dropout(src_embed(src) * sqrt(d_model) + pe[:S])``,
            then every encoder layer, then ``memory = encoder_norm(x)``, (B, S, D).
        decode(tgt_in, memory, src_mask) -> logits (B, T, tgt_vocab_size): tgt_in (B, T) int64 ``BOS y1 …``;
            ``y = dropout(tgt_embed(tgt_in) * sqrt(d_model) + pe[:T])``; ``tgt_mask`` is the causal mask (T, T),
            True on and below the diagonal (you may also hide PAD keys of tgt_in: logits at PAD positions of
            tgt_in are not tested); every decoder layer; ``logits = output(decoder_norm(y))``.
        forward(src, tgt_in) = decode(tgt_in, *encode(src)).

    Raises:
        ValueError: in encode / decode if the ids are not 2-D or longer than max_len, and in decode if memory's
            batch differs from tgt_in's (the message names the shapes).
    """

    def __init__(self, src_vocab_size: int, tgt_vocab_size: int, d_model: int = 64, num_heads: int = 4,
                 num_layers: int = 2, d_ff: int = 128, dropout: float = 0.1, max_len: int = 64,
                 norm_first: bool = False):
        super().__init__()
        ### BEGIN SOLUTION
        self.d_model, self.max_len = d_model, max_len
        self.src_embed = nn.Embedding(src_vocab_size, d_model)
        self.tgt_embed = nn.Embedding(tgt_vocab_size, d_model)
        for embedding in (self.src_embed, self.tgt_embed):
            nn.init.normal_(embedding.weight, mean=0.0, std=d_model ** -0.5)
        self.register_buffer("pe", sinusoidal_positional_encoding(max_len, d_model))
        self.encoder_layers = nn.ModuleList(
            [EncoderLayer(d_model, num_heads, d_ff, dropout, norm_first) for _ in range(num_layers)])
        self.decoder_layers = nn.ModuleList(
            [DecoderLayer(d_model, num_heads, d_ff, dropout, norm_first) for _ in range(num_layers)])
        self.encoder_norm = nn.LayerNorm(d_model) if norm_first else nn.Identity()
        self.decoder_norm = nn.LayerNorm(d_model) if norm_first else nn.Identity()
        self.output = nn.Linear(d_model, tgt_vocab_size)
        self.dropout = nn.Dropout(dropout)
        ### END SOLUTION

    def encode(self, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ### BEGIN SOLUTION
        if src.dim() != 2 or src.shape[1] > self.max_len:
            raise ValueError(f"src must be (B, S) with S <= max_len = {self.max_len}, got {tuple(src.shape)}")
        src_mask = (src != PAD)[:, None, :]
        x = self.dropout(self.src_embed(src) * math.sqrt(self.d_model) + self.pe[: src.shape[1]])
        for layer in self.encoder_layers:
            x = layer(x, src_mask)
        return self.encoder_norm(x), src_mask
        ### END SOLUTION

    def decode(self, tgt_in: torch.Tensor, memory: torch.Tensor, src_mask: torch.Tensor) -> torch.Tensor:
        ### BEGIN SOLUTION
        if tgt_in.dim() != 2 or tgt_in.shape[1] > self.max_len or memory.shape[0] != tgt_in.shape[0]:
            raise ValueError(f"tgt_in must be (B, T) with T <= max_len = {self.max_len} and memory (B, S, D); "
                             f"got {tuple(tgt_in.shape)} and {tuple(memory.shape)}")
        T = tgt_in.shape[1]
        tgt_mask = torch.ones(T, T, dtype=torch.bool, device=tgt_in.device).tril()
        y = self.dropout(self.tgt_embed(tgt_in) * math.sqrt(self.d_model) + self.pe[:T])
        for layer in self.decoder_layers:
            y = layer(y, memory, tgt_mask, src_mask)
        return self.output(self.decoder_norm(y))
        ### END SOLUTION

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        ### BEGIN SOLUTION
        memory, src_mask = self.encode(src)
        return self.decode(tgt_in, memory, src_mask)
        ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_Transformer", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false}
# Visible tests: shapes, the embedding initialisation, the stored encoding, the causal mask end to end, padding.
seed_everything(0)
model = Transformer(30, 20, d_model=32, num_heads=4, num_layers=2, d_ff=64, dropout=0.0, max_len=16).eval()
src = torch.tensor([[5, 6, 7, 8, 0, 0], [9, 3, 4, 10, 11, 12]])
tgt_in = torch.tensor([[BOS, 4, 5, 6], [BOS, 7, 8, 9]])
logits = model(src, tgt_in)
assert_tensor(logits, shape=(2, 4, 20), dtype=torch.float32, name="model(src, tgt_in)")
memory, src_mask = model.encode(src)
assert_tensor(memory, shape=(2, 6, 32), dtype=torch.float32, name="memory = model.encode(src)[0]")
assert_close(src_mask, (src != PAD)[:, None, :], name="src_mask = model.encode(src)[1] (True on real tokens)")
assert_close(model.decode(tgt_in, memory, src_mask), logits, name="decode(tgt_in, *encode(src)) vs forward")
assert_close(model.pe, sinusoidal_positional_encoding(16, 32), name="model.pe")
std = Transformer(500, 400, d_model=64, max_len=8).src_embed.weight.std().item()
assert abs(std - 64 ** -0.5) < 0.02, f"src_embed should start with std d_model**-0.5 = 0.125, got {std:.3f}"
changed = tgt_in.clone()
changed[:, 2] = 13
assert_close(model(src, changed)[:, :2], logits[:, :2],
             name="logits at positions 0-1 after changing target token 2 (the decoder must not see the future)")
assert_close(model(torch.cat([src, torch.zeros(2, 3, dtype=torch.long)], 1), tgt_in), logits,
             name="logits after appending 3 more PAD columns to src (padding must be masked)")
expect_value_error(model.encode, torch.zeros(2, 17, dtype=torch.long), mention=["17"],
                   name="encode of a source longer than max_len = 16")


class PassThrough(nn.Module):  # stands in for every layer: what reaches the output is the embedding step alone
    def forward(self, x, *masks_and_memory):
        return x


probe = Transformer(30, 20, d_model=32, num_heads=4, num_layers=1, d_ff=64, dropout=0.0, max_len=16).eval()
probe.encoder_layers, probe.decoder_layers = nn.ModuleList([PassThrough()]), nn.ModuleList([PassThrough()])
for side, embed, ids in (("encode", probe.src_embed, src), ("decode", probe.tgt_embed, tgt_in)):
    with torch.no_grad():
        got = probe.encode(ids)[0] if side == "encode" else probe.decode(ids, memory, src_mask)
        table, length = embed.weight[ids], ids.shape[1]
        want = table * math.sqrt(32) + probe.pe[:length]
        unscaled = table + probe.pe[:length]
        if side == "decode":
            want, unscaled = probe.output(want), probe.output(unscaled)
    if torch.allclose(got, unscaled, atol=1e-5):
        raise AssertionError(f"{side} adds the positional encoding to the raw embeddings: multiply them by "
                             "sqrt(d_model) first. With std d_model**-0.5 an embedding has length about 1 while "
                             "the encoding's length is about sqrt(d_model / 2): unscaled, position would drown content")
    assert_close(got, want, name=f"{side} with every layer replaced by a pass-through (should be "
                 f"{'src' if side == 'encode' else 'tgt'}_embed(ids) * sqrt(d_model) + pe[:length]"
                 f"{', then output(...)' if side == 'decode' else ''})")

# %% [markdown]
# **What to notice.** The end-to-end checks are the two promises of the masks: changing target token $t$ moves no
# logit before position $t$, and extra padding on the source changes nothing.
#
# ## Training is parallel, inference is sequential
#
# Learners ask what the decoder's input is. **In training** it is the correct target shifted right,
# `tgt[:, :-1] = BOS y₁ … y_n`, and the model predicts `tgt[:, 1:] = y₁ … y_n EOS` at all positions in *one*
# forward pass — the causal mask makes position $t$ see only `BOS y₁ … y_t`, exactly what it would have at
# inference time. That is why a Transformer trains much faster than an RNN decoder, which must step through time.
#
# **At inference** there is no correct target. The decoder starts from `BOS`, predicts one token, appends it to its
# input, and runs again: $n$ forward passes for $n$ tokens. Each pass recomputes the whole prefix (production systems
# cache the keys and values of earlier positions; we keep it simple). The encoder runs once.

# %% [markdown]
# ### Exercise 6 — `greedy_decode(model, src, max_len, bos_id, eos_id)`

# %% nbgrader={"grade": false, "grade_id": "greedy_decode", "locked": false, "schema_version": 3, "solution": true, "task": false}
def greedy_decode(model, src: torch.Tensor, max_len: int, bos_id: int, eos_id: int) -> torch.Tensor:
    """Translate a batch greedily: encode once, then append the arg-max token one step at a time.

    Args:
        model: any object with ``encode(src) -> (memory, src_mask)`` and
            ``decode(tgt_in, memory, src_mask) -> logits (B, T, V)`` whose row t predicts the token after
            ``tgt_in[:, t]`` (the ``Transformer`` above). Call ``encode`` once per batch; call ``decode`` with the
            whole prefix ``BOS y1 … yt`` (B, t + 1) and take the arg-max of its **last** position.
        src: (B, S) int64 source ids, right-padded with PAD.
        max_len: the number of tokens to generate, an int >= 1.
        bos_id, eos_id: ids of BOS and EOS.

    Returns:
        (B, max_len) int64 on ``src``'s device: the generated tokens **without** the leading BOS. A row keeps its
        first EOS and has PAD (0) at every position after it; the tokens the model would produce after EOS are
        ignored (they must not be fed back either — the row is finished). Runs without gradients
        (``torch.no_grad``); does not change the model's train / eval mode.

    Raises:
        ValueError: if ``src`` is not 2-D or ``max_len < 1``.
    """
    ### BEGIN SOLUTION
    if src.dim() != 2 or max_len < 1:
        raise ValueError(f"expected src of shape (B, S) and max_len >= 1, got {tuple(src.shape)} and {max_len}")
    with torch.no_grad():
        memory, src_mask = model.encode(src)
        batch = src.shape[0]
        prefix = torch.full((batch, 1), bos_id, dtype=torch.long, device=src.device)
        finished = torch.zeros(batch, dtype=torch.bool, device=src.device)
        out = torch.full((batch, max_len), PAD, dtype=torch.long, device=src.device)
        for t in range(max_len):
            step = model.decode(prefix, memory, src_mask)[:, -1].argmax(-1)
            step = step.masked_fill(finished, PAD)
            out[:, t] = step
            finished |= step == eos_id
            if finished.all():
                break
            prefix = torch.cat([prefix, step[:, None]], dim=1)
        return out
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_greedy_decode", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
# Visible tests: a scripted model that counts 3, 4, 5, … and says EOS once the prefix has a given length.
class CountingModel:
    """decode predicts 3 after BOS, else 'previous token + 1'; EOS once the prefix holds src[:, 0] tokens."""

    vocab = 12

    def encode(self, src):
        return src[:, :1].float(), torch.ones(src.shape[0], 1, 1, dtype=torch.bool)

    def decode(self, tgt_in, memory, src_mask):
        nxt = torch.where(tgt_in == BOS, 3, tgt_in + 1).clamp(max=self.vocab - 1)
        stop = torch.arange(1, tgt_in.shape[1] + 1)[None, :] >= memory.long()
        nxt = torch.where(stop, torch.full_like(nxt, EOS), nxt)
        return F.one_hot(nxt, self.vocab).float()


src = torch.tensor([[3, 0], [5, 0], [1, 0]])  # rows stop after 3, 5 and 1 tokens
out = greedy_decode(CountingModel(), src, max_len=6, bos_id=BOS, eos_id=EOS)
assert_tensor(out, shape=(3, 6), dtype=torch.int64, name="greedy_decode(...)")
assert_close(out, torch.tensor([[3, 4, EOS, PAD, PAD, PAD], [3, 4, 5, 6, EOS, PAD], [EOS, PAD, PAD, PAD, PAD, PAD]]),
             name="greedy_decode with a counting model (no BOS in the output, EOS kept, PAD after it)")
assert_close(greedy_decode(CountingModel(), src, max_len=2, bos_id=BOS, eos_id=EOS),
             torch.tensor([[3, 4], [3, 4], [EOS, PAD]]), name="greedy_decode with max_len = 2")
expect_value_error(greedy_decode, CountingModel(), torch.tensor([1, 2]), 3, BOS, EOS, name="greedy_decode of 1-D src")

# %% [markdown]
# ## Experiment — dates with a Transformer
#
# Now the model of exercises 1–6 on the dates task ("september 27, 1994" → "1994-09-27"; 20,000 training pairs,
# 2,000 held-out test strings never seen in training). The configuration is small so that it trains in about half a
# minute on a laptop CPU: $D = 64$, 4 heads ($d_k = 16$; the paper's base model has $D = 512$, 8 heads, $d_k = 64$),
# 2 encoder and 2 decoder layers, $d_{ff} = 128$. The optimiser is AdamW with a short linear **warm-up** of the
# learning rate, then cosine decay. On a GPU (`USE_BIG_CONFIG`) the notebook trains a wider, deeper model for more
# steps in the same time — mixed precision (float16) is switched on by the training loop there.

# %%
USE_BIG_CONFIG = torch.cuda.is_available()  # a GPU can afford a bigger model in the same wall-clock time
if USE_BIG_CONFIG:
    CONFIG = dict(d_model=128, num_heads=8, num_layers=3, d_ff=512, dropout=0.0)
    STEPS, BATCH_SIZE = by_mode(full=1500, fast=6), 128
else:
    CONFIG = dict(d_model=64, num_heads=4, num_layers=2, d_ff=128, dropout=0.0)
    STEPS, BATCH_SIZE = by_mode(full=500, fast=6), 48
LEARNING_RATE, WARMUP = 6e-3, 50
SIDE_STEPS = by_mode(full=60, fast=3)  # the short comparison runs below
EVAL_LIMIT = by_mode(full=None, fast=64)  # the grading fast path decodes a few examples only

dates = date_task()
print(f"{len(dates.train)} training pairs, {len(dates.valid)} validation, {len(dates.test)} held-out test")
print(dates.train.src_text[0], "→", dates.train.tgt_text[0])


def sequence_loss(model, batch):
    """Teacher forcing: feed BOS y1 … yn, predict y1 … yn EOS at every position at once; PAD is ignored."""
    src, tgt = batch
    src = src[:, : int((src != PAD).sum(1).max())]  # drop columns that are padding in every row: same loss, less work
    logits = model(src, tgt[:, :-1])
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), tgt[:, 1:].reshape(-1), ignore_index=PAD)


def warmup_cosine(optimizer, warmup: int, total: int):
    """Learning rate × min(1, step / warmup) × cosine decay over ``total`` steps."""
    shape = lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, total) / total))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, shape)


def fit(task, steps, *, lr=LEARNING_RATE, warmup=WARMUP, total=None, seed=0, embedding_std=None,
        norm_first=False, desc="training", config=None, batch_size=None):
    """Train a fresh Transformer on ``task``; returns (model, history). ``embedding_std`` overrides the init."""
    seed_everything(seed)
    config = dict(config or CONFIG)
    model = Transformer(len(task.src_vocab), len(task.tgt_vocab), max_len=64, norm_first=norm_first, **config)
    if embedding_std is not None:
        for embedding in (model.src_embed, model.tgt_embed):
            nn.init.normal_(embedding.weight, std=embedding_std)
    model.to(device)
    # foreach: one update for all parameters at once (PyTorch's default on a GPU; on a CPU it saves ~5 % a step)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, foreach=True)
    batches = batch_sampler(task.train.src, task.train.tgt, batch_size=batch_size or BATCH_SIZE, seed=seed,
                            device=device)
    history = train(model, optimizer, sequence_loss, batches, steps, desc=desc,
                    scheduler=warmup_cosine(optimizer, warmup, total or steps))
    return model, history


def evaluate(model, split, limit=EVAL_LIMIT, chunk=1000):
    """Exact match of greedy decoding on ``split`` (the first ``limit`` examples), decoded in chunks."""
    src, tgt = split.src[:limit], split.tgt[:limit]
    model.eval()
    predictions = [greedy_decode(model, src[i : i + chunk].to(device), tgt.shape[1] - 1, BOS, EOS).cpu()
                   for i in range(0, len(src), chunk)]
    return exact_match(torch.cat(predictions), tgt), torch.cat(predictions)


model, history = fit(dates, STEPS, desc="dates")
start = time.perf_counter()
test_accuracy, test_predictions = evaluate(model, dates.test)
decode_seconds = time.perf_counter() - start
n_params = sum(p.numel() for p in model.parameters())
print(f"{n_params:,} parameters, {STEPS} steps in {history.seconds:.1f} s ({STEPS / history.seconds:.1f} steps/s); "
      f"greedy decoding of the test set {decode_seconds:.1f} s")
report_metric("dates exact match (Transformer)", test_accuracy, notebook="07_transformer")
report_metric("dates training seconds (Transformer)", history.seconds, notebook="07_transformer", fmt=".1f")
for text, pred in list(zip(dates.test.src_text, test_predictions))[:5]:
    print(f"{text:>32} → {dates.decode_target(pred)}")
wrong = [(t, dates.decode_target(p), want) for t, p, want in zip(dates.test.src_text, test_predictions, dates.test.tgt_text)
         if dates.decode_target(p) != want]
print(f"{len(wrong)} mistakes", wrong[:5])
ax = plot_losses({"Transformer on dates": history}, title="Training loss (teacher forcing)")
show(ax.figure)

# %% [markdown]
# **What to notice.** A few hundred steps — a little more than one pass over the training set — give (nearly) every
# held-out date exactly right. The loss curve has no long plateau at the start: with embeddings of the right size
# the model sees positions from step one. The mistakes that remain (if any) tend to be two-digit years or
# day/month order in the slash and dot formats.
#
# ## Experiment — embedding scale and initialisation, post-LN and pre-LN
#
# Short side runs of the same model on the same data, at a high learning rate ($10^{-2}$), in batches of 32, one
# change at a time against the post-LN model with warm-up:
#
# 1. **Post-LN vs pre-LN without warm-up**, and post-LN with warm-up (right panel).
# 2. **Embeddings initialised N(0, 1)** (PyTorch's default for `nn.Embedding`) instead of N(0, 1/D), still scaled by
#    $\sqrt{D}$, with warm-up (left panel, against the post-LN warm-up run).

# %%
D = CONFIG["d_model"]
E_small = torch.randn(1000, D) * D ** -0.5
E_default = torch.randn(1000, D)
pe_norm = sinusoidal_positional_encoding(64, D).norm(dim=-1).mean().item()
print(f"average norm: PE {pe_norm:.1f}, sqrt(D)·E with std D^-1/2: {(E_small * D ** 0.5).norm(dim=-1).mean():.1f}, "
      f"sqrt(D)·E with std 1: {(E_default * D ** 0.5).norm(dim=-1).mean():.1f}")

side = {}  # compared with one another only: batches of 32 are enough
for label, norm_first, warmup in [("post-LN, no warm-up", False, 1), ("pre-LN, no warm-up", True, 1),
                                  ("post-LN, warm-up", False, WARMUP)]:
    _, side[label] = fit(dates, SIDE_STEPS, lr=1e-2, warmup=warmup, total=STEPS, norm_first=norm_first, desc=label,
                         batch_size=32)
_, history_default_init = fit(dates, SIDE_STEPS, lr=1e-2, warmup=WARMUP, total=STEPS, embedding_std=1.0,
                              desc="N(0, 1) embeddings", batch_size=32)
init = {"std D^-1/2 (this notebook)": side["post-LN, warm-up"], "std 1 (nn.Embedding default)": history_default_init}

fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
plot_losses(init, smooth=10, ax=axes[0], title="Embedding init (post-LN, lr 1e-2 with warm-up)")
plot_losses(side, smooth=10, ax=axes[1], title="LayerNorm placement, lr 1e-2")
fig.tight_layout()
show(fig)
for label, h in [*side.items(), ("N(0, 1) embeddings", history_default_init)]:
    print(f"{label:>22}: mean loss over the last 10 of {SIDE_STEPS} steps {sum(h.losses[-10:]) / 10:.3f}")
stalled = side["post-LN, no warm-up"].losses
third = max(1, len(stalled) // 3)
print(f"post-LN without warm-up: mean loss {sum(stalled[:third]) / third:.3f} over its first {third} steps, "
      f"{sum(stalled[-third:]) / third:.3f} over its last {third} — "
      f"{'still falling' if sum(stalled[-third:]) < sum(stalled[:third]) else 'not falling'}; with warm-up "
      f"{sum(side['post-LN, warm-up'].losses[-third:]) / third:.3f}")

# %% [markdown]
# **What to notice.** With N(0, 1) embeddings, $\sqrt{D}\,E$ is about eleven times larger than the positional
# encoding: the model cannot tell "03/04" from "04/03" until it has shrunk its embeddings. After these 60 steps its loss
# is well above that of the run with small embeddings (the printout has this run's figures), and the gap grows with
# training: the default init reaches a given loss several times later. (Why the paper scales by $\sqrt{D}$ at all,
# it does not say. The usual explanation is that it shares the embedding matrix with the output layer, whose
# natural init is small, and the factor brings the shared matrix up to the encoding's size; either way scale and
# init have to be chosen together.)
#
# On the right, the post-LN model at $10^{-2}$ without warm-up falls behind. It does not stop — its loss keeps
# falling, more slowly (the last printed line) — but the large early updates of Adam, every residual sum passing
# through a LayerNorm, push its attention into a saturated regime it is slow to leave. The same model with warm-up,
# or the pre-LN model even without it, trains faster. That is why the paper needed its
# warm-up schedule and why most later models are pre-LN.
#
# ## Looking inside: attention maps per head
#
# We record the attention weights of every `nn.MultiheadAttention` while the trained model translates one test
# date (hooks ask each module for its per-head weights; nothing else changes).

# %%
def record_attention(model, src, tgt_in):
    """Run model(src, tgt_in) and return {module name: (H, T_q, T_k) weights of the first batch element}."""
    records, handles = {}, []

    def ask_for_weights(module, args, kwargs):
        return args, {**kwargs, "need_weights": True, "average_attn_weights": False}

    for name, module in model.named_modules():
        if isinstance(module, nn.MultiheadAttention):
            def keep(module, args, kwargs, output, name=name):
                records[name] = output[1][0].detach().float().cpu()
            handles += [module.register_forward_pre_hook(ask_for_weights, with_kwargs=True),
                        module.register_forward_hook(keep, with_kwargs=True)]
    try:
        with torch.no_grad():
            model(src.to(device), tgt_in.to(device))
    finally:
        for handle in handles:
            handle.remove()
    return records


example = next(i for i, t in enumerate(dates.test.src_text) if "," in t and len(t) > 16)
length = int(dates.test.src_lengths[example])
src_example = dates.test.src[example : example + 1, :length]
output_example = greedy_decode(model, src_example.to(device), 11, BOS, EOS).cpu()
tgt_in_example = torch.cat([torch.tensor([[BOS]]), output_example[:, :10]], dim=1)
weights = record_attention(model, src_example, tgt_in_example)
src_chars = list(dates.test.src_text[example])
out_chars = ["<bos>", *dates.decode_target(output_example[0])][: tgt_in_example.shape[1]]  # one label per query
last = len(model.encoder_layers) - 1
n_heads = CONFIG["num_heads"]
encoder_maps = torch.cat([weights[f"encoder_layers.{i}.self_attn"] for i in range(last + 1)])  # layer by layer
fig = attention_grid(encoder_maps, src_chars, src_chars, ncols=n_heads,
                     titles=[f"layer {i // n_heads}, head {i % n_heads}" for i in range(len(encoder_maps))],
                     suptitle="encoder self-attention, every layer (rows) and head (columns)")
show(fig)
for i in range(last + 1):
    w = weights[f"encoder_layers.{i}.self_attn"]
    offsets = (w.argmax(-1) - torch.arange(w.shape[-1])).abs().float()  # how far each query's top key is
    entropy = -(w * w.clamp_min(1e-9).log()).sum(-1).mean().item()
    print(f"encoder layer {i}: a query's strongest key is on average {offsets.mean():.1f} characters away; "
          f"mean entropy of a row {entropy:.2f} nats (uniform over {w.shape[-1]} keys: {math.log(w.shape[-1]):.2f})")
fig = attention_grid(weights[f"decoder_layers.{last}.cross_attn"], out_chars, src_chars,
                     suptitle=f"cross-attention, decoder layer {last}: query = output so far, key = source")
show(fig)

# %% [markdown]
# **What to notice.** Each row of a cross-attention map is one decoder input token, and it predicts the *next*
# character. The `<bos>` row and the rows of the first three year digits look at the year in the source; the "-"
# after the year looks at the month name (it is about to write the month); the "-" after the month looks at the
# day. That is the alignment of notebook 03, now spread over heads that share the job (heads are trained jointly,
# as one layer — not independent experts voting). The encoder's heads specialise too: in both layers several heads
# gather at the year at the end of the input, others at a letter of the weekday or the month, so by the time the
# decoder asks, many positions already carry those pieces. The first row of maps is layer 0, whose queries and keys
# are the raw characters and their positions; the second is layer 1, whose queries and keys already carry what
# layer 0 gathered — that is what stacking layers buys: each layer attends over the results of the one before, so
# it can match on what a position has *learned* ("I am part of the year"), not only on what character it is. In a
# model this small the two layers look alike by simple measures (the printed lines: how far a query's strongest key
# is, how spread its row is); in deep language models the early layers are known to attend locally and by position,
# and later ones by content. A learner asked why trained attention maps often look **diagonal**: when input and output have the same
# order (translation between similar languages, or a head that looks at a fixed neighbour — easy for a linear
# projection, thanks to the rotation property of the encoding), the aligned key sits on the diagonal. Dates change
# the order of day, month and year, so here the alignment jumps instead.
#
# ## Experiment — toy English → Japanese
#
# The same model on word-level sentences whose word order changes: English is subject–verb–object, Japanese
# subject–object–verb ("i eat an apple in the park" → "私 は 公園 で りんご を 食べる").

# %%
en_ja = en_ja_task()
EN_JA_STEPS = by_mode(full=120, fast=3)  # short sentences from a small vocabulary: small batches suffice
model_ja, history_ja = fit(en_ja, EN_JA_STEPS, lr=4e-3, warmup=20, batch_size=32, desc="EN→JA")
ja_accuracy, ja_predictions = evaluate(model_ja, en_ja.test)
report_metric("EN→JA exact match (Transformer)", ja_accuracy, notebook="07_transformer")
for text, pred in list(zip(en_ja.test.src_text, ja_predictions))[:4]:
    print(f"{text:>40} → {en_ja.decode_target(pred)}")
example = next(i for i, t in enumerate(en_ja.test.src_text) if " in the " in t or " at " in t)
length = int(en_ja.test.src_lengths[example])
src_example = en_ja.test.src[example : example + 1, :length]
output_example = greedy_decode(model_ja, src_example.to(device), en_ja.test.tgt.shape[1] - 1, BOS, EOS).cpu()
n_out = int((output_example[0] != PAD).sum())
tgt_in_example = torch.cat([torch.tensor([[BOS]]), output_example[:, : n_out - 1]], dim=1)
weights = record_attention(model_ja, src_example, tgt_in_example)
cross = torch.stack([weights[f"decoder_layers.{i}.cross_attn"] for i in range(len(model_ja.decoder_layers))])
query_labels = ["<bos>", *en_ja.tgt_vocab.decode(output_example[0])][:n_out]  # the decoder's input tokens
ax = attention_heatmap(cross.mean(dim=(0, 1)), query_labels, en_ja.test.src_text[example].split(),
                       title="cross-attention (mean over layers and heads)")
ax.set_ylabel("Japanese query (input so far)")
ax.set_xlabel("English source word")
show(ax.figure)

# %% [markdown]
# **What to notice.** Again each row predicts the next word, so read it as "where the model looks to write what
# comes next". After "は" it looks at the time phrase at the very *end* of the English sentence (next word: the
# time), after "で" at the object, after "を" at the verb near the *start* — the verb is written last. That is the
# subject–object–verb reordering Nakamura's deck and the *Attention機構* deck talk about, learned from sentence pairs alone, without
# recurrence.
#
# ## Transformer vs notebook 03's attention RNN
#
# The same task, the same held-out dates, both trained on a CPU by default. Notebook 03 prints its own exact match
# and training seconds; compare seconds only between runs on the same machine at the same time (`make bench` runs
# both notebooks one after the other and reports "dates training seconds" for each).

# %%
print(f"this notebook: Transformer, {CONFIG['num_layers']}+{CONFIG['num_layers']} layers, D={CONFIG['d_model']}: "
      f"{test_accuracy:.2%} exact match after {history.seconds:.0f} s of training on {describe_device(device)}")
print("notebook 03: GRU encoder + Bahdanau attention decoder: its target is ≥ 99.9 %; its own run prints its seconds")

# %% [markdown]
# **What to notice.** On a task this small both reach (nearly) perfect dates within a minute of CPU time: the
# Transformer's advantage is not accuracy on short strings but that training is one parallel pass over all
# positions — on a GPU, and on long sequences, that is what made it replace recurrent models. Per layer, with $n$
# positions of width $d$, self-attention costs $O(n^2 d)$ operations and a recurrent layer $O(n d^2)$; but attention
# needs $O(1)$ sequential steps where the recurrent layer needs $O(n)$, one per position, and it is those steps that
# a parallel machine cannot speed up (the paper's Table 1).
#
# ## Encoder-only and decoder-only: BERT and GPT
#
# The encoder–decoder is one way to use these layers. The *Attention機構* deck's "Transformer block" — attention and
# FFN with Add & Norm — is also used on its own:
#
# - **Encoder-only (BERT)**: a stack of `EncoderLayer`s with no causal mask. Every position sees the whole input,
#   left and right; a classifier reads one position (BERT's `[CLS]` token — the Vision Transformer of notebook 08
#   does the same) or all of them. Trained by filling in masked-out words.
# - **Decoder-only (GPT)**: the same layers *with* the causal mask and no cross-attention: a language model that
#   predicts the next token, decoded exactly like `greedy_decode`.
#
# What makes BERT and GPT what they are is less the block than the **pretraining**, which is beyond this course:
# BERT (Devlin et al., 2018) hides about 15 % of the words of a huge unlabelled corpus and learns to fill them in
# from both sides (a *masked language model*), then is fine-tuned with a small head per task; GPT (Radford et al.,
# 2018 onward) learns to predict the next token of the same kind of corpus, and its later, far larger versions are
# used by prompting rather than fine-tuning. Both need corpora and compute many orders of magnitude beyond a laptop.
#
# **Greedy decoding can loop.** `greedy_decode` always takes the single most likely next token. For dates that is
# enough — the output is short and fully determined by the input — and `max_len` stops a model that never writes
# EOS. For open-ended text, a language model decoded greedily often falls into a loop: once a phrase has been
# written, the same context makes the same phrase the most likely continuation again. Practical decoders sample
# from the distribution (with a temperature, top-k or top-p), search several candidates at once (beam search) or
# penalise repetition. Notebook 10 trains a small GPT-style model, shows it looping, and writes the sampler.
#
# One block, two masks — changing the last token moves every output of the bidirectional block but none of the
# causal block's earlier outputs:

# %%
seed_everything(0)
block = EncoderLayer(32, 4, 64).eval()
tokens = torch.randn(1, 6, 32)
edited = tokens.clone()
edited[0, -1] += 1.0
causal = torch.ones(6, 6, dtype=torch.bool).tril()
for label, mask in [("bidirectional (BERT-style, no mask)", None), ("causal (GPT-style)", causal)]:
    moved = (block(edited, mask) - block(tokens, mask)).norm(dim=-1)[0]
    print(f"{label:>36}: change of each output after editing the last token:",
          " ".join(f"{m:.2f}" for m in moved.tolist()))

# %% [markdown]
# ## Summary
#
# - Attention is blind to order; the sinusoidal encoding adds a fixed "image" whose column pairs rotate with
#   position, so an offset is a linear map and dot products depend on relative position.
# - Each layer alternates attention (mix positions) and a position-wise two-layer FFN (process each position), each
#   wrapped in residual + LayerNorm — post-LN as in the paper (needs warm-up), or pre-LN (more forgiving).
# - The decoder's masked self-attention hides the future, so training is one parallel pass with teacher forcing;
#   cross-attention takes its queries from the decoder and its keys and values from the encoder's memory;
#   inference is sequential, one token per pass.
# - Embeddings are scaled by $\sqrt{D}$ *and* initialised with std $D^{-1/2}$ so they and the positional encoding
#   are the same size; PyTorch's default init makes the model learn several times slower.
# - PyTorch's `nn.MultiheadAttention` and `nn.Transformer*` masks are True = blocked, the opposite of this course.
#
# Next, notebook 08 feeds image patches instead of words to an encoder-only Transformer: the Vision Transformer.
