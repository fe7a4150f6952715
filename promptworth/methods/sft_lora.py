"""Supervised fine-tuning on a generation task's reference answers: sft-lora trains LoRA
adapters (here), sft-ft every weight (sft_ft.py), sft-ia3 IA3 vectors (sft_ia3.py).

Each training row is the task's prompt followed by its first reference and the end-of-text
token; the loss is the cross-entropy of those answer tokens only (the prompt's positions are
masked, as in prompt-lora's label-only loss), the answer cut at the task's max_new_tokens.
Training follows the shared rule (training.py: warm-up then linear decay, dev selection or
k-fold below a dev split's size), scoring held-out rows by how well the model predicts their
reference tokens under teacher forcing (token accuracy, then cross-entropy). The untrained
start - the frozen LM reading the task's prompt, which is zero-shot - is a candidate, kept when
training does not score better; it is then served as the backbone itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from promptworth.methods.base import (
    Method,
    Prediction,
    RunContext,
    at_least,
    require,
)
from promptworth.methods.batching import right_padded
from promptworth.methods.generation import answer_prediction, serving_copy
from promptworth.methods.prompt_lora import PromptLoRA, lora_on_copy
from promptworth.methods.prompt_training import (
    Sequences,
    label_only_loss,
    packs,
    select_from_start,
    trained_cost,
)
from promptworth.methods.prompting import PromptFormat
from promptworth.methods.training import (
    DevScore,
    Learner,
    RecipeConfig,
    Schedule,
)
from promptworth.methods.zs_cot import GENERATION_PROMPT_FIELDS
from promptworth.tasks.base import Example, Split

IGNORE = -100  # the target of a position the loss skips (transformers' ignore index)


def answer_sequences(fmt: PromptFormat, split: Split) -> Sequences:
    """prompt + first reference + end of text per row, the answer cut at max_new_tokens."""
    inputs, n_prompt = [], []
    eos = fmt.tokenizer.eos_token_id
    for text, references in zip(split.texts, split.references):
        prompt = fmt.prompt(text)
        prompt_ids = fmt.encode_prompt(prompt)
        answer = fmt.answer_ids(prompt, references[0])[: fmt.task.max_new_tokens - 1]
        inputs.append(prompt_ids + answer + [eos])
        n_prompt.append(len(prompt_ids))
    return Sequences(inputs, n_prompt)


def reference_fit(model, tokenizer, seqs: Sequences, rows: np.ndarray, batch_size: int):
    """DevScore of the answer tokens under teacher forcing: the share the model predicts
    exactly (greedy), then their mean cross-entropy."""
    import torch

    device = next(model.parameters()).device
    right, total, loss = 0, 0, 0.0
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(rows), batch_size):
            batch = rows[start : start + batch_size]
            ids, mask = right_padded(tokenizer, [seqs.input_ids[i] for i in batch], device)
            targets = torch.full_like(ids, IGNORE)
            for row, index in enumerate(batch):
                end = len(seqs.input_ids[index])
                targets[row, seqs.n_prompt[index] : end] = ids[row, seqs.n_prompt[index] : end]
            logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
            gold = targets[:, 1:]
            scored = gold != IGNORE
            right += int((logits.argmax(-1)[scored] == gold[scored]).sum())
            total += int(scored.sum())
            loss += float(
                torch.nn.functional.cross_entropy(logits[scored], gold[scored], reduction="sum")
            )
    model.train()
    return DevScore(right / total, loss / total)


@dataclass(frozen=True)
class SFTConfig(RecipeConfig):
    max_steps: int = 300
    max_dev: int = 64  # dev rows at most (each is one teacher-forced forward pass)

    def __post_init__(self) -> None:
        super().__post_init__()
        at_least(self, 0, "max_dev")


class SupervisedFineTuning(Method):
    """Fine-tuning on a generation task's reference answers (module doc); a subclass says which
    weights train (`trainable_model`) and how the trained model serves (`served`)."""

    task_types = ("generation",)
    prompt_fields = GENERATION_PROMPT_FIELDS
    backbones_read = ("causal-lm",)
    test_params: ClassVar[dict[str, Any]] = {"max_steps": 3, "batch_size": 4}
    Config = SFTConfig

    def trainable_model(self, backbone, context: RunContext):
        """A copy of the causal LM whose trainable weights are the method's."""
        raise NotImplementedError

    def served(self, model, placement):
        """The trained model as it generates: in the serving dtype, adapters merged."""
        return serving_copy(model.merge_and_unload(), placement)

    def fit(self, train: Split, context: RunContext) -> SupervisedFineTuning:
        return self.fit_answers(train, context, gold_rows=len(train))

    def fit_answers(
        self, train: Split, context: RunContext, gold_rows: int
    ) -> SupervisedFineTuning:
        """Fit on `train`'s first references; only its first `gold_rows` rows may be held out
        (distill-gen appends a teacher's answers after the labelled rows)."""
        backbone = context.backbones.get(context.model, "causal-lm")
        self.format_ = PromptFormat(context.task, backbone.tokenizer, context.prompt)
        model = self.trainable_model(backbone, context)
        seqs = answer_sequences(self.format_, train)
        schedule = Schedule.of(self.config)
        tokenizer, packed = backbone.tokenizer, packs(model, False)
        learner = Learner(
            [p for p in model.parameters() if p.requires_grad],
            lambda rows: label_only_loss(model, tokenizer, seqs, rows, packed),
            None,
            np.asarray(train.labels),
            backbone.placement,
            dev=lambda rows: reference_fit(model, tokenizer, seqs, rows, schedule.batch_size),
            gold_rows=gold_rows,
        )
        self.selection_ = select_from_start(model, learner, len(train), schedule, self, context)
        trained = [p for p in model.parameters() if p.requires_grad]
        self.cost_ = trained_cost(model, self.selection_, trained)
        if self.selection_.step == 0:  # nothing trained is kept: the prompt itself, zero-shot
            self.model_ = backbone.model
        else:
            self.model_ = self.served(model, backbone.placement)
        return self

    def predict(self, texts: list[Example]) -> Prediction:
        self.check_fitted()
        fmt = self.format_
        prompt_ids = [fmt.encode_prompt(fmt.prompt(text)) for text in texts]
        prediction = answer_prediction(self.model_, fmt, prompt_ids)
        prediction.prompt_tokens = sum(map(len, prompt_ids))
        prediction.extra.update(self.selection())
        return prediction


class SFTLoRA(SupervisedFineTuning):
    name = "sft-lora"
    family = "parameter-efficient"
    learning_rates = PromptLoRA.learning_rates

    @dataclass(frozen=True)
    class Config(SFTConfig):
        r: int = 8
        alpha: int = 16
        dropout: float = 0.05
        target_modules: str = "default"  # PEFT's choice for the architecture, or "all-linear"
        learning_rate: float = 1e-3

        def __post_init__(self) -> None:
            super().__post_init__()
            at_least(self, 1, "r", "alpha")
            require(self, "dropout", 0 <= self.dropout < 1, "a number in [0, 1)")
            require(self, "target_modules", bool(self.target_modules.strip()), "a module name")

    def trainable_model(self, backbone, context: RunContext):
        return lora_on_copy(backbone, self.config, context.seed)
