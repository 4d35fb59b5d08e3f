"""Wrong and correct versions of notebook 05's graded items (see qa/discrimination.py).

Each wrong version is a mistake a learner plausibly makes, written as an edit of the solution (qa/catalog.py); each
must fail at least one of the item's tests. Each correct version is a different but valid way to write the item;
each must pass all of them.
"""

from qa.catalog import edit, solutions

S = solutions("05_dot_product_attention")
SDPA, PAD, CAUSAL = S["scaled_dot_product_attention"], S["padding_mask"], S["causal_mask"]
SCORES = "scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])"
MASK_FILL = "        scores = scores.expand(shape).masked_fill(~mask, torch.finfo(scores.dtype).min)\n"
ZEROING = SDPA[SDPA.index("    if mask is not None:\n        weights = "):SDPA.index("    return weights @ v")]
INPUT_CHECKS = SDPA[SDPA.index("    if q.dim() < 2"):SDPA.index("    scores = q @")]
MASK_CHECKS = SDPA[SDPA.index("        if mask.dtype != torch.bool:"):SDPA.index(MASK_FILL)]
MINUS_INF = 'torch.zeros(mask.shape, dtype=scores.dtype, device=scores.device).masked_fill(~mask, float("-inf"))'
PAD_OUT = "return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]"
CAUSAL_OUT = "torch.ones(size, size, dtype=torch.bool, device=device).tril()"


# Input checks shared by the attention versions below (the mistakes they illustrate are elsewhere).
_CHECKS = '''
    if q.dim() < 2 or k.dim() < 2 or v.dim() < 2:
        raise ValueError(f"need (..., T, d): q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"d_k differs: q {tuple(q.shape)}, k {tuple(k.shape)}")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"one value per key: k {tuple(k.shape)}, v {tuple(v.shape)}")
    if mask is not None:
        if mask.dtype != torch.bool:
            raise ValueError(f"mask must be bool, got {mask.dtype}")
        scores = q.shape[:-1] + (k.shape[-2],)
        if mask.dim() < 2 or mask.shape[-1] != scores[-1] or mask.shape[-2] not in (1, scores[-2]):
            raise ValueError(f"mask {tuple(mask.shape)}: last two dims must be (T_q or 1, T_k) of {tuple(scores)}")
        try:
            torch.broadcast_shapes(mask.shape, scores)
        except RuntimeError:
            raise ValueError(f"mask {tuple(mask.shape)} does not fit scores {tuple(scores)}") from None
'''

_HEAD = '''
import math
import torch
def scaled_dot_product_attention(q, k, v, mask=None):''' + _CHECKS


_PADDING_CHECKS = '''
    if lengths.dim() != 1:
        raise ValueError(f"lengths must be 1-D, got {tuple(lengths.shape)}")
    if lengths.dtype.is_floating_point or lengths.dtype == torch.bool:
        raise ValueError(f"lengths must be integers, got {lengths.dtype}")
    if max_len < 0:
        raise ValueError(f"max_len {max_len} < 0")
    if lengths.numel() and (lengths.min() < 0 or lengths.max() > max_len):
        raise ValueError(f"lengths {lengths.tolist()} outside [0, {max_len}]")
'''
_PADDING_HEAD = '''
import torch
def padding_mask(lengths, max_len):''' + _PADDING_CHECKS

_CAUSAL_HEAD = '''
import torch
def causal_mask(size, device=None):
    if size < 0:
        raise ValueError(f"size {size} < 0")
'''

CATALOG = {
    "scaled_dot_product_attention": {
        "wrong": {
            "no scale (softmax of q·k)": edit(SDPA, (SCORES, "scores = q @ k.transpose(-2, -1)")),
            "scaled by d_k instead of its square root": edit(SDPA, ("math.sqrt(q.shape[-1])", "q.shape[-1]")),
            "scaled by sqrt(d_v) instead of sqrt(d_k)": edit(SDPA, ("math.sqrt(q.shape[-1])", "math.sqrt(v.shape[-1])")),
            "scaled by sqrt(T_k), the number of keys": edit(SDPA, ("math.sqrt(q.shape[-1])", "math.sqrt(k.shape[-2])")),
            "softmax over the queries (dim=-2)": edit(SDPA, ("torch.softmax(scores, dim=-1)", "torch.softmax(scores, dim=-2)")),
            "mask ignored": edit(SDPA, (MASK_FILL, ""), (ZEROING, "")),
            "mask inverted (True treated as blocked, torch.nn style)": edit(
                SDPA, ("masked_fill(~mask, torch.finfo", "masked_fill(mask, torch.finfo"),
                ("mask.any(dim=-1", "(~mask).any(dim=-1"), ("weights.masked_fill(~mask, 0.0)", "weights.masked_fill(mask, 0.0)")),
            "masked scores filled with -1e9 (overflows float16)": edit(SDPA, ("torch.finfo(scores.dtype).min", "-1e9")),
            "masked scores filled with -1e4 (not small enough for large scores)": edit(
                SDPA, ("torch.finfo(scores.dtype).min", "-1e4")),
            "finfo.min fill, fully masked rows left uniform": edit(SDPA, (ZEROING, "")),
            "additive -inf mask, NaN of fully masked rows replaced after softmax (gradient stays NaN)": edit(
                SDPA, (MASK_FILL, f"        scores = scores + {MINUS_INF}\n"),
                (ZEROING, "    weights = torch.nan_to_num(weights, nan=0.0)\n")),
            "weights returned transposed (keys × queries)": edit(
                SDPA, ("return weights @ v, weights", "return weights @ v, weights.transpose(-2, -1)")),
            "calls torch's fused kernel for the output": edit(
                SDPA, ("return weights @ v, weights",
                       "return torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask), weights")),
            "scales the queries in place (modifies the caller's tensor)": edit(
                SDPA, (SCORES, "with torch.no_grad():\n        q.div_(math.sqrt(q.shape[-1]))\n"
                               "    scores = q @ k.transpose(-2, -1)")),
            "no input checks (mismatched widths are a RuntimeError, not a ValueError)": edit(
                SDPA, (INPUT_CHECKS, ""), (MASK_CHECKS, "        shape = torch.broadcast_shapes(scores.shape, mask.shape)\n")),
        },
        "visible": {
            "masked scores filled with -1e9 (overflows float16)": "-1e9",
        },
        "right": {
            "matmul, finfo.min fill, fully masked rows zeroed with where": _HEAD + '''
    s = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        s = s.masked_fill(~mask, torch.finfo(s.dtype).min)
    w = torch.softmax(s, dim=-1)
    if mask is not None:
        w = torch.where(mask.any(-1, keepdim=True), w, torch.zeros((), dtype=w.dtype))
    return w @ v, w
''',
            "einsum, -inf fill, softmax written out with a safe denominator": _HEAD + '''
    s = torch.einsum("...qd,...kd->...qk", q, k) * (1.0 / math.sqrt(q.shape[-1]))
    if mask is not None:
        s = s.masked_fill(~mask, float("-inf"))
    top = s.amax(dim=-1, keepdim=True).detach()
    top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
    e = torch.exp(s - top)
    total = e.sum(dim=-1, keepdim=True)
    w = e / torch.where(total > 0, total, torch.ones_like(total))
    return torch.einsum("...qk,...kv->...qv", w, v), w
''',
            "scale the queries first, exp times mask": _HEAD + '''
    s = (q / math.sqrt(q.shape[-1])) @ k.transpose(-2, -1)
    if mask is not None:
        s = s.masked_fill(~mask, torch.finfo(s.dtype).min)
    e = torch.exp(s - s.amax(dim=-1, keepdim=True).detach())
    if mask is not None:
        e = e * mask
    total = e.sum(dim=-1, keepdim=True)
    w = e / torch.where(total > 0, total, torch.ones_like(total))
    return w @ v, w
''',
            "-inf via masked_fill, NaN rows replaced (masked_fill zeroes their gradient)": _HEAD + '''
    s = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        s = s.masked_fill(~mask, float("-inf"))
    w = torch.nan_to_num(torch.softmax(s, dim=-1), nan=0.0)
    return w @ v, w
''',
            "python loop over the queries": _HEAD + '''
    s = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    m = None
    if mask is not None:
        shape = torch.broadcast_shapes(s.shape, mask.shape)
        s, m = s.expand(shape), mask.expand(shape)
    rows = []
    for i in range(s.shape[-2]):
        row = s[..., i, :]
        if m is not None:
            allowed = m[..., i, :]
            row = torch.softmax(row.masked_fill(~allowed, torch.finfo(row.dtype).min), dim=-1)
            row = row * allowed.any(-1, keepdim=True)
        else:
            row = torch.softmax(row, dim=-1)
        rows.append(row)
    w = torch.stack(rows, dim=-2)
    return w @ v, w
''',
        },
    },
    "padding_mask": {
        "wrong": {
            "off by one (s <= length)": edit(PAD, ("[None, :] < lengths", "[None, :] <= lengths")),
            "inverted (True on the padding)": edit(PAD, ("[None, :] < lengths", "[None, :] >= lengths")),
            "0/1 integers instead of bools": edit(
                PAD, (PAD_OUT, "return (torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]).long()")),
            "transposed: (max_len, B)": edit(
                PAD, (PAD_OUT, "return torch.arange(max_len, device=lengths.device)[:, None] < lengths[None, :]")),
            "width from the longest sequence, not max_len": edit(
                PAD, (PAD_OUT, "width = int(lengths.max()) if lengths.numel() else 0\n"
                               "    return torch.arange(width, device=lengths.device)[None, :] < lengths[:, None]")),
            "no check that lengths fit in max_len": edit(
                PAD, ("lengths.min() < 0 or lengths.max() > max_len", "lengths.min() < 0")),
        },
        "right": {
            "arange compared with the lengths": _PADDING_HEAD + '''
    return torch.arange(max_len, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)
''',
            "cumulative sum of ones": _PADDING_HEAD + '''
    ones = torch.ones(lengths.shape[0], max_len, dtype=torch.long)
    return ones.cumsum(dim=-1) <= lengths.long()[:, None]
''',
            "python loops": _PADDING_HEAD + '''
    rows = [[s < n for s in range(max_len)] for n in lengths.tolist()]
    if not rows:
        return torch.zeros(0, max_len, dtype=torch.bool)
    return torch.tensor(rows, dtype=torch.bool).reshape(len(rows), max_len)
''',
        },
    },
    "causal_mask": {
        "wrong": {
            "diagonal excluded (a position cannot see itself)": edit(CAUSAL, (".tril()", ".tril(-1)")),
            "upper triangle (torch.nn's True = blocked convention)": edit(CAUSAL, (".tril()", ".triu(1)")),
            "upper triangle with the diagonal": edit(CAUSAL, (".tril()", ".triu()")),
            "float mask with -inf (torch's generate_square_subsequent_mask)": edit(
                CAUSAL, (CAUSAL_OUT, "torch.nn.Transformer.generate_square_subsequent_mask(size, device=device)")),
            "0/1 floats instead of bools": edit(CAUSAL, ("dtype=torch.bool, device=device", "device=device")),
            "ignores the device argument": edit(CAUSAL, (", device=device)", ")")),
        },
        "right": {
            "tril of ones": _CAUSAL_HEAD + '''
    return torch.tril(torch.ones(size, size, dtype=torch.bool, device=device))
''',
            "compare row and column indices": _CAUSAL_HEAD + '''
    i = torch.arange(size, device=device)
    return i[:, None] >= i[None, :]
''',
            "python loops, then to the device": _CAUSAL_HEAD + '''
    rows = [[j <= i for j in range(size)] for i in range(size)]
    mask = torch.tensor(rows, dtype=torch.bool).reshape(size, size)
    return mask if device is None else mask.to(device)
''',
        },
    },
}
