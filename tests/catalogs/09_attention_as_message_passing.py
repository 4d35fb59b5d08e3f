"""Wrong and correct versions of notebook 09's graded items (see qa/discrimination.py).

Each wrong version is a mistake a learner plausibly makes, written as an edit of the solution (qa/catalog.py); each
must fail at least one of the item's tests. Each correct version is a different but valid way to write the item;
each must pass all of them.
"""

from qa.catalog import edit, solutions

S = solutions("09_attention_as_message_passing")
GC, AA, SA = S["graph_conv"], S["attention_adjacency"], S["SelfAttention2d"]
A_HAT = "    a_hat = torch.where(on_diagonal, torch.ones((), dtype=h.dtype, device=h.device), adj.to(h.dtype))\n"
DEGREE = "    inv_sqrt_deg = a_hat.sum(dim=-1).rsqrt()\n"
SYMMETRIC = "    normalised = inv_sqrt_deg[..., :, None] * a_hat * inv_sqrt_deg[..., None, :]\n"
GC_CHECKS = GC[GC.index("    if h.dim() not in (2, 3):"):GC.index("    n = h.shape[-2]")]
AA_MASKED = AA[AA.index("    scores = scores.masked_fill"):]
AA_MASK_CHECKS = AA[AA.index("    if mask.dtype != torch.bool:"):AA.index("    scores = scores.masked_fill")]
AA_BODY = AA[AA.index("    scores = (q @"):]
SA_MIXING = SA[SA.index("        keys = self.f(x)"):SA.index("        return self.gamma")]
SA_OUT = "out = (values @ weights.transpose(1, 2)).view(b, c, height, width)"


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
            "no self-loops (D^-1/2 A D^-1/2: a node forgets itself, isolated nodes divide by zero)": edit(
                GC, (A_HAT, "    a_hat = adj.to(h.dtype)\n")),
            "row normalisation D^-1 Â (mean of neighbours) instead of the symmetric one": edit(
                GC, (DEGREE + SYMMETRIC, "    normalised = a_hat / a_hat.sum(dim=-1, keepdim=True)\n")),
            "degrees counted without the self-loop": edit(
                GC, (DEGREE, "    inv_sqrt_deg = (adj.to(h.dtype) * ~on_diagonal).sum(dim=-1).clamp(min=1).rsqrt()\n")),
            "self-loops added as A + I (an existing self-loop counts twice)": edit(
                GC, (A_HAT, "    a_hat = adj.to(h.dtype) + on_diagonal.to(h.dtype)\n")),
            "no normalisation at all (sum of neighbours and self)": edit(GC, (DEGREE + SYMMETRIC, "    normalised = a_hat\n")),
            "degrees from column sums (wrong for directed or weighted-asymmetric graphs)": edit(
                GC, ("a_hat.sum(dim=-1)", "a_hat.sum(dim=-2)")),
            "edge weights dropped (adjacency turned into 0/1)": edit(GC, ("adj.to(h.dtype))", "(adj != 0).to(h.dtype))")),
            "normalised matrix transposed (messages flow i -> j)": edit(
                GC, ("return normalised @ (h @ weight)", "return normalised.transpose(-1, -2) @ (h @ weight)")),
            "no input checks (a mismatched weight is a RuntimeError, not a ValueError)": edit(GC, (GC_CHECKS, "")),
            "sets the diagonal in place (modifies the caller's adjacency)": edit(GC, (A_HAT, """\
    if adj.dtype == h.dtype:
        with torch.no_grad():
            adj.diagonal(dim1=-2, dim2=-1).fill_(1.0)
        a_hat = adj
    else:
    """ + A_HAT)),
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
            "missing the 1/sqrt(d) scale": edit(AA, ("(q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])", "q @ k.transpose(-2, -1)")),
            "divides by d instead of sqrt(d)": edit(AA, ("math.sqrt(q.shape[-1])", "q.shape[-1]")),
            "scales by sqrt(N_k), the number of keys, instead of sqrt(d)": edit(
                AA, ("math.sqrt(q.shape[-1])", "math.sqrt(k.shape[-2])")),
            "softmax over the queries (dim=-2) instead of the keys": edit(
                AA, ("        return torch.softmax(scores, dim=-1)\n", "        return torch.softmax(scores, dim=-2)\n"),
                ("return torch.softmax(scores, dim=-1).masked_fill", "return torch.softmax(scores, dim=-2).masked_fill")),
            "mask ignored": edit(AA, (AA_MASKED, "    return torch.softmax(scores, dim=-1)\n")),
            "mask inverted (True treated as blocked, as in nn.MultiheadAttention)": edit(
                AA, ("scores.masked_fill(~mask,", "scores.masked_fill(mask,"), (".masked_fill(~mask, 0.0)", ".masked_fill(mask, 0.0)")),
            "-inf fill without care: NaN on a node with no edges": edit(
                AA, ("torch.finfo(scores.dtype).min", 'float("-inf")'), (".masked_fill(~mask, 0.0)", "")),
            "finfo.min fill but empty rows left uniform instead of zero": edit(AA, (".masked_fill(~mask, 0.0)", "")),
            "literal -1e9 fill (overflows float16)": edit(AA, ("torch.finfo(scores.dtype).min", "-1e9")),
            "weights read off the built-in attention (values = identity)": "import torch.nn.functional as _F\n" + edit(AA, (AA_BODY, """\
    eye = torch.eye(k.shape[-2], dtype=q.dtype, device=q.device).expand(*k.shape[:-1], k.shape[-2])
    w = _F.scaled_dot_product_attention(q, k, eye, attn_mask=mask)
    return torch.nan_to_num(w) if mask is None else torch.nan_to_num(w).masked_fill(~mask, 0.0)
""")),
            "no input checks (mismatched d is a RuntimeError, not a ValueError)": edit(
                AA, ("    check_queries_and_keys(q, k)  # given\n", ""), (AA_MASK_CHECKS, "")),
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
            "gamma starts at 1 (the block is not the identity at first)": edit(SA, ("torch.zeros(1)", "torch.ones(1)")),
            "softmax over the queries (columns sum to 1)": edit(
                SA, ("torch.softmax(queries @ keys, dim=-1)", "torch.softmax(queries @ keys, dim=1)")),
            "attention over channels instead of positions (C x C weights)": edit(SA, (SA_MIXING, """\
        values = self.h(x).flatten(2)
        weights = torch.softmax(values @ values.transpose(1, 2), dim=-1)
        out = (weights @ values).view(b, c, height, width)
""")),
            "residual dropped (y = gamma * o)": edit(SA, ("return self.gamma * out + x, weights", "return self.gamma * out, weights")),
            "scores divided by sqrt(C/8) (SAGAN does not scale)": edit(
                SA, ("torch.softmax(queries @ keys, dim=-1)", "torch.softmax(queries @ keys / queries.shape[-1] ** 0.5, dim=-1)")),
            "weights not transposed when mixing values (o_p uses column p)": edit(
                SA, ("values @ weights.transpose(1, 2)", "values @ weights")),
            "f and g keep all C channels": edit(SA, ("reduced = max(channels // 8, 1)", "reduced = channels")),
            "channels // 8 without a floor of 1 (breaks for fewer than 8 channels)": edit(
                SA, ("reduced = max(channels // 8, 1)", "reduced = channels // 8")),
            "gamma a plain zero tensor, not a learned parameter": edit(
                SA, ("self.gamma = nn.Parameter(torch.zeros(1))", "self.register_buffer('gamma', torch.zeros(1))")),
            "positions flattened column-major (x.transpose(2, 3))": edit(SA, (SA_MIXING, """\
        xt = x.transpose(2, 3)
        keys = self.f(xt).flatten(2)
        queries = self.g(xt).flatten(2).transpose(1, 2)
        values = self.h(xt).flatten(2)
        weights = torch.softmax(queries @ keys, dim=-1)
        out = (values @ weights.transpose(1, 2)).view(b, c, width, height).transpose(2, 3)
""")),
            "f and g swapped (f(x) as the queries, normalised over g's positions)": edit(
                SA, ("keys = self.f(x)", "keys = self.g(x)"), ("queries = self.g(x)", "queries = self.f(x)")),
            "built-in scaled_dot_product_attention with scale=1": "import torch.nn.functional as _F\n" + edit(
                SA, (SA_OUT, "out = _F.scaled_dot_product_attention(queries, keys.transpose(1, 2), values.transpose(1, 2), "
                             "scale=1.0).transpose(1, 2).reshape(b, c, height, width)")),
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
