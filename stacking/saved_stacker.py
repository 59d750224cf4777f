"""The final fitted stacker on disk (WORK/stack/stacker.json + the files its entry writes), and applying
it to new member predictions: what `make submission` needs to predict a test set no OOF run has seen.

Floats go through JSON at full precision (Python's repr round-trips), and LightGBM boosters through
their own text format, so the applied stacker reproduces the test predictions of `make stack`.
Each method saves and loads through its entry in stacking.stackers. With prior_correction=em the
saved stacker carries the prior it is calibrated to and re-runs EM on each new test set.

A test recording some members could not predict (a NaN row: its EEG unreadable, too short, its
spectrogram missing) is still predicted: a weighted blend of members (blend, selection, logit)
renormalises its weights over the members that saw it; the other stackers use those members'
mean; a recording no member saw gets the class prior saved with the stacker.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.artifacts import write_json
from core.errors import UserFacingError
from core.work import Work, checked_name
from stacking.crossfit import StackerRun
from stacking.prior_shift import correct
from stacking.stackers import Predictor, stacker_entry

log = logging.getLogger(__name__)

FORMAT = 1


@dataclass
class SavedStacker:
    method: str                 # a key of stacking.stackers.STACKERS
    members: list[str]          # the order of the stacker's inputs
    policy: str = ""
    model: Predictor | None = None
    train_prior: list[float] | None = None  # set: EM prior correction on every test set (stacking.prior_shift)
    prior_steps: int = 1
    class_prior: list[float] | None = None  # the scored rows' class mix: what a recording no member saw gets

    def apply(self, test_probs: dict[str, np.ndarray], eeg_ids: np.ndarray | None = None,
              patients: np.ndarray | None = None) -> np.ndarray:
        """{member: (T, 6)} -> (T, 6) stacked probabilities; stackers with patient features also use the
        rows' eeg_ids and patient ids (test.csv). A NaN row: that member could not see the recording."""
        missing = [m for m in self.members if m not in test_probs]
        if missing:
            raise UserFacingError(f"no test predictions for stack member(s) {', '.join(missing)}; the saved "
                                  f"stacker needs {', '.join(self.members)}")
        probs = np.stack([_rows_sum_to_one(test_probs[m]) for m in self.members])
        seen = np.isfinite(probs).all(axis=2)  # (M, T)
        full = seen.all(axis=0)
        if full.all():  # the usual case, exactly as before: one call on every row
            return self.predict(probs, eeg_ids, patients)
        out = np.empty(probs.shape[1:])
        if full.any():
            out[full] = self._raw(probs[:, full], _rows(eeg_ids, full), _rows(patients, full))
        self._degraded(probs, seen, ~full, out)
        return self._corrected(out)

    def predict(self, probs: np.ndarray, eeg_ids: np.ndarray | None = None,
                patients: np.ndarray | None = None) -> np.ndarray:
        """(M, T, 6) member probabilities in `members` order -> (T, 6)."""
        return self._corrected(self._raw(probs, eeg_ids, patients))

    def _raw(self, probs: np.ndarray, eeg_ids: np.ndarray | None, patients: np.ndarray | None) -> np.ndarray:
        if getattr(self.model, "uses_patients", False):
            return self.model.predict(probs, eeg_ids, patients)
        return self.model.predict(probs)

    def _corrected(self, out: np.ndarray) -> np.ndarray:
        return out if self.train_prior is None else correct(out, np.asarray(self.train_prior), self.prior_steps)

    def _degraded(self, probs: np.ndarray, seen: np.ndarray, rows: np.ndarray, out: np.ndarray) -> None:
        """Fill `out[rows]`, recordings some member did not see, one availability pattern at a time."""
        subset = stacker_entry(self.method).subset
        patterns, inverse = np.unique(seen[:, rows].T, axis=0, return_inverse=True)
        where = np.flatnonzero(rows)
        hows = set()
        for k, pattern in enumerate(patterns):
            index = where[inverse.ravel() == k]
            keep = np.flatnonzero(pattern)
            if not len(keep):
                out[index] = self.prior()
                hows.add("the class prior where no member saw it")
                continue
            model = subset(self.model, keep) if subset is not None else None
            if model is None:
                part = probs[keep][:, index].mean(axis=0)
                why = "cannot leave a member out" if subset is None else "gives them no weight"
                hows.add(f"the mean of the members that saw it ({self.method} {why})")
            else:
                part = model.predict(probs[keep][:, index])
                hows.add(f"{self.method} weights renormalised over the members that saw it")
            out[index] = part
        log.warning("%d degraded test recordings predicted by %s", len(where), "; ".join(sorted(hows)))

    def prior(self) -> np.ndarray:
        """The class prior saved by `make stack` (older stacker.json files: the EM train prior, else uniform)."""
        prior = self.class_prior or self.train_prior
        return np.full(6, 1 / 6) if prior is None else np.asarray(prior, dtype=np.float64)


def _rows(values: np.ndarray | None, mask: np.ndarray) -> np.ndarray | None:
    return None if values is None else np.asarray(values)[mask]


def from_run(run: StackerRun, members: list[str], train_prior: np.ndarray | None = None,
             prior_steps: int = 1, class_prior: np.ndarray | None = None) -> SavedStacker:
    """The SavedStacker of a finalised StackerRun (with the prior correction's train prior, if any)."""
    return SavedStacker(run.method, list(members), run.policy.label, stacker_entry(run.method).model(run),
                        _floats(train_prior), prior_steps, _floats(class_prior))


def _floats(values: np.ndarray | None) -> list[float] | None:
    return None if values is None else [float(v) for v in values]


def _rows_sum_to_one(probs: np.ndarray) -> np.ndarray:
    """As loading a test parquet does (members.check_probabilities): the stacker saw these inputs."""
    probs = np.asarray(probs, dtype=np.float64)
    return probs / probs.sum(axis=1, keepdims=True)


def save_stacker(work: Path | str | Work, stacker: SavedStacker) -> Path:
    """Write stacker.json (last, so its presence means the files it names are complete)."""
    work = Work(work)
    work.stack_dir().mkdir(parents=True, exist_ok=True)
    try:
        stale = side_files(work)
    except UserFacingError as err:  # an unreadable old stacker.json must not block writing a new one
        log.warning("not removing the side files of the old stacker.json: %s", err)
        stale = []
    for path in stale:
        path.unlink(missing_ok=True)
    payload = {"format": FORMAT, "method": stacker.method, "policy": stacker.policy, "members": stacker.members,
               "train_prior": stacker.train_prior, "prior_steps": stacker.prior_steps,
               "class_prior": stacker.class_prior}
    payload.update(stacker_entry(stacker.method).save(stacker.model, work.stack_dir()))
    write_json(work.stacker(), payload)
    return work.stacker()


def side_files(work: Path | str | Work) -> list[Path]:
    """The files the saved stacker's entry wrote beside stacker.json."""
    work = Work(work)
    if not work.stacker().is_file():
        return []
    saved = _read(work.stacker())
    # stacker.json files written before the table listed "files" name only LightGBM's boosters
    names = saved.get("files", [fold.get("file") for fold in saved.get("lgbm_folds", [])])
    return [work.stack_file(name, work.stacker()) for name in _listed(work.stacker(), names, "files")]


def load_stacker(work: Path | str | Work) -> SavedStacker:
    work = Work(work)
    path = work.stacker()
    if not path.is_file():
        raise UserFacingError(f"{path} is missing: the fitted stacker is saved by `make stack`; run it in this "
                              f"WORK folder (or rebuild the bundle from one where it ran)")
    saved = _read(path)
    if saved.get("format") != FORMAT:
        raise UserFacingError(f"{path} has format {saved.get('format')}, this code reads {FORMAT}; rerun `make stack`")
    # Member names become paths (WORK/oof/NAME.json, WORK/models/NAME/): the file may come from anyone.
    members = [checked_name(name, path) for name in _listed(path, saved.get("members"), "members")]
    model = stacker_entry(saved.get("method")).load(saved, work.stack_dir())
    return SavedStacker(saved["method"], members, saved.get("policy", ""), model, saved.get("train_prior"),
                        int(saved.get("prior_steps", 1)), saved.get("class_prior"))


def _read(path: Path) -> dict:
    try:
        saved = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError):
        saved = None
    if not isinstance(saved, dict):
        raise UserFacingError(f"{path} is not a stacker.json written by `make stack`; rerun `make stack`")
    return saved


def _listed(path: Path, values, field: str) -> list:
    if not isinstance(values, list) or (field == "members" and not values):
        raise UserFacingError(f"{path}: {field!r} must be a list of names; rerun `make stack`")
    return values
