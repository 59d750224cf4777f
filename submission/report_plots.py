"""The report's figures, one PNG each (matplotlib, Agg): each function takes arrays and writes `out`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.artifacts import atomic_path
from core.schema import CLASSES

DPI = 90


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on servers or Kaggle
    import matplotlib.pyplot as plt

    return plt


def _save(fig, out: Path) -> None:
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    _pyplot().close(fig)


def kl_bars(rows: dict[str, dict], high_votes: int, out: Path) -> None:
    """Grouped bars: KL on all rows and on high-vote rows, per member, baseline and the stack."""
    plt = _pyplot()
    labels = list(rows)
    x = np.arange(len(labels))
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(labels) + 2), 4.2), layout="constrained")
    for i, (key, name) in enumerate((("kl_all", "all rows"), ("kl_high", f">= {high_votes} voters"))):
        values = [rows[label][key] for label in labels]
        bars = ax.bar(x + (i - 0.5) * 0.38, values, 0.38, label=name)
        ax.bar_label(bars, fmt="%.3f", fontsize=8)
    ax.set_xticks(x, labels, rotation=20, ha="right")
    ax.set_ylabel("KL divergence (lower is better)")
    ax.set_title("OOF KL per model and stacked")
    ax.legend()
    _save(fig, out)


def confusion(targets: np.ndarray, preds: np.ndarray, title: str, out: Path) -> None:
    """Rows: the vote majority (targets' argmax); columns: the predicted argmax; shares per row."""
    plt = _pyplot()
    n = len(CLASSES)
    counts = np.zeros((n, n), dtype=np.int64)
    np.add.at(counts, (targets.argmax(axis=1), preds.argmax(axis=1)), 1)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6, 5.2), layout="constrained")
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for i in range(n):
        for j in range(n):
            ax.text(j, i, f"{shares[i, j]:.2f}\n({counts[i, j]})", ha="center", va="center", fontsize=8,
                    color="white" if shares[i, j] > 0.6 else "black")
    ax.set_xticks(range(n), CLASSES)
    ax.set_yticks(range(n), CLASSES)
    ax.set_xlabel("predicted class (argmax)")
    ax.set_ylabel("voted class (argmax of votes)")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label="share of the row")
    _save(fig, out)


def reliability(targets: np.ndarray, preds: np.ndarray, out: Path, bins: int = 10) -> None:
    """Per class: mean vote share against mean predicted probability in probability bins."""
    plt = _pyplot()
    edges = np.linspace(0, 1, bins + 1)
    fig, (ax, hist) = plt.subplots(2, 1, figsize=(6.5, 7), height_ratios=(3, 1), sharex=True, layout="constrained")
    ax.plot([0, 1], [0, 1], color="0.6", ls="--", lw=1, label="perfectly calibrated")
    for c, name in enumerate(CLASSES):
        which = np.clip(np.digitize(preds[:, c], edges) - 1, 0, bins - 1)
        filled = [b for b in range(bins) if (which == b).any()]
        mean_p = [preds[which == b, c].mean() for b in filled]
        mean_t = [targets[which == b, c].mean() for b in filled]
        ax.plot(mean_p, mean_t, marker="o", ms=4, lw=1.2, label=name)
    ax.set_ylabel("mean vote share")
    ax.set_title("Reliability of the stacked OOF predictions")
    ax.legend(fontsize=8)
    hist.hist(preds.ravel(), bins=edges, color="0.5")
    hist.set_xlabel("predicted probability (all classes)")
    hist.set_ylabel("cells")
    _save(fig, out)


def weights(stackers: dict[str, dict[str, float]], final: str, out: Path) -> None:
    """Member weights of the weighted stackers (blend, selection); the final method is marked."""
    plt = _pyplot()
    members = sorted({m for w in stackers.values() for m in w})
    x = np.arange(len(members))
    width = 0.8 / max(len(stackers), 1)
    fig, ax = plt.subplots(figsize=(max(6, 1.4 * len(members) + 2), 4), layout="constrained")
    for i, (method, w) in enumerate(stackers.items()):
        label = f"{method} (final)" if method == final else method
        bars = ax.bar(x + (i - (len(stackers) - 1) / 2) * width, [w.get(m, 0.0) for m in members], width, label=label)
        ax.bar_label(bars, fmt="%.2f", fontsize=8)
    ax.set_xticks(x, members, rotation=15, ha="right")
    ax.set_ylabel("weight")
    ax.set_title(f"Stack weights (final stacker: {final})")
    ax.legend()
    _save(fig, out)


def example_predictions(votes: np.ndarray, preds: dict[str, np.ndarray], title: str, out: Path) -> None:
    """Vote shares beside each member's and the stack's predicted probabilities for one sample."""
    plt = _pyplot()
    series = {"votes": votes, **preds}
    x = np.arange(len(CLASSES))
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(8, 3.6), layout="constrained")
    for i, (label, values) in enumerate(series.items()):
        ax.bar(x + (i - (len(series) - 1) / 2) * width, values, width, label=label,
               color="black" if label == "votes" else None)
    ax.set_xticks(x, CLASSES)
    ax.set_ylim(0, 1)
    ax.set_ylabel("probability")
    ax.set_title(title)
    ax.legend(fontsize=8, ncols=min(len(series), 4))
    _save(fig, out)
