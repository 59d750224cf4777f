"""Optuna defaults shared by the stackers: quiet logging, a seeded multivariate TPE sampler (or, for a
persistent study that resumes, one reseeded per trial, so a resumed run replays an uninterrupted one),
and a progress callback in its place ("trial i/n, best value", a line every few seconds)."""

from __future__ import annotations

import logging
import warnings

import optuna

from core.progress import Throttle

log = logging.getLogger(__name__)


def quiet_optuna() -> None:
    """One log line per trial drowns the CLI tables; keep warnings only."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def tpe_sampler(seed: int) -> optuna.samplers.TPESampler:
    """Multivariate TPE: models parameter interactions, and costs ~4x less per trial than
    independent TPE with dozens of weights."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=seed, multivariate=True)


class TrialProgress:
    """Optuna callback: "LABEL: trial i/n, best value v" at most every few seconds (core.progress.Throttle).
    `always` (one long study): also the first and the last trial; else (the many short searches of a
    cross-fit) a search that ends within the interval says nothing."""

    def __init__(self, label: str, n_trials: int, always: bool = False, throttle: Throttle | None = None):
        self.label, self.n_trials, self.always = label, n_trials, always
        self.throttle = throttle or Throttle()
        self.done = 0
        if not always:
            self.throttle.ready()  # the interval starts now: no line for the first trial

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self.done += 1
        last = self.done == self.n_trials
        if self.throttle.ready() or (last and self.always):
            log.info("%s: trial %d/%d, best value %s", self.label, self.done, self.n_trials, _best_value(study))


def _best_value(study: optuna.Study) -> str:
    try:
        return f"{study.best_value:.5f}"
    except ValueError:  # no trial has finished: every one so far was pruned
        return "none yet (every trial pruned)"


FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


class ReplayableTpe(optuna.samplers.BaseSampler):
    """Multivariate TPE seeded afresh for each trial with `seed` + the number of finished trials before
    it. A trial's parameters then depend only on the finished trials before it (TPE ignores failed and
    running ones), not on how many processes the study took: a run killed after k trials and resumed
    proposes the same trial k+1 as an uninterrupted one."""

    def __init__(self, seed: int):
        self.seed = seed
        self._tpe = tpe_sampler(seed)

    def before_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        before = sum(t.number < trial.number for t in study.get_trials(deepcopy=False, states=FINISHED))
        self._tpe = tpe_sampler(self.seed + before)
        self._tpe.before_trial(study, trial)

    def infer_relative_search_space(self, study, trial):
        return self._tpe.infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space):
        return self._tpe.sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        return self._tpe.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study, trial, state, values) -> None:
        self._tpe.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self._tpe.reseed_rng()


def fail_stale_trials(study: optuna.Study) -> int:
    """Mark the study's RUNNING trials failed: left by a killed run (one `make stack` per study at a time),
    they would otherwise stay RUNNING forever. Returns how many."""
    stale = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    for trial in stale:
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
    return len(stale)
