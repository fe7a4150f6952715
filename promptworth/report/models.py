"""The model axis of a report whose runs read several backbones (a sweep over --models or
--encoders): what each model costs, the best method per model and size, the learning curves as
small multiples by model, and the cross-model question in Le Scao & Rush's form: how many
labelled examples the larger model's prompt is worth over the smaller model's best fine-tune.

Every table elsewhere already keeps the models apart: each results label names its backbone
(analysis.results.method_labels), so no mean, interval, paired test or advantage pools two
models; this section puts the labels back side by side by model
(docs/concepts/reading-the-report.md#models)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from promptworth.analysis.results import backbone_names
from promptworth.backbones.device import DTYPE_BYTES
from promptworth.methods import REGISTRY, method_class
from promptworth.report.families import base_name
from promptworth.report.le_scao_rush import score_at
from promptworth.report.markdown import markdown_table
from promptworth.report.plots import plot_panels

FIGURE = "learning_curves_by_model.png"
# Forward FLOPs per token of a dense transformer: 2 per parameter (a multiply and an add per
# weight; Kaplan et al. 2020), attention over the context left out. Training costs about 3x.
FLOPS_PER_PARAMETER = 2


@dataclass(frozen=True)
class ModelCost:
    """What serving one backbone costs in one dtype, read from its runs: the fewest parameters
    any of its runs served with (zero-shot's are the backbone's own), the lowest serving memory
    measured."""

    backbone: str
    dtype: str
    parameters: float
    memory_mb: float

    @property
    def flops_per_token(self) -> float:
        return FLOPS_PER_PARAMETER * self.parameters

    @property
    def weights_mb(self) -> float:
        return self.parameters * DTYPE_BYTES.get(self.dtype, math.nan) / 1e6


@dataclass
class ModelAxis:
    """report.md's "Models" section (`lines`) and its figure."""

    lines: list[str]
    figure: Path


def model_costs(frame) -> list[ModelCost]:
    """One ModelCost per (backbone, dtype), smallest first."""
    memory = frame["serve_peak_rss_mb"].fillna(frame["peak_rss_mb"])
    costs = [
        ModelCost(
            backbone, dtype, float(runs["total_params"].min()), float(memory[runs.index].min())
        )
        for (backbone, dtype), runs in frame.groupby(["backbone", "dtype"])
    ]
    return sorted(costs, key=lambda c: (c.parameters, c.backbone))


def model_axis(frame, pairs: list[dict], metric: str, out: Path, bands=None) -> ModelAxis | None:
    """The model section and figure; None when the runs read one backbone."""
    if frame["backbone"].nunique() < 2:
        return None
    costs = model_costs(frame)
    names = backbone_names(frame["backbone"])
    order = list(dict.fromkeys(c.backbone for c in costs))
    frames = {names[b]: frame[frame["backbone"] == b] for b in order}
    title = f"{metric} vs labelled examples, per model (mean over seeds)"
    figure = plot_panels(frames, out / FIGURE, metric, title, bands)
    lines = [
        "## Models",
        "",
        "Each method ran on each model it reads; no number pools two models. Serving costs "
        f"per model and dtype (forward FLOPs per token ≈ {FLOPS_PER_PARAMETER} × parameters; "
        "weights = parameters × bytes per weight; memory: the lowest serving peak among its "
        "runs):",
        "",
        *cost_lines(costs, names),
        "",
        f"Best mean {metric} per model and size:",
        "",
        markdown_table(best_by_model(frame, metric, names, order)),
        "",
        *cross_model_lines(frame, pairs, metric, costs, names),
        f"![learning curves per model]({FIGURE})",
        "",
    ]
    return ModelAxis(lines, figure)


def cost_lines(costs: list[ModelCost], names: dict[str, str]) -> list[str]:
    lines = [
        "| model | dtype | parameters | GFLOPs per token | weights | memory to serve |",
        "|---|---|---|---|---|---|",
    ]
    for c in costs:
        lines.append(
            f"| {names[c.backbone]} | {c.dtype} | {c.parameters / 1e6:,.2f} M | "
            f"{c.flops_per_token / 1e9:,.3g} | {c.weights_mb:,.2f} MB | {c.memory_mb:,.0f} MB |"
        )
    return lines


def best_by_model(frame, metric: str, names: dict[str, str], order: list[str]):
    """Rows: models (smallest first); columns: sizes; cell: the method with the best mean
    `metric` on that model at that size, and the mean."""
    import pandas as pd

    means = frame.groupby(["backbone", "n_train", "method"])[metric].mean()
    cells: dict[str, dict[int, str]] = {}
    for (backbone, n_train), group in means.groupby(level=[0, 1]):
        method = group.idxmax()[2]
        cells.setdefault(names[backbone], {})[int(n_train)] = f"{method} {group.max():.3f}"
    table = pd.DataFrame.from_dict(cells, orient="index").reindex([names[b] for b in order])
    table = table[sorted(table.columns)].fillna("")
    table.index.name = "model"
    return table


def is_prompt(label: str) -> bool:
    """A method that changes no weight: zero-shot, few-shot, prompt search."""
    cls = method_class(base_name(label))
    return not cls.trains or not cls.updates_weights


def is_fine_tune(label: str) -> bool:
    """A method that trains weights on the labelled examples (a head, adapters, all layers)."""
    cls = method_class(base_name(label))
    return cls.trains and cls.updates_weights


def best_of(frame, backbone: str, metric: str, kind) -> str | None:
    """The registered method of `kind` with the best mean at its largest size on `backbone`."""
    labels = [
        label
        for label in frame[frame["backbone"] == backbone]["method"].unique()
        if base_name(label) in REGISTRY and kind(label)
    ]
    return max(labels, key=lambda m: (score_at(frame, m, metric, None), m), default=None)


def cross_model_lines(
    frame, pairs: list[dict], metric: str, costs: list[ModelCost], names: dict[str, str]
) -> list[str]:
    """For every smaller and larger causal LM: what the larger one's best prompt is worth, in
    labelled examples, over the smaller one's best fine-tune (the advantage matrix's cell)."""
    causal = frame[frame["backbone"] == frame["model"]]["backbone"].unique()
    ordered = list(dict.fromkeys(c.backbone for c in costs if c.backbone in causal))
    cells = {(p["method"], p["baseline"]): p for p in pairs}
    lines = []
    for i, small in enumerate(ordered):
        for large in ordered[i + 1 :]:
            prompt = best_of(frame, large, metric, is_prompt)
            tuned = best_of(frame, small, metric, is_fine_tune)
            if prompt is None or tuned is None:
                continue
            question = (
                f"How many labelled examples is {names[large]}'s prompt worth over "
                f"{names[small]}'s best fine-tune? "
            )
            lines += [question + worth_text(cells.get((prompt, tuned)), prompt, tuned), ""]
    return lines


def worth_text(cell: dict | None, prompt: str, tuned: str) -> str:
    """The answer from the advantage matrix's cell (positive: the prompt needs fewer labels)."""
    if cell is None or cell["error"]:
        reason = cell["error"] if cell else "the pair is not in the advantage matrix"
        return f"No estimate for {prompt} over {tuned}: {reason}."
    spread = f" ± {cell['std']:.0f}" if cell["std"] is not None else ""
    low, high = cell["window"]
    return (
        f"{prompt} is worth {cell['advantage']:.0f}{spread} labelled examples over {tuned} "
        f"(the advantage table's estimator, over scores {low:.3g}–{high:.3g}; negative: "
        f"{tuned} needs fewer)."
    )
