# %% [markdown]
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/attention-step-by-step/attention-step-by-step/blob/main/course/02_seq2seq/02_seq2seq.ipynb)

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
# # 02 · Sequence to sequence: encoder, decoder, and the fixed-size bottleneck
#
# Translation turns one sequence into another of a different length: "this is a pen" (4 words) becomes
# "これ は ペン です" (4 words, another order), "september 27, 1994" (18 characters) becomes "1994-09-27" (10). The
# **sequence-to-sequence** model (seq2seq, 系列変換; Sutskever, Vinyals and Le, 2014) does it with two recurrent
# networks:
#
# - the **encoder** reads the whole source and keeps only its final hidden state, the **context vector**
#   $c = h_S$ (文脈ベクトル);
# - the **decoder** is a language model that starts from $c$: fed the start token ⟨BOS⟩ it predicts the first output
#   token, fed that token it predicts the second, and so on until it predicts the end token ⟨EOS⟩.
#
# $$c = \operatorname{Encoder}(x_1, \dots, x_S), \qquad
# s_0 = c,\quad s_t = \operatorname{GRU}(\operatorname{emb}(y_{t-1}), s_{t-1}),\quad
# p(y_t \mid y_{<t}, x) = \operatorname{softmax}(s_t W_{out} + b_{out}).$$
#
# Two facts about $c$ shape the whole story of this course. It is a **fixed-size** vector — $H$ numbers whether the
# source has 6 characters or 600 — and it is computed **once**, before the first output token. Everything the
# decoder will ever know about the source must squeeze through it. This notebook builds the model, makes it work
# on dates, and then measures where that single vector runs out of room. (Nakamura's deck describes
# attention's context vector as "variable length". It is not: attention still produces a fixed-size vector, but a
# *new* one at every output step, looking back at all encoder states — notebook 03. And when learners of the
# Transformer ask whether a "latent vector" sits between its encoder and decoder: here there is exactly one, $c$;
# in the Transformer there is none — its decoder looks at every encoder state.)
#
# ⟨BOS⟩ (*beginning of sequence*) and ⟨EOS⟩ (*end of sequence*) are ordinary tokens with fixed ids, PAD = 0,
# BOS = 1, EOS = 2 in every data set of the course. BOS is the trigger that starts decoding (the decoder needs some
# input at step 1); EOS is how the model says it is done, which is what lets outputs have any length.

# %%
import matplotlib.pyplot as plt
import torch
from torch import nn

from attention_steps import by_mode, describe_device, get_device, report_metric, seed_everything
from attention_steps.data import BOS, EOS, PAD, date_task, sequence_task
from attention_steps.metrics import exact_match, trim_at_eos
from attention_steps.plotting import plot_losses, show
from attention_steps.testing import assert_close, assert_tensor, expect_value_error
from attention_steps.training import batch_sampler, train

seed_everything(0)
device = get_device()
print("running on", describe_device(device))

# %% [markdown]
# ## The data: dates in many formats
#
# The task is to rewrite a date written in one of fifteen styles as ISO `YYYY-MM-DD`. Sources and targets are
# sequences of *characters*; `task.train.src` holds source ids padded with PAD at the end, `task.train.tgt` holds
# `BOS y_1 … y_10 EOS`. The 2,000 test dates are never seen in training (and we tune on `task.valid` only).

# %%
task = date_task()
print(task.src_vocab, "\n", task.tgt_vocab)
for i in range(6):
    print(f"{task.train.src_text[i]!r:>34} → {task.train.tgt_text[i]}")
print("source ids:", task.train.src[0].tolist())
print("target ids:", task.train.tgt[0].tolist(), " (BOS … EOS)")
print("train / valid / test:", len(task.train), len(task.valid), len(task.test))

# %% [markdown]
# ## The encoder
#
# We use a **GRU** rather than an LSTM: it has the additive, gated path that lets gradients travel (notebook 01)
# with one state tensor instead of the LSTM's pair $(h, c)$, which keeps the plumbing simple.
#
# Sources in a batch have different lengths and are padded at the end. The context must be the state after the last
# *real* character: running the GRU over the padding as well would let PAD tokens overwrite it. Two ways to get it
# right: pack the batch with `nn.utils.rnn.pack_padded_sequence(..., enforce_sorted=False)` so the GRU stops at each
# row's length, or run over everything and pick `outputs[b, lengths[b] - 1]` (then zero the outputs at padded
# positions yourself).
#
# ### Exercise 1 — `Seq2SeqEncoder`

# %% nbgrader={"grade": false, "grade_id": "Seq2SeqEncoder", "locked": false, "schema_version": 3, "solution": true, "task": false}
class Seq2SeqEncoder(nn.Module):
    """Embedding + one-layer GRU that reads a padded batch of sources into a context vector.

    Constructor: ``Seq2SeqEncoder(vocab_size, embed_dim, hidden_dim)`` creates exactly these sub-modules (the tests
    read their weights):

    - ``self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)``
    - ``self.rnn = nn.GRU(embed_dim, hidden_dim, batch_first=True)`` (one layer, unidirectional, with biases)

    ``forward(src, lengths=None) -> (outputs, context)``:

    - ``src``: (B, S) int64 source ids, each row its real tokens followed by PAD (0) only.
    - ``lengths``: (B,) int64 number of real tokens per row, each in [1, S]; when ``None``, computed as
      ``(src != 0).sum(1)``.
    - ``outputs``: (B, S, hidden_dim) GRU hidden state after each real token; **zeros** at padded positions
      (t >= lengths[b]).
    - ``context``: (B, hidden_dim) the hidden state after the last real token of each row, ``outputs[b, lengths[b]-1]``
      — a plain 2-D tensor, not the GRU's (1, B, H) ``h_n``. The GRU starts from zeros. Padding never changes it.

    Raises ``ValueError`` if ``src`` is not 2-D (the message names its shape).
    """

    def __init__(self, vocab_size: int, embed_dim: int, hidden_dim: int):
        super().__init__()
        ### BEGIN SOLUTION
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD)
        self.rnn = nn.GRU(embed_dim, hidden_dim, batch_first=True)
        ### END SOLUTION

    def forward(self, src: torch.Tensor, lengths: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        ### BEGIN SOLUTION
        if src.dim() != 2:
            raise ValueError(f"src must be 2-D (B, S), got shape {tuple(src.shape)}")
        if lengths is None:
            lengths = (src != PAD).sum(dim=1)
        packed = nn.utils.rnn.pack_padded_sequence(self.embedding(src), lengths.cpu(), batch_first=True,
                                                   enforce_sorted=False)
        packed_outputs, h_n = self.rnn(packed)
        outputs, _ = nn.utils.rnn.pad_packed_sequence(packed_outputs, batch_first=True, total_length=src.shape[1])
        return outputs, h_n[0]
        ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_Seq2SeqEncoder", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
# Visible tests: sub-modules, shapes, padding does not change the context, zeros at padded positions.
torch.manual_seed(0)
enc = Seq2SeqEncoder(vocab_size=12, embed_dim=5, hidden_dim=7)
assert type(enc.embedding) is nn.Embedding and tuple(enc.embedding.weight.shape) == (12, 5), \
    "self.embedding must be nn.Embedding(vocab_size, embed_dim, padding_idx=0)"
assert enc.embedding.padding_idx is not None and int(enc.embedding.padding_idx) == 0, \
    "self.embedding needs padding_idx=0 (PAD)"
assert type(enc.rnn) is nn.GRU and enc.rnn.batch_first and enc.rnn.hidden_size == 7, \
    "self.rnn must be nn.GRU(embed_dim, hidden_dim, batch_first=True)"
src = torch.tensor([[3, 4, 5, 6], [7, 8, 0, 0]])
outputs, context = enc(src)
assert_tensor(outputs, shape=(2, 4, 7), dtype=torch.float32, name="outputs")
assert_tensor(context, shape=(2, 7), dtype=torch.float32, name="context")
_, context_short = enc(torch.tensor([[7, 8]]))
assert_close(context[1], context_short[0],
             name="context of [7, 8, PAD, PAD] vs of [7, 8] (the context must be the state after the last real token)")
assert_close(context[0], outputs[0, 3], name="context vs outputs at the last position of a full row")
assert_close(outputs[1, 2:], torch.zeros(2, 7), name="outputs at padded positions (must be zeros)")
expect_value_error(enc, torch.tensor([3, 4, 5]), mention=["(3,)"], name="encoder with a 1-D src")

# %% [markdown]
# ## The decoder and teacher forcing
#
# During **training** the decoder's input at step $t$ is the *correct* previous token $y_{t-1}$, not its own guess:
# this is **teacher forcing**. Feed `tgt[:, :-1]` = `BOS y_1 … y_n` and predict `tgt[:, 1:]` = `y_1 … y_n EOS`. All
# inputs are known in advance, so the whole target goes through the GRU in one call and the loss covers every
# position at once. During **inference** the correct tokens are unknown: the decoder must feed its own previous
# prediction back in, one step at a time (greedy decoding, below).
#
# Learners ask whether training is "parallel over time" while inference is sequential. For an RNN decoder only
# partly: teacher forcing removes the dependence on the *model's own outputs*, so there is no sampling loop, but the
# GRU still has to compute $s_t$ from $s_{t-1}$, one step after another. A Transformer decoder (notebook 07) drops the
# recurrence; with teacher forcing and a look-ahead mask it computes all positions truly in parallel. Inference stays
# sequential for both.
#
# ### Exercise 2 — `Seq2SeqDecoder`
#
# One call processes a whole block of input tokens. The `state` argument lets the same module run step by step:
# the first call starts from the context, later calls continue from the state the previous call returned.

# %% nbgrader={"grade": false, "grade_id": "Seq2SeqDecoder", "locked": false, "schema_version": 3, "solution": true, "task": false}
class Seq2SeqDecoder(nn.Module):
    """GRU decoder whose initial state is the encoder's context vector.

    Constructor: ``Seq2SeqDecoder(vocab_size, embed_dim, hidden_dim)`` creates exactly:

    - ``self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)``
    - ``self.rnn = nn.GRU(embed_dim, hidden_dim, batch_first=True)``
    - ``self.out = nn.Linear(hidden_dim, vocab_size)``

    ``forward(tokens, context, state=None) -> (logits, new_state)``:

    - ``tokens``: (B, T) int64 decoder inputs (teacher forcing: ``tgt[:, :-1]``; greedy decoding: (B, 1)).
    - ``context``: (B, hidden_dim) the encoder's context vector.
    - ``state``: (B, hidden_dim) or ``None``. The GRU starts from ``context`` when ``state`` is None, otherwise from
      ``state`` (continuing an earlier call).
    - ``logits``: (B, T, vocab_size) = ``self.out`` applied to the GRU's hidden state at each position (no softmax).
    - ``new_state``: (B, hidden_dim) the GRU's hidden state after the last position (a 2-D tensor).

    Running T tokens in one call gives the same logits as T calls of one token each that pass the state along.
    Raises ``ValueError`` if ``tokens`` is not 2-D or ``context`` is not (B, hidden_dim) (message names shapes).
    """

    def __init__(self, vocab_size: int, embed_dim: int, hidden_dim: int):
        super().__init__()
        ### BEGIN SOLUTION
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD)
        self.rnn = nn.GRU(embed_dim, hidden_dim, batch_first=True)
        self.out = nn.Linear(hidden_dim, vocab_size)
        ### END SOLUTION

    def forward(self, tokens: torch.Tensor, context: torch.Tensor,
                state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        ### BEGIN SOLUTION
        hidden = self.rnn.hidden_size
        if tokens.dim() != 2 or tuple(context.shape) != (tokens.shape[0], hidden):
            raise ValueError(f"expected tokens (B, T) and context (B, {hidden}); got {tuple(tokens.shape)} and "
                             f"{tuple(context.shape)}")
        start = context if state is None else state
        outputs, h_n = self.rnn(self.embedding(tokens), start.unsqueeze(0).contiguous())
        return self.out(outputs), h_n[0]
        ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_Seq2SeqDecoder", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
# Visible tests: sub-modules, shapes, the context is the starting state, one call = step-by-step calls.
torch.manual_seed(0)
dec = Seq2SeqDecoder(vocab_size=11, embed_dim=4, hidden_dim=6)
assert type(dec.rnn) is nn.GRU and dec.rnn.input_size == 4 and dec.rnn.batch_first, \
    "self.rnn must be nn.GRU(embed_dim, hidden_dim, batch_first=True)"
assert type(dec.out) is nn.Linear and tuple(dec.out.weight.shape) == (11, 6), "self.out must be nn.Linear(hidden_dim, vocab_size)"
tokens = torch.tensor([[BOS, 5, 6], [BOS, 7, 8]])
context = torch.randn(2, 6)
logits, state = dec(tokens, context)
assert_tensor(logits, shape=(2, 3, 11), dtype=torch.float32, name="logits")
assert_tensor(state, shape=(2, 6), dtype=torch.float32, name="new_state")
other_logits, _ = dec(tokens, torch.randn(2, 6))
assert not torch.allclose(logits, other_logits), "the logits do not depend on the context: start the GRU from it"
step_logits, s = [], None
for t in range(3):
    lg, s = dec(tokens[:, t : t + 1], context, s)
    step_logits.append(lg)
assert_close(torch.cat(step_logits, dim=1), logits, name="logits of 3 one-token calls passing the state vs one call")
assert_close(s, state, name="state after 3 one-token calls vs after one call")

# %% [markdown]
# ## Peeky: let every step see the context
#
# In the plain decoder the context enters once, as $s_0$. Every later step sees it only through $s_1, s_2, \dots$,
# which are busy tracking what has been written so far, so the source fades as the output grows. The **Peeky**
# decoder (from *Deep Learning from Scratch 2*, and the *Attention機構* deck's 覗き穴, "peephole", in the everyday
# sense of a spy-hole) keeps the context in hand at every step. It is not the LSTM's *peephole connection* (Gers &
# Schmidhuber, 2000), which lets an LSTM's gates see its own cell state — the deck mentions that one only as further
# reading. Peeky: it is concatenated to the input embedding of every step *and* to the hidden state that feeds the
# output layer,
#
# $$s_t = \operatorname{GRU}\big([\operatorname{emb}(y_{t-1}) \,;\, c],\ s_{t-1}\big), \qquad
# \text{logits}_t = [s_t \,;\, c]\, W_{out} + b_{out}, \qquad s_0 = c.$$
#
# It costs $H \cdot 3H$ more GRU weights and $H \cdot V$ more output weights, and the same $c$ is still computed
# once — so Peeky helps the decoder *use* the context, but cannot put more into it.
#
# ### Exercise 3 — `PeekyDecoder`

# %% nbgrader={"grade": false, "grade_id": "PeekyDecoder", "locked": false, "schema_version": 3, "solution": true, "task": false}
class PeekyDecoder(nn.Module):
    """Seq2seq decoder that sees the context vector at every step ("peeky").

    Constructor: ``PeekyDecoder(vocab_size, embed_dim, hidden_dim)`` creates exactly:

    - ``self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)``
    - ``self.rnn = nn.GRU(embed_dim + hidden_dim, hidden_dim, batch_first=True)``
    - ``self.out = nn.Linear(2 * hidden_dim, vocab_size)``

    ``forward(tokens, context, state=None) -> (logits, new_state)``, same shapes as ``Seq2SeqDecoder``:

    - the GRU's input at each position is ``[embedding(token), context]`` (embedding first, then the context);
    - the GRU starts from ``context`` when ``state`` is None, otherwise from ``state``;
    - ``logits = self.out([gru_state, context])`` at each position (GRU state first, then the context);
    - the context is used at every position of every call, also when ``state`` is given.

    ``logits``: (B, T, vocab_size); ``new_state``: (B, hidden_dim), the GRU state after the last position.
    Raises ``ValueError`` if ``tokens`` is not 2-D or ``context`` is not (B, hidden_dim) (message names shapes).
    """

    def __init__(self, vocab_size: int, embed_dim: int, hidden_dim: int):
        super().__init__()
        ### BEGIN SOLUTION
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD)
        self.rnn = nn.GRU(embed_dim + hidden_dim, hidden_dim, batch_first=True)
        self.out = nn.Linear(2 * hidden_dim, vocab_size)
        ### END SOLUTION

    def forward(self, tokens: torch.Tensor, context: torch.Tensor,
                state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        ### BEGIN SOLUTION
        hidden = self.rnn.hidden_size
        if tokens.dim() != 2 or tuple(context.shape) != (tokens.shape[0], hidden):
            raise ValueError(f"expected tokens (B, T) and context (B, {hidden}); got {tuple(tokens.shape)} and "
                             f"{tuple(context.shape)}")
        peek = context.unsqueeze(1).expand(-1, tokens.shape[1], -1)
        start = context if state is None else state
        outputs, h_n = self.rnn(torch.cat([self.embedding(tokens), peek], dim=-1), start.unsqueeze(0).contiguous())
        return self.out(torch.cat([outputs, peek], dim=-1)), h_n[0]
        ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_PeekyDecoder", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
# Visible tests: sub-module sizes, shapes, the context reaches the output at every step, step-by-step = one call.
torch.manual_seed(0)
peeky = PeekyDecoder(vocab_size=11, embed_dim=4, hidden_dim=6)
assert type(peeky.rnn) is nn.GRU and peeky.rnn.input_size == 4 + 6, \
    "self.rnn takes [embedding, context]: nn.GRU(embed_dim + hidden_dim, hidden_dim, batch_first=True)"
assert type(peeky.out) is nn.Linear and tuple(peeky.out.weight.shape) == (11, 12), \
    "self.out takes [GRU state, context]: nn.Linear(2 * hidden_dim, vocab_size)"
tokens = torch.tensor([[BOS, 5, 6], [BOS, 7, 8]])
context = torch.randn(2, 6)
logits, state = peeky(tokens, context)
assert_tensor(logits, shape=(2, 3, 11), dtype=torch.float32, name="logits")
assert_tensor(state, shape=(2, 6), dtype=torch.float32, name="new_state")
step_logits, s = [], None
for t in range(3):
    lg, s = peeky(tokens[:, t : t + 1], context, s)
    step_logits.append(lg)
assert_close(torch.cat(step_logits, dim=1), logits, name="logits of 3 one-token calls passing the state vs one call")
with torch.no_grad():  # with the GRU's output silenced, the logits must still move with the context
    peeky.out.weight[:, :6] = 0.0
    a, _ = peeky(tokens, context, torch.zeros(2, 6))
    b, _ = peeky(tokens, context + 1.0, torch.zeros(2, 6))
assert not torch.allclose(a, b), "the output layer must see the context: self.out([gru_state, context])"

# %% [markdown]
# ## Greedy decoding
#
# At inference the decoder writes one token per step: feed BOS, take the most probable token (the arg-max of the
# logits), feed it back, and repeat until EOS. Rows in a batch finish at different steps; a finished row keeps its
# EOS and is padded with PAD afterwards, and decoding stops once every row has finished (or after `max_len` tokens).
# Greedy is the simplest decoder; beam search keeps several candidates per step and often does a little better.
#
# The model passed in is anything with an `encoder` and a `decoder` used as in the exercises above, for example:

# %%
class Seq2Seq(nn.Module):
    """An encoder and a decoder; ``forward`` is the teacher-forced training pass."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        _, context = self.encoder(src)
        logits, _ = self.decoder(tgt_in, context)
        return logits


# %% [markdown]
# ### Exercise 4 — `greedy_decode(model, src, max_len, bos_id, eos_id)`

# %% nbgrader={"grade": false, "grade_id": "greedy_decode", "locked": false, "schema_version": 3, "solution": true, "task": false}
def greedy_decode(model: nn.Module, src: torch.Tensor, max_len: int, bos_id: int, eos_id: int) -> torch.Tensor:
    """Greedy decoding with an encoder–decoder.

    Args:
        model: has ``model.encoder(src) -> (outputs, context)`` and
            ``model.decoder(tokens, context, state) -> (logits, new_state)``, where tokens is (B, 1), logits is
            (B, 1, V) and ``state`` is ``None`` on the first call and the previous call's ``new_state`` afterwards.
        src: (B, S) int64 source ids, padded with PAD (0) at the end.
        max_len: the most tokens to generate per row, an int >= 1.
        bos_id, eos_id: the ids of BOS and EOS (do not assume 1 and 2).

    Returns:
        (B, max_len) int64 tensor on ``src.device``. ``out[:, i]`` is the token chosen at step i: the arg-max of the
        logits, which becomes the decoder's input at step i + 1 (step 0's input is ``bos_id``; BOS is never part
        of the output). A row that has produced ``eos_id`` keeps that EOS and holds PAD (0) at every later position.
        Decoding stops as soon as every row has produced EOS (no further decoder calls) or after ``max_len`` steps;
        the unused positions are PAD. Runs without building an autograd graph.

    Raises:
        ValueError: if ``src`` is not 2-D or ``max_len < 1``.
    """
    ### BEGIN SOLUTION
    if src.dim() != 2:
        raise ValueError(f"src must be 2-D (B, S), got shape {tuple(src.shape)}")
    if max_len < 1:
        raise ValueError(f"max_len must be at least 1, got {max_len}")
    batch = src.shape[0]
    out = torch.full((batch, max_len), PAD, dtype=torch.long, device=src.device)
    finished = torch.zeros(batch, dtype=torch.bool, device=src.device)
    with torch.no_grad():
        _, context = model.encoder(src)
        token = torch.full((batch, 1), bos_id, dtype=torch.long, device=src.device)
        state = None
        for i in range(max_len):
            logits, state = model.decoder(token, context, state)
            token = logits[:, -1].argmax(dim=-1, keepdim=True)
            out[:, i] = token[:, 0].masked_fill(finished, PAD)
            finished |= token[:, 0] == eos_id
            if bool(finished.all()):
                break
    return out
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_greedy_decode", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
# Visible tests with a scripted "model" whose decoder follows a fixed plan, so every rule can be checked.
class ScriptedDecoder(nn.Module):
    """Predicts plan[row, k] at its k-th call, whatever it is fed; records what it was fed."""

    def __init__(self, plan, vocab=10):
        super().__init__()
        self.plan, self.vocab, self.fed, self.states = plan, vocab, [], []

    def forward(self, tokens, context, state=None):
        k = len(self.fed)
        self.fed.append(tokens.detach().clone())
        self.states.append(None if state is None else state.detach().clone())
        logits = torch.full((tokens.shape[0], 1, self.vocab), -5.0)
        logits[torch.arange(tokens.shape[0]), 0, self.plan[:, k]] = 5.0
        return logits, context + k + 1  # the "state" counts calls


class ScriptedEncoder(nn.Module):
    def forward(self, src, lengths=None):
        return torch.zeros(src.shape[0], src.shape[1], 3), torch.zeros(src.shape[0], 3)


class Scripted(nn.Module):
    def __init__(self, plan):
        super().__init__()
        self.encoder, self.decoder = ScriptedEncoder(), ScriptedDecoder(plan)


plan = torch.tensor([[5, 6, 2, 7, 7, 7], [8, 2, 9, 9, 9, 9], [4, 4, 4, 3, 2, 9]])  # EOS = 2 at steps 2, 1, 4
model = Scripted(plan)
out = greedy_decode(model, torch.ones(3, 4, dtype=torch.long), max_len=6, bos_id=BOS, eos_id=EOS)
assert_tensor(out, shape=(3, 6), dtype=torch.int64, name="greedy_decode(...)")
assert_close(out, torch.tensor([[5, 6, 2, 0, 0, 0], [8, 2, 0, 0, 0, 0], [4, 4, 4, 3, 2, 0]]), atol=0,
             name="greedy_decode output (no BOS; EOS kept; PAD after each row's EOS; PAD after stopping)")
assert len(model.decoder.fed) == 5, f"the decoder was called {len(model.decoder.fed)} times; all rows end by step 5"
assert_close(model.decoder.fed[0], torch.full((3, 1), BOS), atol=0, name="first decoder input (BOS for every row)")
assert_close(model.decoder.fed[1], plan[:, :1], atol=0, name="second decoder input (the previous arg-max)")
assert model.decoder.states[0] is None, "the first decoder call should get state=None"
assert_close(model.decoder.states[1], torch.ones(3, 3), name="second call's state (the state the first call returned)")

# %% [markdown]
# ## Training on dates
#
# The loss is the cross-entropy of every target position under teacher forcing, ignoring PAD. One helper trains a
# model for a given number of steps and returns its held-out exact-match accuracy (the whole date right, via
# `attention_steps.metrics.exact_match`) and the training time. Sizes are small on purpose: a GRU of width 128 and a
# few hundred Adam steps with a one-cycle learning-rate schedule train in seconds on a CPU.

# %%
HIDDEN, EMBED = 128, 32
BATCH, LR = 128, 3e-2
STEPS = by_mode(full=200, fast=4)
N_EVAL = by_mode(full=None, fast=64)  # the fast path scores a slice of the split


def reverse_sources(src: torch.Tensor) -> torch.Tensor:
    """Reverse the real tokens of each row, keeping the padding at the end: 'abc__' → 'cba__'."""
    lengths = (src != PAD).sum(1, keepdim=True)
    positions = torch.arange(src.shape[1], device=src.device).expand_as(src)
    flipped = torch.where(positions < lengths, lengths - 1 - positions, positions)
    return src.gather(1, flipped)


def sequence_loss(model, batch):
    src, tgt = batch
    src = src[:, : int((src != PAD).sum(1).max())]  # drop columns that are padding in every row
    logits = model(src, tgt[:, :-1])
    return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt[:, 1:].reshape(-1), ignore_index=PAD)


def fit(decoder_class, task, *, reverse=False, steps=STEPS, hidden=HIDDEN, batch=BATCH, lr=LR, seed=0, split="test"):
    """Train an encoder + decoder_class on task.train; return (model, exact match on the split or None, its History)."""
    torch.manual_seed(seed)
    prepare = reverse_sources if reverse else (lambda s: s)
    model = Seq2Seq(Seq2SeqEncoder(len(task.src_vocab), EMBED, hidden),
                    decoder_class(len(task.tgt_vocab), EMBED, hidden)).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps, pct_start=0.15)
    batches = batch_sampler(prepare(task.train.src), task.train.tgt, batch_size=batch, seed=seed, device=device)
    history = train(model, optimizer, sequence_loss, batches, steps, scheduler=schedule,
                    desc=f"{decoder_class.__name__}{' reversed' if reverse else ''}")
    if split is None:
        return model, None, history
    data = getattr(task, split)
    src, tgt = prepare(data.src[:N_EVAL]).to(device), data.tgt[:N_EVAL].to(device)
    predicted = greedy_decode(model, src, tgt.shape[1] - 1, BOS, EOS)
    return model, exact_match(predicted, tgt), history


# %% [markdown]
# ### Experiment — baseline, reversed input, Peeky
#
# Sutskever et al. found that feeding the source **reversed** helped: the first output words then sit close to the
# first input words in time. *Deep Learning from Scratch 2* shows both reversal and Peeky on an addition task. Here
# are all three on dates.

# %%
runs = {}
for label, decoder_class, reverse in [("baseline", Seq2SeqDecoder, False), ("reversed input", Seq2SeqDecoder, True),
                                      ("Peeky", PeekyDecoder, False)]:
    model, accuracy, history = fit(decoder_class, task, reverse=reverse)
    runs[label] = (model, accuracy, history)

print(f"{'model':<16} {'test exact match':>17} {'train seconds':>14}")
for label, (_, accuracy, history) in runs.items():
    print(f"{label:<16} {accuracy:>17.2%} {history.seconds:>14.1f}")
print(f"In {STEPS} steps the baseline gets {runs['baseline'][1]:.1%} of the test dates exactly right, reversed input "
      f"{runs['reversed input'][1]:.1%}, Peeky {runs['Peeky'][1]:.1%}.")
ax = plot_losses({label: history for label, (_, _, history) in runs.items()}, title="Dates: training loss")
ax.figure.tight_layout()
show(ax.figure)
peeky_model = runs["Peeky"][0]
report_metric("Peeky seq2seq exact match on dates (test)", runs["Peeky"][1], notebook="02_seq2seq")
report_metric("baseline seq2seq exact match on dates (test)", runs["baseline"][1], notebook="02_seq2seq")

# %% [markdown]
# Some test dates through the Peeky model:

# %%
examples = task.test.src[:8].to(device)
predicted = greedy_decode(peeky_model, examples, task.test.tgt.shape[1] - 1, BOS, EOS)
for text, ids, want in zip(task.test.src_text[:8], predicted.cpu(), task.test.tgt_text[:8]):
    got = task.decode_target(ids)
    print(f"{text!r:>34} → {got}  {'✓' if got == want else '✗ want ' + want}")

# %% [markdown]
# **What to notice.** With the same 200 steps the three end far apart (the line under the table has your run's
# figures; they move by a point or two between machines): the baseline gets a minority of the dates exactly right,
# the reversed-input model fewer still, and Peeky nearly all of them. Peeky learns fastest and reaches the best exact match: with the context in hand at every step, the decoder does
# not have to carry "which date was it?" through its own state while it writes digits. Reversal *hurts* here, and the
# reason is instructive: a date's year, which the ISO output writes **first**, is at the **end** of most source
# formats ("september 27, 1994"). Reading forward, the year is the last thing the encoder saw, right next to the
# context vector; reversed, it is the first thing read and the furthest from it. Reversal helps when output order
# follows input order (English → French, DLfS2's addition task); it is a trick about path lengths, not a law.
#
# ## Experiment — the fixed-size bottleneck
#
# Dates are 6–29 characters long, too short to strain a 128-number context. The **length-controlled** task
# `sequence_task("copy")` asks the model to copy random strings of 5–50 symbols (from 10 letters). Copying needs no
# cleverness, only *memory*: every symbol must pass through the context vector. We train the plain seq2seq on all
# lengths at once and score the test split by input length: per-character accuracy (teacher-forced, so an early
# mistake does not spoil the rest) and whole-string exact match (greedy).

# %%
copy_task = sequence_task("copy")
COPY_HIDDEN, COPY_STEPS = 64, by_mode(full=150, fast=3)  # sequences up to 50 long cost more per step: keep it small
copy_model, _, copy_history = fit(Seq2SeqDecoder, copy_task, steps=COPY_STEPS, hidden=COPY_HIDDEN, batch=64, lr=2e-2,
                                  split=None)

test = copy_task.test
with torch.no_grad():  # (the fast path scores a slice)
    src, tgt = test.src[:N_EVAL].to(device), test.tgt[:N_EVAL].to(device)
    logits = copy_model(src, tgt[:, :-1])
    correct = (logits.argmax(-1) == tgt[:, 1:]) & (tgt[:, 1:] != PAD)
    per_char = (correct.sum(1) / (tgt[:, 1:] != PAD).sum(1)).cpu()
    greedy = greedy_decode(copy_model, src, tgt.shape[1] - 1, BOS, EOS)
    whole = (trim_at_eos(greedy) == trim_at_eos(tgt[:, 1:])).all(1).cpu()
lengths = test.src_lengths[:N_EVAL]
bins = [(lo, lo + 4) for lo in range(5, 45, 5)] + [(45, 50)]  # lengths 5–50: nine bins, the last one 6 wide
char_acc = [per_char[(lengths >= lo) & (lengths <= hi)].mean().item() for lo, hi in bins]
exact_acc = [whole[(lengths >= lo) & (lengths <= hi)].float().mean().item() for lo, hi in bins]
centres = [(lo + hi) / 2 for lo, hi in bins]

fig, ax = plt.subplots(figsize=(6.5, 3.8))
ax.plot(centres, char_acc, "o-", label="per-character accuracy (teacher-forced)")
ax.plot(centres, exact_acc, "s-", label="whole string right (greedy)")
ax.axhline(0.1, color="gray", ls=":", label="chance per character (1/10)")
ax.set(xlabel="input length (characters)", ylabel="accuracy on the test split", ylim=(0, 1.02),
       title=f"Copying through one {COPY_HIDDEN}-number context vector")
ax.grid(alpha=0.3)
ax.legend(fontsize=8)
fig.tight_layout()
show(fig)
for (lo, hi), c, e in zip(bins, char_acc, exact_acc):
    print(f"length {lo:>2}–{hi:<2}: per character {c:6.1%}, whole string {e:6.1%}")
print(f"Per character: {char_acc[0]:.0%} at {bins[0][0]}–{bins[0][1]} symbols, {char_acc[-1]:.0%} at "
      f"{bins[-1][0]}–{bins[-1][1]} (chance 10 %); whole strings right: {exact_acc[0]:.0%} at the shortest, "
      f"{max(exact_acc[len(bins) // 2:]):.0%} at best from {bins[len(bins) // 2][0]} symbols on.")
report_metric("seq2seq copy: per-char accuracy, shortest minus longest bin", char_acc[0] - char_acc[-1],
              notebook="02_seq2seq", fmt=".2f")

# %% [markdown]
# **What to notice.** Per-character accuracy is highest for the shortest strings and falls steadily with length,
# to not far above chance at 45–50 characters (the last printed line); whole strings come out right only for the
# shortest inputs, and rarely. The model is the same at every length — what runs out is the context vector: $H$ numbers must
# hold every symbol, and each symbol read pushes the earlier ones further back through the GRU's long path
# (notebook 01). A wider vector and more training lift the curve (in a separate run with $H = 128$, 400 steps and
# batches of 128, about twenty times the compute, we measured about 88 % per character at 5–9 symbols and still only
# 37 % at 50; set `COPY_HIDDEN`, `COPY_STEPS` and the batch above to repeat it, for a few minutes) but do not
# change its downward shape. Peeky cannot remove the limit either: it shows the decoder the *same* vector more often,
# but puts nothing more into it.
#
# The fix is to stop squeezing: keep **all** the encoder's states $h_1, \dots, h_S$ and let the decoder compute, at
# each output step, a fresh weighted average of them — weights that say where to look. That weighted average is the
# **attention** context, and notebook 03 builds it.
#
# ## Summary
#
# - A seq2seq model encodes the source into one fixed-size context vector and decodes from it, starting at BOS and
#   stopping at EOS; padding must not reach the context.
# - Training uses teacher forcing (true previous tokens as inputs, all positions in one pass); inference feeds back
#   the model's own arg-max one step at a time.
# - Peeky hands the context to every decoder step and to the output layer, and trains faster and better; input
#   reversal helps only when it shortens the paths that matter.
# - Accuracy falls with input length: one vector is a bottleneck. Notebook 03 removes it with attention.
