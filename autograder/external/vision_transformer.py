"""Hidden tests of 08_vision_transformer as data: ``patchify``, ``PatchEmbedding``, ``VisionTransformer``."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .cases import ModuleCase, checked_call, checked_gradients, must_raise
from .probe import Result, method

PATCH_ALONE = dict(stand_ins={"patchify": "patchify"})
VIT_ALONE = dict(stand_ins={"patchify": "patchify", "PatchEmbedding": "PatchEmbedding"})


def reference_patchify(images, p):
    """Patch by patch, in reading order, each square flattened channel first."""
    b, c, h, w = images.shape
    columns = w // p
    patches = [images[:, :, r * p:(r + 1) * p, col * p:(col + 1) * p].reshape(b, -1)
               for r in range(h // p) for col in range(columns)]
    return torch.stack(patches, dim=1)


def patchify_steps(rng: np.random.Generator) -> list:
    steps = [checked_call("patchify", [rng.standard_normal(shape), p], reference_patchify, atol=0, rtol=0,
                          label=f"patchify({shape}, {p})")
             for shape, p in [((2, 1, 8, 8), 2), ((3, 3, 6, 9), 3), ((1, 2, 4, 8), 4), ((2, 1, 8, 8), 8),
                              ((1, 3, 5, 5), 1), ((4, 1, 6, 4), 2)]]
    steps.append(checked_call("patchify", [rng.standard_normal((2, 1, 4, 6)).astype(np.float16), 2],
                              reference_patchify, atol=0, rtol=0, label="patchify of float16 images"))
    steps.append(checked_gradients("patchify", [rng.standard_normal((2, 2, 4, 4)), 2], reference_patchify, wrt=(0,),
                                   rng=rng, label="patchify"))
    for shape, p, mention in [((1, 1, 8, 6), 4, ("4",)), ((1, 1, 6, 8), 4, ("4",)), ((1, 8, 8), 2, ("(1, 8, 8)",)),
                              ((1, 1, 8, 8), 0, ("0",))]:
        steps.append(must_raise("patchify", [rng.standard_normal(shape), p], mention=mention,
                                label=f"patchify of shape {shape} with p = {p}"))
    return steps


class ReferencePatchEmbedding(nn.Module):
    def __init__(self, image_size, patch_size, in_channels, d_model):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_channels, d_model, kernel_size=patch_size, stride=patch_size)

    def forward(self, images):  # the linear view: patchify(images) @ W + b
        weight = self.proj.weight.reshape(self.proj.out_channels, -1)
        return reference_patchify(images, self.patch_size) @ weight.T + self.proj.bias


def _fact(name: str, want, label: str):
    def built(result: Result) -> str | None:
        got = result.facts.get(name)
        return None if got == want else f"{label}.{name} should be {want}, got {got!r}"[:300]
    return built


def patch_embedding_steps(rng: np.random.Generator) -> list:
    steps = []
    for number, (size, p, c, d, b) in enumerate([(8, 2, 1, 32, 4), (8, 4, 3, 8, 2), (12, 3, 2, 5, 1), (8, 8, 1, 4, 3),
                                                 (6, 1, 1, 3, 2)]):
        label = f"PatchEmbedding({size}, {p}, {c}, {d})"
        case = ModuleCase("PatchEmbedding", [size, p, c, d], ReferencePatchEmbedding(size, p, c, d), rng, label=label,
                          keep=f"embed{number}", facts=("num_patches",),
                          built=_fact("num_patches", (size // p) ** 2, label), **PATCH_ALONE)
        steps += [*case.steps, case.call([rng.standard_normal((b, c, size, size))], label=f"{label} on a batch of {b}",
                                         rng=rng if number == 1 else None, grad_args=(0,) if number == 1 else ())]
    steps.append(must_raise("PatchEmbedding", [8, 3, 1, 4], mention=("3", "8"), label="PatchEmbedding(8, 3, 1, 4)",
                            **PATCH_ALONE))
    steps += [must_raise(method("embed1", "forward"), [rng.standard_normal(shape)], mention=(str(shape),), label=label)
              for shape, label in [((2, 1, 8, 8), "PatchEmbedding(in_channels=3) on 1 channel"),
                                   ((3, 8, 8), "PatchEmbedding on a 3-D input")]]
    return steps


class ReferenceViT(nn.Module):
    def __init__(self, image_size, patch_size, in_channels, num_classes, d_model, num_heads, num_layers, d_ff):
        super().__init__()
        patches = (image_size // patch_size) ** 2
        self.patch_embed = ReferencePatchEmbedding(image_size, patch_size, in_channels, d_model)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d_model))
        self.pos_embed = nn.Parameter(torch.zeros(1, patches + 1, d_model))
        self.blocks = nn.ModuleList([nn.TransformerEncoderLayer(d_model, num_heads, d_ff, 0.0, activation="gelu",
                                                                batch_first=True, norm_first=True)
                                     for _ in range(num_layers)])
        self.norm, self.head = nn.LayerNorm(d_model), nn.Linear(d_model, num_classes)

    def forward(self, images):
        tokens = self.patch_embed(images)
        x = torch.cat([self.cls_token.expand(tokens.shape[0], -1, -1), tokens], dim=1) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x)[:, 0])


def _initialised_small(label):
    """cls_token and pos_embed start N(0, 0.02²), as the docstring says."""
    def built(result: Result) -> str | None:
        for name in ("cls_token", "pos_embed"):
            value = result.facts.get(name)
            if not isinstance(value, np.ndarray):
                return f"{label}.{name} should be an nn.Parameter"
        std = float(np.std(result.facts["pos_embed"].astype(np.float64)))
        return None if 0.01 < std < 0.04 else f"{label}.pos_embed should start N(0, 0.02²); its std is {std:.4f}"
    return built


def vision_transformer_steps(rng: np.random.Generator) -> list:
    steps = []
    for number, (size, p, c, d, heads, layers, classes) in enumerate([(8, 2, 1, 32, 4, 2, 10), (8, 4, 3, 16, 2, 1, 7),
                                                                      (6, 3, 2, 24, 3, 3, 4)]):
        label = f"VisionTransformer(image {size}, patch {p}, D {d}, {layers} blocks)"
        reference = ReferenceViT(size, p, c, classes, d, heads, layers, 2 * d)
        case = ModuleCase("VisionTransformer", [size, p, c, classes], reference, rng, label=label, keep=f"vit{number}",
                          ctor_kwargs=dict(d_model=d, num_heads=heads, num_layers=layers, d_ff=2 * d, dropout=0.0),
                          facts=("cls_token", "pos_embed"), built=_initialised_small(label), **VIT_ALONE)
        steps += case.steps
        for batch in (1, 4):
            steps.append(case.call([rng.standard_normal((batch, c, size, size))], label=f"{label} logits on a batch of "
                                   f"{batch} (the head reads the [CLS] position after the final norm)"))
        if number == 0:
            steps.append(case.call([rng.standard_normal((3, c, size, size))], rng=rng, grad_args=(0,),
                                   label=f"{label}, gradients"))
    steps += [must_raise("VisionTransformer", [8, 3], mention=("3", "8"), **VIT_ALONE,
                         label="VisionTransformer(image_size=8, patch_size=3)"),
              must_raise("VisionTransformer", [], kwargs=dict(d_model=30, num_heads=4), mention=("4", "30"),
                         label="VisionTransformer(d_model=30, num_heads=4)", **VIT_ALONE)]
    return steps


ITEMS = {"test_patchify": patchify_steps, "test_PatchEmbedding": patch_embedding_steps,
         "test_VisionTransformer": vision_transformer_steps}
