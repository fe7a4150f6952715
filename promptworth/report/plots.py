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
    shade = 0.1 if many else 0.2  # many overlapping bands stay readable when fainter
    draw_curves(ax, frame, metric, method_colors(methods), bands, shade)
    # what the bands are: a legend entry of its own (an empty, labelled band)
    what = "95 % interval of the mean (seeds × test rows)" if bands else "min–max over seeds"
    ax.fill_between([], [], color="gray", alpha=shade, label=f"band: {what}")
    ax.set_title(title or f"{metric} vs number of labelled examples (mean over seeds)")
    if many:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    else:
        ax.legend(loc="best", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def method_colors(methods: list[str]) -> dict[str, tuple[str, str, str]]:
    """method -> (colour, line style, marker); past the colour cycle's length, colours repeat
    with another line style and marker."""
    import matplotlib.pyplot as plt

    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return {
        m: (cycle[i % len(cycle)], *LINE_STYLES[i // len(cycle) % len(LINE_STYLES)])
        for i, m in enumerate(methods)
    }


def draw_curves(
    ax,
    frame,
    metric: str,
    colors: dict[str, tuple[str, str, str]],
    bands: dict[tuple[str, int], tuple[float, float]] | None = None,
    shade: float = 0.2,
) -> None:
    """Each trained method's mean line and band, each no-training method as a dashed level."""
    trained = frame[frame["n_train"] > 0]
    for method, group in trained.groupby("method"):
        stats = group.groupby("n_train")[metric].agg(["mean", "min", "max"])
        if bands is not None:
            stats["min"], stats["max"] = zip(*(bands[(method, n)] for n in stats.index))
        color, line, marker = colors[method]
        ax.plot(stats.index, stats["mean"], line, marker=marker, color=color, label=method)
        ax.fill_between(stats.index, stats["min"], stats["max"], color=color, alpha=shade)
    for method, group in frame[frame["n_train"] == 0].groupby("method"):
        color = colors[method][0]
        ax.axhline(
            group[metric].mean(), linestyle="--", color=color, label=f"{method} (no training)"
        )
        if bands is not None:
            ax.axhspan(*bands[(method, 0)], color=color, alpha=0.08)
    if len(trained):
        ax.set_xscale("log")
    ax.set_xlabel("labelled training examples (log scale)")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
