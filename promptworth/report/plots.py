"""Learning curves: score vs labelled examples, log x axis, mean line and a band: the 95 %
interval of the mean when every point has one, else the min-max over seeds (the legend says)."""

from __future__ import annotations

from pathlib import Path

LEGEND_INSIDE = 8  # with more methods the legend goes beside the axes
LINE_STYLES = (("-", "o"), ("-.", "s"), (":", "^"))


def plot_learning_curves(
    frame,
    path: Path,
    metric: str = "accuracy",
    title: str = "",
    bands: dict[tuple[str, int], tuple[float, float]] | None = None,
) -> Path:
    """`bands`: (method, n_train) -> the 95 % interval of `metric`'s mean, drawn instead of the
    min-max over seeds; no-training methods then get their interval as a faint horizontal band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = sorted(frame["method"].unique())
    many = len(methods) > LEGEND_INSIDE
    fig, ax = plt.subplots(figsize=(10.5, 5.2) if many else (7.5, 4.8))
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    # past the colour cycle's length, colours repeat with another line style and marker
    color = {m: cycle[i % len(cycle)] for i, m in enumerate(methods)}
    style = {m: LINE_STYLES[i // len(cycle) % len(LINE_STYLES)] for i, m in enumerate(methods)}
    trained = frame[frame["n_train"] > 0]
    shade = 0.1 if many else 0.2  # many overlapping bands stay readable when fainter
    for method, group in trained.groupby("method"):
        stats = group.groupby("n_train")[metric].agg(["mean", "min", "max"])
        if bands is not None:
            stats["min"], stats["max"] = zip(*(bands[(method, n)] for n in stats.index))
        line, marker = style[method]
        ax.plot(stats.index, stats["mean"], line, marker=marker, color=color[method], label=method)
        ax.fill_between(stats.index, stats["min"], stats["max"], color=color[method], alpha=shade)
    for method, group in frame[frame["n_train"] == 0].groupby("method"):
        ax.axhline(
            group[metric].mean(),
            linestyle="--",
            color=color[method],
            label=f"{method} (no training)",
        )
        if bands is not None:
            ax.axhspan(*bands[(method, 0)], color=color[method], alpha=0.08)
    # what the bands are: a legend entry of its own (an empty, labelled band)
    what = "95 % interval of the mean (seeds × test rows)" if bands else "min–max over seeds"
    ax.fill_between([], [], color="gray", alpha=shade, label=f"band: {what}")
    if len(trained):
        ax.set_xscale("log")
    ax.set_xlabel("labelled training examples (log scale)")
    ax.set_ylabel(metric)
    ax.set_title(title or f"{metric} vs number of labelled examples (mean over seeds)")
    ax.grid(alpha=0.3)
    if many:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    else:
        ax.legend(loc="best", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
