"""The feature benchmark's notebook-style reference computes the same views as `compute_view`:
its speed ratio means something only if both produce the same arrays."""

from __future__ import annotations

import numpy as np
import pytest

from bench.features import reference_view
from features.kaggle_data import KaggleFolder
from features.views import compute_view, get_view
from tests.kaggle_layout import make_folder


@pytest.mark.parametrize("name", ["eeg_spec", "eeg_spec_pairmax", "wave"])
def test_reference_matches_compute_view(tmp_path, name):
    data = make_folder(tmp_path / "data", n_eegs=2)
    folder = KaggleFolder(data)
    rows = folder.train_table().head(2)
    view = get_view(name)
    windows = [folder.eeg_windows("train", r.eeg_id, [r.eeg_label_offset_seconds]) for r in rows.itertuples()]
    ours = np.concatenate([compute_view(view, eeg_windows=w) for w in windows])
    np.testing.assert_allclose(reference_view(view, data, rows).astype(np.float32), ours, atol=5e-3)
