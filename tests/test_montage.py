"""Bipolar montage arithmetic, NaN fill and mask, and the hemisphere mirror."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.schema import EEG_COLUMNS
from features.montage import (
    REFERENTIAL_SWAP_INDEX,
    bipolar_montage,
    bipolar_names,
    bipolar_swap_index,
    fill_missing,
    mirror_name,
    swap_hemispheres,
    swap_index,
    swap_referential,
)


def referential(n: int = 3, t: int = 50, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 50, (n, t, len(EEG_COLUMNS))).astype(np.float32)


def column(eeg: np.ndarray, name: str) -> np.ndarray:
    return eeg[..., EEG_COLUMNS.index(name)]


def test_double_banana_pairs_in_chain_order():
    names = bipolar_names()
    assert names[:4] == ("Fp1-F7", "F7-T3", "T3-T5", "T5-O1")
    assert names[4:8] == ("Fp2-F8", "F8-T4", "T4-T6", "T6-O2")
    assert names[8:12] == ("Fp1-F3", "F3-C3", "C3-P3", "P3-O1")
    assert names[12:] == ("Fp2-F4", "F4-C4", "C4-P4", "P4-O2")
    assert bipolar_names(central=True)[16:] == ("Fz-Cz", "Cz-Pz")


@pytest.mark.parametrize("central", [False, True])
def test_each_bipolar_channel_is_the_difference_of_its_electrodes(central):
    eeg = referential()
    bipolar = bipolar_montage(eeg, central)
    assert bipolar.shape == (3, 50, 18 if central else 16)
    for i, name in enumerate(bipolar_names(central)):
        a, b = name.split("-")
        np.testing.assert_array_equal(bipolar[..., i], column(eeg, a) - column(eeg, b))


def test_chain_differences_telescope():
    # Fp1-F7 + F7-T3 + T3-T5 + T5-O1 == Fp1 - O1: a check that no pair is reversed.
    eeg = referential()
    bipolar = bipolar_montage(eeg)
    np.testing.assert_allclose(bipolar[..., 0:4].sum(-1), column(eeg, "Fp1") - column(eeg, "O1"), atol=1e-3)
    np.testing.assert_allclose(bipolar[..., 12:16].sum(-1), column(eeg, "Fp2") - column(eeg, "O2"), atol=1e-3)


def test_nan_electrode_fills_only_its_pairs_and_sets_their_mask():
    eeg = referential()
    eeg[1, 10:20, EEG_COLUMNS.index("F7")] = np.nan
    filled, mask = fill_missing(bipolar_montage(eeg))
    assert np.isfinite(filled).all()
    hit = [i for i, n in enumerate(bipolar_names()) if "F7" in n.split("-")]
    assert hit == [0, 1]
    assert mask[1, 10:20, hit].all() and mask.sum() == 2 * 10
    assert (filled[1, 10:20, hit] == 0).all()


def test_mirror_names():
    assert mirror_name("Fp1-F7") == "Fp2-F8"
    assert mirror_name("LL_0.59") == "RL_0.59"
    assert mirror_name("RP@10s") == "LP@10s"
    assert mirror_name("Cz-Pz") == "Cz-Pz"
    assert mirror_name("EKG") == "EKG"
    assert [EEG_COLUMNS[i] for i in REFERENTIAL_SWAP_INDEX[:4]] == ["Fp2", "F4", "C4", "P4"]
    assert EEG_COLUMNS[REFERENTIAL_SWAP_INDEX[EEG_COLUMNS.index("Cz")]] == "Cz"


def test_swap_index_refuses_a_layout_without_mirror_channels():
    with pytest.raises(ValueError, match="no mirror"):
        swap_index(("LL", "LP"))


@pytest.mark.parametrize("central", [False, True])
def test_swap_then_montage_equals_montage_then_swap(central):
    eeg = referential()
    swapped_first = bipolar_montage(swap_referential(eeg), central)
    montage_first = swap_hemispheres(bipolar_montage(eeg, central), bipolar_swap_index(central), axis=-1)
    np.testing.assert_array_equal(swapped_first, montage_first)
    assert bipolar_swap_index()[:8] == (4, 5, 6, 7, 0, 1, 2, 3)


def test_swap_is_an_involution_and_the_same_on_torch():
    eeg = referential()
    np.testing.assert_array_equal(swap_referential(swap_referential(eeg)), eeg)
    x = torch.from_numpy(eeg)
    assert torch.equal(swap_hemispheres(x, REFERENTIAL_SWAP_INDEX, axis=-1), torch.from_numpy(swap_referential(eeg)))
