# %% [markdown]
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/attention-step-by-step/attention-step-by-step/blob/main/course/01_rnn/01_rnn.ipynb)

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
# # 01 · Recurrent networks: state, backpropagation through time, and why gradients fade
#
# A sentence is a *sequence*: "this is a pen" and "pen a is this" hold the same words and mean different things,
# and sentences come in every length. A network for text needs to read tokens in order and to accept any number of
# them. The **recurrent neural network** (RNN, 再帰型ニューラルネットワーク) does both with one idea: keep a
# **hidden state** $h_t$, a vector that summarises everything read so far, and update it once per token with the
# same weights:
#
# $$h_t = \tanh\!\left(x_t W_{xh} + h_{t-1} W_{hh} + b\right), \qquad t = 1, \dots, S,$$
#
# starting from $h_0$ (usually zeros). This is the *Elman* RNN. In the course's row-vector convention $x_t$ is a
# row of $D$ features, $h_t$ a row of $H$ numbers, $W_{xh}$ has shape $(D, H)$, $W_{hh}$ has shape $(H, H)$ and
# $b$ has shape $(H,)$. PyTorch's `nn.RNN` stores the transposes, `weight_ih_l0` $= W_{xh}^\top$ of shape $(H, D)$
# and `weight_hh_l0` $= W_{hh}^\top$, and keeps *two* biases, `bias_ih_l0 + bias_hh_l0` $= b$; the helper
# `attention_steps.weights.rnn_weights(rnn)` converts between the two.
#
# In this notebook you write the RNN by hand, check that it matches PyTorch, and then use it to see the problem
# that the rest of the course solves: information from early tokens reaches late ones only through a long product
# of matrices, and that product vanishes or explodes.

# %%
import math

import matplotlib.pyplot as plt
import torch
from torch import nn

from attention_steps import by_mode, describe_device, report_metric, seed_everything
from attention_steps.data import recall_task
from attention_steps.plotting import show
from attention_steps.testing import assert_close, assert_tensor, expect_value_error, forbid, random_tensor
from attention_steps.training import batch_sampler, train
from attention_steps.weights import rnn_weights

seed_everything(0)
print("running on", describe_device(torch.device("cpu")), "(this notebook's models are small: the CPU is fastest)")

# %% [markdown]
# ## One step
#
# ### Exercise 1 — `rnn_step(x_t, h_prev, W_xh, W_hh, b)`
#
# Compute one update $h_t = \tanh(x_t W_{xh} + h_{t-1} W_{hh} + b)$ for a whole batch at once: `x_t` is
# `(B, D)`, `h_prev` is `(B, H)`. Check the shapes yourself and raise a `ValueError` that names them when they do
# not fit: PyTorch would happily *broadcast* a bias of shape `(1,)` or a batch of one, and the result would be
# silently wrong. Use tensor operations (`@`, `torch.tanh`); `nn.RNN`, `nn.RNNCell` and their functional forms are
# off limits here (the tests check).

# %% nbgrader={"grade": false, "grade_id": "rnn_step", "locked": false, "schema_version": 3, "solution": true, "task": false}
def rnn_step(x_t: torch.Tensor, h_prev: torch.Tensor, W_xh: torch.Tensor, W_hh: torch.Tensor,
             b: torch.Tensor) -> torch.Tensor:
    """One step of an Elman RNN: ``tanh(x_t @ W_xh + h_prev @ W_hh + b)``.

    Args:
        x_t: (B, D) inputs at this time step, float32 or float64.
        h_prev: (B, H) hidden state from the previous step, same dtype.
        W_xh: (D, H) input-to-hidden weights (row-vector convention: ``x @ W``).
        W_hh: (H, H) hidden-to-hidden weights; row i says how h_prev[:, i] feeds each new unit.
        b: (H,) bias.

    Returns:
        (B, H) new hidden state, same dtype as ``x_t``. No input is modified; gradients flow to all five arguments.

    Raises:
        ValueError: if ``x_t`` or ``h_prev`` is not 2-D, if their batch sizes differ, or if ``W_xh`` is not (D, H),
            ``W_hh`` not (H, H) or ``b`` not (H,). The message names the shapes.

    Do not call torch's RNN built-ins (``nn.RNN``, ``nn.RNNCell``, ``rnn_tanh_cell``, ...).
    """
    ### BEGIN SOLUTION
    if x_t.dim() != 2 or h_prev.dim() != 2:
        raise ValueError(f"x_t and h_prev must be 2-D (B, D) and (B, H); got {tuple(x_t.shape)} and "
                         f"{tuple(h_prev.shape)}")
    (batch, d_in), (batch_h, hidden) = x_t.shape, h_prev.shape
    if batch != batch_h:
        raise ValueError(f"x_t {tuple(x_t.shape)} and h_prev {tuple(h_prev.shape)} disagree on the batch size")
    if tuple(W_xh.shape) != (d_in, hidden) or tuple(W_hh.shape) != (hidden, hidden) or tuple(b.shape) != (hidden,):
        raise ValueError(f"with x_t {tuple(x_t.shape)} and h_prev {tuple(h_prev.shape)} expected W_xh ({d_in}, "
                         f"{hidden}), W_hh ({hidden}, {hidden}), b ({hidden},); got {tuple(W_xh.shape)}, "
                         f"{tuple(W_hh.shape)}, {tuple(b.shape)}")
    return torch.tanh(x_t @ W_xh + h_prev @ W_hh + b)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_rnn_step", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Visible tests: shape and dtype, a value worked out by hand, agreement with torch's RNNCell, a clear ValueError.
x_t = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
h_prev = torch.tensor([[0.5, -0.5, 0.0], [0.0, 0.0, 1.0]])
W_xh = torch.tensor([[0.1, 0.2, 0.3], [0.0, -0.1, 0.2]])
W_hh = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.5, 0.5, 0.0]])
b = torch.tensor([0.0, 0.1, -0.1])
h = rnn_step(x_t, h_prev, W_xh, W_hh, b)
assert_tensor(h, shape=(2, 3), dtype=torch.float32, name="rnn_step(...)")
# by hand: row 0: x W_xh = (0.1, 0.2, 0.3), h W_hh = (0.5, 0, -0.5); row 1: (0, -0.2, 0.4) + (0.5, 0.5, 0); then + b
assert_close(h, torch.tanh(torch.tensor([[0.6, 0.3, -0.3], [0.5, 0.4, 0.3]])),
             name="rnn_step (worked by hand; h_prev @ W_hh, not W_hh @ h_prev, and the bias inside the tanh)")
cell = nn.RNNCell(3, 4)  # stores W_xh.T as weight_ih and W_hh.T as weight_hh, like nn.RNN
x, hp = torch.randn(5, 3), torch.randn(5, 4)
expected = cell(x, hp).detach()
assert_close(rnn_step(x, hp, cell.weight_ih.detach().T, cell.weight_hh.detach().T,
                      (cell.bias_ih + cell.bias_hh).detach()), expected, name="rnn_step vs torch's nn.RNNCell")
expect_value_error(rnn_step, x, hp, cell.weight_ih.detach(), cell.weight_hh.detach().T, torch.zeros(4),
                   mention=["(4, 3)"], name="rnn_step with W_xh of shape (4, 3) instead of (3, 4)")
with forbid("rnn", exercise="rnn_step"):
    rnn_step(x, hp, torch.randn(3, 4), torch.randn(4, 4), torch.randn(4))


# %% [markdown]
# ## A whole sequence
#
# ### Exercise 2 — `rnn_forward(x, h0, W_xh, W_hh, b)`
#
# Run the step over a batch of sequences `x` of shape `(B, S, D)` — batch first, as everywhere in this course —
# and return every hidden state, `outputs` of shape `(B, S, H)`, and the last one, `h_last` of shape `(B, H)`.
# `outputs[:, t]` is the state *after* reading `x[:, t]`; $h_0$ is not part of `outputs`. This is exactly what
# `nn.RNN(D, H, batch_first=True)` returns (its `h_n` has an extra leading axis for the layers). A Python loop over
# time is the natural way to write it; you may call your `rnn_step`.
#
# There is nothing special to do for training: when a loss depends on `outputs`, `loss.backward()` walks back
# through every step of the loop. That is **backpropagation through time** (BPTT): the loop, unrolled, is a very
# deep network whose layers all share $W_{xh}, W_{hh}, b$, and the gradient of a shared weight is the sum of its
# gradients at every step.

# %% nbgrader={"grade": false, "grade_id": "rnn_forward", "locked": false, "schema_version": 3, "solution": true, "task": false}
def rnn_forward(x: torch.Tensor, h0: torch.Tensor | None, W_xh: torch.Tensor, W_hh: torch.Tensor,
                b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Run an Elman RNN over a batch of sequences, batch first.

    Args:
        x: (B, S, D) inputs, S >= 1, float32 or float64.
        h0: (B, H) initial hidden state, or ``None`` for zeros (dtype and device of ``x``).
        W_xh: (D, H), W_hh: (H, H), b: (H,) — as in ``rnn_step``.

    Returns:
        ``(outputs, h_last)``: outputs (B, S, H) with ``outputs[:, t]`` the hidden state after reading ``x[:, t]``
        (h0 itself is not included), and h_last (B, H) equal to ``outputs[:, -1]``. Same dtype as ``x``. This is
        what ``torch.nn.RNN(D, H, batch_first=True)`` returns with ``W_xh = weight_ih_l0.T``,
        ``W_hh = weight_hh_l0.T``, ``b = bias_ih_l0 + bias_hh_l0`` (its h_n has an extra leading axis of size 1).
        No input is modified; gradients flow to ``x``, ``h0`` and the weights.

    Raises:
        ValueError: if ``x`` is not 3-D, if S == 0, or if ``h0`` / the weights do not fit ``x`` (as in
            ``rnn_step``: h0 must be (B, H) with H taken from W_hh). The message names the shapes.

    Do not call torch's RNN built-ins (``nn.RNN``, ``nn.RNNCell``, ``rnn_tanh``, ...).
    """
    ### BEGIN SOLUTION
    if x.dim() != 3:
        raise ValueError(f"x must be 3-D (B, S, D), got shape {tuple(x.shape)}")
    batch, length, _ = x.shape
    if length == 0:
        raise ValueError(f"x {tuple(x.shape)} has no time steps (S = 0)")
    if W_hh.dim() != 2:
        raise ValueError(f"W_hh must be 2-D (H, H), got shape {tuple(W_hh.shape)}")
    hidden = W_hh.shape[1]
    h = x.new_zeros(batch, hidden) if h0 is None else h0
    if tuple(h.shape) != (batch, hidden):
        raise ValueError(f"h0 has shape {tuple(h.shape)}; with x {tuple(x.shape)} and W_hh {tuple(W_hh.shape)} "
                         f"expected ({batch}, {hidden})")
    outputs = []
    for t in range(length):
        h = rnn_step(x[:, t], h, W_xh, W_hh, b)
        outputs.append(h)
    outputs = torch.stack(outputs, dim=1)
    return outputs, outputs[:, -1]
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_rnn_forward", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
# Visible tests: shapes, h_last, the initial state, agreement with torch.nn.RNN, a clear ValueError.
torch_rnn = nn.RNN(3, 4, batch_first=True)
w = rnn_weights(torch_rnn)
x = torch.randn(2, 5, 3)
h0 = torch.randn(2, 4)
outputs, h_last = rnn_forward(x, h0, w["W_xh"], w["W_hh"], w["b"])
assert_tensor(outputs, shape=(2, 5, 4), dtype=torch.float32, name="outputs")
assert_tensor(h_last, shape=(2, 4), dtype=torch.float32, name="h_last")
expected_out, expected_hn = torch_rnn(x, h0[None])
assert_close(outputs, expected_out.detach(), name="outputs vs torch.nn.RNN (outputs[:, t] is the state after x[:, t])")
assert_close(h_last, expected_hn[0].detach(), name="h_last vs torch.nn.RNN")
outputs0, _ = rnn_forward(x, None, w["W_xh"], w["W_hh"], w["b"])
assert_close(outputs0, torch_rnn(x)[0].detach(), name="outputs with h0=None (start from zeros)")
expect_value_error(rnn_forward, x[0], h0, w["W_xh"], w["W_hh"], w["b"], mention=["(5, 3)"],
                   name="rnn_forward with a 2-D x of shape (5, 3)")
with forbid("rnn", exercise="rnn_forward"):
    rnn_forward(x, h0, w["W_xh"], w["W_hh"], w["b"])


# %% [markdown]
# ## Why gradients vanish or explode
#
# How much does the first input $x_1$ still matter at step $T$? Differentiate through the recurrence. With
# $a_t = x_t W_{xh} + h_{t-1} W_{hh} + b$ and $h_t = \tanh(a_t)$, the chain rule gives, in column form,
#
# $$\frac{\partial h_t}{\partial h_{t-1}} = \operatorname{diag}\!\left(1 - h_t^2\right) W_{hh}^\top,
# \qquad
# \frac{\partial h_T}{\partial x_1} = \underbrace{\prod_{t=T}^{2} \operatorname{diag}\!\left(1 - h_t^2\right)
# W_{hh}^\top}_{T - 1 \text{ Jacobians}} \; \operatorname{diag}\!\left(1 - h_1^2\right) W_{xh}^\top .$$
#
# The same product carries the training signal backwards: the gradient of a loss at step $T$ with respect to
# anything at step 1 is multiplied by it. The LiberalArts booklet pictures this as "half the information
# survives each step, so after 10 steps $0.5^{10} \approx 0.001$ is left". That is a cartoon. What really happens
# is a **product of matrices**, and its size depends on them:
#
# - each factor $\operatorname{diag}(1 - h_t^2)$ is at most 1 (the slope of tanh), and much less when a unit
#   saturates near ±1;
# - $W_{hh}^\top$ stretches a vector by at most its **largest singular value** $\sigma_{\max}$ in one step; over
#   many steps the powers of a fixed matrix grow or shrink like its **spectral radius** $\rho$ (the largest
#   $|\lambda|$, which is never above $\sigma_{\max}$): $\lVert (W^\top)^T \rVert^{1/T} \to \rho$. So "the product
#   behaves like $\rho^{T}$ times the tanh slopes" is a rule of thumb, not a bound: the slopes change every step and
#   every unit, and over a few steps $\sigma_{\max}$ matters more than $\rho$.
#
# If $\rho$ times the typical slope is below 1 the product **vanishes** geometrically; above 1 it can **explode**
# (too large a step jumps far away when training; `train` clips the gradient norm at 1 for this reason). Nothing
# forces the rate to be ½. Is it the information that decays, or only the gradient? In this *contractive* regime it is
# both: if every Jacobian shrinks, two sequences that differ only in $x_1$ end in nearly the same $h_T$ — the state
# has forgotten $x_1$, as the experiment below measures. The two part ways only in networks that are not contractive
# everywhere: an RNN can latch a bit in saturated units, where the tanh slope is near 0, so the state keeps $x_1$
# while the gradient to $x_1$ vanishes and training cannot find out that it should (Bengio, Simard & Frasconi, 1994).
#
# First, check the formula: build the product from the states your `rnn_forward` computes and compare it with
# autograd's Jacobian on a small case.

# %%
def jacobian_norms(x, W_xh, W_hh, b):
    """‖∂h_t/∂x_1‖ (Frobenius) for t = 1 … S, from the Jacobian product above; x is (1, S, D)."""
    outputs, _ = rnn_forward(x, None, W_xh, W_hh, b)
    slopes = 1 - outputs[0] ** 2  # (S, H): tanh'(a_t)
    jac = slopes[0][:, None] * W_xh.T  # ∂h_1/∂x_1, (H, D)
    norms = [jac.norm()]
    for t in range(1, x.shape[1]):
        jac = slopes[t][:, None] * (W_hh.T @ jac)  # multiply by ∂h_t/∂h_{t-1} = diag(1 - h_t²) W_hhᵀ
        norms.append(jac.norm())
    return torch.stack(norms), jac


small = [random_tensor(*s, seed=i, dtype=torch.float64) for i, s in enumerate([(1, 6, 3), (3, 4), (4, 4), (4,)])]
_, product = jacobian_norms(*small)
autograd_jac = torch.autograd.functional.jacobian(
    lambda x1: rnn_forward(torch.cat([x1[None, None], small[0][:, 1:]], dim=1), None, *small[1:])[1][0],
    small[0][0, 0],
)
print("max |product − autograd| for ∂h_6/∂x_1:", (product - autograd_jac).abs().max().item())

# %% [markdown]
# ### Experiment — $\lVert \partial h_T / \partial x_1 \rVert$ against $T$
#
# A random $W_{hh}$ rescaled to spectral radius $\rho$, random inputs, $H = 64$ (no training: this is the network
# as it starts). The dashed line is the LiberalArts booklet's $0.5^{T}$.
#
# For contrast, the **LSTM** (long short-term memory). Besides $h_t$ it keeps a *cell* $c_t$ updated
# **additively**,
#
# $$c_t = f_t \odot c_{t-1} + i_t \odot g_t, \qquad h_t = o_t \odot \tanh(c_t),$$
#
# with gates $f_t, i_t, o_t \in (0, 1)$ computed from $x_t$ and $h_{t-1}$. Along the cell path
# $\partial c_t / \partial c_{t-1}$ is (mostly) just $\operatorname{diag}(f_t)$: no weight matrix, no tanh slope.
# The forget gate decides how fast the past fades, and it is *learned*. A freshly initialised LSTM has
# $f_t \approx \sigma(0) = \tfrac12$ — the booklet's ½, by accident — so practitioners initialise the forget
# bias to about 1–3, which keeps $f_t$ near 1. The GRU, which notebook 02 uses, has the same additive path:
# $h_t = (1 - z_t) \odot h_{t-1} + z_t \odot \tilde h_t$ (Chung et al., 2014). PyTorch's `nn.GRU` names its update
# gate the other way round, $h_t = (1 - z_t) \odot n_t + z_t \odot h_{t-1}$ with $n_t$ the candidate: its $z_t$ is
# our $1 - z_t$ — the same model, a different label.

# %%
H, D, T_MAX = 64, 8, by_mode(full=100, fast=20)
x_long = random_tensor(1, T_MAX, D, seed=1, dtype=torch.float64)
W_xh_exp = random_tensor(D, H, seed=2, dtype=torch.float64) / math.sqrt(D)
A = random_tensor(H, H, seed=3, dtype=torch.float64) / math.sqrt(H)
A = A / torch.linalg.eigvals(A).abs().max()  # spectral radius exactly 1
radii = [0.5, 0.9, 1.0, 1.5, 3.0]
curves = {rho: jacobian_norms(x_long, W_xh_exp, rho * A, torch.zeros(H, dtype=torch.float64))[0] for rho in radii}


def lstm_jacobian_norms(lstm, x, lengths):
    """‖∂h_T/∂x_1‖ for each T in lengths: a batch of H copies of x, row i back-propagates unit i of h_T."""
    hidden = lstm.hidden_size
    copies = x.repeat(hidden, 1, 1).requires_grad_(True)
    outputs, _ = lstm(copies)
    rows = torch.arange(hidden)
    norms = []
    for T in lengths:
        (grad,) = torch.autograd.grad(outputs[rows, T - 1, rows].sum(), copies, retain_graph=True)
        norms.append(grad[:, 0].norm())  # row i of ∂h_T/∂x_1 sits in copy i
    return torch.stack(norms)


lstm_T = [T for T in (1, 2, 3, 5, 7, 10, 15, 20, 30, 40, 50, 70, 100) if T <= T_MAX]
lstm_curves = {}
for forget_bias in (0.0, 3.0):
    torch.manual_seed(0)
    lstm = nn.LSTM(D, H, batch_first=True).double()
    with torch.no_grad():  # torch orders the gates (input, forget, cell, output): rows H … 2H-1 are the forget gate
        lstm.bias_ih_l0[H : 2 * H] = forget_bias
        lstm.bias_hh_l0[H : 2 * H] = 0.0
    lstm_curves[forget_bias] = lstm_jacobian_norms(lstm, x_long, lstm_T)

T_axis = torch.arange(1, T_MAX + 1)
fig, ax = plt.subplots(figsize=(7.5, 4.2))
for rho, norms in curves.items():
    ax.plot(T_axis, norms.clamp_min(1e-300), label=f"RNN, ρ(W_hh) = {rho}")
for forget_bias, norms in lstm_curves.items():
    ax.plot(lstm_T, norms, "o-", ms=3, lw=2, label=f"LSTM, forget bias {forget_bias:g}")
ax.plot(T_axis, 0.5 ** T_axis.double(), "k--", lw=1, label="0.5^T (the LiberalArts booklet's picture)")
ax.set(yscale="log", xlabel="T (steps after x_1)", ylabel="‖∂h_T / ∂x_1‖", ylim=(1e-30, 1e12),
       title="How strongly the first input still moves h_T")
ax.grid(alpha=0.3)
ax.legend(fontsize=8, ncol=2)
fig.tight_layout()
show(fig)
for rho, norms in curves.items():
    print(f"ρ = {rho}: ‖∂h_10/∂x_1‖ = {norms[9]:.2e}, ‖∂h_{T_MAX}/∂x_1‖ = {norms[-1]:.2e}")
print(f"LSTM, forget bias 0: {lstm_curves[0.0][-1]:.2e}; forget bias 3: {lstm_curves[3.0][-1]:.2e} at T = {T_MAX}")
half_T = 0.5 ** T_MAX
print(f"At T = {T_MAX} the LSTM with forget bias 0 ends at {lstm_curves[0.0][-1]:.1e}: "
      f"{math.log10(lstm_curves[0.0][-1] / half_T):.0f} orders of magnitude above 0.5^T = {half_T:.1e} and "
      f"{abs(math.log10(lstm_curves[0.0][-1] / curves[1.0][-1])):.1f} orders from the ρ = 1 RNN ({curves[1.0][-1]:.1e}).")

# Forgetting the input itself: two sequences that differ only in x_1, run through the same RNN.
x_other = x_long.clone()
x_other[0, 0] = random_tensor(D, seed=4, dtype=torch.float64)
print("‖h_T(x) − h_T(x′)‖ when only x_1 differs, T = 10 and T =", T_MAX)
for rho in radii:
    outs = [rnn_forward(seq, None, W_xh_exp, rho * A, torch.zeros(H, dtype=torch.float64))[0][0] for seq in
            (x_long, x_other)]
    gap = (outs[0] - outs[1]).norm(dim=-1)
    print(f"  ρ = {rho}: {gap[9]:.1e}, {gap[-1]:.1e}")
report_metric(f"RNN rho=1 gradient norm at T={T_MAX}", curves[1.0][-1].item(), notebook="01_rnn", fmt=".2e")

# %% [markdown]
# **What to notice.** On a log scale the RNN curves are roughly straight lines: geometric decay or growth, with a
# rate set by $\rho$ and the tanh slopes — not a universal ½. Even $\rho = 1$ decays, because saturated units have
# slope below 1; $\rho = 3$ explodes by many orders of magnitude. The untrained LSTM with forget bias 0 decays
# geometrically too, though its forget gates sit near ½: slower than $0.5^T$ and close to the $\rho = 1$ RNN, as the
# printed line says, because the cell's gates and its tanh do not halve every direction every step. With forget bias 3
# ($f \approx 0.95$) the first input still matters after 100 steps. The last table is the answer to "information or
# gradient?": wherever the gradient vanished (every $\rho$ up to 1.5 here), the two states meet — the network has
# forgotten $x_1$, not merely stopped feeling it; at $\rho = 3$ they stay apart, and there the huge gradient is what
# makes training unstable. Long memory is something the LSTM *can learn*, by opening its forget gates; the plain RNN
# has no such knob.
#
# ## Experiment — remembering the first token
#
# Now with training. Each sequence is a **key** (one of 8 tokens) followed by $N$ distractor tokens; the network
# reads it all and must name the key from its final hidden state. Chance is 1/8 = 12.5 %. To learn this, the
# gradient from the loss at step $N + 1$ must reach step 1 — exactly the product above.
#
# The plain RNN here is `torch.nn.RNN`: it computes the same thing as your `rnn_forward` (the tests checked), in
# C++ rather than a Python loop, which matters for training speed. The LSTM starts with forget bias 3, as in the
# experiment above.

# %%
class Recaller(nn.Module):
    """Embedding → RNN or LSTM → linear read-out of the last hidden state."""

    def __init__(self, kind: str, n_tokens: int = 16, n_keys: int = 8, hidden: int = 64):
        super().__init__()
        self.embedding = nn.Embedding(n_tokens, 16)
        self.rnn = (nn.LSTM if kind == "LSTM" else nn.RNN)(16, hidden, batch_first=True)
        if kind == "LSTM":
            with torch.no_grad():
                self.rnn.bias_ih_l0[hidden : 2 * hidden] = 3.0
        self.head = nn.Linear(hidden, n_keys)

    def forward(self, tokens):
        outputs, _ = self.rnn(self.embedding(tokens))
        return self.head(outputs[:, -1])


distractors = by_mode(full=[5, 20, 50], fast=[2])
recall_steps = by_mode(full=300, fast=5)
recall = {"RNN": [], "LSTM": []}
for n in distractors:
    tokens, keys = recall_task(n, 4096, seed=1)
    valid_tokens, valid_keys = recall_task(n, 1000, seed=2)
    for kind in recall:
        torch.manual_seed(0)
        model = Recaller(kind)
        history = train(model, torch.optim.Adam(model.parameters(), lr=3e-3),
                        lambda m, batch: nn.functional.cross_entropy(m(batch[0]), batch[1]),
                        batch_sampler(tokens, keys, batch_size=128), recall_steps, desc=f"{kind}, N = {n}")
        with torch.no_grad():
            recall[kind].append((model(valid_tokens).argmax(-1) == valid_keys).float().mean().item())

fig, ax = plt.subplots(figsize=(6, 3.6))
for kind, accs in recall.items():
    ax.plot(distractors, accs, "o-", label=kind)
ax.axhline(1 / 8, color="gray", ls=":", label="chance (1/8)")
ax.set(xscale="log", xlabel="N (distractors after the key)", ylabel="validation accuracy", ylim=(0, 1.05),
       title=f"Recall the first token ({recall_steps} training steps)")
ax.set_xticks(distractors, [str(n) for n in distractors])
ax.xaxis.set_minor_locator(plt.NullLocator())  # no stray 6×10⁰, 3×10¹ labels between them
ax.grid(alpha=0.3)
ax.legend()
fig.tight_layout()
show(fig)
for kind, accs in recall.items():
    print(kind, " ".join(f"N={n}: {a:.0%}" for n, a in zip(distractors, accs)))
print(f"With {distractors[-1]} distractors the plain RNN reaches {recall['RNN'][-1]:.0%} (chance is 12.5 %) and the "
      f"LSTM {recall['LSTM'][-1]:.0%}.")
report_metric("recall accuracy at largest N, LSTM minus RNN", recall["LSTM"][-1] - recall["RNN"][-1],
              notebook="01_rnn", fmt=".2f")

# %% [markdown]
# **What to notice.** With few distractors both networks learn the task in 300 steps. With the most (the line
# printed last) the plain RNN stays near chance: its gradient to the key has shrunk geometrically on the way back,
# so it never discovers that the key matters. The LSTM, whose forget gates start near 1, gets nearly every key
# right. Training a plain RNN on long
# dependencies is also erratic — with another random seed, or at N = 10, a run can stall on a plateau for hundreds
# of steps — and the LSTM is not unlimited either: give it longer sequences or fewer steps and it fails too.
# Notebook 02 feeds a whole sentence through such a network into *one* vector, and notebook 03 shows how attention
# sidesteps the long path altogether: every output looks at every input directly.
#
# ## Reading both ways: the bidirectional RNN
#
# The state $h_t$ of an RNN knows the past, $x_1 \dots x_t$, and nothing about what comes next. For tagging a word
# in a sentence, or for an encoder that will be read by attention later, the words *after* position $t$ matter too.
# A **bidirectional RNN** (Bi-RNN; Nakamura's deck: "前後の情報を持てる", it holds information from both sides) runs a
# second RNN, with its own weights, from the end of the sequence to the start, and joins the two states at each
# position:
#
# $$\overrightarrow{h}_t = \operatorname{RNN}_{\rightarrow}(x_1, \dots, x_t), \qquad
# \overleftarrow{h}_t = \operatorname{RNN}_{\leftarrow}(x_S, \dots, x_t), \qquad
# h_t = \left[\overrightarrow{h}_t \,;\, \overleftarrow{h}_t\right].$$
#
# ### Exercise 3 — `bidirectional_concat(fwd, bwd)`
#
# The backward RNN is simply `rnn_forward` run on the time-reversed input `x.flip(1)`. Its outputs come out in the
# order it produced them: `bwd[:, k]` is the state after reading $x_S, \dots, x_{S-k}$, i.e. it belongs to input
# position $S - 1 - k$ (0-based). Line the two up and concatenate along the feature axis, forward half first — the
# layout of `nn.RNN(bidirectional=True)`'s output.

# %% nbgrader={"grade": false, "grade_id": "bidirectional_concat", "locked": false, "schema_version": 3, "solution": true, "task": false}
def bidirectional_concat(fwd: torch.Tensor, bwd: torch.Tensor) -> torch.Tensor:
    """Join the outputs of a forward and a backward RNN into a bidirectional RNN's outputs.

    Args:
        fwd: (B, S, H) outputs of the forward RNN: ``fwd[:, t]`` has read ``x[:, 0] … x[:, t]``.
        bwd: (B, S, H) outputs of the backward RNN *in the order it produced them*, i.e. of an RNN run over
            ``x.flip(1)``: ``bwd[:, k]`` has read ``x[:, S-1] … x[:, S-1-k]``.

    Returns:
        (B, S, 2H) tensor whose position t is ``[fwd[:, t], bwd[:, S-1-t]]`` (forward features first), the layout of
        ``torch.nn.RNN(..., bidirectional=True, batch_first=True)``'s output. Same dtype; gradients flow to both.

    Raises:
        ValueError: if ``fwd`` or ``bwd`` is not 3-D or their shapes differ (the message names both shapes).
    """
    ### BEGIN SOLUTION
    if fwd.dim() != 3 or bwd.dim() != 3 or fwd.shape != bwd.shape:
        raise ValueError(f"fwd and bwd must both be (B, S, H) with the same shape; got {tuple(fwd.shape)} and "
                         f"{tuple(bwd.shape)}")
    return torch.cat([fwd, bwd.flip(1)], dim=-1)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_bidirectional_concat", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Visible tests: shape, which backward state lands at each position, agreement with nn.RNN(bidirectional=True).
fwd = torch.arange(6.0).reshape(1, 3, 2)  # positions 0, 1, 2
bwd = -torch.arange(6.0).reshape(1, 3, 2)  # bwd[:, 0] belongs to position 2
both = bidirectional_concat(fwd, bwd)
assert_tensor(both, shape=(1, 3, 4), dtype=torch.float32, name="bidirectional_concat(fwd, bwd)")
assert_close(both[0, 0], torch.tensor([0.0, 1.0, -4.0, -5.0]),
             name="position 0 (the backward state there is bwd[:, S-1], the last one the backward RNN produced)")
bi = nn.RNN(3, 4, batch_first=True, bidirectional=True)
x = torch.randn(2, 5, 3)
wf, wb = rnn_weights(bi), rnn_weights(bi, reverse=True)
fwd, _ = rnn_forward(x, None, wf["W_xh"], wf["W_hh"], wf["b"])
bwd, _ = rnn_forward(x.flip(1), None, wb["W_xh"], wb["W_hh"], wb["b"])
assert_close(bidirectional_concat(fwd, bwd), bi(x)[0].detach(), name="bidirectional_concat vs nn.RNN(bidirectional)")
expect_value_error(bidirectional_concat, torch.zeros(2, 5, 4), torch.zeros(2, 4, 4), mention=["(2, 5, 4)", "(2, 4, 4)"],
                   name="bidirectional_concat with different lengths")


# %% [markdown]
# ### Experiment — what each half of a Bi-RNN knows
#
# Change only the **last** token of a sequence and see which states move. In a forward RNN only the last position
# can react; the backward half of a Bi-RNN reacts at *every* position, because each backward state has read the
# sequence from the end.

# %%
bi = nn.RNN(4, 16, batch_first=True, bidirectional=True)
wf, wb = rnn_weights(bi), rnn_weights(bi, reverse=True)


def bi_states(x):
    fwd, _ = rnn_forward(x, None, wf["W_xh"], wf["W_hh"], wf["b"])
    bwd, _ = rnn_forward(x.flip(1), None, wb["W_xh"], wb["W_hh"], wb["b"])
    return bidirectional_concat(fwd, bwd)


x = random_tensor(1, 12, 4, seed=5)
x_changed = x.clone()
x_changed[0, -1] = random_tensor(4, seed=6)
change = (bi_states(x_changed) - bi_states(x))[0].abs()
fig, ax = plt.subplots(figsize=(6.5, 3))
ax.bar(torch.arange(12) - 0.2, change[:, :16].norm(dim=-1), width=0.4, label="forward half")
ax.bar(torch.arange(12) + 0.2, change[:, 16:].norm(dim=-1), width=0.4, label="backward half")
ax.set(xlabel="position t", ylabel="‖change in h_t‖", title="Changing only the last token")
ax.legend()
fig.tight_layout()
show(fig)

# %% [markdown]
# **What to notice.** The forward half changes only at the last position; the backward half changes everywhere,
# most near the end (its own long path fades toward the start, as in the experiment above). A Bi-RNN state is
# "this word, in the context of the whole sentence" — which is what an attention layer will want to look at.
#
# ## Summary
#
# - An RNN reads a sequence with one state and one set of weights, $h_t = \tanh(x_t W_{xh} + h_{t-1} W_{hh} + b)$;
#   training unrolls the loop (BPTT) and sums the gradients of the shared weights.
# - The influence of $x_1$ on $h_T$ is a **product of $T$ Jacobians** $\operatorname{diag}(1 - h_t^2) W_{hh}^\top$.
#   It shrinks or grows geometrically with a rate set by the spectral radius of $W_{hh}$ and the tanh slopes: it
#   vanishes or explodes — not a fixed "½ per step".
# - The LSTM (and GRU) add an **additive path** whose per-step factor is a learned gate; it can stay near 1, so
#   LSTMs remember much further — but still through a long chain.
# - A Bi-RNN concatenates a forward and a time-reversed pass so each position sees both sides.
#
# Next, notebook 02 puts two recurrent networks together — an encoder that reads a whole input into one vector,
# and a decoder that writes the output from it — and measures where that single vector runs out of room.
