"""What the user tells the recommender, every default in one place with its source
(docs/how-to/choose-a-method.md#the-scenario). Prices are list prices the user should override
with their own."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace

from promptworth.errors import PromptworthError

# Where each price default comes from; figures as of the date given, list prices, no discounts.
SOURCES = {
    "cpu_price": "AWS EC2 c7i.large (2 vCPU, 4 GiB), on-demand Linux, us-east-1: "
    "$0.08925 per hour, list price as of 2024",
    "gpu_price": "AWS EC2 g5.xlarge (1 NVIDIA A10G 24 GB, 4 vCPU), on-demand Linux, us-east-1: "
    "$1.006 per hour, list price as of 2024",
    "label_cost": "Amazon SageMaker Ground Truth, text classification: $0.08 per labelled "
    "object (first 50,000 a month), list price as of 2024, before the workforce's pay",
    "llm_input_price": "no default: give a hosted LLM's price to compare with it "
    "(e.g. OpenAI gpt-4o-mini: $0.15 per million input tokens, list price as of 2024)",
    "llm_output_price": "OpenAI gpt-4o-mini: $0.60 per million output tokens, "
    "list price as of 2024",
}


# What each input means, for `promptworth recommend --help` (the flag is --NAME-WITH-DASHES).
HELP = {
    "labels": "labelled examples available; all are used and paid for (default 100)",
    "target": "score needed in --metric, 0-1 (default: none: the best within noise)",
    "queries_per_day": "queries served a day (default 10,000)",
    "horizon_days": "days of serving the total cost covers (default 365)",
    "latency_ms": "latency budget per request at batch size 1, ms (p95; default: none)",
    "memory_mb": "memory budget of the serving process, MB (default: none)",
    "cpu_price": "$ per hour of the CPU machine (default 0.08925)",
    "gpu_price": "$ per hour of the GPU machine (default 1.006)",
    "label_cost": "$ per labelled example (default 0.08)",
    "llm_input_price": "$ per million input tokens of a hosted LLM to compare (default: none)",
    "llm_output_price": "$ per million output tokens of that LLM (default 0.60)",
    "llm_output_tokens": "tokens that LLM writes per answer (default 2)",
}
INTEGER_INPUTS = ("labels", "llm_output_tokens")


def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


@dataclass(frozen=True)
class Inputs:
    """The scenario. `given` names the fields the user set (from_given); a field is reported as
    defaulted when it was not given and holds its default."""

    labels: int = 100  # labelled examples available (all are used and paid for)
    target: float | None = None  # score needed, in the recommendation's metric
    queries_per_day: float = 10_000
    horizon_days: float = 365  # how long the method serves: the TCO's time span
    latency_ms: float | None = None  # budget for one request at batch size 1 (its p95)
    memory_mb: float | None = None  # budget for the serving process's resident memory
    cpu_price: float = 0.08925  # $ per hour of the CPU machine a method ran on
    gpu_price: float = 1.006  # $ per hour of the GPU machine a method ran on
    label_cost: float = 0.08  # $ per labelled example
    llm_input_price: float | None = None  # $ per million input tokens of a hosted LLM
    llm_output_price: float = 0.60  # $ per million output tokens of that LLM
    llm_output_tokens: int = 2  # tokens it writes per answer (a label word and end of text)
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
            raise PromptworthError(f"{flag_name(name)} {value!r}: must be {kind} {bound}")

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
            if f.name in SOURCES and defaulted:
                entry["source"] = SOURCES[f.name]
            out[f.name] = entry
        return out
