"""Mix Transformer (MiT, the SegFormer encoder), variants b0–b5, as a 4-stage feature extractor.

Xie et al. 2021, "SegFormer: Simple and Efficient Design for Semantic Segmentation with
Transformers". Module and parameter names follow the official (NVlabs / mmseg) release, so an
official checkpoint is this model's native state dict; `models.pretrained` also reads the
Hugging Face `nvidia/mit-bX` layout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from core.errors import UserFacingError
from models.backbones import register_backbone
from models.config import ModelConfig
from models.pretrained import load_mit_checkpoint

# The official release uses eps=1e-6 in the blocks and stage norms but the default 1e-5 in the
# patch-embedding and spatial-reduction norms; matching both keeps pretrained outputs exact.
BLOCK_NORM_EPS = 1e-6


@dataclass(frozen=True)
class MitVariant:
    embed_dims: tuple[int, int, int, int]
    depths: tuple[int, int, int, int]
    num_heads: tuple[int, int, int, int] = (1, 2, 5, 8)
    sr_ratios: tuple[int, int, int, int] = (8, 4, 2, 1)
    mlp_ratio: float = 4.0


_WIDE = (64, 128, 320, 512)
MIT_VARIANTS: dict[str, MitVariant] = {
    "mit_b0": MitVariant(embed_dims=(32, 64, 160, 256), depths=(2, 2, 2, 2)),
    "mit_b1": MitVariant(embed_dims=_WIDE, depths=(2, 2, 2, 2)),
    "mit_b2": MitVariant(embed_dims=_WIDE, depths=(3, 4, 6, 3)),
    "mit_b3": MitVariant(embed_dims=_WIDE, depths=(3, 4, 18, 3)),
    "mit_b4": MitVariant(embed_dims=_WIDE, depths=(3, 8, 27, 3)),
    "mit_b5": MitVariant(embed_dims=_WIDE, depths=(3, 6, 40, 3)),
}


def tokens_to_map(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(B, H*W, C) tokens → (B, C, H, W); a free view that is channels_last in memory."""
    return x.reshape(x.shape[0], h, w, x.shape[2]).permute(0, 3, 1, 2)


def map_to_tokens(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) → (B, H*W, C)."""
    return x.flatten(2).transpose(1, 2)


class DropPath(nn.Module):
    """Stochastic depth: drop a residual branch for whole samples, rescale the survivors."""

    def __init__(self, drop_prob: float = 0.0):
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.drop_prob == 0.0 or not self.training:
            return x
        keep = 1.0 - self.drop_prob
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob}"


class OverlapPatchEmbed(nn.Module):
    """Strided conv whose kernel is wider than its stride, so neighbouring patches overlap."""

    def __init__(self, in_chans: int, dim: int, kernel: int, stride: int):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, dim, kernel_size=kernel, stride=stride, padding=kernel // 2)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        x = self.proj(x)
        h, w = x.shape[2], x.shape[3]
        return self.norm(map_to_tokens(x)), h, w


class EfficientSelfAttention(nn.Module):
    """Multi-head attention whose keys/values come from a map shrunk sr_ratio times per side."""

    def __init__(self, dim: int, num_heads: int, sr_ratio: int):
        super().__init__()
        self.num_heads = num_heads
        self.sr_ratio = sr_ratio
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        if sr_ratio > 1:
            self.sr = nn.Conv2d(dim, dim, kernel_size=sr_ratio, stride=sr_ratio)
            self.norm = nn.LayerNorm(dim)

    def reduce(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        if self.sr_ratio == 1:
            return x
        fmap = tokens_to_map(x, h, w)
        # A map smaller than the reduction kernel (tiny inputs) would give an empty output; pad it
        # up to one kernel. Larger maps are floored exactly as in the official code.
        pad_h, pad_w = max(self.sr_ratio - h, 0), max(self.sr_ratio - w, 0)
        if pad_h or pad_w:
            fmap = F.pad(fmap, (0, pad_w, 0, pad_h), mode="replicate")
        return self.norm(map_to_tokens(self.sr(fmap)))

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        b, n, c = x.shape
        head_dim = c // self.num_heads
        q = self.q(x).reshape(b, n, self.num_heads, head_dim).transpose(1, 2)
        kv = self.kv(self.reduce(x, h, w)).reshape(b, -1, 2, self.num_heads, head_dim)
        k, v = kv.permute(2, 0, 3, 1, 4).unbind(0)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class DepthwiseConv(nn.Module):
    """3x3 depthwise conv on tokens; it gives Mix-FFN the positional cue MiT has no embedding for."""

    def __init__(self, dim: int):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=3, padding=1, groups=dim)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        return map_to_tokens(self.dwconv(tokens_to_map(x, h, w)))


class MixFFN(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.dwconv = DepthwiseConv(hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        return self.fc2(self.act(self.dwconv(self.fc1(x), h, w)))


class MitBlock(nn.Module):
    def __init__(self, dim: int, num_heads: int, sr_ratio: int, mlp_ratio: float, drop_path: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=BLOCK_NORM_EPS)
        self.attn = EfficientSelfAttention(dim, num_heads, sr_ratio)
        self.norm2 = nn.LayerNorm(dim, eps=BLOCK_NORM_EPS)
        self.mlp = MixFFN(dim, int(dim * mlp_ratio))
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x), h, w))
        return x + self.drop_path(self.mlp(self.norm2(x), h, w))


class MixTransformer(nn.Module):
    """MiT encoder: forward(x (B, in_chans, H, W)) → 4 maps (B, C_i, ~H/2^(i+2), ~W/2^(i+2)).

    Any H, W and in_chans work. The maps are channels_last views of the token tensors (no copy);
    call `.contiguous()` on them if a consumer needs NCHW memory.
    """

    def __init__(self, variant: MitVariant, in_chans: int = 3, drop_path_rate: float = 0.0, name: str = ""):
        super().__init__()
        self.variant = name or "mit"
        self.out_channels = list(variant.embed_dims)
        self.feature_strides = [4, 8, 16, 32]
        self.grad_checkpointing = False
        # Stochastic depth grows linearly with depth over all blocks of all stages.
        total = sum(variant.depths)
        rates = [drop_path_rate * i / max(total - 1, 1) for i in range(total)]
        prev_dim = in_chans
        for i, (dim, depth) in enumerate(zip(variant.embed_dims, variant.depths, strict=True), start=1):
            kernel, stride = (7, 4) if i == 1 else (3, 2)
            stage_rates, rates = rates[:depth], rates[depth:]
            blocks = [
                MitBlock(dim, variant.num_heads[i - 1], variant.sr_ratios[i - 1], variant.mlp_ratio, r)
                for r in stage_rates
            ]
            # Official names (patch_embed1, block1, norm1, …) make official checkpoints load as-is.
            setattr(self, f"patch_embed{i}", OverlapPatchEmbed(prev_dim, dim, kernel, stride))
            setattr(self, f"block{i}", nn.ModuleList(blocks))
            setattr(self, f"norm{i}", nn.LayerNorm(dim, eps=BLOCK_NORM_EPS))
            prev_dim = dim
        self.apply(_init_weights)

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute block activations in backward: less memory for large images, ~30% slower."""
        self.grad_checkpointing = enable

    def stages(self) -> list[tuple[OverlapPatchEmbed, nn.ModuleList, nn.LayerNorm]]:
        return [(getattr(self, f"patch_embed{i}"), getattr(self, f"block{i}"), getattr(self, f"norm{i}"))
                for i in range(1, 5)]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for embed, blocks, norm in self.stages():
            tokens, h, w = embed(x)
            for block in blocks:
                if self.grad_checkpointing and self.training and torch.is_grad_enabled():
                    tokens = checkpoint(block, tokens, h, w, use_reentrant=False)
                else:
                    tokens = block(tokens, h, w)
            x = tokens_to_map(norm(tokens), h, w)
            features.append(x)
        return features


def _init_weights(module: nn.Module) -> None:
    """The official initialisation: truncated-normal linears, He-style (fan-out) convs."""
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Conv2d):
        fan_out = module.kernel_size[0] * module.kernel_size[1] * module.out_channels // module.groups
        nn.init.normal_(module.weight, 0.0, math.sqrt(2.0 / fan_out))
        nn.init.zeros_(module.bias)


def list_mit() -> list[str]:
    return list(MIT_VARIANTS)


def create_mit(
    name: str,
    in_chans: int = 3,
    drop_path_rate: float = 0.0,
    pretrained: str | Path | None = None,
    grad_checkpointing: bool = False,
) -> MixTransformer:
    """Build the MiT variant `name` ("mit_b0" … "mit_b5"), optionally from a local checkpoint file."""
    if name not in MIT_VARIANTS:
        raise UserFacingError(f"unknown backbone {name!r}; the MiT variants are {', '.join(MIT_VARIANTS)}")
    model = MixTransformer(MIT_VARIANTS[name], in_chans=in_chans, drop_path_rate=drop_path_rate, name=name)
    model.set_grad_checkpointing(grad_checkpointing)
    if pretrained is not None:
        load_mit_checkpoint(model, pretrained)
    return model


@register_backbone("mit", kind="2d", names=MIT_VARIANTS)
def build_mit(name: str, in_chans: int, cfg: ModelConfig) -> MixTransformer:
    return create_mit(name, in_chans=in_chans, drop_path_rate=cfg.drop_path_rate, pretrained=cfg.pretrained or None)
