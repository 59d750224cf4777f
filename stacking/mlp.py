"""A small MLP on member logits (5th place), on CPU in seconds, deterministic for a seed.

Input: each member's log-probabilities centred per row (softmax-invariant), optionally followed by
the patient channels (stacking.patient_features), standardised on the fit rows. Output: the
members' geometric mean (as logits) plus a learned correction; the last layer starts at zero, so
training starts from the geometric-mean ensemble and only moves away where the fit rows say so.
Loss: row-weighted soft-target cross-entropy (KL plus a constant), Adam, fixed epochs.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from core.metric import EPS

N_CLASSES = 6


@dataclass(frozen=True)
class MlpConfig:
    hidden: int = 32
    epochs: int = 40
    batch: int = 512
    lr: float = 3e-3
    weight_decay: float = 1e-4
    dropout: float = 0.1
    # Also fit the mlp:patient variant when patient ids are known. Off: `make submission`
    # (submission/submit.py) does not pass test patient ids to SavedStacker.apply yet.
    patient_features: bool = False
    threads: int = 1
    seed: int = 0


class Net(nn.Module):
    def __init__(self, n_inputs: int, hidden: int, dropout: float):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(n_inputs, hidden), nn.GELU(), nn.Dropout(dropout),
                                  nn.Linear(hidden, N_CLASSES))
        nn.init.zeros_(self.body[-1].weight)
        nn.init.zeros_(self.body[-1].bias)

    def forward(self, x: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
        return base + self.body(x)


@contextmanager
def torch_threads(n: int):
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def inputs(probs: np.ndarray, n_members: int) -> tuple[np.ndarray, np.ndarray]:
    """(X (N, C*6) float32, base logits (N, 6) float32) from (C, N, 6): C = members (+ patient channels)."""
    log_p = np.log(np.clip(probs[:n_members], EPS, 1.0))
    centred = log_p - log_p.mean(axis=2, keepdims=True)
    extra = probs[n_members:]
    x = np.concatenate([centred, extra]).transpose(1, 0, 2).reshape(probs.shape[1], -1)
    return x.astype(np.float32), log_p.mean(axis=0).astype(np.float32)


@dataclass
class MlpFit:
    n_members: int
    mean: np.ndarray
    scale: np.ndarray
    state: dict          # state_dict as numpy arrays
    hidden: int
    fit_kl: float = float("nan")

    def net(self) -> Net:
        net = Net(len(self.mean), self.hidden, 0.0)
        net.load_state_dict({k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in self.state.items()})
        return net.eval()

    def predict(self, probs: np.ndarray) -> np.ndarray:
        x, base = inputs(probs, self.n_members)
        x = (x - self.mean) / self.scale
        with torch.no_grad(), torch_threads(1):
            logits = self.net()(torch.from_numpy(x), torch.from_numpy(base))
            out = torch.softmax(logits.double(), dim=1).numpy()
        return out

    def describe(self, names: list[str]) -> dict:
        return {"hidden": self.hidden, "n_inputs": int(len(self.mean)), "fit_kl": self.fit_kl}


def fit_mlp(probs: np.ndarray, targets: np.ndarray, row_weights: np.ndarray, config: MlpConfig,
            n_members: int | None = None) -> MlpFit:
    """Fit on the rows with positive weight; `probs` may carry extra channels after `n_members` members."""
    n_members = probs.shape[0] if n_members is None else n_members
    keep = row_weights > 0
    x, base = inputs(probs[:, keep], n_members)
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    x = (x - mean) / scale
    w = row_weights[keep] / row_weights[keep].mean()
    torch.manual_seed(config.seed)
    net = Net(x.shape[1], config.hidden, config.dropout)
    with torch_threads(config.threads):
        _train(net, x, base, targets[keep].astype(np.float32), w.astype(np.float32), config)
    state = {k: v.detach().numpy().copy() for k, v in net.state_dict().items()}
    fit = MlpFit(n_members, mean, scale, state, config.hidden)
    pred = fit.predict(probs[:, keep])
    t = targets[keep]
    kl = np.where(t > 0, t * np.log(np.where(t > 0, t, 1.0) / np.clip(pred, EPS, None)), 0.0).sum(1)
    fit.fit_kl = float((kl * w).sum() / w.sum())
    return fit


def _train(net: Net, x, base, targets, weights, config: MlpConfig) -> None:
    x, base, targets, weights = (torch.from_numpy(a) for a in (x, base, targets, weights))
    optimiser = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(config.seed)
    n = len(x)
    net.train()
    for _ in range(config.epochs):
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, config.batch):
            idx = order[start:start + config.batch]
            log_q = torch.log_softmax(net(x[idx], base[idx]), dim=1)
            loss = -(weights[idx] * (targets[idx] * log_q).sum(dim=1)).sum() / weights[idx].sum()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    net.eval()
