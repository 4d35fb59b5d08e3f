"""Wrong and correct versions of notebook 04's graded items (see qa/discrimination.py).

Each wrong version is a mistake a learner plausibly makes; each must fail at least one of the item's tests.
Each correct version is a different but valid way to write the item; each must pass all of them.
"""

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
            "averages over channels and height (dims 1, 2)": '''
def global_average_pool(x):''' + _GAP_CHECK + '''
    return x.mean(dim=(1, 2))
''',
            "sums instead of averaging": '''
def global_average_pool(x):''' + _GAP_CHECK + '''
    return x.sum(dim=(2, 3))
''',
            "global max pooling": '''
def global_average_pool(x):''' + _GAP_CHECK + '''
    return x.amax(dim=(2, 3))
''',
            "keeps the pooled dimensions, (B, C, 1, 1)": '''
def global_average_pool(x):''' + _GAP_CHECK + '''
    return x.mean(dim=(2, 3), keepdim=True)
''',
            "calls the built-in adaptive_avg_pool2d": '''
import torch.nn.functional as _F
def global_average_pool(x):''' + _GAP_CHECK + '''
    return _F.adaptive_avg_pool2d(x, 1).flatten(1)
''',
            "calls avg_pool2d with a full-size kernel": '''
import torch.nn.functional as _F
def global_average_pool(x):''' + _GAP_CHECK + '''
    return _F.avg_pool2d(x, kernel_size=tuple(x.shape[2:])).flatten(1)
''',
            "divides by H·H (assumes a square map)": '''
def global_average_pool(x):''' + _GAP_CHECK + '''
    return x.sum(dim=(2, 3)) / (x.shape[2] * x.shape[2])
''',
            "no validation (a 3-D input is silently pooled)": '''
def global_average_pool(x):
    return x.mean(dim=(-2, -1))
''',
            "always returns float32": '''
def global_average_pool(x):''' + _GAP_CHECK + '''
    return x.float().mean(dim=(2, 3))
''',
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
            "softmax over the channels instead of a sigmoid per channel": _se('''
        return torch.softmax(self.fc2(torch.relu(self.fc1(global_average_pool(x)))), dim=-1)
'''),
            "softmax written by hand (gates sum to 1)": _se('''
        e = torch.exp(self.fc2(torch.relu(self.fc1(global_average_pool(x)))))
        return e / e.sum(-1, keepdim=True)
'''),
            "no ReLU between the layers": _se('''
        return torch.sigmoid(self.fc2(self.fc1(global_average_pool(x))))
'''),
            "tanh gate": _se('''
        return torch.tanh(self.fc2(torch.relu(self.fc1(global_average_pool(x)))))
'''),
            "squeezes with max instead of mean": _se('''
        return torch.sigmoid(self.fc2(torch.relu(self.fc1(x.amax(dim=(2, 3))))))
'''),
            "layers without bias": _se('''
        return torch.sigmoid(self.fc2(torch.relu(self.fc1(global_average_pool(x)))))
''', init='''
    def __init__(self, channels, reduction=16):
        super().__init__()
        if channels < 1 or reduction < 1:
            raise ValueError("bad arguments")
        hidden = max(1, channels // reduction)
        self.fc1 = nn.Linear(channels, hidden, bias=False)
        self.fc2 = nn.Linear(hidden, channels, bias=False)
'''),
            "hidden width channels * reduction": _se('''
        return torch.sigmoid(self.fc2(torch.relu(self.fc1(global_average_pool(x)))))
''', init='''
    def __init__(self, channels, reduction=16):
        super().__init__()
        if channels < 1 or reduction < 1:
            raise ValueError("bad arguments")
        self.fc1 = nn.Linear(channels, channels * reduction)
        self.fc2 = nn.Linear(channels * reduction, channels)
'''),
            "ReLU and sigmoid swapped": _se('''
        return torch.relu(self.fc2(torch.sigmoid(self.fc1(global_average_pool(x)))))
'''),
            "adds the gate instead of multiplying": _se('''
        return torch.sigmoid(self.fc2(torch.relu(self.fc1(global_average_pool(x)))))
''', forward='''
    def forward(self, x):
        return x + self.gate(x)[:, :, None, None]
'''),
            "scales by the squeezed features, not by the gate": _se('''
        return torch.sigmoid(self.fc2(torch.relu(self.fc1(global_average_pool(x)))))
''', forward='''
    def forward(self, x):
        self.gate(x)
        return x * global_average_pool(x)[:, :, None, None]
'''),
            "no shape check (wrong channel count fails inside Linear with a RuntimeError)": '''
class SEBlock(nn.Module):''' + _SE_INIT + '''
    def gate(self, x):
        return torch.sigmoid(self.fc2(torch.relu(self.fc1(global_average_pool(x)))))
''' + _SE_FORWARD,
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
            "SE after the addition (gates the identity path too)": _res('''
        branch = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(self.se(x + branch))
'''),
            "SE on the identity path": _res('''
        branch = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(self.se(x) + branch)
'''),
            "no residual connection": _res('''
        branch = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(self.se(branch))
'''),
            "no final ReLU": _res('''
        branch = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return x + self.se(branch)
'''),
            "ReLU on the branch before the addition instead of after it": _res('''
        branch = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return x + torch.relu(self.se(branch))
'''),
            "SE before the second batch norm": _res('''
        branch = self.bn2(self.se(self.conv2(torch.relu(self.bn1(self.conv1(x))))))
        return torch.relu(x + branch)
'''),
            "SE in the middle of the branch (after the first conv)": _res('''
        branch = self.bn2(self.conv2(self.se(torch.relu(self.bn1(self.conv1(x))))))
        return torch.relu(x + branch)
'''),
            "no ReLU between the two convolutions": _res('''
        branch = self.bn2(self.conv2(self.bn1(self.conv1(x))))
        return torch.relu(x + self.se(branch))
'''),
            "convolutions with bias": _res('''
        branch = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(x + self.se(branch))
''', init='''
    def __init__(self, channels, reduction=16):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(channels)
        self.se = SEBlock(channels, reduction)
'''),
            "one batch norm shared by both convolutions": _res('''
        branch = self.bn1(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(x + self.se(branch))
'''),
            "no shape check": '''
class SEResidualBlock(nn.Module):''' + _RES_INIT + '''
    def forward(self, x):
        branch = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(x + self.se(branch))
''',
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
