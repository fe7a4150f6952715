"""The Le Scao & Rush view: the best prompt method, the best method with a classifier on labelled
data (no prompt), the head and zero-shot on one log axis, each as its seed means with their 95 %
intervals; the shaded region is the advantage of the better of the first two (at each score
both reach, the labels one needs beyond the other, on the seed-mean curves); the scenario's label
budget and target are marked. Drawn twice from one description: le_scao_rush.png (matplotlib)
and report.html's Plotly figure."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from promptworth.analysis import advantage as adv
from promptworth.analysis.curves import AnalysisError
from promptworth.methods import REGISTRY, method_class
from promptworth.report.advantage_plot import dense
from promptworth.report.colors import method_color
from promptworth.report.families import base_name

HEAD, ZERO_SHOT = "head", "zero-shot"


@dataclass
class Line:
    method: str
    role: str
    sizes: list[float]
    means: list[float]
    lows: list[float]
    highs: list[float]

    @property
    def flat(self) -> bool:
        return self.sizes == [0.0]

    @property
    def name(self) -> str:
        return self.method if self.role == self.method else f"{self.method} ({self.role})"

    def drawn(self) -> tuple[np.ndarray, ...]:
        """x, mean, low, high densely along each segment: straight in raw n, as the shaded
        region's estimator reads the curves, so the region meets the lines on a log axis."""
        sizes = np.array(self.sizes)
        x = dense(adv.Curve(sizes, np.array(self.means)))
        return x, *(np.interp(x, sizes, values) for values in (self.means, self.lows, self.highs))


@dataclass
class View:
    metric: str
    lines: list[Line]
    budget: int | None
    target: float | None
    region: dict | None = None  # {x, y: polygon, text}
    notes: list[str] = field(default_factory=list)


def prompt_based(label: str) -> bool | None:
    """Whether a results label's method reads a prompt; None for an unregistered one."""
    name = base_name(label)
    return bool(method_class(name).prompt_fields) if name in REGISTRY else None


def score_at(frame, method: str, metric: str, labels: int | None) -> float:
    """Mean at the largest measured size within `labels` (all sizes when no budget)."""
    runs = frame[frame["method"] == method]
    sizes = sorted(runs["n_train"].unique())
    within = [n for n in sizes if labels is None or n <= labels] or sizes[:1]
    return float(runs[runs["n_train"] == within[-1]][metric].mean())


def chosen_methods(frame, metric: str, labels: int | None) -> list[tuple[str, str]]:
    """(method, role): the best trained prompt method, the best trained method without a
    prompt, the head and zero-shot, each once and when present."""
    trained = sorted(frame[frame["n_train"] > 0]["method"].unique())
    chosen = []
    for role, wanted in (("best prompt method", True), ("best labelled method", False)):
        pool = [m for m in trained if prompt_based(m) is wanted]
        if pool:
            best = max(pool, key=lambda m: (score_at(frame, m, metric, labels), m))
            chosen.append((best, role))
    present = set(frame["method"])
    for method, role in ((HEAD, "head"), (ZERO_SHOT, "zero-shot")):
        if method in present and method not in dict(chosen):
            chosen.append((method, role))
    return chosen


def view(frame, bands, metric: str, budget: int | None, target: float | None) -> View | None:
    """The figure's content; None when there are no two methods to compare."""
    chosen = chosen_methods(frame, metric, budget)
    if len(chosen) < 2:
        return None
    lines = [line(frame, method, role, metric, bands) for method, role in chosen]
    result = View(metric, lines, budget, target)
    pair = [c for c in chosen if c[1].startswith("best")]
    if len(pair) == 2:
        result.region = region(frame, pair[0][0], pair[1][0], metric, result.notes)
    return result


def line(frame, method: str, role: str, metric: str, bands) -> Line:
    stats = frame[frame["method"] == method].groupby("n_train")[metric].agg(["mean", "min", "max"])
    sizes = [float(n) for n in stats.index]
    if bands is not None:
        lows, highs = zip(*(bands[(method, int(n))] for n in stats.index))
    else:
        lows, highs = stats["min"], stats["max"]
    return Line(method, role, sizes, list(stats["mean"]), list(lows), list(highs))


def region(frame, first: str, second: str, metric: str, notes: list[str]) -> dict | None:
    """The polygon between the two seed-mean curves over their common scores, and its size in
    labels; None (with a note) when they share no score."""
    from promptworth.analysis.curves import long_from_wide

    long = long_from_wide(frame)
    try:  # a method at a single size has no curve to compare
        runs = {m: adv.runs_for(long, m, metric) for m in (first, second)}
        scores = {m: float(np.nanmean(runs[m].scores[-1])) for m in runs}
        method, baseline = sorted(runs, key=lambda m: -scores[m])  # the better at its largest
        result = adv.estimate(long, baseline, method, metric, "seed-mean")
    except AnalysisError as error:
        notes.append(f"No shaded region: {error}")
        return None
    levels = adv.score_levels(*result.window, n_levels=60)
    nb = adv.labels_needed(adv.mean_curve(runs[baseline]), levels)
    nm = adv.labels_needed(adv.mean_curve(runs[method]), levels)
    positive = np.maximum(np.concatenate([nm, nb[::-1]]), 1.0)  # a log axis has no 0
    return {
        "x": positive.tolist(),
        "y": np.concatenate([levels, levels[::-1]]).tolist(),
        "method": method,
        "text": f"{adv.verdict(result)} on the seed means",
    }


def plot_le_scao_rush(v: View, path: Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullFormatter, NullLocator

    fig = Figure(figsize=(8, 5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    trained = sorted({n for line in v.lines for n in line.sizes if n > 0})
    for line in v.lines:
        color = method_color(line.method)
        if line.flat:
            ax.axhline(line.means[0], color=color, ls="--", lw=1.5, label=line.name)
            ax.axhspan(line.lows[0], line.highs[0], color=color, alpha=0.08)
            continue
        x, means, lows, highs = line.drawn()
        ax.plot(x, means, color=color, lw=2, label=line.name)
        ax.plot(line.sizes, line.means, "o", ms=4, color=color)
        ax.fill_between(x, lows, highs, color=color, alpha=0.08)
    if v.region:
        ax.fill(
            v.region["x"],
            v.region["y"],
            facecolor="none",
            edgecolor="black",
            hatch="///",
            lw=0,
            alpha=0.5,
            label=f"advantage: {v.region['text']}",
        )
    if v.budget:
        ax.axvline(v.budget, color="black", ls=":", lw=1.2, label=f"label budget {v.budget:,}")
    if v.target is not None:
        ax.axhline(v.target, color="black", ls="-.", lw=1, label=f"target {v.target:g}")
    ax.set_xscale("log")
    if trained:
        ax.set_xticks(trained, [f"{n:,.0f}" for n in trained])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("labelled training examples (log scale); bands: 95 % interval of the mean")
    ax.set_ylabel(v.metric)
    ax.grid(alpha=0.3)
    ax.set_title("Prompt vs labelled methods (Le Scao & Rush 2021): seed means", fontsize=10)
    fig.legend(loc="outside lower center", ncols=2, fontsize=7.5, frameon=False)
    fig.savefig(path, dpi=120)
    return Path(path)


def le_scao_rush_figure(v: View):
    """The Plotly figure; every method trace carries `meta` = its label (the method filter)."""
    import plotly.graph_objects as go

    from promptworth.report.interactive import LAYOUT

    figure = go.Figure()
    trained = sorted({n for line in v.lines for n in line.sizes if n > 0})
    left, right = (trained[0] / 1.5, trained[-1] * 1.5) if trained else (1, 10)
    for line in v.lines:
        color = method_color(line.method)
        if line.flat:
            x = [left, right]
            means, lows, highs = ([values[0]] * 2 for values in (line.means, line.lows, line.highs))
        else:
            x, means, lows, highs = (values.tolist() for values in line.drawn())
        figure.add_scatter(
            x=[*x, *x[::-1]],
            y=[*highs, *lows[::-1]],
            fill="toself",
            fillcolor=color,
            opacity=0.12,
            line=dict(width=0),
            hoverinfo="skip",
            showlegend=False,
            meta=line.method,
        )
        figure.add_scatter(
            x=x,
            y=means,
            mode="lines",
            name=line.name,
            line=dict(color=color, dash="dash" if line.flat else "solid"),
            hoverinfo="skip",
            meta=line.method,
        )
        figure.add_scatter(
            x=[left] if line.flat else line.sizes,
            y=line.means,
            mode="markers",
            marker=dict(color=color, size=7),
            showlegend=False,
            customdata=list(zip(line.lows, line.highs)),
            hovertemplate=f"<b>{line.method}</b> ({line.role}), n = %{{x:,.0f}}<br>mean "
            "%{y:.3f}, 95 % interval [%{customdata[0]:.3f}, %{customdata[1]:.3f}]<extra></extra>",
            meta=line.method,
        )
    if v.region:
        figure.add_scatter(
            x=v.region["x"],
            y=v.region["y"],
            fill="toself",
            fillcolor="rgba(0, 0, 0, 0.18)",
            line=dict(width=0),
            name="advantage",
            hovertemplate=f"{v.region['text']}<extra></extra>",
        )
    if v.budget:  # an annotation on a log axis is placed in log10 units, a shape is not
        figure.add_vline(x=v.budget, line=dict(color="black", dash="dot"))
        figure.add_annotation(
            x=float(np.log10(v.budget)),
            y=1,
            yref="paper",
            text=f"budget {v.budget:,}",
            showarrow=False,
            xanchor="left",
            yanchor="bottom",
        )
    if v.target is not None:
        figure.add_hline(
            y=v.target,
            line=dict(color="black", dash="dashdot"),
            annotation_text=f"target {v.target:g}",
        )
    figure.update_layout(
        title="Prompt vs labelled methods (Le Scao & Rush 2021): seed means, 95 % intervals",
        xaxis=dict(
            type="log",
            title="labelled training examples",
            tickvals=trained,
            ticktext=[f"{n:,.0f}" for n in trained],
        ),
        yaxis=dict(title=v.metric),
        **LAYOUT,
    )
    return figure


def write_le_scao_rush(frame, summary, recommendation: dict | None, out: Path):
    """le_scao_rush.png for the report's scenario (label budget and target from the
    recommendation's inputs, when there is one): (the view or None, report.md's lines)."""
    from promptworth.analysis.summary import interval_bands

    inputs = (recommendation or {}).get("inputs", {})
    budget = inputs.get("labels", {}).get("value")
    target = inputs.get("target", {}).get("value")
    v = view(frame, interval_bands(summary), summary.metric, budget, target)
    if v is None:
        return None, []
    path = plot_le_scao_rush(v, out / "le_scao_rush.png")
    roles = "; ".join(f"{line.role}: {line.method}" for line in v.lines)
    return v, [
        f"![le scao rush]({path.name})",
        "",
        f"The Le Scao & Rush view at your label budget ({roles}).",
        *v.notes,
        "",
    ]
