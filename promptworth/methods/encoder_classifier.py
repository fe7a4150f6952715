"""An encoder with a linear classification head.

Subclasses choose what trains: the head only (encoder-head) or every layer (encoder-ft). How the
head reads the encoder is `pooling`: "mean" (the default) averages the last layer's token states,
as sentence encoders such as MiniLM were trained to be read (pooled_classifier.py); "cls" is
transformers' AutoModelForSequenceClassification, whose BERT head reads the [CLS] pooler, a
state sentence-transformers training never tuned. The model is loaded from the encoder's own
files once per fit, in fp32 (master weights; autocast does the speed), so the shared frozen
encoder of the BackboneCache is never touched. The loop learns label *distributions*: gold
labels are one-hot, and distill's soft teacher labels go through the same code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from promptworth.backbones.embed import tokenize_examples
from promptworth.errors import PromptworthError
from promptworth.methods.base import (
    Method,
    Prediction,
    RunContext,
    SavedState,
    TrainingCost,
    at_least,
    count_params,
    one_of,
    require,
    tensor_bytes,
)
from promptworth.methods.batching import length_batches
from promptworth.methods.training import (
    Learner,
    RecipeConfig,
    Schedule,
    autocast_for,
    fit_selected,
    split_dev,
    tuning_grid,
)
from promptworth.tasks.base import Example, Split

EVAL_BATCH_SIZE = 32
POOLINGS = ("mean", "cls")  # what the head reads: see the module doc
HEAD_INITS = ("random", "probe")  # how the head starts: see EncoderClassifier.probe_start


@dataclass
class Targets:
    """Texts, the label distribution each should predict, and the temperature its logits are
    divided by: 1 for gold labels, distillation's T for a teacher's soft labels. `labels`: the
    gold label of each text, -1 for soft targets (never held out to choose a model)."""

    texts: list[Example]
    probs: np.ndarray  # [n, n_labels]
    temperature: np.ndarray  # [n]
    labels: np.ndarray | None = None  # [n]; None: all -1

    def __post_init__(self):
        if self.labels is None:
            self.labels = np.full(len(self.texts), -1)

    @classmethod
    def gold(cls, split: Split, n_labels: int) -> Targets:
        labels = np.asarray(split.labels)
        return cls(list(split.texts), np.eye(n_labels)[labels], np.ones(len(split)), labels)

    def __add__(self, other: Targets) -> Targets:
        return Targets(
            self.texts + other.texts,
            np.concatenate([self.probs, other.probs]),
            np.concatenate([self.temperature, other.temperature]),
            np.concatenate([self.labels, other.labels]),
        )

    def __len__(self) -> int:
        return len(self.texts)


def soft_cross_entropy(logits, probs, temperature):
    """Mean of T^2 * cross-entropy(probs, softmax(logits / T)): plain cross-entropy for one-hot
    targets at T=1; the T^2 keeps soft-label gradients on the scale of gold ones (Hinton et al.)."""
    import torch

    log_q = torch.log_softmax(logits.float() / temperature[:, None], dim=-1)
    return (-(probs * log_q).sum(-1) * temperature**2).mean()


class Tokenized:
    """Examples tokenized once (several inputs as a pair, see backbones.embed); batches are
    padded on demand."""

    def __init__(self, tokenizer, texts: list[Example], max_tokens: int):
        self.tokenizer = tokenizer
        self.encoded = tokenize_examples(tokenizer, texts, max_tokens)

    def lengths(self) -> list[int]:
        return [len(ids) for ids in self.encoded["input_ids"]]

    def batch(self, indices: np.ndarray, device):
        rows = {key: [values[i] for i in indices] for key, values in self.encoded.items()}
        return self.tokenizer.pad(rows, return_tensors="pt").to(device)


class EncoderClassifier(Method):
    """Fine-tune an encoder's sequence-classification model; `train_all_layers` says how much."""

    train_all_layers: ClassVar[bool]
    # The learning rates `tune` tries (training.tuning_grid), with the published recipe they
    # come from beside them in each method's module.
    learning_rates: ClassVar[tuple[float, ...]]
    test_params: ClassVar[dict[str, Any]] = {"max_steps": 3, "batch_size": 4}
    prompt_fields: ClassVar[tuple[str, ...]] = ()  # raw texts in, a class out: no prompt
    backbone_params: ClassVar[tuple[str, ...]] = ("encoder",)
    backbones_read: ClassVar[tuple[str, ...]] = ("encoder",)

    @dataclass(frozen=True)
    class Config(RecipeConfig):  # each subclass sets its learning_rate
        encoder: str = ""  # "" = the sweep's --encoder; else an alias, directory or HF id
        pooling: str = "mean"  # see POOLINGS
        head_init: str = "random"  # see HEAD_INITS
        max_tokens: int = 128

        def __post_init__(self) -> None:
            super().__post_init__()
            one_of(self, "pooling", POOLINGS)
            one_of(self, "head_init", HEAD_INITS)
            require(
                self,
                "head_init",
                self.head_init != "probe" or self.pooling == "mean",
                "'random' with pooling=cls (the probe reads mean-pooled vectors)",
            )
            at_least(self, 1, "max_tokens")

    def backbone_specs(self) -> dict[str, str]:
        return {f"{self.name}.encoder": self.config.encoder} if self.config.encoder else {}

    def schedule(self) -> Schedule:
        return Schedule.of(self.config)

    def fit(self, train_split: Split, context: RunContext) -> EncoderClassifier:
        fit_idx, dev_idx = split_dev(len(train_split), self.schedule(), context.seed)
        gold = Targets.gold(train_split.subset(fit_idx), context.task.n_labels)
        return self.fit_targets(gold, train_split.subset(dev_idx), context)

    def fit_targets(self, targets: Targets, dev: Split, context: RunContext) -> EncoderClassifier:
        """Learn `targets`; choose the checkpoint on the gold-labelled `dev` split.

        A random head makes the untrained model no candidate (`keep_start=False`): without a dev
        split the budget is the rule, unless `tune` compares learning rates. A probe start is a
        classifier of its own, a candidate where a dev split can score it (it was fit on all
        the training rows, so folds of them could not).
        """
        import torch

        backbone, model = self.start_model(context)
        device = backbone.placement.device
        rows = targets + Targets.gold(dev, context.task.n_labels)  # dev rows last, never trained
        data = Tokenized(self.tokenizer_, rows.texts, self.config.max_tokens)
        probs = torch.tensor(rows.probs, dtype=torch.float32, device=device)
        temperature = torch.tensor(rows.temperature, dtype=torch.float32, device=device)
        trained_rows = np.arange(len(targets))
        self.start_ = {"head_init": self.config.head_init}
        if self.config.head_init == "probe":
            self.start_ |= self.probe_start(model, data, trained_rows, targets.probs, context)

        def step_loss(batch: np.ndarray):
            encoded = data.batch(batch, device)
            logits = model(**encoded).logits
            loss = soft_cross_entropy(logits, probs[batch], temperature[batch])
            return loss, int(encoded["attention_mask"].sum())

        def scores(batch: np.ndarray) -> np.ndarray:
            model.eval()
            out = self.logits(model, data, batch)
            self.train_mode(model)
            return out

        params = [p for p in model.parameters() if p.requires_grad]
        learner = Learner(params, step_loss, scores, rows.labels, backbone.placement)
        self.train_mode(model)
        selection = fit_selected(
            learner,
            trained_rows,
            np.arange(len(targets), len(rows)),
            tuning_grid(self.schedule(), self.learning_rates, self.config.tune),
            keep_start=self.config.head_init == "probe" and len(dev) > 0,
            seed=context.seed,
            say=context.say,
        )
        model.eval()
        trainable, total = count_params(model)
        stats = selection.stats
        self.model_, self.selection_ = model, selection
        self.cost_ = TrainingCost(
            trainable, total, stats.examples, stats.tokens, stats.steps, tensor_bytes(params)
        )
        return self

    def start_model(self, context: RunContext):
        """The encoder backbone and the untrained classifier built from its files."""
        backbone = context.backbones.get(self.config.encoder or context.encoder, "encoder")
        self.tokenizer_, self.placement_ = backbone.tokenizer, backbone.placement
        self.backbone_spec_ = backbone.spec
        source = context.backbones.source(backbone.spec)
        return backbone, self.load_model(source, context.task.n_labels, context.seed)

    @classmethod
    def unsaveable(cls, params: dict) -> str | None:
        return None

    def state(self) -> SavedState:
        """The weights that trained: the head's, or with every layer trained, all of them."""
        self.check_fitted()
        tensors = {
            name: param.detach().cpu().clone()
            for name, param in self.model_.named_parameters()
            if param.requires_grad
        }
        return self.saved(tensors, {"encoder": self.backbone_spec_}, start=self.start_)

    def restore(self, state: SavedState, context: RunContext) -> EncoderClassifier:
        _, model = self.start_model(context)
        trainable = {name for name, param in model.named_parameters() if param.requires_grad}
        if set(state.tensors) != trainable:
            raise ValueError(
                f"{self.name}: the saved weights are not this model's trainable ones "
                f"({sorted(set(state.tensors) ^ trainable)[:5]})"
            )
        model.load_state_dict(state.tensors, strict=False)
        model.eval()
        self.model_, self.start_ = model, state.meta["start"]
        self.restored(state)
        return self

    def load_model(self, source, n_labels: int, seed: int):
        """A fresh fp32 classifier from the encoder's files, pooled as `pooling` says, with the
        trainable part chosen by `train_all_layers`; the new head's init follows `seed`."""
        import torch
        from transformers import AutoModel, AutoModelForSequenceClassification

        from promptworth.backbones.loading import load_pretrained
        from promptworth.methods.pooled_classifier import MeanPooledClassifier

        torch.manual_seed(seed)
        files = {"revision": source.commit, "dtype": torch.float32}
        if self.config.pooling == "mean":
            encoder = load_pretrained(AutoModel, source.path, **files)
            model = MeanPooledClassifier(encoder, n_labels)
        else:
            model = load_pretrained(
                AutoModelForSequenceClassification, source.path, num_labels=n_labels, **files
            )
        model = model.to(self.placement_.device)
        if not self.train_all_layers:
            for param in model.base_model.parameters():
                param.requires_grad_(False)
        return model

    def probe_start(
        self, model, data: Tokenized, rows: np.ndarray, probs: np.ndarray, context: RunContext
    ) -> dict:
        """LP-FT (Kumar et al. 2022, "Fine-Tuning can Distort Pretrained Features"): the head
        starts as a logistic regression on the frozen encoder's pooled vectors of the training
        rows (their most probable labels; L2 strength chosen by cross-validation as
        features-lr's), so fine-tuning starts from a classifier instead of a random layer whose
        first gradients distort the features it is learning to read. What was chosen, for
        the run's `extra`."""
        import torch

        from promptworth.methods.features_lr import CLASSIFIERS, CV_SCORING
        from promptworth.methods.frozen_features import chosen_c

        labels = probs.argmax(axis=1)
        present = np.unique(labels)
        if len(present) < 2:
            raise PromptworthError(
                f"{self.name}: head_init=probe fits a classifier on the training subset, which "
                f"has one label only; give more examples or {self.name}.head_init=random"
            )
        model.eval()
        x = self.over_rows(model.pooled, data, rows, model.config.hidden_size)
        self.train_mode(model)

        def make(C: float):  # features-lr's logistic regression, chosen by its rule
            return CLASSIFIERS["logistic-regression"](C, context.seed)

        choice = chosen_c(make, x, labels, context.seed, CV_SCORING["logistic-regression"])
        probe = make(choice["C"]).fit(x, labels)
        weight = np.zeros((model.config.num_labels, x.shape[1]))
        bias = np.zeros(model.config.num_labels)
        if len(present) == 2:  # one row of coefficients: the second class's logit, the first's 0
            weight[present[1]], bias[present[1]] = probe.coef_[0], probe.intercept_[0]
        else:
            weight[present], bias[present] = probe.coef_, probe.intercept_
        absent = np.setdiff1d(np.arange(len(bias)), present)
        bias[absent] = bias[present].min()  # labels never seen: no evidence for them
        with torch.no_grad():
            model.classifier.weight.copy_(torch.as_tensor(weight))
            model.classifier.bias.copy_(torch.as_tensor(bias))
        return {f"probe_{key}": value for key, value in choice.items()}

    def train_mode(self, model) -> None:
        """Dropout where weights learn; a frozen encoder gives the features it gives at test."""
        model.train()
        if not self.train_all_layers:
            model.base_model.eval()

    def logits(self, model, data: Tokenized, rows: np.ndarray | None = None) -> np.ndarray:
        """[len(rows), n_labels] logits of `data`'s `rows` (all of them by default)."""
        rows = np.arange(len(data.lengths())) if rows is None else np.asarray(rows)
        return self.over_rows(lambda **e: model(**e).logits, data, rows, model.config.num_labels)

    def over_rows(self, read, data: Tokenized, rows: np.ndarray, width: int) -> np.ndarray:
        """[len(rows), width]: `read(**encoded batch)` of `data`'s `rows`, batched by length,
        without gradients and under the placement's autocast."""
        import torch

        all_lengths = data.lengths()
        out = np.zeros((len(rows), width), dtype=np.float32)
        with torch.inference_mode(), autocast_for(self.placement_):
            for batch in length_batches([all_lengths[i] for i in rows], EVAL_BATCH_SIZE):
                encoded = data.batch(rows[batch], self.placement_.device)
                out[batch] = read(**encoded).float().cpu().numpy()
        return out

    def predict(self, texts: list[Example]) -> Prediction:
        self.check_fitted()
        data = Tokenized(self.tokenizer_, texts, self.config.max_tokens)
        scores = self.logits(self.model_, data).astype(np.float64)
        return Prediction(
            scores.argmax(axis=1),
            prompt_tokens=sum(data.lengths()),
            scores=scores,
            extra=self.start_ | self.selection(),
        )
