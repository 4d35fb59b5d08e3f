"""Trusted stand-ins for earlier items, kernel side: items are graded independently.

While the hidden tests of an item that builds on an earlier one run (``rnn_forward`` calls ``rnn_step``), the probe
puts these in the notebook's namespace in place of the learner's version, so a mistake in the earlier item is not
counted twice. They are plain, correct implementations of the course's own contracts; the grader's references for
the verdicts live in ``autograder/external/``, outside the kernel.
"""

from __future__ import annotations

import torch


def rnn_step(x_t, h_prev, W_xh, W_hh, b):  # noqa: N803 - the course's names
    if x_t.dim() != 2 or h_prev.dim() != 2 or x_t.shape[0] != h_prev.shape[0]:
        raise ValueError(f"x_t {tuple(x_t.shape)} and h_prev {tuple(h_prev.shape)} do not fit")
    if tuple(W_xh.shape) != (x_t.shape[1], h_prev.shape[1]) or tuple(W_hh.shape) != (h_prev.shape[1],) * 2 \
            or tuple(b.shape) != (h_prev.shape[1],):
        raise ValueError(f"W_xh {tuple(W_xh.shape)}, W_hh {tuple(W_hh.shape)} or b {tuple(b.shape)} does not fit")
    return torch.tanh(x_t @ W_xh + h_prev @ W_hh + b)


# -- 04_senet ---------------------------------------------------------------------------------------------------------

def global_average_pool(x):
    if x.dim() != 4:
        raise ValueError(f"global_average_pool expects a (B, C, H, W) tensor, got shape {tuple(x.shape)}")
    return x.mean(dim=(2, 3))


class SEBlock(torch.nn.Module):
    def __init__(self, channels, reduction=16):
        super().__init__()
        if channels < 1 or reduction < 1:
            raise ValueError(f"channels and reduction must be at least 1, got {channels} and {reduction}")
        hidden = max(1, channels // reduction)
        self.fc1 = torch.nn.Linear(channels, hidden)
        self.fc2 = torch.nn.Linear(hidden, channels)

    def gate(self, x):
        if x.dim() != 4 or x.shape[1] != self.fc1.in_features:
            raise ValueError(f"SEBlock({self.fc1.in_features}) got shape {tuple(x.shape)}")
        return torch.sigmoid(self.fc2(torch.relu(self.fc1(global_average_pool(x)))))

    def forward(self, x):
        return x * self.gate(x)[:, :, None, None]


# -- 06_multi_head_attention ------------------------------------------------------------------------------------------

def split_heads(x, num_heads):
    if x.dim() != 3 or num_heads < 1 or x.shape[-1] % num_heads:
        raise ValueError(f"split_heads: x {tuple(x.shape)} cannot be split into {num_heads} heads")
    batch, length, width = x.shape
    return x.reshape(batch, length, num_heads, width // num_heads).transpose(1, 2)


def merge_heads(x):
    if x.dim() != 4:
        raise ValueError(f"merge_heads expects (B, h, S, d), got shape {tuple(x.shape)}")
    batch, heads, length, width = x.shape
    return x.transpose(1, 2).reshape(batch, length, heads * width)


# -- 08_vision_transformer --------------------------------------------------------------------------------------------

def patchify(images, patch_size):
    if images.dim() != 4 or patch_size < 1 or images.shape[2] % patch_size or images.shape[3] % patch_size:
        raise ValueError(f"patchify: images {tuple(images.shape)} cannot be cut into patches of {patch_size}")
    b, c, h, w = images.shape
    p = patch_size
    return images.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5).reshape(b, (h // p) * (w // p),
                                                                                         c * p * p)


class PatchEmbedding(torch.nn.Module):
    def __init__(self, image_size, patch_size, in_channels, d_model):
        super().__init__()
        if patch_size < 1 or image_size % patch_size:
            raise ValueError(f"patch_size {patch_size} does not divide image_size {image_size}")
        self.image_size, self.in_channels = image_size, in_channels
        self.num_patches = (image_size // patch_size) ** 2
        self.proj = torch.nn.Conv2d(in_channels, d_model, kernel_size=patch_size, stride=patch_size)

    def forward(self, images):
        expected = (self.in_channels, self.image_size, self.image_size)
        if images.dim() != 4 or tuple(images.shape[1:]) != expected:
            raise ValueError(f"expected images of shape (B, {expected}), got {tuple(images.shape)}")
        return self.proj(images).flatten(2).transpose(1, 2)


# -- 03_bahdanau_attention --------------------------------------------------------------------------------------------

def masked_softmax(scores, mask=None):
    if mask is None:
        return torch.softmax(scores, dim=-1)
    if mask.dtype != torch.bool or torch.broadcast_shapes(mask.shape, scores.shape) != scores.shape:
        raise ValueError(f"mask {tuple(mask.shape)} ({mask.dtype}) does not fit scores {tuple(scores.shape)}")
    allowed = mask.expand_as(scores)
    has_key = allowed.any(-1, keepdim=True)
    return torch.softmax(scores.masked_fill(~allowed, -torch.inf).masked_fill(~has_key, 0.0), dim=-1) * has_key


class AdditiveAttention(torch.nn.Module):
    def __init__(self, query_dim, key_dim, attn_dim):
        super().__init__()
        self.query_proj = torch.nn.Linear(query_dim, attn_dim, bias=False)
        self.key_proj = torch.nn.Linear(key_dim, attn_dim, bias=False)
        self.v = torch.nn.Linear(attn_dim, 1, bias=False)

    def forward(self, query, keys, values, mask=None):
        if query.dim() not in (2, 3) or keys.dim() != 3 or values.dim() != 3 or \
                query.shape[0] != keys.shape[0] or keys.shape[:2] != values.shape[:2] or \
                query.shape[-1] != self.query_proj.in_features or keys.shape[-1] != self.key_proj.in_features:
            raise ValueError(f"query {tuple(query.shape)}, keys {tuple(keys.shape)} and values "
                             f"{tuple(values.shape)} do not fit")
        single = query.dim() == 2
        q = query[:, None] if single else query
        if mask is not None:
            mask = mask[:, None] if single else mask
        hidden = torch.tanh(self.query_proj(q)[:, :, None, :] + self.key_proj(keys)[:, None, :, :])
        weights = masked_softmax(self.v(hidden).squeeze(-1), mask)
        context = weights @ values
        return (context[:, 0], weights[:, 0]) if single else (context, weights)


# -- 02_seq2seq: models handed to the learner's greedy_decode ---------------------------------------------------------

class _PlanDecoder(torch.nn.Module):
    """Predicts ``plan[row, k]`` at its k-th call (other logits random but lower); records what it was given."""

    def __init__(self, plan, vocab):
        super().__init__()
        self.plan, self.vocab, self.fed, self.states, self.contexts = plan, vocab, [], [], []

    def forward(self, tokens, context, state=None):
        k = len(self.fed)
        self.fed.append(tokens.detach().clone())
        self.states.append(None if state is None else state.detach().clone())
        self.contexts.append(context.detach().clone())
        logits = torch.randn(tokens.shape[0], 1, self.vocab, generator=torch.Generator().manual_seed(k))
        logits[torch.arange(tokens.shape[0]), 0, self.plan[:, min(k, self.plan.shape[1] - 1)]] = 9.0
        return logits, torch.full_like(context, float(k + 1)) + context


class _PlanEncoder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, src, lengths=None):
        self.calls += 1
        return torch.zeros(src.shape[0], src.shape[1], 4), src.float().sum(1, keepdim=True).repeat(1, 4)


class PlanModel(torch.nn.Module):
    """A scripted encoder-decoder: ``record()`` returns (decoder inputs, states, contexts, encoder calls)."""

    def __init__(self, plan, vocab=12):
        super().__init__()
        self.encoder, self.decoder = _PlanEncoder(), _PlanDecoder(plan.long(), vocab)

    def record(self):
        return (list(self.decoder.fed), list(self.decoder.states), list(self.decoder.contexts), self.encoder.calls)


class _GRUEncoder(torch.nn.Module):
    def __init__(self, vocab, embed, hidden):
        super().__init__()
        self.embedding = torch.nn.Embedding(vocab, embed, padding_idx=0)
        self.rnn = torch.nn.GRU(embed, hidden, batch_first=True)

    def forward(self, src, lengths=None):
        lengths = (src != 0).sum(1)
        out, _ = self.rnn(self.embedding(src))
        return out, out[torch.arange(src.shape[0]), lengths - 1]


class _GRUDecoder(torch.nn.Module):
    def __init__(self, vocab, embed, hidden):
        super().__init__()
        self.embedding = torch.nn.Embedding(vocab, embed, padding_idx=0)
        self.rnn = torch.nn.GRU(embed, hidden, batch_first=True)
        self.out = torch.nn.Linear(hidden, vocab)

    def forward(self, tokens, context, state=None):
        out, h = self.rnn(self.embedding(tokens), (context if state is None else state)[None].contiguous())
        return self.out(out), h[0]


class GRUSeq2Seq(torch.nn.Module):
    """A small GRU encoder-decoder whose weights the grader loads."""

    def __init__(self, src_vocab, tgt_vocab, embed, hidden):
        super().__init__()
        self.encoder, self.decoder = _GRUEncoder(src_vocab, embed, hidden), _GRUDecoder(tgt_vocab, embed, hidden)


# -- 07_transformer (the grader composes its references from these too: autograder/external/transformer.py) -----------

def sinusoidal_positional_encoding(max_len, d_model):
    if d_model <= 0 or d_model % 2 or max_len < 1:
        raise ValueError(f"max_len = {max_len} must be at least 1 and d_model = {d_model} positive and even")
    angle = torch.arange(max_len, dtype=torch.float64)[:, None] * 10000.0 ** (
        -torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)
    return torch.stack([torch.sin(angle), torch.cos(angle)], dim=-1).reshape(max_len, d_model).float()


def attend(attention, query, key, value, mask=None):
    """``attention`` (an nn.MultiheadAttention, batch first) with the course's mask rule (True = allowed); a query
    with no allowed key gets a zero output."""
    if mask is None:
        return attention(query, key, value, need_weights=False)[0]
    batch, t_q, t_k = query.shape[0], query.shape[1], key.shape[1]
    if mask.dtype != torch.bool or not 2 <= mask.dim() <= 3 or mask.shape[-1] != t_k or mask.shape[-2] not in (1, t_q):
        raise ValueError(f"mask {mask.dtype} {tuple(mask.shape)} does not fit ({batch}, {t_q}, {t_k})")
    allowed = mask.expand(batch, t_q, t_k)
    has_key = allowed.any(dim=-1, keepdim=True)
    blocked = (~(allowed | ~has_key)).repeat_interleave(attention.num_heads, dim=0)
    return attention(query, key, value, attn_mask=blocked, need_weights=False)[0] * has_key


class PositionwiseFeedForward(torch.nn.Module):
    def __init__(self, d_model, d_ff, dropout=0.0):
        super().__init__()
        self.d_model = d_model
        self.linear1, self.linear2 = torch.nn.Linear(d_model, d_ff), torch.nn.Linear(d_ff, d_model)
        self.dropout = torch.nn.Dropout(dropout)

    def forward(self, x):
        if x.shape[-1] != self.d_model:
            raise ValueError(f"expected input of shape (..., {self.d_model}), got {tuple(x.shape)}")
        return self.linear2(self.dropout(torch.relu(self.linear1(x))))


class EncoderLayer(torch.nn.Module):
    def __init__(self, d_model, num_heads, d_ff, dropout=0.0, norm_first=False):
        super().__init__()
        if num_heads < 1 or d_model % num_heads:
            raise ValueError(f"num_heads = {num_heads} must divide d_model = {d_model}")
        self.d_model, self.norm_first = d_model, norm_first
        self.self_attn = torch.nn.MultiheadAttention(d_model, num_heads, dropout=dropout, batch_first=True)
        self.ffn = PositionwiseFeedForward(d_model, d_ff, dropout)
        self.norm1, self.norm2 = torch.nn.LayerNorm(d_model), torch.nn.LayerNorm(d_model)
        self.dropout1, self.dropout2 = torch.nn.Dropout(dropout), torch.nn.Dropout(dropout)

    def forward(self, x, mask=None):
        if x.dim() != 3 or x.shape[-1] != self.d_model:
            raise ValueError(f"expected x of shape (B, S, {self.d_model}), got {tuple(x.shape)}")
        if self.norm_first:
            h = self.norm1(x)
            x = x + self.dropout1(attend(self.self_attn, h, h, h, mask))
            return x + self.dropout2(self.ffn(self.norm2(x)))
        x = self.norm1(x + self.dropout1(attend(self.self_attn, x, x, x, mask)))
        return self.norm2(x + self.dropout2(self.ffn(x)))


class DecoderLayer(torch.nn.Module):
    def __init__(self, d_model, num_heads, d_ff, dropout=0.0, norm_first=False):
        super().__init__()
        if num_heads < 1 or d_model % num_heads:
            raise ValueError(f"num_heads = {num_heads} must divide d_model = {d_model}")
        self.d_model, self.norm_first = d_model, norm_first
        self.self_attn = torch.nn.MultiheadAttention(d_model, num_heads, dropout=dropout, batch_first=True)
        self.cross_attn = torch.nn.MultiheadAttention(d_model, num_heads, dropout=dropout, batch_first=True)
        self.ffn = PositionwiseFeedForward(d_model, d_ff, dropout)
        self.norm1, self.norm2, self.norm3 = (torch.nn.LayerNorm(d_model) for _ in range(3))
        self.dropout1, self.dropout2, self.dropout3 = (torch.nn.Dropout(dropout) for _ in range(3))

    def forward(self, x, memory, tgt_mask=None, memory_mask=None):
        if x.dim() != 3 or memory.dim() != 3 or x.shape[-1] != self.d_model or memory.shape[-1] != self.d_model \
                or x.shape[0] != memory.shape[0]:
            raise ValueError(f"expected x (B, T, {self.d_model}) and memory (B, S, {self.d_model}), "
                             f"got {tuple(x.shape)} and {tuple(memory.shape)}")
        if self.norm_first:
            h = self.norm1(x)
            x = x + self.dropout1(attend(self.self_attn, h, h, h, tgt_mask))
            h = self.norm2(x)
            x = x + self.dropout2(attend(self.cross_attn, h, memory, memory, memory_mask))
            return x + self.dropout3(self.ffn(self.norm3(x)))
        x = self.norm1(x + self.dropout1(attend(self.self_attn, x, x, x, tgt_mask)))
        x = self.norm2(x + self.dropout2(attend(self.cross_attn, x, memory, memory, memory_mask)))
        return self.norm3(x + self.dropout3(self.ffn(x)))


class Transformer(torch.nn.Module):
    PAD = 0

    def __init__(self, src_vocab_size, tgt_vocab_size, d_model=64, num_heads=4, num_layers=2, d_ff=128, dropout=0.1,
                 max_len=64, norm_first=False):
        super().__init__()
        self.d_model, self.max_len = d_model, max_len
        self.src_embed = torch.nn.Embedding(src_vocab_size, d_model)
        self.tgt_embed = torch.nn.Embedding(tgt_vocab_size, d_model)
        for embedding in (self.src_embed, self.tgt_embed):
            torch.nn.init.normal_(embedding.weight, std=d_model ** -0.5)
        self.register_buffer("pe", sinusoidal_positional_encoding(max_len, d_model))
        layer = dict(d_model=d_model, num_heads=num_heads, d_ff=d_ff, dropout=dropout, norm_first=norm_first)
        self.encoder_layers = torch.nn.ModuleList([EncoderLayer(**layer) for _ in range(num_layers)])
        self.decoder_layers = torch.nn.ModuleList([DecoderLayer(**layer) for _ in range(num_layers)])
        self.encoder_norm = torch.nn.LayerNorm(d_model) if norm_first else torch.nn.Identity()
        self.decoder_norm = torch.nn.LayerNorm(d_model) if norm_first else torch.nn.Identity()
        self.output = torch.nn.Linear(d_model, tgt_vocab_size)
        self.dropout = torch.nn.Dropout(dropout)

    def encode(self, src):
        if src.dim() != 2 or src.shape[1] > self.max_len:
            raise ValueError(f"src must be (B, S) with S <= max_len = {self.max_len}, got {tuple(src.shape)}")
        src_mask = (src != self.PAD)[:, None, :]
        x = self.dropout(self.src_embed(src) * self.d_model ** 0.5 + self.pe[:src.shape[1]])
        for layer in self.encoder_layers:
            x = layer(x, src_mask)
        return self.encoder_norm(x), src_mask

    def decode(self, tgt_in, memory, src_mask):
        if tgt_in.dim() != 2 or tgt_in.shape[1] > self.max_len or memory.shape[0] != tgt_in.shape[0]:
            raise ValueError(f"tgt_in {tuple(tgt_in.shape)} and memory {tuple(memory.shape)} do not fit")
        length = tgt_in.shape[1]
        causal = torch.ones(length, length, dtype=torch.bool, device=tgt_in.device).tril()
        y = self.dropout(self.tgt_embed(tgt_in) * self.d_model ** 0.5 + self.pe[:length])
        for layer in self.decoder_layers:
            y = layer(y, memory, causal, src_mask)
        return self.output(self.decoder_norm(y))

    def forward(self, src, tgt_in):
        return self.decode(tgt_in, *self.encode(src))


class PrefixModel:
    """07's greedy_decode gets this: the next token depends on the whole prefix and the source (the sum of the
    prefix ids plus the first source id times the length, mod V), EOS when that sum is divisible by 5. ``record()``
    returns (encode calls, the prefix length of every decode call)."""

    def __init__(self, vocab, eos):
        self.vocab, self.eos, self.encode_calls, self.decode_lengths = vocab, eos, 0, []

    def encode(self, src):
        self.encode_calls += 1
        return src.double(), (src != 0)[:, None, :]

    def decode(self, tgt_in, memory, src_mask):
        self.decode_lengths.append(int(tgt_in.shape[1]))
        total = tgt_in.long().cumsum(1) + memory[:, :1].long() * torch.arange(1, tgt_in.shape[1] + 1)[None, :]
        token = torch.where(total % 5 == 0, torch.full_like(total, self.eos), 3 + total % (self.vocab - 3))
        logits = torch.randn(*token.shape, self.vocab, dtype=torch.float64) * 0.1
        return logits.scatter(-1, token[..., None], 10.0)

    def record(self):
        return self.encode_calls, list(self.decode_lengths)


def training_flag(module):
    return bool(module.training)
