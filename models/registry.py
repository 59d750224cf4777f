"""Named recipes: `mit_b1_spec` → a Recipe; `build_model(recipe, in_chans)` → a torch module.

Adding a model is adding a name here (a few lines of overrides of a base recipe), not a file.
`python -m oof models` (`make models`) lists them.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import replace

from torch import nn

from features.errors import UserFacingError
from models.heads import Classifier, ClassifierHead
from models.mit import MIT_VARIANTS, create_mit
from models.recipe import DataConfig, ModelConfig, Recipe, apply_overrides
from models.wave1d import create_wave1d
from oof.augment import AugmentConfig
from oof.train_loop import TrainConfig

RECIPES: dict[str, Callable[[], Recipe]] = {}


def register(fn: Callable[[], Recipe]) -> Callable[[], Recipe]:
    RECIPES[fn.__name__] = fn
    return fn


def _gpu_train(**kw) -> TrainConfig:
    base = dict(epochs=12, stage2_epochs=4, stage2_lr_scale=0.3, lr=5e-4, weight_decay=1e-2, warmup_frac=0.05,
                batch_size=32, grad_clip=1.0, ema_decay=0.999, num_workers=4)
    return TrainConfig(**{**base, **kw})


def _cpu_train(**kw) -> TrainConfig:
    base = dict(epochs=6, stage2_epochs=2, stage2_lr_scale=0.3, lr=1e-3, weight_decay=1e-2, warmup_frac=0.1,
                batch_size=16, grad_clip=1.0, ema_decay=0.0, num_workers=0)
    return TrainConfig(**{**base, **kw})


GPU_AUGMENT = AugmentConfig(swap_p=0.5, time_shift_frac=0.1, time_mask_p=0.3, freq_mask_p=0.3, mixup_p=0.3)
CPU_AUGMENT = AugmentConfig(swap_p=0.5, time_shift_frac=0.05, time_mask_p=0.2, freq_mask_p=0.2, mixup_p=0.0)


def _spec(backbone: str, views: tuple[str, ...], description: str, name: str, **model) -> Recipe:
    return Recipe(name=name, description=description,
                  model=ModelConfig(backbone=backbone, views=views, image_size=512, **model),
                  train=_gpu_train(), augment=GPU_AUGMENT)


@register
def mit_b0_spec() -> Recipe:
    return _spec("mit_b0", ("eeg_spec",), "MiT-b0 on EEG spectrogram images (50 s + zoomed 10 s, 4 chains)",
                 "mit_b0_spec")


@register
def mit_b1_spec() -> Recipe:
    return _spec("mit_b1", ("eeg_spec",), "MiT-b1 on EEG spectrogram images", "mit_b1_spec")


@register
def mit_b2_spec() -> Recipe:
    r = _spec("mit_b2", ("eeg_spec",), "MiT-b2 on EEG spectrogram images", "mit_b2_spec")
    return replace(r, train=replace(r.train, batch_size=24, lr=3e-4))


@register
def mit_b0_kspec() -> Recipe:
    return _spec("mit_b0", ("kaggle_spec",), "MiT-b0 on the 10-minute Kaggle spectrograms", "mit_b0_kspec")


@register
def mit_b1_mix() -> Recipe:
    return _spec("mit_b1", ("eeg_spec", "kaggle_spec"), "MiT-b1 on EEG and Kaggle spectrograms tiled together",
                 "mit_b1_mix")


@register
def wave1d() -> Recipe:
    return Recipe(name="wave1d", description="WaveNet-style 1D CNN + BiGRU on the raw bipolar waveform",
                  model=ModelConfig(backbone="wave1d", views=("wave",), drop_path_rate=0.0),
                  train=_gpu_train(lr=1e-3, batch_size=64), augment=GPU_AUGMENT)


# ---- CPU presets: the demo and the tests; minutes on 2 cores --------------------------------
def _cpu(recipe: Recipe, name: str, views: tuple[str, ...], **model) -> Recipe:
    return replace(recipe, name=name, description=f"CPU preset of {recipe.name}: small views, few epochs",
                   model=replace(recipe.model, views=views, pretrained="", **model),
                   train=_cpu_train(), augment=CPU_AUGMENT, data=DataConfig(tta_swap=True))


@register
def mit_b0_spec_cpu() -> Recipe:
    return _cpu(mit_b0_spec(), "mit_b0_spec_cpu", ("eeg_spec_tiny",), image_size=128, drop_path_rate=0.0)


@register
def mit_b0_kspec_cpu() -> Recipe:
    return _cpu(mit_b0_kspec(), "mit_b0_kspec_cpu", ("kaggle_spec_tiny",), image_size=128, drop_path_rate=0.0)


@register
def wave1d_cpu() -> Recipe:
    return _cpu(wave1d(), "wave1d_cpu", ("wave_tiny",), backbone="wave1d_tiny")


def get_recipe(name: str, overrides: list[str] | str = ()) -> Recipe:
    if name not in RECIPES:
        import difflib

        close = difflib.get_close_matches(name, list(RECIPES), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise UserFacingError(f"no recipe named {name!r}{hint}; `make models` lists them")
    return apply_overrides(RECIPES[name](), overrides)


def is_image_recipe(recipe: Recipe) -> bool:
    return not recipe.model.backbone.startswith("wave1d")


def input_transform(recipe: Recipe) -> Callable | None:
    """The on-device step from batched view tensors to the backbone's input (None: used as they are)."""
    if not is_image_recipe(recipe):
        return None
    from features.images import assemble_image

    layout, size = recipe.model.image_layout, recipe.model.image_size
    return lambda x: assemble_image(x, layout=layout, size=size)


def build_model(recipe: Recipe, in_chans: int) -> nn.Module:
    """The recipe's backbone + classification head, for inputs with `in_chans` channels."""
    cfg = recipe.model
    if cfg.backbone in MIT_VARIANTS:
        backbone = create_mit(cfg.backbone, in_chans=in_chans, drop_path_rate=cfg.drop_path_rate,
                              pretrained=cfg.pretrained or None)
        head = ClassifierHead.for_backbone(backbone, pool=cfg.head_pool, dropout=cfg.dropout)
    elif cfg.backbone.startswith("wave1d"):
        backbone = create_wave1d(cfg.backbone, in_chans=in_chans)
        head = ClassifierHead.for_backbone(backbone, dropout=cfg.dropout)
    else:
        raise UserFacingError(f"recipe {recipe.name}: unknown backbone {cfg.backbone!r}; "
                              f"use one of {', '.join(MIT_VARIANTS)}, wave1d, wave1d_tiny")
    return Classifier(backbone, head)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--verbose", action="store_true", help="print each recipe's resolved settings")


def run(args: argparse.Namespace) -> None:
    width = max(len(n) for n in RECIPES)
    for name, fn in RECIPES.items():
        recipe = fn()
        print(f"{name:<{width}}  {recipe.model.backbone:<11} {','.join(recipe.model.views):<22} {recipe.description}")
        if args.verbose:
            print(f"{'':<{width}}  {recipe.to_dict()}")
