# %% [markdown]
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/attention-step-by-step/attention-step-by-step/blob/main/course/10_attention_at_scale/10_attention_at_scale.ipynb)

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
# # 10 · Attention at scale: a GPT-style decoder, RoPE, the KV cache and FlashAttention's online softmax
#
# Notebook 07 ended with two sentences: a decoder-only Transformer is "the same layers *with* the causal mask and no
# cross-attention", and "greedy decoding can loop". This notebook builds that model and meets what every real one
# meets once it is used at scale — learners' questions in the AIcia video's comments keep going there: *how is this
# used in GPT? why do local language models repeat the same sentence? can position be explained with the addition
# theorem?*
#
# The model is small and the data is synthetic on purpose: sentences from a little probabilistic grammar whose
# **entropy we know exactly**, so we can say not only that the model's loss goes down but how close it gets to the
# best any model could do. Around it, four pieces you write:
#
# | exercise | you write | what it is for |
# |---|---|---|
# | 1 | `rotary_embedding(x, positions)` | RoPE: position as a rotation of queries and keys, so scores depend on the offset only |
# | 2 | `sample_next(logits, temperature, top_k, generator)` | greedy, temperature and top-k sampling — and why greedy loops |
# | 3 | `KVCache` | keep each layer's keys and values, so generating a token costs O(S) instead of O(S²) |
# | 4 | `online_softmax_attention(q, k, v, block_size, causal)` | FlashAttention's algorithm: attention in blocks, never an S × S matrix |
#
# What earlier notebooks had you build — softmax, masks, multi-head attention, layers — comes from PyTorch here
# (`F.scaled_dot_product_attention`, `nn.LayerNorm`, …); everything this notebook is about, you write.

# %%
import math
import time

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

from attention_steps import by_mode, describe_device, get_device, report_metric, seed_everything
from attention_steps.data import BOS, PAD, grammar_task
from attention_steps.plotting import show
from attention_steps.testing import assert_close, assert_tensor, expect_value_error, forbid, watch_tensors
from attention_steps.training import batch_sampler, train

seed_everything(0)
device = get_device()
print("running on", describe_device(device))

# %% [markdown]
# ## The corpus, and the best loss any model can reach
#
# The grammar writes English-like sentences — "the cat that the dogs see sleeps ." — with two kinds of agreement
# that reach over other words: the verb agrees with its subject, not with the nearer noun of a relative clause
# (*cat … sleeps*, although *dogs* is closer), and a second clause's pronoun agrees with the subject (", and
# **they** run" after a plural one). Every sentence is made by a sequence of random choices — singular or plural,
# which noun, an adjective or not, … — each with known probabilities, and every sentence can be made in exactly one
# way. Its information content is then the sum of the information of its choices, and the **entropy** of a
# sentence,
#
# $$H = \operatorname{E}\big[-\log p(\text{sentence})\big] = \sum_{\text{choices } c} \operatorname{E}\big[H(c)\big],$$
#
# can be computed from the grammar instead of estimated. A row of our data holds six sentences between BOS and
# EOS. A language model predicts every token after BOS — the words and the EOS — and its loss is the mean
# cross-entropy per token. No model can beat the grammar itself, so the **floor** is
#
# $$\text{floor} = \frac{6H}{6\,\operatorname{E}[\text{words per sentence}] + 1}\ \text{nats per token}$$
#
# (EOS always comes after the sixth sentence: it adds a token to predict and no information). Had some sentence been
# derivable in two ways, the choices would carry more information than the text and a model could seem to "beat" the
# floor; the course's tests parse thousands of samples to make sure it cannot happen.

# %%
corpus = grammar_task(n_train=by_mode(full=12_000, fast=400), n_valid=by_mode(full=1_000, fast=100),
                      n_test=by_mode(full=1_000, fast=100), sentences_per_row=6)
print(f"vocabulary: {len(corpus.vocab)} tokens; {len(corpus.train):,} training rows of six sentences; the first:")
for sentence in corpus.train.texts[0].removesuffix(" .").split(" . "):
    print("  ", sentence, ".")
print(f"entropy: {corpus.entropy_per_sentence:.3f} nats per sentence, {corpus.words_per_sentence:.2f} words per "
      f"sentence on average; floor {corpus.entropy_per_token:.4f} nats per predicted token "
      f"({corpus.entropy_per_token / math.log(2):.3f} bits)")
print(f"for scale: a uniform guess over the {len(corpus.vocab)} tokens costs ln {len(corpus.vocab)} = "
      f"{math.log(len(corpus.vocab)):.2f} nats per token")

# %% [markdown]
# ## Position as a rotation: RoPE
#
# Notebook 07 *added* a sinusoidal vector to each embedding and showed, with the addition theorem, that moving $k$
# positions rotates each pair of its features by the angle $\omega_i k$. It also had to add two cautions: a head
# sees the sum of a word and a position, mixed by $W_Q$ and $W_K$, and only if training makes $W_Q W_K^\top$
# close to the right rotation does its score depend on the offset.
#
# **Rotary position embedding** (RoPE; Su et al., 2021, used by LLaMA and most recent language models) makes the
# offset property exact by construction. Leave the embeddings alone; instead rotate the **query and key** of the
# token at position $m$, pair by pair:
#
# $$\begin{pmatrix} x'_{2i} \\ x'_{2i+1} \end{pmatrix} =
# \begin{pmatrix} \cos m\theta_i & -\sin m\theta_i \\ \sin m\theta_i & \cos m\theta_i \end{pmatrix}
# \begin{pmatrix} x_{2i} \\ x_{2i+1} \end{pmatrix}, \qquad \theta_i = 10000^{-2i/D}.$$
#
# A rotation $R_m$ by $m\theta_i$ followed by the transpose of one by $n\theta_i$ is a rotation by $(m - n)\theta_i$,
# so the score of a query at $m$ and a key at $n$ is
#
# $$(q R_m) \cdot (k R_n) = q\, R_m R_n^\top\, k^\top = q\, R_{m-n}\, k^\top :$$
#
# a function of the content ($q$, $k$) and the **offset** $m - n$ only — whatever $W_Q$ and $W_K$ learn. Nothing is
# added to the values, and a rotation keeps every vector's length. Pairs with a large $\theta_i$ turn fast and tell
# neighbours apart; pairs with a small one turn slowly and carry long distances — 07's "binary counter made smooth"
# again.
#
# ### Exercise 1 — `rotary_embedding(x, positions)`

# %% nbgrader={"grade": false, "grade_id": "rotary_embedding", "locked": false, "schema_version": 3, "solution": true, "task": false}
def rotary_embedding(x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Rotate each feature pair of ``x`` by its position's angle (RoPE).

    Args:
        x: floating-point tensor (..., S, D) — queries or keys, any leading (batch, head) dims; D even.
        positions: (S,) integer tensor, the position of each of the S rows (need not start at 0: a cache's new
            token sits at position len(cache)).

    Returns:
        Tensor of the shape and dtype of ``x`` whose features (2i, 2i+1) at row s are
        ``x[..., s, 2i] * cos(a) - x[..., s, 2i+1] * sin(a)`` and ``x[..., s, 2i] * sin(a) + x[..., s, 2i+1] * cos(a)``
        with ``a = positions[s] * 10000 ** (-2i / D)`` — interleaved pairs, as in the RoPE paper (not the first
        half against the second). Compute the angles in float64 (positions reach the thousands). Gradients flow to
        ``x``; ``x`` is not modified.

    Raises:
        ValueError: if D is odd or ``x`` has fewer than 2 dims, or ``positions`` is not an integer (S,) tensor
            matching ``x``'s S (the message names the shapes).
    """
    ### BEGIN SOLUTION
    if x.dim() < 2 or x.shape[-1] % 2:
        raise ValueError(f"x must be (..., S, D) with D even, got shape {tuple(x.shape)}")
    if positions.dim() != 1 or positions.shape[0] != x.shape[-2] or positions.dtype.is_floating_point:
        raise ValueError(f"positions must be an integer (S,) tensor with S = {x.shape[-2]}, got {positions.dtype} "
                         f"of shape {tuple(positions.shape)}")
    d = x.shape[-1]
    theta = 10000.0 ** (-torch.arange(0, d, 2, dtype=torch.float64, device=x.device) / d)
    angle = positions.to(device=x.device, dtype=torch.float64)[:, None] * theta  # (S, D/2)
    cos, sin = torch.cos(angle).to(x.dtype), torch.sin(angle).to(x.dtype)
    even, odd = x[..., 0::2], x[..., 1::2]
    return torch.stack([even * cos - odd * sin, even * sin + odd * cos], dim=-1).flatten(-2)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_rotary_embedding", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
# Visible tests: shape and dtype, position 0 changes nothing, a hand-computed pair, lengths kept, the offset
# property, and a clear error for an odd width.
x = torch.randn(2, 3, 5, 8)
out = rotary_embedding(x, torch.arange(5))
assert_tensor(out, shape=(2, 3, 5, 8), dtype=torch.float32, name="rotary_embedding(x, arange(5))")
assert_close(out[..., 0, :], x[..., 0, :], name="row at position 0 (a rotation by angle 0)")
pair = rotary_embedding(torch.tensor([[1.0, 0.0, 1.0, 0.0]]), torch.tensor([1]))
assert_close(pair, torch.tensor([[math.cos(1.0), math.sin(1.0), math.cos(0.01), math.sin(0.01)]]),
             name="(1, 0, 1, 0) at position 1 with D = 4: pair 0 turns by 1 rad, pair 1 by 1/100 rad (interleaved pairs)")
assert_close(out.norm(dim=-1), x.norm(dim=-1), name="vector lengths (a rotation keeps them)")
q, k = torch.randn(1, 16), torch.randn(1, 16)
scores = [(rotary_embedding(q, torch.tensor([m])) @ rotary_embedding(k, torch.tensor([n])).T).item()
          for m, n in [(3, 1), (10, 8), (500, 498)]]
assert_close(torch.tensor(scores[1:]), torch.tensor([scores[0]] * 2), atol=1e-4,
             name="q·k at positions (10, 8) and (500, 498) vs (3, 1): the same offset must give the same score")
expect_value_error(rotary_embedding, torch.randn(4, 7), torch.arange(4), mention=["7"],
                   name="rotary_embedding of a width-7 x")

# %% [markdown]
# ### Experiment — the score of one query and one key at every pair of positions
#
# Left: rotate the same $q$ and $k$ to positions $m$ and $n$ and take their dot product. Right: the same with 07's
# sinusoidal encoding *added* to $q$ and $k$ instead. Lines of constant colour parallel to the diagonal mean "depends on
# $m - n$ only".

# %%
def sinusoidal_table(max_len: int, d_model: int) -> torch.Tensor:
    """Notebook 07's encoding, written with complex numbers: pair (2i, 2i+1) holds (sin, cos) of pos·θ_i."""
    theta = 10000.0 ** (-torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)
    turn = torch.polar(torch.ones(max_len, d_model // 2, dtype=torch.float64),
                       torch.arange(max_len, dtype=torch.float64)[:, None] * theta)  # cos + i·sin
    return torch.stack([turn.imag, turn.real], dim=-1).flatten(1).float()


torch.manual_seed(1)
q, k = torch.randn(32), torch.randn(32)
positions = torch.arange(48)
rope_scores = rotary_embedding(q.expand(48, 32), positions) @ rotary_embedding(k.expand(48, 32), positions).T
pe = sinusoidal_table(48, 32)
added_scores = (q + pe) @ (k + pe).T
fig, axes = plt.subplots(1, 2, figsize=(10, 4))
for ax, scores, title in [(axes[0], rope_scores, "RoPE: (q R_m)·(k R_n)"), (axes[1], added_scores, "added: (q + PE_m)·(k + PE_n)")]:
    image = ax.imshow(scores, cmap="RdBu_r")
    ax.set(title=title, xlabel="key position n", ylabel="query position m")
    fig.colorbar(image, ax=ax, fraction=0.046)
fig.tight_layout()
show(fig)
diagonals = torch.stack([rope_scores.diagonal(-3)[:40], added_scores.diagonal(-3)[:40]])
print(f"along the diagonal m − n = 3: RoPE scores vary by {diagonals[0].std():.1e}, added-encoding scores by "
      f"{diagonals[1].std():.2f} (sd over 40 positions)")

# %% [markdown]
# **What to notice.** RoPE's picture is made of stripes parallel to the diagonal: the score depends on $m - n$
# only, to rounding error. The added encoding's picture is not — its score mixes $q \cdot k$, $q \cdot PE_n$,
# $PE_m \cdot k$ and $PE_m \cdot PE_n$, and only the last term depends on the offset alone. In a trained model $W_Q$
# and $W_K$ can learn to suppress the others; with RoPE there is nothing to learn.
#
# ## A decoder-only Transformer
#
# The model is notebook 07's decoder without the cross-attention, in the **pre-LN** arrangement most language models
# use (LayerNorm before each sub-layer, one after the last block): token embeddings, then blocks of causal
# self-attention and a feed-forward network, then a linear layer to the next token's logits. `position` chooses
# RoPE (rotate $q$ and $k$ in every layer) or 07's sinusoidal table (added to the embeddings once). Each attention
# layer takes an optional `cache` — exercise 3 — and `start`, the position of its first row, so that a model fed one
# new token at a time knows where that token is.

# %%
class CausalSelfAttention(nn.Module):
    def __init__(self, d_model: int, num_heads: int, rope: bool):
        super().__init__()
        self.num_heads, self.rope = num_heads, rope
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def forward(self, x, start=0, cache=None):
        B, S, D = x.shape
        q, k, v = self.qkv(x).view(B, S, 3, self.num_heads, D // self.num_heads).permute(2, 0, 3, 1, 4)
        if self.rope:
            where = torch.arange(start, start + S, device=x.device)
            q, k = rotary_embedding(q, where), rotary_embedding(k, where)
        if cache is not None:
            k, v = cache.append(k, v)  # every key and value so far: (B, H, start + S, d)
        # row s (position start + s) may see keys 0 … start + s: the causal mask, shifted by what is cached
        allowed = torch.ones(S, k.shape[2], dtype=torch.bool, device=x.device).tril(k.shape[2] - S)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
        return self.out(y.transpose(1, 2).reshape(B, S, D))


class Block(nn.Module):
    def __init__(self, d_model: int, num_heads: int, d_ff: int, rope: bool):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.attn = CausalSelfAttention(d_model, num_heads, rope)
        self.ffn = nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), nn.Linear(d_ff, d_model))

    def forward(self, x, start=0, cache=None):
        x = x + self.attn(self.norm1(x), start, cache)
        return x + self.ffn(self.norm2(x))


class TinyGPT(nn.Module):
    """Embedding (× √D, init std D^-1/2 as in 07) → blocks → LayerNorm → next-token logits."""

    def __init__(self, vocab_size, d_model=64, num_heads=4, num_layers=2, d_ff=256, position="rope", max_len=2048):
        super().__init__()
        self.position = position
        self.embed = nn.Embedding(vocab_size, d_model)
        nn.init.normal_(self.embed.weight, std=d_model ** -0.5)
        if position == "sinusoidal":
            self.register_buffer("pe", sinusoidal_table(max_len, d_model), persistent=False)
        self.blocks = nn.ModuleList(Block(d_model, num_heads, d_ff, position == "rope") for _ in range(num_layers))
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size)

    def forward(self, ids, start=0, caches=None):
        x = self.embed(ids) * math.sqrt(self.embed.embedding_dim)
        if self.position == "sinusoidal":
            x = x + self.pe[start : start + ids.shape[1]]
        for i, block in enumerate(self.blocks):
            x = block(x, start, None if caches is None else caches[i])
        return self.head(self.norm(x))


# %% [markdown]
# ### Training both, against the floor
#
# Teacher forcing as in 07: feed `BOS w₁ … wₙ`, predict `w₁ … wₙ EOS` at every position at once. The validation loss is
# the mean cross-entropy per predicted token over the held-out rows — the quantity the floor bounds.

# %%
STEPS = by_mode(full=300, fast=4)
CONFIG = dict(d_model=64, num_heads=4, num_layers=2, d_ff=256)


def lm_loss(model, batch):
    (rows,) = batch
    rows = rows[:, : int((rows != PAD).sum(1).max())]
    logits = model(rows[:, :-1])
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), rows[:, 1:].reshape(-1), ignore_index=PAD)


@torch.no_grad()
def validation_metrics(model, split=None):
    """Mean cross-entropy per predicted token (nats) and the share of tokens predicted right by the arg-max."""
    split = split or corpus.valid
    model.eval()
    rows = split.tokens.to(device)
    rows = rows[:, : int((rows != PAD).sum(1).max())]
    logits = model(rows[:, :-1]).reshape(-1, len(corpus.vocab)).float()
    targets = rows[:, 1:].reshape(-1)
    real = targets != PAD
    accuracy = (logits.argmax(-1)[real] == targets[real]).float().mean().item()
    return F.cross_entropy(logits, targets, ignore_index=PAD).item(), accuracy


def validation_loss(model):
    return validation_metrics(model)[0]


def fit(position, steps=STEPS, seed=0):
    seed_everything(seed)
    model = TinyGPT(len(corpus.vocab), position=position, **CONFIG).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-3, total_steps=steps, pct_start=0.1)
    history = train(model, optimizer, lm_loss, batch_sampler(corpus.train.tokens, batch_size=32, seed=seed,
                                                             device=device), steps,
                    scheduler=schedule, evaluate=lambda: validation_loss(model), eval_every=max(1, steps // 5),
                    desc=f"TinyGPT, {position}")
    return model, history


models, histories = {}, {}
for position in ("rope", "sinusoidal"):
    models[position], histories[position] = fit(position)

floor = corpus.entropy_per_token
print(f"{'position':<11} {'parameters':>10} {'valid loss':>11} {'above the floor':>16} {'next-token accuracy':>20} "
      f"{'seconds':>8}")
for position, model in models.items():
    loss, accuracy = validation_metrics(model)
    print(f"{position:<11} {sum(p.numel() for p in model.parameters()):>10,} {loss:>11.4f} "
          f"{loss / floor - 1:>16.1%} {accuracy:>20.1%} {histories[position].seconds:>8.1f}")
gpt = models["rope"]
report_metric("LM validation loss / entropy floor (RoPE)", validation_loss(gpt) / floor, notebook="10_attention_at_scale",
              fmt=".3f")

fig, ax = plt.subplots(figsize=(7, 3.8))
for position, history in histories.items():
    steps_at, values = zip(*history.evals)
    ax.plot(steps_at, values, "o-", label=f"{position}: validation")
ax.axhline(floor, color="black", ls="--", label=f"entropy floor {floor:.3f}")
ax.set(xlabel="training step", ylabel="nats per token", title="Validation loss against the floor")
ax.legend()
fig.tight_layout()
show(fig)

# %% [markdown]
# **What to notice.** The floor is not zero: even a perfect model is uncertain which noun comes next, because the
# grammar chooses at random — which is also why the next-token accuracy stays far from 100 % however good the model:
# after "the" any noun may come. A few hundred steps bring a model of about a hundred thousand parameters within a
# few percent of the floor — the table says how close, for each position scheme. Everything that is still learnable
# lives in those few percent: mostly the agreements that reach over a relative clause, which need attention to the
# right, distant word.
#
# ## Generating text: greedy, temperature, top-k
#
# To generate, feed BOS, take the model's distribution over the next token, pick one, append it, and repeat. How to
# pick is a choice:
#
# - **greedy** — the most likely token (notebook 07's `greedy_decode`);
# - **sampling with a temperature** $T$ — draw from $\operatorname{softmax}(\text{logits} / T)$: $T = 1$ is the
#   model's own distribution, $T < 1$ sharpens it toward greedy (notebook 00's "multiplying changes everything"),
#   $T > 1$ flattens it;
# - **top-k** — keep only the $k$ most likely tokens, renormalise, draw among them: it never picks a rare, bad token.
#
# ### Exercise 2 — `sample_next(logits, temperature=1.0, top_k=None, generator=None)`

# %% nbgrader={"grade": false, "grade_id": "sample_next", "locked": false, "schema_version": 3, "solution": true, "task": false}
def sample_next(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Pick the next token of each row from its logits.

    Args:
        logits: (B, V) floating-point scores for the next token of each of B sequences.
        temperature: 0 means greedy (the arg-max of each row; no randomness); otherwise sample from
            ``softmax(logits / temperature)``. Must be >= 0.
        top_k: if given (an int >= 1), sample only among the k largest logits of each row (renormalised); ties at
            the k-th value may all stay. ``top_k >= V`` keeps every token.
        generator: the ``torch.Generator`` to draw with (``torch.multinomial(..., generator=generator)``), so a
            seeded generator gives reproducible samples.

    Returns:
        (B,) int64 tensor of token ids. ``logits`` is not modified.

    Raises:
        ValueError: if ``logits`` is not 2-D, ``temperature < 0``, or ``top_k < 1`` (the message names the value).
    """
    ### BEGIN SOLUTION
    if logits.dim() != 2:
        raise ValueError(f"logits must be (B, V), got shape {tuple(logits.shape)}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be a positive int or None, got {top_k}")
    if temperature == 0:
        return logits.argmax(dim=-1)
    scaled = logits.double() / temperature
    if top_k is not None and top_k < scaled.shape[-1]:
        kth = scaled.topk(top_k, dim=-1).values[:, -1:]
        scaled = scaled.masked_fill(scaled < kth, -math.inf)
    return torch.multinomial(torch.softmax(scaled, dim=-1), 1, generator=generator).squeeze(-1)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_sample_next", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
# Visible tests: greedy, reproducibility, the frequencies of many draws, top-k's support, the errors.
logits = torch.tensor([[1.0, 3.0, 2.0, 0.0], [0.0, 0.0, 0.0, 5.0]])
assert_tensor(sample_next(logits, 0.0), shape=(2,), dtype=torch.int64, name="sample_next(logits, 0)")
assert_close(sample_next(logits, 0.0), torch.tensor([1, 3]), name="greedy picks (temperature 0 = arg-max per row)")
draws = sample_next(logits[:1].expand(20000, 4), 1.0, generator=torch.Generator().manual_seed(0))
again = sample_next(logits[:1].expand(20000, 4), 1.0, generator=torch.Generator().manual_seed(0))
assert_close(draws, again, name="two draws with equally seeded generators (use the generator you are given)")
frequencies = torch.bincount(draws, minlength=4) / 20000
assert_close(frequencies, torch.softmax(logits[0], 0), atol=0.015,
             name="frequencies of 20,000 draws at temperature 1 (should be softmax(logits))")
cold = torch.bincount(sample_next(logits[:1].expand(20000, 4), 0.5, generator=torch.Generator().manual_seed(1)),
                      minlength=4) / 20000
assert_close(cold, torch.softmax(logits[0] / 0.5, 0), atol=0.015, name="frequencies at temperature 0.5")
top2 = sample_next(logits[:1].expand(5000, 4), 1.0, top_k=2, generator=torch.Generator().manual_seed(2))
assert set(top2.tolist()) == {1, 2}, f"top_k=2 must draw only the two largest logits (ids 1 and 2), drew {sorted(set(top2.tolist()))}"
expect_value_error(sample_next, logits, -1.0, mention=["-1"], name="sample_next with temperature -1")
expect_value_error(sample_next, logits[0], 1.0, name="sample_next with 1-D logits")

# %% [markdown]
# ### Experiment — greedy decoding loops; sampling does not
#
# Continue from BOS for 60 tokens, ignoring EOS, greedily and by sampling.

# %%
@torch.no_grad()
def generate(model, prompt, n_new, temperature=0.0, top_k=None, seed=0, use_cache=False):
    """Continue ``prompt`` (1-D ids, BOS first) by ``n_new`` tokens; with ``use_cache`` feed one token at a time."""
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    ids = prompt[None].to(device)
    caches = [KVCache() for _ in model.blocks] if use_cache else None
    logits = model(ids, 0, caches)[:, -1]
    for _ in range(n_new):
        nxt = sample_next(logits.cpu(), temperature, top_k, generator).to(device)
        ids = torch.cat([ids, nxt[:, None]], dim=1)
        logits = (model(ids[:, -1:], ids.shape[1] - 1, caches) if use_cache else model(ids))[:, -1]
    return ids[0].cpu()


# %% [markdown]
# (The generator uses `KVCache` — exercise 3 — only when `use_cache=True`; everything in this section runs without it.)

# %%
start = torch.tensor([BOS])
for label, kwargs in [("greedy", dict(temperature=0.0)), ("temperature 1", dict(temperature=1.0, seed=3)),
                      ("temperature 0.7, top-10", dict(temperature=0.7, top_k=10, seed=3))]:
    text = " ".join(corpus.vocab.itos[int(i)] for i in generate(gpt, start, 60, **kwargs)[1:])
    print(f"{label}:\n  {text}\n")
    first_six = text.split(" . ")[:6]  # one row's worth
    common = max(first_six, key=first_six.count)
    repeated = f"; {common!r} {first_six.count(common)} times" if first_six.count(common) > 1 else ", none twice"
    print(f"  {len(set(first_six))} different sentences among the first 6{repeated}\n")

# %% [markdown]
# **What to notice.** Greedy decoding writes the single most likely sentence, and after its full stop it is in the
# same situation again — a new sentence, independent of the last — so it writes the same sentence again and again:
# the repetition loop learners meet in local language models, in its purest form. (Real models loop for a related
# reason: once a phrase has been written, the context makes the same phrase likely again.) Here the loop ends where
# a row does — every training row ended with EOS after six sentences, and the model writes EOS there too — and past
# EOS, where no training row went on, it writes whatever it likes. Sampling draws a different sentence each time, with the
# grammar's variety; a lower temperature and top-k keep it away from unlikely tokens. Nothing about the model
# changed — only how its distribution is read.
#
# ## The KV cache
#
# Look at what `generate` does without a cache: to pick token $t + 1$ it runs the model on all $t$ tokens so far,
# recomputing every layer's keys and values for positions that have not changed since the last step. With a causal
# mask, a position's keys and values never depend on later tokens, so they can be **kept**: feed only the new token,
# compute its query, key and value, append the key and value to a per-layer cache, and attend over the cache. The
# work per new token falls from a pass over $t$ tokens to a pass over one token plus an attention over $t$ cached
# keys — $O(t)$ instead of $O(t^2)$ for the attention, and $O(1)$ instead of $O(t)$ for everything else. The price is
# memory: two tensors of shape (B, H, t, d) per layer.
#
# ### Exercise 3 — `KVCache`

# %% nbgrader={"grade": false, "grade_id": "KVCache", "locked": false, "schema_version": 3, "solution": true, "task": false}
class KVCache:
    """One attention layer's keys and values so far.

    ``KVCache()`` starts empty. ``append(k, v)`` takes the new keys and values, ``k`` (B, H, S_new, d_k) and ``v``
    (B, H, S_new, d_v), adds them **after** what is cached along the sequence axis (dim 2), and returns
    ``(keys, values)``: everything cached so far, (B, H, S_total, d_k) and (B, H, S_total, d_v). The properties
    ``keys`` and ``values`` return the same (``None`` while empty) and ``len(cache)`` is S_total (0 while empty).
    Gradients are not needed (generation runs under ``torch.no_grad()``).

    ``append`` raises ValueError (naming the shapes) if ``k`` or ``v`` is not 4-D, if their B, H or S_new differ, or
    if B, H, d_k or d_v differ from what is cached.
    """

    def __init__(self):
        ### BEGIN SOLUTION
        self._keys = None
        self._values = None
        ### END SOLUTION

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ### BEGIN SOLUTION
        if k.dim() != 4 or v.dim() != 4 or k.shape[:3] != v.shape[:3]:
            raise ValueError(f"k and v must be (B, H, S_new, d) with equal B, H and S_new; got {tuple(k.shape)} and "
                             f"{tuple(v.shape)}")
        if self._keys is None:
            self._keys, self._values = k, v
        else:
            if (k.shape[:2] != self._keys.shape[:2] or k.shape[3] != self._keys.shape[3]
                    or v.shape[3] != self._values.shape[3]):
                raise ValueError(f"new k {tuple(k.shape)} and v {tuple(v.shape)} do not fit the cached keys "
                                 f"{tuple(self._keys.shape)} and values {tuple(self._values.shape)}")
            self._keys = torch.cat([self._keys, k], dim=2)
            self._values = torch.cat([self._values, v], dim=2)
        return self._keys, self._values
        ### END SOLUTION

    @property
    def keys(self) -> torch.Tensor | None:
        ### BEGIN SOLUTION
        return self._keys
        ### END SOLUTION

    @property
    def values(self) -> torch.Tensor | None:
        ### BEGIN SOLUTION
        return self._values
        ### END SOLUTION

    def __len__(self) -> int:
        ### BEGIN SOLUTION
        return 0 if self._keys is None else self._keys.shape[2]
        ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_KVCache", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
# Visible tests: empty, appends along the sequence axis, the model's logits with and without a cache, the errors.
cache = KVCache()
assert len(cache) == 0 and cache.keys is None, "a new cache is empty: len 0, keys None"
k1, v1 = torch.randn(2, 4, 2, 8), torch.randn(2, 4, 2, 5)
keys, values = cache.append(k1, v1)
k2, v2 = torch.randn(2, 4, 2, 8), torch.randn(2, 4, 2, 5)
keys, values = cache.append(k2, v2)
assert_close(keys, torch.cat([k1, k2], dim=2), name="keys after two appends (new positions after the old, on dim 2)")
assert len(cache) == 4, f"after appending 2 then 2 positions, len(cache) must be 4, got {len(cache)}"
assert_close(cache.values, torch.cat([v1, v2], dim=2), name="cache.values after two appends")
torch.manual_seed(0)
small = TinyGPT(20, d_model=16, num_heads=2, num_layers=2, d_ff=32, position="sinusoidal").eval()  # no RoPE: tested alone
ids = torch.randint(3, 20, (1, 9))
with torch.no_grad():
    full = small(ids)
    caches = [KVCache() for _ in small.blocks]
    pieces = [small(ids[:, :5], 0, caches)] + [small(ids[:, t : t + 1], t, caches) for t in range(5, 9)]
assert_close(torch.cat(pieces, dim=1), full, atol=1e-5,
             name="logits fed 5 tokens then one at a time through caches vs all 9 at once")
expect_value_error(KVCache().append, torch.randn(2, 3, 8), torch.randn(2, 3, 8), name="KVCache.append of 3-D k and v")
expect_value_error(cache.append, torch.randn(2, 4, 1, 6), torch.randn(2, 4, 1, 5), mention=["6"],
                   name="KVCache.append of keys of width 6 to a cache of width 8")

# %% [markdown]
# ### Experiment — the same tokens, and what each one costs
#
# First the promise: cached generation gives the same tokens as recomputing everything (greedy, so no randomness;
# exact ties between two logits could break differently, but they are vanishingly rare). Then the time each new
# token takes as the sequence grows, with and without the cache.

# %%
n_check = by_mode(full=80, fast=10)
same = torch.equal(generate(gpt, start, n_check), generate(gpt, start, n_check, use_cache=True))
print(f"{n_check} greedy tokens with and without the cache identical: {same}")


@torch.no_grad()
def seconds_per_token(model, length, use_cache, reps=3):
    """Median seconds to produce token number ``length`` + 1 after ``length`` tokens."""
    ids = torch.randint(3, len(corpus.vocab), (1, length + 1), device=device)
    times = []
    for _ in range(reps):
        caches = [KVCache() for _ in model.blocks] if use_cache else None
        if use_cache:
            model(ids[:, :length], 0, caches)  # the prompt, cached
        began = time.perf_counter()
        model(ids[:, length:], length, caches) if use_cache else model(ids)
        times.append(time.perf_counter() - began)
    return sorted(times)[len(times) // 2]


lengths = by_mode(full=[64, 128, 256, 512, 1024, 2000], fast=[16, 32])
cost = {label: [seconds_per_token(gpt, n, flag) * 1e3 for n in lengths]
        for label, flag in [("no cache: the whole sequence again", False), ("KV cache: one new token", True)]}
fig, ax = plt.subplots(figsize=(6.5, 3.8))
for label, values in cost.items():
    ax.plot(lengths, values, "o-", label=label)
ax.set(xscale="log", yscale="log", xlabel="tokens so far", ylabel="ms for the next token",
       xticks=lengths, xticklabels=[f"{n:,}" for n in lengths],
       title=f"Cost of one more token ({describe_device(device)})")
ax.minorticks_off()  # one labelled tick per measured length
ax.legend()
ax.grid(alpha=0.3)
fig.tight_layout()
show(fig)
ratio = cost["no cache: the whole sequence again"][-1] / cost["KV cache: one new token"][-1]
print(f"at {lengths[-1]} tokens the next token costs {ratio:.0f}× less with the cache")
report_metric(f"uncached / cached time per token at {lengths[-1]} tokens", ratio, notebook="10_attention_at_scale",
              fmt=".0f")

# %% [markdown]
# **What to notice.** Without the cache the time per token grows with the sequence — the whole prefix is recomputed
# — while with it the time stays nearly flat over this range: the one new token's projections and feed-forward
# layers dominate, and its attention over the cached keys grows only linearly. Summed over a generation of $S$
# tokens that is $O(S^2)$ against $O(S)$ work outside attention. Every serving system for language models keeps such
# a cache, and its memory — two tensors per layer, growing with every token, for every user — is what limits how many
# users and how long a context fit on one GPU.
#
# ## FlashAttention's online softmax
#
# Notebook 06 measured the quadratic memory of attention: the weights are an $S \times S$ matrix per head. For long
# sequences that matrix, not the arithmetic, is the problem — on a GPU it is written to and read back from slow
# memory. **FlashAttention** (Dao et al., 2022) never forms it. It walks over the keys and values in blocks and keeps,
# for every query, three running quantities: the largest score seen so far $m$, the sum of exponentials $\ell$
# (relative to $m$) and the unnormalised output $o$. When block $j$ brings scores $s$:
#
# $$m' = \max(m, \max_j s_j), \qquad
# \ell' = \ell\, e^{m - m'} + \sum_j e^{s_j - m'}, \qquad
# o' = o\, e^{m - m'} + \sum_j e^{s_j - m'}\, v_j ,$$
#
# and at the end the output is $o / \ell$. The factor $e^{m - m'}$ **rescales** what was summed against the old
# maximum to the new one — notebook 00's "subtract the maximum", done one block at a time. The result is exactly
# softmax attention, with at most one block of scores alive at once. (FlashAttention also tiles the queries and fuses
# everything into one GPU kernel; the algorithm is this.)
#
# ### Exercise 4 — `online_softmax_attention(q, k, v, block_size, causal=False)`

# %% nbgrader={"grade": false, "grade_id": "online_softmax_attention", "locked": false, "schema_version": 3, "solution": true, "task": false}
def online_softmax_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, block_size: int,
                             causal: bool = False) -> torch.Tensor:
    """Scaled dot-product attention computed over blocks of keys with a running max and sum (FlashAttention).

    Args:
        q: (..., S_q, d) queries; k: (..., S_k, d) keys; v: (..., S_k, d_v) values; equal leading dims; float16,
            float32 or float64.
        block_size: how many keys (and values) to process at once, an int >= 1; it need not divide S_k.
        causal: if True, query i may see keys j <= i + (S_k - S_q) (the queries are the *last* S_q positions, as
            in ``F.scaled_dot_product_attention(..., attn_mask=ones(S_q, S_k).tril(S_k - S_q))``; with S_q = S_k
            that is ``is_causal=True``).

    Returns:
        (..., S_q, d_v) tensor equal to ``F.scaled_dot_product_attention(q, k, v)`` (scale 1/sqrt(d)) with the same
        dtype as ``q``, computed without ever creating a tensor with S_q × S_k entries per batch element — at most
        S_q × block_size scores at a time. Accumulate in float32 at least (float16 inputs), so large scores neither
        overflow nor lose the output.

    Raises:
        ValueError: if ``block_size < 1``, or the shapes do not fit (the message names them).

    ``F.scaled_dot_product_attention`` and ``torch.softmax`` (every softmax) are off limits here.
    """
    ### BEGIN SOLUTION
    if block_size < 1:
        raise ValueError(f"block_size must be at least 1, got {block_size}")
    if (q.dim() < 2 or k.shape[:-2] != q.shape[:-2] or v.shape[:-2] != q.shape[:-2] or k.shape[-1] != q.shape[-1]
            or v.shape[-2] != k.shape[-2]):
        raise ValueError(f"q {tuple(q.shape)}, k {tuple(k.shape)} and v {tuple(v.shape)} must be (..., S_q, d), "
                         f"(..., S_k, d) and (..., S_k, d_v) with equal leading dims")
    s_q, s_k = q.shape[-2], k.shape[-2]
    work = torch.float32 if q.dtype == torch.float16 else q.dtype
    qs = q.to(work) * q.shape[-1] ** -0.5
    m = torch.full(q.shape[:-1], -math.inf, dtype=work, device=q.device)
    total = torch.zeros_like(m)
    out = torch.zeros(*q.shape[:-1], v.shape[-1], dtype=work, device=q.device)
    last_key = torch.arange(s_q, device=q.device)[:, None] + (s_k - s_q)  # the last key each query may see
    for begin in range(0, s_k, block_size):
        kb, vb = k[..., begin : begin + block_size, :].to(work), v[..., begin : begin + block_size, :].to(work)
        scores = qs @ kb.transpose(-2, -1)  # (..., S_q, block)
        if causal:
            keys_here = torch.arange(begin, begin + kb.shape[-2], device=q.device)[None, :]
            scores = scores.masked_fill(keys_here > last_key, -math.inf)
        m_new = torch.maximum(m, scores.amax(dim=-1))
        shift = torch.where(torch.isinf(m_new), torch.zeros_like(m_new), m_new)  # rows with nothing seen yet
        p = torch.exp(scores - shift[..., None])
        rescale = torch.exp(m - shift)
        total = total * rescale + p.sum(dim=-1)
        out = out * rescale[..., None] + p @ vb
        m = m_new
    return (out / total[..., None]).to(q.dtype)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_online_softmax_attention", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false}
# Visible tests: equal to PyTorch's attention (blocks that do and do not divide S, causal), float16, no S×S tensor,
# and the forbidden built-ins.
q, k, v = torch.randn(2, 3, 10, 8), torch.randn(2, 3, 10, 8), torch.randn(2, 3, 10, 5)
for block in (1, 3, 5, 10):
    out = online_softmax_attention(q, k, v, block)
    assert_tensor(out, shape=(2, 3, 10, 5), dtype=torch.float32, name=f"online_softmax_attention, block {block}")
    assert_close(out, F.scaled_dot_product_attention(q, k, v), atol=1e-5,
                 name=f"output with block_size {block} vs F.scaled_dot_product_attention")
    assert_close(online_softmax_attention(q, k, v, block, causal=True),
                 F.scaled_dot_product_attention(q, k, v, is_causal=True), atol=1e-5,
                 name=f"causal output with block_size {block} (did a block's mask use the keys' absolute positions?)")
big = torch.randn(1, 6, 16) * 30  # scores in the hundreds: exp() overflows without the running maximum
assert_close(online_softmax_attention(big, big, v[0, :1, :6], 4), F.scaled_dot_product_attention(big, big, v[0, :1, :6]),
             atol=1e-4, name="output with scores in the hundreds (subtract the running max, rescale when it grows)")
half = online_softmax_attention(q.half(), k.half(), v.half(), 4)
assert_tensor(half, shape=(2, 3, 10, 5), dtype=torch.float16, name="float16 output")
assert_close(half.float(), F.scaled_dot_product_attention(q, k, v), atol=5e-3, name="float16 output")
q_long, k_long, v_long = torch.randn(1, 2, 64, 8), torch.randn(1, 2, 96, 8), torch.randn(1, 2, 96, 8)
with watch_tensors() as watch:
    online_softmax_attention(q_long, k_long, v_long, 16)
assert watch.largest_numel < 64 * 96, (
    f"a tensor of shape {watch.largest} was created: as many entries as the S_q × S_k = 64 × 96 score matrix "
    "(process the keys block by block and keep only running statistics)")
with forbid("scaled_dot_product_attention", "softmax", exercise="online_softmax_attention"):
    online_softmax_attention(q, k, v, 4)
expect_value_error(online_softmax_attention, q, k, v, 0, mention=["0"], name="online_softmax_attention with block 0")

# %% [markdown]
# ### Experiment — memory as the sequence grows
#
# The most memory alive at once while computing one attention ($B = 1$, 4 heads, $d = 32$), counted by watching
# every tensor the computation creates: notebook 05's way (scores, weights, output) against yours with blocks of 64
# keys. On a GPU, the same cell also times PyTorch's fused kernels.

# %%
def attention_05_style(q, k, v):
    weights = torch.softmax(q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5, dim=-1)
    return weights @ v


sizes = by_mode(full=[256, 512, 1024, 2048, 4096], fast=[64, 128])
peak = {"notebook 05: all S × S scores": [], "online softmax, blocks of 64": []}
for S in sizes:
    q, k, v = (torch.randn(1, 4, S, 32, device=device) for _ in range(3))
    for label, fn in [("notebook 05: all S × S scores", attention_05_style),
                      ("online softmax, blocks of 64", lambda a, b, c: online_softmax_attention(a, b, c, 64))]:
        with watch_tensors() as watch:
            fn(q, k, v)
        peak[label].append(watch.peak_bytes / 2**20)
fig, ax = plt.subplots(figsize=(6.5, 3.8))
for label, values in peak.items():
    ax.plot(sizes, values, "o-", label=label)
ax.set(xscale="log", yscale="log", xlabel="sequence length S", ylabel="MiB alive at the peak",
       xticks=sizes, xticklabels=[f"{n:,}" for n in sizes],
       title="Memory of one attention (B=1, 4 heads, d=32)")
ax.minorticks_off()
ax.legend()
ax.grid(alpha=0.3)
fig.tight_layout()
show(fig)
print(f"at S = {sizes[-1]}: {peak['notebook 05: all S × S scores'][-1]:.1f} MiB against "
      f"{peak['online softmax, blocks of 64'][-1]:.2f} MiB")
report_metric(f"attention peak memory, S×S / online at S={sizes[-1]}",
              peak["notebook 05: all S × S scores"][-1] / peak["online softmax, blocks of 64"][-1],
              notebook="10_attention_at_scale", fmt=".0f")
if device.type == "cuda":
    q, k, v = (torch.randn(8, 8, 4096, 64, device=device, dtype=torch.float16) for _ in range(3))
    for label, fn in [("F.scaled_dot_product_attention (fused)", lambda: F.scaled_dot_product_attention(q, k, v)),
                      ("notebook 05 style", lambda: attention_05_style(q, k, v)),
                      ("your online softmax, blocks of 512", lambda: online_softmax_attention(q, k, v, 512))]:
        fn()  # once untimed: the first call of a kernel pays for its set-up
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        inputs = torch.cuda.memory_allocated()
        began = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        print(f"{label:<40} {1e3 * (time.perf_counter() - began):8.1f} ms, "
              f"{(torch.cuda.max_memory_allocated() - inputs) / 2**20:8.0f} MiB at the peak beyond the inputs")

# %% [markdown]
# **What to notice.** Notebook 05's way grows with $S^2$ — at a few thousand tokens the scores of one layer are
# hundreds of megabytes — while the online softmax grows with $S$: queries, keys, values, the output and one block of
# scores. On a CPU the Python loop over blocks makes it slower than one big matrix product; on a GPU the fused kernel
# is both smaller and faster, because moving the $S \times S$ matrix through memory costs more than the arithmetic.
# That is how models read contexts of a hundred thousand tokens.
#
# ## Summary
#
# - A decoder-only Transformer is the causal half of notebook 07; trained on a grammar of known entropy it gets
#   within a few percent of the best possible loss.
# - **RoPE** rotates queries and keys by their positions, so scores depend on the offset exactly.
# - **Decoding** is a choice: greedy repeats itself; temperature and top-k sampling trade variety for safety.
# - A **KV cache** keeps each layer's keys and values: the same tokens, with a per-token cost that no longer grows
#   with the whole prefix recomputed.
# - **FlashAttention's online softmax** computes exact attention block by block with a running maximum and sum: memory
#   linear in $S$, never the $S \times S$ matrix.
