"""Batches for training and prediction, drawn from the cached views of a recipe."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from core.errors import DataError
from core.schema import TARGET_COLUMNS
from core.vote_weights import vote_weights
from features.cache import load_cached_view
from features.views import get_view
from oof.recipe import Recipe


class ViewArrays:
    """A recipe's cached views for one split, aligned row by row; `gather` builds input tensors.

    Views with different (F, T) shapes (the `mix` recipes) are resized to the first view's shape
    and concatenated on the channel axis, so augmentations and image assembly see one tensor.
    """

    def __init__(self, recipe: Recipe, data: Path, work: Path, split: str):
        self.arrays, self.swap_parts = [], []
        key = "label_id" if split == "train" else "eeg_id"
        self.index: pd.DataFrame | None = None
        for name in recipe.model.views:
            array, index = load_cached_view(name, data, work, split)
            if self.index is None:
                self.index = index.reset_index(drop=True)
            elif not np.array_equal(index[key].to_numpy(), self.index[key].to_numpy()):
                raise DataError(f"cached view {name} under {work}/cache has other {split} rows than "
                                f"{recipe.model.views[0]}; delete {work}/cache and prepare again")
            self.arrays.append(array)
            self.swap_parts.append(np.asarray(get_view(name).swap_index))
        self.row_of = pd.Series(np.arange(len(self.index)), index=self.index[key].to_numpy())

    @property
    def swap_index(self) -> np.ndarray:
        """Channel permutation for the hemisphere swap of the concatenated tensor."""
        offsets = np.cumsum([0] + [a.shape[1] for a in self.arrays[:-1]])
        return np.concatenate([part + off for part, off in zip(self.swap_parts, offsets, strict=True)])

    def gather(self, rows: np.ndarray) -> torch.Tensor:
        order = np.argsort(rows)  # sorted reads are sequential on a memmap
        parts = []
        for array in self.arrays:
            block = np.empty((len(rows), *array.shape[1:]), dtype=np.float32)
            block[order] = array[rows[order]]
            parts.append(torch.from_numpy(block))
        first = parts[0]
        resized = [first] + [_resize_like(p, first) for p in parts[1:]]
        return torch.cat(resized, dim=1)


def _resize_like(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    if x.shape[2:] == ref.shape[2:]:
        return x
    mode = "bilinear" if x.ndim == 4 else "linear"
    return F.interpolate(x, size=ref.shape[2:], mode=mode, align_corners=False)


class BatchSet(Dataset):
    """Item i is batch i (so DataLoader workers build whole batches from the memmap)."""

    def __init__(self, views: ViewArrays, rows: np.ndarray, table: pd.DataFrame, batch_size: int, scheme: str):
        self.views, self.rows, self.batch_size = views, rows, batch_size
        self.targets = table[list(TARGET_COLUMNS)].to_numpy(dtype=np.float32)
        self.n_votes = table["n_votes"].to_numpy(dtype=np.int64)
        self.weights = vote_weights(self.n_votes, scheme).astype(np.float32)

    def __len__(self) -> int:
        return (len(self.rows) + self.batch_size - 1) // self.batch_size

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        sl = slice(i * self.batch_size, (i + 1) * self.batch_size)
        return {"x": self.views.gather(self.rows[sl]), "target": torch.tensor(self.targets[sl]),
                "weight": torch.tensor(self.weights[sl]), "n_votes": torch.tensor(self.n_votes[sl])}


def loader(views: ViewArrays, table: pd.DataFrame, key: str, batch_size: int, scheme: str = "none",
           num_workers: int = 0, pin_memory: bool = False, persistent_workers: bool = False,
           prefetch_factor: int | None = None) -> DataLoader:
    """Batches of `table`'s rows in table order; `table[key]` names each row's cached view row.
    `persistent_workers` and `prefetch_factor` (batches per worker ahead) need num_workers > 0."""
    rows = views.row_of.reindex(table[key].to_numpy()).to_numpy()
    if np.isnan(rows.astype(np.float64)).any():
        raise DataError(f"some {key}s have no cached view row; delete the cache under WORK/cache and rerun")
    dataset = BatchSet(views, rows.astype(np.int64), table.reset_index(drop=True), batch_size, scheme)
    workers = num_workers > 0
    return DataLoader(dataset, batch_size=None, shuffle=False, num_workers=num_workers, pin_memory=pin_memory,
                      persistent_workers=persistent_workers and workers,
                      prefetch_factor=prefetch_factor if workers else None)


def epoch_rows(label_rows: pd.DataFrame, epoch: int, stage: int, high_vote_min: int, seed: int,
               per_recording: int = 1) -> pd.DataFrame:
    """Up to `per_recording` labelled windows per recording (0: all), drawn anew each epoch; stage 2 keeps
    high-vote rows only. One window is the top solutions' epoch on 17k recordings; on a few hundred
    recordings an epoch of one window each is too few steps, and a recording's other windows are free
    augmentation (their offsets differ, their votes are often the same)."""
    rows = label_rows if stage == 1 else label_rows[label_rows["n_votes"] >= high_vote_min]
    rng = np.random.default_rng([seed, epoch, stage])
    keys = pd.Series(rng.random(len(rows)), index=rows.index)
    rank = keys.groupby(rows["eeg_id"].to_numpy()).rank(method="first", ascending=False)
    chosen = rows[(rank <= per_recording).to_numpy()] if per_recording > 0 else rows
    return chosen.iloc[rng.permutation(len(chosen))]
