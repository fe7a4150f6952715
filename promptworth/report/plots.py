"""Learning curves: score vs labelled examples, log x axis, mean line and min-max band."""

from __future__ import annotations

from pathlib import Path


def plot_learning_curves(frame, path: Path, metric: str = "accuracy", title: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    color = {m: cycle[i % len(cycle)] for i, m in enumerate(sorted(frame["method"].unique()))}
    trained = frame[frame["n_train"] > 0]
    for method, group in trained.groupby("method"):
        stats = group.groupby("n_train")[metric].agg(["mean", "min", "max"])
        ax.plot(stats.index, stats["mean"], marker="o", color=color[method], label=method)
        ax.fill_between(stats.index, stats["min"], stats["max"], color=color[method], alpha=0.2)
    for method, group in frame[frame["n_train"] == 0].groupby("method"):
        ax.axhline(
            group[metric].mean(),
            linestyle="--",
            color=color[method],
            label=f"{method} (no training)",
        )
    if len(trained):
        ax.set_xscale("log")
    ax.set_xlabel("labelled training examples (log scale)")
    ax.set_ylabel(metric)
    ax.set_title(title or f"{metric} vs number of labelled examples (mean, min–max over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
