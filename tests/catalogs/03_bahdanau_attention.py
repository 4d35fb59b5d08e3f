"""Wrong and correct versions of notebook 03's graded items (see qa/discrimination.py).

Each wrong version is a mistake a learner plausibly makes, written as an edit of the solution (qa/catalog.py); each
must fail at least one of the item's tests. Each correct version is a different but valid way to write the item;
each must pass all of them.
"""

from qa.catalog import edit, solutions

S = solutions("03_bahdanau_attention")
MS, ATT, DEC = S["masked_softmax"], S["AdditiveAttention"], S["AttentionDecoder"]
MS_MASKED = MS[MS.index("    filled = "):]
MS_VALIDATION = MS[MS.index("    if mask.dtype != torch.bool:"):MS.index("    filled = ")]
NO_MASK = "        return torch.softmax(scores, dim=-1)\n"
MINUS_INF_BIAS = 'bias = torch.zeros(mask.shape, dtype=scores.dtype).masked_fill(~mask, float("-inf"))'
TANH = "hidden = torch.tanh(self.query_proj(q)[:, :, None, :] + self.key_proj(keys)[:, None, :, :])"
LINEAR = "hidden = self.query_proj(q)[:, :, None, :] + self.key_proj(keys)[:, None, :, :]"
WEIGHTS = "        weights = masked_softmax(scores, mask)\n"
GIVEN_CHECK = ATT[ATT.index("        check_additive_inputs("):ATT.index("        single = ")]
MASK_CHECK = ATT[ATT.index("        if mask is not None:\n            expected"):ATT.index("        hidden = ")]
ATTEND = "        context, weights = self.attention(hidden, enc_outputs, enc_outputs, src_mask)\n"
GRU = "        hidden = self.gru(torch.cat([self.embedding(token), context], dim=-1), hidden)\n"
READOUT = "        logits = self.out(torch.cat([hidden, context], dim=-1))\n"
STEP_CHECK = DEC[DEC.index("        check_step_inputs("):DEC.index(ATTEND)]


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
            "mask ignored": edit(MS, (MS_MASKED, "    return torch.softmax(scores, dim=-1)\n")),
            "mask inverted (True treated as padding, as in nn.MultiheadAttention)": edit(
                MS, ("masked_fill(~mask,", "masked_fill(mask,"), ("return weights * mask", "return weights * ~mask")),
            "fills with -1e9 (fully masked rows become uniform, or NaN in float16)": edit(
                MS, (MS_MASKED, "    return torch.softmax(scores.masked_fill(~mask, -1e9), dim=-1)\n")),
            "finfo.min fill, fully masked rows left uniform": edit(MS, ("return weights * mask", "return weights")),
            "additive -inf mask, then nan_to_num (NaN gradients on empty rows)": edit(MS, (MS_MASKED, f"""\
    {MINUS_INF_BIAS}
    return torch.nan_to_num(torch.softmax(scores + bias, dim=-1), nan=0.0)
""")),
            "additive -inf mask, empty rows replaced by zeros with torch.where (NaN gradients)": edit(MS, (MS_MASKED, f"""\
    {MINUS_INF_BIAS}
    w = torch.softmax(scores + bias, dim=-1)
    return torch.where(mask.expand(scores.shape).any(-1, keepdim=True), w, torch.zeros_like(w))
""")),
            "softmax first, then zero the padding and renormalise (0/0 when masked scores are large)": edit(
                MS, (MS_MASKED, "    w = torch.softmax(scores, dim=-1) * mask\n    return w / w.sum(-1, keepdim=True)\n")),
            "softmax first, then zero the padding without renormalising": edit(
                MS, (MS_MASKED, "    return torch.softmax(scores, dim=-1) * mask\n")),
            "normalises over the first axis": edit(
                MS, (NO_MASK, "        return torch.softmax(scores, dim=0)\n"),
                ("torch.softmax(filled, dim=-1)", "torch.softmax(filled, dim=0)")),
            "no validation (a float 0/1 mask is silently accepted)": edit(MS, (MS_VALIDATION, "    mask = mask.bool()\n")),
            "always computes in float32": edit(MS, ("    if mask is None:\n", "    scores = scores.float()\n    if mask is None:\n")),
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
            "softmax over the queries instead of the keys": edit(ATT, (WEIGHTS, """\
        if mask is not None:
            scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        weights = torch.softmax(scores, dim=-2) * (mask if mask is not None else 1)
""")),
            "mask ignored": edit(ATT, ("masked_softmax(scores, mask)", "masked_softmax(scores, None)")),
            "mask inverted": edit(ATT, ("masked_softmax(scores, mask)", "masked_softmax(scores, None if mask is None else ~mask)")),
            "context is the weighted sum of the keys, not the values": edit(
                ATT, ("context = weights @ values", "context = weights @ keys")),
            "no tanh (the score is linear in query and key)": edit(ATT, (TANH, LINEAR)),
            "multiplies the projections instead of adding them": edit(
                ATT, ("[:, :, None, :] + self.key_proj", "[:, :, None, :] * self.key_proj")),
            "projections with bias": edit(
                ATT, ("nn.Linear(query_dim, attn_dim, bias=False)", "nn.Linear(query_dim, attn_dim)"),
                ("nn.Linear(key_dim, attn_dim, bias=False)", "nn.Linear(key_dim, attn_dim)"),
                ("nn.Linear(attn_dim, 1, bias=False)", "nn.Linear(attn_dim, 1)")),
            "context from the raw scores (no softmax)": edit(
                ATT, (WEIGHTS, "        weights = scores.masked_fill(~mask, 0.0) if mask is not None else scores\n")),
            "tanh applied after v": edit(
                ATT, (TANH, LINEAR), ("scores = self.v(hidden).squeeze(-1)", "scores = torch.tanh(self.v(hidden)).squeeze(-1)")),
            "no shape checks (mismatched inputs broadcast or fail with a RuntimeError)": edit(
                ATT, (GIVEN_CHECK, ""), (MASK_CHECK, "        if mask is not None and single:\n            mask = mask[:, None]\n")),
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
            "attends with the new state (after the GRU step), Luong style": edit(
                DEC, (ATTEND + GRU, ATTEND.replace("context, weights", "context, _") + GRU + ATTEND)),
            "GRU input in the wrong order ([context; embedding])": edit(
                DEC, ("torch.cat([self.embedding(token), context], dim=-1)", "torch.cat([context, self.embedding(token)], dim=-1)")),
            "readout from the old state": edit(
                DEC, (GRU + READOUT + "        return logits, hidden, weights",
                      GRU.replace("        hidden = ", "        new = ") + READOUT + "        return logits, new, weights")),
            "context only in the readout (zeros fed to the GRU)": edit(
                DEC, ("torch.cat([self.embedding(token), context], dim=-1)",
                      "torch.cat([self.embedding(token), torch.zeros_like(context)], dim=-1)")),
            "source mask not passed to the attention": edit(
                DEC, ("self.attention(hidden, enc_outputs, enc_outputs, src_mask)", "self.attention(hidden, enc_outputs, enc_outputs)")),
            "forward restarts every step from the initial state": edit(
                DEC, ("logits, hidden, weights = self.step(tgt_in[:, t], hidden,", "logits, _, weights = self.step(tgt_in[:, t], hidden,")),
            "forward feeds its own predictions instead of the target (no teacher forcing)": edit(
                DEC, ("        for t in range(tgt_in.shape[1]):\n            logits, hidden, weights = self.step(tgt_in[:, t], hidden,",
                      "        token = tgt_in[:, 0]\n        for t in range(tgt_in.shape[1]):\n"
                      "            logits, hidden, weights = self.step(token, hidden,"),
                ("            all_logits.append(logits)\n", "            token = logits.argmax(-1)\n            all_logits.append(logits)\n")),
            "weights stacked as (B, S, T)": edit(DEC, ("torch.stack(all_weights, dim=1)", "torch.stack(all_weights, dim=2)")),
            "detaches the hidden state between steps (no gradient through time)": edit(
                DEC, ("            all_logits.append(logits)\n", "            hidden = hidden.detach()\n            all_logits.append(logits)\n")),
            "no shape checks in step": edit(DEC, (STEP_CHECK, "")),
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
