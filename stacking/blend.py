"""Weighted blend: simplex weights, optional per-class bias and temperature, in probability or log space.

Optuna (seeded TPE) searches the weights, bias and temperature; scipy's L-BFGS then polishes the
best trial with the analytic gradient. In probability space without bias/temperature, and in log
space for any fixed temperature, the loss is convex in the (unnormalised) weights, so the polish
does the heavy lifting and the search only has to land in the right basin.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace

import numpy as np
import optuna
from scipy.optimize import minimize
from scipy.special import log_softmax, softmax

from core.errors import UserFacingError
from core.metric import EPS
from stacking.tuning import TrialProgress, quiet_optuna, tpe_sampler

SPACES = ("prob", "log")
N_CLASSES = 6
VARIANTS = ("plain", "temperature", "bias", "bias+temperature")


@dataclass(frozen=True)
class BlendConfig:
    space: str = "prob"
    bias: bool = True           # fit_blend's form; the stack fits each of `variants` instead
    temperature: bool = True
    # The forms `make stack` fits, each a configuration of the robust choice (stacking.honest).
    variants: tuple[str, ...] = VARIANTS
    trials: int = 100
    seed: int = 0

    def variant(self, name: str) -> BlendConfig:
        """This config fitting variant `name`: plain weights, + temperature, + class bias, or both.
        Plain weights are convex in probability space: L-BFGS alone, no search."""
        if name not in VARIANTS:
            raise UserFacingError(f"blend.variants: {name!r} is not one of {', '.join(VARIANTS)}")
        parts = name.split("+")
        trials = 0 if name == "plain" else self.trials
        return replace(self, bias="bias" in parts, temperature="temperature" in parts, trials=trials)


@dataclass
class BlendFit:
    weights: np.ndarray
    bias: np.ndarray
    temperature: float
    space: str
    fit_kl: float

    def predict(self, probs: np.ndarray) -> np.ndarray:
        """Blend (M, N, 6) member probabilities into (N, 6)."""
        if self.space == "log":
            base = np.tensordot(self.weights, np.log(np.clip(probs, EPS, 1.0)), axes=1)
        else:
            base = np.log(np.clip(np.tensordot(self.weights, probs, axes=1), EPS, None))
        return softmax(base / self.temperature + self.bias, axis=1)

    def describe(self, names: list[str]) -> dict:
        return {"space": self.space, "weights": dict(zip(names, self.weights.round(6).tolist(), strict=True)),
                "bias": self.bias.round(6).tolist(), "temperature": round(float(self.temperature), 6),
                "fit_kl": self.fit_kl}


class BlendObjective:
    """Weighted mean KL of the blend on the fit rows, with its gradient in θ = (logits, bias, log T)."""

    def __init__(self, probs: np.ndarray, targets: np.ndarray, row_weights: np.ndarray, config: BlendConfig):
        keep = row_weights > 0
        self.config = config
        self.n_members = probs.shape[0]
        members = probs[:, keep]
        # Flattened (M, n*6) so that blending and its gradient are single matrix-vector products.
        if config.space == "log":
            self.basis = np.log(np.clip(members, EPS, 1.0)).reshape(self.n_members, -1)
        else:
            self.basis = members.reshape(self.n_members, -1)
        self.targets = targets[keep]
        self.row_weights = row_weights[keep] / row_weights[keep].sum()
        t = self.targets
        self.entropy = float(self.row_weights @ np.where(t > 0, t * np.log(np.where(t > 0, t, 1.0)), 0.0).sum(1))
        self.target_mass = self.targets.sum(axis=1, keepdims=True)

    def unpack(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        m = self.n_members
        weights = softmax(theta[:m])
        bias = theta[m:m + N_CLASSES] if self.config.bias else np.zeros(N_CLASSES)
        log_t = theta[-1] if self.config.temperature else 0.0
        return weights, bias, math.exp(log_t)

    def pack(self, weights: np.ndarray, bias: np.ndarray, temperature: float) -> np.ndarray:
        parts = [np.log(np.clip(weights, 1e-12, None))]
        if self.config.bias:
            parts.append(np.asarray(bias, dtype=np.float64))
        if self.config.temperature:
            parts.append(np.array([math.log(temperature)]))
        return np.concatenate(parts)

    def value(self, theta: np.ndarray) -> float:
        return self.value_and_grad(theta, grad=False)[0]

    def value_and_grad(self, theta: np.ndarray, grad: bool = True) -> tuple[float, np.ndarray | None]:
        weights, bias, temperature = self.unpack(theta)
        inv_t = 1.0 / temperature
        mixed = (weights @ self.basis).reshape(-1, N_CLASSES)
        base = mixed if self.config.space == "log" else np.log(np.clip(mixed, EPS, None))
        logits = base * inv_t + bias
        log_q = log_softmax(logits, axis=1)
        loss = self.entropy - float(self.row_weights @ (self.targets * log_q).sum(axis=1))
        if not grad:
            return loss, None
        # d loss / d logits for softmax cross-entropy, per row weighted.
        g_logits = (np.exp(log_q) * self.target_mass - self.targets) * self.row_weights[:, None]
        g_base = g_logits * inv_t
        if self.config.space == "prob":
            g_base = g_base / np.clip(mixed, EPS, None)
        g_weights = self.basis @ g_base.ravel()
        parts = [weights * (g_weights - weights @ g_weights)]
        if self.config.bias:
            parts.append(g_logits.sum(axis=0))
        if self.config.temperature:
            parts.append(np.array([-inv_t * float((g_logits * base).sum())]))
        return loss, np.concatenate(parts)


def fit_blend(probs: np.ndarray, targets: np.ndarray, row_weights: np.ndarray, config: BlendConfig) -> BlendFit:
    """Fit on the rows with positive weight: Optuna search, then L-BFGS polish."""
    if config.space not in SPACES:
        raise ValueError(f"blend space must be one of {SPACES}, got {config.space!r}")
    objective = BlendObjective(probs, targets, row_weights, config)
    start = _search(objective, config) if config.trials > 0 else objective.pack(
        np.full(objective.n_members, 1.0 / objective.n_members), np.zeros(N_CLASSES), 1.0)
    result = minimize(objective.value_and_grad, start, jac=True, method="L-BFGS-B",
                      options={"maxiter": 1000})
    theta = result.x if result.fun <= objective.value(start) else start
    weights, bias, temperature = objective.unpack(theta)
    return BlendFit(weights, bias - bias.mean(), temperature, config.space, objective.value(theta))


def _search(objective: BlendObjective, config: BlendConfig) -> np.ndarray:
    """Best θ of a seeded TPE search; the equal-weight mean is trial 0, so it is never worse than that."""
    m = objective.n_members
    quiet_optuna()
    study = optuna.create_study(direction="minimize", sampler=tpe_sampler(config.seed))
    mean_trial = {f"w{i}": 1.0 for i in range(m)}
    if config.bias:
        mean_trial.update({f"b{c}": 0.0 for c in range(N_CLASSES)})
    if config.temperature:
        mean_trial["log_temperature"] = 0.0
    study.enqueue_trial(mean_trial)

    def trial_theta(params: dict) -> np.ndarray:
        raw = np.array([params[f"w{i}"] for i in range(m)])
        weights = raw / raw.sum() if raw.sum() > 0 else np.full(m, 1.0 / m)
        bias = np.array([params.get(f"b{c}", 0.0) for c in range(N_CLASSES)])
        return objective.pack(weights, bias, math.exp(params.get("log_temperature", 0.0)))

    def run_trial(trial: optuna.Trial) -> float:
        params = {f"w{i}": trial.suggest_float(f"w{i}", 0.0, 1.0) for i in range(m)}
        if config.bias:
            params.update({f"b{c}": trial.suggest_float(f"b{c}", -1.0, 1.0) for c in range(N_CLASSES)})
        if config.temperature:
            params["log_temperature"] = trial.suggest_float("log_temperature", math.log(0.5), math.log(2.0))
        return objective.value(trial_theta(params))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.optimize(run_trial, n_trials=config.trials, callbacks=[TrialProgress("blend search", config.trials)])
    return trial_theta(study.best_params)
