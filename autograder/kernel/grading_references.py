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
