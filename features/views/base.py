"""The view protocol and registry: a view is a frozen dataclass registered under its name.

A view's fields are everything that changes its output (the cache key hashes them);
`channel_names` says what each channel is, `swap_index` is the channel permutation that mirrors
left and right (augmentation and TTA), and `compute` turns windows into model-ready arrays.
A new family of views is a new module of this package that calls `register_view`.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np

from core.errors import UserFacingError
from features.montage import swap_index


class ViewBase:
    source: ClassVar[str]  # "eeg" or "spectrogram": which windows compute_view needs
    name: str

    def channel_names(self) -> tuple[str, ...]:
        raise NotImplementedError

    @property
    def swap_index(self) -> tuple[int, ...]:
        return swap_index(self.channel_names())

    def output_shape(self) -> tuple[int, ...]:
        raise NotImplementedError

    def compute(self, windows: np.ndarray, starts: np.ndarray | None) -> np.ndarray:
        """(n, ...) windows of `source` -> (n, *output_shape()) float32; `starts`: sample offsets of
        EEG windows cut from one recording (shared work is done once), or None."""
        raise NotImplementedError

    def to_dict(self) -> dict:
        return {"type": type(self).__name__, **dataclasses.asdict(self)}


VIEWS: dict[str, ViewBase] = {}


def register_view(*views: ViewBase) -> None:
    for view in views:
        if view.name in VIEWS:
            raise ValueError(f"view {view.name!r} registered twice")
        VIEWS[view.name] = view


def get_view(view: str | ViewBase) -> ViewBase:
    if not isinstance(view, str):
        return view
    if view not in VIEWS:
        raise UserFacingError(f"no view named {view!r}; choose one of {', '.join(VIEWS)}")
    return VIEWS[view]
