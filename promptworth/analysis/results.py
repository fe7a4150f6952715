"""The one-row-per-run results table, built from the store."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from promptworth.analysis.metrics import METRICS
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
    "serve_peak_rss_mb",
    "threads",
    "cpu",
]

COLUMNS = [
    "task",
    "model",
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
            "method_params": json.dumps(config.get("method_params", {}), sort_keys=True),
            "run_key": key,
        }
        for (key, config, result), label in zip(rows, labels)
    ]
    frame = pd.DataFrame.from_records(records, columns=columns_for(rows))
    return frame.sort_values(["method", "n_train", "seed"]).reset_index(drop=True)


def remeasured(result: dict) -> dict:
    """The serving figures of a run's last re-measurement, and when it was made; {} when the
    run was never re-measured (its own figures stand)."""
    measurements = result.get(SERVING_MEASUREMENTS)
    if not measurements:
        return {}
    last = measurements[-1]
    return {**{k: last[k] for k in SERVING_WINDOW}, "serving_remeasured_at": last["measured_at"]}


def columns_for(rows: list[tuple[str, dict, dict]]) -> list[str]:
    """COLUMNS, with each generation metric the runs were scored by (and the share of answers
    it could not read) after macro_f1; a store of classification runs has none of them."""
    stored = {key for _, _, result in rows for key in result}
    generation = [
        column
        for key, metric in METRICS.items()
        if metric.task_type == "generation" and key in stored
        for column in (key, f"{key}_unparsed")
    ]
    position = COLUMNS.index("macro_f1") + 1
    return [*COLUMNS[:position], *generation, *COLUMNS[position:]]


def method_labels(configs: list[dict]) -> list[str]:
    """Each run's method name, plus what tells its experiments apart when one store holds a
    method under several configs: other parameters (few-shot random and kNN, say), another task,
    model, revision, prompt, test size. Their runs are never averaged together: everything in a
    config but CURVE_FIELDS (n_train, seed) tells experiments apart. A label names every method
    parameter that differs, then the fewest other differing fields, in config order, that tell
    the variants apart. A method run under one config keeps its plain name, and so does a recipe
    that changes with the size (`recipes_by_size`). A parameter that only one side records
    (stores written before nested parameters were resolved) is named only where no recorded
    difference already tells the variants apart."""
    groups = VariantGroups(configs)
    texts: dict[str, list[str]] = {}  # per method, per variant
    for name, seen in groups.variants.items():
        if len(seen) > 1 and not groups.one_recipe_by_size(name):
            texts[name] = groups.texts(name)
    return [
        f"{c['method']}[{texts[c['method']][groups.index(c, fields)]}]"
        if c["method"] in texts
        else c["method"]
        for c, fields in zip(configs, groups.flat)
    ]


def recipes_by_size(configs: list[dict]) -> dict[str, list[tuple[list[int], str]]]:
    """Methods run under one recipe that changes with the labelled-set size (the benchmark's
    distill: a zero-shot teacher at 10 labels, a trained one from 100): per method, each
    recipe's sizes and what sets it apart. Their variants differ only in method parameters and
    never share a size, so they draw one learning curve under the plain name, and the reports
    say which parameters held at which size."""
    groups = VariantGroups(configs)
    return {
        name: sorted(zip((sorted(sizes) for sizes in groups.sizes[name]), groups.texts(name)))
        for name, seen in groups.variants.items()
        if len(seen) > 1 and groups.one_recipe_by_size(name)
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
    """The configs of a store grouped per method into variants (flattened configs without
    CURVE_FIELDS), with the sizes each variant was run at."""

    def __init__(self, configs: list[dict]):
        self.flat = [
            flatten({k: v for k, v in c.items() if k not in CURVE_FIELDS}) for c in configs
        ]
        self.variants: dict[str, list[dict]] = defaultdict(list)
        self.sizes: dict[str, list[set[int]]] = defaultdict(list)
        for config, fields in zip(configs, self.flat):
            seen = self.variants[config["method"]]
            if fields not in seen:
                seen.append(fields)
                self.sizes[config["method"]].append(set())
            self.sizes[config["method"]][self.index(config, fields)].add(config["n_train"])

    def index(self, config: dict, fields: dict) -> int:
        return self.variants[config["method"]].index(fields)

    def one_recipe_by_size(self, method: str) -> bool:
        """No two variants share a size, and only method parameters differ between them."""
        sizes = self.sizes[method]
        disjoint = sum(map(len, sizes)) == len(set().union(*sizes))
        return disjoint and all(k.startswith(PARAMS) for k in differing(self.variants[method]))

    def texts(self, method: str) -> list[str]:
        """Per variant, what tells it apart (file names shortened unless that is ambiguous)."""
        seen = self.variants[method]
        chosen = distinguishing(seen)
        texts = [variant_text(v, chosen, short=True) for v in seen]
        if len(set(texts)) < len(seen):
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
        if short and isinstance(value, str) and value.startswith("/"):
            value = Path(value).name
        name = key.removeprefix(PARAMS) if key.startswith(PARAMS) else key.rsplit(".", 1)[-1]
        parts.append(f"{name}={value}")
    return ",".join(parts)


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
