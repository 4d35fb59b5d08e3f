"""Wrong and correct versions of notebook 02's graded items (see qa/discrimination.py).

Each wrong version is a mistake a learner plausibly makes; each must fail at least one of the item's tests.
Each correct version is a different but valid way to write the item; each must pass all of them.
"""

_ENC_INIT = '''
class Seq2SeqEncoder(nn.Module):
    def __init__(self, vocab_size, embed_dim, hidden_dim):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.rnn = nn.GRU(embed_dim, hidden_dim, batch_first=True)
'''

_ENC_HEAD = '''
    def forward(self, src, lengths=None):
        if src.dim() != 2:
            raise ValueError(f"src must be (B, S), got {tuple(src.shape)}")
        if lengths is None:
            lengths = (src != 0).sum(1)
'''

_PACKED = '''
        packed = nn.utils.rnn.pack_padded_sequence(self.embedding(src), lengths.cpu(), batch_first=True,
                                                   enforce_sorted=False)
        out, h = self.rnn(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=src.shape[1])
'''

_DEC_CHECK = '''
        H = self.rnn.hidden_size
        if tokens.dim() != 2 or context.shape != (tokens.shape[0], H):
            raise ValueError(f"tokens {tuple(tokens.shape)} / context {tuple(context.shape)} do not fit")
'''


def _decoder(init: str, forward: str, name: str = "Seq2SeqDecoder") -> str:
    return f'''
class {name}(nn.Module):
    def __init__(self, vocab_size, embed_dim, hidden_dim):
        super().__init__()
{init}
    def forward(self, tokens, context, state=None):{_DEC_CHECK}{forward}
'''


_PLAIN_INIT = '''        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.rnn = nn.GRU(embed_dim, hidden_dim, batch_first=True)
        self.out = nn.Linear(hidden_dim, vocab_size)
'''

_PEEKY_INIT = '''        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.rnn = nn.GRU(embed_dim + hidden_dim, hidden_dim, batch_first=True)
        self.out = nn.Linear(2 * hidden_dim, vocab_size)
'''

_PEEKY_OK = '''
        peek = context.unsqueeze(1).expand(-1, tokens.shape[1], -1)
        h0 = context if state is None else state
        out, h = self.rnn(torch.cat([self.embedding(tokens), peek], -1), h0.unsqueeze(0).contiguous())
        return self.out(torch.cat([out, peek], -1)), h[0]
'''

_GREEDY_HEAD = '''
def greedy_decode(model, src, max_len, bos_id, eos_id):
    if src.dim() != 2 or max_len < 1:
        raise ValueError(f"bad src {tuple(src.shape)} or max_len {max_len}")
    B = src.shape[0]
'''

_GREEDY_FLAG = _GREEDY_HEAD + '''
    out = torch.zeros(B, max_len, dtype=torch.long, device=src.device)
    done = torch.zeros(B, dtype=torch.bool, device=src.device)
    with torch.no_grad():
        _, ctx = model.encoder(src)
        tok, state = torch.full((B, 1), bos_id, device=src.device), None
        for i in range(max_len):
            logits, state = model.decoder(tok, ctx, state)
            tok = logits[:, -1].argmax(-1, keepdim=True)
            out[:, i] = tok[:, 0].masked_fill(done, 0)
            done |= tok[:, 0] == eos_id
            if done.all():
                break
    return out
'''


def _greedy_with(*edits: tuple[str, str]) -> str:
    """The finished-flag greedy_decode with each (old, new) edit made; every old text must occur exactly once."""
    text = _GREEDY_FLAG
    for old, new in edits:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


CATALOG = {
    "Seq2SeqEncoder": {
        "wrong": {
            "context from the last position, padding included": _ENC_INIT + _ENC_HEAD + '''
        out, h = self.rnn(self.embedding(src))
        mask = (torch.arange(src.shape[1])[None, :] < lengths[:, None]).unsqueeze(-1)
        return out * mask, out[:, -1]
''',
            "returns torch's h_n of shape (1, B, H)": _ENC_INIT + _ENC_HEAD + _PACKED + '''
        return out, h
''',
            "outputs at padded positions not zeroed": _ENC_INIT + _ENC_HEAD + '''
        out, _ = self.rnn(self.embedding(src))
        return out, out[torch.arange(src.shape[0]), lengths - 1]
''',
            "LSTM instead of GRU (context = h)": '''
class Seq2SeqEncoder(nn.Module):
    def __init__(self, vocab_size, embed_dim, hidden_dim):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.rnn = nn.LSTM(embed_dim, hidden_dim, batch_first=True)
''' + _ENC_HEAD + '''
        packed = nn.utils.rnn.pack_padded_sequence(self.embedding(src), lengths.cpu(), batch_first=True,
                                                   enforce_sorted=False)
        out, (h, c) = self.rnn(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=src.shape[1])
        return out, h[0]
''',
            "no padding_idx on the embedding": '''
class Seq2SeqEncoder(nn.Module):
    def __init__(self, vocab_size, embed_dim, hidden_dim):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.rnn = nn.GRU(embed_dim, hidden_dim, batch_first=True)
''' + _ENC_HEAD + _PACKED + '''
        return out, h[0]
''',
            "GRU without batch_first (reads the batch as time)": '''
class Seq2SeqEncoder(nn.Module):
    def __init__(self, vocab_size, embed_dim, hidden_dim):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.rnn = nn.GRU(embed_dim, hidden_dim)
''' + _ENC_HEAD + '''
        out, h = self.rnn(self.embedding(src))
        return out, out[torch.arange(src.shape[0]), lengths - 1]
''',
            "reverses the source inside the encoder": _ENC_INIT + _ENC_HEAD + '''
        idx = torch.arange(src.shape[1])[None, :].expand_as(src)
        idx = torch.where(idx < lengths[:, None], lengths[:, None] - 1 - idx, idx)
        src = src.gather(1, idx)''' + _PACKED + '''
        return out, h[0]
''',
            "context one position too far (outputs[b, lengths[b]], off by one)": _ENC_INIT + _ENC_HEAD + '''
        out, _ = self.rnn(self.embedding(src))
        mask = torch.arange(src.shape[1])[None, :] < lengths[:, None]
        context = out[torch.arange(src.shape[0]), lengths.clamp(max=src.shape[1] - 1)]
        return out * mask.unsqueeze(-1), context
''',
            "bidirectional GRU (context twice as wide)": '''
class Seq2SeqEncoder(nn.Module):
    def __init__(self, vocab_size, embed_dim, hidden_dim):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.rnn = nn.GRU(embed_dim, hidden_dim // 2 or 1, batch_first=True, bidirectional=True)
''' + _ENC_HEAD + _PACKED + '''
        return out, torch.cat([h[0], h[1]], -1)
''',
        },
        "right": {
            "pack_padded_sequence": _ENC_INIT + _ENC_HEAD + _PACKED + '''
        return out, h[0]
''',
            "run over everything, gather the last real state, mask the outputs": _ENC_INIT + _ENC_HEAD + '''
        out, _ = self.rnn(self.embedding(src))
        mask = torch.arange(src.shape[1], device=src.device)[None, :] < lengths[:, None]
        context = out[torch.arange(src.shape[0]), lengths - 1]
        return out * mask.unsqueeze(-1).to(out.dtype), context
''',
            "python loop over rows, each of its own length": _ENC_INIT + _ENC_HEAD + '''
        B, S = src.shape
        out = self.embedding.weight.new_zeros(B, S, self.rnn.hidden_size)
        contexts = []
        for b in range(B):
            L = int(lengths[b])
            o, h = self.rnn(self.embedding(src[b : b + 1, :L]))
            out[b, :L] = o[0]
            contexts.append(h[0, 0])
        return out, torch.stack(contexts)
''',
        },
    },
    "Seq2SeqDecoder": {
        "wrong": {
            "context ignored (GRU starts from zeros)": _decoder(_PLAIN_INIT, '''
        h0 = torch.zeros_like(context) if state is None else state
        out, h = self.rnn(self.embedding(tokens), h0.unsqueeze(0).contiguous())
        return self.out(out), h[0]
'''),
            "always restarts from the context (state ignored)": _decoder(_PLAIN_INIT, '''
        out, h = self.rnn(self.embedding(tokens), context.unsqueeze(0).contiguous())
        return self.out(out), h[0]
'''),
            "returns the state it was given, not the new one": _decoder(_PLAIN_INIT, '''
        h0 = context if state is None else state
        out, h = self.rnn(self.embedding(tokens), h0.unsqueeze(0).contiguous())
        return self.out(out), h0
'''),
            "softmax applied to the logits": _decoder(_PLAIN_INIT, '''
        h0 = context if state is None else state
        out, h = self.rnn(self.embedding(tokens), h0.unsqueeze(0).contiguous())
        return torch.softmax(self.out(out), -1), h[0]
'''),
            "output layer fed the embeddings, not the GRU states": _decoder('''        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.rnn = nn.GRU(embed_dim, hidden_dim, batch_first=True)
        self.out = nn.Linear(hidden_dim, vocab_size)
        self.skip = nn.Linear(embed_dim, hidden_dim)
''', '''
        h0 = context if state is None else state
        out, h = self.rnn(self.embedding(tokens), h0.unsqueeze(0).contiguous())
        return self.out(self.skip(self.embedding(tokens))), h[0]
'''),
            "context added to the embeddings instead of used as the initial state": _decoder('''        self.embedding = nn.Embedding(vocab_size, hidden_dim, padding_idx=0)
        self.rnn = nn.GRU(hidden_dim, hidden_dim, batch_first=True)
        self.out = nn.Linear(hidden_dim, vocab_size)
''', '''
        h0 = torch.zeros_like(context) if state is None else state
        out, h = self.rnn(self.embedding(tokens) + context.unsqueeze(1), h0.unsqueeze(0).contiguous())
        return self.out(out), h[0]
'''),
            "returns torch's h_n of shape (1, B, H)": _decoder(_PLAIN_INIT, '''
        h0 = context if state is None else state
        out, h = self.rnn(self.embedding(tokens), h0.unsqueeze(0).contiguous())
        return self.out(out), h
'''),
            "no padding_idx on the embedding": _decoder('''        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.rnn = nn.GRU(embed_dim, hidden_dim, batch_first=True)
        self.out = nn.Linear(hidden_dim, vocab_size)
''', '''
        h0 = context if state is None else state
        out, h = self.rnn(self.embedding(tokens), h0.unsqueeze(0).contiguous())
        return self.out(out), h[0]
'''),
        },
        "right": {
            "one GRU call": _decoder(_PLAIN_INIT, '''
        h0 = context if state is None else state
        out, h = self.rnn(self.embedding(tokens), h0.unsqueeze(0).contiguous())
        return self.out(out), h[0]
'''),
            "python loop over time, one GRU step at a time": _decoder(_PLAIN_INIT, '''
        h = (context if state is None else state).unsqueeze(0).contiguous()
        logits = []
        for t in range(tokens.shape[1]):
            o, h = self.rnn(self.embedding(tokens[:, t : t + 1]), h)
            logits.append(self.out(o))
        return torch.cat(logits, dim=1), h[0]
'''),
            "new state read from the last output": _decoder(_PLAIN_INIT, '''
        h0 = (context if state is None else state)[None]
        out, _ = self.rnn(self.embedding(tokens), h0.contiguous())
        return out @ self.out.weight.T + self.out.bias, out[:, -1]
'''),
        },
    },
    "PeekyDecoder": {
        "wrong": {
            "context only at the GRU input (output layer does not peek)": _decoder('''        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.rnn = nn.GRU(embed_dim + hidden_dim, hidden_dim, batch_first=True)
        self.out = nn.Linear(hidden_dim, vocab_size)
''', '''
        peek = context.unsqueeze(1).expand(-1, tokens.shape[1], -1)
        h0 = context if state is None else state
        out, h = self.rnn(torch.cat([self.embedding(tokens), peek], -1), h0.unsqueeze(0).contiguous())
        return self.out(out), h[0]
''', "PeekyDecoder"),
            "context first in the GRU input": _decoder(_PEEKY_INIT, '''
        peek = context.unsqueeze(1).expand(-1, tokens.shape[1], -1)
        h0 = context if state is None else state
        out, h = self.rnn(torch.cat([peek, self.embedding(tokens)], -1), h0.unsqueeze(0).contiguous())
        return self.out(torch.cat([out, peek], -1)), h[0]
''', "PeekyDecoder"),
            "context first in the output layer's input": _decoder(_PEEKY_INIT, '''
        peek = context.unsqueeze(1).expand(-1, tokens.shape[1], -1)
        h0 = context if state is None else state
        out, h = self.rnn(torch.cat([self.embedding(tokens), peek], -1), h0.unsqueeze(0).contiguous())
        return self.out(torch.cat([peek, out], -1)), h[0]
''', "PeekyDecoder"),
            "starts from zeros instead of the context": _decoder(_PEEKY_INIT, '''
        peek = context.unsqueeze(1).expand(-1, tokens.shape[1], -1)
        h0 = torch.zeros_like(context) if state is None else state
        out, h = self.rnn(torch.cat([self.embedding(tokens), peek], -1), h0.unsqueeze(0).contiguous())
        return self.out(torch.cat([out, peek], -1)), h[0]
''', "PeekyDecoder"),
            "peeks at the running state instead of the context (loop)": _decoder(_PEEKY_INIT, '''
        h = (context if state is None else state)[None].contiguous()
        logits = []
        for t in range(tokens.shape[1]):
            o, h_new = self.rnn(torch.cat([self.embedding(tokens[:, t : t + 1]), h.transpose(0, 1)], -1), h)
            logits.append(self.out(torch.cat([o, h.transpose(0, 1)], -1)))
            h = h_new
        return torch.cat(logits, 1), h[0]
''', "PeekyDecoder"),
            "context used only on the first call (state given: zeros peeked)": _decoder(_PEEKY_INIT, '''
        peek = context if state is None else torch.zeros_like(context)
        peek = peek.unsqueeze(1).expand(-1, tokens.shape[1], -1)
        h0 = context if state is None else state
        out, h = self.rnn(torch.cat([self.embedding(tokens), peek], -1), h0.unsqueeze(0).contiguous())
        return self.out(torch.cat([out, peek], -1)), h[0]
''', "PeekyDecoder"),
            "context peeked only at the first position": _decoder(_PEEKY_INIT, '''
        peek = torch.zeros(tokens.shape[0], tokens.shape[1], context.shape[1], dtype=context.dtype)
        peek[:, 0] = context
        h0 = context if state is None else state
        out, h = self.rnn(torch.cat([self.embedding(tokens), peek], -1), h0.unsqueeze(0).contiguous())
        return self.out(torch.cat([out, peek], -1)), h[0]
''', "PeekyDecoder"),
        },
        "right": {
            "expand and concatenate": _decoder(_PEEKY_INIT, _PEEKY_OK, "PeekyDecoder"),
            "python loop over time": _decoder(_PEEKY_INIT, '''
        h = (context if state is None else state).unsqueeze(0).contiguous()
        logits = []
        for t in range(tokens.shape[1]):
            x = torch.cat([self.embedding(tokens[:, t]), context], -1).unsqueeze(1)
            o, h = self.rnn(x, h)
            logits.append(self.out(torch.cat([o[:, 0], context], -1)))
        return torch.stack(logits, 1), h[0]
''', "PeekyDecoder"),
            "output layer split into two matrices": _decoder(_PEEKY_INIT, '''
        T = tokens.shape[1]
        peek = context[:, None, :].repeat(1, T, 1)
        h0 = context if state is None else state
        out, h = self.rnn(torch.cat([self.embedding(tokens), peek], dim=2), h0[None].contiguous())
        H = out.shape[-1]
        w = self.out.weight
        logits = out @ w[:, :H].T + (context @ w[:, H:].T).unsqueeze(1) + self.out.bias
        return logits, h[0]
''', "PeekyDecoder"),
        },
    },
    "greedy_decode": {
        "wrong": {
            "BOS kept as the first output token": _greedy_with(("        for i in range(max_len):\n",
                                                           "        out[:, 0] = bos_id\n        for i in range(1, max_len):\n")),
            "keeps writing after EOS (no PAD)": _greedy_with(("out[:, i] = tok[:, 0].masked_fill(done, 0)", "out[:, i] = tok[:, 0]")),
            "stops the whole batch at the first EOS": _GREEDY_HEAD + '''
    out = torch.zeros(B, max_len, dtype=torch.long)
    with torch.no_grad():
        _, ctx = model.encoder(src)
        tok, state = torch.full((B, 1), bos_id), None
        for i in range(max_len):
            logits, state = model.decoder(tok, ctx, state)
            tok = logits[:, -1].argmax(-1, keepdim=True)
            out[:, i] = tok[:, 0]
            if (tok == eos_id).any():
                break
    return out
''',
            "feeds BOS at every step": _GREEDY_HEAD + '''
    out = torch.zeros(B, max_len, dtype=torch.long)
    done = torch.zeros(B, dtype=torch.bool)
    with torch.no_grad():
        _, ctx = model.encoder(src)
        state = None
        for i in range(max_len):
            logits, state = model.decoder(torch.full((B, 1), bos_id), ctx, state)
            tok = logits[:, -1].argmax(-1)
            out[:, i] = tok.masked_fill(done, 0)
            done |= tok == eos_id
            if done.all():
                break
    return out
''',
            "state not passed on (restarts from the context every step)": _greedy_with(
                ("logits, state = model.decoder(tok, ctx, state)", "logits, _ = model.decoder(tok, ctx, None)")),
            "hard-codes BOS = 1 and EOS = 2": _greedy_with(("torch.full((B, 1), bos_id, device=src.device)", "torch.full((B, 1), 1, device=src.device)"),
                                                       ("== eos_id", "== 2")),
            "drops the EOS (PAD from the EOS on)": _greedy_with(("            out[:, i] = tok[:, 0].masked_fill(done, 0)\n            done |= tok[:, 0] == eos_id\n",
                                                            "            done |= tok[:, 0] == eos_id\n            out[:, i] = tok[:, 0].masked_fill(done, 0)\n")),
            "never stops early (always max_len decoder calls)": _greedy_with(("            if done.all():\n                break\n", "")),
            "generates one token too few": _greedy_with(("range(max_len)", "range(max_len - 1)")),
            "reads logits[:, 1] instead of logits[:, -1]": _greedy_with(("logits[:, -1]", "logits[:, 1]")),
        },
        "right": {
            "masked_fill and a finished flag": _GREEDY_FLAG,
            "collect a list, pad afterwards with cumsum": _GREEDY_HEAD + '''
    steps = []
    with torch.no_grad():
        _, ctx = model.encoder(src)
        tok, state = torch.full((B, 1), bos_id, dtype=torch.long), None
        ended = torch.zeros(B, dtype=torch.bool)
        while len(steps) < max_len and not bool(ended.all()):
            logits, state = model.decoder(tok, ctx, state)
            tok = torch.max(logits[:, -1], dim=-1).indices.unsqueeze(1)
            steps.append(tok[:, 0])
            ended = ended | (tok[:, 0] == eos_id)
    seq = torch.stack(steps, 1)
    after = ((seq == eos_id).long().cumsum(1) - (seq == eos_id).long()) > 0
    seq = seq.masked_fill(after, 0)
    return torch.nn.functional.pad(seq, (0, max_len - seq.shape[1]), value=0)
''',
            "per-row python bookkeeping": _GREEDY_HEAD + '''
    rows = [[] for _ in range(B)]
    finished = [False] * B
    with torch.no_grad():
        _, ctx = model.encoder(src)
        tok, state = torch.full((B, 1), bos_id, dtype=torch.long), None
        for _ in range(max_len):
            logits, state = model.decoder(tok, ctx, state)
            tok = logits[:, -1].argmax(-1, keepdim=True)
            for b in range(B):
                rows[b].append(0 if finished[b] else int(tok[b, 0]))
                finished[b] = finished[b] or int(tok[b, 0]) == eos_id
            if all(finished):
                break
    out = torch.zeros(B, max_len, dtype=torch.long)
    for b in range(B):
        out[b, : len(rows[b])] = torch.tensor(rows[b], dtype=torch.long)
    return out
''',
        },
    },
}
