# %% [markdown]
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/attention-step-by-step/attention-step-by-step/blob/main/course/00_orientation/00_orientation.ipynb)

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
# # 00 · Orientation: tensors, softmax, and embeddings
#
# Welcome to **Attention, step by step**. Over eleven notebooks you will build, by hand and in PyTorch, every piece
# of the attention story: a recurrent network, an encoder–decoder, Bahdanau attention, channel gating (SENet), scaled
# dot-product and multi-head attention, a full Transformer, a Vision Transformer, and a GPT-style language model with
# the tools that let attention scale. Each model is trained to a real
# result in about a minute on a laptop CPU.
#
# | # | notebook | you build |
# |---|---|---|
# | 00 | orientation | `softmax`, `one_hot_embed` |
# | 01 | RNN | `rnn_step`, `rnn_forward`, `bidirectional_concat` |
# | 02 | seq2seq | encoder, decoder, Peeky decoder, greedy decoding |
# | 03 | Bahdanau attention | masked softmax, additive attention, attention decoder |
# | 04 | SENet | global average pooling, SE block, SE-ResNet block |
# | 05 | dot-product attention | scaled dot-product attention, padding and causal masks |
# | 06 | multi-head attention | split / merge heads, `MultiHeadAttention` |
# | 07 | Transformer | positional encoding, FFN, encoder and decoder layers, the whole model |
# | 08 | Vision Transformer | patches, patch embedding, `VisionTransformer` |
# | 09 | attention as message passing | graph convolution, attention as an adjacency, SAGAN self-attention |
# | 10 | attention at scale | RoPE, sampling, a KV cache, FlashAttention's online softmax |
#
# This first notebook shows how the course works and builds the two small functions that everything after it
# stands on: **softmax**, which turns scores into weights, and the **embedding lookup**, which turns token ids into
# vectors.

# %% [markdown]
# ## Where this course comes from
#
# The course is written from five Japanese sources — three study decks, a booklet chapter and a video with its
# comments. Their facts, examples and figures run through every notebook; the sentences and the code are ours. When a
# notebook says "Nakamura's deck" or "the AIcia video", it means one of these:
#
# | short name | source | what the course takes from it |
# |---|---|---|
# | **Nakamura's deck** | 中村勇士 (Yuji Nakamura), 『もう一度理解する Transformer（前編）』 ("Understanding the Transformer once more, part 1"), slides for the Kim lab's machine-learning study group, Speaker Deck, 12 July 2022 | the road RNN → Bi-RNN → encoder–decoder → attention, one context vector vs. a context per step, "this is a pen → これ は ペン です" (01–03) |
# | **the LiberalArts booklet** | LiberalArts, "Transformer and Graph Neural Network", chapter 2 of the booklet 『Transformer と画像処理』, excerpt on Speaker Deck, 22 February 2021 | the ½-per-step picture of forgetting in RNNs, message passing and graph convolution, the Transformer as a graph network, BERT and ViT (01, 07–09) |
# | **the AIcia video** | AIcia Solid Project, 「【深層学習】Transformer - Multi-Head Attentionを理解してやろうじゃないの」, *Deep Learning no Sekai* vol. 28, YouTube, 2021, and its viewers' comments | the Transformer's maths in matrices and inner products, $W_Q, W_K$ as "rotations", why $\sqrt{d_k}$, heads; the comments are the learner questions this course answers where they arise (00, 05–07) |
# | **the *Attention機構* deck** | 『Attention機構』 ("Attention mechanisms"), slides on SlideShare (our copy names no author), undated, citing papers up to 2018 | attention in cognitive science, seq2seq and the Peeky decoder, SENet as attention, additive vs. multiplicative, self vs. source–target, SAGAN (02–05, 09) |
# | **Tateiwa's deck** | Nariaki Tateiwa, "Transformer", Speaker Deck, 12 June 2022 | attention as a soft dictionary lookup — scores $r_i = r(z_i, q)$, weights by softmax, output $\sum_i a_i z_i$ — and tokens → ids → embeddings (00, 05) |
#
# In the code, `seed_everything(0)` and "seeds" in a results table mean random seeds, nothing else.

# %% [markdown]
# ## How the course works
#
# **Where to run it.** Locally, the README's set-up command opens JupyterLab on the `course/` folder. On Google
# Colab, use the badge at the top; choose *Runtime → Change runtime type → GPU* if you like (everything also runs on
# the CPU). Either way, run the setup cell above first: on Colab it installs the course's helper package
# `attention_steps` (data sets, plots, a training loop and test helpers — it contains no answers).
#
# **Answer cells.** Each exercise is one cell that defines one function or class, with a docstring giving the exact
# shapes and dtypes. You replace
#
# ```python
# # YOUR CODE HERE
# raise NotImplementedError()
# ```
#
# with your code. Keep the name and the signature: the tests call exactly that.
#
# **Tests.** Below each answer cell is a test cell. Run it: if it finishes silently, your answer passed the
# *visible* tests. If not, the error message says what is wrong — the shapes involved, the worst element, the
# tolerance. When a course is graded for credit, each item also has **hidden tests** that run only at grading time:
# the grader calls your code on fresh random inputs and on edge cases (a batch of one, a sequence of length one, huge
# values), checks that gradients flow and that you did not call the built-in the exercise asks you to write, and
# compares the results with its own reference. If you study on your own you never see hidden-test results; the
# visible tests are written to be enough to learn from.
#
# **Validate.** In JupyterLab, the *Validate* button in the notebook toolbar (from nbgrader) runs the whole notebook
# the way the grader will and lists the cells that fail. Grading runs a *fast path*: cells that train models run a
# tiny version, so your submission is graded in seconds. Your own run is always the full one.
#
# Here is what a failing test looks like. This deliberately wrong "softmax" forgets to normalise:

# %%
import torch

from attention_steps import by_mode, describe_device, get_device, report_metric, seed_everything
from attention_steps.plotting import plot_losses, show  # noqa: F401  (plot_losses is used in later notebooks)
from attention_steps.testing import assert_close, assert_tensor, expect_value_error, forbid

seed_everything(0)
device = get_device()
print("running on", describe_device(device))

# %%
def not_quite_softmax(x, dim=-1):
    return torch.exp(x)  # forgot to divide by the sum


try:
    assert_close(not_quite_softmax(torch.tensor([1.0, 2.0, 3.0])), torch.tensor([0.0900, 0.2447, 0.6652]), atol=1e-4)
except AssertionError as message:
    print("AssertionError:", message)

# %% [markdown]
# The message names the shapes, the worst element, both values and the tolerance. Every test in the course speaks
# this way.
#
# ## Tensors, shapes, and which side the matrix goes on
#
# Everything in the course is **batch first**: a batch of sequences is a tensor of shape `(B, S, D)` — batch,
# sequence position, feature — and a batch of images is `(B, C, H, W)`.
#
# The sources this course draws on write vectors as **rows**, so a layer is $y = xW$ with $W$ of shape
# `(in, out)`. That is what our hand-written weights do: `x @ W`. PyTorch's `nn.Linear` stores the transpose,
# `weight` of shape `(out, in)`, and computes `x @ weight.T + bias`. Both describe the same map; only the storage
# differs. (Learners asked: "$xW$ or $Wx$?" — with row vectors it is $xW$; with column vectors $W^\top x$.)
#
# One rule explains what $xW$ does, and it comes back below for embeddings: **a row vector times a matrix is a
# weighted sum of the matrix's rows**,
#
# $$xW = \sum_i x_i \, W_{i,:},$$
#
# each input feature $x_i$ saying how much of row $i$ to add. Rows also suit batches: stack $B$ inputs as the rows of
# a $(B, \text{in})$ matrix and one product $XW$ transforms them all, row $b$ of the result being $x_b W$. The batch
# dimension stays in front, where batch-first tensors keep it.

# %%
x = torch.randn(4, 3)  # a batch of 4 row vectors with 3 features
W = torch.randn(3, 2)  # (in, out), row-vector convention
linear = torch.nn.Linear(3, 2, bias=False)
with torch.no_grad():
    linear.weight.copy_(W.T)  # torch stores (out, in)
print("x @ W equals nn.Linear:", torch.allclose(x @ W, linear(x)))
rows_weighted = sum(x[0, i] * W[i] for i in range(3))  # x_0 W as a weighted sum of W's rows
print("x[0] @ W equals Σ_i x[0, i]·W[i]:", torch.allclose(x[0] @ W, rows_weighted))
print("row b of x @ W equals x[b] @ W for every b:", all(torch.allclose((x @ W)[b], x[b] @ W) for b in range(4)))

# %% [markdown]
# ## Softmax: from scores to weights
#
# Attention, in every form you will meet, computes a **score** for each item, turns the scores into **weights**
# that are positive and sum to one, and takes a weighted sum. The second step is the softmax:
#
# $$\operatorname{softmax}(x)_i = \frac{e^{x_i}}{\sum_j e^{x_j}}.$$
#
# Two facts matter later.
#
# 1. **Adding a constant changes nothing**: $e^{x_i + c} / \sum_j e^{x_j + c} = e^{x_i}/\sum_j e^{x_j}$ because
#    $e^{c}$ cancels.
# 2. **Multiplying by a constant changes everything.** $\operatorname{softmax}(cx)$ is sharper for $c > 1$ and
#    flatter for $c < 1$. (A common misconception — one learner wrote that softmax "does not change when its input
#    is multiplied by a constant". It does; notebook 05 divides scores by $\sqrt{d_k}$ precisely *because* scaling
#    changes softmax.)
#
# Fact 1 makes softmax computable: $e^{1000}$ overflows to `inf` in float32 (anything above about 88.7 does), and
# `inf / inf` is `nan`. Subtracting the maximum first, $x_i - \max_j x_j \le 0$, keeps every exponential in
# $(0, 1]$ and gives the same answer.

# %%
big = torch.tensor([1000.0, 1001.0, 1002.0])
print("naive:", torch.exp(big) / torch.exp(big).sum())
print("shifted by the max:", torch.exp(big - big.max()) / torch.exp(big - big.max()).sum())

# %% [markdown]
# ### Exercise 1 — `softmax(x, dim=-1)`
#
# Write a numerically stable softmax along any dimension, using elementary operations (`exp`, `max`, `sum`, …).
# `torch.softmax`, `torch.nn.functional.softmax`, `Tensor.softmax`, `nn.Softmax` and `log_softmax` are off limits
# here (the tests check); later notebooks use them freely.

# %% nbgrader={"grade": false, "grade_id": "softmax", "locked": false, "schema_version": 3, "solution": true, "task": false}
def softmax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Numerically stable softmax of ``x`` along ``dim``.

    Args:
        x: floating-point tensor of any shape (float16, float32 or float64). Along ``dim`` every slice has at
            least one finite entry; entries may be very large (e.g. 1e4) or ``-inf`` (weight 0).
        dim: the dimension to normalise over; negative values count from the end, as in PyTorch.

    Returns:
        A tensor of the same shape and dtype as ``x``: entries in [0, 1] that sum to 1 along ``dim``. No NaN or inf
        for large inputs. ``x`` itself is not modified. Gradients flow back to ``x``.

    Do not call torch's softmax / log_softmax in any form.
    """
    ### BEGIN SOLUTION
    shifted = x - x.amax(dim=dim, keepdim=True).detach()
    e = torch.exp(shifted)
    return e / e.sum(dim=dim, keepdim=True)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_softmax", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
# Visible tests: shape, dtype, a known answer, rows summing to one, another dim, large inputs.
x = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
out = softmax(x)
assert_tensor(out, shape=(2, 3), dtype=torch.float32, name="softmax(x)")
assert_close(out, torch.tensor([[0.0900306, 0.2447285, 0.6652410], [1 / 3, 1 / 3, 1 / 3]]), name="softmax(x)")
assert_close(out.sum(-1), torch.ones(2), name="softmax(x).sum(-1)")
assert_close(softmax(x, dim=0).sum(0), torch.ones(3), name="softmax(x, dim=0).sum(0)")
assert torch.isfinite(softmax(torch.tensor([1000.0, 1001.0, 1002.0]))).all(), \
    "softmax of large inputs gave inf or NaN: exp(1000) overflows, so subtract the maximum before exponentiating"
assert_close(softmax(x + 100.0), out, name="softmax(x + 100) (adding a constant changes nothing)")
with forbid("softmax", exercise="softmax"):
    softmax(torch.randn(2, 5))


# %% [markdown]
# ### Experiment — adding versus multiplying
#
# The same three scores, shifted and scaled. Shifting leaves the weights where they were; scaling by $c$ moves
# them toward one-hot ($c \to \infty$, "hard" attention) or toward uniform ($c \to 0$).

# %%
import matplotlib.pyplot as plt

scores = torch.tensor([1.0, 2.0, 3.0])
factors = torch.logspace(-1, 1, 41)
fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), sharey=True)
shifts = torch.linspace(-5, 5, 41)
for i in range(3):
    axes[0].plot(shifts, [softmax(scores + s)[i].item() for s in shifts], label=f"weight of score {scores[i]:.0f}")
    axes[1].plot(factors, [softmax(scores * c)[i].item() for c in factors], label=f"weight of score {scores[i]:.0f}")
axes[0].set(title="softmax(x + c): unchanged", xlabel="c", ylabel="weight")
axes[1].set(title="softmax(c · x): sharper as c grows", xlabel="c", xscale="log")
axes[1].legend()
fig.tight_layout()
show(fig)

# %% [markdown]
# **What to notice.** The left panel is three flat lines. On the right, at $c = 10$ the largest score takes almost
# all the weight, and at $c = 0.1$ the weights are nearly equal. Large scores make softmax behave like an arg-max
# whose gradient is almost zero everywhere: remember this in notebook 05.
#
# ## Embeddings: a one-hot vector times a matrix is a row lookup
#
# A model cannot multiply words. We give each token an id — in this course `PAD = 0`, `BOS = 1` (begin of
# sequence), `EOS = 2` (end of sequence), then the real tokens — and map each id to a learned vector of $D$ numbers,
# its **embedding** (埋め込み). Tateiwa's deck and the *Attention機構* deck draw it as a product: write token $i$ as the one-hot row vector
# $e_i$ (length $V$, the vocabulary size, a 1 in position $i$) and multiply by a weight matrix $W$ of shape
# $(V, D)$:
#
# $$e_i W = W_{i,:} \quad\text{— the } i\text{-th row of } W.$$
#
# It is the weighted-sum rule with all weights 0 except a single 1: $e_i W = \sum_j (e_i)_j W_{j,:}$ keeps row $i$
# alone.
#
# So "one-hot times matrix" and "look up row $i$" are the same computation; the lookup just skips multiplying by
# $V - 1$ zeros. Learners ask two things here:
#
# - *Is the 512-number input of the Transformer a bag of words?* No. Each position holds one token, a one-hot
#   vector over a vocabulary of 30,000–40,000 sub-words, mapped by $W$ to 512 numbers. The sequence keeps its
#   order; a bag of words would not.
# - *Pretrained word vectors or learned ones?* In the original Transformer, and in every model in this course, $W$
#   starts random and is learned by ordinary backpropagation together with everything else. Because only the rows of
#   the tokens in a batch take part in the product, only those rows receive gradient.

# %% [markdown]
# ### Exercise 2 — `one_hot_embed(ids, weight)`
#
# Compute embeddings *as* one-hot vectors times the weight matrix (or by indexing rows — the result is identical,
# and the tests accept both). `torch.nn.functional.embedding` / `nn.Embedding` are off limits here.

# %% nbgrader={"grade": false, "grade_id": "one_hot_embed", "locked": false, "schema_version": 3, "solution": true, "task": false}
def one_hot_embed(ids: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Embed token ids by multiplying their one-hot vectors with ``weight``.

    Args:
        ids: integer tensor (int64 or int32) of any shape, e.g. (B, S); every id in [0, V).
        weight: (V, D) floating-point embedding matrix, one row per token.

    Returns:
        Tensor of shape ``(*ids.shape, D)`` and dtype ``weight.dtype``: row ``ids[...]`` of ``weight`` at every
        position. Gradients flow to ``weight``.

    Raises:
        ValueError: if ``weight`` is not 2-D, if ``ids`` is not an integer tensor, or if an id is negative or
            ``>= V`` (the message names V and the offending id).
    """
    ### BEGIN SOLUTION
    if weight.dim() != 2:
        raise ValueError(f"weight must be 2-D (V, D), got shape {tuple(weight.shape)}")
    if ids.dtype.is_floating_point or ids.dtype.is_complex or ids.dtype == torch.bool:
        raise ValueError(f"ids must be an integer tensor, got dtype {ids.dtype}")
    vocab = weight.shape[0]
    if ids.numel() and (ids.min() < 0 or ids.max() >= vocab):
        bad = ids.min().item() if ids.min() < 0 else ids.max().item()
        raise ValueError(f"id {bad} is outside the vocabulary [0, {vocab}) of weight with V = {vocab}")
    one_hot = (ids.long().unsqueeze(-1) == torch.arange(vocab, device=ids.device)).to(weight.dtype)
    return one_hot @ weight
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_one_hot_embed", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Visible tests: shape, the rows it picks, dtype, gradients, a clear error for an id outside the vocabulary.
W = torch.arange(12.0).reshape(4, 3)  # V = 4 tokens, D = 3
ids = torch.tensor([[0, 3, 3], [1, 2, 0]])
emb = one_hot_embed(ids, W)
assert_tensor(emb, shape=(2, 3, 3), dtype=torch.float32, name="one_hot_embed(ids, W)")
assert_close(emb[0, 1], W[3], name="embedding of id 3")
assert_close(emb, W[ids], name="one_hot_embed(ids, W)")
W_grad = torch.randn(4, 3, requires_grad=True)
one_hot_embed(torch.tensor([1, 1, 2]), W_grad).sum().backward()
assert W_grad.grad is not None, "no gradient reached weight: build the result from weight with differentiable ops"
assert_close(W_grad.grad, torch.tensor([[0.0] * 3, [2.0] * 3, [1.0] * 3, [0.0] * 3]), name="gradient of weight")
expect_value_error(one_hot_embed, torch.tensor([0, 4]), W, mention=["4"], name="one_hot_embed with id 4 when V = 4")


# %% [markdown]
# ### Experiment — why frameworks look rows up instead of multiplying
#
# Both give the same numbers. The product, though, builds a $(B \cdot S) \times V$ one-hot matrix first. With a
# vocabulary of tens of thousands of tokens that matrix is large and almost all zeros:

# %%
import timeit

vocab_sizes = by_mode(full=[1_000, 4_000, 16_000, 32_000], fast=[1_000, 2_000])
tokens = torch.randint(0, 1_000, (32, 64))
table = []
for V in vocab_sizes:
    weight = torch.randn(V, 64)
    assert torch.equal(one_hot_embed(tokens, weight), weight[tokens])  # same numbers (and a warm-up)
    # best of 3 repeats: the least disturbed by whatever else the machine is doing
    t_product = min(timeit.repeat(lambda: one_hot_embed(tokens, weight), number=1, repeat=3))
    t_lookup = min(timeit.repeat(lambda: weight[tokens], number=1, repeat=3))
    table.append((V, t_product * 1e3, t_lookup * 1e3, tokens.numel() * V * 4 / 2**20))
print(f"{'V':>7} {'one-hot @ W (ms)':>17} {'W[ids] (ms)':>12} {'one-hot matrix (MiB)':>21}")
for V, tp, tl, mib in table:
    print(f"{V:>7} {tp:>17.2f} {tl:>12.3f} {mib:>21.1f}")
report_metric("one-hot / lookup time at largest V", table[-1][1] / max(table[-1][2], 1e-6), notebook="00_orientation",
              fmt=".0f")

# %% [markdown]
# **What to notice.** The product's time and memory grow with $V$; the lookup's do not. That is why `nn.Embedding`
# indexes rows — it is still the one-hot product mathematically, including its gradient: only the looked-up rows
# receive one.
#
# ## Summary
#
# - Softmax turns scores into weights; it ignores added constants and reacts strongly to scaling; subtract the
#   maximum to compute it safely.
# - An embedding is a one-hot vector times a matrix, computed as a row lookup, and learned like any other weight.
# - Each exercise: read the docstring, fill the answer cell, run the test cell; use *Validate* before you submit.
#
# Next, notebook 01 feeds embeddings through a recurrent network one step at a time — and shows why gradients
# through many steps vanish or explode.
