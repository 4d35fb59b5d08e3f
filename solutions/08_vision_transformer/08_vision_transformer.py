# %% [markdown]
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/attention-step-by-step/attention-step-by-step/blob/main/course/08_vision_transformer/08_vision_transformer.ipynb)

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
# Setup — run this cell first.
# On Colab it installs the course's helper package, pinned to the course release; locally the README's set-up has
# installed it already and this cell does nothing.
import importlib.util
import os
import subprocess
import sys

PIP_SPEC = "attention-steps @ git+https://github.com/attention-step-by-step/attention-step-by-step@v0.1.0"


class SetupFailed(Exception):
    def _render_traceback_(self):  # Jupyter shows this one line, not a traceback
        return [f"Setup failed: {self}"]


def _why_pip_failed(log, spec):
    url, _, tag = spec.partition("git+")[2].rpartition("@")
    if any(s in log for s in ("Could not resolve host", "name resolution", "Network is unreachable",
                              "Failed to connect", "Connection timed out", "unable to connect")):
        return ("this runtime could not reach the internet to download the course's helper package; connect it "
                "(on Colab: Runtime > Connect) and run this cell again.")
    if "did not match any file(s) known to git" in log or "Remote branch" in log:
        return (f"the course release {tag} is not published in {url}; open this notebook again from the course's "
                "page (its Colab badge), or ask your instructor for the current link.")
    if any(s in log for s in ("not found", "not exported", "could not read Username",
                              "does not appear to be a git repository")):
        return (f"the course repository {url} does not exist (or is private); open this notebook again from the "
                "course's page (its Colab badge), or ask your instructor for the right link.")
    last = [line.strip() for line in log.splitlines() if line.strip()][-1:] or ["no message"]
    return (f"pip could not install the course's helper package ({last[0]}); run this cell again, and if it "
            "fails again, send this message to your instructor.")


if importlib.util.find_spec("attention_steps") is None:
    if os.path.isfile(os.path.join("..", "..", "attention_steps", "__init__.py")):
        raise SetupFailed("this notebook is in a local copy of the course, but its kernel's Python lacks the course's "
                          "environment; run `make course` in the course folder (README, Set-up) and open the "
                          "notebook in the JupyterLab it starts.")
    _spec = os.environ.get("ATTENTION_STEPS_PIP_SPEC", PIP_SPEC)
    _pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", _spec], capture_output=True, text=True,
                          env=dict(os.environ, GIT_TERMINAL_PROMPT="0"))  # never wait for a password
    if _pip.returncode != 0:
        raise SetupFailed(_why_pip_failed(_pip.stdout + _pip.stderr, _spec))

# %% [markdown]
# # 08 · The Vision Transformer
#
# Notebook 07's encoder reads a sequence of tokens. An image is not a sequence — but it can be made into one. The
# Vision Transformer (ViT; Dosovitskiy et al., 2021, "An Image is Worth 16×16 Words") cuts the image into square
# **patches**, flattens each patch into a vector, and treats the patches as the words of a sentence:
#
# ```
#  image (C, H, W) ─ cut into (H/p)·(W/p) patches ─ flatten each (C·p·p) ─ Linear ─▶ patch tokens (N, D)
#  [CLS] token ─┐                                                                        │
#               └──────────── prepend ───────────────────────────────────────────────────┘
#  + learned position embeddings (N + 1, D) ─▶ [ pre-LN Transformer encoder block ] × L ─▶ LayerNorm
#  ─▶ take the [CLS] position ─▶ Linear ─▶ class logits
# ```
#
# | exercise | what | idea |
# |---|---|---|
# | 1 | `patchify` | an image as a sequence of patch vectors |
# | 2 | `PatchEmbedding` | a linear map of every patch — the same thing as a strided convolution |
# | 3 | `VisionTransformer` | [CLS] token, learned position embeddings, pre-LN blocks, classification head |
#
# The data are scikit-learn's 8×8 handwritten digits, the same split as notebook 04 (SENet). With 2×2 patches an
# image becomes 16 tokens. The encoder blocks are PyTorch's `nn.TransformerEncoderLayer` with `norm_first=True`:
# notebook 07 showed that your encoder layer and PyTorch's agree, so here the new parts are the exercises.

# %%
import math

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

from attention_steps import by_mode, describe_device, get_device, report_metric, seed_everything
from attention_steps.data import load_digits_split
from attention_steps.metrics import classification_accuracy
from attention_steps.plotting import image_grid, plot_losses, show
from attention_steps.testing import assert_close, assert_tensor, expect_value_error
from attention_steps.training import batch_sampler, train

seed_everything(0)
device = get_device()
print("running on", describe_device(device))
digits = load_digits_split()
print(f"train {tuple(digits.x_train.shape)}, validation {tuple(digits.x_valid.shape)}, test {tuple(digits.x_test.shape)}")
show(image_grid(digits.x_train[:16], [str(int(y)) for y in digits.y_train[:16]]))

# %% [markdown]
# ## Patches as tokens
#
# Cut a $(C, H, W)$ image into non-overlapping $p \times p$ squares: $N = (H/p)(W/p)$ patches. Number them in
# **row-major** order — left to right along the top row of patches, then the next row, as you read a page — and
# flatten each one **channel first**: all $p \cdot p$ pixels of channel 0 (row by row), then channel 1, and so on,
# a vector of length $C p^2$. For a batch:
#
# $$\text{patchify}: (B, C, H, W) \to (B, N, C p^2), \qquad \text{patch } n = (r, c) \text{ with } n = r \cdot \tfrac{W}{p} + c.$$
#
# In PyTorch this is two reshapes and a permutation: split $H$ into $(H/p, p)$ and $W$ into $(W/p, p)$, move the
# two patch-grid axes to the front, and flatten. The order of the axes in the permutation *is* the layout, and the
# classic bug is a transposed grid (column-major patches) or pixels flattened channel-last.

# %% [markdown]
# ### Exercise 1 — `patchify(images, patch_size)`

# %% nbgrader={"grade": false, "grade_id": "patchify", "locked": false, "schema_version": 3, "solution": true, "task": false}
def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Cut images into non-overlapping square patches and flatten each patch.

    Args:
        images: (B, C, H, W) tensor of any floating dtype.
        patch_size: p, a positive int dividing both H and W.

    Returns:
        (B, (H/p)·(W/p), C·p·p) tensor, same dtype and device. Patches are in row-major order: patch
        ``n = r · (W/p) + c`` is the square ``images[:, :, r·p:(r+1)·p, c·p:(c+1)·p]``, flattened channel first
        (equal to ``that_square.reshape(B, C·p·p)``). Gradients flow back to ``images``.

    Raises:
        ValueError: if ``images`` is not 4-D, if ``patch_size < 1``, or if H or W is not a multiple of p
            (the message names the image size and p).
    """
    ### BEGIN SOLUTION
    if images.dim() != 4:
        raise ValueError(f"expected images of shape (B, C, H, W), got {tuple(images.shape)}")
    B, C, H, W = images.shape
    p = patch_size
    if p < 1 or H % p or W % p:
        raise ValueError(f"image size {H}×{W} is not a multiple of patch_size {p}")
    x = images.reshape(B, C, H // p, p, W // p, p)
    x = x.permute(0, 2, 4, 1, 3, 5)  # (B, rows, cols, C, p, p)
    return x.reshape(B, (H // p) * (W // p), C * p * p)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_patchify", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
# Visible tests: shape, the patch order and layout on a numbered image, channels, and the error for a bad size.
image = torch.arange(16.0).reshape(1, 1, 4, 4)  # pixel values 0 … 15 in reading order
patches = patchify(image, 2)
assert_tensor(patches, shape=(1, 4, 4), dtype=torch.float32, name="patchify((1, 1, 4, 4) image, 2)")
assert_close(patches[0], torch.tensor([[0.0, 1, 4, 5], [2, 3, 6, 7], [8, 9, 12, 13], [10, 11, 14, 15]]),
             name="patches of the numbered 4×4 image (row-major: top-left, top-right, bottom-left, bottom-right)")
rgb = torch.stack([image[0, 0], 100 + image[0, 0]])[None]  # two channels
assert_close(patchify(rgb, 2)[0, 1], torch.tensor([2.0, 3, 6, 7, 102, 103, 106, 107]),
             name="patch 1 of a two-channel image (flattened channel first: all of channel 0, then channel 1)")
assert_tensor(patchify(torch.randn(3, 1, 8, 8), 4), shape=(3, 4, 16), name="patchify((3, 1, 8, 8), 4)")
expect_value_error(patchify, torch.randn(1, 1, 8, 8), 3, mention=["3"], name="patchify of an 8×8 image with p = 3")

# %% [markdown]
# One digit, cut into its 16 patches, and the same patches as the sequence the Transformer will read:

# %%
sample = digits.x_train[:1]
tokens = patchify(sample, 2)[0]  # (16, 4)
fig = plt.figure(figsize=(10, 3.2))
ax = fig.add_subplot(1, 3, 1)
ax.imshow(sample[0, 0], cmap="gray", vmin=0, vmax=1)
for k in range(1, 4):
    ax.axhline(2 * k - 0.5, color="tab:red", lw=1)
    ax.axvline(2 * k - 0.5, color="tab:red", lw=1)
for n in range(16):
    ax.text(2 * (n % 4) + 0.5, 2 * (n // 4) + 0.5, str(n), color="tab:red", ha="center", va="center", fontsize=9,
            bbox={"boxstyle": "round,pad=0.1", "facecolor": "black", "edgecolor": "none", "alpha": 0.6})  # legible on white
ax.set_title(f"a digit ({int(digits.y_train[0])}) cut into 2×2 patches")
ax.axis("off")
ax = fig.add_subplot(1, 3, (2, 3))
ax.imshow(tokens.T, cmap="gray", vmin=0, vmax=1, aspect="auto")
ax.set_xticks(range(16))
ax.set_yticks(range(4), ["(0,0)", "(0,1)", "(1,0)", "(1,1)"])
ax.set(title="the sequence: one column per patch token (its 4 pixels)", xlabel="token", ylabel="pixel in patch")
fig.tight_layout()
show(fig)

# %% [markdown]
# ## Patch embedding = a strided convolution
#
# Each flattened patch is mapped to the model width $D$ by one shared linear layer, $z_n = x_n W + b$ with
# $W \in \mathbb{R}^{C p^2 \times D}$. That is exactly a convolution with $D$ filters of size $p \times p$ and
# **stride $p$**: each output position sees one patch, and the filter's weights are the rows of $W$ (reshaped to
# $(C, p, p)$ — channel first, as `patchify` flattens). Real ViT code writes it as `nn.Conv2d(C, D, p, stride=p)`,
# then flattens the $(H/p) \times (W/p)$ output grid in row-major order. You will do the same and check that the two
# views agree.

# %% [markdown]
# ### Exercise 2 — `PatchEmbedding(image_size, patch_size, in_channels, d_model)`

# %% nbgrader={"grade": false, "grade_id": "PatchEmbedding", "locked": false, "schema_version": 3, "solution": true, "task": false}
class PatchEmbedding(nn.Module):
    """Embed every p×p patch of an image with one shared linear map, written as a strided convolution.

    Args:
        image_size: H = W of the (square) images; patch_size: p, must divide image_size;
        in_channels: C; d_model: D.

    Attributes (the tests use these names):
        proj: ``nn.Conv2d(in_channels, d_model, kernel_size=patch_size, stride=patch_size)`` (with bias). Its
            weight (D, C, p, p) reshaped to (D, C·p·p) is the transposed W of ``patchify(x, p) @ W + b``.
        num_patches: int, (image_size // patch_size) ** 2.

    forward(images): images (B, C, image_size, image_size) → (B, num_patches, D), patches in row-major order
        (token n is the patch at grid row n // (image_size // p), column n % (image_size // p)), i.e. equal to
        ``patchify(images, p) @ proj.weight.reshape(D, -1).T + proj.bias``.

    Raises:
        ValueError: in ``__init__`` if patch_size does not divide image_size; in ``forward`` if images is not
            (B, in_channels, image_size, image_size) (the message names the shape).
    """

    def __init__(self, image_size: int, patch_size: int, in_channels: int, d_model: int):
        super().__init__()
        ### BEGIN SOLUTION
        if patch_size < 1 or image_size % patch_size:
            raise ValueError(f"patch_size {patch_size} does not divide image_size {image_size}")
        self.image_size, self.in_channels = image_size, in_channels
        self.num_patches = (image_size // patch_size) ** 2
        self.proj = nn.Conv2d(in_channels, d_model, kernel_size=patch_size, stride=patch_size)
        ### END SOLUTION

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        ### BEGIN SOLUTION
        expected = (self.in_channels, self.image_size, self.image_size)
        if images.dim() != 4 or tuple(images.shape[1:]) != expected:
            raise ValueError(f"expected images of shape (B, {', '.join(map(str, expected))}), got {tuple(images.shape)}")
        return self.proj(images).flatten(2).transpose(1, 2)  # (B, D, rows, cols) → (B, rows·cols, D)
        ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_PatchEmbedding", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
# Visible tests: attributes, shape, the conv view equals the linear view on patchify, the patch order.
embed = PatchEmbedding(8, 2, 1, 16)
assert isinstance(embed.proj, nn.Conv2d) and embed.proj.stride == (2, 2) and embed.proj.kernel_size == (2, 2), \
    "proj should be nn.Conv2d(in_channels, d_model, kernel_size=patch_size, stride=patch_size)"
assert embed.proj.bias is not None, "proj needs a bias (the b of patchify(x) @ W + b)"
assert embed.num_patches == 16, f"num_patches should be (8 // 2) ** 2 = 16, got {embed.num_patches}"
x = torch.rand(3, 1, 8, 8)
tokens = embed(x)
assert_tensor(tokens, shape=(3, 16, 16), dtype=torch.float32, name="PatchEmbedding(8, 2, 1, 16)(x)")
W = embed.proj.weight.detach().reshape(16, -1).T  # (C·p·p, D): the row-vector W of the linear view
assert_close(tokens, patchify(x, 2) @ W + embed.proj.bias.detach(), name="conv patch embedding vs patchify(x) @ W + b")
one_hot_image = torch.zeros(1, 1, 8, 8)
one_hot_image[0, 0, 0, 7] = 1.0  # a pixel in the top-right patch: grid row 0, column 3 → token 3
moved = (embed(one_hot_image) - embed(torch.zeros(1, 1, 8, 8))).abs().sum(-1)[0]
assert moved.argmax().item() == 3 and (moved > 0).sum().item() == 1, \
    f"a pixel in the top-right patch should change token 3 only; it changed tokens {moved.nonzero().flatten().tolist()}"
expect_value_error(embed, torch.rand(2, 1, 6, 6), mention=["(2, 1, 6, 6)"], name="PatchEmbedding(8, ...) on 6×6 images")

# %% [markdown]
# **What to notice.** The convolution never builds the patch matrix: it slides a $p \times p$ filter with stride
# $p$, which visits exactly the patches. The one test that matters for layout is the lit pixel: a pixel in the
# top-right corner must land in token 3 (row 0, column 3 of the $4 \times 4$ grid) and nowhere else.
#
# ## [CLS], position embeddings, and the encoder
#
# Three more pieces turn patch tokens into a classifier.
#
# - **A [CLS] token.** BERT's trick (notebook 07 ends with it): prepend one extra, *learned* vector to the sequence.
#   It belongs to no patch; through self-attention it gathers from all of them, and after the last layer the
#   classifier reads **only** its output. (Averaging all patch outputs works too; ViT kept [CLS] from BERT.)
# - **Learned position embeddings.** Attention does not know where a patch came from (notebook 07). ViT adds a
#   learned vector per position, $E_{pos} \in \mathbb{R}^{(N+1) \times D}$, instead of the sinusoids: the grid is
#   two-dimensional and fixed in size, and the model can learn which positions are near. You will look at what it
#   learns.
# - **Pre-LN encoder blocks** (notebook 07), then a final LayerNorm and a linear head:
#
# $$z_0 = [x_{cls};\; x_1 W; \dots; x_N W] + E_{pos}, \qquad z_\ell = \mathrm{Block}_\ell(z_{\ell-1}), \qquad
# \text{logits} = \mathrm{LN}(z_L)_0\, W_{head} + b_{head}.$$
#
# The blocks here are `nn.TransformerEncoderLayer(..., activation="gelu", batch_first=True, norm_first=True)` —
# GELU as in ViT, pre-LN because it trains without a careful warm-up.

# %% [markdown]
# ### Exercise 3 — `VisionTransformer`

# %% nbgrader={"grade": false, "grade_id": "VisionTransformer", "locked": false, "schema_version": 3, "solution": true, "task": false}
class VisionTransformer(nn.Module):
    """A Vision Transformer classifier: patch tokens, a [CLS] token, learned position embeddings, pre-LN blocks.

    Args:
        image_size=8, patch_size=2, in_channels=1, num_classes=10, d_model=64, num_heads=4, num_layers=4,
        d_ff=128, dropout=0.1.

    Attributes (the tests use these names; they may replace ``patch_embed`` and ``blocks`` with their own):
        patch_embed: ``PatchEmbedding(image_size, patch_size, in_channels, d_model)``, called once per forward as
            ``self.patch_embed(images)`` → (B, N, D), N = (image_size // patch_size) ** 2.
        cls_token: ``nn.Parameter`` of shape (1, 1, D), initialised N(0, 0.02²).
        pos_embed: ``nn.Parameter`` of shape (1, N + 1, D), initialised N(0, 0.02²); row 0 is [CLS]'s position,
            row 1 + n patch n's.
        blocks: ``nn.ModuleList`` of ``num_layers`` ×
            ``nn.TransformerEncoderLayer(d_model, num_heads, d_ff, dropout, activation="gelu", batch_first=True,
            norm_first=True)``, each called as ``block(x)`` (no mask).
        norm: ``nn.LayerNorm(d_model)``, the final norm; head: ``nn.Linear(d_model, num_classes)``;
        dropout: ``nn.Dropout(dropout)`` applied after adding the position embeddings.

    forward(images): (B, in_channels, image_size, image_size) → logits (B, num_classes):
        ``x = cat([cls_token expanded to (B, 1, D), patch_embed(images)], dim=1) + pos_embed``; ``x = dropout(x)``;
        every block; ``logits = head(norm(x)[:, 0])`` — the head reads the [CLS] position only.

    Raises:
        ValueError: in ``__init__`` if patch_size does not divide image_size or num_heads does not divide d_model.
    """

    def __init__(self, image_size: int = 8, patch_size: int = 2, in_channels: int = 1, num_classes: int = 10,
                 d_model: int = 64, num_heads: int = 4, num_layers: int = 4, d_ff: int = 128, dropout: float = 0.1):
        super().__init__()
        ### BEGIN SOLUTION
        if patch_size < 1 or image_size % patch_size:
            raise ValueError(f"patch_size {patch_size} does not divide image_size {image_size}")
        if d_model % num_heads:
            raise ValueError(f"num_heads {num_heads} does not divide d_model {d_model}")
        num_patches = (image_size // patch_size) ** 2
        self.patch_embed = PatchEmbedding(image_size, patch_size, in_channels, d_model)
        self.cls_token = nn.Parameter(torch.randn(1, 1, d_model) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(1, num_patches + 1, d_model) * 0.02)
        self.dropout = nn.Dropout(dropout)
        block_args = dict(dim_feedforward=d_ff, dropout=dropout, activation="gelu", batch_first=True, norm_first=True)
        self.blocks = nn.ModuleList([nn.TransformerEncoderLayer(d_model, num_heads, **block_args)
                                     for _ in range(num_layers)])
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, num_classes)
        ### END SOLUTION

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        ### BEGIN SOLUTION
        tokens = self.patch_embed(images)
        cls = self.cls_token.expand(tokens.shape[0], -1, -1)
        x = self.dropout(torch.cat([cls, tokens], dim=1) + self.pos_embed)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x)[:, 0])
        ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_VisionTransformer", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false}
# Visible tests: shapes of the parameters and the output, [CLS] is read, position embeddings carry the order.
seed_everything(0)
vit = VisionTransformer(d_model=32, num_heads=4, num_layers=2, d_ff=64, dropout=0.0).eval()
assert tuple(vit.cls_token.shape) == (1, 1, 32), f"cls_token should be (1, 1, D) = (1, 1, 32), got {tuple(vit.cls_token.shape)}"
assert tuple(vit.pos_embed.shape) == (1, 17, 32), \
    f"pos_embed should be (1, N + 1, D) = (1, 17, 32): 16 patches and [CLS]; got {tuple(vit.pos_embed.shape)}"
assert len(vit.blocks) == 2 and all(block.norm_first for block in vit.blocks), "blocks: 2 pre-LN encoder layers"
x = torch.rand(5, 1, 8, 8)
logits = vit(x)
assert_tensor(logits, shape=(5, 10), dtype=torch.float32, name="VisionTransformer()(x)")
with torch.no_grad():  # the forward pass written out, to see which token the head reads
    tokens = torch.cat([vit.cls_token.expand(5, -1, -1), vit.patch_embed(x)], dim=1) + vit.pos_embed
    for block in vit.blocks:
        tokens = block(tokens)
    tokens = vit.norm(tokens)
if torch.allclose(logits, vit.head(tokens.mean(dim=1)), atol=1e-5):
    raise AssertionError("the head reads the mean of all tokens: read the [CLS] token, position 0 after the blocks "
                         "and the final norm — the token that has no patch of its own and gathers from all of them")
assert_close(logits, vit.head(tokens[:, 0]), name="logits (should be head(norm(x)[:, 0]): the [CLS] token after the "
             "blocks and the final norm)")


def shuffle_patches(images, order, p=2):
    """Move patch order[n] of every image to position n (an image-space permutation of the patch grid)."""
    B, C, H, W = images.shape
    grid = images.reshape(B, C, H // p, p, W // p, p).permute(0, 2, 4, 1, 3, 5).reshape(B, -1, C, p, p)
    grid = grid[:, order].reshape(B, H // p, W // p, C, p, p)
    return grid.permute(0, 3, 1, 4, 2, 5).reshape(B, C, H, W)


order = torch.randperm(16)
with torch.no_grad():
    assert not torch.allclose(vit(shuffle_patches(x, order)), logits, atol=1e-4), \
        "shuffling the patches did not change the output: are the position embeddings added?"
    vit.pos_embed.zero_()
    assert_close(vit(shuffle_patches(x, order)), vit(x), atol=1e-5,
                 name="logits of shuffled patches when pos_embed = 0 (only positions should carry the order)")

# %% [markdown]
# **What to notice.** Set every position embedding to the same vector and the ViT cannot tell a digit from the
# same digit with its patches shuffled: self-attention treats its input as a *set*. All knowledge of the image's
# layout enters through `pos_embed` — which is why it is worth looking at what the model learns there.
#
# ## Experiment — a ViT on the digits, against a small CNN
#
# 1,300 training images of 8×8 pixels is a *tiny* data set for a Transformer, so the model is small too: $D = 48$,
# 4 heads, 2 pre-LN blocks, 16 patch tokens of 2×2 pixels plus [CLS]. It trains with AdamW, a one-cycle learning-rate
# schedule and label smoothing. The settings (width, depth, batch size, learning rate, number of steps; shifting the
# images by a pixel as augmentation was tried and hurt) were chosen on the validation split; the test split is used
# once, for the final figures, over three seeds.
#
# The comparison is a compact CNN in the style of notebook 04 (two 3×3 convolution stages with batch norm, global
# average pooling, a linear head), trained with the same budget. On a GPU, `USE_BIG_CONFIG` trains a wider, deeper
# ViT for more steps; the training loop switches on float16 mixed precision there.

# %%
from contextlib import nullcontext

from torch.nn.attention import SDPBackend, sdpa_kernel

USE_BIG_CONFIG = torch.cuda.is_available()  # a GPU affords a bigger ViT in the same wall-clock time
if USE_BIG_CONFIG:
    VIT_CONFIG = dict(d_model=128, num_heads=8, num_layers=6, d_ff=256, dropout=0.1)
    VIT_STEPS = by_mode(full=1500, fast=3)
else:
    VIT_CONFIG = dict(d_model=48, num_heads=4, num_layers=2, d_ff=96, dropout=0.0)
    VIT_STEPS = by_mode(full=320, fast=3)
CNN_STEPS = by_mode(full=150, fast=3)
SEEDS = by_mode(full=[0, 1, 2], fast=[0])
BATCH_SIZE, LEARNING_RATE = 128, 5e-3


def classification_loss(model, batch):
    images, labels = batch
    return F.cross_entropy(model(images).float(), labels, label_smoothing=0.1)


class SmallCNN(nn.Module):
    """Two conv stages (16 and 32 channels, the second at stride 2), global average pooling, a linear head."""

    def __init__(self, channels: int = 16, num_classes: int = 10):
        super().__init__()
        block = lambda c_in, c_out, stride: nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())
        self.features = nn.Sequential(block(1, channels, 1), block(channels, channels, 1),
                                      block(channels, 2 * channels, 2), block(2 * channels, 2 * channels, 1))
        self.head = nn.Linear(2 * channels, num_classes)

    def forward(self, images):
        return self.head(self.features(images).mean(dim=(2, 3)))


@torch.no_grad()
def accuracy(model, images, labels):
    model.eval()
    return classification_accuracy(model(images.to(device)).float().cpu(), labels)


def fit_classifier(make_model, steps, seed, desc):
    seed_everything(seed)
    model = make_model().to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=0.05)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=LEARNING_RATE, total_steps=steps, pct_start=0.1)
    batches = batch_sampler(digits.x_train, digits.y_train, batch_size=BATCH_SIZE, seed=seed, device=device)
    # For 17 tokens, PyTorch's plain attention kernel (matmul, softmax, matmul) trains about 8 % faster on a CPU
    # than its fused one; on a GPU, PyTorch's own choice stands.
    with sdpa_kernel(SDPBackend.MATH) if device.type == "cpu" else nullcontext():
        history = train(model, optimizer, classification_loss, batches, steps, scheduler=schedule, desc=desc)
    return model, history


results, vit_models, histories = {"ViT": [], "CNN": []}, [], {}
for seed in SEEDS:
    for name, make, steps in [("ViT", lambda: VisionTransformer(**VIT_CONFIG), VIT_STEPS),
                              ("CNN", SmallCNN, CNN_STEPS)]:
        model, history = fit_classifier(make, steps, seed, desc=f"{name}, seed {seed}")
        histories.setdefault(name, history)
        if name == "ViT":
            vit_models.append(model)
        results[name].append(dict(valid=accuracy(model, digits.x_valid, digits.y_valid),
                                  test=accuracy(model, digits.x_test, digits.y_test), seconds=history.seconds,
                                  params=sum(p.numel() for p in model.parameters())))

print(f"{'model':<6} {'parameters':>10} {'steps':>6} {'valid acc':>10} {'test acc: mean (min–max) of seeds':>36} {'s / run':>8}")
for name, runs in results.items():
    test = [r["test"] for r in runs]
    valid = sum(r["valid"] for r in runs) / len(runs)
    seconds = sum(r["seconds"] for r in runs) / len(runs)
    steps = VIT_STEPS if name == "ViT" else CNN_STEPS
    spread = f"{sum(test) / len(test):.2%} ({min(test):.2%}–{max(test):.2%})"
    print(f"{name:<6} {runs[0]['params']:>10,} {steps:>6} {valid:>10.2%} {spread:>36} {seconds:>8.1f}")
vit_mean = sum(r["test"] for r in results["ViT"]) / len(results["ViT"])
report_metric("digits test accuracy (ViT, mean of seeds)", vit_mean, notebook="08_vision_transformer")
report_metric("digits test accuracy (CNN, mean of seeds)",
              sum(r["test"] for r in results["CNN"]) / len(results["CNN"]), notebook="08_vision_transformer")
report_metric("digits training seconds (ViT, per run)",
              sum(r["seconds"] for r in results["ViT"]) / len(results["ViT"]), notebook="08_vision_transformer", fmt=".1f")
show(plot_losses(histories, smooth=10, title="Digits: training loss (seed 0)").figure)
cnn_wins = sum(c["test"] > v["test"] for c, v in zip(results["CNN"], results["ViT"]))
print(f"The CNN is more accurate than the ViT on {cnn_wins} of {len(results['CNN'])} random seed(s); mean test "
      f"accuracy CNN {sum(r['test'] for r in results['CNN']) / len(results['CNN']):.2%}, ViT {vit_mean:.2%}.")

# %% [markdown]
# **What to notice.** The ViT does learn the digits, but the small CNN — fewer parameters, fewer steps, less time —
# is more accurate (the line under the table counts on how many random seeds); notebook 04's ResNet and SE-ResNet
# sit in the CNN's range too. That is the ViT paper's
# own finding: a convolution *assumes* that nearby pixels belong together and that a pattern means the same thing
# anywhere (locality and translation equivariance). A ViT assumes neither; it has to learn them from data, and on
# small data sets it lags a CNN. With enough images (the paper pre-trained on 14–300 million) the missing prior stops
# mattering and the more flexible model wins.
#
# ## What [CLS] looks at
#
# Record the attention weights of the [CLS] query in the last block (the row of the attention matrix that belongs
# to [CLS], over the 16 patches), average the heads, and put them back on the 4×4 patch grid.

# %%
def cls_attention(model, images):
    """(B, num_layers, H, N) attention weights of the [CLS] query over the N patch tokens, layer by layer."""
    records, handles = [], []

    def ask_for_weights(module, args, kwargs):
        return args, {**kwargs, "need_weights": True, "average_attn_weights": False}

    def keep(module, args, kwargs, output):
        records.append(output[1][:, :, 0, 1:].detach().float().cpu())

    for block in model.blocks:
        handles += [block.self_attn.register_forward_pre_hook(ask_for_weights, with_kwargs=True),
                    block.self_attn.register_forward_hook(keep, with_kwargs=True)]
    model.eval()
    try:
        with torch.enable_grad():  # keeps torch's inference fast path (which skips these hooks) out of the way
            model(images.to(device))
    finally:
        for handle in handles:
            handle.remove()
    return torch.stack(records, dim=1)


vit = vit_models[0]
examples = digits.x_test[:8]
weights = cls_attention(vit, examples)  # (8, L, H, 16)
grid = int(math.isqrt(weights.shape[-1]))
cls_maps = weights[:, -1].mean(1)  # (8, 16): last block, mean over heads
fig, axes = plt.subplots(2, 8, figsize=(13, 3.9))
for i in range(8):
    axes[0, i].imshow(examples[i, 0], cmap="gray")
    axes[0, i].set_title(f"label {int(digits.y_test[i])}", fontsize=9)
    image = axes[1, i].imshow(cls_maps[i].reshape(grid, grid), cmap="viridis", vmin=0, vmax=cls_maps.max().item())
    axes[1, i].set_title("[CLS] → patches", fontsize=7)
for ax in axes.flat:
    ax.axis("off")
fig.suptitle("top: test digits; bottom: [CLS] attention in the last block (mean over heads), on the 4×4 patch grid")
fig.tight_layout()
fig.colorbar(image, ax=axes[1].tolist(), fraction=0.02, pad=0.01, label="weight (one scale)")
show(fig)

per_head = weights[0, -1]  # (H, 16)
fig, axes = plt.subplots(1, weights.shape[2], figsize=(2.2 * weights.shape[2] + 0.8, 2.4))
for h, ax in enumerate(axes):
    image = ax.imshow(per_head[h].reshape(grid, grid), cmap="viridis", vmin=0, vmax=per_head.max().item())
    ax.set_title(f"head {h}", fontsize=9)
    ax.axis("off")
fig.suptitle(f"[CLS] attention per head, last block, first test digit (label {int(digits.y_test[0])})")
fig.tight_layout()
fig.colorbar(image, ax=axes.tolist(), fraction=0.02, pad=0.01, label="weight")
show(fig)

# %% [markdown]
# **What to notice.** [CLS] does not spread its attention evenly: it concentrates on patches that carry strokes,
# and the heads differ — some look at the centre, some at an edge of the digit. The empty border patches, always 0
# in these images, get little weight. (Attention weights say where information was *read*, not everything the
# model used: the patch tokens have already exchanged information in earlier blocks.)
#
# ## What the position embeddings learned
#
# For each patch position, the cosine similarity of its learned position embedding with the embeddings of all 16
# positions, drawn on the 4×4 grid. Nothing told the model that the patches form a grid.

# %%
pos = vit.pos_embed.detach()[0, 1:].float().cpu()  # (16, D), [CLS]'s row left out
similarity = F.cosine_similarity(pos[:, None, :], pos[None, :, :], dim=-1)  # (16, 16)
fig, axes = plt.subplots(grid, grid, figsize=(7.2, 6.4))
for n, ax in enumerate(axes.flat):
    image = ax.imshow(similarity[n].reshape(grid, grid), cmap="viridis", vmin=-1, vmax=1)
    ax.set_title(f"patch {n}", fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
fig.suptitle("cosine similarity of each position embedding with all others")
fig.tight_layout()
fig.colorbar(image, ax=axes.ravel().tolist(), fraction=0.03, pad=0.02, label="cosine similarity")
show(fig)
rows, cols = torch.arange(16) // grid, torch.arange(16) % grid
distance = ((rows[:, None] - rows[None, :]).abs() + (cols[:, None] - cols[None, :]).abs()).float()
off_diagonal = ~torch.eye(16, dtype=torch.bool)
correlation = torch.corrcoef(torch.stack([similarity[off_diagonal], -distance[off_diagonal]]))[0, 1].item()
print(f"correlation between position-embedding similarity and (minus) grid distance: {correlation:.2f}")

# %% [markdown]
# **What to notice.** Each small map is bright at its own patch and close to zero almost everywhere else, and the
# printed correlation with grid distance is near zero: after a few hundred steps on 1,300 images, the position
# embeddings work as *labels* — sixteen nearly orthogonal vectors that tell the patches apart — not as a map in which
# neighbours are similar. That is enough to classify (the order of the patches is visible, as the shuffle test
# showed), but the model has not learned that patch 5 is next to patch 6. The ViT paper's version of this figure,
# trained on millions of images, shows clean rows and columns: the geometry a CNN is given for free, a ViT has to
# learn from data, and here there is not enough of it.
#
# ## Summary
#
# - A ViT reads an image as a sequence: row-major patches, each flattened channel first and linearly embedded —
#   the same as a convolution with kernel size and stride $p$.
# - A learned [CLS] token gathers from all patches through self-attention; the classifier reads only its output.
# - Self-attention sees a set; learned position embeddings are the only source of the layout. On tiny data they
#   learn to tell positions apart, not which positions are neighbours.
# - Without the locality prior of convolutions a ViT needs more data: on 1,300 tiny digits a small CNN matches or
#   beats it with fewer parameters, fewer steps and less time.
#
# Next, notebook 09 looks at attention from another side: as message passing on a graph whose edges are learned.
