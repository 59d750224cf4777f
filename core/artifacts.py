"""How every stage writes files: atomically, and stamped with the config and code version."""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import subprocess
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from core.errors import DENIED, FULL

PROVENANCE_KEY = b"hms_stack"


@lru_cache(maxsize=1)
def code_version() -> str:
    """`git describe` of the checkout (with -dirty), else the installed package version."""
    root = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=12"],
            cwd=root, capture_output=True, text=True, timeout=10, check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        from importlib.metadata import PackageNotFoundError, version

        try:
            return f"hms-stack {version('hms-stack')}"
        except PackageNotFoundError:
            return "unknown"


@contextlib.contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it into place only if the block succeeds. A disk that
    refuses it (full, read-only) raises OSError naming `path`: the CLI turns that into one line.

    The file is created with mode 0666 less the umask (usually 0644), as open() would: mkstemp's 0600
    would leave submission.csv and the bundle's files unreadable to anyone else."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        os.close(os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        yield tmp_path
        os.replace(tmp_path, path)
    except OSError as err:
        # name the file meant, not the temporary one (nor none at all: a write's ENOSPC names no file)
        if err.errno in FULL | DENIED and (err.filename is None or Path(err.filename) == tmp_path):
            raise OSError(err.errno, err.strerror, str(path)) from err
        raise
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


_TEMPORARY = re.compile(r"^\..+\.\d+\.[0-9a-f]{8}\.tmp$")  # atomic_path's names


def remove_temporaries(folder: Path | str) -> list[Path]:
    """Delete the temporaries atomic_path left in `folder` (kill -9 runs no `finally`); the ones deleted.
    Only for a folder one job writes at a time: another job's write in progress would lose its file."""
    removed = [p for p in Path(folder).glob(".*.tmp") if _TEMPORARY.match(p.name) and p.is_file()]
    for path in removed:
        path.unlink(missing_ok=True)
    return removed


def write_json(path: Path | str, payload: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def write_csv(path: Path | str, frame: pd.DataFrame) -> None:
    """Write `frame` atomically as CSV (no index); NaN and None become empty cells."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def write_parquet(path: Path | str, frame: pd.DataFrame, provenance: dict[str, Any] | None = None) -> None:
    """Write `frame` atomically; `provenance` (config, code version, ...) goes in the schema metadata."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    stamp = {"code_version": code_version(), **(provenance or {})}
    meta = dict(table.schema.metadata or {})
    meta[PROVENANCE_KEY] = json.dumps(stamp, default=_json_default).encode()
    table = table.replace_schema_metadata(meta)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def read_provenance(path: Path | str) -> dict[str, Any]:
    meta = pq.read_schema(path).metadata or {}
    raw = meta.get(PROVENANCE_KEY)
    return json.loads(raw) if raw else {}
