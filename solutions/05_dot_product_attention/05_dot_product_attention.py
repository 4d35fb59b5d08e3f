# %% [markdown]
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/attention-step-by-step/attention-step-by-step/blob/main/course/05_dot_product_attention/05_dot_product_attention.ipynb)

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
# # 05 · Dot-product attention: a soft dictionary lookup
#
# In notebook 03 the decoder looked back at the encoder with *additive* attention: a small network scored every
# source position against the decoder state, a softmax turned the scores into weights, and the context vector was
# the weighted sum of the encoder states. The Transformer keeps that recipe and changes one part — the score is a
# **dot product divided by $\sqrt{d_k}$**. The result, *scaled dot-product attention*, has no parameters of its own,
# is two matrix products and a softmax, and is the operation every later notebook is built on.
#
# This notebook takes it apart in three steps:
#
# 1. the general form of attention — score, softmax, weighted sum — read as a *soft dictionary lookup*, on the
#    four toy vectors in the style of Tateiwa's deck;
# 2. why the dot product is divided by $\sqrt{d_k}$, and why by a square root: three experiments;
# 3. masks, which hide padding and hide the future.
#
# You will write `scaled_dot_product_attention`, `padding_mask` and `causal_mask`. Notebook 06 wraps them in the
# learned projections of multi-head attention.

# %%
import math

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

from attention_steps import by_mode, describe_device, get_device, report_metric, seed_everything
from attention_steps.plotting import attention_heatmap, show
from attention_steps.testing import assert_close, assert_tensor, expect_value_error, forbid

seed_everything(0)
print("running on", describe_device(get_device()), "(this notebook's experiments are small; they run on the CPU)")

# %% [markdown]
# ## Attention in general: score, softmax, weighted sum
#
# Tateiwa's deck (notebook 00 lists the sources) states attention in its most general form. We have a **query** $q$ — what we are looking
# for — and a **memory**, a set of vectors $z_1, \dots, z_N$ to look in. Attention does three things:
#
# $$r_i = \operatorname{score}(q, z_i), \qquad (a_1, \dots, a_N) = \operatorname{softmax}(r_1, \dots, r_N), \qquad
# F = \sum_i a_i z_i .$$
#
# The weights $a_i$ are positive, sum to one, and keep the order of the scores (a larger score never gets a smaller
# weight), so $F$ is an average of the memory that leans toward the items that scored high. The deck's example is a
# four-token sentence whose tokens have the three-dimensional embeddings below. Take the plain dot product as the
# score and the query $q = (0, 1, 1)$:

# %%
Z = torch.tensor([[0.0, 1.0, 3.0],     # token 0
                  [3.0, 4.0, -1.0],    # token 1
                  [1.0, 0.0, -4.0],    # token 2
                  [-3.0, 2.0, 1.0]])   # token 3
q = torch.tensor([0.0, 1.0, 1.0])

scores = Z @ q                       # r_i = <z_i, q>, one number per token
weights = torch.softmax(scores, dim=0)
F_out = weights @ Z                  # sum_i a_i z_i
print("scores :", scores.tolist())
print("weights:", [round(w, 4) for w in weights.tolist()])
print("output :", [round(v, 4) for v in F_out.tolist()])

# %% [markdown]
# Token 0 points most nearly the way $q$ does and gets more than half of the weight; tokens 1 and 3 tie for second;
# token 2 points away from $q$ and gets almost nothing. The output is a blend, not a copy, of the memory.
#
# ### Keys and values: a dictionary where every key matches a little
#
# A Python `dict` is a lookup: `table[query]` returns the value stored under the one key that *equals* the query,
# and nothing from the others. Attention is the same lookup with the equality made soft: every key matches the query
# to a degree (the score), and the result is the *weighted mix* of all the values. So the memory splits into two roles:
#
# - a **key** $k_i$, what item $i$ is compared with;
# - a **value** $v_i$, what item $i$ hands over when it is attended to.
#
# $$\operatorname{attention}(q) = \sum_i \operatorname{softmax}_i\big(\operatorname{score}(q, k_i)\big)\, v_i .$$
#
# In the deck's example the token vectors served as both keys and values ($k_i = v_i = z_i$). The Transformer gives
# each role its own vector, $k_i = z_i W_K$ and $v_i = z_i W_V$, with learned matrices — that is notebook 06. Two
# questions learners ask about this picture:
#
# - *Several keys are similar to the query — what comes out?* A mix of their values, in proportion to the weights.
#   Attention never has to pick one; with equal keys the values are averaged.
# - *What if the query is identical to a key?* Nothing breaks. The dot product $q \cdot k$ is largest for the key that
#   is long *and* aligned with $q$, which is often, but not always, the query's own token.
#
# The lookup becomes a hard `dict` lookup as the scores get sharper. Multiply the query by a growing factor $c$: the
# scores grow, and softmax moves toward an arg-max that returns the single best value.

# %%
factors = torch.logspace(-1, 1.3, 40)
curves = torch.stack([torch.softmax(Z @ (c * q), dim=0) for c in factors])
fig, ax = plt.subplots(figsize=(6.5, 3.2))
for i in range(4):
    ax.plot(factors, curves[:, i], ls="--" if i == 3 else "-", lw=1.5 if i == 3 else 2.5,
            label="token 3 (ties with token 1)" if i == 3 else f"token {i}")
ax.set(xscale="log", xlabel="query multiplied by c", ylabel="weight", title="Soft lookup → hard lookup as scores grow")
ax.legend()
fig.tight_layout()
show(fig)

# %% [markdown]
# **What to notice.** At $c = 0.1$ the weights are close to uniform (the query hardly discriminates);
# at $c = 10$ token 0 takes everything and the lookup is a `dict` lookup. How sharp attention is depends on the *size*
# of the scores — remember this for the $\sqrt{d_k}$ section.
#
# ### Where queries, keys and values come from
#
# The operation does not care where its inputs come from, but the names of the two common arrangements do:
#
# - **Self-attention**: queries, keys and values all come from the *same* sequence. Each token of a sentence
#   compares itself with every token of that sentence (itself included) and collects a mix of them. The
#   Transformer's encoder does this. Learners ask how a query and a key built from the same $X$ can measure anything
#   useful: the comparison is between *different positions* of $X$, and once $W_Q \neq W_K$ are learned (notebook 06)
#   "similar" means whatever helps the task, not "equal".
# - **Source–target attention** (cross-attention): queries come from one sequence (the target being produced, in the
#   decoder) and keys and values from another (the encoded source). This is what notebook 03's decoder did.
#
# ### Many queries at once: the matrix form
#
# Stack the $T_q$ queries as the rows of $Q$ $(T_q \times d_k)$, the $T_k$ keys as the rows of $K$ $(T_k \times d_k)$
# and the values as the rows of $V$ $(T_k \times d_v)$ — row vectors, as in the sources. Then all scores are one matrix
# product, $QK^\top$ $(T_q \times T_k)$: row $i$ holds query $i$'s score against every key. Softmax runs along each
# row (over the keys), and one more product mixes the values:
#
# $$\operatorname{Attention}(Q, K, V) = \operatorname{softmax}\!\left(\frac{QK^\top}{\sqrt{d_k}}\right) V
# \qquad (T_q \times d_v).$$
#
# Queries and keys must have the same width $d_k$ (they meet in a dot product); values may have any width $d_v$;
# there are as many values as keys. Nothing here is learned: scaled dot-product attention has **no parameters**. The
# learned projections that produce $Q$, $K$, $V$ from token vectors live in multi-head attention (notebook 06).
#
# ### Additive or multiplicative: names of the score
#
# The *Attention機構* deck sorts attention mechanisms into "additive" (足し算) and "multiplicative" (掛け算) as if the words
# described how the attention result is combined. They name the **score function**; every kind ends in the same
# weighted sum of values.
#
# | name | $\operatorname{score}(q, k)$ | parameters | where |
# |---|---|---|---|
# | additive (Bahdanau) | $w^\top \tanh(q W_1 + k W_2)$ | $W_1, W_2, w$ | notebook 03 |
# | dot (Luong) | $q \cdot k$ | none | |
# | general / bilinear (Luong) | $q W k^\top$ | $W$ | |
# | **scaled dot product** (Transformer) | $q \cdot k / \sqrt{d_k}$ | none | this notebook |
#
# The multiplicative ones win on speed: all scores are a single matrix multiplication, while additive scores need a
# $(T_q, T_k, d)$ tensor of sums to go through the tanh. For small $d_k$ the two score well alike; for large $d_k$ the
# *unscaled* dot product falls behind — which is what the scale repairs.

# %%
T, d = 64, 32
queries, keys = torch.randn(T, d), torch.randn(T, d)
W1, W2, w = torch.randn(d, d), torch.randn(d, d), torch.randn(d)
additive = torch.tanh((queries @ W1)[:, None, :] + (keys @ W2)[None, :, :]) @ w   # goes through (T, T, d)
multiplicative = queries @ keys.T / math.sqrt(d)                                  # one matrix product
print("additive scores", tuple(additive.shape), "built from an intermediate of", T * T * d, "numbers")
print("dot-product scores", tuple(multiplicative.shape), "built from", 2 * T * d, "numbers")

# %% [markdown]
# ## Exercise 1 — `scaled_dot_product_attention(q, k, v, mask=None)`
#
# Write the formula above for tensors with any number of leading (batch) dimensions:
# `q` is `(..., T_q, d_k)`, `k` is `(..., T_k, d_k)`, `v` is `(..., T_k, d_v)`. Return the output **and** the
# weights; the weights are what the heatmaps in this course draw.
#
# **The mask — one rule for the whole course.** An optional boolean `mask` says which query may look at which key:
# **`True` means attention is allowed**, `False` means that key is hidden from that query. A mask has at least two
# dimensions, and **its last two are `(T_q or 1, T_k)`**: a row per query, or one row shared by every query. The
# dimensions before them broadcast against the scores' leading (batch, head) dimensions. So:
#
# | mask | shape | meaning |
# |---|---|---|
# | `causal_mask(T)` | `(T, T)` | one pattern for the whole batch |
# | `padding_mask(lengths, T_k)[:, None, :]` | `(B, 1, T_k)` | per sequence: the same keys hidden from every query |
# | with heads (notebook 06) | `(B, 1, 1, T_k)` or `(T_q, T_k)` | one more axis, for the heads |
#
# A one-dimensional mask is refused: is a `(T,)` vector a key mask or a query mask? The rule leaves nothing to
# guess. Notebooks 06, 07 and 09 keep exactly this rule. A hidden key must get weight exactly 0: set its score to the
# most negative number the dtype can hold, `torch.finfo(scores.dtype).min`, before the softmax. Two traps:
#
# - **Never a literal like `-1e9`.** float16 (what a Colab T4 computes in) stops at ±65504. What happens to `-1e9`
#   depends on how it gets in: `masked_fill(mask, -1e9)` on a float16 tensor *raises* ("value cannot be converted
#   to type Half without overflow"), while adding it (`scores + -1e9`, or a float32 mask cast to half) silently gives
#   `-inf` — the cell after the tests shows both. `torch.finfo(dtype).min` is always representable.
# - **A query with no allowed key** (a row of the mask that is all `False`) must give zero weights and a zero
#   output. With `finfo.min` in every position, softmax sees equal scores and returns a *uniform* row; with `-inf` it
#   computes $0/0$ = NaN. Zero such rows explicitly (e.g. with `torch.where`). Whether the *gradient* is then finite
#   depends on how the `-inf` got in: after `masked_fill(~mask, -inf)` it is (masked_fill sends no gradient to the
#   positions it filled, which is where the NaN would flow), after *adding* a float mask of `-inf` it is NaN, however
#   the weights are repaired — the cell after the tests measures four ways.
#
# Use `torch.softmax` freely (you wrote your own in notebook 00). PyTorch's own
# `torch.nn.functional.scaled_dot_product_attention` is off limits here, in any form: the tests make it raise.

# %% nbgrader={"grade": false, "grade_id": "scaled_dot_product_attention", "locked": false, "schema_version": 3, "solution": true, "task": false}
def scaled_dot_product_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                                 mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Scaled dot-product attention: ``softmax(q @ k^T / sqrt(d_k)) @ v``, with an optional boolean mask.

    Args:
        q: queries, floating point, shape ``(..., T_q, d_k)`` (at least 2-D; any number of leading batch dims).
        k: keys, shape ``(..., T_k, d_k)``, same dtype and leading dims as ``q`` (they must broadcast).
        v: values, shape ``(..., T_k, d_v)``; ``d_v`` may differ from ``d_k``.
        mask: optional **bool** tensor, ``True`` where attention is allowed, at least 2-D, its last two dims
            ``(T_q or 1, T_k)``, its leading dims broadcastable against the scores' — e.g. ``(T_q, T_k)``,
            ``(B, 1, T_k)``, ``(B, T_q, T_k)``.

    Returns:
        ``(out, weights)``:

        - ``weights``: the broadcast shape of the scores and the mask, ``(..., T_q, T_k)``, dtype of ``q``. Each row
          is a softmax over the keys of ``q·k / sqrt(d_k)`` (scaled by the square root of ``q.shape[-1]``):
          non-negative, summing to 1, exactly 0 where the mask is False. A query row whose keys are *all* masked has
          all-zero weights (never NaN).
        - ``out = weights @ v``: shape ``(..., T_q, d_v)``, dtype of ``q``; zero for a fully masked query row.

        Works in float16, float32 and float64 (masked scores are filled with ``torch.finfo(dtype).min`` or a safely
        handled ``-inf``, never a literal such as ``-1e9``). Gradients flow to ``q``, ``k`` and ``v`` and are finite
        even for fully masked rows. The inputs are not modified.

    Raises:
        ValueError: naming the shapes, if ``q``, ``k`` or ``v`` has fewer than 2 dims, if
            ``q.shape[-1] != k.shape[-1]``, if ``k.shape[-2] != v.shape[-2]``, if ``mask`` is not a bool tensor, or if
            ``mask`` breaks the rule above (fewer than 2 dims, last two not ``(T_q or 1, T_k)``, leading dims that
            don't broadcast).

    Do not call ``torch.nn.functional.scaled_dot_product_attention`` (or any fused attention kernel).
    """
    ### BEGIN SOLUTION
    if q.dim() < 2 or k.dim() < 2 or v.dim() < 2:
        raise ValueError(f"q, k and v must be at least 2-D (..., T, d); got q {tuple(q.shape)}, "
                         f"k {tuple(k.shape)}, v {tuple(v.shape)}")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"queries and keys must have the same width d_k: q {tuple(q.shape)}, k {tuple(k.shape)}")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"there must be one value per key: k {tuple(k.shape)}, v {tuple(v.shape)}")
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        if mask.dtype != torch.bool:
            raise ValueError(f"mask must be a bool tensor (True = attend), got dtype {mask.dtype}")
        t_q, t_k = scores.shape[-2:]
        try:
            if mask.dim() < 2 or mask.shape[-1] != t_k or mask.shape[-2] not in (1, t_q):
                raise RuntimeError
            shape = torch.broadcast_shapes(scores.shape, mask.shape)
        except RuntimeError:
            raise ValueError(f"mask of shape {tuple(mask.shape)} does not fit the scores {tuple(scores.shape)}: "
                             f"its last two dims must be (T_q or 1, T_k) = ({t_q} or 1, {t_k})") from None
        scores = scores.expand(shape).masked_fill(~mask, torch.finfo(scores.dtype).min)
    weights = torch.softmax(scores, dim=-1)
    if mask is not None:
        weights = torch.where(mask.any(dim=-1, keepdim=True), weights, torch.zeros((), dtype=weights.dtype))
        weights = weights.masked_fill(~mask, 0.0)
    return weights @ v, weights
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_scaled_dot_product_attention", "locked": true, "points": 6, "schema_version": 3, "solution": false, "task": false}
# Visible tests: shapes with batch dims and d_v != d_k, rows summing to one, the deck's toy lookup, softmax
# invariances, a causal mask, a fully masked row, float16, and the forbidden built-in.
q, k, v = torch.randn(2, 5, 8), torch.randn(2, 7, 8), torch.randn(2, 7, 3)
out, w = scaled_dot_product_attention(q, k, v)
assert_tensor(w, shape=(2, 5, 7), dtype=torch.float32, name="weights (B, T_q, T_k)")
assert_tensor(out, shape=(2, 5, 3), dtype=torch.float32, name="output (B, T_q, d_v)")
assert_close(w.sum(-1), torch.ones(2, 5), name="weights.sum(-1) (softmax over the keys, the last axis)")
assert_close(out, w @ v, name="output (it should be weights @ v)")

Z_keys = torch.tensor([[0.0, 1.0, 3.0], [3.0, 4.0, -1.0], [1.0, 0.0, -4.0], [-3.0, 2.0, 1.0]])
out_toy, w_toy = scaled_dot_product_attention(torch.tensor([[0.0, 1.0, 1.0]]), Z_keys, Z_keys)
assert_tensor(w_toy, shape=(1, 4), dtype=torch.float32, name="weights for one query and four keys")
assert_tensor(out_toy, shape=(1, 3), dtype=torch.float32, name="output for one query")
assert_close(w_toy, torch.tensor([[0.468904, 0.263235, 0.004626, 0.263235]]), atol=1e-5,
             name="weights of the toy lookup (did you divide the scores by sqrt(d_k) = sqrt(3)?)")
assert_close(out_toy, torch.tensor([[0.004626, 2.048315, 1.388210]]), atol=1e-5, name="output of the toy lookup")
_, w_shift = scaled_dot_product_attention(q, k + torch.randn(8), v)
assert_close(w_shift, w, atol=1e-5, name="weights after adding one vector to every key (every score of a query "
             "shifts by the same amount, and softmax ignores a shift)")
_, w_double = scaled_dot_product_attention(2 * q, k, v)
assert (w_double.amax(-1) >= w.amax(-1) - 1e-6).all() and not torch.allclose(w_double, w), \
    "doubling the queries doubles the scores, which must make every weight row sharper (softmax is not scale-invariant)"

causal = torch.tensor([[True, False, False], [True, True, False], [True, True, True]])
q3, k3, v3 = torch.randn(3, 4), torch.randn(3, 4), torch.randn(3, 2)
out, w = scaled_dot_product_attention(q3, k3, v3, mask=causal)
assert_close(w[0], torch.tensor([1.0, 0.0, 0.0]), name="weights of query 0 under a causal mask (only key 0 allowed)")
assert_close(out[0], v3[0], name="output of query 0 under a causal mask (it must be value 0)")
assert_close(w.masked_fill(causal, 0.0), torch.zeros(3, 3), atol=0, rtol=0,
             name="weights where the mask is False (True = allowed; hidden keys get exactly 0)")

row_hidden = torch.tensor([[True, True, False], [False, False, False]])
out, w = scaled_dot_product_attention(torch.randn(2, 4), k3, v3, mask=row_hidden)
assert torch.isfinite(w).all() and torch.isfinite(out).all(), "a fully masked query row gave NaN or inf"
assert_close(w[1], torch.zeros(3), atol=0, rtol=0, name="weights of a query whose keys are all masked (must be 0)")
assert_close(out[1], torch.zeros(2), atol=0, rtol=0, name="output of a query whose keys are all masked (must be 0)")

try:
    out16, w16 = scaled_dot_product_attention(q3.half(), k3.half(), v3.half(), mask=causal)
except RuntimeError as error:
    raise AssertionError(f"float16 inputs with a mask raised {error!r}: a literal such as -1e9 does not fit in float16 "
                         "(its largest magnitude is 65504); fill masked scores with torch.finfo(scores.dtype).min") \
        from None
assert_tensor(out16, shape=(3, 2), dtype=torch.float16, name="float16 output")
assert torch.isfinite(out16).all(), "float16 output has NaN/inf (fill masked scores with torch.finfo(dtype).min)"

# every error the docstring promises, one call each
a, b = torch.randn(2, 5, 8), torch.randn(2, 7, 8)
expect_value_error(scaled_dot_product_attention, torch.randn(8), b, b, mention=["(8,)"],
                   name="scaled_dot_product_attention with a 1-D query")
expect_value_error(scaled_dot_product_attention, a, torch.randn(2, 7, 6), torch.randn(2, 7, 3),
                   mention=["8", "6"], name="scaled_dot_product_attention with d_k 8 for q and 6 for k")
expect_value_error(scaled_dot_product_attention, a, b, torch.randn(2, 6, 3), mention=["7", "6"],
                   name="scaled_dot_product_attention with 7 keys but 6 values")
expect_value_error(scaled_dot_product_attention, a, b, b, torch.ones(5, 7), mention=["float"],
                   name="scaled_dot_product_attention with a float mask (masks are bool: True = allowed)")
expect_value_error(scaled_dot_product_attention, a, b, b, torch.ones(7, dtype=torch.bool), mention=["(7,)"],
                   name="scaled_dot_product_attention with a 1-D (T_k,) mask (the rule: last two dims (T_q or 1, "
                        "T_k); a key mask is (B, 1, T_k) or (1, T_k))")
expect_value_error(scaled_dot_product_attention, a, b, b, torch.ones(7, 5, dtype=torch.bool), mention=["(7, 5)"],
                   name="scaled_dot_product_attention with a (T_k, T_q) mask (the rule: last two dims (T_q or 1, T_k))")
with forbid("scaled_dot_product_attention", exercise="scaled_dot_product_attention"):
    scaled_dot_product_attention(q, k, v)


# %% [markdown]
# ### Experiment — `-inf`, `-1e9` and `finfo.min`, measured
#
# Four ways to hide keys with `-inf`, each repairing a fully masked row afterwards, and the gradient that reaches the
# scores; then what `-1e9` becomes in float16.

# %%
allowed = torch.tensor([[True, True, False], [False, False, False]])  # the second query may see nothing
any_key = allowed.any(-1, keepdim=True)
additive_mask = torch.zeros(2, 3).masked_fill(~allowed, float("-inf"))  # the float-mask style of nn.Transformer
ways = {
    "masked_fill(-inf), then where": lambda s: torch.where(any_key, torch.softmax(s.masked_fill(~allowed, -math.inf), -1), 0.0),
    "masked_fill(-inf), then nan_to_num": lambda s: torch.softmax(s.masked_fill(~allowed, -math.inf), -1).nan_to_num(0.0),
    "+ float -inf mask, then where": lambda s: torch.where(any_key, torch.softmax(s + additive_mask, -1), 0.0),
    "+ float -inf mask, then nan_to_num": lambda s: torch.softmax(s + additive_mask, -1).nan_to_num(0.0),
    "masked_fill(finfo.min), then where": lambda s: torch.where(any_key, torch.softmax(
        s.masked_fill(~allowed, torch.finfo(s.dtype).min), -1), 0.0),
}
for label, way in ways.items():
    scores = torch.randn(2, 3, requires_grad=True)
    weights = way(scores)
    (weights * torch.randn(2, 3)).sum().backward()
    print(f"{label:<36} weights finite: {bool(torch.isfinite(weights).all())!s:<5}  "
          f"gradient finite: {bool(torch.isfinite(scores.grad).all())}")

half_scores = torch.zeros(3, dtype=torch.float16)
try:
    half_scores.masked_fill(torch.tensor([False, True, True]), -1e9)
except RuntimeError as error:
    print("float16 masked_fill(-1e9) raises:", str(error).splitlines()[0])
print("float16 scores + -1e9 gives", (half_scores + -1e9).tolist(), "— silently -inf")
print("float16 finfo.min is", torch.finfo(torch.float16).min)

# %% [markdown]
# **What to notice.** Repairing the weights is not enough: with the added float mask the NaN is still in the
# backward pass, because addition hands the softmax's NaN gradient straight back to the scores. `masked_fill` does
# not — the filled positions get no gradient — so it is safe with `-inf`, as is `finfo.min`, which never makes a NaN
# at all. Notebook 03's warning about `-1e9` in float16 is the same story: written in by `masked_fill` it is an
# error, arriving by arithmetic (autocast on a GPU casts a float32 mask to half) it is `-inf`.

# %% [markdown]
# ## Why divide by $\sqrt{d_k}$?
#
# The division looks cosmetic: $\sqrt{d_k}$ is a constant. But we just saw that softmax is **not** indifferent to
# constants. It ignores one that is *added* to all scores, $\operatorname{softmax}(r + c) = \operatorname{softmax}(r)$,
# and it sharpens or flattens when the scores are *multiplied*, $\operatorname{softmax}(c\,r) \ne
# \operatorname{softmax}(r)$. (A learner in the AIcia video's comments first believed the opposite — that softmax "does not
# change when its input is multiplied by a constant" — and was then puzzled why the paper bothers with the
# constant. Your test cell above checked both facts on your own function.)
#
# So the question is what size the scores have, and how it depends on the width $d_k$.
#
# **The variance of a dot product.** Suppose, as at initialisation, that the components of $q$ and $k$ are
# independent with mean 0 and variance 1. Then $q \cdot k = \sum_{i=1}^{d_k} q_i k_i$ is a sum of $d_k$ independent
# terms, each with mean 0 and variance $\operatorname{E}[q_i^2]\operatorname{E}[k_i^2] = 1$. So
#
# $$\operatorname{E}[q \cdot k] = 0, \qquad \operatorname{Var}[q \cdot k] = d_k, \qquad
# \operatorname{std}[q \cdot k] = \sqrt{d_k}.$$
#
# This is what "vectors in high dimension are long" means in the video's comments: $\operatorname{E}\lVert q \rVert^2 = d_k$,
# so $\lVert q \rVert \approx \sqrt{d_k}$, and a product of two such vectors at a random angle is of size
# $\sqrt{d_k}$. Dividing by $\sqrt{d_k}$ — the **standard deviation**, hence the square root — brings the scores back
# to variance 1 whatever the width. Dividing by $d_k$ would overshoot: variance $1/d_k$, scores that shrink toward 0 as
# $d_k$ grows, and attention that goes uniform. (The paper's $d_k$ is 64 per head — $d_\text{model} = 512$ split over
# 8 heads — so unscaled scores there have a standard deviation of 8.)
#
# Is the scaled score still "a pure similarity"? Not in the cosine sense: dividing by $\sqrt{d_k}$ sets a common
# scale, it does not divide by the vectors' lengths. Length still counts, and a trained model can make queries and
# keys longer to sharpen its attention where that helps; the scale only makes sure training does not *start*
# saturated.
#
# The three experiments below measure, as $d_k$ grows: the spread of the scores; how saturated the softmax is (the
# largest weight and the entropy of a row); and how much gradient gets through the softmax.

# %%
dims = by_mode(full=[1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024], fast=[1, 4, 16, 64])
n_pairs = by_mode(full=500, fast=100)
n_keys = 32
gen = torch.Generator().manual_seed(0)
spread = {"unscaled": [], "÷ √d_k": [], "÷ d_k": []}
max_weight = {"unscaled": [], "÷ √d_k": []}
entropy = {"unscaled": [], "÷ √d_k": []}
grad_norm = {"unscaled": [], "÷ √d_k": []}
for d_k in dims:
    qs = torch.randn(n_pairs, 1, d_k, generator=gen)
    ks = torch.randn(n_pairs, n_keys, d_k, generator=gen)
    vs = torch.randn(n_pairs, n_keys, 1, generator=gen)
    dots = (qs @ ks.transpose(-2, -1)).flatten()
    spread["unscaled"].append(dots.std().item())
    spread["÷ √d_k"].append((dots / math.sqrt(d_k)).std().item())
    spread["÷ d_k"].append((dots / d_k).std().item())
    for label, qq in (("unscaled", qs * math.sqrt(d_k)), ("÷ √d_k", qs)):
        # your function divides by sqrt(d_k); multiplying q by sqrt(d_k) first gives the unscaled scores
        _, w = scaled_dot_product_attention(qq, ks, vs)
        max_weight[label].append(w.amax(-1).mean().item())
        entropy[label].append(-(w * w.clamp_min(1e-30).log()).sum(-1).mean().item())
        # gradient reaching the scores from a random upstream gradient g on the output: a ⊙ (g·v − a·(g·v))
        scores = (qq @ ks.transpose(-2, -1) / math.sqrt(d_k)).requires_grad_()
        g = torch.randn(n_pairs, 1, 1, generator=gen)
        (torch.softmax(scores, dim=-1) @ vs * g).sum().backward()
        grad_norm[label].append(scores.grad.norm(dim=-1).median().item())

colour = {"unscaled": "tab:red", "÷ √d_k": "tab:blue", "÷ d_k": "tab:green"}  # one colour per scaling, all panels
fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
for label, values in spread.items():
    axes[0].plot(dims, values, "o-", color=colour[label], label=label)
axes[0].plot(dims, [math.sqrt(d) for d in dims], "k:", label="√d_k")
axes[0].set(xscale="log", yscale="log", xlabel="d_k", ylabel="std of the score",
            title="Spread of q·k (random q, k)")
for label in max_weight:
    axes[1].plot(dims, max_weight[label], "o-", color=colour[label], label=f"largest weight, {label}")
    axes[1].plot(dims, [e / math.log(n_keys) for e in entropy[label]], "s--", color=colour[label],
                 label=f"entropy / log {n_keys}, {label}")
axes[1].set(xscale="log", xlabel="d_k", ylim=(-0.03, 1.03), title=f"Saturation of a row over {n_keys} keys")
for label, values in grad_norm.items():
    axes[2].plot(dims, values, "o-", color=colour[label], label=label)
axes[2].set(xscale="log", yscale="log", xlabel="d_k", ylabel="median ‖∂loss/∂scores‖",
            title="Gradient through the softmax")
for ax in axes:
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
fig.tight_layout()
show(fig)
i512 = dims.index(512) if 512 in dims else -1
i64 = dims.index(64)
print(f"d_k = 64 unscaled: the average row puts {max_weight['unscaled'][i64]:.0%} of its weight on its largest key "
      f"(scaled: {max_weight['÷ √d_k'][i64]:.0%}; uniform over {n_keys} keys would be {1 / n_keys:.0%})")
print(f"d_k = {dims[i512]}: largest weight {max_weight['unscaled'][i512]:.3f} unscaled vs "
      f"{max_weight['÷ √d_k'][i512]:.3f} scaled; gradient {grad_norm['unscaled'][i512]:.2g} vs "
      f"{grad_norm['÷ √d_k'][i512]:.2g}")
report_metric(f"gradient through softmax, scaled / unscaled at d_k={dims[i512]}",
              grad_norm["÷ √d_k"][i512] / grad_norm["unscaled"][i512], notebook="05_dot_product_attention", fmt=".0f")

# %% [markdown]
# **What to notice.**
#
# - *Left*: the unscaled scores follow the dotted $\sqrt{d_k}$ line exactly; dividing by $\sqrt{d_k}$ gives a flat
#   line at 1 for every width; dividing by $d_k$ gives scores that shrink like $1/\sqrt{d_k}$.
# - *Middle*: unscaled (red), the largest weight in a row climbs toward 1 and the entropy toward 0 — by $d_k = 64$
#   the average row puts most of its weight on a single key (the first printed line), a hard lookup decided by the
#   random initial vectors.
#   Scaled, both stay where they are for every width.
# - *Right*: if $u_j$ is how fast the loss changes with the weight $a_j$, the gradient that reaches score $j$ is
#   $a_j\,(u_j - \sum_i a_i u_i)$ — the softmax's Jacobian $\operatorname{diag}(a) - a a^\top$ applied to $u$. For a
#   one-hot $a$ every term vanishes. Unscaled, the median gradient falls by orders of magnitude as $d_k$ grows: the
#   queries and keys (and, in notebook 06, the matrices that make them) would barely learn. That is the paper's reason
#   for the scale.
#
# So what *does* the constant change? Not what the model can represent: in notebook 06 the queries and keys are
# $xW_Q$ and $xW_K$, and $W_Q$ (or $W_K$) can absorb any constant — $W_Q/\sqrt{d_k}$ is just another matrix that
# training could find. The AIcia video's author put it as "the constant changes nothing mathematically, but it
# changes how training behaves"; the precise version is: $1/\sqrt{d_k}$ leaves the set of functions the model can
# express unchanged, and changes the **starting regime** (unit-variance scores, an unsaturated softmax) and hence the
# **gradients** training begins with. Softmax itself is not scale-invariant (notebook 00): the constant matters
# because nothing has yet learned to compensate for it.
#
# ## Masks: what a query may not see
#
# Attention looks at *every* key. Two kinds of key must be hidden.
#
# **Padding.** Sentences in a batch have different lengths, so the shorter ones are padded with `PAD` tokens to a
# common length. Those positions are not words; no query should take anything from them. A **padding mask** is
# `True` on the real tokens of each sequence. It masks *keys*, so it is used in every attention layer that attends
# to a padded sequence: encoder self-attention, decoder self-attention, and cross-attention (whose keys are the
# padded source).
#
# **The future.** A decoder trained with teacher forcing sees the whole target sentence at once (that is what makes
# Transformer training parallel, notebook 07). Position $t$ must predict token $t + 1$ from tokens $\le t$ only; if it
# could attend to position $t + 1$ it would copy the answer. The **causal** (look-ahead) mask allows key $j$ for
# query $i$ only when $j \le i$: the lower triangle, diagonal included. This is the "Masked" in the paper's
# *Masked Multi-Head Attention*: in the paper that word means the look-ahead mask of the decoder's self-attention —
# padding masks are used everywhere and the figure does not draw them.
#
# With the course's convention (`True` = allowed), combining masks is an `&`: a decoder query may see a key if it is a
# real token **and** not in the future.
#
# ### Exercise 2 — `padding_mask(lengths, max_len)`

# %% nbgrader={"grade": false, "grade_id": "padding_mask", "locked": false, "schema_version": 3, "solution": true, "task": false}
def padding_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """Boolean mask of the real (non-padding) positions of a batch of padded sequences.

    Args:
        lengths: 1-D integer tensor (int64 or int32) of shape ``(B,)``: the true length of each sequence, each in
            ``[0, max_len]``. ``B`` may be 0.
        max_len: the padded length ``S`` (a non-negative int).

    Returns:
        A ``torch.bool`` tensor of shape ``(B, max_len)`` on ``lengths``' device: ``mask[b, s]`` is True exactly
        when ``s < lengths[b]`` (a real token; True = attention allowed), False on padding. Use it as a key mask of
        attention with ``padding_mask(lengths, S)[:, None, :]``.

    Raises:
        ValueError: naming the problem, if ``lengths`` is not a 1-D integer tensor, if a length is negative or
            larger than ``max_len``, or if ``max_len`` is negative.
    """
    ### BEGIN SOLUTION
    if not isinstance(lengths, torch.Tensor) or lengths.dim() != 1:
        raise ValueError(f"lengths must be a 1-D tensor (B,), got {getattr(lengths, 'shape', lengths)}")
    if lengths.dtype.is_floating_point or lengths.dtype.is_complex or lengths.dtype == torch.bool:
        raise ValueError(f"lengths must be an integer tensor, got dtype {lengths.dtype}")
    if max_len < 0:
        raise ValueError(f"max_len must be non-negative, got {max_len}")
    if lengths.numel() and (lengths.min() < 0 or lengths.max() > max_len):
        raise ValueError(f"lengths must lie in [0, max_len={max_len}], got {lengths.tolist()}")
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_padding_mask", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Visible tests: a known answer, shape, dtype, and a clear error for a length longer than max_len.
pm = padding_mask(torch.tensor([3, 1, 0, 4]), 4)
assert_tensor(pm, shape=(4, 4), dtype=torch.bool, name="padding_mask(tensor([3, 1, 0, 4]), 4)")
assert_close(pm, torch.tensor([[True, True, True, False], [True, False, False, False],
                               [False, False, False, False], [True, True, True, True]]), atol=0, rtol=0,
             name="padding_mask (True on the real tokens, s < length)")
expect_value_error(padding_mask, torch.tensor([2, 5]), 4, mention=["5"], name="padding_mask with a length 5 > max_len 4")


# %% [markdown]
# ### Exercise 3 — `causal_mask(size, device=None)`

# %% nbgrader={"grade": false, "grade_id": "causal_mask", "locked": false, "schema_version": 3, "solution": true, "task": false}
def causal_mask(size: int, device: torch.device | str | None = None) -> torch.Tensor:
    """The look-ahead mask of a sequence of ``size`` positions.

    Args:
        size: sequence length ``T`` (a non-negative int).
        device: where to create the mask (``None``: the default device, normally the CPU); a ``torch.device`` or a
            string such as ``"cuda"``.

    Returns:
        A ``torch.bool`` tensor of shape ``(size, size)`` on ``device``: ``mask[i, j]`` is True exactly when
        ``j <= i`` (query ``i`` may attend to key ``j`` at its own position or earlier) — the lower triangle,
        diagonal included. This is the course's convention (True = allowed), the opposite of the masks of
        ``nn.MultiheadAttention`` / ``nn.Transformer``.

    Raises:
        ValueError: if ``size`` is negative.
    """
    ### BEGIN SOLUTION
    if size < 0:
        raise ValueError(f"size must be non-negative, got {size}")
    return torch.ones(size, size, dtype=torch.bool, device=device).tril()
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_causal_mask", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Visible tests: a known answer, shape and dtype.
cm = causal_mask(3)
assert_tensor(cm, shape=(3, 3), dtype=torch.bool, name="causal_mask(3)")
assert_close(cm, torch.tensor([[True, False, False], [True, True, False], [True, True, True]]), atol=0, rtol=0,
             name="causal_mask(3) (True on and below the diagonal: j <= i is allowed)")


# %% [markdown]
# ### Experiment — the masks at work
#
# A batch of two Japanese target sentences, padded to seven tokens. The token vectors are random (no training here);
# what matters is *where* the weights can go. Each heatmap is one sentence's self-attention: a row is a query, a
# column a key.

# %%
sentences = [["<BOS>", "私", "は", "りんご", "を", "食べる", "<EOS>"],
             ["<BOS>", "これ", "は", "ペン", "<EOS>", "<PAD>", "<PAD>"]]
lengths = torch.tensor([7, 5])
S = 7
x = torch.randn(2, S, 16, generator=torch.Generator().manual_seed(3))

pad = padding_mask(lengths, S)[:, None, :]       # (B, 1, S): hide padded keys from every query
look_ahead = causal_mask(S)                      # (S, S): hide later keys
masks = {"padding mask (encoder)": pad, "causal mask": look_ahead, "padding & causal (decoder)": pad & look_ahead}
fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
for ax, (title, m) in zip(axes, masks.items()):
    _, w = scaled_dot_product_attention(x, x, x, mask=m)
    attention_heatmap(w[1], sentences[1], sentences[1], ax=ax, title=title, colorbar=False)
fig.tight_layout()
show(fig)

# %% [markdown]
# **What to notice.** With the padding mask the two `<PAD>` columns are empty for every query, but the `<PAD>`
# *rows* still attend to the real tokens: padding masks keys, and the outputs at padded query positions are simply
# ignored later (the loss skips them). The causal mask leaves the upper triangle empty; the first query can only see
# itself, so its weight there is exactly 1. The decoder needs both at once, combined with `&` — note how the shapes
# `(B, 1, S)` and `(S, S)` broadcast to `(B, S, S)`. Without training the diagonal is bright: a random vector's dot
# product with itself, $\lVert x \rVert^2$, beats its dot product with another random vector. Learned projections
# (notebook 06) are what let a token attend elsewhere.
#
# ### The other convention: PyTorch's `nn.MultiheadAttention` and `nn.Transformer`
#
# `torch.nn.functional.scaled_dot_product_attention` uses this course's convention (`True` = may attend). **Every**
# boolean mask of `nn.MultiheadAttention`, `nn.Transformer`, `nn.TransformerEncoderLayer` / `DecoderLayer` —
# `attn_mask`, `key_padding_mask`, `src_mask`, `tgt_mask`, `memory_key_padding_mask`, … — uses the **opposite**: `True`
# means *blocked*. `nn.Transformer.generate_square_subsequent_mask` returns a float mask with `-inf` above the
# diagonal (added to the scores). Passing one convention's mask to the other silently attends to exactly the wrong
# keys — no error, just a model that cannot learn or that cheats. The conversion is a `~`:

# %%
T = 5
torch_style = nn.Transformer.generate_square_subsequent_mask(T)          # float, -inf where blocked
print(torch_style)
print("torch's blocked positions == ~causal_mask:", torch.equal(torch.isinf(torch_style), ~causal_mask(T)))

q, k, v = torch.randn(2, T, 8), torch.randn(2, T, 8), torch.randn(2, T, 8)
m = padding_mask(torch.tensor([5, 3]), T)[:, None, :] & causal_mask(T)
ours, _ = scaled_dot_product_attention(q, k, v, mask=m)
theirs = F.scaled_dot_product_attention(q, k, v, attn_mask=m)                # same convention: agrees
mha = nn.MultiheadAttention(8, num_heads=1, batch_first=True)
with torch.no_grad():                                                        # make its projections the identity
    mha.in_proj_weight.copy_(torch.cat([torch.eye(8)] * 3))
    mha.in_proj_bias.zero_()
    mha.out_proj.weight.copy_(torch.eye(8))
    mha.out_proj.bias.zero_()
    right, _ = mha(q, k, v, attn_mask=~causal_mask(T), key_padding_mask=~padding_mask(torch.tensor([5, 3]), T))
print("max |ours − F.scaled_dot_product_attention|       :", (ours - theirs).abs().max().item())
print("max |ours − nn.MultiheadAttention with ~ masks|  :", (ours - right).abs().max().item())
report_metric("max |ours - F.scaled_dot_product_attention| (masked)", (ours - theirs).abs().max().item(),
              notebook="05_dot_product_attention", fmt=".1e")

# %% [markdown]
# **What to notice.** Your function, PyTorch's fused kernel and `nn.MultiheadAttention` (with identity projections
# and *inverted* masks) give the same numbers, up to float32 rounding. Whenever you hand a course mask to a
# `torch.nn` attention module, write the `~`.
#
# ## Summary
#
# - Attention is a soft dictionary lookup: score every key against the query, softmax the scores over the keys,
#   return the weighted mix of the values. Self-attention takes queries, keys and values from one sequence;
#   source–target attention takes the queries from another. "Additive" and "multiplicative" name the score.
# - Scaled dot-product attention, $\operatorname{softmax}(QK^\top/\sqrt{d_k})V$, has no parameters and is two
#   matrix products.
# - $q \cdot k$ has standard deviation $\sqrt{d_k}$ for unit-variance components; dividing by it (not by $d_k$) keeps
#   the scores at unit scale, the softmax unsaturated and the gradients alive. Softmax ignores added constants and
#   reacts to multiplied ones — that is why the constant matters.
# - Masks: `True` = allowed in this course (and in `F.scaled_dot_product_attention`); padding masks hide padded
#   keys everywhere, the causal mask hides the future in the decoder; combine them with `&`; fill masked scores with
#   `torch.finfo(dtype).min` and zero fully masked rows. `torch.nn`'s attention modules use the opposite convention.
#
# Next, notebook 06 puts learned projections $W_Q, W_K, W_V$ in front of this function, runs several of them side by
# side as **heads**, and mixes them with $W_O$: multi-head attention.
