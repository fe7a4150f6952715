"""The one small interface every adaptation method implements.

Modelled on scikit-learn's estimator contract: the constructor only stores a config, `fit`
returns self, fitted state ends in `_`, `predict` before `fit` raises NotFittedError.
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar, get_args, get_type_hints

import numpy as np

from promptworth.errors import PromptworthError, quoted
from promptworth.tasks.base import Example, Split, Task

if TYPE_CHECKING:
    from promptworth.methods.training import Selection

NO_LABEL = -1  # a generated answer the verbaliser maps to no label
PREDICT_MODES = ("rank", "generate")
# The sweep's backbones a method can read: its causal LM (--model) and its encoder (--encoder).
BACKBONE_KINDS = ("causal-lm", "encoder")
# The report's panels, in this order: each method class declares one (Method.family).
FAMILIES = (
    "prompting",
    "prompt-based training",
    "parameter-efficient",
    "feature-based",
    "encoder fine-tuning",
    "semi-supervised",
)


class NotFittedError(RuntimeError):
    """predict() was called before fit()."""


class ParameterError(PromptworthError):
    """A method parameter of the wrong type or outside its allowed values.

    A Config's `__post_init__` does not know which method it configures; `Method.__init__`
    fills in `method`, so the message names METHOD.KEY as the user wrote it in --param."""

    def __init__(self, key: str, value: Any, expected: str, method: str = ""):
        super().__init__(key, value, expected)
        self.key, self.value, self.expected, self.method = key, value, expected, method

    def __str__(self) -> str:
        where = f"{self.method}.{self.key}" if self.method else self.key
        return f"method parameter {where}={quoted(self.value)}: expected {self.expected}"


def require(config: Any, key: str, ok: bool, expected: str) -> None:
    """For a Config's `__post_init__`: refuse the value of `key` unless `ok`."""
    if not ok:
        raise ParameterError(key, getattr(config, key), expected)


def one_of(config: Any, key: str, choices: tuple[str, ...] | list[str] | dict) -> None:
    require(config, key, getattr(config, key) in choices, f"one of {', '.join(choices)}")


def at_least(config: Any, minimum: float, *keys: str) -> None:
    for key in keys:
        require(config, key, getattr(config, key) >= minimum, f"at least {minimum}")


def positive(config: Any, *keys: str) -> None:
    for key in keys:
        require(config, key, getattr(config, key) > 0, "a number > 0")


NONE_WORDS = ("null", "none", "None")


def optional_type(hint: Any) -> tuple[type, bool]:
    """(T, True) for a hint `T | None`, else (hint, False)."""
    args = [a for a in get_args(hint) if a is not type(None)]
    if len(args) == 1 and len(get_args(hint)) == 2:
        return args[0], True
    return hint, False


def convert(value: Any, kind: type) -> Any:
    """`value` as the declared `kind` of a Config field (strings from --param included), so
    1 and 1.0, or "8" and 8, give one config and one run key. Raises ValueError."""
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
    elif kind is int and not isinstance(value, bool):
        if isinstance(value, str):
            value = value.strip()
            value = int(value) if value.lstrip("+-").isdigit() else float(value)
        if isinstance(value, (int, np.integer)):
            return int(value)
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            return int(value)
    elif kind is float and not isinstance(value, bool):
        number = float(value) if isinstance(value, (str, int, float, np.number)) else math.nan
        if math.isfinite(number):
            return number
    elif kind in (dict, list):
        parsed = json.loads(value) if isinstance(value, str) else value
        if isinstance(parsed, kind):
            return parsed
    elif kind is str and isinstance(value, str):
        return value
    raise ValueError(value)


TYPE_NAMES = {
    bool: "true or false (bool)",
    int: "an integer (int)",
    float: "a finite number (float)",
    dict: "a JSON object (dict)",
    list: "a JSON list (list)",
    str: "a string (str)",
}


@dataclass(frozen=True)
class PromptOptions:
    """How a prompt method shows an input to the LM and reads its answer."""

    # an index into the task's templates, or a literal template (--template "Q: {text}\nA:");
    # the sweep hands methods an index into the task with the literal added (Sweep.prompted)
    template: int | str = 0
    # wrap the prompt in the tokenizer's chat template; None: the sweep decides (on for a
    # generation task when the model has a template, an instruction-tuned model's own format)
    chat: bool | None = None
    predict: str = "rank"  # "rank" (rank classification) or "generate" (greedy, verbaliser-mapped)
    length_norm: bool = False  # mean instead of sum of label-token log-probs
    max_text_tokens: int = 128  # inputs are truncated to this many tokens before templating
    batch_size: int = 16
    # (label name, its words) for the labels whose verbaliser words replace the task's
    # (--verbalizer label=word,word); empty: the task's own
    verbalizer: tuple[tuple[str, tuple[str, ...]], ...] = ()


PROMPT_FIELDS = tuple(f.name for f in fields(PromptOptions))


@dataclass
class RunContext:
    """What a method may use besides its training split: the task, backbones, shared caches."""

    task: Task
    seed: int
    backbones: Any  # promptworth.backbones.BackboneCache
    model: str  # causal LM spec
    encoder: str  # encoder spec
    prompt: PromptOptions = field(default_factory=PromptOptions)
    features: Any = None  # promptworth.backbones.features.FeatureCache
    pool: Split | None = None  # the unlabelled remainder of the training pool (for distillation)
    progress: Any = None  # callable(str) for progress messages
    # A generation task's headline metric per row, (outputs, references) -> scores in [0, 1],
    # for methods that score their own outputs on training rows (few-shot-cot, prompt-search);
    # the run layer supplies it (runner.headline_scorer): the metrics sit above the methods.
    score_rows: Any = None

    def say(self, message: str) -> None:
        if self.progress is not None:
            self.progress(message)


@dataclass
class Prediction:
    labels: np.ndarray
    n_unmapped: int = 0  # generate mode: answers that map to no label
    prompt_tokens: int = 0  # tokens fed to the model per predicted example, summed
    cached_seconds: float = 0.0  # what work taken from a cache originally cost (see FeatureCache)
    extra: dict = field(default_factory=dict)  # method-specific measurements, JSON-serialisable
    # [n, n_labels] label scores whose softmax is the method's label distribution (log-probs or
    # logits; -inf for a label it cannot give); None where it has none (generation)
    scores: np.ndarray | None = None
    # predict time spent on measurements in `extra` rather than on the method's own labels
    # (distill's teacher on the test texts); the runner leaves it out of the eval cost
    diagnostic_seconds: float = 0.0
    # a generation task's answers, one text per row, scored against the references (`labels`
    # are then all UNLABELLED)
    texts: list[str] | None = None
    # a generation task's answers took this many model.generate calls and generated tokens,
    # summed over the rows (several per row for multi-step techniques)
    calls: int = 0
    generated_tokens: int = 0


@dataclass
class TrainingCost:
    """What fitting cost, filled by the method; wall time and memory are measured by the runner."""

    trainable_params: int = 0
    total_params: int = 0
    train_examples: int = 0  # examples processed, counting repeats over epochs
    train_tokens: int = 0  # non-padding tokens processed in training
    train_steps: int = 0
    artifact_bytes: int = 0  # bytes of what training produced: model, adapter or head
    cached_seconds: float = 0.0  # what work taken from a cache originally cost (see FeatureCache)


@dataclass
class SavedState:
    """A fitted method's state as an artifact keeps it (promptworth/run/artifact.py): named
    arrays, written as safetensors, and JSON-able metadata. Nothing in it needs code to load:
    restoring rebuilds the method's objects from its Config and fills them with these values."""

    tensors: dict[str, Any] = field(default_factory=dict)  # name -> torch tensor or numpy array
    meta: dict[str, Any] = field(default_factory=dict)  # JSON: prompts, choices, adapter config
    # the backbones restore loads, {"causal-lm": spec, "encoder": spec}: their revisions and
    # tokenizers go into the artifact with the state
    backbones: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RestoredSelection:
    """A saved fit's training-rule outcome as its run recorded it (Selection.extra)."""

    recorded: dict[str, Any]

    def extra(self) -> dict[str, Any]:
        return dict(self.recorded)


class Method(ABC):
    """An adaptation method: set `name` and `Config`; implement fit and predict. A registered
    method's `summary` is its registry line (methods/registry.py), read here."""

    name: ClassVar[str]
    summary: ClassVar[str] = ""
    family: ClassVar[str]  # one of FAMILIES: the report's panel and filter group
    trains: ClassVar[bool] = True  # False: the method uses no labelled examples (zero-shot)
    # The task types (tasks.base.TASK_TYPES) the method can learn; the sweep refuses the others
    # before any model loads.
    task_types: ClassVar[tuple[str, ...]] = ("classification",)
    # False: labelled examples are used without changing any weight (in-context, prompt search)
    updates_weights: ClassVar[bool] = True
    # True: labelled examples are shown in the prompt, as chat turns under a chat template
    # (store/config.py keys those runs apart from runs that pasted them into one message)
    shows_demonstrations: ClassVar[bool] = False
    # Parameters that make the method fast on the tiny test backbones; the shared conformance
    # suite (tests/test_methods_contract.py) runs every registered method with them.
    test_params: ClassVar[dict[str, Any]] = {}
    # The same for a generation task, where they differ (None: test_params)
    generation_test_params: ClassVar[dict[str, Any] | None] = None
    # The PromptOptions fields the method reads; only they enter its run key (the sweep resets
    # the others to their defaults), so --template never splits the runs of a method that shows
    # no template. All by default: a method that forgets to say is keyed too finely, never wrongly.
    prompt_fields: ClassVar[tuple[str, ...]] = PROMPT_FIELDS
    # Parameters that name a backbone (alias, directory or hub id; "" = the sweep's): the sweep
    # spells them canonically and keys their revisions, as it does for --model and --encoder.
    backbone_params: ClassVar[tuple[str, ...]] = ()
    # The sweep's backbones the method reads (see reads_backbones). Both by default: a method
    # that forgets to say runs once per (model, encoder) pair, too often but never wrongly.
    backbones_read: ClassVar[tuple[str, ...]] = BACKBONE_KINDS
    # What the shared training rule returned (methods/training.py `fit_selected`), set by the
    # fit of a method that uses it; see `selection`.
    selection_: Selection | None = None

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        from promptworth.methods.registry import REGISTRY

        if cls.__dict__.get("name") in REGISTRY:
            cls.summary = REGISTRY[cls.name][1]

    @dataclass(frozen=True)
    class Config:
        pass

    def __init__(self, **params: Any):
        known = {f.name for f in fields(self.Config)}
        unknown = sorted(set(params) - known)
        if unknown:
            raise PromptworthError(
                f"method {quoted(self.name)} has no parameter {', '.join(unknown)}; "
                f"its parameters are: {', '.join(sorted(known)) or '(none)'}"
            )
        try:
            self.config = self.Config(**self.converted(params))
        except ParameterError as error:
            error.method = error.method or self.name  # a nested method's error keeps its name
            raise

    @classmethod
    def converted(cls, params: dict[str, Any]) -> dict[str, Any]:
        """Each value as its field's declared type (see `convert`); a field declared `T | None`
        (None = "choose for me", e.g. a cross-validated C) also takes null/none."""
        types, result = get_type_hints(cls.Config), {}
        for key, value in params.items():
            kind, optional = optional_type(types[key])
            try:
                none = value is None or (isinstance(value, str) and value.strip() in NONE_WORDS)
                result[key] = None if optional and none else convert(value, kind)
            except (ValueError, TypeError):
                expected = TYPE_NAMES[kind] + (" or null" if optional else "")
                raise ParameterError(key, value, expected, cls.name) from None
        return result

    @classmethod
    def unavailable(cls, device: str) -> str | None:
        """Why this method cannot run on `device` (e.g. 4-bit weights need CUDA), else None."""
        return None

    @classmethod
    def reads_prompt(cls, params: dict[str, Any]) -> tuple[str, ...]:
        """The PromptOptions fields a run with `params` reads (distill: its teacher's)."""
        return cls.prompt_fields

    @classmethod
    def planned_params(cls, params: dict[str, Any], task: Task) -> dict[str, Any]:
        """`params` as the sweep plans and keys a run on `task`: what the method reads of the
        task beyond its fingerprint made explicit (the chain method's steps)."""
        return params

    @classmethod
    def reads_backbones(cls, params: dict[str, Any]) -> tuple[str, ...]:
        """Which of the sweep's backbones (BACKBONE_KINDS) a run with `params` reads: a sweep
        over several models or encoders runs the method once per backbone it reads, not once per
        (model, encoder) pair, and the report draws its runs under that backbone."""
        return cls.backbones_read

    @classmethod
    def with_backbones(
        cls, params: dict[str, Any], canonical: Callable[[str], str]
    ) -> tuple[dict[str, Any], list[str]]:
        """`params` with the backbones they name spelt by `canonical`, and those backbones."""
        params, named = dict(params), []
        for name in cls.backbone_params:
            if params.get(name):
                params[name] = canonical(params[name])
                named.append(params[name])
        return params, named

    def get_params(self) -> dict[str, Any]:
        return asdict(self.config)

    def backbone_specs(self) -> dict[str, str]:
        """Backbones this configuration names itself, as {"METHOD.KEY": spec}, so the sweep
        checks them with --model and --encoder before any model loads."""
        return {}

    def task_problem(self, task: Task) -> str | None:
        """Why this configuration cannot learn `task`, else None; the sweep asks before any
        model loads, and fit refuses it too."""
        if task.type not in self.task_types:
            return (
                f"it learns {' and '.join(self.task_types)} tasks; task {task.name!r} is a "
                f"{task.type} task"
            )
        return None

    def incompatible(self, prompt: PromptOptions) -> str | None:
        """Why this configuration cannot use these prompt options, else None; the sweep asks
        before any model loads."""
        return None

    @abstractmethod
    def fit(self, train: Split, context: RunContext) -> Method:
        """Learn from `train`; return self."""

    @abstractmethod
    def predict(self, texts: list[Example]) -> Prediction:
        """Labels for `texts`, using only what fit() stored."""

    @classmethod
    def unsaveable(cls, params: dict[str, Any]) -> str | None:
        """Why a fit with `params` cannot be saved as an artifact, else None; `fit` asks before
        any model loads. A method that implements `state` and `restore` says None."""
        return "its trained state has no saved form yet"

    def state(self) -> SavedState:
        """What `restore` needs to predict as this fitted method does."""
        raise NotImplementedError(f"{self.name}: {self.unsaveable(self.get_params())}")

    def restore(self, state: SavedState, context: RunContext) -> Method:
        """This (unfitted) method made to predict as the one `state` came from, from `state`
        and the backbones `context` loads; returns self."""
        raise NotImplementedError(f"{self.name}: {self.unsaveable(self.get_params())}")

    def saved(
        self, tensors: dict[str, Any] | None = None, backbones: dict[str, str] | None = None, **meta
    ) -> SavedState:
        """A SavedState holding also the fit's cost and selection, which `restored` puts back."""
        recorded = {"cost": asdict(self.training_cost()), "selection": self.selection(), **meta}
        return SavedState(tensors or {}, recorded, backbones or {})

    def restored(self, state: SavedState) -> None:
        """The fitted markers every restore sets: the fit's cost and selection."""
        self.cost_ = TrainingCost(**state.meta["cost"])
        if state.meta["selection"]:
            self.selection_ = RestoredSelection(state.meta["selection"])  # type: ignore[assignment]

    def training_cost(self) -> TrainingCost:
        self.check_fitted()
        return self.cost_

    def selection(self) -> dict[str, Any]:
        """How fit chose the weights it kept (`Selection.extra`: rule, selected step, the start's
        and the best trained candidate's held-out accuracy), {} where nothing is selected. Each
        run's extra holds it; pet and distill record their inner models' with it."""
        return {} if self.selection_ is None else self.selection_.extra()

    def for_serving(self) -> Method:
        """What serves its predictions once fitted, as its saved artifact restores it: itself,
        unless it keeps models only the sweep's diagnostics read (ServesStudent). The serving
        window times and weighs this, not the models a deployment would not hold."""
        return self

    def check_fitted(self) -> None:
        if not hasattr(self, "cost_"):
            raise NotFittedError(f"{self.name}: call fit() before predict()")


def count_params(module) -> tuple[int, int]:
    """(trainable, total) parameter counts of a torch module."""
    params = list(module.parameters())
    return (sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params))


def tensor_bytes(tensors) -> int:
    return int(sum(t.numel() * t.element_size() for t in tensors))
