"""Wrong and correct versions of notebook 04's graded items (see qa/discrimination.py).

Each wrong version is a mistake a learner plausibly makes, written as an edit of the solution (qa/catalog.py); each
must fail at least one of the item's tests. Each correct version is a different but valid way to write the item;
each must pass all of them.
"""

from qa.catalog import edit, solutions

S = solutions("04_senet")
GAP, SE, RES = S["global_average_pool"], S["SEBlock"], S["SEResidualBlock"]
MEAN = "return x.mean(dim=(2, 3))"
GATE = "torch.sigmoid(self.fc2(torch.relu(self.fc1(squeezed))))"
SE_CHECK = SE[SE.index("        if x.dim() != 4"):SE.index("        squeezed = ")]
RES_CHECK = RES[RES.index("        if x.dim() != 4"):RES.index("        branch = ")]


_GAP_CHECK = '''
    if x.dim() != 4:
        raise ValueError(f"expected (B, C, H, W), got {tuple(x.shape)}")
'''

_SE_INIT = '''
    def __init__(self, channels, reduction=16):
        super().__init__()
        if channels < 1 or reduction < 1:
            raise ValueError(f"bad channels {channels} / reduction {reduction}")
        hidden = max(1, channels // reduction)
        self.fc1 = nn.Linear(channels, hidden)
        self.fc2 = nn.Linear(hidden, channels)
'''

_SE_CHECK = '''
        if x.dim() != 4 or x.shape[1] != self.fc1.in_features:
            raise ValueError(f"expected (B, {self.fc1.in_features}, H, W), got {tuple(x.shape)}")
'''

_SE_FORWARD = '''
    def forward(self, x):
        return x * self.gate(x)[:, :, None, None]
'''


def _se(gate_body: str, forward: str = _SE_FORWARD, init: str = _SE_INIT) -> str:
    return "class SEBlock(nn.Module):" + init + '''
    def gate(self, x):''' + _SE_CHECK + gate_body + forward


_RES_INIT = '''
    def __init__(self, channels, reduction=16):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.se = SEBlock(channels, reduction)
'''

_RES_CHECK = '''
        if x.dim() != 4 or x.shape[1] != self.conv1.in_channels:
            raise ValueError(f"expected (B, {self.conv1.in_channels}, H, W), got {tuple(x.shape)}")
'''


def _res(body: str, init: str = _RES_INIT) -> str:
    return "class SEResidualBlock(nn.Module):" + init + '''
    def forward(self, x):''' + _RES_CHECK + body


CATALOG = {
    "global_average_pool": {
        "wrong": {
            "averages over channels and height (dims 1, 2)": edit(GAP, (MEAN, "return x.mean(dim=(1, 2))")),
            "sums instead of averaging": edit(GAP, (MEAN, "return x.sum(dim=(2, 3))")),
            "global max pooling": edit(GAP, (MEAN, "return x.amax(dim=(2, 3))")),
            "keeps the pooled dimensions, (B, C, 1, 1)": edit(GAP, (MEAN, "return x.mean(dim=(2, 3), keepdim=True)")),
            "calls the built-in adaptive_avg_pool2d": "import torch.nn.functional as _F\n" + edit(
                GAP, (MEAN, "return _F.adaptive_avg_pool2d(x, 1).flatten(1)")),
            "calls avg_pool2d with a full-size kernel": "import torch.nn.functional as _F\n" + edit(
                GAP, (MEAN, "return _F.avg_pool2d(x, kernel_size=tuple(x.shape[2:])).flatten(1)")),
            "divides by H·H (assumes a square map)": edit(GAP, (MEAN, "return x.sum(dim=(2, 3)) / (x.shape[2] * x.shape[2])")),
            "no validation (a 3-D input is silently pooled)": edit(
                GAP, (GAP[GAP.index("    if x.dim() != 4"):GAP.index("    return ")], ""), (MEAN, "return x.mean(dim=(-2, -1))")),
            "always returns float32": edit(GAP, (MEAN, "return x.float().mean(dim=(2, 3))")),
        },
        "right": {
            "sum divided by H·W": '''
def global_average_pool(x):''' + _GAP_CHECK + '''
    return x.sum(dim=(2, 3)) / (x.shape[2] * x.shape[3])
''',
            "flatten the positions, then mean": '''
def global_average_pool(x):''' + _GAP_CHECK + '''
    return x.flatten(2).mean(-1)
''',
            "mean over width, then over height": '''
def global_average_pool(x):''' + _GAP_CHECK + '''
    return x.mean(-1).mean(-1)
''',
        },
    },
    "SEBlock": {
        "wrong": {
            "softmax over the channels instead of a sigmoid per channel": edit(
                SE, (GATE, "torch.softmax(self.fc2(torch.relu(self.fc1(squeezed))), dim=-1)")),
            "softmax written by hand (gates sum to 1)": edit(
                SE, ("        return " + GATE, "        e = torch.exp(self.fc2(torch.relu(self.fc1(squeezed))))\n"
                                            "        return e / e.sum(-1, keepdim=True)")),
            "no ReLU between the layers": edit(SE, (GATE, "torch.sigmoid(self.fc2(self.fc1(squeezed)))")),
            "tanh gate": edit(SE, (GATE, "torch.tanh(self.fc2(torch.relu(self.fc1(squeezed))))")),
            "squeezes with max instead of mean": edit(SE, ("squeezed = global_average_pool(x)", "squeezed = x.amax(dim=(2, 3))")),
            "layers without bias": edit(
                SE, ("nn.Linear(channels, hidden)", "nn.Linear(channels, hidden, bias=False)"),
                ("nn.Linear(hidden, channels)", "nn.Linear(hidden, channels, bias=False)")),
            "hidden width channels * reduction": edit(
                SE, ("hidden = max(1, channels // reduction)", "hidden = channels * reduction")),
            "ReLU and sigmoid swapped": edit(SE, (GATE, "torch.relu(self.fc2(torch.sigmoid(self.fc1(squeezed))))")),
            "adds the gate instead of multiplying": edit(
                SE, ("return x * self.gate(x)[:, :, None, None]", "return x + self.gate(x)[:, :, None, None]")),
            "scales by the squeezed features, not by the gate": edit(
                SE, ("return x * self.gate(x)[:, :, None, None]",
                     "self.gate(x)\n        return x * global_average_pool(x)[:, :, None, None]")),
            "no shape check (wrong channel count fails inside Linear with a RuntimeError)": edit(SE, (SE_CHECK, "")),
        },
        "visible": {
            "softmax over the channels instead of a sigmoid per channel": "per-channel sigmoid",
            "softmax written by hand (gates sum to 1)": "not a sigmoid",
        },
        "right": {
            "F.linear with the layers' weights, sigmoid by hand": _se('''
        z = x.mean(dim=(2, 3))
        h = torch.relu(torch.nn.functional.linear(z, self.fc1.weight, self.fc1.bias))
        return 1.0 / (1.0 + torch.exp(-torch.nn.functional.linear(h, self.fc2.weight, self.fc2.bias)))
'''),
            "matmul with the transposed weights, einsum to scale": _se('''
        z = global_average_pool(x)
        h = (z @ self.fc1.weight.T + self.fc1.bias).clamp_min(0)
        return torch.sigmoid(h @ self.fc2.weight.T + self.fc2.bias)
''', forward='''
    def forward(self, x):
        return torch.einsum("bchw,bc->bchw", x, self.gate(x))
'''),
            "loop over the images of the batch": _se('''
        gates = [torch.sigmoid(self.fc2(torch.relu(self.fc1(image.mean(dim=(1, 2)))))) for image in x]
        return torch.stack(gates)
'''),
        },
    },
    "SEResidualBlock": {
        "wrong": {
            "SE after the addition (gates the identity path too)": edit(
                RES, ("self.se(self.bn2(self.conv2(branch)))", "self.bn2(self.conv2(branch))"),
                ("torch.relu(x + branch)", "torch.relu(self.se(x + branch))")),
            "SE on the identity path": edit(
                RES, ("self.se(self.bn2(self.conv2(branch)))", "self.bn2(self.conv2(branch))"),
                ("torch.relu(x + branch)", "torch.relu(self.se(x) + branch)")),
            "no residual connection": edit(RES, ("torch.relu(x + branch)", "torch.relu(branch)")),
            "no final ReLU": edit(RES, ("return torch.relu(x + branch)", "return x + branch")),
            "ReLU on the branch before the addition instead of after it": edit(
                RES, ("return torch.relu(x + branch)", "return x + torch.relu(branch)")),
            "SE before the second batch norm": edit(
                RES, ("self.se(self.bn2(self.conv2(branch)))", "self.bn2(self.se(self.conv2(branch)))")),
            "SE in the middle of the branch (after the first conv)": edit(
                RES, ("branch = torch.relu(self.bn1(self.conv1(x)))", "branch = self.se(torch.relu(self.bn1(self.conv1(x))))"),
                ("self.se(self.bn2(self.conv2(branch)))", "self.bn2(self.conv2(branch))")),
            "no ReLU between the two convolutions": edit(
                RES, ("branch = torch.relu(self.bn1(self.conv1(x)))", "branch = self.bn1(self.conv1(x))")),
            "convolutions with bias": edit(
                RES, ("        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)",
                      "        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)"),
                ("        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)",
                 "        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)")),
            "one batch norm shared by both convolutions": edit(
                RES, ("self.se(self.bn2(self.conv2(branch)))", "self.se(self.bn1(self.conv2(branch)))")),
            "no shape check": edit(RES, (RES_CHECK, "")),
        },
        "right": {
            "gate applied by hand through se.gate": _res('''
        branch = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        branch = branch * self.se.gate(branch)[:, :, None, None]
        return (x + branch).clamp_min(0)
'''),
            "functional convolutions with the modules' weights": _res('''
        F_ = torch.nn.functional
        h = torch.relu(self.bn1(F_.conv2d(x, self.conv1.weight, padding=1)))
        h = self.bn2(F_.conv2d(h, self.conv2.weight, padding=1))
        return torch.relu(torch.add(x, self.se(h)))
'''),
            "step by step with nn.functional.relu": _res('''
        out = self.conv1(x)
        out = self.bn1(out)
        out = torch.nn.functional.relu(out)
        out = self.conv2(out)
        out = self.bn2(out)
        out = self.se(out)
        out = out + x
        return torch.nn.functional.relu(out)
'''),
        },
    },
}
