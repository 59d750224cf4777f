"""What a model is: the backbone by name, its input views and image layout, the head. Part of a recipe."""

from __future__ import annotations

from dataclasses import dataclass

INPUT_NORMS = ("none", "batch")


@dataclass(frozen=True)
class ModelConfig:
    backbone: str = "mit_b0"             # a name in models.backbones (MiT, 1D nets, or any timm model)
    views: tuple[str, ...] = ("eeg_spec",)  # cached views (features.views), concatenated on channels
    image_layout: str = "tile"           # tile: chains tiled into one image; stack: chains as channels
    image_size: int = 512                # height (and width, unless image_width) of the image fed to 2D backbones
    image_width: int = 0                 # 0: square; the raw EEG image of 2nd place is 160 x 1000
    pretrained: str = ""                 # local checkpoint file; nothing is ever downloaded
    drop_path_rate: float = 0.1
    head_pool: str = "last_avg"          # last_avg | all_avgmax | gem (2D backbones)
    dropout: float = 0.2
    input_norm: str = "none"             # "batch": BatchNorm over the image's channels before a 2D backbone

    def __post_init__(self):
        if self.input_norm not in INPUT_NORMS:
            raise ValueError(f"ModelConfig.input_norm must be one of {INPUT_NORMS}, got {self.input_norm!r}")
