"""Wrong and correct versions of notebook 01's graded items (see qa/discrimination.py).

Each wrong version is a mistake a learner plausibly makes, written as an edit of the solution (qa/catalog.py); each
must fail at least one of the item's tests. Each correct version is a different but valid way to write the item;
each must pass all of them.
"""

from qa.catalog import edit, solutions

S = solutions("01_rnn")
STEP, FORWARD, CONCAT = S["rnn_step"], S["rnn_forward"], S["bidirectional_concat"]
STEP_OUT = "torch.tanh(x_t @ W_xh + h_prev @ W_hh + b)"
STEP_VALIDATION = STEP[STEP.index("    if x_t.dim()"):STEP.index("    return torch.tanh")]
LOOP = FORWARD[FORWARD.index("    outputs = []"):]
CONCAT_OUT = "torch.cat([fwd, bwd.flip(1)], dim=-1)"
CONCAT_VALIDATION = CONCAT[CONCAT.index("    if fwd.dim()"):CONCAT.index("    return torch.cat")]


_STEP_CHECKS = '''
    if x_t.dim() != 2 or h_prev.dim() != 2 or x_t.shape[0] != h_prev.shape[0]:
        raise ValueError(f"bad shapes x_t {tuple(x_t.shape)}, h_prev {tuple(h_prev.shape)}")
    D, H = x_t.shape[1], h_prev.shape[1]
    if W_xh.shape != (D, H) or W_hh.shape != (H, H) or b.shape != (H,):
        raise ValueError(f"bad weights {tuple(W_xh.shape)}, {tuple(W_hh.shape)}, {tuple(b.shape)}")
'''

_FORWARD_CHECKS = '''
    if x.dim() != 3 or x.shape[1] == 0:
        raise ValueError(f"x must be (B, S, D) with S >= 1, got {tuple(x.shape)}")
    B, S, D = x.shape
    H = W_hh.shape[-1]
    if h0 is None:
        h0 = x.new_zeros(B, H)
    if h0.shape != (B, H) or W_xh.shape != (D, H) or W_hh.shape != (H, H) or b.shape != (H,):
        raise ValueError(f"shapes do not fit: x {tuple(x.shape)}, h0 {tuple(h0.shape)}, W_xh {tuple(W_xh.shape)}")
'''

_CONCAT_CHECKS = '''
    if fwd.dim() != 3 or fwd.shape != bwd.shape:
        raise ValueError(f"fwd {tuple(fwd.shape)} and bwd {tuple(bwd.shape)} must be equal (B, S, H) shapes")
'''

CATALOG = {
    "rnn_step": {
        "wrong": {
            "W_hh transposed (W_hh @ h instead of h @ W_hh)": edit(
                STEP, (STEP_OUT, "torch.tanh(x_t @ W_xh + h_prev @ W_hh.T + b)")),
            "bias dropped": edit(STEP, (STEP_OUT, "torch.tanh(x_t @ W_xh + h_prev @ W_hh)")),
            "ReLU instead of tanh": edit(STEP, (STEP_OUT, "torch.relu(x_t @ W_xh + h_prev @ W_hh + b)")),
            "sigmoid instead of tanh": edit(STEP, (STEP_OUT, "torch.sigmoid(x_t @ W_xh + h_prev @ W_hh + b)")),
            "no non-linearity": edit(STEP, (STEP_OUT, "x_t @ W_xh + h_prev @ W_hh + b")),
            "bias added outside the tanh": edit(STEP, (STEP_OUT, "torch.tanh(x_t @ W_xh + h_prev @ W_hh) + b")),
            "previous state added after the tanh (residual)": edit(
                STEP, (STEP_OUT, "torch.tanh(x_t @ W_xh + b) + h_prev @ W_hh")),
            "no shape checks (a bias of shape (1,) broadcasts silently)": edit(STEP, (STEP_VALIDATION, "")),
            "calls torch's rnn_tanh_cell": edit(
                STEP, (STEP_OUT, "torch.rnn_tanh_cell(x_t, h_prev, W_xh.T, W_hh.T, b, torch.zeros_like(b))")),
            "builds an nn.RNNCell and copies the weights in": edit(STEP, ("    return " + STEP_OUT, """\
    cell = torch.nn.RNNCell(d_in, hidden).to(x_t.dtype)
    with torch.no_grad():
        cell.weight_ih.copy_(W_xh.T); cell.weight_hh.copy_(W_hh.T); cell.bias_ih.copy_(b); cell.bias_hh.zero_()
    return cell(x_t, h_prev)""")),
            "updates h_prev in place": edit(STEP, ("    return " + STEP_OUT, """\
    with torch.no_grad():
        h_prev.copy_(torch.tanh(x_t @ W_xh + h_prev @ W_hh + b))
    return h_prev""")),
        },
        "right": {
            "matmul": '''
def rnn_step(x_t, h_prev, W_xh, W_hh, b):''' + _STEP_CHECKS + '''
    return torch.tanh(torch.matmul(x_t, W_xh) + torch.matmul(h_prev, W_hh) + b)
''',
            "einsum": '''
def rnn_step(x_t, h_prev, W_xh, W_hh, b):''' + _STEP_CHECKS + '''
    a = torch.einsum("bd,dh->bh", x_t, W_xh) + torch.einsum("bk,kh->bh", h_prev, W_hh) + b
    return torch.tanh(a)
''',
            "one matmul on concatenated [x, h] and stacked weights": '''
def rnn_step(x_t, h_prev, W_xh, W_hh, b):''' + _STEP_CHECKS + '''
    return torch.tanh(torch.cat([x_t, h_prev], dim=1) @ torch.cat([W_xh, W_hh], dim=0) + b)
''',
            "tanh written out with exp": '''
def rnn_step(x_t, h_prev, W_xh, W_hh, b):''' + _STEP_CHECKS + '''
    a = x_t @ W_xh + h_prev @ W_hh + b
    return 1 - 2 / (torch.exp(2 * a) + 1)
''',
            "python loop over the batch": '''
def rnn_step(x_t, h_prev, W_xh, W_hh, b):''' + _STEP_CHECKS + '''
    return torch.stack([torch.tanh(x_t[i] @ W_xh + h_prev[i] @ W_hh + b) for i in range(x_t.shape[0])])
''',
        },
    },
    "rnn_forward": {
        "wrong": {
            "h0 ignored (always starts from zeros)": edit(
                FORWARD, ("h = x.new_zeros(batch, hidden) if h0 is None else h0", "h = x.new_zeros(batch, hidden)")),
            "outputs shifted: holds h_0 … h_{S-1} instead of h_1 … h_S": edit(
                FORWARD, ("        h = rnn_step(x[:, t], h, W_xh, W_hh, b)\n        outputs.append(h)\n",
                          "        outputs.append(h)\n        h = rnn_step(x[:, t], h, W_xh, W_hh, b)\n"),
                ("return outputs, outputs[:, -1]", "return outputs, h")),
            "h_last taken from the first step": edit(FORWARD, ("return outputs, outputs[:, -1]", "return outputs, outputs[:, 0]")),
            "state reset to h0 at every step": edit(
                FORWARD, ("        h = rnn_step(x[:, t], h, W_xh, W_hh, b)\n        outputs.append(h)\n",
                          "        outputs.append(rnn_step(x[:, t], h, W_xh, W_hh, b))\n")),
            "time-major: stacks the outputs along dim 0": edit(
                FORWARD, ("torch.stack(outputs, dim=1)", "torch.stack(outputs, dim=0)"),
                ("return outputs, outputs[:, -1]", "return outputs, h")),
            "reads the sequence backwards": edit(
                FORWARD, ("for t in range(length):", "for t in reversed(range(length)):"),
                ("return outputs, outputs[:, -1]", "return outputs, h")),
            "state detached between steps (truncated BPTT of length 1)": edit(
                FORWARD, ("rnn_step(x[:, t], h,", "rnn_step(x[:, t], h.detach(),")),
            "calls torch's nn.functional RNN kernel (torch.rnn_tanh)": edit(FORWARD, (LOOP, """\
    out, h_n = torch.rnn_tanh(x, h[None], [W_xh.T, W_hh.T, b, torch.zeros_like(b)], True, 1, 0.0, False,
                              False, True)
    return out, h_n[0]
""")),
            "S = 0 is not an error (returns an empty sequence)": edit(
                FORWARD, (FORWARD[FORWARD.index("    if length == 0:"):FORWARD.index("    if W_hh.dim()")], ""),
                ("torch.stack(outputs, dim=1)", "torch.stack(outputs, dim=1) if outputs else x.new_zeros(batch, 0, hidden)"),
                ("return outputs, outputs[:, -1]", "return outputs, h")),
        },
        "right": {
            "loop calling rnn_step": '''
def rnn_forward(x, h0, W_xh, W_hh, b):''' + _FORWARD_CHECKS + '''
    h, outs = h0, []
    for t in range(S):
        h = rnn_step(x[:, t], h, W_xh, W_hh, b)
        outs.append(h)
    out = torch.stack(outs, dim=1)
    return out, h
''',
            "input projection for all steps at once, then the recurrence": '''
def rnn_forward(x, h0, W_xh, W_hh, b):''' + _FORWARD_CHECKS + '''
    projected = x @ W_xh + b  # (B, S, H): the part that does not depend on the state
    h, outs = h0, []
    for t in range(S):
        h = torch.tanh(projected[:, t] + h @ W_hh)
        outs.append(h.unsqueeze(1))
    return torch.cat(outs, dim=1), h
''',
            "time-major loop with unbind and einsum": '''
def rnn_forward(x, h0, W_xh, W_hh, b):''' + _FORWARD_CHECKS + '''
    h, outs = h0, []
    for x_t in x.transpose(0, 1).unbind(0):
        h = torch.tanh(torch.einsum("bd,dh->bh", x_t, W_xh) + torch.einsum("bk,kh->bh", h, W_hh) + b)
        outs.append(h)
    return torch.stack(outs).transpose(0, 1), outs[-1]
''',
        },
    },
    "bidirectional_concat": {
        "wrong": {
            "backward outputs not flipped back": edit(CONCAT, ("bwd.flip(1)", "bwd")),
            "backward half first": edit(CONCAT, (CONCAT_OUT, "torch.cat([bwd.flip(1), fwd], dim=-1)")),
            "concatenated along time instead of features": edit(CONCAT, ("], dim=-1)", "], dim=1)")),
            "flipped along the batch axis": edit(CONCAT, ("bwd.flip(1)", "bwd.flip(0)")),
            "both halves flipped": edit(CONCAT, (CONCAT_OUT, "torch.cat([fwd, bwd], dim=-1).flip(1)")),
            "summed instead of concatenated": edit(CONCAT, (CONCAT_OUT, "fwd + bwd.flip(1)")),
            "no shape check (different lengths give a confusing error)": edit(CONCAT, (CONCAT_VALIDATION, "")),
            "flips in place through a view": edit(
                CONCAT, ("    return torch.cat", "    with torch.no_grad():\n        bwd.copy_(bwd.flip(1))\n"
                                               "    return torch.cat"), ("bwd.flip(1)]", "bwd]")),
        },
        "right": {
            "cat with flip": '''
def bidirectional_concat(fwd, bwd):''' + _CONCAT_CHECKS + '''
    return torch.cat((fwd, torch.flip(bwd, dims=[1])), dim=2)
''',
            "index with a reversed arange": '''
def bidirectional_concat(fwd, bwd):''' + _CONCAT_CHECKS + '''
    S = fwd.shape[1]
    return torch.cat([fwd, bwd[:, torch.arange(S - 1, -1, -1)]], dim=-1)
''',
            "python loop over positions": '''
def bidirectional_concat(fwd, bwd):''' + _CONCAT_CHECKS + '''
    S = fwd.shape[1]
    return torch.stack([torch.cat([fwd[:, t], bwd[:, S - 1 - t]], dim=-1) for t in range(S)], dim=1)
''',
        },
    },
}
