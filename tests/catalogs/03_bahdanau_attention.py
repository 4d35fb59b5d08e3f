"""Wrong and correct versions of notebook 03's graded items (see qa/discrimination.py).

Each wrong version is a mistake a learner plausibly makes; each must fail at least one of the item's tests.
Each correct version is a different but valid way to write the item; each must pass all of them.
"""

_MS_VALIDATE = '''
    if scores.dim() == 0:
        raise ValueError("scores must have at least one dimension")
    if mask is not None:
        if mask.dtype != torch.bool:
            raise ValueError(f"mask must be bool, got {mask.dtype}")
        try:
            ok = torch.broadcast_shapes(mask.shape, scores.shape) == scores.shape
        except RuntimeError:
            ok = False
        if not ok:
            raise ValueError(f"mask {tuple(mask.shape)} does not fit scores {tuple(scores.shape)}")
'''

_ATT_INIT = '''
    def __init__(self, query_dim, key_dim, attn_dim):
        super().__init__()
        self.query_proj = nn.Linear(query_dim, attn_dim, bias=False)
        self.key_proj = nn.Linear(key_dim, attn_dim, bias=False)
        self.v = nn.Linear(attn_dim, 1, bias=False)
'''

_ATT_VALIDATE = '''
        if query.dim() not in (2, 3) or keys.dim() != 3 or values.dim() != 3:
            raise ValueError(f"bad ranks: query {tuple(query.shape)}, keys {tuple(keys.shape)}, values {tuple(values.shape)}")
        if not (query.shape[0] == keys.shape[0] == values.shape[0]) or keys.shape[1] != values.shape[1]:
            raise ValueError(f"query {tuple(query.shape)}, keys {tuple(keys.shape)}, values {tuple(values.shape)} disagree")
        if query.shape[-1] != self.query_proj.in_features or keys.shape[-1] != self.key_proj.in_features:
            raise ValueError(f"widths of query {tuple(query.shape)} / keys {tuple(keys.shape)} do not match")
        single = query.dim() == 2
        q = query[:, None] if single else query
        if mask is not None:
            ok = [(q.shape[0], keys.shape[1])] if single else [(q.shape[0], 1, keys.shape[1]), (q.shape[0], q.shape[1], keys.shape[1])]
            if tuple(mask.shape) not in ok:
                raise ValueError(f"mask {tuple(mask.shape)} should be one of {ok}")
            mask = mask[:, None] if single else mask
'''

_ATT_RETURN = '''
        if single:
            return context[:, 0], weights[:, 0]
        return context, weights
'''


def _attention(body: str, init: str = _ATT_INIT) -> str:
    return ("class AdditiveAttention(nn.Module):" + init + '''
    def forward(self, query, keys, values, mask=None):''' + _ATT_VALIDATE + body + _ATT_RETURN)


_ATT_SCORES = '''
        scores = self.v(torch.tanh(self.query_proj(q)[:, :, None] + self.key_proj(keys)[:, None])).squeeze(-1)
'''

_DEC_INIT = '''
    def __init__(self, vocab_size, embed_dim, hidden_dim, enc_dim, attn_dim):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.attention = AdditiveAttention(hidden_dim, enc_dim, attn_dim)
        self.gru = nn.GRUCell(embed_dim + enc_dim, hidden_dim)
        self.out = nn.Linear(hidden_dim + enc_dim, vocab_size)
'''

_DEC_CHECK = '''
        if token.dim() != 1:
            raise ValueError(f"token must be (B,), got {tuple(token.shape)}")
        B = token.shape[0]
        if hidden.shape != (B, self.gru.hidden_size):
            raise ValueError(f"hidden {tuple(hidden.shape)} should be ({B}, {self.gru.hidden_size})")
        if enc_outputs.dim() != 3 or enc_outputs.shape[0] != B or enc_outputs.shape[2] != self.attention.key_proj.in_features:
            raise ValueError(f"enc_outputs {tuple(enc_outputs.shape)} has the wrong shape")
'''

_DEC_STEP = '''
    def step(self, token, hidden, enc_outputs, src_mask=None):''' + _DEC_CHECK + '''
        context, weights = self.attention(hidden, enc_outputs, enc_outputs, src_mask)
        hidden = self.gru(torch.cat([self.embedding(token), context], -1), hidden)
        return self.out(torch.cat([hidden, context], -1)), hidden, weights
'''

_DEC_FORWARD = '''
    def forward(self, tgt_in, hidden, enc_outputs, src_mask=None):
        if tgt_in.dim() != 2:
            raise ValueError(f"tgt_in must be (B, T), got {tuple(tgt_in.shape)}")
        logits, weights = [], []
        for t in range(tgt_in.shape[1]):
            lg, hidden, w = self.step(tgt_in[:, t], hidden, enc_outputs, src_mask)
            logits.append(lg)
            weights.append(w)
        return torch.stack(logits, 1), torch.stack(weights, 1)
'''


def _decoder(step: str = _DEC_STEP, forward: str = _DEC_FORWARD, init: str = _DEC_INIT) -> str:
    return "class AttentionDecoder(nn.Module):" + init + step + forward


CATALOG = {
    "masked_softmax": {
        "wrong": {
            "mask ignored": '''
def masked_softmax(scores, mask=None):''' + _MS_VALIDATE + '''
    return torch.softmax(scores, dim=-1)
''',
            "mask inverted (True treated as padding, as in nn.MultiheadAttention)": '''
def masked_softmax(scores, mask=None):''' + _MS_VALIDATE + '''
    if mask is None:
        return torch.softmax(scores, -1)
    return torch.softmax(scores.masked_fill(mask, torch.finfo(scores.dtype).min), -1) * ~mask
''',
            "fills with -1e9 (fully masked rows become uniform, or NaN in float16)": '''
def masked_softmax(scores, mask=None):''' + _MS_VALIDATE + '''
    if mask is None:
        return torch.softmax(scores, -1)
    return torch.softmax(scores.masked_fill(~mask, -1e9), dim=-1)
''',
            "finfo.min fill, fully masked rows left uniform": '''
def masked_softmax(scores, mask=None):''' + _MS_VALIDATE + '''
    if mask is None:
        return torch.softmax(scores, -1)
    return torch.softmax(scores.masked_fill(~mask, torch.finfo(scores.dtype).min), dim=-1)
''',
            "additive -inf mask, then nan_to_num (NaN gradients on empty rows)": '''
def masked_softmax(scores, mask=None):''' + _MS_VALIDATE + '''
    if mask is None:
        return torch.softmax(scores, -1)
    bias = torch.zeros(mask.shape, dtype=scores.dtype).masked_fill(~mask, float("-inf"))
    return torch.nan_to_num(torch.softmax(scores + bias, dim=-1), nan=0.0)
''',
            "additive -inf mask, empty rows replaced by zeros with torch.where (NaN gradients)": '''
def masked_softmax(scores, mask=None):''' + _MS_VALIDATE + '''
    if mask is None:
        return torch.softmax(scores, -1)
    bias = torch.zeros(mask.shape, dtype=scores.dtype).masked_fill(~mask, float("-inf"))
    w = torch.softmax(scores + bias, dim=-1)
    return torch.where(mask.expand(scores.shape).any(-1, keepdim=True), w, torch.zeros_like(w))
''',
            "softmax first, then zero the padding and renormalise (0/0 when masked scores are large)": '''
def masked_softmax(scores, mask=None):''' + _MS_VALIDATE + '''
    if mask is None:
        return torch.softmax(scores, -1)
    w = torch.softmax(scores, dim=-1) * mask
    return w / w.sum(-1, keepdim=True)
''',
            "softmax first, then zero the padding without renormalising": '''
def masked_softmax(scores, mask=None):''' + _MS_VALIDATE + '''
    if mask is None:
        return torch.softmax(scores, -1)
    return torch.softmax(scores, dim=-1) * mask
''',
            "normalises over the first axis": '''
def masked_softmax(scores, mask=None):''' + _MS_VALIDATE + '''
    if mask is None:
        return torch.softmax(scores, 0)
    return torch.softmax(scores.masked_fill(~mask, torch.finfo(scores.dtype).min), dim=0) * mask
''',
            "no validation (a float 0/1 mask is silently accepted)": '''
def masked_softmax(scores, mask=None):
    if mask is None:
        return torch.softmax(scores, -1)
    mask = mask.bool()
    return torch.softmax(scores.masked_fill(~mask, torch.finfo(scores.dtype).min), dim=-1) * mask
''',
            "always computes in float32": '''
def masked_softmax(scores, mask=None):''' + _MS_VALIDATE + '''
    scores = scores.float()
    if mask is None:
        return torch.softmax(scores, -1)
    return torch.softmax(scores.masked_fill(~mask, torch.finfo(torch.float32).min), dim=-1) * mask
''',
        },
        "right": {
            "masked_fill with -inf, then nan_to_num (masked_fill blocks the NaN gradient)": '''
def masked_softmax(scores, mask=None):''' + _MS_VALIDATE + '''
    if mask is None:
        return torch.softmax(scores, -1)
    return torch.nan_to_num(torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1), nan=0.0)
''',
            "masked_fill with -inf, empty rows replaced with torch.where": '''
def masked_softmax(scores, mask=None):''' + _MS_VALIDATE + '''
    if mask is None:
        return torch.softmax(scores, -1)
    w = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
    return torch.where(mask.expand(scores.shape).any(-1, keepdim=True), w, torch.zeros_like(w))
''',
            "-inf handled safely (rows with nothing to attend get zero scores first)": '''
def masked_softmax(scores, mask=None):''' + _MS_VALIDATE + '''
    if mask is None:
        return torch.softmax(scores, -1)
    mask = mask.expand(scores.shape)
    has_any = mask.any(-1, keepdim=True)
    filled = scores.masked_fill(~mask, float("-inf"))
    filled = torch.where(has_any, filled, torch.zeros_like(scores))
    return torch.where(mask, torch.softmax(filled, -1), torch.zeros_like(scores))
''',
            "by hand: exp of shifted scores times the mask over a clamped sum": '''
def masked_softmax(scores, mask=None):''' + _MS_VALIDATE + '''
    if mask is None:
        mask = torch.ones_like(scores, dtype=torch.bool)
    mask = mask.expand(scores.shape)
    top = scores.masked_fill(~mask, torch.finfo(scores.dtype).min).amax(-1, keepdim=True).detach()
    e = torch.exp((scores - top).masked_fill(~mask, 0.0)) * mask
    return e / e.sum(-1, keepdim=True).clamp_min(torch.finfo(scores.dtype).tiny)
''',
            "python loop over rows": '''
def masked_softmax(scores, mask=None):''' + _MS_VALIDATE + '''
    if mask is None:
        mask = torch.ones_like(scores, dtype=torch.bool)
    m = mask.expand(scores.shape).reshape(-1, scores.shape[-1])
    rows = []
    for row, keep in zip(scores.reshape(-1, scores.shape[-1]), m):
        if keep.any():
            e = torch.exp(row[keep] - row[keep].max())
            out = torch.zeros_like(row).masked_scatter(keep, e / e.sum())
        else:
            out = row * 0
        rows.append(out)
    return torch.stack(rows).reshape(scores.shape)
''',
        },
    },
    "AdditiveAttention": {
        "wrong": {
            "softmax over the queries instead of the keys": _attention(_ATT_SCORES + '''
        if mask is not None:
            scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        weights = torch.softmax(scores, dim=-2) * (mask if mask is not None else 1)
        context = weights @ values
'''),
            "mask ignored": _attention(_ATT_SCORES + '''
        weights = masked_softmax(scores, None)
        context = weights @ values
'''),
            "mask inverted": _attention(_ATT_SCORES + '''
        weights = masked_softmax(scores, None if mask is None else ~mask)
        context = weights @ values
'''),
            "context is the weighted sum of the keys, not the values": _attention(_ATT_SCORES + '''
        weights = masked_softmax(scores, mask)
        context = weights @ keys
'''),
            "no tanh (the score is linear in query and key)": _attention('''
        scores = self.v(self.query_proj(q)[:, :, None] + self.key_proj(keys)[:, None]).squeeze(-1)
        weights = masked_softmax(scores, mask)
        context = weights @ values
'''),
            "multiplies the projections instead of adding them": _attention('''
        scores = self.v(torch.tanh(self.query_proj(q)[:, :, None] * self.key_proj(keys)[:, None])).squeeze(-1)
        weights = masked_softmax(scores, mask)
        context = weights @ values
'''),
            "projections with bias": _attention(_ATT_SCORES + '''
        weights = masked_softmax(scores, mask)
        context = weights @ values
''', init='''
    def __init__(self, query_dim, key_dim, attn_dim):
        super().__init__()
        self.query_proj = nn.Linear(query_dim, attn_dim)
        self.key_proj = nn.Linear(key_dim, attn_dim)
        self.v = nn.Linear(attn_dim, 1)
'''),
            "context from the raw scores (no softmax)": _attention(_ATT_SCORES + '''
        weights = scores.masked_fill(~mask, 0.0) if mask is not None else scores
        context = weights @ values
'''),
            "tanh applied after v": _attention('''
        scores = torch.tanh(self.v(self.query_proj(q)[:, :, None] + self.key_proj(keys)[:, None])).squeeze(-1)
        weights = masked_softmax(scores, mask)
        context = weights @ values
'''),
            "no shape checks (mismatched inputs broadcast or fail with a RuntimeError)": '''
class AdditiveAttention(nn.Module):''' + _ATT_INIT + '''
    def forward(self, query, keys, values, mask=None):
        single = query.dim() == 2
        q = query[:, None] if single else query
        if mask is not None and single:
            mask = mask[:, None]
        scores = self.v(torch.tanh(self.query_proj(q)[:, :, None] + self.key_proj(keys)[:, None])).squeeze(-1)
        weights = masked_softmax(scores, mask)
        context = weights @ values
        if single:
            return context[:, 0], weights[:, 0]
        return context, weights
''',
        },
        "right": {
            "einsum with the weight matrices": _attention('''
        e = torch.tanh(torch.einsum("btq,aq->bta", q, self.query_proj.weight)[:, :, None]
                       + torch.einsum("bsk,ak->bsa", keys, self.key_proj.weight)[:, None])
        scores = torch.einsum("btsa,a->bts", e, self.v.weight[0])
        weights = masked_softmax(scores, mask)
        context = torch.einsum("bts,bsd->btd", weights, values)
'''),
            "loop over the queries": _attention('''
        ks = self.key_proj(keys)
        rows = []
        for t in range(q.shape[1]):
            rows.append(self.v(torch.tanh(self.query_proj(q[:, t])[:, None] + ks)).squeeze(-1))
        scores = torch.stack(rows, 1)
        weights = masked_softmax(scores, mask)
        context = torch.bmm(weights, values)
'''),
            "own masking with finfo.min (no call to masked_softmax)": _attention(_ATT_SCORES + '''
        if mask is None:
            weights = torch.softmax(scores, -1)
        else:
            weights = torch.softmax(scores.masked_fill(~mask, torch.finfo(scores.dtype).min), -1) * mask
        context = (weights[..., None] * values[:, None]).sum(-2)
'''),
        },
    },
    "AttentionDecoder": {
        "wrong": {
            "attends with the new state (after the GRU step), Luong style": _decoder(step='''
    def step(self, token, hidden, enc_outputs, src_mask=None):''' + _DEC_CHECK + '''
        context, _ = self.attention(hidden, enc_outputs, enc_outputs, src_mask)
        hidden = self.gru(torch.cat([self.embedding(token), context], -1), hidden)
        context, weights = self.attention(hidden, enc_outputs, enc_outputs, src_mask)
        return self.out(torch.cat([hidden, context], -1)), hidden, weights
'''),
            "GRU input in the wrong order ([context; embedding])": _decoder(step='''
    def step(self, token, hidden, enc_outputs, src_mask=None):''' + _DEC_CHECK + '''
        context, weights = self.attention(hidden, enc_outputs, enc_outputs, src_mask)
        hidden = self.gru(torch.cat([context, self.embedding(token)], -1), hidden)
        return self.out(torch.cat([hidden, context], -1)), hidden, weights
'''),
            "readout from the old state": _decoder(step='''
    def step(self, token, hidden, enc_outputs, src_mask=None):''' + _DEC_CHECK + '''
        context, weights = self.attention(hidden, enc_outputs, enc_outputs, src_mask)
        new = self.gru(torch.cat([self.embedding(token), context], -1), hidden)
        return self.out(torch.cat([hidden, context], -1)), new, weights
'''),
            "context only in the readout (zeros fed to the GRU)": _decoder(step='''
    def step(self, token, hidden, enc_outputs, src_mask=None):''' + _DEC_CHECK + '''
        context, weights = self.attention(hidden, enc_outputs, enc_outputs, src_mask)
        hidden = self.gru(torch.cat([self.embedding(token), torch.zeros_like(context)], -1), hidden)
        return self.out(torch.cat([hidden, context], -1)), hidden, weights
'''),
            "source mask not passed to the attention": _decoder(step='''
    def step(self, token, hidden, enc_outputs, src_mask=None):''' + _DEC_CHECK + '''
        context, weights = self.attention(hidden, enc_outputs, enc_outputs)
        hidden = self.gru(torch.cat([self.embedding(token), context], -1), hidden)
        return self.out(torch.cat([hidden, context], -1)), hidden, weights
'''),
            "forward restarts every step from the initial state": _decoder(forward='''
    def forward(self, tgt_in, hidden, enc_outputs, src_mask=None):
        if tgt_in.dim() != 2:
            raise ValueError("tgt_in must be 2-D")
        logits, weights = [], []
        for t in range(tgt_in.shape[1]):
            lg, _, w = self.step(tgt_in[:, t], hidden, enc_outputs, src_mask)
            logits.append(lg)
            weights.append(w)
        return torch.stack(logits, 1), torch.stack(weights, 1)
'''),
            "forward feeds its own predictions instead of the target (no teacher forcing)": _decoder(forward='''
    def forward(self, tgt_in, hidden, enc_outputs, src_mask=None):
        if tgt_in.dim() != 2:
            raise ValueError("tgt_in must be 2-D")
        logits, weights = [], []
        token = tgt_in[:, 0]
        for t in range(tgt_in.shape[1]):
            lg, hidden, w = self.step(token, hidden, enc_outputs, src_mask)
            token = lg.argmax(-1)
            logits.append(lg)
            weights.append(w)
        return torch.stack(logits, 1), torch.stack(weights, 1)
'''),
            "weights stacked as (B, S, T)": _decoder(forward='''
    def forward(self, tgt_in, hidden, enc_outputs, src_mask=None):
        if tgt_in.dim() != 2:
            raise ValueError("tgt_in must be 2-D")
        logits, weights = [], []
        for t in range(tgt_in.shape[1]):
            lg, hidden, w = self.step(tgt_in[:, t], hidden, enc_outputs, src_mask)
            logits.append(lg)
            weights.append(w)
        return torch.stack(logits, 1), torch.stack(weights, 2)
'''),
            "detaches the hidden state between steps (no gradient through time)": _decoder(forward='''
    def forward(self, tgt_in, hidden, enc_outputs, src_mask=None):
        if tgt_in.dim() != 2:
            raise ValueError("tgt_in must be 2-D")
        logits, weights = [], []
        for t in range(tgt_in.shape[1]):
            lg, hidden, w = self.step(tgt_in[:, t], hidden, enc_outputs, src_mask)
            hidden = hidden.detach()
            logits.append(lg)
            weights.append(w)
        return torch.stack(logits, 1), torch.stack(weights, 1)
'''),
            "no shape checks in step": _decoder(step='''
    def step(self, token, hidden, enc_outputs, src_mask=None):
        context, weights = self.attention(hidden, enc_outputs, enc_outputs, src_mask)
        hidden = self.gru(torch.cat([self.embedding(token), context], -1), hidden)
        return self.out(torch.cat([hidden, context], -1)), hidden, weights
'''),
        },
        "right": {
            "forward with its own loop (embeddings looked up once)": _decoder(forward='''
    def forward(self, tgt_in, hidden, enc_outputs, src_mask=None):
        if tgt_in.dim() != 2:
            raise ValueError(f"tgt_in must be (B, T), got {tuple(tgt_in.shape)}")
        self.step(tgt_in[:, 0], hidden, enc_outputs, src_mask)  # validates the shapes
        emb = self.embedding(tgt_in)
        logits, weights = [], []
        for t in range(tgt_in.shape[1]):
            context, w = self.attention(hidden, enc_outputs, enc_outputs, src_mask)
            hidden = self.gru(torch.cat([emb[:, t], context], -1), hidden)
            logits.append(self.out(torch.cat([hidden, context], -1)))
            weights.append(w)
        return torch.stack(logits, 1), torch.stack(weights, 1)
'''),
            "readout through the split weight matrix": _decoder(step='''
    def step(self, token, hidden, enc_outputs, src_mask=None):''' + _DEC_CHECK + '''
        context, weights = self.attention(hidden, enc_outputs, enc_outputs, src_mask)
        hidden = self.gru(torch.cat([self.embedding(token), context], -1), hidden)
        H = hidden.shape[-1]
        W = self.out.weight
        logits = hidden @ W[:, :H].T + context @ W[:, H:].T + self.out.bias
        return logits, hidden, weights
'''),
            "outputs written into preallocated tensors": _decoder(forward='''
    def forward(self, tgt_in, hidden, enc_outputs, src_mask=None):
        if tgt_in.dim() != 2:
            raise ValueError(f"tgt_in must be (B, T), got {tuple(tgt_in.shape)}")
        B, T = tgt_in.shape
        logits = enc_outputs.new_zeros(B, T, self.out.out_features)
        weights = enc_outputs.new_zeros(B, T, enc_outputs.shape[1]) if enc_outputs.dim() == 3 else None
        for t in range(T):
            lg, hidden, w = self.step(tgt_in[:, t], hidden, enc_outputs, src_mask)
            logits = logits.index_put((torch.arange(B), torch.full((B,), t)), lg)
            weights = weights.index_put((torch.arange(B), torch.full((B,), t)), w)
        return logits, weights
'''),
        },
    },
}
