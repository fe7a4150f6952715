"""The Plotly figures of report.html: learning curves by method family, break-even and Pareto.

Every trace of a method carries `meta` = its label, which the page's method filter matches.
"""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from promptworth.analysis.metrics import metric_text
from promptworth.analysis.summary import AccuracySummary, interval_bands
from promptworth.report.colors import method_color
from promptworth.report.families import family_panels, flat_methods
from promptworth.report.plots import line_styles, style_of

PLOTLY_DASHES = ("solid", "dot", "dashdot", "longdashdot")  # plots.LINE_STYLES in Plotly's names

HEIGHT = 380
LAYOUT = dict(
    template="plotly_white",
    height=HEIGHT,
    margin=dict(l=55, r=15, t=45, b=40),
    legend=dict(orientation="h", y=-0.2, font=dict(size=11)),
    hoverlabel=dict(align="left"),
)


def curve_figures(frame, accuracy: AccuracySummary) -> list[go.Figure]:
    """One figure per family panel (at most MAX_LINES methods), sharing the y range; the
    no-training methods as a dashed line in each. The score is the summary's metric (accuracy
    or macro-F1). Hover gives each point's per-seed values and its 95 % interval (or min–max
    over seeds when the store lacks test labels)."""
    metric = accuracy.metric
    bands = interval_bands(accuracy) or min_max_bands(frame, metric)
    trained = frame[frame["n_train"] > 0]
    sizes = sorted(trained["n_train"].unique())
    values = [*frame[metric], *(v for band in bands.values() for v in band)]
    y_range = [min(values) - 0.03, max(values) + 0.03]
    figures = []
    dashes = line_styles(frame, PLOTLY_DASHES)
    for family, methods in family_panels(sorted(trained["method"].unique())):
        figure = go.Figure()
        for method in methods:
            runs = frame[frame["method"] == method]
            add_method(figure, runs, accuracy, bands, style_of(runs, dashes, "solid"))
        for method in flat_methods(frame):
            add_flat(figure, frame[frame["method"] == method], accuracy, bands, sizes)
        axis = dict(title=metric_text(metric), range=y_range)
        figure.update_layout(title=family, yaxis=axis, **LAYOUT)
        figure.update_xaxes(**size_axis(sizes))
        figures.append(figure)
    return figures


def min_max_bands(frame, metric: str) -> dict[tuple[str, int], tuple[float, float]]:
    stats = frame.groupby(["method", "n_train"])[metric].agg(["min", "max"])
    return {key: (row["min"], row["max"]) for key, row in stats.iterrows()}


def size_axis(sizes: list[int]) -> dict:
    """Log axis ticked at the measured sizes, labelled 10, 100, 1,000."""
    return dict(
        type="log",
        title="labelled training examples",
        tickvals=sizes,
        ticktext=[f"{n:,}" for n in sizes],
    )


def point_text(runs, accuracy: AccuracySummary, band: tuple[float, float]) -> str:
    """Hover text of one (method, size): mean, its interval, and every seed's score."""
    method, n_train = runs["method"].iloc[0], int(runs["n_train"].iloc[0])
    interval = accuracy.intervals.get((method, n_train))
    what = "95 % interval" if interval else "min–max over seeds"
    scores = runs[accuracy.metric]
    seeds = "<br>".join(f"seed {s}: {a:.3f}" for s, a in zip(runs["seed"], scores))
    return (
        f"<b>{method}</b>, n = {n_train:,}<br>mean {metric_text(accuracy.metric)} "
        f"{scores.mean():.3f}, "
        f"{what} [{band[0]:.3f}, {band[1]:.3f}]<br>{seeds}"
    )


def add_method(
    figure: go.Figure, runs, accuracy: AccuracySummary, bands, dash: str = "solid"
) -> None:
    """The method's interval band, its mean line (`dash`: its model's, plots.line_styles;
    hover: the point's seeds and interval) and the seeds' own points."""
    method = runs["method"].iloc[0]
    color = method_color(method)
    by_size = [group for _, group in runs.groupby("n_train")]
    x = [int(g["n_train"].iloc[0]) for g in by_size]
    low, high = zip(*(bands[(method, n)] for n in x))
    common = dict(meta=method, legendgroup=method)
    figure.add_scatter(
        x=[*x, *x[::-1]],
        y=[*high, *low[::-1]],
        fill="toself",
        fillcolor=color,
        opacity=0.18,
        line=dict(width=0),
        hoverinfo="skip",
        showlegend=False,
        **common,
    )
    figure.add_scatter(
        x=x,
        y=[g[accuracy.metric].mean() for g in by_size],
        mode="lines+markers",
        name=method,
        line=dict(color=color, dash=dash),
        hovertext=[point_text(g, accuracy, bands[(method, n)]) for g, n in zip(by_size, x)],
        hovertemplate="%{hovertext}<extra></extra>",
        **common,
    )
    figure.add_scatter(
        x=runs["n_train"],
        y=runs[accuracy.metric],
        mode="markers",
        marker=dict(color=color, size=5, opacity=0.45),
        showlegend=False,
        hovertemplate=f"{method} seed %{{customdata}}: %{{y:.3f}}<extra></extra>",
        customdata=runs["seed"],
        **common,
    )


def add_flat(figure: go.Figure, runs, accuracy: AccuracySummary, bands, sizes) -> None:
    """A method without training data: a dashed horizontal line across the panel."""
    method, score = runs["method"].iloc[0], runs[accuracy.metric].mean()
    x = [sizes[0], sizes[-1]] if sizes else [1, 1]
    figure.add_scatter(
        x=x,
        y=[score, score],
        mode="lines",
        name=f"{method} (no training) {score:.3f}",
        line=dict(color=method_color(method), dash="dash"),
        hovertext=[point_text(runs, accuracy, bands[(method, 0)])] * 2,
        hovertemplate="%{hovertext}<extra></extra>",
        meta=method,
        legendgroup=method,
    )


def break_even_figure(break_even: dict) -> go.Figure:
    """Total cost over the horizon against queries per day, one line per method (both axes
    log when the costs allow), each crossing between candidates marked and labelled."""
    volumes = break_even["volumes_per_day"]
    log_cost = all(cost > 0 for costs in break_even["curves"].values() for cost in costs)
    figure = go.Figure()
    for method, costs in break_even["curves"].items():
        figure.add_scatter(
            x=volumes,
            y=costs,
            mode="lines",
            name=method,
            line=dict(color=method_color(method)),
            meta=method,
        )
    for crossing, position in labelled_crossings(break_even["crossings"]):
        volume = crossing["queries_per_day"]
        cost = cost_at(volumes, break_even["curves"][crossing["a"]], volume, log_cost)
        figure.add_scatter(
            x=[volume],
            y=[cost],
            mode="markers+text" if position else "markers",
            marker=dict(symbol="x", size=11, color="black"),
            text=[f"{crossing['a']} = {crossing['b']}<br>{volume:,.0f}/day"] if position else None,
            textposition=position,
            name=f"break-even {crossing['a']} / {crossing['b']}",
            showlegend=False,
            hovertemplate=f"{crossing['a']} and {crossing['b']} cost the same at "
            f"{volume:,.0f} queries/day<extra></extra>",
        )
    days = break_even["horizon_days"]
    figure.update_layout(
        title=f"Total cost over {days} days (labelling + training + serving)",
        xaxis=dict(type="log", title="queries per day", dtick="D2"),
        yaxis=dict(type="log", dtick="D2", title="total cost")
        if log_cost
        else dict(type="linear", title="total cost"),
        **LAYOUT,
    )
    return figure


LABEL_SPACING = 10**0.6  # volume ratio two labels on the same side of their marks need


def labelled_crossings(crossings: list[dict]) -> list[tuple[dict, str | None]]:
    """Each crossing with where its label goes: above and below alternately, and none (its mark
    and hover only) when the last label on that side is within LABEL_SPACING, so no two labels
    overlap."""
    last: dict[str, float] = {}
    placed = []
    for crossing in sorted(crossings, key=lambda c: c["queries_per_day"]):
        volume = crossing["queries_per_day"]
        free = [
            side
            for side in ("top center", "bottom center")
            if side not in last or volume / last[side] >= LABEL_SPACING
        ]
        side = min(free, key=lambda s: last.get(s, 0.0)) if free else None
        if side:
            last[side] = volume
        placed.append((crossing, side))
    return placed


def cost_at(volumes: list[float], costs: list[float], volume: float, log_cost: bool) -> float:
    """A cost curve read at `volume` as the figure draws it: straight between its points on the
    log-volume axis and the cost axis (log when `log_cost`), so a crossing's mark sits on it."""
    if log_cost:
        return float(np.exp(np.interp(math.log(volume), np.log(volumes), np.log(costs))))
    return float(np.interp(math.log(volume), np.log(volumes), costs))


def pareto_figure(pareto: dict, metric: str) -> go.Figure:
    """`metric` against serving cost and against labels: non-dominated methods as labelled
    filled stars, dominated ones as hollow circles, each in its method's colour."""
    figure = make_subplots(
        rows=1, cols=2, shared_yaxes=True, subplot_titles=("serving cost", "labels")
    )
    for column, (x_key, flag) in enumerate(
        (("serving_cost_per_million", "dominated_cost"), ("labels", "dominated_labels")), 1
    ):
        for point in pareto["points"]:
            best = not point[flag]
            figure.add_scatter(
                x=[point[x_key]],
                y=[point[metric]],
                mode="markers+text" if best else "markers",
                text=[point["method"]] if best else None,
                textposition="top center",
                marker=dict(
                    symbol="star" if best else "circle-open",
                    size=13 if best else 9,
                    color=method_color(point["method"]),
                ),
                name=point["method"],
                showlegend=False,
                meta=point["method"],
                hovertemplate=f"<b>{point['method']}</b><br>{x_key}: %{{x:,.4g}}<br>"
                f"{metric_text(metric)} %{{y:.3f}}<br>{'non-dominated' if best else 'dominated'}"
                "<extra></extra>",
                row=1,
                col=column,
            )
    figure.update_xaxes(
        type="log", dtick="D2", title_text="serving cost per million queries at full use ($)", col=1
    )
    labels = [point["labels"] for point in pareto["points"]]
    labels_axis = "log" if labels and min(labels) > 0 else "linear"  # 0 labels: zero-shot
    figure.update_xaxes(type=labels_axis, title_text="labelled examples", col=2)
    figure.update_yaxes(title_text=metric_text(metric), col=1)
    figure.update_layout(title="Pareto view (★ non-dominated)", **LAYOUT)
    return figure


def decision_map_figure(grid: dict) -> go.Figure:
    """The recommended method over label budget x queries a day (both log), one colour per
    method; hover: the answer and the runner-up with both totals. The last trace is the marker
    the page's controls move (report.js)."""
    from promptworth.report.scenario import grid_methods

    methods = grid_methods(grid)
    figure = go.Figure()
    x, y = np.log10(grid["labels"]), np.log10(grid["volumes"])
    codes = [
        [methods.index(c["use"]["method"]) if c else None for c in line] for line in grid["cells"]
    ]
    steps = max(len(methods), 1)
    scale = [
        [edge / steps, method_color(method)]
        for i, method in enumerate(methods)
        for edge in (i, i + 1)
    ]
    figure.add_heatmap(
        x=x,
        y=y,
        z=codes,
        zmin=-0.5,
        zmax=steps - 0.5,
        colorscale=scale or [[0, "#ffffff"], [1, "#ffffff"]],
        showscale=False,
        xgap=1,
        ygap=1,
        customdata=[
            [cell_text(c, labels, volume, grid) for labels, c in zip(grid["labels"], line)]
            for volume, line in zip(grid["volumes"], grid["cells"])
        ],
        hovertemplate="%{customdata}<extra></extra>",
    )
    for method in methods:  # legend entries, in the method filter too
        figure.add_scatter(
            x=[None],
            y=[None],
            mode="markers",
            name=method,
            meta=method,
            marker=dict(symbol="square", size=12, color=method_color(method)),
        )
    for size in grid["measured_sizes"]:
        figure.add_vline(x=float(np.log10(size)), line=dict(color="black", dash="dot", width=1))
    scenario = grid["scenario"]
    figure.add_scatter(
        x=[float(np.log10(scenario["labels"]))],
        y=[float(np.log10(scenario["queries_per_day"]))],
        mode="markers",
        name="your scenario",
        marker=dict(symbol="star", size=18, color="white", line=dict(color="black", width=1.5)),
        hoverinfo="skip",
    )
    figure.update_layout(
        title=f"Recommended method by label budget and volume ({grid['horizon_days']:g}-day total)",
        xaxis=dict(
            title="label budget (log scale)",
            tickvals=x.tolist(),
            ticktext=[f"{n:,}" for n in grid["labels"]],
        ),
        yaxis=dict(
            title="queries a day (log scale)",
            tickvals=y.tolist(),
            ticktext=[f"{v:,.0f}" for v in grid["volumes"]],
        ),
        **LAYOUT,
    )
    return figure


def cell_text(cell: dict | None, labels: int, volume: float, grid: dict) -> str:
    """A cell's hover: where it is, the answer and the runner-up with their totals."""
    where = f"{labels:,} labels, {volume:,.0f} queries a day"
    if cell is None:
        return f"{where}<br>no method meets every constraint"
    lines = [where]
    for title, choice in (("use", cell["use"]), ("runner-up", cell["runner_up"])):
        if choice:
            lines.append(
                f"{title}: <b>{choice['method']}</b>, {metric_text(grid['metric'])} "
                f"{choice['score']:.3f}, total ${choice['total']:,.2f}"
            )
    return "<br>".join(lines)
