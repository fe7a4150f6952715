"""decision_map.png: the recommended method over label budget (x, log) x queries a day (y, log),
one colour per method (report.colors), the measured sizes marked on the x axis and the scenario
as a star. The cells are report.scenario.decision_grid's, the recommender's own answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, NullLocator

from promptworth.report.colors import method_color
from promptworth.report.scenario import grid_methods

NONE_COLOR = "#ffffff"  # a cell where no method meets every constraint


def edges(values: list[float]) -> np.ndarray:
    """Cell edges on a log axis: geometric midpoints, the ends half a step beyond."""
    logs = np.log10(values)
    if len(logs) == 1:
        return 10 ** np.array([logs[0] - 0.5, logs[0] + 0.5])
    middle = (logs[1:] + logs[:-1]) / 2
    first, last = 2 * logs[0] - middle[0], 2 * logs[-1] - middle[-1]
    return 10 ** np.concatenate([[first], middle, [last]])


def count_text(value: float, _=None) -> str:
    for size, suffix in ((1e6, "M"), (1e3, "k")):
        if value >= size:
            return f"{value / size:g}{suffix}"
    return f"{value:g}"


def plot_decision_map(grid: dict, path: Path) -> Path:
    methods = grid_methods(grid)
    index = {method: i for i, method in enumerate(methods)}
    codes = np.array(
        [[index[c["use"]["method"]] if c else len(methods) for c in line] for line in grid["cells"]]
    )
    colors = ListedColormap([method_color(m) for m in methods] + [NONE_COLOR])
    fig = Figure(figsize=(8, 4.8), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.pcolormesh(
        edges(grid["labels"]),
        edges(grid["volumes"]),
        codes,
        cmap=colors,
        vmin=-0.5,
        vmax=len(methods) + 0.5,
        edgecolors="white",
        linewidth=0.5,
    )
    ax.set_xscale("log")
    ax.set_yscale("log")
    sizes = grid["measured_sizes"]
    ax.set_xticks(sizes, [f"{n:,}" for n in sizes])
    ax.xaxis.set_minor_locator(NullLocator())
    for size in sizes:
        ax.axvline(size, color="black", lw=0.6, ls=":", alpha=0.6)
    ax.yaxis.set_major_formatter(FuncFormatter(count_text))
    scenario = grid["scenario"]
    ax.plot(scenario["labels"], scenario["queries_per_day"], "*", ms=16, color="white", mec="black")
    ax.set_xlabel("label budget (log scale; ticks and dotted lines: the measured sizes)")
    ax.set_ylabel("queries a day (log scale)")
    ax.set_title(
        f"Recommended method by label budget and volume ({grid['horizon_days']:g}-day total; "
        "★ this scenario)",
        fontsize=10,
    )
    handles = [Patch(color=method_color(m), label=m) for m in methods]
    if (codes == len(methods)).any():
        handles.append(Patch(facecolor=NONE_COLOR, edgecolor="grey", label="none qualifies"))
    fig.legend(handles=handles, loc="outside right upper", fontsize=8, frameon=False)
    fig.savefig(path, dpi=120)
    return Path(path)
