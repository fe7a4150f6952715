"""What the user tells the recommender: each input declared once, with its default, its meaning
and, for prices, the default's source; `--help` and the JSON read them from here."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace

from promptworth.errors import PromptworthError, quoted


def scenario_input(default, meaning: str, source: str | None = None, unit: str = ""):
    """One input of the scenario, declared once: its default, what it means (for `--help`) and,
    for a price, where the default comes from (in the JSON of a defaulted input)."""
    return field(default=default, metadata={"meaning": meaning, "source": source, "unit": unit})


LIST_PRICE = "list price as of 2024, no discounts"


def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


@dataclass(frozen=True)
class Inputs:
    """The scenario. `given` names the fields the user set (from_given); a field is reported as
    defaulted when it was not given and holds its default. Prices are list prices the user
    should override with their own."""

    labels: int = scenario_input(100, "labelled examples available; all are used and paid for")
    target: float | None = scenario_input(
        None, "score needed in --metric, 0-1; without it, the best within noise"
    )
    queries_per_day: float = scenario_input(10_000, "queries served a day")
    horizon_days: float = scenario_input(365, "days of serving the total cost covers")
    latency_ms: float | None = scenario_input(
        None, "latency budget per request at batch size 1, ms (its p95)"
    )
    memory_mb: float | None = scenario_input(None, "memory budget of the serving process, MB")
    cpu_price: float = scenario_input(
        0.08925,
        "per hour of the CPU machine a method runs on",
        f"AWS EC2 c7i.large (2 vCPU, 4 GiB), on-demand Linux, us-east-1, {LIST_PRICE}",
        unit="$",
    )
    gpu_price: float = scenario_input(
        1.006,
        "per hour of the GPU machine a method runs on",
        "AWS EC2 g5.xlarge (1 NVIDIA A10G 24 GB, 4 vCPU), on-demand Linux, us-east-1, "
        f"{LIST_PRICE}",
        unit="$",
    )
    label_cost: float = scenario_input(
        0.08,
        "per labelled example",
        "Amazon SageMaker Ground Truth, text classification, per labelled object (first "
        f"50,000 a month), {LIST_PRICE}, before the workforce's pay",
        unit="$",
    )
    llm_input_price: float | None = scenario_input(
        None,
        "per million input tokens of a hosted LLM to compare with",
        "no default: give a hosted LLM's price to compare with it (e.g. OpenAI gpt-4o-mini: "
        f"$0.15 per million input tokens, {LIST_PRICE})",
        unit="$",
    )
    llm_output_price: float = scenario_input(
        0.60,
        "per million output tokens of that LLM",
        f"OpenAI gpt-4o-mini, per million output tokens, {LIST_PRICE}",
        unit="$",
    )
    llm_output_tokens: int = scenario_input(
        2, "tokens that LLM writes per answer (a label word and end of text)"
    )
    given: frozenset[str] = field(default=frozenset(), compare=False)

    def __post_init__(self):
        self._check("labels", self.labels, integer=True)
        self._check("target", self.target, optional=True, upper=1.0, positive=True)
        self._check("queries_per_day", self.queries_per_day)
        self._check("horizon_days", self.horizon_days, positive=True)
        for name in ("latency_ms", "memory_mb", "llm_input_price"):
            self._check(
                name, getattr(self, name), optional=True, positive=name != "llm_input_price"
            )
        for name in ("cpu_price", "gpu_price", "label_cost", "llm_output_price"):
            self._check(name, getattr(self, name))
        self._check("llm_output_tokens", self.llm_output_tokens, integer=True)

    def _check(self, name, value, optional=False, integer=False, positive=False, upper=None):
        """Refuse a value with a one-line message naming its flag."""
        if value is None and optional:
            return
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        ok = ok and math.isfinite(value) and (value > 0 if positive else value >= 0)
        ok = ok and (not integer or float(value).is_integer())
        ok = ok and (upper is None or value <= upper)
        if not ok:
            kind = "an integer" if integer else "a number"
            bound = "> 0" if positive else ">= 0"
            bound += f" and <= {upper:g}" if upper is not None else ""
            raise PromptworthError(f"{flag_name(name)} {quoted(value)}: must be {kind} {bound}")

    @classmethod
    def from_given(cls, **values) -> Inputs:
        """Inputs with `values` set (None = not given: keep the default)."""
        values = {k: v for k, v in values.items() if v is not None}
        return cls(**values, given=frozenset(values))

    def changed(self, **values) -> Inputs:
        """The same scenario with some inputs changed (to ask what would change the answer)."""
        return replace(self, **values, given=self.given | frozenset(values))

    def to_json(self) -> dict:
        """Every input with its value, whether it was defaulted, and a price default's source."""
        out = {}
        for f in fields(self):
            if f.name == "given":
                continue
            value = getattr(self, f.name)
            defaulted = f.name not in self.given and value == f.default
            entry = {"value": value, "defaulted": defaulted}
            if f.metadata["source"] and defaulted:
                entry["source"] = f.metadata["source"]
            out[f.name] = entry
        return out


INPUTS = [f for f in fields(Inputs) if f.name != "given"]
INTEGER_INPUTS = tuple(f.name for f in INPUTS if f.type == "int")


def help_text(name: str) -> str:
    """The flag's help: its meaning and its default, read from the declaration."""
    declared = next(f for f in INPUTS if f.name == name)
    unit, default = declared.metadata["unit"], declared.default
    shown = "none" if default is None else f"{unit}{default:,}"
    meaning = f"{unit} {declared.metadata['meaning']}" if unit else declared.metadata["meaning"]
    return f"{meaning} (default: {shown})"
