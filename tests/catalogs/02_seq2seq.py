"""Wrong and correct versions of notebook 02's graded items (see qa/discrimination.py).

Each wrong version is a mistake a learner plausibly makes, written as an edit of the solution (qa/catalog.py); each
must fail at least one of the item's tests. Each correct version is a different but valid way to write the item;
each must pass all of them.
"""

from qa.catalog import edit, solutions

S = solutions("02_seq2seq")
ENC, DEC, PEEKY, GREEDY = S["Seq2SeqEncoder"], S["Seq2SeqDecoder"], S["PeekyDecoder"], S["greedy_decode"]
ENC_RUN = ENC[ENC.index("        packed = "):]
UNPACKED = "        outputs, _ = self.rnn(self.embedding(src))\n"
TIME = "torch.arange(src.shape[1], device=src.device)[None, :]"
START = "start = context if state is None else state"
PEEK = "        peek = context.unsqueeze(1).expand(-1, tokens.shape[1], -1)\n"


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


CATALOG = {
    "Seq2SeqEncoder": {
        "wrong": {
            "context from the last position, padding included": edit(ENC, (ENC_RUN, UNPACKED + f"""\
        mask = ({TIME} < lengths[:, None]).unsqueeze(-1)
        return outputs * mask, outputs[:, -1]
""")),
            "returns torch's h_n of shape (1, B, H)": edit(ENC, ("return outputs, h_n[0]", "return outputs, h_n")),
            "outputs at padded positions not zeroed": edit(ENC, (ENC_RUN, UNPACKED + """\
        return outputs, outputs[torch.arange(src.shape[0]), lengths - 1]
""")),
            "LSTM instead of GRU (context = h)": edit(
                ENC, ("self.rnn = nn.GRU(", "self.rnn = nn.LSTM("),
                ("packed_outputs, h_n = self.rnn(packed)", "packed_outputs, (h_n, c_n) = self.rnn(packed)")),
            "no padding_idx on the embedding": edit(
                ENC, ("nn.Embedding(vocab_size, embed_dim, padding_idx=PAD)", "nn.Embedding(vocab_size, embed_dim)")),
            "GRU without batch_first (reads the batch as time)": edit(
                ENC, ("nn.GRU(embed_dim, hidden_dim, batch_first=True)", "nn.GRU(embed_dim, hidden_dim)"),
                (ENC_RUN, UNPACKED + "        return outputs, outputs[torch.arange(src.shape[0]), lengths - 1]\n")),
            "reverses the source inside the encoder": edit(ENC, ("        packed = ", f"""\
        idx = {TIME}.expand_as(src)
        idx = torch.where(idx < lengths[:, None], lengths[:, None] - 1 - idx, idx)
        src = src.gather(1, idx)
        packed = """)),
            "context one position too far (outputs[b, lengths[b]], off by one)": edit(ENC, (ENC_RUN, UNPACKED + f"""\
        mask = {TIME} < lengths[:, None]
        context = outputs[torch.arange(src.shape[0]), lengths.clamp(max=src.shape[1] - 1)]
        return outputs * mask.unsqueeze(-1), context
""")),
            "bidirectional GRU (context twice as wide)": edit(
                ENC, ("nn.GRU(embed_dim, hidden_dim, batch_first=True)",
                      "nn.GRU(embed_dim, hidden_dim // 2 or 1, batch_first=True, bidirectional=True)"),
                ("return outputs, h_n[0]", "return outputs, torch.cat([h_n[0], h_n[1]], -1)")),
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
            "context ignored (GRU starts from zeros)": edit(
                DEC, (START, "start = torch.zeros_like(context) if state is None else state")),
            "always restarts from the context (state ignored)": edit(DEC, (START, "start = context")),
            "returns the state it was given, not the new one": edit(
                DEC, ("return self.out(outputs), h_n[0]", "return self.out(outputs), start")),
            "softmax applied to the logits": edit(
                DEC, ("return self.out(outputs), h_n[0]", "return torch.softmax(self.out(outputs), dim=-1), h_n[0]")),
            "output layer fed the embeddings, not the GRU states": edit(
                DEC, ("        self.out = nn.Linear(hidden_dim, vocab_size)\n",
                      "        self.out = nn.Linear(hidden_dim, vocab_size)\n        self.skip = nn.Linear(embed_dim, hidden_dim)\n"),
                ("return self.out(outputs)", "return self.out(self.skip(self.embedding(tokens)))")),
            "context added to the embeddings instead of used as the initial state": edit(
                DEC, ("nn.Embedding(vocab_size, embed_dim, padding_idx=PAD)",
                      "nn.Embedding(vocab_size, hidden_dim, padding_idx=PAD)"),
                ("nn.GRU(embed_dim, hidden_dim,", "nn.GRU(hidden_dim, hidden_dim,"),
                (START, "start = torch.zeros_like(context) if state is None else state"),
                ("self.rnn(self.embedding(tokens), ", "self.rnn(self.embedding(tokens) + context.unsqueeze(1), ")),
            "returns torch's h_n of shape (1, B, H)": edit(
                DEC, ("return self.out(outputs), h_n[0]", "return self.out(outputs), h_n")),
            "no padding_idx on the embedding": edit(
                DEC, ("nn.Embedding(vocab_size, embed_dim, padding_idx=PAD)", "nn.Embedding(vocab_size, embed_dim)")),
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
            "context only at the GRU input (output layer does not peek)": edit(
                PEEKY, ("nn.Linear(2 * hidden_dim, vocab_size)", "nn.Linear(hidden_dim, vocab_size)"),
                ("self.out(torch.cat([outputs, peek], dim=-1))", "self.out(outputs)")),
            "context first in the GRU input": edit(
                PEEKY, ("torch.cat([self.embedding(tokens), peek], dim=-1)",
                        "torch.cat([peek, self.embedding(tokens)], dim=-1)")),
            "context first in the output layer's input": edit(
                PEEKY, ("torch.cat([outputs, peek], dim=-1)", "torch.cat([peek, outputs], dim=-1)")),
            "starts from zeros instead of the context": edit(
                PEEKY, (START, "start = torch.zeros_like(context) if state is None else state")),
            "peeks at the running state instead of the context (loop)": edit(
                PEEKY, (PEEKY[PEEKY.index(PEEK):], """\
        h = (context if state is None else state)[None].contiguous()
        logits = []
        for t in range(tokens.shape[1]):
            o, h_new = self.rnn(torch.cat([self.embedding(tokens[:, t : t + 1]), h.transpose(0, 1)], -1), h)
            logits.append(self.out(torch.cat([o, h.transpose(0, 1)], -1)))
            h = h_new
        return torch.cat(logits, 1), h[0]
""")),
            "context used only on the first call (state given: zeros peeked)": edit(
                PEEKY, ("peek = context.unsqueeze(1)", "peek = (context if state is None else torch.zeros_like(context)).unsqueeze(1)")),
            "context peeked only at the first position": edit(PEEKY, (PEEK, """\
        peek = context.new_zeros(tokens.shape[0], tokens.shape[1], context.shape[1])
        peek[:, 0] = context
""")),
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
            "BOS kept as the first output token": edit(
                GREEDY, ("        for i in range(max_len):\n", "        out[:, 0] = bos_id\n        for i in range(1, max_len):\n")),
            "keeps writing after EOS (no PAD)": edit(
                GREEDY, ("out[:, i] = token[:, 0].masked_fill(finished, PAD)", "out[:, i] = token[:, 0]")),
            "stops the whole batch at the first EOS": edit(
                GREEDY, ("            finished |= token[:, 0] == eos_id\n            if bool(finished.all()):\n",
                         "            if bool((token == eos_id).any()):\n")),
            "feeds BOS at every step": edit(
                GREEDY, ("model.decoder(token, context, state)",
                         "model.decoder(torch.full((batch, 1), bos_id, dtype=torch.long, device=src.device), context, state)")),
            "state not passed on (restarts from the context every step)": edit(
                GREEDY, ("logits, state = model.decoder(token, context, state)", "logits, _ = model.decoder(token, context, None)")),
            "hard-codes BOS = 1 and EOS = 2": edit(
                GREEDY, ("torch.full((batch, 1), bos_id,", "torch.full((batch, 1), 1,"), ("== eos_id", "== 2")),
            "drops the EOS (PAD from the EOS on)": edit(
                GREEDY, ("            out[:, i] = token[:, 0].masked_fill(finished, PAD)\n            finished |= token[:, 0] == eos_id\n",
                         "            finished |= token[:, 0] == eos_id\n            out[:, i] = token[:, 0].masked_fill(finished, PAD)\n")),
            "never stops early (always max_len decoder calls)": edit(
                GREEDY, ("            if bool(finished.all()):\n                break\n", "")),
            "generates one token too few": edit(GREEDY, ("range(max_len)", "range(max_len - 1)")),
            "reads logits[:, 1] instead of logits[:, -1]": edit(GREEDY, ("logits[:, -1]", "logits[:, 1]")),
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
