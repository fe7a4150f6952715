"""The one-row-per-run results table, built from the store."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from promptworth.analysis.metrics import JUDGE_REFERENCE_METRICS, METRICS
from promptworth.methods import REGISTRY, method_class
from promptworth.methods.base import BACKBONE_KINDS
from promptworth.store.config import CURVE_FIELDS, MEMORY_SCOPE
from promptworth.store.database import SERVING_MEASUREMENTS

# What the serving window measures (promptworth.run.serving; docs/concepts/costs.md#serving-window):
# a re-measurement of a run stores these again, and the results table reads its last one.
SERVING_WINDOW = [
    "latency_ms_p50",
    "latency_ms_p95",
    "latency_rows",
    "serving_throughput_rows",
    "serving_examples_per_second",
    "serving_ms_per_example",
    "serving_warmup_rows",
    "serving_weights_mb",
    "serving_activation_peak_mb",
    "serving_memory_mb",
    "serving_load_average",
    "serving_other_cpus",
    "serving_cpus",
]
# Columns measured about the machine and its load, not decided by the config: two runs of one
# config agree on every other column (the executors' equivalence test compares those).
MACHINE_MEASURED = [
    "train_seconds",
    "peak_rss_mb",
    "peak_gpu_mb",
    "eval_seconds",
    "eval_ms_per_example",
    "eval_examples_per_second",
    "latency_ms_p50",
    "latency_ms_p95",
    "serving_examples_per_second",
    "serving_ms_per_example",
    "serving_weights_mb",
    "serving_activation_peak_mb",
    "serving_memory_mb",
    "serving_load_average",
    "serving_other_cpus",
    "serve_peak_rss_mb",
    "threads",
    "cpu",
]

COLUMNS = [
    "task",
    "model",
    "backbone",
    "dtype",
    "method",
    "n_train",
    "seed",
    "accuracy",
    "macro_f1",
    "n_test",
    "unmapped",
    "trainable_params",
    "total_params",
    "train_examples",
    "train_tokens",
    "train_steps",
    *MACHINE_MEASURED,
    "prompt_tokens_per_example",
    "artifact_bytes",
    "device",
    "memory_scope",
    "serving_cpus",
    "serving_remeasured_at",
    "method_params",
    "run_key",
]


def results_frame(rows: list[tuple[str, dict, dict]]):
    """A pandas DataFrame with COLUMNS from the store's (key, config, result) rows."""
    import pandas as pd

    labels = method_labels([config for _, config, _ in rows])
    records = [
        {
            **config,
            **{k: v for k, v in result.items() if k != "predictions"},
            **remeasured(result),
            "method": label,
            "backbone": run_backbone(config),
            "method_params": json.dumps(config.get("method_params", {}), sort_keys=True),
            "run_key": key,
        }
        for (key, config, result), label in zip(rows, labels)
    ]
    frame = pd.DataFrame.from_records(records, columns=columns_for(rows))
    return frame.sort_values(["method", "n_train", "seed"]).reset_index(drop=True)


# A generation run's work per test row (runner.generation_costs), after its prompt tokens.
GENERATION_COSTS = ["calls_per_row", "generated_tokens_per_row"]


def batched_ms(frame):
    """Each run's batched time per example as served: its serving window's, else (runs stored
    before the window) its prediction pass's. What the recommender prices and `vs_zero_shot`
    compares."""
    window = frame.get("serving_ms_per_example")
    measured = frame["eval_ms_per_example"]
    return measured if window is None else window.fillna(measured)


# Other work taking more than this share of the CPUs in a serving window slows its timings.
BUSY_SHARE = 0.25


def window_competition(run) -> str | None:
    """What competed with a run's serving window for the CPUs, in words, when enough did to
    slow its timings; None for a quiet window or none recorded. Windows that measured other
    processes' CPU time are read by it; older ones by a load average above the CPU count (their
    only record, which also counts the run's own threads)."""
    cpus, others, load = run["serving_cpus"], run["serving_other_cpus"], run["serving_load_average"]
    if others == others and others is not None:  # not NaN
        busy = others > BUSY_SHARE * cpus
        return f"other work kept {others:,.1f} of {cpus:.0f} CPUs busy" if busy else None
    if load == load and load is not None and load > cpus:
        return f"load average {load / cpus:,.1f} per CPU"
    return None


# The direct prompt a generation technique's time per query is compared to (`vs_zero_shot`).
DIRECT_PROMPT = "zero-shot"


def remeasured(result: dict) -> dict:
    """The serving figures of a run's last re-measurement, and when it was made; {} when the
    run was never re-measured (its own figures stand)."""
    measurements = result.get(SERVING_MEASUREMENTS)
    if not measurements:
        return {}
    last = measurements[-1]
    window = {k: last.get(k) for k in SERVING_WINDOW}  # older windows lack newer fields
    return {**window, "serving_remeasured_at": last["measured_at"]}


def columns_for(rows: list[tuple[str, dict, dict]]) -> list[str]:
    """COLUMNS, with each generation metric the runs were scored by (and the share of answers
    it could not read; a model-scored metric's seconds and kappas) after macro_f1, and
    generation's costs per row after the prompt tokens; a store of classification runs has
    none of them."""
    stored = {key for _, _, result in rows for key in result}
    generation = [
        column
        for key, metric in METRICS.items()
        if metric.task_type == "generation" and key in stored
        for column in (key, f"{key}_unparsed", *model_columns(key, stored))
    ]
    position = COLUMNS.index("macro_f1") + 1
    tokens = COLUMNS.index("prompt_tokens_per_example") + 1
    costs = [column for column in GENERATION_COSTS if column in stored]
    return [
        *COLUMNS[:position],
        *generation,
        *COLUMNS[position:tokens],
        *costs,
        *COLUMNS[tokens:],
    ]


def model_columns(key: str, stored: set[str]) -> list[str]:
    """A model-scored metric's columns beyond its score: the seconds it took (apart from the
    method's eval cost) and, for the judge, its kappa with each 0/1 metric of the task."""
    if not METRICS[key].model_scored:
        return []
    kappas = [f"judge_kappa_{ref}" for ref in JUDGE_REFERENCE_METRICS if key == "judge"]
    return [f"{key}_seconds", *(column for column in kappas if column in stored)]


def run_backbone(config: dict) -> str:
    """The backbone a run's method reads, the reports' model axis: its causal LM, or its encoder
    for a method that reads no causal LM (encoder-ft, features-lr on the encoder)."""
    name, params = config["method"], config.get("method_params") or {}
    read = method_class(name).reads_backbones(params) if name in REGISTRY else BACKBONE_KINDS
    return config.get("encoder") if "causal-lm" not in read else config.get("model")


def backbone_field(config: dict) -> str:
    """The config field naming the run's backbone (run_backbone): "model" or "encoder"."""
    return "model" if run_backbone(config) == config.get("model") else "encoder"


def several_backbones(configs: list[dict]) -> bool:
    """Whether the runs read more than one backbone: every label then names its own."""
    models = {(c.get("model"), c.get("encoder")) for c in configs}
    return len(models) > 1 and len({run_backbone(c) for c in configs}) > 1


def method_labels(configs: list[dict]) -> list[str]:
    """Each run's method name, plus what tells its experiments apart when one store holds a
    method under several configs: other parameters (few-shot random and kNN, say), another task,
    model, revision, prompt, test size. Their runs are never averaged together: everything in a
    config but CURVE_FIELDS (n_train, seed) tells experiments apart. A label names every method
    parameter that differs, then the fewest other differing fields, in config order, that tell
    the variants apart. A method run under one config keeps its plain name, and so does a recipe
    that changes with the size (`recipes_by_size`); but where the runs read several backbones
    (a sweep over --models), every label names its backbone first (`zero-shot[model=m]`), so no
    table or test ever pools two models. A parameter that only one side records (stores written
    before nested parameters were resolved) is named only where no recorded difference already
    tells the variants apart."""
    groups = VariantGroups(configs, several_backbones(configs))
    texts: dict[tuple, list[str]] = {}  # per group, per variant
    for key, seen in groups.variants.items():
        recipe = groups.one_recipe_by_size(key)
        if groups.backbone_named or (len(seen) > 1 and not recipe):
            texts[key] = groups.texts(key, recipe)
    return [
        f"{c['method']}[{texts[key][groups.index(key, fields)]}]" if key in texts else c["method"]
        for c, fields, key in zip(configs, groups.flat, groups.keys)
    ]


def recipes_by_size(configs: list[dict]) -> dict[str, list[tuple[list[int], str]]]:
    """Methods run under one recipe that changes with the labelled-set size (the benchmark's
    distill: a zero-shot teacher at 10 labels, a trained one from 100): per method (its label),
    each recipe's sizes and what sets it apart. Their variants differ only in method parameters
    and never share a size, so they draw one learning curve under the plain name (with its model
    where a store holds several), and the reports say which parameters held at which size."""
    groups = VariantGroups(configs, several_backbones(configs))
    return {
        groups.name(key): sorted(
            zip((sorted(sizes) for sizes in groups.sizes[key]), groups.texts(key, backbone=False))
        )
        for key, seen in groups.variants.items()
        if len(seen) > 1 and groups.one_recipe_by_size(key)
    }


def recipe_lines(configs: list[dict]) -> list[str]:
    """The accuracy table's note on each method whose recipe changes with size."""
    return [
        f"- {method}: one curve, its recipe by size: "
        + "; ".join(
            f"{text} at {', '.join(f'{n:,}' for n in sizes)} labels" for sizes, text in recipes
        )
        + "."
        for method, recipes in recipes_by_size(configs).items()
    ]


class VariantGroups:
    """The configs of a store grouped into variants (flattened configs without CURVE_FIELDS),
    with the sizes each variant was run at: per method, or, with `backbone_named`, per method
    and backbone (run_backbone), whose labels then name the backbone first."""

    def __init__(self, configs: list[dict], backbone_named: bool = False):
        self.flat = [
            flatten({k: v for k, v in c.items() if k not in CURVE_FIELDS}) for c in configs
        ]
        self.backbone_named = backbone_named
        self.keys = [(c["method"], backbone_field(c) if backbone_named else None) for c in configs]
        self.variants: dict[tuple, list[dict]] = defaultdict(list)
        self.sizes: dict[tuple, list[set[int]]] = defaultdict(list)
        for config, fields, key in zip(configs, self.flat, self.keys):
            if backbone_named:  # one group per backbone: (method, field, its value)
                key = (*key, fields[key[1]])
            seen = self.variants[key]
            if fields not in seen:
                seen.append(fields)
                self.sizes[key].append(set())
            self.sizes[key][seen.index(fields)].add(config["n_train"])
        if backbone_named:
            self.keys = [(*key, fields[key[1]]) for key, fields in zip(self.keys, self.flat)]
        # backbones two of which share a short name: their labels spell them whole
        named = backbone_names(json.loads(key[2]) for key in self.keys if len(key) > 2)
        self.spelt_whole = {json.dumps(b) for b, name in named.items() if name != short_name(b)}

    def index(self, key: tuple, fields: dict) -> int:
        return self.variants[key].index(fields)

    def name(self, key: tuple) -> str:
        """The label of a group whose variants are one recipe by size."""
        return f"{key[0]}[{self.texts(key, recipe=True)[0]}]" if self.backbone_named else key[0]

    def one_recipe_by_size(self, key: tuple) -> bool:
        """No two variants share a size, and only method parameters differ between them."""
        sizes = self.sizes[key]
        disjoint = sum(map(len, sizes)) == len(set().union(*sizes))
        return disjoint and all(k.startswith(PARAMS) for k in differing(self.variants[key]))

    def texts(self, key: tuple, recipe: bool = False, backbone: bool = True) -> list[str]:
        """Per variant, what tells it apart (file names shortened unless that is ambiguous):
        its backbone first when `backbone` and the labels name it, then, unless the variants
        are one `recipe` by size, the fields that differ."""
        seen = self.variants[key]
        chosen = [] if recipe else distinguishing(seen)
        if self.backbone_named and backbone and key[1] not in chosen:
            chosen.insert(0, key[1])
        short = not (self.backbone_named and key[2] in self.spelt_whole)
        texts = [variant_text(v, chosen, short=short) for v in seen]
        if len(set(texts)) < len(seen) and not recipe:  # a recipe's variants share one label
            texts = [variant_text(v, chosen, short=False) for v in seen]
        return texts


def flatten(config: dict, prefix: str = "") -> dict[str, str]:
    """{"method_params.k": "4", "prompt.template": "0", "task": "ag_news", ...}, values as
    JSON text (comparable, hashable)."""
    flat = {}
    for key, value in config.items():
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = json.dumps(value, sort_keys=True, default=str)
    return flat


def distinguishing(variants: list[dict]) -> list[str]:
    """Fields that tell `variants` apart: every method parameter recorded with two different
    values, then other differing fields (method parameters first, then config order), each only
    if it separates variants not yet separated."""
    candidates = differing(variants)
    chosen = sorted(
        k
        for k in candidates
        if k.startswith(PARAMS) and len({v[k] for v in variants if k in v}) > 1
    )
    candidates.sort(key=lambda k: not k.startswith(PARAMS))  # stable: config order within each

    def groups(fields: list[str]) -> int:
        return len({tuple(v.get(k) for k in fields) for v in variants})

    for key in candidates:
        if key not in chosen and groups([*chosen, key]) > groups(chosen):
            chosen.append(key)
        if groups(chosen) == len(variants):
            break
    return chosen


def differing(variants: list[dict]) -> list[str]:
    """The fields whose values (or absence) differ between `variants`, in config order."""
    keys = dict.fromkeys(k for v in variants for k in v)
    return [k for k in keys if len({v.get(k) for v in variants}) > 1]


PARAMS = "method_params."


def variant_text(fields: dict, chosen: list[str], short: bool) -> str:
    """`k=8,teacher_params.r=4,template=1,model=tiny-lm`: method parameters by their path under
    method_params (a nested one keeps its parent's name), other fields by their last name;
    strings unquoted, absolute paths by their file name when `short`."""
    parts = []
    for key in chosen:
        value = json.loads(fields[key]) if key in fields else None
        if short and isinstance(value, str):
            value = short_name(value)
        name = key.removeprefix(PARAMS) if key.startswith(PARAMS) else key.rsplit(".", 1)[-1]
        parts.append(f"{name}={value}")
    return ",".join(parts)


def short_name(value: str) -> str:
    """An absolute path by its file name (a model directory by its folder); else `value`."""
    return Path(value).name if value.startswith("/") else value


def backbone_names(backbones) -> dict[str, str]:
    """Each backbone spec's name in the reports: short_name, or the whole spec where two
    backbones would share a short name."""
    backbones = sorted(set(backbones))
    short = [short_name(b) for b in backbones]
    return {b: s if short.count(s) == 1 else b for b, s in zip(backbones, short)}


def write_csv(frame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


def summary_table(frame, metric: str = "accuracy"):
    """Mean ± std of `metric` per method and size (the table of the report and the terminal)."""
    grouped = frame.groupby(["method", "n_train"])[metric]
    table = grouped.agg(["mean", "std", "count"]).reset_index()
    table["cell"] = [
        f"{m:.3f}" if c < 2 else f"{m:.3f} ± {s:.3f}"
        for m, s, c in zip(table["mean"], table["std"].fillna(0), table["count"])
    ]
    return table.pivot(index="method", columns="n_train", values="cell").fillna("")


def at_largest_size(frame):
    """Each method's runs at its largest size: what the cost table and the recommender read."""
    return frame[frame["n_train"] == frame.groupby("method")["n_train"].transform("max")]


def memory_alone(frame):
    """Per method (sorted): whether every run the cost table reads measured its memory with only
    its own models resident (MEMORY_SCOPE), rather than an upper bound."""
    scopes = at_largest_size(frame).groupby("method")["memory_scope"]
    return scopes.agg(lambda scope: bool((scope == MEMORY_SCOPE).all()))
