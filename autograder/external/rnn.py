"""Hidden tests of 01_rnn as data: ``rnn_step``, ``rnn_forward``, ``bidirectional_concat``."""

from __future__ import annotations

import numpy as np
import torch

from .cases import checked_call, checked_gradients, must_raise

RNN = dict(forbid=("rnn",))


def reference_step(x_t, h_prev, W_xh, W_hh, b):  # noqa: N803 - the course's names
    return torch.tanh(x_t @ W_xh + h_prev @ W_hh + b)


def reference_forward(x, h0, W_xh, W_hh, b):  # noqa: N803
    h = torch.zeros(x.shape[0], W_hh.shape[0], dtype=x.dtype) if h0 is None else h0
    outputs = []
    for t in range(x.shape[1]):
        h = reference_step(x[:, t], h, W_xh, W_hh, b)
        outputs.append(h)
    out = torch.stack(outputs, dim=1)
    return out, out[:, -1]


def _weights(rng, d, h, dtype=np.float64, scale=1.0):
    return [(rng.standard_normal(s) * scale).astype(dtype) for s in [(d, h), (h, h), (h,)]]


def rnn_step_steps(rng: np.random.Generator) -> list:
    steps = []
    for b, d, h, dtype in [(4, 3, 5, np.float64), (1, 7, 2, np.float32), (6, 1, 1, np.float64), (3, 5, 8, np.float32)]:
        args = [rng.standard_normal((b, d)).astype(dtype), rng.standard_normal((b, h)).astype(dtype),
                *_weights(rng, d, h, dtype)]
        steps.append(checked_call("rnn_step", args, reference_step, label=f"rnn_step B={b} D={d} H={h}",
                                  atol=1e-6 if dtype == np.float32 else 1e-12, **RNN, exercise="rnn_step"))
    args = [rng.standard_normal(s) * 2 for s in [(3, 4), (3, 6), (4, 6), (6, 6), (6,)]]
    steps.append(checked_call("rnn_step", args, reference_step, label="rnn_step with large inputs", atol=1e-12))
    args = [rng.standard_normal(s) for s in [(2, 3), (2, 4), (3, 4), (4, 4), (4,)]]
    steps.append(checked_gradients("rnn_step", args, reference_step, wrt=(0, 1, 2, 3, 4), rng=rng,
                                   label="rnn_step"))
    x, hp = rng.standard_normal((2, 3)), rng.standard_normal((2, 4))
    wxh, whh, bias = _weights(rng, 3, 4)
    for args, label in [([x, hp, wxh, whh, rng.standard_normal(1)], "b of shape (1,)"),
                        ([x, rng.standard_normal((1, 4)), wxh, whh, bias], "h_prev batch 1 vs x_t batch 2"),
                        ([x[0], hp, wxh, whh, bias], "a 1-D x_t"),
                        ([x, hp, wxh, rng.standard_normal((4, 5)), bias], "W_hh (4, 5)"),
                        ([x, hp, rng.standard_normal((3, 5)), whh, bias], "W_xh (3, 5) but H = 4"),
                        ([x, hp, rng.standard_normal((5, 4)), whh, bias], "W_xh (5, 4) but D = 3")]:
        steps.append(must_raise("rnn_step", args, label=f"rnn_step with {label}"))
    return steps


def rnn_forward_steps(rng: np.random.Generator) -> list:
    steps = []
    # graded on its own: while these run, rnn_step is a trusted stand-in, so a mistake there is not counted twice
    alone = {"stand_ins": {"rnn_step": "rnn_step"}}
    for b, s, d, h, dtype, zero in [(3, 6, 4, 5, np.float64, False), (1, 1, 2, 3, np.float64, False),
                                    (2, 9, 3, 2, np.float32, True), (1, 4, 1, 1, np.float64, True),
                                    (4, 1, 5, 6, np.float32, False)]:
        x = rng.standard_normal((b, s, d)).astype(dtype)
        h0 = None if zero else rng.standard_normal((b, h)).astype(dtype)
        wxh, whh, bias = _weights(rng, d, h, dtype)
        whh = (whh * 0.9).astype(dtype)
        step = checked_call("rnn_forward", [x, h0, wxh, whh, bias], reference_forward, outputs=2,
                            label=f"rnn_forward B={b} S={s} D={d} H={h} h0={'None' if zero else 'given'}",
                            atol=1e-5 if dtype == np.float32 else 1e-12, **RNN, exercise="rnn_forward", **alone)
        steps.append(step)
    args = [rng.standard_normal(s) for s in [(2, 3, 2), (2, 3), (2, 3), (3, 3), (3,)]]
    for output in (0, 1):
        steps.append(checked_gradients("rnn_forward", args, reference_forward, wrt=(0, 1, 2, 3, 4), rng=rng,
                                       output=output, label=f"rnn_forward, output {output} (every step must use the "
                                                            "previous step's state)", **alone))
    x = rng.standard_normal((2, 4, 3))
    wxh, whh, bias = _weights(rng, 3, 5)
    for args, label in [([rng.standard_normal((2, 0, 3)), None, wxh, whh, bias], "S = 0"),
                        ([x, rng.standard_normal((3, 5)), wxh, whh, bias], "h0 batch 3 vs x batch 2"),
                        ([x, rng.standard_normal((2, 4)), wxh, whh, bias], "h0 (2, 4) but H = 5"),
                        ([x, None, rng.standard_normal((4, 5)), whh, bias], "W_xh (4, 5) but D = 3"),
                        ([rng.standard_normal((2, 4, 3, 1)), None, wxh, whh, bias], "a 4-D x")]:
        steps.append(must_raise("rnn_forward", args, label=f"rnn_forward with {label}", **alone))
    return steps


def reference_concat(fwd, bwd):
    return torch.cat([fwd, bwd.flip(1)], dim=-1)


def bidirectional_concat_steps(rng: np.random.Generator) -> list:
    steps = []
    for b, s, h, dtype in [(3, 7, 4, np.float64), (1, 1, 2, np.float64), (2, 2, 1, np.float64), (4, 6, 3, np.float32)]:
        args = [rng.standard_normal((b, s, h)).astype(dtype), rng.standard_normal((b, s, h)).astype(dtype)]
        steps.append(checked_call("bidirectional_concat", args, reference_concat, atol=0, rtol=0,
                                  label=f"bidirectional_concat B={b} S={s} H={h}"))
    args = [rng.standard_normal((2, 4, 3)), rng.standard_normal((2, 4, 3))]
    steps.append(checked_gradients("bidirectional_concat", args, reference_concat, wrt=(0, 1), rng=rng,
                                   label="bidirectional_concat"))
    for args, label in [([np.zeros((2, 5, 4)), np.zeros((2, 5, 3))], "H 4 vs 3"),
                        ([np.zeros((5, 4)), np.zeros((5, 4))], "2-D inputs"),
                        ([np.zeros((2, 5, 4)), np.zeros((3, 5, 4))], "B 2 vs 3")]:
        steps.append(must_raise("bidirectional_concat", args, label=f"bidirectional_concat with {label}"))
    return steps


ITEMS = {"test_rnn_step": rnn_step_steps, "test_rnn_forward": rnn_forward_steps,
         "test_bidirectional_concat": bidirectional_concat_steps}
