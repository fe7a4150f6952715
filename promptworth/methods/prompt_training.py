"""Prompt-based fine-tuning (Setup 2): the LM learns to continue the prompt with the label word.

The input is the task's template around the text; the target is the label's first verbaliser
word, tokenized in context. The loss (`loss`) is cross-entropy on the label tokens only ("ce"),
or T-Few's three losses over every label's word ("tfew", `tfew_loss`). Training follows the
shared rule (training.py), with the untrained model - the prompt the LM already reads - among
the candidates it chooses from. Subclasses decide what is trainable (all weights, a LoRA
adapter, a soft prompt, ...) by overriding `trainable_model`.
"""

from __future__ import annotations

import json
from contextlib import nullcontext
from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np

from promptworth.methods.base import (
    Method,
    Prediction,
    RunContext,
    SavedState,
    TrainingCost,
    at_least,
    count_params,
    one_of,
    tensor_bytes,
)
from promptworth.methods.batching import right_padded
from promptworth.methods.generation import serving_copy
from promptworth.methods.prompting import (
    PromptFormat,
    label_scores,
    last_positions,
    predict_with_lm,
)
from promptworth.methods.training import (
    Learner,
    RecipeConfig,
    Schedule,
    Selection,
    autocast_for,
    fit_selected,
    split_dev,
    tuning_grid,
)
from promptworth.tasks.base import Example, Split

LOSSES = ("ce", "tfew")


@dataclass
class Sequences:
    input_ids: list[list[int]]
    n_prompt: list[int]

    def prompts(self, rows) -> list[list[int]]:
        return [self.input_ids[i][: self.n_prompt[i]] for i in rows]


def build_sequences(fmt: PromptFormat, split: Split) -> Sequences:
    """prompt + label tokens for each example (first verbaliser word of the gold label)."""
    inputs, n_prompt = [], []
    for text, label in zip(split.texts, split.labels):
        prompt = fmt.prompt(text)
        prompt_ids = fmt.encode_prompt(prompt)
        inputs.append(prompt_ids + fmt.answer_ids(prompt, fmt.task.verbalizers[label][0]))
        n_prompt.append(len(prompt_ids))
    return Sequences(inputs, n_prompt)


def label_only_loss(model, tokenizer, seqs: Sequences, batch: np.ndarray, packed: bool = False):
    """Cross-entropy on the label tokens only, the LM head run only where it predicts one.

    Every other position's logits would be masked out of the loss, and over a 49k-word
    vocabulary the head and its softmax cost as much as a third of a small model's step. The
    kept positions are indexed from the end (`last_positions`' reasoning), so virtual tokens a
    PEFT model prepends shift nothing. The loss is transformers' own: the mean over the label
    tokens of the fp32 cross-entropy.

    `packed`: the rows run as one sequence whose position ids restart at each row, which
    transformers reads as packed sequences that attend only to themselves; no compute goes to
    padding (random batches of AG News prompts are ~1.5x their tokens once padded); LoRA's
    dropout draws the masks of the padded batch (`packed_rows`). Only where `packs` says so.
    """
    import torch

    from promptworth.backbones.layout_dropout import packed_rows

    device = next(model.parameters()).device
    sequences = [seqs.input_ids[i] for i in batch]
    if packed:
        lengths = [len(s) for s in sequences]
        starts = np.cumsum([0, *lengths])
        inputs = {
            "input_ids": torch.tensor([[t for s in sequences for t in s]], device=device),
            "position_ids": torch.cat([torch.arange(n) for n in lengths])[None].to(device),
            "use_cache": False,  # a cache would stop transformers from reading the packing
        }
        n_tokens, layout = int(starts[-1]), packed_rows(model, lengths)
    else:
        ids, mask = right_padded(tokenizer, sequences, device)
        inputs = {"input_ids": ids, "attention_mask": mask}
        starts, n_tokens = np.zeros(len(sequences) + 1, dtype=int), int(mask.sum())
        layout = nullcontext()
    width = inputs["input_ids"].shape[1]
    rows, positions, targets = [], [], []  # position t - 1 predicts label token t
    for row, (seq, index) in enumerate(zip(sequences, batch)):
        for t in range(seqs.n_prompt[index], len(seq)):
            rows.append(0 if packed else row)
            positions.append(starts[row] + t - 1)
            targets.append(seq[t])
    kept = sorted(set(positions))
    column = {position: j for j, position in enumerate(kept)}
    keep = torch.tensor(kept, device=device) - width
    with layout:
        logits = model(**inputs, logits_to_keep=keep).logits
    picked = logits[torch.tensor(rows), torch.tensor([column[p] for p in positions])]
    loss = torch.nn.functional.cross_entropy(picked.float(), torch.tensor(targets, device=device))
    return loss, n_tokens


def packs(model, virtual_tokens: bool) -> bool:
    """Whether training may pack its batches and take the same steps as padded batches: not
    with virtual tokens (they would be prepended once to the whole pack), nor with a dropout
    other than LoRA's `LayoutDropout` (an nn.Dropout draws its masks over the batch's shape, so
    packing would draw other ones)."""
    import torch

    from promptworth.backbones.layout_dropout import LayoutDropout

    dropout = any(
        isinstance(m, torch.nn.Dropout) and not isinstance(m, LayoutDropout) and m.p > 0
        for m in model.modules()
    )
    config = getattr(model, "config", None)
    return not (virtual_tokens or dropout or getattr(config, "attention_dropout", 0.0))


def answer_logprobs(model, tokenizer, prompts: list[list[int]], answers: list[list[int]]):
    """log p of each answer's tokens after each prompt, with gradients: one [batch, len(answer)]
    tensor per answer, and the non-padding tokens run. Answers that share all but their last
    token share a forward pass (every one-token answer shares one), right-padded as in training.
    """
    import torch

    device = next(model.parameters()).device
    starts = torch.tensor([len(p) for p in prompts], device=device)
    rows = torch.arange(len(prompts), device=device)[:, None]
    by_context: dict[tuple[int, ...], list[int]] = {}
    for index, answer in enumerate(answers):
        by_context.setdefault(tuple(answer[:-1]), []).append(index)
    out, tokens = [None] * len(answers), 0
    for context, indices in by_context.items():
        ids, mask = right_padded(tokenizer, [p + list(context) for p in prompts], device)
        keep = ids.shape[1] - int(starts.min()) + 1  # logits from the first answer position on
        kept = last_positions(keep, device)
        logits = model(input_ids=ids, attention_mask=mask, logits_to_keep=kept).logits
        # kept-logit index of the position that predicts answer token k in each row
        at = starts[:, None] - 1 + torch.arange(len(context) + 1, device=device)
        logprobs = torch.log_softmax(logits[rows, at - (ids.shape[1] - keep)].float(), -1)
        for index in indices:
            steps = torch.arange(len(answers[index]), device=device)
            out[index] = logprobs[:, steps, torch.tensor(answers[index], device=device)]
        tokens += int(mask.sum())
    return out, tokens


def tfew_loss(logprobs: list, gold) -> tuple:
    """T-Few's loss (Liu et al. 2022, eqs. 1-3) from each label answer's token log-probs
    ([batch, tokens] per label) and the gold labels [batch]: (total, (lm, unlikelihood, ln)).

    - lm: cross-entropy on the gold answer's tokens (mean over those tokens);
    - unlikelihood: -log(1 - p) of every wrong answer's tokens (mean over those tokens);
    - ln: cross-entropy of the softmax over the answers' length-normalised log-probs.
    """
    import torch

    n_labels = len(logprobs)
    gold_tokens = torch.cat([logprobs[y][row] for row, y in enumerate(gold.tolist())])
    wrong = torch.cat(
        [logprobs[c][row] for row, y in enumerate(gold.tolist()) for c in range(n_labels) if c != y]
    )
    lm = -gold_tokens.mean()
    # log(1 - p) = log(-expm1(log p)); the clamp keeps p = 1 from giving an infinite loss
    unlikelihood = -torch.log(-torch.expm1(wrong.clamp(max=-1e-6))).mean()
    normalised = torch.stack([lp.mean(dim=-1) for lp in logprobs], dim=1)
    ln = torch.nn.functional.cross_entropy(normalised, gold)
    return lm + unlikelihood + ln, (lm, unlikelihood, ln)


@dataclass(frozen=True)
class TrainingConfig(RecipeConfig):
    """The training rule's parameters; every prompt-trained method's Config extends it."""

    # A dev evaluation scores every label on each dev row; past ~64 rows it buys little signal
    # and, at 1,000 labels, an uncapped dev split used to cost as much as training.
    max_dev: int = 64  # dev rows at most; the rest of the subset trains
    # The cap binds only above 120 labels (10 epochs at batch 8). At 1,000 AG News labels
    # prompt-lora's dev score still rose at 150 steps; 300 scored 0.880 against 0.855 on the
    # same 1,000 test rows (paired +0.025 [+0.011, +0.040];
    # docs/concepts/training-recipes.md#the-training-rule).
    max_steps: int = 300
    loss: str = "ce"  # "ce": the gold word's tokens; "tfew": T-Few's losses (`tfew_loss`)

    def __post_init__(self) -> None:
        super().__post_init__()
        one_of(self, "loss", LOSSES)
        at_least(self, 0, "max_dev")


def peft_on_copy(backbone, peft_config, seed: int):
    """A PEFT model around a fresh copy of the backbone; random adapter init drawn from `seed`.

    The copy matters even when PEFT injects nothing: wrapping freezes the wrapped weights.
    """
    import torch

    from promptworth.backbones.adapters import peft_model

    torch.manual_seed(seed)
    return peft_model(backbone.fresh_model(), peft_config)


def select_from_start(
    model, learner: Learner, n_rows: int, schedule: Schedule, method: Method, context: RunContext
) -> Selection:
    """The shared training rule over `n_rows` training rows (a dev split, else folds), the
    learning rates the method's `tune` asks for, and the untrained start among the candidates;
    the model is left in eval mode holding the chosen weights. The dev split is drawn from the
    learner's gold rows only (`Learner.gold_rows`); the others are always trained on."""
    gold = n_rows if learner.gold_rows is None else learner.gold_rows
    fit_idx, dev_idx = split_dev(gold, schedule, context.seed)
    fit_idx = np.concatenate([fit_idx, np.arange(gold, n_rows)])
    model.train()
    selection = fit_selected(
        learner,
        fit_idx,
        dev_idx,
        tuning_grid(schedule, method.learning_rates, method.config.tune),
        keep_start=True,
        seed=context.seed,
        say=context.say,
    )
    model.eval()
    return selection


def trained_cost(model, selection: Selection, produced: list) -> TrainingCost:
    """What training cost: the model's parameter counts, the rule's steps, examples and
    tokens, and the bytes of what it produced."""
    trainable, total = count_params(model)
    stats = selection.stats
    return TrainingCost(
        trainable, total, stats.examples, stats.tokens, stats.steps, tensor_bytes(produced)
    )


def is_peft(model) -> bool:
    from peft import PeftModel

    return isinstance(model, PeftModel)


PROMPT_ENCODER = "prompt_encoder."  # the key prefix of a prompt-learning adapter's tensors


def trained_tensors(model) -> dict:
    """What a trained model adds to its backbone, copied: PEFT's adapter state
    (`get_peft_model_state_dict`: LoRA and (IA)3 weights); for virtual tokens the whole prompt
    encoder, so they are computed as in training (a template start wraps PEFT's encoder, which
    PEFT's own state would not restore); or every weight of a fully fine-tuned model (tied
    weights copied apart: safetensors stores no shared tensors)."""
    if is_peft(model) and model.active_peft_config.is_prompt_learning:
        encoder = model.prompt_encoder[model.active_adapter]
        state = {PROMPT_ENCODER + name: value for name, value in encoder.state_dict().items()}
    elif is_peft(model):
        from peft import get_peft_model_state_dict

        state = get_peft_model_state_dict(model)
    else:
        state = model.state_dict()
    return {name: tensor.detach().cpu().clone() for name, tensor in state.items()}


def adapter_config(model) -> dict | None:
    """The PEFT adapter's configuration as JSON-able values (None without an adapter)."""
    if not is_peft(model):
        return None
    config = model.peft_config[model.active_adapter].to_dict()
    as_json = json.dumps(config, default=lambda v: sorted(v) if isinstance(v, set) else str(v))
    return json.loads(as_json)


def load_trained(model, tensors: dict) -> None:
    """Put `trained_tensors` back into a model built as the trained one was."""
    if not is_peft(model):
        model.load_state_dict(tensors, strict=True)
    elif model.active_peft_config.is_prompt_learning:
        encoder = model.prompt_encoder[model.active_adapter]
        encoder.load_state_dict({k.removeprefix(PROMPT_ENCODER): v for k, v in tensors.items()})
    else:
        from peft import set_peft_model_state_dict

        result = set_peft_model_state_dict(model, tensors)
        unexpected = getattr(result, "unexpected_keys", [])
        if unexpected:
            raise ValueError(f"adapter tensors the model has no place for: {unexpected[:5]}")


class PromptTrainedMethod(Method):
    """Base of every method trained on the prompt-based objective."""

    backbones_read = ("causal-lm",)
    # True where the adapter prepends virtual tokens on every forward call (prompt tuning,
    # prefix tuning, p-tuning): predict then scores after their cache, generates unpadded.
    virtual_tokens: ClassVar[bool] = False
    # The learning rates `tune` tries (training.tuning_grid), with the published recipe they
    # come from beside them in each method's module.
    learning_rates: ClassVar[tuple[float, ...]]

    def schedule(self) -> Schedule:
        return Schedule.of(self.config)

    def prompt_format(self, backbone, context: RunContext) -> PromptFormat:
        """How inputs are shown to the model being trained (the task's template by default)."""
        return PromptFormat(context.task, backbone.tokenizer, context.prompt)

    def trainable_model(self, backbone, context: RunContext):
        """The model to train, built from (never changing) `backbone.model`."""
        raise NotImplementedError

    def produced_tensors(self, model) -> list:
        """What training produced, for the artifact size: by default the trainable weights."""
        return [p for p in model.parameters() if p.requires_grad]

    def for_inference(self, model):
        """The trained model as it would be served (LoRA merges its adapters here)."""
        return model

    def n_virtual(self, model) -> int:
        """Virtual tokens the model prepends on every call (0 without)."""
        return model.active_peft_config.num_virtual_tokens if self.virtual_tokens else 0

    def learner(self, model, tokenizer, train_split: Split, context: RunContext) -> Learner:
        """The model as the training rule sees it: its loss on rows and its label scores."""
        fmt, seqs = self.format_, build_sequences(self.format_, train_split)
        packed = packs(model, self.virtual_tokens)
        gold = np.asarray(train_split.labels)
        answers = [words[0] for words in fmt.label_candidates()]

        def step_loss(rows: np.ndarray):
            if self.config.loss == "ce":
                return label_only_loss(model, tokenizer, seqs, rows, packed)
            import torch

            logprobs, tokens = answer_logprobs(model, tokenizer, seqs.prompts(rows), answers)
            labels = torch.tensor(gold[rows], device=logprobs[0].device)
            return tfew_loss(logprobs, labels)[0], tokens

        def scores(rows: np.ndarray) -> np.ndarray:
            model.eval()
            out = label_scores(model, fmt, seqs.prompts(rows), self.n_virtual(model))
            model.train()
            return out

        return Learner(
            [p for p in model.parameters() if p.requires_grad],
            step_loss,
            scores,
            gold,
            context.backbones.placement,
        )

    def fit(self, train_split: Split, context: RunContext) -> PromptTrainedMethod:
        backbone = context.backbones.get(context.model, "causal-lm")
        self.format_ = self.prompt_format(backbone, context)
        model = self.trainable_model(backbone, context)
        learner = self.learner(model, backbone.tokenizer, train_split, context)
        schedule = self.schedule()
        selection = select_from_start(model, learner, len(train_split), schedule, self, context)
        self.placement_ = backbone.placement
        self.cost_ = trained_cost(model, selection, self.produced_tensors(model))
        self.selection_ = selection
        if selection.step == 0 and self.start_is_the_prompt():
            # Nothing trained is kept: serve the prompt itself, as zero-shot does.
            self.format_ = PromptTrainedMethod.prompt_format(self, backbone, context)
            self.n_virtual_, self.model_, self.trained_ = 0, backbone.model, False
        else:
            self.n_virtual_, self.trained_ = self.n_virtual(model), True
            self.adapter_config_ = adapter_config(model)
            self.model_ = self.for_inference(model)
        self.backbone_spec_ = backbone.spec
        return self

    @classmethod
    def unsaveable(cls, params: dict) -> str | None:
        return None

    def state(self) -> SavedState:
        """Nothing when the prompt itself was kept; else PEFT's adapter state (with its config)
        or, for full fine-tuning, every weight."""
        self.check_fitted()
        backbones = {"causal-lm": self.backbone_spec_}
        if not self.trained_:
            return self.saved(backbones=backbones, trained=False)
        return self.saved(
            self.trained_state(), backbones, trained=True, adapter_config=self.adapter_config_
        )

    def trained_state(self) -> dict:
        """The tensors `state` saves: those of the trained model as served (`trained_tensors`)."""
        return trained_tensors(self.model_)

    def restore(self, state: SavedState, context: RunContext) -> PromptTrainedMethod:
        backbone = context.backbones.get(context.model, "causal-lm")
        self.placement_, self.backbone_spec_ = backbone.placement, backbone.spec
        self.restored(state)
        if not state.meta["trained"]:
            self.format_ = PromptTrainedMethod.prompt_format(self, backbone, context)
            self.n_virtual_, self.model_, self.trained_ = 0, backbone.model, False
            return self
        self.format_ = self.prompt_format(backbone, context)
        model = self.trainable_model(backbone, context)
        load_trained(model, state.tensors)
        model.eval()
        self.trained_, self.adapter_config_ = True, state.meta["adapter_config"]
        self.n_virtual_ = self.n_virtual(model)
        self.model_ = self.for_inference(model)
        return self

    def start_is_the_prompt(self) -> bool:
        """The untrained model is the backbone reading the task's prompt, only held another way
        (LoRA's zero update, (IA)3's unit vectors, full fine-tuning's fp32 copy, virtual tokens
        holding the template's words). Kept untrained, it is served as that prompt through the
        backbone itself, so it predicts what zero-shot predicts to the last bit rather than up
        to rounding: on SmolLM2 in bf16, prompt-ft's fp32 copy under autocast scored 0.681
        against zero-shot's 0.684 on 1,000 AG News rows, the virtual-token path 0.689-0.691."""
        return True

    def predict(self, texts: list[Example]) -> Prediction:
        self.check_fitted()
        if self.format_.options.predict == "generate":  # on cast weights: autocast is slow there
            if not hasattr(self, "serving_model_"):
                self.serving_model_ = serving_copy(self.model_, self.placement_)
            prediction = predict_with_lm(self.serving_model_, self.format_, texts, self.n_virtual_)
            return replace(prediction, extra={**prediction.extra, **self.selection()})
        with autocast_for(self.placement_):  # trained weights are fp32; serve at the run's dtype
            prediction = predict_with_lm(self.model_, self.format_, texts, self.n_virtual_)
        return replace(prediction, extra={**prediction.extra, **self.selection()})
