"""Logit-space linear stacker with a class bias (3rd place): softmax(Σ_m w_m · log p_m + b).

Unlike the blend, the weights are free reals (a member may be subtracted) and their sum acts as a
temperature. The loss (weighted KL plus a small L2 on w, which keeps correlated members' weights
from drifting apart) is convex in (w, b), so L-BFGS from the mean finds the optimum: deterministic,
no search.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import log_softmax, softmax

from core.metric import EPS

N_CLASSES = 6


@dataclass(frozen=True)
class LogitConfig:
    l2: float = 1e-3


@dataclass
class LogitFit:
    weights: np.ndarray   # (M,)
    bias: np.ndarray      # (6,)
    fit_kl: float

    def predict(self, probs: np.ndarray) -> np.ndarray:
        logits = np.tensordot(self.weights, np.log(np.clip(probs, EPS, 1.0)), axes=1) + self.bias
        return softmax(logits, axis=1)

    def describe(self, names: list[str]) -> dict:
        return {"weights": dict(zip(names, self.weights.round(6).tolist(), strict=True)),
                "bias": self.bias.round(6).tolist(), "fit_kl": self.fit_kl}


def fit_logit(probs: np.ndarray, targets: np.ndarray, row_weights: np.ndarray, config: LogitConfig) -> LogitFit:
    keep = row_weights > 0
    m = probs.shape[0]
    basis = np.log(np.clip(probs[:, keep], EPS, 1.0)).reshape(m, -1)
    t = targets[keep]
    w = row_weights[keep] / row_weights[keep].sum()
    entropy = float(w @ np.where(t > 0, t * np.log(np.where(t > 0, t, 1.0)), 0.0).sum(1))
    mass = t.sum(axis=1, keepdims=True)

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        weights, bias = theta[:m], theta[m:]
        log_q = log_softmax((weights @ basis).reshape(-1, N_CLASSES) + bias, axis=1)
        value = entropy - float(w @ (t * log_q).sum(axis=1)) + config.l2 * float(weights @ weights)
        g_logits = (np.exp(log_q) * mass - t) * w[:, None]
        grad = np.concatenate([basis @ g_logits.ravel() + 2 * config.l2 * weights, g_logits.sum(axis=0)])
        return value, grad

    start = np.concatenate([np.full(m, 1.0 / m), np.zeros(N_CLASSES)])
    theta = minimize(loss, start, jac=True, method="L-BFGS-B", options={"maxiter": 1000}).x
    bias = theta[m:] - theta[m:].mean()
    fitted = LogitFit(theta[:m], bias, 0.0)
    fitted.fit_kl = float(loss(np.concatenate([theta[:m], bias]))[0] - config.l2 * float(theta[:m] @ theta[:m]))
    return fitted
