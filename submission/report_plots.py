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
    """One panel per class: mean vote share against mean predicted probability in probability bins,
    each point labelled with its row count, the counts also as grey bars (right axis, kept in the lower third)."""
    plt = _pyplot()
    edges = np.linspace(0, 1, bins + 1)
    fig, axes = plt.subplots(2, 3, figsize=(13, 8), sharex=True, sharey=True, layout="constrained")
    for c, (name, ax) in enumerate(zip(CLASSES, axes.ravel(), strict=True)):
        which = np.clip(np.digitize(preds[:, c], edges) - 1, 0, bins - 1)
        counts = np.bincount(which, minlength=bins)
        filled = np.flatnonzero(counts)
        mean_p = [preds[which == b, c].mean() for b in filled]
        mean_t = [targets[which == b, c].mean() for b in filled]
        bars = ax.twinx()
        bars.bar(edges[:-1] + 0.05, counts, width=0.1, color="0.85", zorder=0)
        bars.set_ylim(0, 3 * counts.max())
        if c % 3 == 2:
            bars.set_ylabel("rows per bin (grey bars)", color="0.4")
        ax.set_zorder(bars.get_zorder() + 1)
        ax.patch.set_visible(False)  # the curve above the bars
        ax.plot([0, 1], [0, 1], color="0.6", ls="--", lw=1)
        ax.plot(mean_p, mean_t, marker="o", ms=5, lw=1.5, color=f"C{c}")
        for x, y, n in zip(mean_p, mean_t, counts[filled], strict=True):
            ax.annotate(str(n), (x, y), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8)
        ax.set_title(name)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
    for ax in axes[1]:
        ax.set_xlabel("mean predicted probability")
    for ax in axes[:, 0]:
        ax.set_ylabel("mean vote share")
    fig.suptitle("Reliability of the stacked OOF predictions (numbers: rows in the bin)")
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
    fig, ax = plt.subplots(figsize=(10, 4.2), layout="constrained")
    for i, (label, values) in enumerate(series.items()):
        ax.bar(x + (i - (len(series) - 1) / 2) * width, values, width, label=label,
               color="black" if label == "votes" else None)
    ax.set_xticks(x, CLASSES, fontsize=12)
    ax.set_ylim(0, 1)
    ax.set_ylabel("probability")
    ax.set_title(title)
    ax.legend(fontsize=11, ncols=min(len(series), 4))
    _save(fig, out)


def learning_curves(histories: dict[str, dict[int, list[dict]]], out: Path) -> None:
    """Per member: validation KL (all rows solid, high-vote dashed) and train loss (dotted) per epoch and fold."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(histories), figsize=(6.5 * len(histories), 4.5), squeeze=False,
                             layout="constrained")
    for ax, (name, folds) in zip(axes[0], histories.items(), strict=True):
        for k, rows in folds.items():
            epochs = [r["epoch"] for r in rows]
            ax.plot(epochs, [r["kl_all"] for r in rows], marker="o", color=f"C{k}", label=f"fold {k} valid KL")
            ax.plot(epochs, [r["kl_high"] for r in rows], ls="--", color=f"C{k}")
            if all("train_loss" in r for r in rows):
                ax.plot(epochs, [r["train_loss"] for r in rows], ls=":", color=f"C{k}")
        ax.set_title(f"{name} (solid: KL all, dashed: high-vote, dotted: train loss)", fontsize=10)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_xlabel("epoch (LightGBM: rounds)")
        ax.set_ylabel("KL / loss")
        ax.legend(fontsize=8)
    _save(fig, out)


def heatmap(values: np.ndarray, rows: list[str], columns: list[str], title: str, out: Path, fmt: str = "{:.3f}",
            cmap: str = "viridis", label: str = "") -> None:
    """A labelled matrix with its value in each cell and a colour bar."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(5, 1.2 * len(columns) + 3), max(2.5, 0.6 * len(rows) + 1.5)),
                           layout="constrained")
    image = ax.imshow(values, cmap=cmap, aspect="auto")
    for i in range(len(rows)):
        for j in range(len(columns)):
            r, g, b, _ = image.cmap(image.norm(values[i, j]))
            ax.text(j, i, fmt.format(values[i, j]), ha="center", va="center", fontsize=9,
                    color="black" if 0.3 * r + 0.6 * g + 0.1 * b > 0.5 else "white")  # readable on the cell
    ax.set_xticks(range(len(columns)), columns)
    ax.set_yticks(range(len(rows)), rows)
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label=label)
    _save(fig, out)


def grouped_bars(series: dict[str, list[float]], groups: list[str], title: str, ylabel: str, out: Path,
                 fmt: str = "%.3f") -> None:
    """One bar per (series, group), groups on the x axis."""
    plt = _pyplot()
    x = np.arange(len(groups))
    width = 0.8 / max(len(series), 1)
    fig, ax = plt.subplots(figsize=(max(7, 0.45 * len(groups) * len(series) + 3), 4.2), layout="constrained")
    for i, (label, values) in enumerate(series.items()):
        bars = ax.bar(x + (i - (len(series) - 1) / 2) * width, values, width, label=label)
        ax.bar_label(bars, fmt=fmt, fontsize=7)
    ax.set_xticks(x, groups)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.margins(y=0.15)  # room for the bar labels under the legend
    ax.legend(fontsize=8, ncols=min(len(series), 4))
    _save(fig, out)


def optuna_history(numbers: list[int], values: list[float], pruned: list[tuple[int, float]], best: list[float],
                   title: str, out: Path) -> None:
    """Trial objective per trial (pruned trials at their last reported value) and the best so far."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4), layout="constrained")
    ax.scatter(numbers, values, s=18, label="complete")
    if pruned:
        ax.scatter(*zip(*pruned, strict=True), marker="x", color="0.5", s=18, label="pruned (last report)")
    ax.step(numbers, best, where="post", color="C3", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel("tuning KL (high-vote rows)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    _save(fig, out)


def importances(names: list[str], gains: np.ndarray, title: str, out: Path) -> None:
    """Horizontal bars of the largest gains, largest on top."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 0.3 * len(names) + 1.5), layout="constrained")
    ax.barh(np.arange(len(names))[::-1], gains)
    ax.set_yticks(np.arange(len(names))[::-1], names, fontsize=9)
    ax.set_xlabel("total gain (summed over the fold boosters)")
    ax.set_title(title)
    _save(fig, out)
