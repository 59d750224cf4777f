"""What a cached split was computed from: one identity per input file, named relative to the data folder.

A file's identity is its size, mtime and a hash of three SAMPLE_BYTES blocks (start, middle, end),
plus a hash of its whole content taken when the cache was built. Checking a cache reads only the
samples (12 kB a file, not whole recordings); the whole-content hash is read only for a file whose
mtime moved while its size and samples stayed: a copy (`cp -r` sets new mtimes) is then recognised
and kept, an edit in place is caught. Names are relative, so a copied project matches its caches.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

SAMPLE_BYTES = 4096
THREADS = 8  # reading is I/O: a few threads hide the latency of a cold disk or a network share
CHUNK = 1 << 20


class Identity(NamedTuple):
    size: int
    mtime_ns: int
    sample: str  # hash of the size and the first, middle and last SAMPLE_BYTES
    content: str | None  # hash of the whole file; None where not taken

    def same_quick(self, other: Identity) -> bool:
        return (self.size, self.mtime_ns, self.sample) == (other.size, other.mtime_ns, other.sample)


class Comparison(NamedTuple):
    changed: list[str]  # names whose content differs from the record, or that are gone
    moved: dict[str, Identity]  # same content under a new mtime (a copy): record the new identity


def identity(path: Path, content: bool = False) -> Identity | None:
    """The identity of `path` (None if it is not a file); `content` also hashes the whole file."""
    try:
        stat = path.stat()
        with open(path, "rb") as f:
            sample = _sample_hash(f, stat.st_size)
            whole = _content_hash(f) if content else None
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None
    return Identity(stat.st_size, stat.st_mtime_ns, sample, whole)


def identities(root: Path, names: list[str], content: bool = False) -> dict[str, Identity | None]:
    with ThreadPoolExecutor(THREADS) as pool:
        return dict(zip(names, pool.map(lambda name: identity(root / name, content), names), strict=True))


def compare(root: Path, recorded: dict[str, Identity | None]) -> Comparison:
    """Which recorded inputs under `root` changed; whole files are read only where an mtime moved."""
    current = identities(root, list(recorded))
    changed, moved = [], {}
    for name, now in current.items():
        before = recorded[name]
        if before is not None and now is not None and before.same_quick(now):
            continue
        if before is None or now is None or (before.size, before.sample) != (now.size, now.sample):
            changed.append(name)
            continue
        full = identity(root / name, content=True)  # mtime moved only: a copy, or an edit in the middle?
        if full is not None and before.content is not None and full.content == before.content:
            moved[name] = full
        else:
            changed.append(name)
    return Comparison(changed, moved)


def to_record(ids: dict[str, Identity | None]) -> dict[str, list | None]:
    """JSON-ready form for a manifest."""
    return {name: None if i is None else list(i) for name, i in ids.items()}


def from_record(record: dict[str, list | None]) -> dict[str, Identity | None]:
    return {name: None if i is None else Identity(*i) for name, i in record.items()}


def _sample_hash(f, size: int) -> str:
    digest = hashlib.sha1(str(size).encode())
    for offset in sorted({0, max(size // 2 - SAMPLE_BYTES // 2, 0), max(size - SAMPLE_BYTES, 0)}):
        f.seek(offset)
        digest.update(f.read(SAMPLE_BYTES))
    return digest.hexdigest()[:16]


def _content_hash(f) -> str:
    f.seek(0)
    digest = hashlib.sha1()
    while block := f.read(CHUNK):
        digest.update(block)
    return digest.hexdigest()[:16]
