"""Hidden tests of 04_senet as data: ``global_average_pool``, ``SEBlock``, ``SEResidualBlock``."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .cases import ModuleCase, checked_call, checked_gradients, must_raise
from .probe import method
from .reference_layers import trusted

POOL = dict(forbid=("adaptive_avg_pool2d", "avg_pool2d"), exercise="global_average_pool")
GATE = dict(forbid=("softmax",), exercise="SEBlock")
#: items are graded independently: SEBlock runs on a trusted pool, SEResidualBlock on a trusted pool and SEBlock
SE_ALONE = dict(stand_ins={"global_average_pool": "global_average_pool"})
RESIDUAL_ALONE = dict(stand_ins={"global_average_pool": "global_average_pool", "SEBlock": "SEBlock"})


def reference_pool(x):
    return x.sum(dim=(2, 3)) / (x.shape[2] * x.shape[3])


class ReferenceSEResidual(nn.Module):
    def __init__(self, channels, reduction=16):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.se = trusted.SEBlock(channels, reduction)

    def forward(self, x):
        return torch.relu(x + self.se(self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))))


def pool_steps(rng: np.random.Generator) -> list:
    steps = []
    for shape, dtype in [((1, 1, 1, 1), np.float32), ((3, 7, 5, 5), np.float64), ((2, 16, 8, 8), np.float32),
                         ((5, 3, 1, 9), np.float32), ((1, 64, 3, 2), np.float64), ((2, 4, 6, 1), np.float32)]:
        x = (rng.standard_normal(shape) * 4 + 2).astype(dtype)
        steps.append(checked_call("global_average_pool", [x], reference_pool, label=f"global_average_pool on {shape}",
                                  atol=1e-6 if dtype == np.float32 else 1e-12, **POOL))
    x16 = rng.standard_normal((2, 3, 5, 5)).astype(np.float16)
    steps.append(checked_call("global_average_pool", [x16], reference_pool, atol=2e-3, rtol=1e-2,
                              label="global_average_pool in float16"))
    steps.append(checked_gradients("global_average_pool", [rng.standard_normal((2, 3, 3, 5))], reference_pool,
                                   wrt=(0,), rng=rng, label="global_average_pool"))
    for shape in [(2, 3, 4, 4, 1), (8,), (3, 4, 4)]:
        steps.append(must_raise("global_average_pool", [np.zeros(shape)], label=f"global_average_pool on {shape}"))
    return steps


def _spread_gates(low, high):
    """An init that spreads the excitation biases over [low, high], so that a wrong nonlinearity shows."""
    return lambda name, shape, rng: np.linspace(low, high, shape[0]) if name.endswith("fc2.bias") else None


def se_block_steps(rng: np.random.Generator) -> list:
    steps = []
    for number, (c, r, shape, dtype) in enumerate([
            (16, 4, (2, 16, 3, 5), "float32"), (12, 16, (1, 12, 1, 1), "float32"), (64, 16, (4, 64, 7, 7), "float32"),
            (10, 3, (3, 10, 4, 9), "float64"), (1, 1, (2, 1, 5, 5), "float32"), (6, 2, (1, 6, 2, 3), "float64")]):
        label = f"SEBlock({c}, {r})"
        case = ModuleCase("SEBlock", [c, r], trusted.SEBlock(c, r), rng, label=label, keep=f"se{number}",
                          dtype_name=dtype, init=_spread_gates(-3, 3), **SE_ALONE)
        tol = dict(atol=1e-6, rtol=1e-5) if dtype == "float32" else dict(atol=1e-12, rtol=1e-10)
        x = (rng.standard_normal(shape) * 2 + 0.5).astype(dtype)
        steps += [*case.steps, case.call([x], call="gate", label=f"{label}.gate on {shape}", **tol, **GATE),
                  case.call([x], label=f"{label} on {shape}", **tol, **GATE)]
        if dtype == "float64":
            steps.append(case.call([x], label=f"{label} on {shape}", rng=rng, grad_args=(0,), **GATE))
    # the gates are independent sigmoids: every one can be near 1 at once
    logits_six = lambda n, s, r: np.zeros(s) if n == "fc2.weight" else np.full(s, 6.0) if n == "fc2.bias" else None  # noqa: E731
    case = ModuleCase("SEBlock", [8, 2], trusted.SEBlock(8, 2), rng, label="SEBlock(8, 2)", keep="open",
                      init=logits_six, **SE_ALONE)
    steps += [*case.steps, case.call([rng.standard_normal((2, 8, 3, 3))], call="gate", **GATE,
                                     label="SEBlock gates when every excitation logit is 6 (a sigmoid gives 0.9975 for "
                                           "each; a softmax would give 1/8)")]
    steps += [must_raise("SEBlock", [0, 4], label="SEBlock(0, 4)", **SE_ALONE),
              must_raise("SEBlock", [16, 0], label="SEBlock(16, 0)", **SE_ALONE)]
    case = ModuleCase("SEBlock", [16, 4], trusted.SEBlock(16, 4), rng, label="SEBlock(16, 4)", keep="bad", **SE_ALONE)
    steps += [*case.steps,
              must_raise(method("bad", "forward"), [rng.standard_normal((16, 5, 5))], label="SEBlock on a 3-D input",
                         **SE_ALONE),
              must_raise(method("bad", "gate"), [rng.standard_normal((2, 8, 5, 5))], **SE_ALONE,
                         label="SEBlock(16).gate on an 8-channel input")]
    return steps


def _residual_init(name, shape, rng):
    """Non-trivial batch-norm statistics and affine parameters, gates spread over (0, 1)."""
    if name.startswith("bn"):
        low, high = {"weight": (0.5, 1.5), "bias": (-0.5, 0.5), "running_mean": (-0.3, 0.3),
                     "running_var": (0.5, 2.0)}[name.split(".")[1]]
        return rng.uniform(low, high, shape)
    return np.linspace(-2, 2, shape[0]) if name == "se.fc2.bias" else None


def _gates(value):
    return lambda name, shape, rng: (np.zeros(shape) if name == "se.fc2.weight" else np.full(shape, value)
                                     if name == "se.fc2.bias" else _residual_init(name, shape, rng))


def se_residual_steps(rng: np.random.Generator) -> list:
    steps = []
    for number, (c, r, shape) in enumerate([(8, 2, (3, 8, 5, 5)), (16, 4, (2, 16, 7, 3)), (4, 16, (4, 4, 1, 1)),
                                            (12, 3, (1, 12, 6, 9))]):
        label = f"SEResidualBlock({c}, {r})"
        case = ModuleCase("SEResidualBlock", [c, r], ReferenceSEResidual(c, r), rng, label=label, keep=f"block{number}",
                          dtype_name="float32", init=_residual_init, **RESIDUAL_ALONE)
        x = rng.standard_normal(shape).astype(np.float32)
        steps += [*case.steps, case.call([x], label=f"{label} on {shape} in evaluation mode", atol=1e-4, rtol=1e-4),
                  case.mode(True), case.call([x], label=f"{label} on {shape} in training mode", atol=1e-4, rtol=1e-4)]
    x = rng.standard_normal((2, 8, 5, 3))
    for value, what in [(-40.0, "closed gates (the identity path is kept, ungated)"),
                        (40.0, "open gates (should equal the plain residual block)")]:
        case = ModuleCase("SEResidualBlock", [8, 2], ReferenceSEResidual(8, 2), rng, label="SEResidualBlock(8, 2)",
                          keep=f"gates{value}", init=_gates(value), **RESIDUAL_ALONE)
        steps += [*case.steps, case.call([x], label=f"SEResidualBlock with {what}", atol=1e-9)]
    case = ModuleCase("SEResidualBlock", [8, 2], ReferenceSEResidual(8, 2), rng, label="SEResidualBlock(8, 2)",
                      keep="trained", training=True, init=_residual_init, **RESIDUAL_ALONE)
    steps += [*case.steps, case.call([rng.standard_normal((4, 8, 5, 5))], label="SEResidualBlock(8, 2) in training",
                                     rng=rng, grad_args=(0,))]
    steps += [must_raise(method("trained", "forward"), [np.zeros((8, 5, 5))], label="SEResidualBlock on a 3-D input",
                         **RESIDUAL_ALONE),
              must_raise(method("trained", "forward"), [np.zeros((2, 4, 5, 5))], **RESIDUAL_ALONE,
                         label="SEResidualBlock(8) on a 4-channel input")]
    return steps


ITEMS = {"test_global_average_pool": pool_steps, "test_SEBlock": se_block_steps,
         "test_SEResidualBlock": se_residual_steps}
