"""Wrong and correct versions of notebook 00's graded items (see qa/discrimination.py).

Each wrong version is a mistake a learner plausibly makes; each must fail at least one of the item's tests.
Each correct version is a different but valid way to write the item; each must pass all of them.
"""

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
            "no max subtraction (overflows for large inputs)": '''
def softmax(x, dim=-1):
    e = torch.exp(x)
    return e / e.sum(dim=dim, keepdim=True)
''',
            "subtracts the minimum instead of the maximum": '''
def softmax(x, dim=-1):
    e = torch.exp(x - x.amin(dim=dim, keepdim=True))
    return e / e.sum(dim=dim, keepdim=True)
''',
            "subtracts one global maximum (rows far below it underflow to 0/0)": '''
def softmax(x, dim=-1):
    e = torch.exp(x - x.max())
    return e / e.sum(dim=dim, keepdim=True)
''',
            "ignores dim: always normalises the last axis": '''
def softmax(x, dim=-1):
    e = torch.exp(x - x.amax(dim=-1, keepdim=True))
    return e / e.sum(dim=-1, keepdim=True)
''',
            "normalises over the wrong axis (dim 0)": '''
def softmax(x, dim=-1):
    e = torch.exp(x - x.amax(dim=0, keepdim=True))
    return e / e.sum(dim=0, keepdim=True)
''',
            "calls the built-in torch.softmax": '''
def softmax(x, dim=-1):
    return torch.softmax(x, dim=dim)
''',
            "built-in reached through log_softmax().exp()": '''
import torch.nn.functional as _F
def softmax(x, dim=-1):
    return _F.log_softmax(x, dim=dim).exp()
''',
            "built-in captured under another name and errors hidden": '''
_sm = torch.nn.Softmax
def softmax(x, dim=-1):
    try:
        return _sm(dim=dim)(x)
    except Exception:
        e = torch.exp(x - x.amax(dim=dim, keepdim=True))
        return e / e.sum(dim=dim, keepdim=True)
''',
            "always returns float32": '''
def softmax(x, dim=-1):
    x = x.float()
    e = torch.exp(x - x.amax(dim=dim, keepdim=True))
    return e / e.sum(dim=dim, keepdim=True)
''',
            "modifies its input in place": '''
def softmax(x, dim=-1):
    with torch.no_grad():
        x -= x.amax(dim=dim, keepdim=True)
        x.exp_()
        x /= x.sum(dim=dim, keepdim=True)
    return x
''',
            "divides by the maximum instead of subtracting it": '''
def softmax(x, dim=-1):
    e = torch.exp(x / x.abs().amax(dim=dim, keepdim=True))
    return e / e.sum(dim=dim, keepdim=True)
''',
            "forgets keepdim (broadcasts the sum along the wrong axis)": '''
def softmax(x, dim=-1):
    e = torch.exp(x - x.amax(dim=dim, keepdim=True))
    return e / e.sum(dim=dim)
''',
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
            "calls the built-in F.embedding": '''
import torch.nn.functional as _F
def one_hot_embed(ids, weight):''' + _VALIDATE + '''
    return _F.embedding(ids, weight)
''',
            "ids shifted by one (treats ids as starting at 1)": '''
def one_hot_embed(ids, weight):''' + _VALIDATE + '''
    return weight[(ids - 1).clamp(min=0)]
''',
            "one-hot sized by the largest id, not by V": '''
def one_hot_embed(ids, weight):''' + _VALIDATE + '''
    return torch.nn.functional.one_hot(ids.long()).to(weight.dtype) @ weight
''',
            "one-hot always float32 (breaks float64 weights)": '''
def one_hot_embed(ids, weight):''' + _VALIDATE + '''
    return torch.nn.functional.one_hot(ids.long(), weight.shape[0]).float() @ weight
''',
            "no validation: ids outside the vocabulary are not a ValueError": '''
def one_hot_embed(ids, weight):
    return weight[ids]
''',
            "negative ids accepted (they wrap around to the last rows)": '''
def one_hot_embed(ids, weight):
    if weight.dim() != 2 or ids.dtype.is_floating_point:
        raise ValueError("bad input")
    if ids.numel() and ids.max() >= weight.shape[0]:
        raise ValueError(f"id {ids.max().item()} too large")
    return weight[ids]
''',
            "detaches the weight (no gradient reaches it)": '''
def one_hot_embed(ids, weight):''' + _VALIDATE + '''
    return weight.detach()[ids]
''',
            "sums the sequence into one vector (a bag of words)": '''
def one_hot_embed(ids, weight):''' + _VALIDATE + '''
    return weight[ids].sum(dim=-2) if ids.dim() > 1 else weight[ids]
''',
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
