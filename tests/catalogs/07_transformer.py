"""Wrong and correct versions of notebook 07's graded items (see qa/discrimination.py).

Each wrong version is a mistake a learner plausibly makes, written as an edit of the solution (qa/catalog.py); each
must fail at least one of the item's tests. Each correct version is a different but valid way to write the item;
each must pass all of them.
"""

from qa.catalog import edit, solutions

S = solutions("07_transformer")
PE, FFN, ENC, DEC, TR, GREEDY = (S[name] for name in ("sinusoidal_positional_encoding", "PositionwiseFeedForward",
                                                      "EncoderLayer", "DecoderLayer", "Transformer", "greedy_decode"))
POST_LN_ATTENTION = "x = self.norm1(x + self.dropout1(attend(self.self_attn, x, x, x, mask)[0]))"
HEAD_COPIES = ".repeat_interleave(self.self_attn.num_heads, 0)\n"


# Another way to write three of the items: the correct versions below are edits of it
# ---------------------------------------------------------------- encoder layer
_ENC = '''
class EncoderLayer(nn.Module):
    def __init__(self, d_model, num_heads, d_ff, dropout=0.0, norm_first=False):
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"num_heads {num_heads} must divide d_model {d_model}")
        self.d_model, self.norm_first = d_model, norm_first
        self.self_attn = nn.MultiheadAttention(d_model, num_heads, dropout=dropout, batch_first=True)
        self.ffn = PositionwiseFeedForward(d_model, d_ff, dropout)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)

    def forward(self, x, mask=None):
        if x.dim() != 3 or x.shape[-1] != self.d_model:
            raise ValueError(f"expected (B, S, {self.d_model}), got {tuple(x.shape)}")
        if self.norm_first:
            h = self.norm1(x)
            x = x + self.dropout1(attend(self.self_attn, h, h, h, mask)[0])
            return x + self.dropout2(self.ffn(self.norm2(x)))
        x = self.norm1(x + self.dropout1(attend(self.self_attn, x, x, x, mask)[0]))
        return self.norm2(x + self.dropout2(self.ffn(x)))
'''

# ---------------------------------------------------------------- decoder layer
_DEC = '''
class DecoderLayer(nn.Module):
    def __init__(self, d_model, num_heads, d_ff, dropout=0.0, norm_first=False):
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"num_heads {num_heads} must divide d_model {d_model}")
        self.d_model, self.norm_first = d_model, norm_first
        self.self_attn = nn.MultiheadAttention(d_model, num_heads, dropout=dropout, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(d_model, num_heads, dropout=dropout, batch_first=True)
        self.ffn = PositionwiseFeedForward(d_model, d_ff, dropout)
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(d_model), nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.dropout1, self.dropout2, self.dropout3 = nn.Dropout(dropout), nn.Dropout(dropout), nn.Dropout(dropout)

    def forward(self, x, memory, tgt_mask=None, memory_mask=None):
        if x.dim() != 3 or memory.dim() != 3 or x.shape[-1] != self.d_model or memory.shape[-1] != self.d_model \\
                or x.shape[0] != memory.shape[0]:
            raise ValueError(f"bad shapes x {tuple(x.shape)} and memory {tuple(memory.shape)}")
        if self.norm_first:
            h = self.norm1(x)
            x = x + self.dropout1(attend(self.self_attn, h, h, h, tgt_mask)[0])
            h = self.norm2(x)
            x = x + self.dropout2(attend(self.cross_attn, h, memory, memory, memory_mask)[0])
            return x + self.dropout3(self.ffn(self.norm3(x)))
        x = self.norm1(x + self.dropout1(attend(self.self_attn, x, x, x, tgt_mask)[0]))
        x = self.norm2(x + self.dropout2(attend(self.cross_attn, x, memory, memory, memory_mask)[0]))
        return self.norm3(x + self.dropout3(self.ffn(x)))
'''

# ---------------------------------------------------------------- Transformer
_TR = '''
class Transformer(nn.Module):
    def __init__(self, src_vocab_size, tgt_vocab_size, d_model=64, num_heads=4, num_layers=2, d_ff=128,
                 dropout=0.1, max_len=64, norm_first=False):
        super().__init__()
        self.d_model, self.max_len = d_model, max_len
        self.src_embed = nn.Embedding(src_vocab_size, d_model)
        self.tgt_embed = nn.Embedding(tgt_vocab_size, d_model)
        nn.init.normal_(self.src_embed.weight, std=d_model ** -0.5)
        nn.init.normal_(self.tgt_embed.weight, std=d_model ** -0.5)
        self.register_buffer("pe", sinusoidal_positional_encoding(max_len, d_model))
        self.encoder_layers = nn.ModuleList([EncoderLayer(d_model, num_heads, d_ff, dropout, norm_first)
                                             for _ in range(num_layers)])
        self.decoder_layers = nn.ModuleList([DecoderLayer(d_model, num_heads, d_ff, dropout, norm_first)
                                             for _ in range(num_layers)])
        self.encoder_norm = nn.LayerNorm(d_model) if norm_first else nn.Identity()
        self.decoder_norm = nn.LayerNorm(d_model) if norm_first else nn.Identity()
        self.output = nn.Linear(d_model, tgt_vocab_size)
        self.dropout = nn.Dropout(dropout)

    def encode(self, src):
        if src.dim() != 2 or src.shape[1] > self.max_len:
            raise ValueError(f"bad src shape {tuple(src.shape)}")
        src_mask = (src != PAD)[:, None, :]
        x = self.dropout(self.src_embed(src) * math.sqrt(self.d_model) + self.pe[: src.shape[1]])
        for layer in self.encoder_layers:
            x = layer(x, src_mask)
        return self.encoder_norm(x), src_mask

    def decode(self, tgt_in, memory, src_mask):
        if tgt_in.dim() != 2 or tgt_in.shape[1] > self.max_len or memory.shape[0] != tgt_in.shape[0]:
            raise ValueError(f"bad shapes {tuple(tgt_in.shape)}, {tuple(memory.shape)}")
        T = tgt_in.shape[1]
        tgt_mask = torch.ones(T, T, dtype=torch.bool, device=tgt_in.device).tril()
        y = self.dropout(self.tgt_embed(tgt_in) * math.sqrt(self.d_model) + self.pe[:T])
        for layer in self.decoder_layers:
            y = layer(y, memory, tgt_mask, src_mask)
        return self.output(self.decoder_norm(y))

    def forward(self, src, tgt_in):
        memory, src_mask = self.encode(src)
        return self.decode(tgt_in, memory, src_mask)
'''

CATALOG = {
    "sinusoidal_positional_encoding": {
        "wrong": {
            "sin and cos swapped": edit(PE, ("pe[:, 0::2] = torch.sin", "pe[:, 0::2] = torch.cos"),
                                        ("pe[:, 1::2] = torch.cos", "pe[:, 1::2] = torch.sin")),
            "not interleaved: all sines first, then all cosines": edit(
                PE, ("pe[:, 0::2] = torch.sin(angle)", "pe[:, : d_model // 2] = torch.sin(angle)"),
                ("pe[:, 1::2] = torch.cos(angle)", "pe[:, d_model // 2 :] = torch.cos(angle)")),
            "exponent i / D instead of 2i / D": edit(
                PE, ("torch.arange(0, d_model, 2, dtype=torch.float64) / d_model",
                     "torch.arange(0, d_model // 2, dtype=torch.float64) / d_model")),
            "angles in float32 (wrong digits at large positions)": edit(
                PE, ("torch.arange(max_len, dtype=torch.float64)", "torch.arange(max_len, dtype=torch.float32)"),
                ("torch.arange(0, d_model, 2, dtype=torch.float64)", "torch.arange(0, d_model, 2, dtype=torch.float32)"),
                ("torch.zeros(max_len, d_model, dtype=torch.float64)", "torch.zeros(max_len, d_model, dtype=torch.float32)")),
            "raw index added instead of sinusoids": edit(PE, ("torch.sin(angle)", "angle"), ("torch.cos(angle)", "angle")),
            "odd d_model not rejected": edit(
                PE, ("if d_model <= 0 or d_model % 2:", "if d_model <= 0:"),
                ("torch.zeros(max_len, d_model, dtype=torch.float64)", "torch.zeros(max_len, d_model + d_model % 2, dtype=torch.float64)"),
                ("return pe.float()", "return pe[:, :d_model].float()")),
            "positions start at 1": edit(
                PE, ("torch.arange(max_len, dtype=torch.float64)", "torch.arange(1, max_len + 1, dtype=torch.float64)")),
        },
        "right": {
            "python loops with math.sin / math.cos": '''
def sinusoidal_positional_encoding(max_len, d_model):
    if d_model <= 0 or d_model % 2 or max_len < 1:
        raise ValueError(f"need even d_model > 0 and max_len >= 1, got max_len={max_len}, d_model={d_model}")
    rows = []
    for pos in range(max_len):
        row = []
        for i in range(0, d_model, 2):
            angle = pos / 10000 ** (i / d_model)
            row += [math.sin(angle), math.cos(angle)]
        rows.append(row)
    return torch.tensor(rows, dtype=torch.float32)
''',
            "exp-log frequencies and stack-interleave": '''
def sinusoidal_positional_encoding(max_len, d_model):
    if d_model % 2 or d_model <= 0:
        raise ValueError(f"d_model = {d_model} must be even and positive")
    if max_len < 1:
        raise ValueError(f"max_len = {max_len} must be at least 1")
    div = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float64) * (-math.log(10000.0) / d_model))
    angle = torch.arange(max_len, dtype=torch.float64)[:, None] * div[None, :]
    return torch.stack([angle.sin(), angle.cos()], dim=-1).reshape(max_len, d_model).to(torch.float32)
''',
        },
    },
    "PositionwiseFeedForward": {
        "wrong": {
            "ReLU after the second layer too": edit(
                FFN, ("return self.linear2(self.dropout(torch.relu(self.linear1(x))))",
                      "return torch.relu(self.linear2(self.dropout(torch.relu(self.linear1(x)))))")),
            "no nonlinearity (two linear layers collapse into one)": edit(
                FFN, ("self.dropout(torch.relu(self.linear1(x)))", "self.dropout(self.linear1(x))")),
            "GELU instead of ReLU": edit(FFN, ("torch.relu(self.linear1(x))", "torch.nn.functional.gelu(self.linear1(x))")),
            "layers without bias": edit(FFN, ("nn.Linear(d_model, d_ff)", "nn.Linear(d_model, d_ff, bias=False)"),
                                        ("nn.Linear(d_ff, d_model)", "nn.Linear(d_ff, d_model, bias=False)")),
            "no width check (torch's RuntimeError instead of ValueError)": edit(
                FFN, ("if x.dim() < 1 or x.shape[-1] != self.d_model:", "if False:")),
            "dropout forgotten (argument ignored)": edit(FFN, ("nn.Dropout(dropout)", "nn.Dropout(0.0)")),
        },
        "right": {
            "F.linear and F.relu": '''
class PositionwiseFeedForward(nn.Module):
    def __init__(self, d_model, d_ff, dropout=0.0):
        super().__init__()
        self.linear1, self.linear2 = nn.Linear(d_model, d_ff), nn.Linear(d_ff, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        if x.shape[-1] != self.linear1.in_features:
            raise ValueError(f"input {tuple(x.shape)} does not end in d_model = {self.linear1.in_features}")
        h = F.relu(F.linear(x, self.linear1.weight, self.linear1.bias))
        return F.linear(self.dropout(h), self.linear2.weight, self.linear2.bias)
''',
            "row-vector matmuls x @ W1 + b1, clamp": '''
class PositionwiseFeedForward(nn.Module):
    def __init__(self, d_model, d_ff, dropout=0.0):
        super().__init__()
        self.linear1 = nn.Linear(d_model, d_ff)
        self.linear2 = nn.Linear(d_ff, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        if x.shape[-1] != self.linear1.weight.shape[1]:
            raise ValueError(f"expected last dimension {self.linear1.weight.shape[1]}, got shape {tuple(x.shape)}")
        W1, W2 = self.linear1.weight.T, self.linear2.weight.T
        hidden = (x @ W1 + self.linear1.bias).clamp(min=0)
        return self.dropout(hidden) @ W2 + self.linear2.bias
''',
        },
    },
    "EncoderLayer": {
        "wrong": {
            "always pre-LN (norm_first ignored)": edit(ENC, ("if self.norm_first:", "if True:")),
            "always post-LN (norm_first ignored)": edit(ENC, ("if self.norm_first:", "if False:")),
            "residual dropped around the FFN": edit(ENC, ("return self.norm2(x + self.dropout2(self.ffn(x)))",
                                                         "return self.norm2(self.dropout2(self.ffn(x)))")),
            "LayerNorm before adding (norm(x) + sublayer(x))": edit(
                ENC, (POST_LN_ATTENTION, "x = self.norm1(x) + self.dropout1(attend(self.self_attn, x, x, x, mask)[0])")),
            "norm1 and norm2 swapped": edit(
                ENC, ("x = self.norm1(x + self.dropout1(attend(", "x = self.norm2(x + self.dropout1(attend("),
                ("return self.norm2(x + self.dropout2(self.ffn(x)))", "return self.norm1(x + self.dropout2(self.ffn(x)))")),
            "mask passed to torch without inverting it": edit(
                ENC, (POST_LN_ATTENTION, "m = None if mask is None else mask.expand(x.shape[0], x.shape[1], x.shape[1])"
                                         + HEAD_COPIES + "        "
                                         "x = self.norm1(x + self.dropout1(self.self_attn(x, x, x, attn_mask=m)[0]))")),
            "mask ignored": edit(ENC, ("attend(self.self_attn, x, x, x, mask)", "attend(self.self_attn, x, x, x)"),
                                 ("attend(self.self_attn, h, h, h, mask)", "attend(self.self_attn, h, h, h)")),
            "torch mask inverted correctly but empty rows give NaN": edit(
                ENC, (POST_LN_ATTENTION, "m = None if mask is None else (~mask.expand(x.shape[0], x.shape[1], x.shape[1]))"
                                         + HEAD_COPIES + "        "
                                         "x = self.norm1(x + self.dropout1(self.self_attn(x, x, x, attn_mask=m)[0]))")),
            "wraps nn.TransformerEncoderLayer": edit(ENC, (ENC[ENC.index("    def __init__"):], """\
    def __init__(self, d_model, num_heads, d_ff, dropout=0.0, norm_first=False):
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"num_heads {num_heads} must divide d_model {d_model}")
        self.d_model = d_model
        self.inner = nn.TransformerEncoderLayer(d_model, num_heads, d_ff, dropout, batch_first=True,
                                                norm_first=norm_first)
        self.self_attn, self.norm1, self.norm2 = self.inner.self_attn, self.inner.norm1, self.inner.norm2
        self.ffn = PositionwiseFeedForward(d_model, d_ff, dropout)
        self.ffn.linear1, self.ffn.linear2 = self.inner.linear1, self.inner.linear2

    def forward(self, x, mask=None):
        if x.dim() != 3 or x.shape[-1] != self.d_model:
            raise ValueError(f"expected (B, S, {self.d_model}), got {tuple(x.shape)}")
        m = None if mask is None else (~mask.expand(x.shape[0], x.shape[1], x.shape[1])).repeat_interleave(
            self.self_attn.num_heads, 0)
        return self.inner(x, src_mask=m)
""")),
        },
        "right": {
            "float mask with finfo.min, empty rows zeroed by hand": edit(
                _ENC,
                ("    def forward(self, x, mask=None):",
                 "    def _sa(self, h, mask):\n"
                 "        if mask is None:\n"
                 "            return self.self_attn(h, h, h, need_weights=False)[0]\n"
                 "        allowed = mask.bool().expand(h.shape[0], h.shape[1], h.shape[1])\n"
                 "        bias = torch.zeros(allowed.shape, dtype=h.dtype).masked_fill(~allowed, torch.finfo(h.dtype).min)\n"
                 "        out = self.self_attn(h, h, h, attn_mask=bias.repeat_interleave(self.self_attn.num_heads, 0),\n"
                 "                             need_weights=False)[0]\n"
                 "        return out * allowed.any(-1, keepdim=True)\n\n"
                 "    def forward(self, x, mask=None):"),
                ("attend(self.self_attn, h, h, h, mask)[0]", "self._sa(h, mask)"),
                ("attend(self.self_attn, x, x, x, mask)[0]", "self._sa(x, mask)")),
            "one sub-layer helper for both placements": '''
class EncoderLayer(nn.Module):
    def __init__(self, d_model, num_heads, d_ff, dropout=0.0, norm_first=False):
        super().__init__()
        if num_heads <= 0 or d_model % num_heads != 0:
            raise ValueError(f"d_model={d_model} is not divisible by num_heads={num_heads}")
        self.d_model = d_model
        self.norm_first = norm_first
        self.self_attn = nn.MultiheadAttention(d_model, num_heads, dropout=dropout, batch_first=True)
        self.ffn = PositionwiseFeedForward(d_model, d_ff, dropout)
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.dropout1, self.dropout2 = nn.Dropout(dropout), nn.Dropout(dropout)

    def _residual(self, x, norm, fn, drop):
        return x + drop(fn(norm(x))) if self.norm_first else norm(x + drop(fn(x)))

    def forward(self, x, mask=None):
        if x.ndim != 3 or x.size(-1) != self.d_model:
            raise ValueError(f"x must be (B, S, {self.d_model}); got {tuple(x.shape)}")
        x = self._residual(x, self.norm1, lambda h: attend(self.self_attn, h, h, h, mask)[0], self.dropout1)
        return self._residual(x, self.norm2, self.ffn, self.dropout2)
''',
        },
    },
    "DecoderLayer": {
        "wrong": {
            "look-ahead mask ignored": edit(DEC, ("attend(self.self_attn, x, x, x, tgt_mask)", "attend(self.self_attn, x, x, x)"),
                                            ("attend(self.self_attn, h, h, h, tgt_mask)", "attend(self.self_attn, h, h, h)")),
            "source padding ignored in cross-attention": edit(
                DEC, ("attend(self.cross_attn, x, memory, memory, memory_mask)", "attend(self.cross_attn, x, memory, memory)"),
                ("attend(self.cross_attn, h, memory, memory, memory_mask)", "attend(self.cross_attn, h, memory, memory)")),
            "cross-attention reuses the self-attention weights": edit(
                DEC, ("attend(self.cross_attn, x, memory", "attend(self.self_attn, x, memory"),
                ("attend(self.cross_attn, h, memory", "attend(self.self_attn, h, memory")),
            "queries from the memory, keys and values from the decoder": edit(
                DEC, ("attend(self.cross_attn, x, memory, memory, memory_mask)[0]",
                      "attend(self.cross_attn, memory, x, x, None)[0][:, : x.shape[1]]")),
            "post-LN without the last LayerNorm": edit(DEC, ("return self.norm3(x + self.dropout3(self.ffn(x)))",
                                                             "return x + self.dropout3(self.ffn(x))")),
            "pre-LN normalises the memory too": edit(
                DEC, ("attend(self.cross_attn, h, memory, memory, memory_mask)",
                      "attend(self.cross_attn, h, self.norm2(memory), self.norm2(memory), memory_mask)")),
            "causal mask shifted by one (sees its own next token)": edit(
                DEC, ("        if self.norm_first:\n",
                      "        if tgt_mask is not None:\n"
                      "            tgt_mask = tgt_mask | torch.ones(x.shape[1], x.shape[1], dtype=torch.bool, device=x.device).tril(1)\n"
                      "        if self.norm_first:\n")),
        },
        "visible": {
            "look-ahead mask ignored": "causal mask",
        },
        "right": {
            "sub-layer list, float additive masks": '''
class DecoderLayer(nn.Module):
    def __init__(self, d_model, num_heads, d_ff, dropout=0.0, norm_first=False):
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"{num_heads} heads do not divide d_model = {d_model}")
        self.d_model, self.norm_first = d_model, norm_first
        self.self_attn = nn.MultiheadAttention(d_model, num_heads, dropout=dropout, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(d_model, num_heads, dropout=dropout, batch_first=True)
        self.ffn = PositionwiseFeedForward(d_model, d_ff, dropout)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)
        self.dropout1, self.dropout2, self.dropout3 = (nn.Dropout(dropout) for _ in range(3))

    def _attn(self, module, q, kv, mask):
        if mask is None:
            return module(q, kv, kv, need_weights=False)[0]
        allowed = mask.bool().expand(q.shape[0], q.shape[1], kv.shape[1])
        bias = torch.zeros(allowed.shape, dtype=q.dtype).masked_fill(~allowed, torch.finfo(q.dtype).min)
        out = module(q, kv, kv, attn_mask=bias.repeat_interleave(module.num_heads, 0), need_weights=False)[0]
        return out * allowed.any(-1, keepdim=True)

    def forward(self, x, memory, tgt_mask=None, memory_mask=None):
        if x.dim() != 3 or memory.dim() != 3 or x.shape[0] != memory.shape[0] or \\
                x.shape[2] != self.d_model or memory.shape[2] != self.d_model:
            raise ValueError(f"x {tuple(x.shape)} and memory {tuple(memory.shape)} do not fit d_model {self.d_model}")
        steps = [(self.norm1, self.dropout1, lambda h: self._attn(self.self_attn, h, h, tgt_mask)),
                 (self.norm2, self.dropout2, lambda h: self._attn(self.cross_attn, h, memory, memory_mask)),
                 (self.norm3, self.dropout3, self.ffn)]
        for norm, drop, fn in steps:
            x = x + drop(fn(norm(x))) if self.norm_first else norm(x + drop(fn(x)))
        return x
''',
            "explicit branches, keyword arguments": edit(
                _DEC, ("attend(self.self_attn, x, x, x, tgt_mask)", "attend(self.self_attn, query=x, key=x, value=x, mask=tgt_mask)"),
                ("attend(self.cross_attn, x, memory, memory, memory_mask)",
                 "attend(self.cross_attn, query=x, key=memory, value=memory, mask=memory_mask)")),
        },
    },
    "Transformer": {
        "wrong": {
            "embeddings not scaled by sqrt(D)": edit(
                TR, ("self.src_embed(src) * math.sqrt(self.d_model)", "self.src_embed(src)"),
                ("self.tgt_embed(tgt_in) * math.sqrt(self.d_model)", "self.tgt_embed(tgt_in)")),
            "nn.Embedding's default N(0, 1) init kept": edit(
                TR, ("        for embedding in (self.src_embed, self.tgt_embed):\n"
                     "            nn.init.normal_(embedding.weight, mean=0.0, std=d_model ** -0.5)\n", "")),
            "no look-ahead mask in the decoder": edit(TR, ("y = layer(y, memory, tgt_mask, src_mask)",
                                                           "y = layer(y, memory, None, src_mask)")),
            "source padding not masked in the encoder": edit(TR, ("x = layer(x, src_mask)", "x = layer(x, None)")),
            "positional encoding not added to the target": edit(
                TR, ("self.tgt_embed(tgt_in) * math.sqrt(self.d_model) + self.pe[:T]",
                     "self.tgt_embed(tgt_in) * math.sqrt(self.d_model)")),
            "scaled by sqrt(D) after adding the encoding": edit(
                TR, ("self.src_embed(src) * math.sqrt(self.d_model) + self.pe[: src.shape[1]]",
                     "(self.src_embed(src) + self.pe[: src.shape[1]]) * math.sqrt(self.d_model)"),
                ("self.tgt_embed(tgt_in) * math.sqrt(self.d_model) + self.pe[:T]",
                 "(self.tgt_embed(tgt_in) + self.pe[:T]) * math.sqrt(self.d_model)")),
            "pre-LN stack without its final LayerNorm": edit(
                TR, ("return self.output(self.decoder_norm(y))", "return self.output(y)")),
            "causal mask off by one (diagonal hidden)": edit(
                TR, ("torch.ones(T, T, dtype=torch.bool, device=tgt_in.device).tril()",
                     "torch.ones(T, T, dtype=torch.bool, device=tgt_in.device).tril(-1)")),
        },
        "visible": {
            "embeddings not scaled by sqrt(D)": "sqrt(d_model) first",
        },
        "right": {
            "causal and target-padding mask, (B, T, T)": edit(
                _TR, ("tgt_mask = torch.ones(T, T, dtype=torch.bool, device=tgt_in.device).tril()",
                      "tgt_mask = torch.ones(T, T, dtype=torch.bool, device=tgt_in.device).tril()[None] "
                      "& (tgt_in != PAD)[:, None, :]")),
            "embedding rows indexed by hand, mask from arange": edit(
                _TR, ("self.src_embed(src) * math.sqrt(self.d_model)", "self.src_embed.weight[src] * self.d_model ** 0.5"),
                ("self.tgt_embed(tgt_in) * math.sqrt(self.d_model)", "self.tgt_embed.weight[tgt_in] * self.d_model ** 0.5"),
                ("tgt_mask = torch.ones(T, T, dtype=torch.bool, device=tgt_in.device).tril()",
                 "idx = torch.arange(T, device=tgt_in.device)\n        tgt_mask = idx[None, :] <= idx[:, None]")),
        },
    },
    "greedy_decode": {
        "wrong": {
            "keeps BOS in the output": edit(
                GREEDY, ("        for t in range(max_len):\n", "        out[:, 0] = bos_id\n        for t in range(1, max_len):\n")),
            "does not stop at EOS (tokens after it kept)": edit(GREEDY, ("            step = step.masked_fill(finished, PAD)\n", "")),
            "stops every row when the first row ends": edit(GREEDY, ("if finished.all():", "if finished.any():")),
            "pads with EOS instead of PAD": edit(
                GREEDY, ("out = torch.full((batch, max_len), PAD,", "out = torch.full((batch, max_len), eos_id,"),
                ("step.masked_fill(finished, PAD)", "step.masked_fill(finished, eos_id)")),
            "reads the first position's logits, not the last": edit(GREEDY, ("[:, -1].argmax(-1)", "[:, 0].argmax(-1)")),
            "re-encodes the source at every step": edit(
                GREEDY, ("model.decode(prefix, memory, src_mask)", "model.decode(prefix, *model.encode(src))")),
            "feeds BOS only (never its own output)": edit(
                GREEDY, ("prefix = torch.cat([prefix, step[:, None]], dim=1)",
                         "prefix = torch.cat([prefix, torch.full_like(step[:, None], bos_id)], dim=1)")),
        },
        "right": {
            "python lists, all steps then trimmed": '''
def greedy_decode(model, src, max_len, bos_id, eos_id):
    if src.ndim != 2:
        raise ValueError(f"src must be (B, S), got {tuple(src.shape)}")
    if max_len < 1:
        raise ValueError(f"max_len must be >= 1, got {max_len}")
    with torch.no_grad():
        memory, src_mask = model.encode(src)
        ys = torch.full((src.shape[0], 1), bos_id, dtype=torch.long, device=src.device)
        for _ in range(max_len):
            nxt = model.decode(ys, memory, src_mask)[:, -1].argmax(-1)
            ys = torch.cat([ys, nxt[:, None]], dim=1)
    rows = []
    for row in ys[:, 1:].tolist():
        if eos_id in row:
            k = row.index(eos_id)
            row = row[: k + 1] + [PAD] * (len(row) - k - 1)
        rows.append(row)
    return torch.tensor(rows, dtype=torch.long, device=src.device)
''',
            "preallocated prefix buffer": '''
def greedy_decode(model, src, max_len, bos_id, eos_id):
    if src.dim() != 2 or max_len < 1:
        raise ValueError(f"src {tuple(src.shape)} must be 2-D and max_len {max_len} >= 1")
    with torch.no_grad():
        memory, src_mask = model.encode(src)
        buf = torch.full((src.shape[0], max_len + 1), PAD, dtype=torch.long, device=src.device)
        buf[:, 0] = bos_id
        alive = torch.ones(src.shape[0], dtype=torch.bool, device=src.device)
        for t in range(max_len):
            if not alive.any():
                break
            tok = model.decode(buf[:, : t + 1], memory, src_mask)[:, -1].argmax(dim=-1)
            buf[:, t + 1] = torch.where(alive, tok, torch.full_like(tok, PAD))
            alive = alive & (tok != eos_id)
        return buf[:, 1:]
''',
        },
    },
}
