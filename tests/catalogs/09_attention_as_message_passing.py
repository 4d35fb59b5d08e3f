"""Wrong and correct versions of notebook 09's graded items (see qa/discrimination.py).

Each wrong version is a mistake a learner plausibly makes; each must fail at least one of the item's tests.
Each correct version is a different but valid way to write the item; each must pass all of them.
"""

# Input checks shared by the graph_conv versions that get them right.
_GC_CHECKS = '''
    if h.dim() not in (2, 3):
        raise ValueError(f"h must be 2-D or 3-D, got {tuple(h.shape)}")
    if adj.dim() not in (2, 3) or adj.shape[-1] != adj.shape[-2]:
        raise ValueError(f"adj must be square, got {tuple(adj.shape)}")
    if adj.shape[-1] != h.shape[-2]:
        raise ValueError(f"adj {tuple(adj.shape)} vs h {tuple(h.shape)}")
    if adj.dim() == 3 and (h.dim() != 3 or adj.shape[0] != h.shape[0]):
        raise ValueError(f"batch of adj {tuple(adj.shape)} vs h {tuple(h.shape)}")
    if weight.dim() != 2 or weight.shape[0] != h.shape[-1]:
        raise ValueError(f"weight {tuple(weight.shape)} vs h {tuple(h.shape)}")
    n = h.shape[-2]
    eye = torch.eye(n, dtype=torch.bool, device=h.device)
'''

# Input checks shared by the attention_adjacency versions.
_AA_CHECKS = '''
    if q.dim() < 2 or k.dim() < 2:
        raise ValueError(f"q {tuple(q.shape)} k {tuple(k.shape)}")
    if q.shape[-1] != k.shape[-1] or q.shape[:-2] != k.shape[:-2]:
        raise ValueError(f"q {tuple(q.shape)} and k {tuple(k.shape)} do not match")
    if mask is not None:
        if mask.dtype != torch.bool:
            raise ValueError(f"mask must be bool, got {mask.dtype}")
        ok = mask.dim() >= 2 and mask.shape[-1] == k.shape[-2] and mask.shape[-2] in (1, q.shape[-2])
        if ok:
            try:
                ok = torch.broadcast_shapes(mask.shape[:-2], q.shape[:-2]) == q.shape[:-2]
            except RuntimeError:
                ok = False
        if not ok:
            raise ValueError(f"mask {tuple(mask.shape)} does not fit q {tuple(q.shape)} and k {tuple(k.shape)}")
    d = q.shape[-1]
'''

# SelfAttention2d pieces: a correct __init__ and the input check.
_SA_INIT = '''
import torch.nn as nn
class SelfAttention2d(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.channels = channels
        r = max(channels // 8, 1)
        self.f = nn.Conv2d(channels, r, kernel_size=1)
        self.g = nn.Conv2d(channels, r, kernel_size=1)
        self.h = nn.Conv2d(channels, channels, kernel_size=1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise ValueError(f"x must be (B, {self.channels}, H, W), got {tuple(x.shape)}")
        b, c, hh, ww = x.shape
'''

CATALOG = {
    "graph_conv": {
        "wrong": {
            "no self-loops (D^-1/2 A D^-1/2: a node forgets itself, isolated nodes divide by zero)": '''
def graph_conv(h, adj, weight):''' + _GC_CHECKS + '''
    a = adj.to(h.dtype)
    s = a.sum(-1).rsqrt()
    return (s[..., :, None] * a * s[..., None, :]) @ (h @ weight)
''',
            "row normalisation D^-1 Â (mean of neighbours) instead of the symmetric one": '''
def graph_conv(h, adj, weight):''' + _GC_CHECKS + '''
    a = torch.where(eye, torch.ones((), dtype=h.dtype), adj.to(h.dtype))
    return (a / a.sum(-1, keepdim=True)) @ (h @ weight)
''',
            "degrees counted without the self-loop": '''
def graph_conv(h, adj, weight):''' + _GC_CHECKS + '''
    a = adj.to(h.dtype) * ~eye
    s = a.sum(-1).clamp(min=1).rsqrt()
    a_hat = a + eye.to(h.dtype)
    return (s[..., :, None] * a_hat * s[..., None, :]) @ (h @ weight)
''',
            "self-loops added as A + I (an existing self-loop counts twice)": '''
def graph_conv(h, adj, weight):''' + _GC_CHECKS + '''
    a = adj.to(h.dtype) + eye.to(h.dtype)
    s = a.sum(-1).rsqrt()
    return (s[..., :, None] * a * s[..., None, :]) @ (h @ weight)
''',
            "no normalisation at all (sum of neighbours and self)": '''
def graph_conv(h, adj, weight):''' + _GC_CHECKS + '''
    a = torch.where(eye, torch.ones((), dtype=h.dtype), adj.to(h.dtype))
    return a @ (h @ weight)
''',
            "degrees from column sums (wrong for directed or weighted-asymmetric graphs)": '''
def graph_conv(h, adj, weight):''' + _GC_CHECKS + '''
    a = torch.where(eye, torch.ones((), dtype=h.dtype), adj.to(h.dtype))
    s = a.sum(-2).rsqrt()
    return (s[..., :, None] * a * s[..., None, :]) @ (h @ weight)
''',
            "edge weights dropped (adjacency turned into 0/1)": '''
def graph_conv(h, adj, weight):''' + _GC_CHECKS + '''
    a = torch.where(eye, torch.ones((), dtype=h.dtype), (adj != 0).to(h.dtype))
    s = a.sum(-1).rsqrt()
    return (s[..., :, None] * a * s[..., None, :]) @ (h @ weight)
''',
            "normalised matrix transposed (messages flow i -> j)": '''
def graph_conv(h, adj, weight):''' + _GC_CHECKS + '''
    a = torch.where(eye, torch.ones((), dtype=h.dtype), adj.to(h.dtype))
    s = a.sum(-1).rsqrt()
    return (s[..., :, None] * a * s[..., None, :]).transpose(-1, -2) @ (h @ weight)
''',
            "no input checks (a mismatched weight is a RuntimeError, not a ValueError)": '''
def graph_conv(h, adj, weight):
    n = h.shape[-2]
    eye = torch.eye(n, dtype=torch.bool)
    a = torch.where(eye, torch.ones((), dtype=h.dtype), adj.to(h.dtype))
    s = a.sum(-1).rsqrt()
    return (s[..., :, None] * a * s[..., None, :]) @ (h @ weight)
''',
            "sets the diagonal in place (modifies the caller's adjacency)": '''
def graph_conv(h, adj, weight):''' + _GC_CHECKS + '''
    if adj.dtype == h.dtype:
        with torch.no_grad():
            adj.diagonal(dim1=-2, dim2=-1).fill_(1.0)
        a = adj
    else:
        a = torch.where(eye, torch.ones((), dtype=h.dtype), adj.to(h.dtype))
    s = a.sum(-1).rsqrt()
    return (s[..., :, None] * a * s[..., None, :]) @ (h @ weight)
''',
        },
        "right": {
            "matmul with a degree vector (clone and fill the diagonal)": '''
def graph_conv(h, adj, weight):''' + _GC_CHECKS + '''
    a = adj.to(h.dtype).clone()
    a.diagonal(dim1=-2, dim2=-1).fill_(1.0)
    d = a.sum(-1).pow(-0.5)
    return d.unsqueeze(-1) * (a @ (d.unsqueeze(-1) * (h @ weight)))
''',
            "einsum with diag_embed matrices": '''
def graph_conv(h, adj, weight):''' + _GC_CHECKS + '''
    a = adj.to(h.dtype) * ~eye + eye.to(h.dtype)
    d_inv_sqrt = torch.diag_embed(a.sum(-1) ** -0.5)
    norm = d_inv_sqrt @ a @ d_inv_sqrt
    if norm.dim() == 2:
        return torch.einsum("ij,...jf->...if", norm, torch.einsum("...jc,cf->...jf", h, weight))
    return torch.einsum("bij,bjf->bif", norm, torch.einsum("bjc,cf->bjf", h, weight))
''',
            "message passing written out: loop over graphs, nodes and neighbours": '''
def graph_conv(h, adj, weight):''' + _GC_CHECKS + '''
    hw = h @ weight
    batched = h.dim() == 3
    hs = hw if batched else hw[None]
    adjs = adj if adj.dim() == 3 else adj[None].expand(hs.shape[0], n, n)
    outs = []
    for b in range(hs.shape[0]):
        a = [[(1.0 if i == j else adjs[b, i, j].to(h.dtype)) for j in range(n)] for i in range(n)]
        deg = [sum(row) for row in a]
        rows = []
        for i in range(n):
            total = torch.zeros_like(hs[b, i])
            for j in range(n):  # every j, so that a zero weight still has a gradient (adding an edge)
                total = total + a[i][j] / (deg[i] * deg[j]) ** 0.5 * hs[b, j]
            rows.append(total)
        outs.append(torch.stack(rows))
    out = torch.stack(outs)
    return out if batched else out[0]
''',
        },
    },
    "attention_adjacency": {
        "wrong": {
            "missing the 1/sqrt(d) scale": '''
def attention_adjacency(q, k, mask=None):''' + _AA_CHECKS + '''
    s = q @ k.transpose(-2, -1)
    if mask is not None:
        s = s.masked_fill(~mask, torch.finfo(s.dtype).min)
    w = torch.softmax(s, dim=-1)
    return w if mask is None else w.masked_fill(~mask, 0.0)
''',
            "divides by d instead of sqrt(d)": '''
def attention_adjacency(q, k, mask=None):''' + _AA_CHECKS + '''
    s = q @ k.transpose(-2, -1) / d
    if mask is not None:
        s = s.masked_fill(~mask, torch.finfo(s.dtype).min)
    w = torch.softmax(s, dim=-1)
    return w if mask is None else w.masked_fill(~mask, 0.0)
''',
            "scales by sqrt(N_k), the number of keys, instead of sqrt(d)": '''
def attention_adjacency(q, k, mask=None):''' + _AA_CHECKS + '''
    s = q @ k.transpose(-2, -1) / k.shape[-2] ** 0.5
    if mask is not None:
        s = s.masked_fill(~mask, torch.finfo(s.dtype).min)
    w = torch.softmax(s, dim=-1)
    return w if mask is None else w.masked_fill(~mask, 0.0)
''',
            "softmax over the queries (dim=-2) instead of the keys": '''
def attention_adjacency(q, k, mask=None):''' + _AA_CHECKS + '''
    s = q @ k.transpose(-2, -1) / d ** 0.5
    if mask is not None:
        s = s.masked_fill(~mask, torch.finfo(s.dtype).min)
    w = torch.softmax(s, dim=-2)
    return w if mask is None else w.masked_fill(~mask, 0.0)
''',
            "mask ignored": '''
def attention_adjacency(q, k, mask=None):''' + _AA_CHECKS + '''
    return torch.softmax(q @ k.transpose(-2, -1) / d ** 0.5, dim=-1)
''',
            "mask inverted (True treated as blocked, as in nn.MultiheadAttention)": '''
def attention_adjacency(q, k, mask=None):''' + _AA_CHECKS + '''
    s = q @ k.transpose(-2, -1) / d ** 0.5
    if mask is not None:
        s = s.masked_fill(mask, torch.finfo(s.dtype).min)
    w = torch.softmax(s, dim=-1)
    return w if mask is None else w.masked_fill(mask, 0.0)
''',
            "-inf fill without care: NaN on a node with no edges": '''
def attention_adjacency(q, k, mask=None):''' + _AA_CHECKS + '''
    s = q @ k.transpose(-2, -1) / d ** 0.5
    if mask is not None:
        s = s.masked_fill(~mask, float("-inf"))
    return torch.softmax(s, dim=-1)
''',
            "finfo.min fill but empty rows left uniform instead of zero": '''
def attention_adjacency(q, k, mask=None):''' + _AA_CHECKS + '''
    s = q @ k.transpose(-2, -1) / d ** 0.5
    if mask is not None:
        s = s.masked_fill(~mask, torch.finfo(s.dtype).min)
    return torch.softmax(s, dim=-1)
''',
            "literal -1e9 fill (overflows float16)": '''
def attention_adjacency(q, k, mask=None):''' + _AA_CHECKS + '''
    s = q @ k.transpose(-2, -1) / d ** 0.5
    if mask is not None:
        s = s.masked_fill(~mask, -1e9)
    w = torch.softmax(s, dim=-1)
    return w if mask is None else w.masked_fill(~mask, 0.0)
''',
            "weights read off the built-in attention (values = identity)": '''
import torch.nn.functional as _F
def attention_adjacency(q, k, mask=None):''' + _AA_CHECKS + '''
    eye = torch.eye(k.shape[-2], dtype=q.dtype).expand(*k.shape[:-1], k.shape[-2])
    w = _F.scaled_dot_product_attention(q, k, eye, attn_mask=mask)
    return torch.nan_to_num(w) if mask is None else torch.nan_to_num(w).masked_fill(~mask, 0.0)
''',
            "no input checks (mismatched d is a RuntimeError, not a ValueError)": '''
def attention_adjacency(q, k, mask=None):
    s = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5
    if mask is not None:
        s = s.masked_fill(~mask, torch.finfo(s.dtype).min)
    w = torch.softmax(s, dim=-1)
    return w if mask is None else w.masked_fill(~mask, 0.0)
''',
        },
        "visible": {
            "finfo.min fill but empty rows left uniform instead of zero": "no allowed key",
        },
        "right": {
            "einsum and a hand-written stable softmax": '''
def attention_adjacency(q, k, mask=None):''' + _AA_CHECKS + '''
    s = torch.einsum("...id,...jd->...ij", q, k) / d ** 0.5
    if mask is None:
        mask = torch.ones(s.shape[-2:], dtype=torch.bool, device=s.device)
    allowed = mask.expand(s.shape)
    s = torch.where(allowed, s, torch.full_like(s, float("-inf")))
    top = s.amax(dim=-1, keepdim=True)
    top = torch.where(torch.isfinite(top), top, torch.zeros_like(top)).detach()
    e = torch.where(allowed, torch.exp(s - top), torch.zeros_like(s))
    total = e.sum(dim=-1, keepdim=True)
    return e / torch.where(total > 0, total, torch.ones_like(total))
''',
            "matmul, -inf fill, NaN rows replaced by zeros with torch.where": '''
import math as _math
def attention_adjacency(q, k, mask=None):''' + _AA_CHECKS + '''
    s = torch.matmul(q, k.transpose(-2, -1)) * (1.0 / _math.sqrt(d))
    if mask is None:
        return torch.softmax(s, dim=-1)
    any_allowed = mask.any(dim=-1, keepdim=True)
    safe_mask = mask | ~any_allowed  # empty rows: allow everything, zero them afterwards
    w = torch.softmax(s.masked_fill(~safe_mask, float("-inf")), dim=-1)
    return torch.where(mask, w, torch.zeros_like(w))
''',
            "loop over query rows": '''
def attention_adjacency(q, k, mask=None):''' + _AA_CHECKS + '''
    s = (q @ k.transpose(-2, -1)) / d ** 0.5
    allowed = torch.ones_like(s, dtype=torch.bool) if mask is None else mask.expand(s.shape)
    rows = []
    for i in range(s.shape[-2]):
        row, ok = s[..., i, :], allowed[..., i, :]
        filled = row.masked_fill(~ok, torch.finfo(row.dtype).min)
        e = torch.exp(filled - filled.amax(dim=-1, keepdim=True)) * ok
        total = e.sum(dim=-1, keepdim=True)
        rows.append(e / total.clamp(min=torch.finfo(row.dtype).tiny))
    return torch.stack(rows, dim=-2)
''',
        },
    },
    "SelfAttention2d": {
        "wrong": {
            "gamma starts at 1 (the block is not the identity at first)": _SA_INIT.replace(
                "torch.zeros(1)", "torch.ones(1)") + '''
        q = self.g(x).flatten(2).transpose(1, 2)
        w = torch.softmax(q @ self.f(x).flatten(2), dim=-1)
        o = (self.h(x).flatten(2) @ w.transpose(1, 2)).view(b, c, hh, ww)
        return self.gamma * o + x, w
''',
            "softmax over the queries (columns sum to 1)": _SA_INIT + '''
        q = self.g(x).flatten(2).transpose(1, 2)
        w = torch.softmax(q @ self.f(x).flatten(2), dim=1)
        o = (self.h(x).flatten(2) @ w.transpose(1, 2)).view(b, c, hh, ww)
        return self.gamma * o + x, w
''',
            "attention over channels instead of positions (C x C weights)": _SA_INIT + '''
        v = self.h(x).flatten(2)
        w = torch.softmax(v @ v.transpose(1, 2), dim=-1)
        o = (w @ v).view(b, c, hh, ww)
        return self.gamma * o + x, w
''',
            "residual dropped (y = gamma * o)": _SA_INIT + '''
        q = self.g(x).flatten(2).transpose(1, 2)
        w = torch.softmax(q @ self.f(x).flatten(2), dim=-1)
        o = (self.h(x).flatten(2) @ w.transpose(1, 2)).view(b, c, hh, ww)
        return self.gamma * o, w
''',
            "scores divided by sqrt(C/8) (SAGAN does not scale)": _SA_INIT + '''
        q = self.g(x).flatten(2).transpose(1, 2)
        w = torch.softmax(q @ self.f(x).flatten(2) / q.shape[-1] ** 0.5, dim=-1)
        o = (self.h(x).flatten(2) @ w.transpose(1, 2)).view(b, c, hh, ww)
        return self.gamma * o + x, w
''',
            "weights not transposed when mixing values (o_p uses column p)": _SA_INIT + '''
        q = self.g(x).flatten(2).transpose(1, 2)
        w = torch.softmax(q @ self.f(x).flatten(2), dim=-1)
        o = (self.h(x).flatten(2) @ w).view(b, c, hh, ww)
        return self.gamma * o + x, w
''',
            "f and g keep all C channels": _SA_INIT.replace("r = max(channels // 8, 1)", "r = channels") + '''
        q = self.g(x).flatten(2).transpose(1, 2)
        w = torch.softmax(q @ self.f(x).flatten(2), dim=-1)
        o = (self.h(x).flatten(2) @ w.transpose(1, 2)).view(b, c, hh, ww)
        return self.gamma * o + x, w
''',
            "channels // 8 without a floor of 1 (breaks for fewer than 8 channels)":
                _SA_INIT.replace("r = max(channels // 8, 1)", "r = channels // 8") + '''
        q = self.g(x).flatten(2).transpose(1, 2)
        w = torch.softmax(q @ self.f(x).flatten(2), dim=-1)
        o = (self.h(x).flatten(2) @ w.transpose(1, 2)).view(b, c, hh, ww)
        return self.gamma * o + x, w
''',
            "gamma a plain zero tensor, not a learned parameter": _SA_INIT.replace(
                "self.gamma = nn.Parameter(torch.zeros(1))", "self.register_buffer('gamma', torch.zeros(1))") + '''
        q = self.g(x).flatten(2).transpose(1, 2)
        w = torch.softmax(q @ self.f(x).flatten(2), dim=-1)
        o = (self.h(x).flatten(2) @ w.transpose(1, 2)).view(b, c, hh, ww)
        return self.gamma * o + x, w
''',
            "positions flattened column-major (x.transpose(2, 3))": _SA_INIT + '''
        xt = x.transpose(2, 3)
        q = self.g(xt).flatten(2).transpose(1, 2)
        w = torch.softmax(q @ self.f(xt).flatten(2), dim=-1)
        o = (self.h(xt).flatten(2) @ w.transpose(1, 2)).view(b, c, ww, hh).transpose(2, 3)
        return self.gamma * o + x, w
''',
            "f and g swapped (f(x) as the queries, normalised over g's positions)": _SA_INIT + '''
        q = self.f(x).flatten(2).transpose(1, 2)
        w = torch.softmax(q @ self.g(x).flatten(2), dim=-1)
        o = (self.h(x).flatten(2) @ w.transpose(1, 2)).view(b, c, hh, ww)
        return self.gamma * o + x, w
''',
            "built-in scaled_dot_product_attention with scale=1": _SA_INIT + '''
        import torch.nn.functional as _F
        t = lambda z: z.flatten(2).transpose(1, 2)
        q, k, v = t(self.g(x)), t(self.f(x)), t(self.h(x))
        w = torch.softmax(q @ k.transpose(1, 2), dim=-1)
        o = _F.scaled_dot_product_attention(q, k, v, scale=1.0).transpose(1, 2).reshape(b, c, hh, ww)
        return self.gamma * o + x, w
''',
        },
        "visible": {
            "scores divided by sqrt(C/8) (SAGAN does not scale)": "does not scale",
            "f and g swapped (f(x) as the queries, normalised over g's positions)": "swaps the roles",
        },
        "right": {
            "einsum over positions": _SA_INIT + '''
        f = self.f(x).flatten(2)
        g = self.g(x).flatten(2)
        v = self.h(x).flatten(2)
        w = torch.softmax(torch.einsum("bci,bcj->bji", f, g), dim=-1)  # beta[j, i] = softmax over i of s_ij
        o = torch.einsum("bji,bci->bcj", w, v).reshape(b, c, hh, ww)
        return x + self.gamma * o, w
''',
            "bmm on (B, HW, C) tokens, hand-written softmax": _SA_INIT + '''
        tokens = lambda z: z.reshape(b, z.shape[1], hh * ww).permute(0, 2, 1)
        q, k, v = tokens(self.g(x)), tokens(self.f(x)), tokens(self.h(x))
        s = torch.bmm(q, k.transpose(1, 2))
        e = torch.exp(s - s.amax(dim=-1, keepdim=True))
        w = e / e.sum(dim=-1, keepdim=True)
        o = torch.bmm(w, v).permute(0, 2, 1).reshape(b, c, hh, ww)
        return self.gamma * o + x, w
''',
            "loop over the batch with F.conv2d-free linear projections": _SA_INIT + '''
        ys, ws = [], []
        for i in range(b):
            flat = x[i].reshape(c, hh * ww)
            proj = lambda conv: conv.weight[:, :, 0, 0] @ flat + conv.bias[:, None]
            f, g, v = proj(self.f), proj(self.g), proj(self.h)
            w = torch.softmax(g.T @ f, dim=1)
            ys.append((self.gamma * (v @ w.T)).reshape(c, hh, ww) + x[i])
            ws.append(w)
        return torch.stack(ys), torch.stack(ws)
''',
        },
    },
}
