"""Learning curves: score vs labelled examples as small multiples, one panel per method family
(at most MAX_LINES methods each), log x axis ticked at the measured sizes, a mean line per method
and a band: the 95 % interval of the mean when every point has one, else the min-max over seeds
(the caption says). Methods that train on nothing (zero-shot) are a labelled horizontal line in
every panel. Drawn with matplotlib's object API on the Agg canvas (no pyplot global state)."""

from __future__ import annotations

import math
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter, NullLocator

from promptworth.report.colors import method_color
from promptworth.report.families import family_panels, flat_methods

COLUMNS = 3  # panels per row
LINE_STYLES = ("-", ":", "-.", (0, (5, 1, 1, 1, 1, 1)))  # dashed ("--") marks untrained methods


def plot_learning_curves(
    frame,
    path: Path,
    metric: str = "accuracy",
    title: str = "",
    bands: dict[tuple[str, int], tuple[float, float]] | None = None,
) -> Path:
    """`bands`: (method, n_train) -> the 95 % interval of `metric`'s mean, drawn instead of the
    min-max over seeds; no-training methods then get their interval as a faint horizontal band."""
    flat = flat_methods(frame)
    trained = frame[frame["n_train"] > 0]
    panels = family_panels(sorted(trained["method"].unique())) or [("no training", [])]
    rows = math.ceil(len(panels) / COLUMNS)
    columns = min(COLUMNS, len(panels))
    fig = Figure(figsize=(4.6 * columns, 3.6 * rows + 0.8), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, columns, sharey=True, squeeze=False).ravel()
    sizes = sorted(trained["n_train"].unique())
    styles = line_styles(frame)
    for ax, (family, methods) in zip(axes, panels):
        for method in methods:
            _draw_method(ax, trained[trained["method"] == method], metric, bands, styles)
        for method in flat:
            _draw_flat(ax, frame[frame["method"] == method], metric, bands)
        _style_panel(ax, family, sizes, metric)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    what = "95 % interval of the mean (see the report)" if bands else "min–max over seeds"
    fig.suptitle(title or f"{metric} vs number of labelled examples (mean over seeds)")
    fig.supxlabel(f"labelled training examples (log scale); bands: {what}", fontsize=9)
    fig.savefig(path, dpi=120)
    return Path(path)


def draw_curves(ax, frame, metric: str, bands=None) -> None:
    """Every method of `frame` in one panel (the suite's one panel per task): trained methods
    as lines, no-training ones as labelled dashed levels; log x axis at the measured sizes."""
    trained = frame[frame["n_train"] > 0]
    styles = line_styles(frame)
    for method in sorted(trained["method"].unique()):
        _draw_method(ax, trained[trained["method"] == method], metric, bands, styles)
    for method in flat_methods(frame):
        _draw_flat(ax, frame[frame["method"] == method], metric, bands)
    _style_panel(ax, "", sorted(trained["n_train"].unique()), metric)
    if ax.get_legend():  # the caller draws one legend for all its panels
        ax.get_legend().remove()


def plot_panels(frames: dict, path: Path, metric: str, title: str, bands=None) -> Path:
    """Small multiples: one panel of every method's curves (draw_curves) per titled frame of
    `frames` (per task, per model), one legend shared by all panels."""
    columns = min(COLUMNS, len(frames))
    rows = math.ceil(len(frames) / columns)
    fig = Figure(figsize=(4.2 * columns, 3.4 * rows + 1.0), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, columns, sharey=True, squeeze=False).ravel()
    for ax, (name, frame) in zip(axes, frames.items()):
        draw_curves(ax, frame, metric, bands)
        ax.set_title(name, fontsize=10)
    for ax in axes[len(frames) :]:
        ax.set_visible(False)
    unique: dict = {}  # one legend entry per method over all panels
    for ax in axes[: len(frames)]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            unique.setdefault(label, handle)
    if unique:
        fig.legend(
            unique.values(), unique.keys(), loc="outside lower center", ncols=2, fontsize=7.5
        )
    fig.suptitle(title)
    fig.savefig(path, dpi=110)
    return Path(path)


def line_styles(frame, styles=LINE_STYLES) -> dict[str, str]:
    """Per backbone of `frame`, the line style of its trained methods (from `styles`): solid for
    all when there is one; else one style per model, as a method keeps its colour on every
    model (report/colors.py)."""
    backbones = sorted(frame["backbone"].unique()) if "backbone" in frame else []
    return {b: styles[i % len(styles)] for i, b in enumerate(backbones)}


def style_of(runs, styles: dict, solid="-"):
    """The line style (line_styles) of one method's runs: their backbone's, else `solid`."""
    return styles.get(runs["backbone"].iloc[0], solid) if "backbone" in runs else solid


def _draw_method(ax, runs, metric: str, bands, styles: dict[str, str]) -> None:
    method = runs["method"].iloc[0]
    color = method_color(method)
    style = style_of(runs, styles)
    stats = runs.groupby("n_train")[metric].agg(["mean", "min", "max"])
    if bands is not None:
        stats["min"], stats["max"] = zip(*(bands[(method, n)] for n in stats.index))
    ax.plot(
        stats.index, stats["mean"], marker="o", linestyle=style, ms=4, color=color, label=method
    )
    ax.fill_between(stats.index, stats["min"], stats["max"], color=color, alpha=0.15)


def _draw_flat(ax, runs, metric: str, bands) -> None:
    """A method without training data: dashed, labelled with its name and score at the left."""
    method, score = runs["method"].iloc[0], runs[metric].mean()
    color = method_color(method)
    ax.axhline(score, linestyle="--", color=color, lw=1.2)
    ax.annotate(
        f"{method} {score:.3f}",
        (0.01, score),
        xycoords=("axes fraction", "data"),
        xytext=(0, 2),
        textcoords="offset points",
        fontsize=7.5,
        color=color,
    )
    if bands is not None:
        ax.axhspan(*bands[(method, 0)], color=color, alpha=0.08)


def _style_panel(ax, family: str, sizes: list[int], metric: str) -> None:
    """Log x axis ticked and labelled at the measured sizes only (10, 32, 100, not 10¹)."""
    if sizes:
        ax.set_xscale("log")
        ax.set_xlim(sizes[0] / 1.4, sizes[-1] * 1.4)
        ax.set_xticks(sizes, [f"{n:,}" for n in sizes], fontsize=8)
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_title(family, fontsize=10)
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    labels = ax.get_legend_handles_labels()[1]
    if labels:  # below the panel, where it hides no line; long variant names one per row
        columns = 1 if max(map(len, labels)) > 24 else 2
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncols=columns, fontsize=7.5)
