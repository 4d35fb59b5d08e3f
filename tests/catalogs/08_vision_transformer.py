"""Wrong and correct versions of notebook 08's graded items (see qa/discrimination.py).

Each wrong version is a mistake a learner plausibly makes, written as an edit of the solution (qa/catalog.py); each
must fail at least one of the item's tests. Each correct version is a different but valid way to write the item;
each must pass all of them.
"""

from qa.catalog import edit, solutions

S = solutions("08_vision_transformer")
PATCH, EMBED, VIT = S["patchify"], S["PatchEmbedding"], S["VisionTransformer"]
PATCH_SIZE_CHECK = PATCH[PATCH.index("    if p < 1"):PATCH.index("    x = images.reshape")]
PATCH_BODY = PATCH[PATCH.index("    x = images.reshape"):]
PATCH_GRID = PATCH[PATCH.index("    x = images.reshape"):PATCH.index("    return x.reshape")]


_EMBED = '''
class PatchEmbedding(nn.Module):
    def __init__(self, image_size, patch_size, in_channels, d_model):
        super().__init__()
        if patch_size < 1 or image_size % patch_size:
            raise ValueError(f"patch_size {patch_size} does not divide image_size {image_size}")
        self.image_size, self.in_channels = image_size, in_channels
        self.num_patches = (image_size // patch_size) ** 2
        self.proj = nn.Conv2d(in_channels, d_model, kernel_size=patch_size, stride=patch_size)

    def forward(self, images):
        if images.dim() != 4 or tuple(images.shape[1:]) != (self.in_channels, self.image_size, self.image_size):
            raise ValueError(f"bad image shape {tuple(images.shape)}")
        return self.proj(images).flatten(2).transpose(1, 2)
'''

_VIT = '''
class VisionTransformer(nn.Module):
    def __init__(self, image_size=8, patch_size=2, in_channels=1, num_classes=10, d_model=64, num_heads=4,
                 num_layers=4, d_ff=128, dropout=0.1):
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"patch_size {patch_size} does not divide image_size {image_size}")
        if d_model % num_heads:
            raise ValueError(f"num_heads {num_heads} does not divide d_model {d_model}")
        n = (image_size // patch_size) ** 2
        self.patch_embed = PatchEmbedding(image_size, patch_size, in_channels, d_model)
        self.cls_token = nn.Parameter(torch.randn(1, 1, d_model) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(1, n + 1, d_model) * 0.02)
        self.dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList([nn.TransformerEncoderLayer(d_model, num_heads, d_ff, dropout, activation="gelu",
                                                                batch_first=True, norm_first=True)
                                     for _ in range(num_layers)])
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, num_classes)

    def forward(self, images):
        tokens = self.patch_embed(images)
        x = torch.cat([self.cls_token.expand(tokens.shape[0], -1, -1), tokens], dim=1) + self.pos_embed
        x = self.dropout(x)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x)[:, 0])
'''

CATALOG = {
    "patchify": {
        "wrong": {
            "patch grid transposed (column-major patches)": edit(PATCH, ("permute(0, 2, 4, 1, 3, 5)", "permute(0, 4, 2, 1, 3, 5)")),
            "flattened channel last": edit(PATCH, ("permute(0, 2, 4, 1, 3, 5)", "permute(0, 2, 4, 3, 5, 1)")),
            "pixels inside a patch transposed": edit(PATCH, ("permute(0, 2, 4, 1, 3, 5)", "permute(0, 2, 4, 1, 5, 3)")),
            "plain reshape without permuting (strips, not squares)": edit(PATCH, (PATCH_GRID, "    x = images\n")),
            "sizes not checked (F.unfold silently drops the remainder)": edit(
                PATCH, (PATCH_SIZE_CHECK, ""),
                (PATCH_BODY, "    return torch.nn.functional.unfold(images, p, stride=p).transpose(1, 2)\n")),
            "F.unfold without the transpose": edit(
                PATCH, (PATCH_BODY, "    return torch.nn.functional.unfold(images, p, stride=p).reshape(B, -1, C * p * p)\n")),
        },
        "right": {
            "F.unfold, transposed": '''
def patchify(images, patch_size):
    if images.ndim != 4:
        raise ValueError(f"images must be 4-D (B, C, H, W), got shape {tuple(images.shape)}")
    H, W = images.shape[-2:]
    if patch_size < 1 or H % patch_size != 0 or W % patch_size != 0:
        raise ValueError(f"H={H} and W={W} must be multiples of patch_size={patch_size}")
    return torch.nn.functional.unfold(images, kernel_size=patch_size, stride=patch_size).transpose(1, 2)
''',
            "Tensor.unfold twice": '''
def patchify(images, patch_size):
    if images.dim() != 4:
        raise ValueError(f"expected 4-D images, got {tuple(images.shape)}")
    B, C, H, W = images.shape
    p = patch_size
    if p <= 0 or H % p or W % p:
        raise ValueError(f"{H}x{W} images cannot be cut into {p}x{p} patches")
    x = images.unfold(2, p, p).unfold(3, p, p)  # (B, C, rows, cols, p, p)
    return x.permute(0, 2, 3, 1, 4, 5).reshape(B, -1, C * p * p)
''',
            "python loops over the grid": '''
def patchify(images, patch_size):
    if images.dim() != 4:
        raise ValueError(f"expected (B, C, H, W), got {tuple(images.shape)}")
    B, C, H, W = images.shape
    p = patch_size
    if p < 1 or H % p or W % p:
        raise ValueError(f"image {H}x{W} is not a multiple of patch_size {p}")
    out = [images[:, :, r:r + p, c:c + p].reshape(B, -1) for r in range(0, H, p) for c in range(0, W, p)]
    return torch.stack(out, dim=1)
''',
        },
    },
    "PatchEmbedding": {
        "wrong": {
            "conv output flattened without the transpose": edit(EMBED, (".flatten(2).transpose(1, 2)", ".flatten(2)")),
            "grid flattened column-major": edit(
                EMBED, ("self.proj(images).flatten(2)", "self.proj(images).transpose(2, 3).flatten(2)")),
            "overlapping patches (stride 1)": edit(EMBED, ("stride=patch_size)", "stride=1)")),
            "convolution without bias": edit(EMBED, ("stride=patch_size)", "stride=patch_size, bias=False)")),
            "no shape check": edit(EMBED, ("if images.dim() != 4 or tuple(images.shape[1:]) != expected:", "if False:")),
            "channels and pixels swapped in the output (B, N, D) built by a plain reshape": edit(
                EMBED, ("return self.proj(images).flatten(2).transpose(1, 2)",
                        "y = self.proj(images)\n        return y.reshape(y.shape[0], -1, y.shape[1])")),
            "num_patches not squared": edit(EMBED, ("self.num_patches = (image_size // patch_size) ** 2",
                                                    "self.num_patches = image_size // patch_size")),
        },
        "visible": {
            "num_patches not squared": "num_patches",
        },
        "right": {
            "permute and reshape": edit(_EMBED, ("return self.proj(images).flatten(2).transpose(1, 2)",
                                                  "y = self.proj(images)\n"
                                                  "        return y.permute(0, 2, 3, 1).reshape(y.shape[0], -1, y.shape[1])")),
            "the linear view: patches times the reshaped conv weight": edit(
                _EMBED, ("return self.proj(images).flatten(2).transpose(1, 2)",
                         "p = self.proj.kernel_size[0]\n"
                         "        B, C, H, W = images.shape\n"
                         "        x = images.reshape(B, C, H // p, p, W // p, p).permute(0, 2, 4, 1, 3, 5).reshape(B, -1, C * p * p)\n"
                         "        return x @ self.proj.weight.reshape(self.proj.out_channels, -1).T + self.proj.bias")),
        },
    },
    "VisionTransformer": {
        "wrong": {
            "mean of all tokens instead of [CLS]": edit(VIT, ("self.norm(x)[:, 0]", "self.norm(x).mean(dim=1)")),
            "reads the last token": edit(VIT, ("self.norm(x)[:, 0]", "self.norm(x)[:, -1]")),
            "no final LayerNorm": edit(VIT, ("self.head(self.norm(x)[:, 0])", "self.head(x[:, 0])")),
            "position embeddings never added": edit(
                VIT, ("torch.cat([cls, tokens], dim=1) + self.pos_embed", "torch.cat([cls, tokens], dim=1)")),
            "post-LN blocks": edit(VIT, ("norm_first=True)", "norm_first=False)")),
            "ReLU blocks (torch's default activation)": edit(VIT, ('activation="gelu", ', "")),
            "[CLS] appended at the end": edit(
                VIT, ("torch.cat([cls, tokens], dim=1)", "torch.cat([tokens, cls], dim=1)"),
                ("self.norm(x)[:, 0]", "self.norm(x)[:, -1]")),
            "position embeddings for the patches only": edit(
                VIT, ("torch.randn(1, num_patches + 1, d_model)", "torch.randn(1, num_patches, d_model)"),
                ("torch.cat([cls, tokens], dim=1) + self.pos_embed", "torch.cat([cls, tokens + self.pos_embed], dim=1)")),
        },
        "visible": {
            "mean of all tokens instead of [CLS]": "[CLS] token",
        },
        "right": {
            "norm applied to the [CLS] row only": edit(_VIT, ("self.head(self.norm(x)[:, 0])", "self.head(self.norm(x[:, 0]))")),
            "[CLS] by repeat, position embeddings split": edit(
                _VIT, ("x = torch.cat([self.cls_token.expand(tokens.shape[0], -1, -1), tokens], dim=1) + self.pos_embed",
                       "cls = self.cls_token.repeat(tokens.shape[0], 1, 1) + self.pos_embed[:, :1]\n"
                       "        x = torch.cat([cls, tokens + self.pos_embed[:, 1:]], dim=1)")),
        },
    },
}
