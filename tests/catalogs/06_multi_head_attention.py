"""Wrong and correct versions of notebook 06's graded items (see qa/discrimination.py).

Each wrong version is a mistake a learner plausibly makes, written as an edit of the solution (qa/catalog.py); each
must fail at least one of the item's tests. Each correct version is a different but valid way to write the item;
each must pass all of them.
"""

from qa.catalog import edit, solutions

S = solutions("06_multi_head_attention")
SPLIT, MERGE, MHA = S["split_heads"], S["merge_heads"], S["MultiHeadAttention"]
SPLIT_OUT = "return x.view(B, S, num_heads, D // num_heads).transpose(1, 2)"
SPLIT_CHECKS = SPLIT[SPLIT.index("    if x.dim() != 3"):SPLIT.index("    B, S, D = x.shape")]
MERGE_OUT = "return x.transpose(1, 2).reshape(B, S, h * d)"
SCALED = "(q * d ** -0.5) @ k.transpose(-2, -1)"
MERGED = "out = (self.dropout(weights) @ v).transpose(1, 2).reshape(B, T, D)"


_SPLIT_HEAD = '''
import torch
def split_heads(x, num_heads):
    if x.dim() != 3:
        raise ValueError(f"need (B, S, D), got {tuple(x.shape)}")
    if num_heads < 1 or x.shape[-1] % num_heads:
        raise ValueError(f"num_heads={num_heads} does not divide D={x.shape[-1]}")
    B, S, D = x.shape
    d = D // num_heads
'''

_MERGE_HEAD = '''
import torch
def merge_heads(x):
    if x.dim() != 4:
        raise ValueError(f"need (B, h, S, d), got {tuple(x.shape)}")
    B, h, S, d = x.shape
'''

# A MultiHeadAttention with named places where the versions below differ.
_MHA = '''
import math
import torch
from torch import nn


class MultiHeadAttention(nn.Module):
    def __init__(self, d_model, num_heads, dropout=0.0):
        super().__init__()
        if {heads_check}:
            raise ValueError(f"num_heads={{num_heads}} must divide d_model={{d_model}}")
        self.d_model, self.num_heads, self.head_dim = d_model, num_heads, d_model // num_heads
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model)
        self.v_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, query, key, value, mask=None):
        shapes = f"query {{tuple(query.shape)}}, key {{tuple(key.shape)}}, value {{tuple(value.shape)}}"
        if query.dim() != 3 or key.dim() != 3 or value.dim() != 3:
            raise ValueError(f"need (B, T, D): {{shapes}}")
        if query.shape[-1] != self.d_model or key.shape[-1] != self.d_model or value.shape[-1] != self.d_model:
            raise ValueError(f"last dim must be {{self.d_model}}: {{shapes}}")
        if not query.shape[0] == key.shape[0] == value.shape[0]:
            raise ValueError(f"batch sizes differ: {{shapes}}")
        if key.shape[1] != value.shape[1]:
            raise ValueError(f"key and value lengths differ: {{shapes}}")
        B, T, D = query.shape
        S, h, d = key.shape[1], self.num_heads, self.head_dim
        if mask is not None and (mask.dtype != torch.bool or mask.dim() < 2 or mask.shape[-1] != S
                                 or mask.shape[-2] not in (1, T)):
            raise ValueError(f"mask must be bool with last dims (T_q or 1, T_k), got {{mask.dtype}} {{tuple(mask.shape)}}")
        q = {split_q}
        k = self.k_proj(key).view(B, S, h, d).transpose(1, 2)
        v = {split_v}
        scores = q @ k.transpose(-2, -1) / {scale}
        if mask is not None:
            scores = scores.masked_fill({blocked}, torch.finfo(scores.dtype).min)
        weights = torch.softmax(scores, dim={softmax_dim})
        if mask is not None:
            weights = weights.masked_fill(~mask.any(dim=-1, keepdim=True), 0.0)
        attended = {dropout}(weights) @ v
        out = {merge}
        return {output}, {returned_weights}
'''

_DEFAULTS = {
    "heads_check": "num_heads < 1 or d_model % num_heads",
    "split_q": "self.q_proj(query).view(B, T, h, d).transpose(1, 2)",
    "split_v": "self.v_proj(value).view(B, S, h, d).transpose(1, 2)",
    "scale": "math.sqrt(d)",
    "blocked": "~mask",
    "softmax_dim": "-1",
    "dropout": "self.dropout",
    "merge": "attended.transpose(1, 2).reshape(B, T, D)",
    "output": "self.out_proj(out)",
    "returned_weights": "weights",
}


def _mha(**changes: str) -> str:
    return _MHA.format(**{**_DEFAULTS, **changes})


CATALOG = {
    "split_heads": {
        "wrong": {
            "reshaped straight to (B, h, S, d) without a transpose": edit(
                SPLIT, (SPLIT_OUT, "return x.reshape(B, num_heads, S, D // num_heads)")),
            "heads interleaved (head i takes columns i, i+h, i+2h, …)": edit(
                SPLIT, (SPLIT_OUT, "return x.view(B, S, D // num_heads, num_heads).permute(0, 3, 1, 2)")),
            "head axis left after the sequence axis: (B, S, h, d)": edit(SPLIT, (".transpose(1, 2)", "")),
            "split along the sequence instead of the features": edit(
                SPLIT, (SPLIT_OUT, "return torch.stack(x.chunk(num_heads, dim=1), dim=1).reshape(B, num_heads, S, D // num_heads)")),
            "no check that the heads divide D (RuntimeError instead of ValueError)": edit(SPLIT, (SPLIT_CHECKS, "")),
        },
        "right": {
            "view, then transpose": _SPLIT_HEAD + '''
    return x.view(B, S, num_heads, d).transpose(1, 2)
''',
            "chunk the features and stack the chunks": _SPLIT_HEAD + '''
    return torch.stack(x.chunk(num_heads, dim=-1), dim=1)
''',
            "unflatten, then permute": _SPLIT_HEAD + '''
    return x.unflatten(-1, (num_heads, d)).permute(0, 2, 1, 3)
''',
            "python loop over the heads": _SPLIT_HEAD + '''
    return torch.stack([x[:, :, i * d:(i + 1) * d] for i in range(num_heads)], dim=1)
''',
        },
    },
    "merge_heads": {
        "wrong": {
            "reshaped without moving the head axis back": edit(MERGE, (".transpose(1, 2).reshape", ".reshape")),
            "heads interleaved in the output": edit(MERGE, (MERGE_OUT, "return x.permute(0, 2, 3, 1).reshape(B, S, h * d)")),
            "heads averaged (the 'ensemble' reading)": edit(MERGE, (MERGE_OUT, "return x.mean(dim=1).repeat(1, 1, h)")),
            "heads summed into one d-wide vector": edit(MERGE, (MERGE_OUT, "return x.sum(dim=1)")),
            "heads concatenated along the sequence axis": edit(MERGE, (MERGE_OUT, "return torch.cat(x.unbind(dim=1), dim=1)")),
        },
        "right": {
            "transpose, then reshape": _MERGE_HEAD + '''
    return x.transpose(1, 2).reshape(B, S, h * d)
''',
            "concatenate the heads": _MERGE_HEAD + '''
    return torch.cat(x.unbind(dim=1), dim=-1)
''',
            "permute, contiguous, view": _MERGE_HEAD + '''
    return x.permute(0, 2, 1, 3).contiguous().view(B, S, h * d)
''',
        },
    },
    "MultiHeadAttention": {
        "wrong": {
            "no scale": edit(MHA, (SCALED, "q @ k.transpose(-2, -1)")),
            "scaled by sqrt(d_model) instead of sqrt(head_dim)": edit(MHA, ("q * d ** -0.5", "q * D ** -0.5")),
            "scaled by head_dim instead of its square root": edit(MHA, ("q * d ** -0.5", "q / d")),
            "heads split along the wrong axis (view to (B, h, T, d))": edit(
                MHA, ("self.q_proj(query).view(B, T, h, d).transpose(1, 2)", "self.q_proj(query).view(B, h, T, d)")),
            "heads interleaved in the split of the values": edit(
                MHA, ("self.v_proj(value).view(B, S, h, d).transpose(1, 2)", "self.v_proj(value).view(B, S, d, h).permute(0, 3, 1, 2)")),
            "W_O dropped (heads concatenated, no out_proj)": edit(MHA, ("return self.out_proj(out), weights", "return out, weights")),
            "softmax over the queries": edit(MHA, ("torch.softmax(scores, dim=-1)", "torch.softmax(scores, dim=-2)")),
            "mask ignored": edit(MHA, ("            scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)\n", "")),
            "mask inverted (torch.nn's True = blocked)": edit(
                MHA, ("scores.masked_fill(~mask, torch.finfo", "scores.masked_fill(mask, torch.finfo")),
            "merge without moving the head axis back": edit(MHA, (MERGED, MERGED.replace(".transpose(1, 2).reshape", ".reshape"))),
            "weights averaged over the heads": edit(
                MHA, ("return self.out_proj(out), weights", "return self.out_proj(out), weights.mean(dim=1)")),
            "values projected with k_proj": edit(MHA, ("self.v_proj(value)", "self.k_proj(value)")),
            "queries projected from the key input (self-attention only works)": edit(
                MHA, ("self.q_proj(query).view(B, T, h, d)", "self.q_proj(key).view(B, S, h, d)")),
            "dropout applied in eval mode too": edit(
                MHA, ("self.dropout(weights)", "torch.nn.functional.dropout(weights, self.dropout.p, training=True)")),
            "dropout never applied": edit(MHA, ("self.dropout(weights)", "weights")),
            "heads that don't divide d_model accepted": edit(
                MHA, ("if num_heads < 1 or d_model % num_heads:", "if num_heads < 1:")),
            "calls torch's fused attention for the output": edit(
                MHA, (MERGED, "out = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)"
                              ".transpose(1, 2).reshape(B, T, D)")),
        },
        "visible": {
            "scaled by sqrt(d_model) instead of sqrt(head_dim)": "width of one head",
        },
        "right": {
            "matmul with the scale on the scores": _mha(),
            "projection by einsum with the Linear's weight, queries scaled first": _mha(
                split_q="(torch.einsum('btf,ef->bte', query, self.q_proj.weight) + self.q_proj.bias)"
                        ".view(B, T, h, d).transpose(1, 2) / math.sqrt(d)",
                scale="1.0",
                merge="torch.einsum('bhtd->bthd', attended).reshape(B, T, D)"),
            "python loop over the heads": '''
import math
import torch
from torch import nn


class MultiHeadAttention(nn.Module):
    def __init__(self, d_model, num_heads, dropout=0.0):
        super().__init__()
        if num_heads < 1 or d_model % num_heads:
            raise ValueError(f"num_heads={num_heads} must divide d_model={d_model}")
        self.d_model, self.num_heads, self.head_dim = d_model, num_heads, d_model // num_heads
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model)
        self.v_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)
        self.drop = dropout

    def forward(self, query, key, value, mask=None):
        for t in (query, key, value):
            if t.dim() != 3 or t.shape[-1] != self.d_model:
                raise ValueError(f"expected (B, T, {self.d_model}), got {tuple(t.shape)}")
        if not (query.shape[0] == key.shape[0] == value.shape[0]) or key.shape[1] != value.shape[1]:
            raise ValueError(f"shapes disagree: {tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)}")
        B, T, _ = query.shape
        S, d = key.shape[1], self.head_dim
        if mask is not None:
            if mask.dtype != torch.bool or mask.dim() < 2 or mask.shape[-2:] not in ((T, S), (1, S)):
                raise ValueError(f"mask must be bool, last dims (T_q or 1, T_k); got {mask.dtype} {tuple(mask.shape)}")
        Q, K, V = self.q_proj(query), self.k_proj(key), self.v_proj(value)
        if mask is not None:
            mask = mask.expand(B, self.num_heads, T, S)
        outs, all_weights = [], []
        for i in range(self.num_heads):
            cols = slice(i * d, (i + 1) * d)
            s = torch.einsum("btd,bsd->bts", Q[..., cols], K[..., cols]) / math.sqrt(d)
            if mask is not None:
                m = mask[:, i]
                s = s.masked_fill(~m, float("-inf"))
                top = s.amax(-1, keepdim=True).detach()
                e = torch.exp(s - torch.where(torch.isfinite(top), top, torch.zeros_like(top)))
            else:
                e = torch.exp(s - s.amax(-1, keepdim=True).detach())
            total = e.sum(-1, keepdim=True)
            w = e / torch.where(total > 0, total, torch.ones_like(total))
            all_weights.append(w)
            w = torch.nn.functional.dropout(w, self.drop, training=self.training)
            outs.append(w @ V[..., cols])
        return self.out_proj(torch.cat(outs, dim=-1)), torch.stack(all_weights, dim=1)
''',
        },
    },
}
