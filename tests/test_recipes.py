"""Recipes are names; every setting is overridable from the command line, with clear errors."""

from __future__ import annotations

import pytest

from core.errors import UserFacingError
from models.build import build_model
from oof.recipes import RECIPES, get_recipe

REQUIRED = {"mit_b0_spec", "mit_b1_spec", "mit_b2_spec", "mit_b0_kspec", "mit_b1_mix", "wave1d",
            "mit_b0_spec_cpu", "mit_b0_kspec_cpu", "wave1d_cpu",
            # the top solutions' members (issue 13), each with a CPU preset
            "effb0_kspec_eegspec", "effb5_raw_image", "mixnet_pair_mel", "effnet1d_wave", "lgbm_bands",
            "effb0_kspec_eegspec_cpu", "effb5_raw_image_cpu", "mixnet_pair_mel_cpu", "effnet1d_wave_cpu",
            "specnet1d_wave", "specnet1d_wave_cpu"}


def test_the_named_recipes_exist():
    assert REQUIRED <= set(RECIPES)
    assert get_recipe("mit_b1_mix").model.views == ("eeg_spec", "kaggle_spec")


def test_flat_and_sectioned_overrides_are_typed():
    r = get_recipe("mit_b1_spec", "epochs=3 image_size=256 tta_swap=false train.lr=1e-4 views=kaggle_spec")
    assert (r.train.epochs, r.model.image_size, r.data.tta_swap, r.train.lr) == (3, 256, False, 1e-4)
    assert r.model.views == ("kaggle_spec",)
    assert r.fingerprint() != get_recipe("mit_b1_spec").fingerprint()
    assert get_recipe("mit_b1_spec").fingerprint() == get_recipe("mit_b1_spec").fingerprint()


@pytest.mark.parametrize("args, message", [
    ("epoch=3", "did you mean epochs"),
    ("epochs=three", "expected int"),
    ("epochs", "not key=value"),
    ("tta_swap=maybe", "expected bool"),
    ("name=../x", "it becomes a file name"),
])
def test_bad_overrides(args, message):
    with pytest.raises(UserFacingError, match=message):
        get_recipe("mit_b0_spec", args)


def test_a_name_override_makes_a_variant_with_its_own_fingerprint():
    r = get_recipe("mit_b0_spec", "name=mit_b0_spec_pairmax views=eeg_spec_pairmax")
    assert r.name == "mit_b0_spec_pairmax" and r.model.views == ("eeg_spec_pairmax",)
    assert "variant mit_b0_spec_pairmax of mit_b0_spec" in r.description
    seeds = [get_recipe("wave1d", f"name=wave1d_s{s} seed={s}").fingerprint() for s in (1, 2)]
    assert seeds[0] != seeds[1]


def test_unknown_recipe_suggests_a_name():
    with pytest.raises(UserFacingError, match="did you mean mit_b1_spec"):
        get_recipe("mit_b1_spek")


def test_build_model_gives_six_logits():
    import torch

    model = build_model(get_recipe("mit_b0_spec_cpu").model, in_chans=1).eval()
    assert model(torch.zeros(2, 1, 64, 96)).shape == (2, 6)
    wave = build_model(get_recipe("wave1d_cpu").model, in_chans=16).eval()
    assert wave(torch.zeros(2, 16, 1000)).shape == (2, 6)


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_every_recipe_builds_and_gives_six_logits(name):
    """Each named recipe resolves, has a provenance line, and (neural ones) builds for its views' shape."""
    import torch

    from features.views import zeros_batch
    from models.build import model_input_channels

    recipe = get_recipe(name)
    assert recipe.provenance or not name.endswith("_cpu")
    if recipe.is_gbdt or not name.endswith("_cpu"):  # full-size GPU models: too slow to build on every run
        return
    sample = zeros_batch(recipe.model.views)
    model = build_model(recipe.model, model_input_channels(recipe.model, sample)).eval()
    from models.build import input_transform

    to_input = input_transform(recipe.model)
    with torch.no_grad():
        assert model(to_input(sample.repeat(2, *[1] * (sample.dim() - 1))) if to_input else
                     sample.repeat(2, *[1] * (sample.dim() - 1))).shape == (2, 6)


def test_top_solution_recipes_carry_their_training_options():
    raw = get_recipe("effb5_raw_image")
    assert (raw.data.vote_weighting, raw.data.high_vote_min, raw.train.stage2_from_top_k) == ("linear", 7, 3)
    assert (raw.model.image_layout, raw.model.image_size, raw.model.image_width) == ("rows", 160, 1000)
    assert get_recipe("mixnet_pair_mel").model.head_pool == "gem"
    assert get_recipe("lgbm_bands").is_gbdt and not get_recipe("effnet1d_wave").is_gbdt


def test_a_field_added_later_keeps_the_fingerprints_of_runs_trained_before_it():
    # a93d1778f9af / e3485b8f26b7: these recipes' fingerprints before ModelConfig.input_norm existed
    assert get_recipe("mit_b0_spec").fingerprint() == "a93d1778f9af"
    assert get_recipe("wave1d").fingerprint() == "e3485b8f26b7"
    assert get_recipe("mit_b0_spec", "input_norm=batch").fingerprint() != "a93d1778f9af"
