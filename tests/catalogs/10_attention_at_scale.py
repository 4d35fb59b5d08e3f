"""Wrong and correct versions of notebook 10's graded items (see qa/discrimination.py).

Each wrong version is a mistake a learner plausibly makes, written as an edit of the solution (qa/catalog.py); each
must fail at least one of the item's tests. Each correct version is a different but valid way to write the item;
each must pass all of them.
"""

from qa.catalog import edit, solutions

S = solutions("10_attention_at_scale")
ROPE, SAMPLE, CACHE, ONLINE = S["rotary_embedding"], S["sample_next"], S["KVCache"], S["online_softmax_attention"]

_ROPE_HEAD = '''
import torch
def rotary_embedding(x, positions):
    if x.dim() < 2 or x.shape[-1] % 2:
        raise ValueError(f"x must be (..., S, D) with D even, got {tuple(x.shape)}")
    if positions.dim() != 1 or len(positions) != x.shape[-2] or positions.is_floating_point():
        raise ValueError(f"positions must be integers of shape ({x.shape[-2]},), got {tuple(positions.shape)}")
    d = x.shape[-1]
    theta = 10000.0 ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    angle = positions.double()[:, None] * theta
'''

_SAMPLE_HEAD = '''
import torch
def sample_next(logits, temperature=1.0, top_k=None, generator=None):
    if logits.dim() != 2:
        raise ValueError(f"logits must be (B, V), got {tuple(logits.shape)}")
    if temperature < 0:
        raise ValueError(f"temperature {temperature} < 0")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k {top_k} < 1")
    if temperature == 0:
        return logits.argmax(dim=-1)
    scaled = logits.double() / temperature
'''

_CACHE_CHECK = '''
def _check(k, v, keys, values):
    if k.dim() != 4 or v.dim() != 4 or k.shape[:3] != v.shape[:3]:
        raise ValueError(f"k {tuple(k.shape)} and v {tuple(v.shape)} must be (B, H, S_new, d)")
    if keys is not None and (k.shape[:2] != keys.shape[:2] or k.shape[3] != keys.shape[3]
                             or v.shape[3] != values.shape[3]):
        raise ValueError(f"k {tuple(k.shape)}, v {tuple(v.shape)} do not fit {tuple(keys.shape)}, "
                         f"{tuple(values.shape)}")
'''

_ONLINE_HEAD = '''
import math
import torch
def online_softmax_attention(q, k, v, block_size, causal=False):
    if block_size < 1:
        raise ValueError(f"block_size {block_size} < 1")
    if (q.dim() < 2 or k.shape[:-2] != q.shape[:-2] or v.shape[:-2] != q.shape[:-2] or k.shape[-1] != q.shape[-1]
            or v.shape[-2] != k.shape[-2]):
        raise ValueError(f"q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)} do not fit")
    s_q, s_k = q.shape[-2], k.shape[-2]
'''

CATALOG = {
    "rotary_embedding": {
        "wrong": {
            "first half against the second half (GPT-NeoX's rotate_half), not interleaved pairs": edit(
                ROPE, ("even, odd = x[..., 0::2], x[..., 1::2]", "even, odd = x[..., : d // 2], x[..., d // 2 :]"),
                ("torch.stack([even * cos - odd * sin, even * sin + odd * cos], dim=-1).flatten(-2)",
                 "torch.cat([even * cos - odd * sin, even * sin + odd * cos], dim=-1)")),
            "θ_i = 10000^(-i/D): the exponent's factor 2 dropped": edit(
                ROPE, ("torch.arange(0, d, 2, dtype=torch.float64", "torch.arange(0, d // 2, dtype=torch.float64")),
            "rotates the other way (signs of sin swapped)": edit(
                ROPE, ("even * cos - odd * sin, even * sin + odd * cos", "even * cos + odd * sin, odd * cos - even * sin")),
            "positions ignored: rows rotated by 0 … S-1": edit(
                ROPE, ("positions.to(device=x.device, dtype=torch.float64)",
                       "torch.arange(x.shape[-2], device=x.device, dtype=torch.float64)")),
            "angles in float32 (positions in the thousands are off by 1e-4 rad)": edit(
                ROPE, ("torch.arange(0, d, 2, dtype=torch.float64", "torch.arange(0, d, 2, dtype=torch.float32"),
                ("positions.to(device=x.device, dtype=torch.float64)", "positions.to(device=x.device, dtype=torch.float32)")),
            "sin and cos swapped": edit(ROPE, ("cos, sin = torch.cos(angle)", "sin, cos = torch.cos(angle)")),
            "no check of the positions (float or wrong-length positions accepted)": edit(
                ROPE, ("positions.dim() != 1 or positions.shape[0] != x.shape[-2] or positions.dtype.is_floating_point",
                       "positions.dim() != 1")),
        },
        "visible": {
            "first half against the second half (GPT-NeoX's rotate_half), not interleaved pairs": "interleaved pairs",
        },
        "right": {
            "complex numbers: view_as_complex times polar": _ROPE_HEAD + '''
    turn = torch.polar(torch.ones_like(angle), angle)
    pairs = torch.view_as_complex(x.double().reshape(*x.shape[:-1], d // 2, 2).contiguous())
    return torch.view_as_real(pairs * turn).reshape(x.shape).to(x.dtype)
''',
            "2 × 2 rotation matrices with einsum": _ROPE_HEAD + '''
    c, s = torch.cos(angle), torch.sin(angle)
    rotation = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)  # (S, D/2, 2, 2)
    pairs = x.reshape(*x.shape[:-1], d // 2, 2)
    return torch.einsum("siab,...sib->...sia", rotation.to(x.dtype), pairs).reshape(x.shape)
''',
            "x·cos + rotate(x)·sin with interleaved cos and sin": _ROPE_HEAD + '''
    cos = torch.cos(angle).repeat_interleave(2, dim=-1).to(x.dtype)
    sin = torch.sin(angle).repeat_interleave(2, dim=-1).to(x.dtype)
    turned = torch.stack([-x[..., 1::2], x[..., 0::2]], dim=-1).flatten(-2)
    return x * cos + turned * sin
''',
        },
    },
    "sample_next": {
        "wrong": {
            "top-k keeps k + 1 tokens": edit(
                SAMPLE, ("scaled.topk(top_k, dim=-1).values[:, -1:]",
                         "scaled.topk(min(top_k + 1, scaled.shape[-1]), dim=-1).values[:, -1:]")),
            "temperature multiplies the logits": edit(SAMPLE, ("logits.double() / temperature", "logits.double() * temperature")),
            "the global random state instead of the generator": edit(SAMPLE, (", generator=generator)", ")")),
            "top_k ignored": edit(SAMPLE, ("scaled = scaled.masked_fill(scaled < kth, -math.inf)", "pass")),
            "top-k's threshold taken from the wrong end (keeps only the best token)": edit(
                SAMPLE, (".values[:, -1:]", ".values[:, :1]")),
            "softmax written without subtracting the maximum (overflows for large logits)": edit(
                SAMPLE, ("torch.softmax(scaled, dim=-1)", "torch.exp(scaled) / torch.exp(scaled).sum(-1, keepdim=True)")),
            "greedy picks the arg-min": edit(SAMPLE, ("return logits.argmax(dim=-1)", "return logits.argmin(dim=-1)")),
            "no check of the temperature": edit(SAMPLE, ("    if temperature < 0:\n", "    if False:\n")),
        },
        "right": {
            "the Gumbel-max trick": _SAMPLE_HEAD + '''
    if top_k is not None and top_k < scaled.shape[-1]:
        kth = scaled.topk(top_k, dim=-1).values[:, -1:]
        scaled = scaled.masked_fill(scaled < kth, float("-inf"))
    u = torch.rand(scaled.shape, generator=generator, dtype=torch.float64)
    return (scaled - torch.log(-torch.log(u))).argmax(dim=-1)
''',
            "inverse CDF on the cumulative sum": _SAMPLE_HEAD + '''
    if top_k is not None:
        order = scaled.argsort(dim=-1, descending=True)
        drop = order[:, top_k:]
        scaled = scaled.scatter(-1, drop, float("-inf"))
    p = torch.exp(scaled - scaled.amax(dim=-1, keepdim=True))
    cdf = (p / p.sum(dim=-1, keepdim=True)).cumsum(dim=-1)
    u = torch.rand(scaled.shape[0], 1, generator=generator, dtype=torch.float64)
    return (cdf < u).sum(dim=-1).clamp(max=scaled.shape[-1] - 1)
''',
            "sort, keep k, sample among them, map back": _SAMPLE_HEAD + '''
    values, order = scaled.sort(dim=-1, descending=True)
    k = values.shape[-1] if top_k is None else min(top_k, values.shape[-1])
    probs = torch.nn.functional.softmax(values[:, :k], dim=-1)
    chosen = torch.multinomial(probs, 1, generator=generator)
    return order.gather(-1, chosen).squeeze(-1)
''',
        },
    },
    "KVCache": {
        "wrong": {
            "appends on the heads axis (dim 1)": edit(
                CACHE, ("torch.cat([self._keys, k], dim=2)", "torch.cat([self._keys, k], dim=1)"),
                ("torch.cat([self._values, v], dim=2)", "torch.cat([self._values, v], dim=1)")),
            "new positions before the old": edit(
                CACHE, ("torch.cat([self._keys, k], dim=2)", "torch.cat([k, self._keys], dim=2)"),
                ("torch.cat([self._values, v], dim=2)", "torch.cat([v, self._values], dim=2)")),
            "keeps only the newest keys and values": edit(
                CACHE, ("self._keys = torch.cat([self._keys, k], dim=2)", "self._keys = k"),
                ("self._values = torch.cat([self._values, v], dim=2)", "self._values = v")),
            "len counts the batch (dim 0)": edit(CACHE, ("self._keys.shape[2]", "self._keys.shape[0]")),
            "the keys property returns the values": edit(CACHE, ("        return self._keys\n", "        return self._values\n")),
            "no check that new keys fit the cache (torch.cat's RuntimeError)": edit(
                CACHE, ("            if (k.shape[:2] != self._keys.shape[:2]", "            if False and (k.shape[:2] != self._keys.shape[:2]")),
        },
        "visible": {
            "appends on the heads axis (dim 1)": "on dim 2",
        },
        "right": {
            "a list of pieces, concatenated when asked": "import torch\n" + _CACHE_CHECK + '''
class KVCache:
    def __init__(self):
        self.pieces = []

    def _all(self, which):
        return torch.cat([p[which] for p in self.pieces], dim=2) if self.pieces else None

    def append(self, k, v):
        _check(k, v, self.keys, self.values)
        self.pieces.append((k, v))
        return self.keys, self.values

    @property
    def keys(self):
        return self._all(0)

    @property
    def values(self):
        return self._all(1)

    def __len__(self):
        return sum(p[0].shape[2] for p in self.pieces)
''',
            "a buffer that doubles when full": "import torch\n" + _CACHE_CHECK + '''
class KVCache:
    def __init__(self):
        self.k_buffer = self.v_buffer = None
        self.size = 0

    def append(self, k, v):
        _check(k, v, self.keys, self.values)
        n = k.shape[2]
        if self.k_buffer is None:
            self.k_buffer = k.new_zeros(*k.shape[:2], max(8, n), k.shape[3])
            self.v_buffer = v.new_zeros(*v.shape[:2], max(8, n), v.shape[3])
        while self.size + n > self.k_buffer.shape[2]:
            self.k_buffer = torch.cat([self.k_buffer, torch.zeros_like(self.k_buffer)], dim=2)
            self.v_buffer = torch.cat([self.v_buffer, torch.zeros_like(self.v_buffer)], dim=2)
        self.k_buffer[:, :, self.size:self.size + n] = k
        self.v_buffer[:, :, self.size:self.size + n] = v
        self.size += n
        return self.keys, self.values

    @property
    def keys(self):
        return None if self.k_buffer is None else self.k_buffer[:, :, :self.size]

    @property
    def values(self):
        return None if self.v_buffer is None else self.v_buffer[:, :, :self.size]

    def __len__(self):
        return self.size
''',
        },
    },
    "online_softmax_attention": {
        "wrong": {
            "max not subtracted (exp of the raw scores)": edit(
                ONLINE, ("torch.exp(scores - shift[..., None])", "torch.exp(scores)"),
                ("rescale = torch.exp(m - shift)", "rescale = torch.ones_like(m)")),
            "normaliser not rescaled when the max changes": edit(
                ONLINE, ("total = total * rescale + p.sum(dim=-1)", "total = total + p.sum(dim=-1)")),
            "output not rescaled when the max changes": edit(
                ONLINE, ("out = out * rescale[..., None] + p @ vb", "out = out + p @ vb")),
            "causal mask without the offset S_k - S_q (queries taken as the first positions)": edit(
                ONLINE, ("torch.arange(s_q, device=q.device)[:, None] + (s_k - s_q)",
                         "torch.arange(s_q, device=q.device)[:, None]")),
            "causal: key blocks past the last query's index skipped (wrong when S_k > S_q)": edit(
                ONLINE, ("for begin in range(0, s_k, block_size):", "for begin in range(0, s_q if causal else s_k, block_size):")),
            "each row's maximum from the whole S_q × S_k score matrix first": edit(
                ONLINE, ("m = torch.full(q.shape[:-1], -math.inf, dtype=work, device=q.device)",
                         "m = (qs @ k.to(work).transpose(-2, -1)).amax(dim=-1)  # every score at once")),
            "causal mask for all S_q × S_k pairs built once, sliced per block": edit(
                ONLINE, ("  # the last key each query may see\n",
                         "\n    blocked = torch.arange(s_k, device=q.device)[None, :] > last_key  # (S_q, S_k)\n"),
                ("scores.masked_fill(keys_here > last_key, -math.inf)",
                 "scores.masked_fill(blocked[:, begin : begin + kb.shape[-2]], -math.inf)")),
            "calls PyTorch's fused attention": edit(
                ONLINE, ("return (out / total[..., None]).to(q.dtype)",
                         "return torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal)")),
            "no scale 1/sqrt(d)": edit(ONLINE, ("qs = q.to(work) * q.shape[-1] ** -0.5", "qs = q.to(work)")),
        },
        "visible": {
            "max not subtracted (exp of the raw scores)": "subtract the running max",
            "normaliser not rescaled when the max changes": "block_size",
        },
        "right": {
            "a running log-sum-exp instead of max and sum": _ONLINE_HEAD + '''
    work = torch.float64
    qs = q.to(work) / math.sqrt(q.shape[-1])
    lse = torch.full(q.shape[:-1], float("-inf"), dtype=work)
    out = torch.zeros(*q.shape[:-1], v.shape[-1], dtype=work)
    query_pos = torch.arange(s_q)[:, None] + (s_k - s_q)
    for begin in range(0, s_k, block_size):
        end = min(begin + block_size, s_k)
        scores = qs @ k[..., begin:end, :].to(work).transpose(-2, -1)
        if causal:
            scores = scores.masked_fill(torch.arange(begin, end)[None, :] > query_pos, float("-inf"))
        new_lse = torch.logaddexp(lse, torch.logsumexp(scores, dim=-1))
        safe = torch.where(torch.isfinite(new_lse), new_lse, torch.zeros_like(new_lse))
        out = out * torch.exp(lse - safe)[..., None] + torch.exp(scores - safe[..., None]) @ v[..., begin:end, :].to(work)
        lse = new_lse
    return out.to(q.dtype)
''',
            "tiles of queries and of keys, causal blocks above the diagonal skipped": _ONLINE_HEAD + '''
    work = torch.float32 if q.dtype in (torch.float16, torch.bfloat16) else q.dtype
    scale = 1.0 / math.sqrt(q.shape[-1])
    rows = []
    for q0 in range(0, s_q, block_size):
        qb = q[..., q0:q0 + block_size, :].to(work) * scale
        last = torch.arange(q0, q0 + qb.shape[-2])[:, None] + (s_k - s_q)
        m = torch.full(qb.shape[:-1], float("-inf"), dtype=work)
        l = torch.zeros(qb.shape[:-1], dtype=work)
        acc = torch.zeros(*qb.shape[:-1], v.shape[-1], dtype=work)
        for k0 in range(0, s_k, block_size):
            if causal and k0 > int(last.max()):
                break
            s = qb @ k[..., k0:k0 + block_size, :].to(work).transpose(-2, -1)
            if causal:
                s = s.masked_fill(torch.arange(k0, k0 + s.shape[-1])[None, :] > last, float("-inf"))
            m_new = torch.maximum(m, s.amax(dim=-1))
            base = torch.nan_to_num(m_new, neginf=0.0)
            p = torch.exp(s - base[..., None])
            factor = torch.exp(m - base)
            l = l * factor + p.sum(-1)
            acc = acc * factor[..., None] + p @ v[..., k0:k0 + block_size, :].to(work)
            m = m_new
        rows.append(acc / l[..., None])
    return torch.cat(rows, dim=-2).to(q.dtype)
''',
        },
    },
}
