"""Wrong and correct versions of notebook 00's graded items (see qa/discrimination.py).

Each wrong version is a mistake a learner plausibly makes, written as an edit of the solution (qa/catalog.py); each
must fail at least one of the item's tests. Each correct version is a different but valid way to write the item;
each must pass all of them.
"""

from qa.catalog import edit, solutions

S = solutions("00_orientation")
SOFTMAX = S["softmax"]
SHIFT_EXP = "    shifted = x - x.amax(dim=dim, keepdim=True).detach()\n    e = torch.exp(shifted)\n"
BODY = SHIFT_EXP + "    return e / e.sum(dim=dim, keepdim=True)\n"
EMBED = S["one_hot_embed"]
LOOKUP = ("    one_hot = (ids.long().unsqueeze(-1) == torch.arange(vocab, device=ids.device)).to(weight.dtype)\n"
          "    return one_hot @ weight\n")
CHECKS = EMBED[EMBED.index("    if weight.dim() != 2:"):EMBED.index("    vocab = weight.shape[0]")]
RANGE = EMBED[EMBED.index("    if ids.numel()"):EMBED.index("    one_hot = ")]

_VALIDATE = '''
    if weight.dim() != 2:
        raise ValueError(f"weight must be 2-D, got {tuple(weight.shape)}")
    if ids.dtype.is_floating_point or ids.dtype == torch.bool:
        raise ValueError(f"ids must be integers, got {ids.dtype}")
    V = weight.shape[0]
    if ids.numel() and (ids.min() < 0 or ids.max() >= V):
        bad = ids.min().item() if ids.min() < 0 else ids.max().item()
        raise ValueError(f"id {bad} outside [0, {V})")
'''

CATALOG = {
    "softmax": {
        "wrong": {
            "no max subtraction (overflows for large inputs)": edit(SOFTMAX, (SHIFT_EXP, "    e = torch.exp(x)\n")),
            "subtracts the minimum instead of the maximum": edit(SOFTMAX, ("x.amax(", "x.amin(")),
            "subtracts one global maximum (rows far below it underflow to 0/0)": edit(
                SOFTMAX, ("x.amax(dim=dim, keepdim=True)", "x.max()")),
            "ignores dim: always normalises the last axis": edit(
                SOFTMAX, ("x.amax(dim=dim", "x.amax(dim=-1"), ("e.sum(dim=dim", "e.sum(dim=-1")),
            "normalises over the wrong axis (dim 0)": edit(
                SOFTMAX, ("x.amax(dim=dim", "x.amax(dim=0"), ("e.sum(dim=dim", "e.sum(dim=0")),
            "calls the built-in torch.softmax": edit(SOFTMAX, (BODY, "    return torch.softmax(x, dim=dim)\n")),
            "built-in reached through log_softmax().exp()": "import torch.nn.functional as _F\n" + edit(
                SOFTMAX, (BODY, "    return _F.log_softmax(x, dim=dim).exp()\n")),
            "built-in captured under another name and errors hidden": "_sm = torch.nn.Softmax\n" + edit(
                SOFTMAX, (BODY, "    try:\n        return _sm(dim=dim)(x)\n    except Exception:\n"
                                + BODY.replace("    ", "        "))),
            "always returns float32": edit(SOFTMAX, ("    shifted = x - ", "    x = x.float()\n    shifted = x - ")),
            "modifies its input in place": edit(SOFTMAX, (BODY, """    with torch.no_grad():
        x -= x.amax(dim=dim, keepdim=True)
        x.exp_()
        x /= x.sum(dim=dim, keepdim=True)
    return x
""")),
            "divides by the maximum instead of subtracting it": edit(
                SOFTMAX, ("x - x.amax(dim=dim, keepdim=True)", "x / x.abs().amax(dim=dim, keepdim=True)")),
            "forgets keepdim (broadcasts the sum along the wrong axis)": edit(
                SOFTMAX, ("e / e.sum(dim=dim, keepdim=True)", "e / e.sum(dim=dim)")),
        },
        "visible": {
            "no max subtraction (overflows for large inputs)": "subtract the maximum",
        },
        "right": {
            "max-shifted, vectorised (torch.max values)": '''
def softmax(x, dim=-1):
    shifted = x - torch.max(x, dim=dim, keepdim=True).values
    e = shifted.exp()
    return e / e.sum(dim=dim, keepdim=True)
''',
            "logsumexp": '''
def softmax(x, dim=-1):
    return torch.exp(x - torch.logsumexp(x, dim=dim, keepdim=True))
''',
            "python loop over slices": '''
def softmax(x, dim=-1):
    moved = x.movedim(dim, -1)
    rows = moved.reshape(-1, moved.shape[-1])
    out = []
    for row in rows:
        e = torch.exp(row - row.max())
        out.append(e / e.sum())
    return torch.stack(out).reshape(moved.shape).movedim(-1, dim)
''',
        },
    },
    "one_hot_embed": {
        "wrong": {
            "calls the built-in F.embedding": "import torch.nn.functional as _F\n" + edit(
                EMBED, (LOOKUP, "    return _F.embedding(ids, weight)\n")),
            "ids shifted by one (treats ids as starting at 1)": edit(
                EMBED, ("(ids.long().unsqueeze(-1)", "((ids.long() - 1).clamp(min=0).unsqueeze(-1)")),
            "one-hot sized by the largest id, not by V": edit(
                EMBED, ("torch.arange(vocab, device", "torch.arange(int(ids.max()) + 1, device")),
            "one-hot always float32 (breaks float64 weights)": edit(EMBED, (").to(weight.dtype)", ").float()")),
            "no validation: ids outside the vocabulary are not a ValueError": edit(EMBED, (CHECKS, ""), (RANGE, "")),
            "negative ids accepted (they wrap around to the last rows)": edit(
                EMBED, ("ids.min() < 0 or ids.max() >= vocab", "ids.max() >= vocab"),
                (LOOKUP, "    return weight[ids]\n")),
            "detaches the weight (no gradient reaches it)": edit(
                EMBED, ("return one_hot @ weight", "return one_hot @ weight.detach()")),
            "sums the sequence into one vector (a bag of words)": edit(
                EMBED, ("return one_hot @ weight", "return (one_hot @ weight).sum(dim=-2) if ids.dim() > 1 "
                        "else one_hot @ weight")),
        },
        "right": {
            "row indexing": '''
def one_hot_embed(ids, weight):''' + _VALIDATE + '''
    return weight[ids.long()]
''',
            "F.one_hot times the matrix": '''
def one_hot_embed(ids, weight):''' + _VALIDATE + '''
    return torch.nn.functional.one_hot(ids.long(), V).to(weight.dtype) @ weight
''',
            "einsum over a hand-made one-hot": '''
def one_hot_embed(ids, weight):''' + _VALIDATE + '''
    one_hot = torch.zeros(*ids.shape, V, dtype=weight.dtype)
    one_hot.scatter_(-1, ids.long().unsqueeze(-1), 1.0)
    return torch.einsum("...v,vd->...d", one_hot, weight)
''',
            "python loop over positions": '''
def one_hot_embed(ids, weight):''' + _VALIDATE + '''
    flat = [weight[int(i)] for i in ids.reshape(-1)]
    out = torch.stack(flat) if flat else weight.new_zeros(0, weight.shape[1])
    return out.reshape(*ids.shape, weight.shape[1])
''',
        },
    },
}
