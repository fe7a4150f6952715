"""Serving precisions (--serve-dtype): a trained run's model measured again as it would be served
in fp32, bf16, int8 (torchao weight-only) or NF4 (bitsandbytes), on the run's own test rows.

Each variant is a copy of the fitted method whose served model (`model_`: a merged LoRA model, a
fully fine-tuned LM or encoder classifier, the zero-shot backbone) is replaced by a cast or
quantized copy; the method's own `predict` then serves it, so prompts, verbalisers and batching
are the run's. Linear layers are quantized except the output layer (`OUTPUT_LAYERS`), which stays
in the compute dtype as transformers' bitsandbytes integration keeps it.

The variants are part of the run's result (`serving_variants`, one entry per precision) and
`--serve-dtype` enters the run key (RunConfig.serve_dtypes): a run asked for variants records
more than one that was not, and the variants are paired with the very predictions they are
tested against, which separate results keyed by run and precision would have to re-identify.
Runs without --serve-dtype keep the keys they had (the field is left out of their config).

A variant that fails to build or predict, or that predicts degenerately (`degenerate`), is
recorded with `failed` and the reason; a method that serves no such model records every
precision as `not_applicable` with why. Nothing asked for is skipped silently.
(docs/concepts/serving-precision.md#what-is-measured)
"""

from __future__ import annotations

import copy
import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from promptworth.analysis.uncertainty import ScoredRun, paired_comparison
from promptworth.errors import PromptworthError, quoted
from promptworth.methods.base import Method, Prediction, RunContext
from promptworth.run import costs
from promptworth.tasks.base import Split

log = logging.getLogger("promptworth")
SERVE_DTYPES = ("fp32", "bf16", "int8", "nf4")
# the torch dtype the weights are cast to (fp32, bf16), or None: the run's own compute dtype
CAST = {"fp32": "float32", "bf16": "bfloat16", "int8": None, "nf4": None}
# what each quantized precision needs installed (pip install 'promptworth[quantize]')
LIBRARY = {"int8": "torchao", "nf4": "bitsandbytes"}
# the layer names (last part of a module's path) left unquantized: what reads out the answer
OUTPUT_LAYERS = ("lm_head", "classifier", "score")
NF4_BLOCK = 64  # weights per NF4 scale (bitsandbytes' default block size)


def checked_serve_dtypes(given: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The serving precisions asked for, in SERVE_DTYPES order (one spelling, one run key);
    refuses any other name, or one whose library is missing here, before a model loads (a
    worker elsewhere that lacks it records the precision as failed, `measure_variant`)."""
    unknown = [name for name in given if name not in SERVE_DTYPES]
    if unknown:
        raise PromptworthError(
            f"--serve-dtype {quoted(','.join(unknown))}: choose among {', '.join(SERVE_DTYPES)}"
        )
    for name in given:
        if name in LIBRARY and not library_installed(LIBRARY[name]):
            raise PromptworthError(f"--serve-dtype {name}: {missing_library(name)}")
    return tuple(name for name in SERVE_DTYPES if name in given)


def missing_library(precision: str) -> str:
    return f"{LIBRARY[precision]} is not installed: pip install 'promptworth[quantize]'"


def served_model(method: Method):
    """The torch model `method` serves from (`model_`), or None when it serves none."""
    import torch

    model = getattr(method, "model_", None)
    if not isinstance(model, torch.nn.Module):
        return None
    return model if any(isinstance(m, torch.nn.Linear) for m in model.modules()) else None


def quantizable(name: str, module) -> bool:
    import torch

    return isinstance(module, torch.nn.Linear) and name.rsplit(".", 1)[-1] not in OUTPUT_LAYERS


def torchao_int8(model, compute_dtype):
    """torchao's int8 weight-only quantization of every linear layer but the output layer;
    activations stay in `compute_dtype`."""
    from torchao.quantization import Int8WeightOnlyConfig, quantize_

    quantize_(model, Int8WeightOnlyConfig(), filter_fn=lambda module, fqn: quantizable(fqn, module))
    return model


def bitsandbytes_nf4(model, compute_dtype):
    """bitsandbytes' NF4 layers (4-bit NormalFloat, blocks of 64) in place of every linear layer
    but the output layer; they compute in `compute_dtype`. Quantized as the layers move to the
    model's device, as bitsandbytes does when transformers loads a model in 4 bits."""
    import bitsandbytes as bnb
    import torch

    device = next(model.parameters()).device
    linears = [(name, m) for name, m in model.named_modules() if quantizable(name, m)]
    for name, linear in linears:
        layer = bnb.nn.Linear4bit(
            linear.in_features,
            linear.out_features,
            bias=linear.bias is not None,
            compute_dtype=compute_dtype,
            quant_type="nf4",
            device="meta",
        )
        weight = linear.weight.detach().to("cpu", torch.float32)
        layer.weight = bnb.nn.Params4bit(weight, requires_grad=False, quant_type="nf4")
        # bitsandbytes' packed AVX512-BF16 CPU kernel reshapes the weight into blocks of
        # NF4_BLOCK inputs and 32 outputs, and fails on a layer smaller than that; such a layer
        # takes its generic kernel, which computes the same product
        packable = linear.in_features % NF4_BLOCK == 0 and linear.out_features % 32 == 0
        layer.support_avx512bf16_for_cpu &= packable
        if linear.bias is not None:
            layer.bias = torch.nn.Parameter(linear.bias.detach().clone(), requires_grad=False)
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent), child, layer.to(device))
    return model


@dataclass(frozen=True)
class RunMeasures:
    """How the runner scores and times a run, lent so each variant is measured the same way
    (this module is imported by the runner, so it does not import it back)."""

    scored: Callable[..., dict]  # runner.scored(task, test, prediction)
    latency: Callable[..., dict]  # batch-1 latency of a fitted method on texts
    charged_seconds: Callable[..., float]  # serving.charged_seconds(prediction, wall seconds)


# precision -> how a copy of the served model, in its compute dtype, becomes that precision
QUANTIZERS: dict[str, Callable] = {"int8": torchao_int8, "nf4": bitsandbytes_nf4}


def held_bytes(model) -> int:
    """Bytes of the model's state as saved (`state_dict`, each tensor once, tied ones too):
    a quantized weight counts its integer data and its scales (bitsandbytes puts them in the
    state; torchao's tensors hold them inside, `inner_tensors`)."""
    seen, total = set(), 0
    for tensor in model.state_dict().values():
        for part in inner_tensors(tensor):
            key = (part.data_ptr(), part.numel())
            if key not in seen:
                seen.add(key)
                total += part.numel() * part.element_size()
    return total


def inner_tensors(tensor) -> list:
    """The plain tensors a tensor subclass (torchao's quantized weights) is made of."""
    flatten = getattr(tensor, "__tensor_flatten__", None)
    if flatten is None:
        return [tensor]
    return [part for name in flatten()[0] for part in inner_tensors(getattr(tensor, name))]


def variant(method: Method, precision: str, run_dtype: str) -> tuple[Method, object]:
    """A copy of fitted `method` serving its model at `precision`, and that model."""
    from promptworth.backbones.device import torch_dtype

    compute = CAST[precision] or run_dtype
    model = copy.deepcopy(served_model(method)).to(torch_dtype(compute))
    if precision in QUANTIZERS:
        model = QUANTIZERS[precision](model, torch_dtype(compute))
    model.eval()
    served = copy.copy(method)
    served.__dict__.pop("serving_model_", None)  # a generating method's cast copy of model_
    served.model_ = model
    if hasattr(method, "placement_"):  # autocast (or not) at the variant's compute dtype
        served.placement_ = replace(method.placement_, dtype=compute)
    return served, model


def degenerate(prediction: Prediction, baseline: dict) -> str | None:
    """Why a variant's output is degenerate, else None: NaN or infinite label scores, every
    row given one label where the run's own predictions are not, or every answer empty where
    the run's are not."""
    scores = prediction.scores
    # -inf marks a label a method cannot give; NaN and +inf mark broken arithmetic
    if scores is not None and np.any(np.isnan(scores) | np.isposinf(scores)):
        return "degenerate output: NaN or infinite label scores"
    if prediction.texts is not None:
        empty = all(not text.strip() for text in prediction.texts)
        if empty and any(str(text).strip() for text in baseline["predictions"]):
            return "degenerate output: every answer is empty"
        return None
    labels = set(np.asarray(prediction.labels).tolist())
    if len(prediction.labels) > 1 and len(labels) == 1 and len(set(baseline["predictions"])) > 1:
        return f"degenerate output: every row predicted label {labels.pop()}"
    return None


def measure_variant(
    method: Method,
    precision: str,
    test: Split,
    context: RunContext,
    baseline: dict,
    measures: RunMeasures,
) -> dict:
    """One precision's record: score, paired test against the run's own predictions, latency,
    throughput, memory and size; `failed` with the reason when it cannot serve."""
    run_dtype = context.backbones.placement.dtype
    try:
        if precision in LIBRARY and not library_installed(LIBRARY[precision]):
            return {"failed": missing_library(precision)}
        served, model = variant(method, precision, run_dtype)
        costs.return_freed_memory()
        costs.reset_peak_rss()
        timing: dict[str, float] = {}
        with costs.stopwatch(timing, "wall"):
            prediction = served.predict(test.texts)
        reason = degenerate(prediction, baseline)
        if reason:
            return {"failed": reason}
        seconds = measures.charged_seconds(prediction, timing["wall"])
        result = {**measures.scored(context.task, test, prediction), "n_test": len(test)}
        record = {
            "compute_dtype": CAST[precision] or run_dtype,
            **paired_with_run(context.seed, result, baseline),
            **measures.latency(served, test.texts),
            "eval_examples_per_second": round(len(test) / max(seconds, 1e-9), 2),
            "serve_peak_rss_mb": round(costs.peak_rss_mb(), 1),
            "weights_bytes": held_bytes(model),
            "predictions": result["predictions"],
        }
        del served, model
        return record
    except Exception as error:  # one precision that cannot serve is a result, not a lost run
        trace = traceback.format_exc()
        log.warning("%s at %s failed to serve:\n%s", method.name, precision, trace.rstrip())
        return {"failed": f"{type(error).__name__}: {error}", "trace": trace}


def library_installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def paired_with_run(seed: int, result: dict, baseline: dict) -> dict:
    """The variant's headline score (from its scored `result`) and its paired bootstrap
    difference from the run's own on the same rows (analysis.uncertainty.paired_comparison);
    a drop whose 95 % interval lies wholly below 0 is `significant_drop`."""
    result = {**result, "test_labels": baseline["test_labels"]}
    result["test_digest"] = baseline["test_digest"]
    metric = baseline.get("headline_metric", "accuracy")
    described = {"n_train": 0, "seed": seed}
    run = ScoredRun.from_store("run", "run", described, baseline)
    served = ScoredRun.from_store("served", "served", described, result)
    paired = paired_comparison([run], [served], metric)
    return {
        "metric": metric,
        metric: result[metric],
        "difference": paired.difference,
        "difference_ci95": [paired.low, paired.high],
        "p_value": paired.p_value,
        "mcnemar_p": paired.mcnemar[0]["p_value"],
        "significant_drop": bool(paired.high < 0),
    }


def serving_variants(
    method: Method,
    test: Split,
    context: RunContext,
    baseline: dict,
    precisions: tuple[str, ...],
    measures: RunMeasures,
) -> dict[str, dict]:
    """{precision: record} for each asked precision (see `measure_variant`); a method that
    serves no torch model records each as not applicable, with why."""
    if served_model(method) is None:
        why = (
            f"{method.name} serves no transformers model of its own to cast or quantize "
            "(a classifier on cached features, or a student held elsewhere)"
        )
        return {precision: {"not_applicable": why} for precision in precisions}
    variants = {}
    for precision in precisions:
        context.say(f"serving {method.name} at {precision}")
        variants[precision] = measure_variant(method, precision, test, context, baseline, measures)
    return variants
