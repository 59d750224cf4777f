"""Bipolar double-banana montage, NaN fill with a mask, and the left <-> right hemisphere mirror.

Arrays are time-major like the data layer: (..., T, channels), channels on the last axis.
The mirror is defined once, on names (electrodes and chain prefixes); every channel layout
(referential EEG, bipolar pairs, view channels, Kaggle spectrogram columns) derives its swap
permutation from its channel names with `swap_index`, and `swap_hemispheres` applies it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from core.schema import CHAINS, EEG_COLUMNS

CHAIN_PAIRS = {
    "LL": (("Fp1", "F7"), ("F7", "T3"), ("T3", "T5"), ("T5", "O1")),
    "RL": (("Fp2", "F8"), ("F8", "T4"), ("T4", "T6"), ("T6", "O2")),
    "LP": (("Fp1", "F3"), ("F3", "C3"), ("C3", "P3"), ("P3", "O1")),
    "RP": (("Fp2", "F4"), ("F4", "C4"), ("C4", "P4"), ("P4", "O2")),
}
CENTRAL_PAIRS = (("Fz", "Cz"), ("Cz", "Pz"))
PAIRS_PER_CHAIN = 4

# Left/right homologues; midline electrodes (Fz, Cz, Pz) and EKG map to themselves.
_LEFT_RIGHT = (("Fp1", "Fp2"), ("F3", "F4"), ("C3", "C4"), ("P3", "P4"),
               ("F7", "F8"), ("T3", "T4"), ("T5", "T6"), ("O1", "O2"), ("LL", "RL"), ("LP", "RP"))
MIRROR = {**{a: b for a, b in _LEFT_RIGHT}, **{b: a for a, b in _LEFT_RIGHT}}
_TOKEN_SPLIT = re.compile(r"([-_@])")


@lru_cache(maxsize=4)
def bipolar_pairs(central: bool = False) -> tuple[tuple[str, str], ...]:
    """LL, RL, LP, RP chains front to back (16 pairs), then Fz-Cz, Cz-Pz when `central`."""
    pairs = tuple(pair for chain in CHAINS for pair in CHAIN_PAIRS[chain])
    return pairs + CENTRAL_PAIRS if central else pairs


def bipolar_names(central: bool = False) -> tuple[str, ...]:
    return tuple(f"{a}-{b}" for a, b in bipolar_pairs(central))


@lru_cache(maxsize=4)
def _pair_indices(central: bool) -> tuple[np.ndarray, np.ndarray]:
    pairs = bipolar_pairs(central)
    first = np.array([EEG_COLUMNS.index(a) for a, _ in pairs])
    second = np.array([EEG_COLUMNS.index(b) for _, b in pairs])
    return first, second


def bipolar_montage(eeg: np.ndarray, central: bool = False) -> np.ndarray:
    """(..., T, 20) referential in EEG_COLUMNS order -> (..., T, 16 or 18) bipolar differences, NaN kept."""
    first, second = _pair_indices(central)
    return eeg[..., first] - eeg[..., second]


def fill_missing(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Replace NaN by 0 in bipolar signals (NaN where either electrode is); return (filled, mask).

    Zero is a bipolar pair's expected value, and unlike a window mean it is pointwise: a frame
    reads the same whichever overlapping window (or 50 s test recording) it is cut from. The mask
    tells the model the values there are made up.
    """
    missing = np.isnan(x)
    if not missing.any():
        return x, missing
    return np.where(missing, 0.0, x).astype(x.dtype, copy=False), missing


def mirror_name(name: str) -> str:
    """'Fp1-F7' -> 'Fp2-F8', 'LL_0.59' -> 'RL_0.59', 'LP@50s' -> 'RP@50s', 'Cz' -> 'Cz'."""
    return "".join(MIRROR.get(token, token) for token in _TOKEN_SPLIT.split(name))


def swap_index(names: Sequence[str]) -> tuple[int, ...]:
    """The permutation p with names[p[i]] == mirror(names[i]): out = x[p] swaps the hemispheres."""
    position = {name: i for i, name in enumerate(names)}
    missing = [n for n in names if mirror_name(n) not in position]
    if missing:
        raise ValueError(f"no mirror channel for {missing[:3]} in this layout")
    return tuple(position[mirror_name(n)] for n in names)


def swap_hemispheres(x, index: Sequence[int], axis: int):
    """Swap left and right along `axis` of a numpy array or torch tensor (augmentation and TTA)."""
    if isinstance(x, np.ndarray):
        return np.take(x, np.asarray(index), axis=axis)
    import torch

    return x.index_select(axis, torch.as_tensor(index, dtype=torch.long, device=x.device))


REFERENTIAL_SWAP_INDEX = swap_index(EEG_COLUMNS)


def bipolar_swap_index(central: bool = False) -> tuple[int, ...]:
    return swap_index(bipolar_names(central))


def swap_referential(eeg):
    """(..., 20) referential EEG in EEG_COLUMNS order with Fp1 <-> Fp2, F3 <-> F4, ... (midline, EKG kept)."""
    return swap_hemispheres(eeg, REFERENTIAL_SWAP_INDEX, axis=-1)
