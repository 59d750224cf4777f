"""Patient-level features (5th place): what the members predict for the patient's other recordings.

A patient's recordings tend to share their pattern; the mean/max/min/std of the members' mean
prediction over the patient's *other* recordings in the same split (OOF rows with OOF rows, test
rows with test rows), and how many there are, tell a stacker about that. Recordings, not rows, are
the unit: the test set has one row per recording, the OOF sets several. They use predictions only,
never targets, and folds are grouped by patient, so nothing crosses a fold.

They travel as extra "members": (CHANNELS, N, 6) arrays stacked after the real members, so the
cross-fitting code slices them like any member.
"""

from __future__ import annotations

import numpy as np

CHANNELS = 5  # mean, max, min, std over the other recordings, log1p(their count) (broadcast over classes)


def patient_channels(probs: np.ndarray, recordings: np.ndarray, groups: np.ndarray | None) -> np.ndarray:
    """(M, N, 6) member probabilities -> (CHANNELS, N, 6); rows without a patient id or with no other
    recording get their own recording's figures, std 0 and count 0."""
    mean = probs.mean(axis=0)
    rec_ids, rec_of_row = np.unique(np.asarray(recordings), return_inverse=True)
    rec_mean = np.zeros((len(rec_ids), mean.shape[1]))
    np.add.at(rec_mean, rec_of_row, mean)
    rec_mean /= np.bincount(rec_of_row)[:, None]
    stats = _leave_one_out(rec_mean, _patient_of_recording(rec_of_row, groups, len(rec_ids)))
    return stats[:, rec_of_row]


def augment(probs: np.ndarray, recordings: np.ndarray, groups: np.ndarray | None) -> np.ndarray:
    """Members followed by the patient channels: what the patient-feature stackers fit on."""
    return np.concatenate([probs, patient_channels(probs, recordings, groups)])


def _patient_of_recording(rec_of_row: np.ndarray, groups: np.ndarray | None, n_recordings: int) -> np.ndarray:
    if groups is None:
        return np.arange(n_recordings)  # every recording its own patient: no others
    patient = np.empty(n_recordings, dtype=np.int64)
    _, codes = np.unique(np.asarray(groups), return_inverse=True)
    patient[rec_of_row] = codes
    return patient


def _leave_one_out(rec_mean: np.ndarray, patient: np.ndarray) -> np.ndarray:
    """(CHANNELS, R, 6): per recording, the statistics over the other recordings of its patient."""
    out = np.empty((CHANNELS, *rec_mean.shape))
    out[0] = out[1] = out[2] = rec_mean
    out[3] = out[4] = 0.0
    order = np.argsort(patient, kind="stable")
    bounds = np.flatnonzero(np.diff(patient[order])) + 1
    for recs in np.split(order, bounds):
        if len(recs) < 2:
            continue
        x = rec_mean[recs]
        others = np.stack([np.delete(x, i, axis=0) for i in range(len(recs))])  # (n, n-1, 6)
        out[0, recs] = others.mean(axis=1)
        out[1, recs] = others.max(axis=1)
        out[2, recs] = others.min(axis=1)
        out[3, recs] = others.std(axis=1)
        out[4, recs] = np.log1p(len(recs) - 1)
    return out
