"""Figure for the data-point advantage: two learning curves and the area between them.

Each method's seed means are drawn with their 95 % intervals (the statistic the report's tables
show) beside the paper's accumulated max over seeds (dashed). The shaded area is what the
seed-mean estimate averages: at each score level in the window, the horizontal gap between the
labels the baseline needs and the labels the method needs on the seed-mean curves.
Drawn with matplotlib's object API on the Agg canvas (no pyplot global state, no display needed).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from promptworth.analysis import advantage as adv
from promptworth.analysis.curves import AnalysisError
from promptworth.report.colors import method_color

Bands = dict[tuple[str, int], tuple[float, float]]


def plot_advantage(
    long_df: pd.DataFrame,
    baseline: str,
    method: str,
    metric: str,
    path: str | Path,
    bands: Bands | None = None,
) -> Path:
    """Save a PNG of both methods' seed means (error bars: `bands`, the 95 % intervals of the
    means, else min–max over seeds) and accumulated-max curves, the seed-mean advantage shaded."""
    base = adv.runs_for(long_df, baseline, metric)
    meth = adv.runs_for(long_df, method, metric)
    fig = Figure(figsize=(7.5, 4.8), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    means = {r.name: adv.mean_curve(r) for r in (base, meth)}
    curves = {r.name: adv.accumulated_max_curve(r) for r in (base, meth)}
    right = max(float(c.sizes[-1]) for c in curves.values())
    for runs in (base, meth):
        draw_runs(ax, runs, method_color(runs.name), right, bands)
    headline, detail = _shade(ax, long_df, baseline, method, metric, means)
    _style_axes(ax, curves, metric)
    fig.suptitle(headline, fontsize=12)
    ax.set_title(detail, fontsize=8.5, color="dimgray")
    fig.legend(loc="outside lower center", ncols=2, fontsize=8, frameon=False)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150)
    return path


def draw_runs(ax, runs: adv.Runs, color: str, right: float, bands: Bands | None) -> None:
    """Seed means with error bars on their monotone curve, and the accumulated-max curve dashed,
    both drawn densely (they are linear in raw n, as the estimator reads them); a method without
    training data is flat."""
    means = np.nanmean(runs.scores, axis=1)
    if runs.zero_shot:
        ax.plot([0.0, right], [means[0]] * 2, color=color, lw=2, label=f"{runs.name} (no training)")
        return
    for curve, style, label in (
        (adv.accumulated_max_curve(runs), dict(ls="--", lw=1, alpha=0.7), "accumulated max"),
        (adv.mean_curve(runs), dict(lw=2), "seed mean"),
    ):
        x = dense(curve)
        ax.plot(
            x,
            np.interp(x, curve.sizes, curve.scores),
            color=color,
            label=f"{runs.name}: {label}",
            **style,
        )
    low, high = error_bounds(runs, bands)
    ax.errorbar(
        runs.sizes,
        means,
        yerr=[means - low, high - means],
        fmt="o",
        color=color,
        ms=4,
        capsize=3,
        label=f"{runs.name}: seed means, {interval_name(bands)}",
    )


def error_bounds(runs: adv.Runs, bands: Bands | None) -> tuple[np.ndarray, np.ndarray]:
    if bands is None:
        return np.nanmin(runs.scores, axis=1), np.nanmax(runs.scores, axis=1)
    low, high = zip(*(bands[(runs.name, int(n))] for n in runs.sizes))
    return np.array(low), np.array(high)


def interval_name(bands: Bands | None) -> str:
    return "95 % interval" if bands is not None else "min–max over seeds"


def dense(curve: adv.Curve, per_segment: int = 40) -> np.ndarray:
    """Points along each segment so that straight-in-n lines look right on a log axis; a curve
    of one size is that point."""
    if len(curve.sizes) < 2:
        return np.asarray(curve.sizes, dtype=float)
    pieces = [
        np.linspace(a, b, per_segment)
        for a, b in zip(curve.sizes[:-1], curve.sizes[1:], strict=True)
    ]
    return np.concatenate(pieces)


def _shade(ax, long_df, baseline: str, method: str, metric: str, means: dict) -> tuple[str, str]:
    """Shade the seed-mean gap over the window; return the verdict and what is shaded."""
    try:
        result = adv.estimate(long_df, baseline, method, metric, "seed-mean")
    except AnalysisError as exc:
        return f"{method} vs {baseline}: no advantage measurable", textwrap.fill(str(exc), 110)
    levels = adv.score_levels(*result.window)
    nb = adv.labels_needed(means[baseline], levels)
    nm = adv.labels_needed(means[method], levels)
    ax.fill_betweenx(levels, nm, nb, where=nb >= nm, color=method_color(method), alpha=0.2, lw=0)
    ax.fill_betweenx(levels, nm, nb, where=nb < nm, color=method_color(baseline), alpha=0.2, lw=0)
    for level in result.window:
        ax.axhline(level, color="grey", ls=":", lw=1)
    spread = f" ± {result.std:.0f}" if result.std is not None else ""
    behind = f" ({baseline} needs fewer)" if result.advantage < 0 else ""
    headline = (
        f"{method} is worth ≈ {result.advantage:.0f}{spread} labelled examples over {baseline}"
        f"{behind} on the seed means"
    )
    detail = (
        f"shaded: labels saved at each {metric} level in {result.window[0]:.3g}–"
        f"{result.window[1]:.3g} on the seed-mean curves (Le Scao & Rush 2021)"
    )
    return headline, detail


def _style_axes(ax, curves: dict, metric: str) -> None:
    """Log x axis with plain counts; symlog when a curve starts at n_train = 0 (0 stays visible)."""
    sizes = np.concatenate([c.sizes for c in curves.values()])
    positive = sizes[sizes > 0]
    smallest, largest = (positive.min(), positive.max()) if positive.size else (1.0, 1.0)
    ticks = _round_ticks(float(smallest), float(largest))
    if np.any(sizes == 0):
        ax.set_xscale("symlog", linthresh=float(smallest), linscale=0.5)
        ax.set_xlim(left=0.0)
        ticks = [0.0, *ticks]
    else:
        ax.set_xscale("log")
    ax.set_xticks(ticks, labels=[f"{t:g}" for t in ticks])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("labeled training examples (n_train, log scale)")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)


def _round_ticks(smallest: float, largest: float) -> list[float]:
    """Both ends plus 1, 2, 5, 10, 20, 50, ... between them, not so close that labels collide."""
    decades = range(int(np.floor(np.log10(smallest))), int(np.floor(np.log10(largest))) + 1)
    candidates = (m * 10.0**k for k in decades for m in (1, 2, 5))
    inside = [t for t in candidates if smallest * 1.3 < t < largest / 1.3]
    return [smallest, *inside, largest]
