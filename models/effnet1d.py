"""1D EfficientNet for raw bipolar EEG waveforms: forward(x (B, C, T)) → features (B, out_features).

The channels (the bipolar pairs) enter together as the convolution's input channels. A strided stem
conv is followed by stages of MBConv1d blocks (1x1 expansion, depthwise conv, squeeze-excitation,
1x1 projection; BatchNorm and SiLU; residual with stochastic depth where the shape allows), a 1x1
head conv, and global average and max pooling over time.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
from torch import nn

from core.errors import UserFacingError
from models.backbones import own_variant, refuse_pretrained, register_backbone
from models.config import ModelConfig


@dataclass(frozen=True)
class Effnet1dVariant:
    stem_width: int
    widths: tuple[int, ...]  # output channels per stage
    depths: tuple[int, ...]  # MBConv blocks per stage
    strides: tuple[int, ...]  # time stride of each stage's first block
    kernels: tuple[int, ...]  # depthwise kernel per stage
    expands: tuple[int, ...]  # expansion ratio per stage
    head_width: int
    stem_stride: int = 2
    stem_kernel: int = 7
    se_ratio: float = 0.25  # squeeze width, relative to the block's input width
    drop_path_rate: float = 0.1  # stochastic depth, rising linearly to this over the blocks


EFFNET1D_VARIANTS: dict[str, Effnet1dVariant] = {
    # EfficientNet-B0's layout with longer kernels for time series; total stride 64, so a 50 s window at
    # 40 Hz (T=2,000) ends with 32 steps.
    "effnet1d": Effnet1dVariant(stem_width=32, widths=(16, 24, 40, 80, 112, 192, 320), depths=(1, 2, 2, 3, 3, 4, 1),
                                strides=(1, 2, 2, 2, 2, 2, 1), kernels=(3, 5, 7, 5, 7, 7, 5),
                                expands=(1, 6, 6, 6, 6, 6, 6), head_width=640),
    "effnet1d_tiny": Effnet1dVariant(stem_width=16, widths=(16, 24, 32, 48), depths=(1, 1, 1, 1),
                                     strides=(1, 2, 2, 2), kernels=(5, 5, 5, 3), expands=(1, 3, 3, 3),
                                     head_width=96, stem_stride=4, drop_path_rate=0.0),
}


class DropPath(nn.Module):
    """Stochastic depth: drop a residual branch for whole samples, rescaling the kept ones."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep


class SqueezeExcite1d(nn.Module):
    def __init__(self, width: int, squeeze: int):
        super().__init__()
        self.reduce = nn.Conv1d(width, squeeze, 1)
        self.expand = nn.Conv1d(squeeze, width, 1)
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.expand(self.act(self.reduce(x.mean(dim=2, keepdim=True))))
        return x * torch.sigmoid(scale)


def conv_bn(in_width: int, out_width: int, kernel: int = 1, stride: int = 1, groups: int = 1,
            act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv1d(in_width, out_width, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=False),
        nn.BatchNorm1d(out_width),
    ]
    if act:
        layers.append(nn.SiLU())
    return nn.Sequential(*layers)


class MBConv1d(nn.Module):
    """Inverted residual: 1x1 expand → depthwise k conv (strided) → SE → 1x1 project (+ residual)."""

    def __init__(self, in_width: int, out_width: int, kernel: int, stride: int, expand: int, se_ratio: float,
                 drop_path: float):
        super().__init__()
        mid = in_width * expand
        self.expand = conv_bn(in_width, mid) if expand != 1 else nn.Identity()
        self.depthwise = conv_bn(mid, mid, kernel, stride=stride, groups=mid)
        self.se = SqueezeExcite1d(mid, max(1, int(in_width * se_ratio))) if se_ratio > 0 else nn.Identity()
        self.project = conv_bn(mid, out_width, act=False)
        self.residual = stride == 1 and in_width == out_width
        self.drop_path = DropPath(drop_path) if self.residual else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.se(self.depthwise(self.expand(x))))
        return x + self.drop_path(out) if self.residual else out


class Effnet1d(nn.Module):
    def __init__(self, variant: Effnet1dVariant, in_chans: int):
        super().__init__()
        n = len(variant.widths)
        if not all(len(f) == n for f in (variant.depths, variant.strides, variant.kernels, variant.expands)):
            raise UserFacingError("effnet1d variant: widths, depths, strides, kernels and expands need one entry "
                                  "per stage")
        self.stem = conv_bn(in_chans, variant.stem_width, variant.stem_kernel, stride=variant.stem_stride)
        total = sum(variant.depths)
        blocks: list[nn.Module] = []
        width, index = variant.stem_width, 0
        for out_width, depth, stride, kernel, expand in zip(variant.widths, variant.depths, variant.strides,
                                                            variant.kernels, variant.expands, strict=True):
            for i in range(depth):
                rate = variant.drop_path_rate * index / max(1, total - 1)
                blocks.append(MBConv1d(width, out_width, kernel, stride if i == 0 else 1, expand,
                                       variant.se_ratio, rate))
                width, index = out_width, index + 1
        self.blocks = nn.Sequential(*blocks)
        self.head = conv_bn(width, variant.head_width)
        self.in_chans = in_chans
        self.min_length = variant.stem_stride * math.prod(variant.strides)
        self.out_features = 2 * variant.head_width  # average and max over time
        for m in self.modules():
            if isinstance(m, nn.Conv1d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.blocks(self.stem(x)))
        return torch.cat([x.mean(dim=2), x.amax(dim=2)], dim=1)


def create_effnet1d(name: str, in_chans: int, **overrides) -> Effnet1d:
    """Build the 1D EfficientNet `name`; keyword overrides replace fields of its Effnet1dVariant."""
    variant = own_variant(name, EFFNET1D_VARIANTS, "1D EfficientNets")
    return Effnet1d(dataclasses.replace(variant, **overrides), in_chans)


@register_backbone("effnet1d", kind="1d", names=EFFNET1D_VARIANTS)
def build_effnet1d(name: str, in_chans: int, cfg: ModelConfig) -> Effnet1d:
    refuse_pretrained(name, cfg, "1D EfficientNets")
    return create_effnet1d(name, in_chans, drop_path_rate=cfg.drop_path_rate)
