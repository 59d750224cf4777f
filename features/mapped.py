"""A read-only memory-mapped .npy array that pickles as its path.

DataLoader workers receive their dataset pickled whenever they are not forked (macOS and Windows
spawn them; Python 3.14 makes forkserver the Linux default). A pickled np.memmap carries its whole
contents, gigabytes for a real-data cache, into every worker; this one carries its file name and
maps the file again on the other side.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


class MappedArray:
    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.array = np.load(self.path, mmap_mode="r")

    @property
    def shape(self) -> tuple[int, ...]:
        return self.array.shape

    @property
    def dtype(self) -> np.dtype:
        return self.array.dtype

    def __len__(self) -> int:
        return len(self.array)

    def __getitem__(self, index) -> np.ndarray:
        return self.array[index]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return np.asarray(self.array, dtype=dtype)

    def __getstate__(self) -> dict:
        return {"path": self.path}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["path"])
