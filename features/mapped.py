"""A read-only memory-mapped .npy array that pickles as its path, and new .npy files allocated up front.

DataLoader workers receive their dataset pickled whenever they are not forked (macOS and Windows
spawn them; Python 3.14 makes forkserver the Linux default). A pickled np.memmap carries its whole
contents, gigabytes for a real-data cache, into every worker; this one carries its file name and
maps the file again on the other side.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import numpy as np

from core.errors import UserFacingError


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


def create_npy(path: Path | str, shape: tuple[int, ...], dtype=np.float16) -> None:
    """A new .npy file of `shape`, its disk blocks allocated now.

    A memory map over a sparse file allocates blocks as rows are written, and on a full disk the
    writing process dies with SIGBUS ("Bus error"); allocated first, a full disk is one error here.
    Where the filesystem cannot allocate ahead (EOPNOTSUPP), the caller's free-space check stands.
    """
    path = Path(path)
    np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape).flush()
    size = path.stat().st_size
    if not hasattr(os, "posix_fallocate") or size == 0:
        return
    fd = os.open(path, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as err:
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            free = shutil.disk_usage(path.parent).free
            path.unlink(missing_ok=True)
            raise UserFacingError(f"{path.parent}: no space for {path.name} ({size} bytes needed, {free} free); "
                                  f"free some space or use a WORK= on a larger disk") from None
        if err.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
            raise
    finally:
        os.close(fd)
