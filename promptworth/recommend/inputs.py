"""What the user tells the recommender: each input declared once, with its default, its meaning
and, for prices, the default's source; `--help` and the JSON read them from here."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace

from promptworth.errors import PromptworthError, quoted


def scenario_input(
    default, meaning: str, source: str | None = None, unit: str = "", choices: tuple = ()
):
    """One input of the scenario, declared once: its default, what it means (for `--help`),
    for a price where the default comes from (in the JSON of a defaulted input), and for a
    choice its allowed values."""
    return field(
        default=default,
        metadata={"meaning": meaning, "source": source, "unit": unit, "choices": choices},
    )


LIST_PRICE = "list price as of 2024, no discounts"
SERVING_MODES = ("always-on", "per-second")
# A cheaper method must save at least this against a more accurate one to be preferred
# (--min-saving when not given): a share of the more accurate method's total, or a floor.
MIN_SAVING_SHARE = 0.05
MIN_SAVING_FLOOR = 10.0


def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


@dataclass(frozen=True)
class Inputs:
    """The scenario. `given` names the fields the user set (from_given); a field is reported as
    defaulted when it was not given and holds its default. Prices are list prices the user
    should override with their own."""

    labels: int = scenario_input(100, "labelled examples available; all are used and paid for")
    target: float | None = scenario_input(
        None,
        "score needed in --metric, 0-1, met when the 95 % interval's lower bound reaches it; "
        "without it, the best within noise",
    )
    queries_per_day: float = scenario_input(10_000, "queries served a day")
    horizon_days: float = scenario_input(365, "days of serving the total cost covers")
    latency_ms: float | None = scenario_input(
        None, "latency budget per request at batch size 1, ms (its p95)"
    )
    memory_mb: float | None = scenario_input(None, "memory budget of the serving process, MB")
    serving: str = scenario_input(
        "always-on",
        "how serving is billed: always-on = whole instances running all day, enough for the "
        "volume at the measured throughput and --utilisation (at least one), billed by the "
        "hour; per-second = only the busy seconds of a fully used machine (a lower bound)",
        choices=SERVING_MODES,
    )
    utilisation: float = scenario_input(
        0.5,
        "share of each always-on instance's time spent serving, 0-1 (headroom for peaks)",
    )
    min_saving: float | None = scenario_input(
        None,
        "saving over --horizon-days below which two tied methods count as costing the same "
        "and the more accurate one is chosen; default: "
        f"{MIN_SAVING_SHARE * 100:g} % of the more accurate method's total or "
        f"${MIN_SAVING_FLOOR:g}, whichever is larger",
        unit="$",
    )
    cpu_price: float = scenario_input(
        0.08925,
        "per hour of one CPU instance: training time and serving instances",
        f"AWS EC2 c7i.large (2 vCPU, 4 GiB), on-demand Linux, us-east-1, {LIST_PRICE}",
        unit="$",
    )
    gpu_price: float = scenario_input(
        1.006,
        "per hour of one GPU instance: training time and serving instances",
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
        if self.serving not in SERVING_MODES:
            raise PromptworthError(
                f"--serving {self.serving!r}: must be one of {', '.join(SERVING_MODES)}"
            )
        self._check("utilisation", self.utilisation, upper=1.0, positive=True)
        self._check("min_saving", self.min_saving, optional=True)
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

    def materiality(self, total: float) -> float:
        """The smallest saving that makes a cheaper method worth preferring to a more accurate
        one whose total cost is `total`: --min-saving, or the declared share-or-floor rule."""
        if self.min_saving is not None:
            return self.min_saving
        return max(MIN_SAVING_SHARE * total, MIN_SAVING_FLOOR)

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
    meaning = f"{unit} {declared.metadata['meaning']}" if unit else declared.metadata["meaning"]
    if default is None and "default:" in meaning:  # the meaning states a rule for its default
        return meaning.replace("%", "%%")
    if default is None:
        shown = "none"
    elif isinstance(default, str):
        shown = default
    else:
        shown = f"{unit}{default:,}"
    return f"{meaning} (default: {shown})".replace("%", "%%")  # argparse formats help with %
