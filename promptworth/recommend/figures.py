"""The break-even and Pareto figures (matplotlib's object API on the Agg canvas)."""

from __future__ import annotations

from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from promptworth.analysis.metrics import metric_text


def count_text(value: float, _=None) -> str:
    """1,000 as "1k", 1,000,000 as "1M": tick labels people read at a glance."""
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= size:
            return f"{value / size:g}{suffix}"
    return f"{value:g}"


def plot_break_even(
    document: dict, queries_per_day: float, path: Path, colors: dict[str, str] | None = None
) -> Path:
    """Total cost over the horizon against queries a day, one line per method (in `colors`,
    the report's colour of each method, when given), crossings marked and the scenario's volume
    as a vertical line."""
    fig = Figure(figsize=(8, 4.8))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    volumes = document["volumes_per_day"]
    for method, totals in document["curves"].items():
        ax.plot(volumes, totals, label=method, color=(colors or {}).get(method))
    shown = set(document["curves"])
    for c in document["crossings"]:
        if {c["a"], c["b"]} <= shown and volumes[0] <= c["queries_per_day"] <= volumes[-1]:
            ax.axvline(c["queries_per_day"], color="gray", alpha=0.25, linewidth=0.8)
    ax.axvline(queries_per_day, color="black", linestyle="--", label="this scenario")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(count_text))
    ax.set_xlabel("queries a day")
    ax.set_ylabel(f"total cost over {document['horizon_days']:g} days ($)")
    ax.set_title("Total cost of ownership: labelling + training + serving (grey: crossings)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path


def plot_pareto(
    document: dict, metric: str, path: Path, colors: dict[str, str] | None = None
) -> Path:
    """`metric` against serving cost and against labels; non-dominated points filled and named,
    each point in its method's colour when `colors` gives one."""
    fig = Figure(figsize=(11, 4.8))
    FigureCanvasAgg(fig)
    points = document["points"]
    for ax, axis, flag, label in (
        (
            fig.add_subplot(1, 2, 1),
            "serving_cost_per_million",
            "dominated_cost",
            "$ per million queries at full use",
        ),
        (fig.add_subplot(1, 2, 2), "labels", "dominated_labels", "labelled examples"),
    ):
        for dominated in (True, False):
            chosen = [p for p in points if p[flag] is dominated]
            shade = [(colors or {}).get(p["method"], "tab:blue") for p in chosen]
            ax.scatter(
                [p[axis] for p in chosen],
                [p[metric] for p in chosen],
                facecolors="none" if dominated else shade,
                edgecolors=shade if colors else "gray" if dominated else "tab:blue",
                label="dominated" if dominated else "non-dominated",
            )
        for p in points:
            if not p[flag]:
                name = p["method"] if axis != "labels" else f"{p['method']} ({p['labels']:,})"
                ax.annotate(
                    name,
                    (p[axis], p[metric]),
                    fontsize=7,
                    xytext=(3, 3),
                    textcoords="offset points",
                )
        if axis == "labels":
            ax.set_xscale("symlog", linthresh=10)
        else:
            ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(count_text))
        ax.set_xlabel(label + " (log scale)")
        ax.set_ylabel(f"{metric_text(metric)} (mean over seeds)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    fig.suptitle("Pareto view: what no other measured point beats on both axes")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path
