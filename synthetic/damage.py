"""Damaged recordings, as disks and careless copies leave them: for the reader tests and bench/faults.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq


def corrupt_data_page(path, column: str, n_bytes: int = 20_000, seed: int = 0) -> None:
    """Overwrite `n_bytes` inside `column`'s data page with random bytes, footer and page header intact."""
    meta = pq.ParquetFile(path).metadata.row_group(0)
    chunk = meta.column([meta.column(i).path_in_schema for i in range(meta.num_columns)].index(column))
    start = chunk.data_page_offset + 1000
    assert start + n_bytes < chunk.data_page_offset + chunk.total_compressed_size
    with open(path, "r+b") as f:
        f.seek(start)
        f.write(np.random.default_rng(seed).bytes(n_bytes))


def write_uncompressed(path: Path) -> None:
    """Rewrite a parquet file with plain, uncompressed pages: random bytes in one then decode as values
    (in a compressed page they break the decompression instead)."""
    pd.read_parquet(path).to_parquet(path, index=False, compression=None, use_dictionary=False)
