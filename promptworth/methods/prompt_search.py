"""prompt-search: automated prompt design, zero-shot; no weight changes.

Candidates are the task's own templates, PET-style patterns (Schick & Schütze 2021; on a
generation task, the task's template after each of INSTRUCTIONS) and paraphrases of the task's
template written by the instruct LM itself. Each is scored zero-shot on a dev split drawn from
the training subset (accuracy; a generation task's headline metric); the best one is used on the
test inputs. For the
report, every candidate's test accuracy is measured too: Le Scao & Rush (2021) found the choice
of template to matter less than seed variance, and the spread across templates tests that.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from promptworth.methods.base import (
    Method,
    Prediction,
    RunContext,
    SavedState,
    TrainingCost,
    at_least,
    count_params,
)
from promptworth.methods.prompting import PromptFormat, predict_with_lm, score_candidates
from promptworth.tasks.base import DEFAULT_INPUTS, TEXT_SLOT, Example, Split

# PET-style patterns rendered so the label word follows the prompt: "[Category: ___] {text}"
# becomes "{text}\nCategory:", and "{text} ( ___ )" becomes "{text} (" + " label".
PET_PATTERNS = ("{text}\nCategory:", "{text} (")
PARAPHRASE_REQUEST = (
    "Rewrite this prompt in different words. Keep {slots} exactly where the input goes.\n\nPrompt: "
)
PARAPHRASE_TOKENS = 32
# A generation task's instruction variants: the task's template after each of these lines.
INSTRUCTIONS = ("Answer in one line.", "Give a short, exact answer.")
CUE_SUFFIX = "\nAnswer:"  # after a paraphrase that ends with the text slot: the label follows it


@dataclass(frozen=True)
class Candidate:
    template: str
    source: str  # "task", "pet" (classification), "instruction" (generation) or "paraphrase"


class PromptSearch(Method):
    name = "prompt-search"
    family = "prompting"
    updates_weights = False
    task_types = ("classification", "generation")
    backbones_read = ("causal-lm",)
    test_params: ClassVar[dict[str, Any]] = {
        "n_paraphrases": 1,
        "max_dev": 8,
        "score_all_on_test": False,
    }

    @dataclass(frozen=True)
    class Config:
        n_paraphrases: int = 3  # paraphrases of the task's template written by the LM
        max_dev: int = 100  # dev examples drawn from the training subset (all when fewer)
        # Measurement: also predict the test inputs with every candidate so the report can show
        # the spread (the runner scores them; this method never sees test labels); costs one
        # pass per candidate.
        score_all_on_test: bool = True

        def __post_init__(self) -> None:
            at_least(self, 0, "n_paraphrases")
            at_least(self, 1, "max_dev")

    def fit(self, train: Split, context: RunContext) -> PromptSearch:
        if not len(train):
            raise ValueError(
                "prompt-search needs labelled examples for its dev split; n_train is 0"
            )
        backbone = context.backbones.get(context.model, "causal-lm")
        self.model_ = backbone.model
        seed_template = context.task.templates[context.prompt.template]
        candidates, self.notes_ = self.candidates(backbone, context, seed_template)
        self.use_candidates(candidates, backbone, context)
        dev_idx = np.random.default_rng(context.seed).permutation(len(train))[: self.config.max_dev]
        dev = train.subset(np.sort(dev_idx))
        self.dev_ = [dev_score(self.model_, fmt, dev, context.score_rows) for fmt in self.formats_]
        # Best dev accuracy; ties (frequent on a few examples) go to the higher mean
        # log-probability of the gold label, then to the earlier candidate.
        self.best_ = max(
            range(len(candidates)), key=lambda i: (self.dev_[i][0], self.dev_[i][1], -i)
        )
        self.cost_ = TrainingCost(
            trainable_params=0,
            total_params=count_params(self.model_)[1],
            train_examples=len(dev) * len(candidates),
            train_tokens=sum(score[2] for score in self.dev_),
            artifact_bytes=len(candidates[self.best_].template.encode("utf-8")),
        )
        return self

    def use_candidates(self, candidates: list[Candidate], backbone, context: RunContext) -> None:
        """The task and prompt formats of `candidates`, one template each."""
        self.candidates_, self.backbone_spec_ = candidates, backbone.spec
        self.task_ = dataclasses.replace(context.task, templates=[c.template for c in candidates])
        self.formats_ = [
            PromptFormat(
                self.task_, backbone.tokenizer, dataclasses.replace(context.prompt, template=i)
            )
            for i in range(len(candidates))
        ]

    @classmethod
    def unsaveable(cls, params: dict) -> str | None:
        return None

    def state(self) -> SavedState:
        """The candidate templates, their dev scores and the chosen one."""
        self.check_fitted()
        return self.saved(
            backbones={"causal-lm": self.backbone_spec_},
            candidates=[dataclasses.asdict(c) for c in self.candidates_],
            dev=[list(score) for score in self.dev_],
            best=self.best_,
            notes=list(self.notes_),
        )

    def restore(self, state: SavedState, context: RunContext) -> PromptSearch:
        backbone = context.backbones.get(context.model, "causal-lm")
        self.model_, meta = backbone.model, state.meta
        self.use_candidates([Candidate(**c) for c in meta["candidates"]], backbone, context)
        self.dev_ = [tuple(score) for score in meta["dev"]]
        self.best_, self.notes_ = meta["best"], meta["notes"]
        self.restored(state)
        return self

    def candidates(
        self, backbone, context: RunContext, seed_template: str
    ) -> tuple[list[Candidate], list[str]]:
        """Distinct templates to try, and notes on what was left out and why."""
        task, notes = context.task, []
        pool = [Candidate(t, "task") for t in task.templates]
        if task.generates:
            pool += [Candidate(f"{line}\n{seed_template}", "instruction") for line in INSTRUCTIONS]
        else:
            pool += [Candidate(t, "pet") for t in pet_patterns(task.inputs)]
        wanted = self.config.n_paraphrases
        has_chat = bool(getattr(backbone.tokenizer, "chat_template", None))
        if wanted and has_chat:
            known = {c.template for c in pool}
            written = paraphrases(backbone, seed_template, wanted, context.seed, known, task.inputs)
            pool += [Candidate(t, "paraphrase") for t in written]
        elif wanted:
            notes.append("no paraphrases: the tokenizer has no chat template to ask the LM with")
        seen, kept = set(), []
        for candidate in pool:
            if candidate.template in seen:
                continue
            seen.add(candidate.template)
            problem = unusable(candidate.template, task, backbone.tokenizer, context)
            if problem:
                notes.append(f"dropped {candidate.template!r}: {problem}")
            else:
                kept.append(candidate)
        n_written = sum(c.source == "paraphrase" for c in kept)
        if has_chat and n_written < wanted:
            notes.append(f"only {n_written} of {wanted} paraphrases were usable and new")
        return kept, notes

    def predict(self, texts: list[Example]) -> Prediction:
        self.check_fitted()
        chosen = predict_with_lm(self.model_, self.formats_[self.best_], texts)
        generates = self.task_.generates
        rows = [
            {
                "template": c.template,
                "source": c.source,
                # a generation task's dev score is the mean of its headline metric
                ("dev_score" if generates else "dev_accuracy"): self.dev_[i][0],
                "dev_gold_logprob": self.dev_[i][1],
            }
            for i, c in enumerate(self.candidates_)
        ]
        extra: dict[str, Any] = {
            "chosen": self.best_,
            "chosen_template": self.candidates_[self.best_].template,
            "candidates": rows,
            "notes": list(self.notes_),
        }
        if self.config.score_all_on_test:
            start = time.perf_counter()
            for i, (row, fmt) in enumerate(zip(rows, self.formats_)):
                others = predict_with_lm(self.model_, fmt, texts) if i != self.best_ else chosen
                # scored by the runner
                if generates:
                    row["test_outputs"] = list(others.texts)
                else:
                    row["test_predictions"] = others.labels.tolist()
            # Measurement only: the runner leaves this out of the eval cost.
            chosen.diagnostic_seconds = time.perf_counter() - start
        chosen.extra = {**extra, **chosen.extra}  # and the chosen prompt's traces
        return chosen


def dev_score(model, fmt: PromptFormat, dev: Split, score_rows=None) -> tuple[float, float, int]:
    """(accuracy, mean log-probability of the gold label among labels, prompt tokens) on dev;
    on a generation task the first is the mean of `score_rows` (the headline metric per row).

    Generation gives no label probabilities: its second value is 0.
    """
    prompt_ids = [fmt.encode_prompt(fmt.prompt(text)) for text in dev.texts]
    n_tokens = sum(len(ids) for ids in prompt_ids)
    if fmt.task.generates:
        if score_rows is None:
            raise ValueError(
                "prompt-search scores a generation task's templates by its metric: the run "
                "context has no score_rows (runner.execute supplies it)"
            )
        texts = predict_with_lm(model, fmt, dev.texts).texts
        return float(np.mean(score_rows(texts, dev.references))), 0.0, n_tokens
    if fmt.options.predict == "generate":
        labels = predict_with_lm(model, fmt, dev.texts).labels
        return float((labels == dev.labels).mean()), 0.0, n_tokens
    scores = score_candidates(
        model,
        fmt.tokenizer,
        prompt_ids,
        fmt.label_candidates(),
        fmt.options.batch_size,
        fmt.options.length_norm,
    )
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    gold = log_p[np.arange(len(dev)), dev.labels]
    return float((scores.argmax(axis=1) == dev.labels).mean()), float(gold.mean()), n_tokens


def input_block(inputs: tuple[str, ...]) -> str:
    """Where a generated pattern puts the inputs: their slots, one per line."""
    return "\n".join("{" + slot + "}" for slot in inputs)


def pet_patterns(inputs: tuple[str, ...] = DEFAULT_INPUTS) -> list[str]:
    """PET_PATTERNS with the task's inputs in place of {text}."""
    return [pattern.replace(TEXT_SLOT, input_block(inputs)) for pattern in PET_PATTERNS]


def paraphrases(
    backbone,
    template: str,
    n: int,
    seed: int,
    known: set[str],
    inputs: tuple[str, ...] = DEFAULT_INPUTS,
) -> list[str]:
    """Up to n new templates (not in `known`) from 2n seeded samples of the LM asked to
    reword `template`."""
    import torch

    tokenizer, model = backbone.tokenizer, backbone.model
    slots = " and ".join("{" + slot + "}" for slot in inputs)
    request = [{"role": "user", "content": PARAPHRASE_REQUEST.format(slots=slots) + template}]
    prompt = tokenizer.apply_chat_template(request, tokenize=False, add_generation_prompt=True)
    ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).to(model.device)
    with torch.random.fork_rng(), torch.inference_mode():
        torch.manual_seed(seed)
        out = model.generate(
            **ids,
            do_sample=True,
            temperature=0.8,
            top_p=0.95,
            max_new_tokens=PARAPHRASE_TOKENS,
            num_return_sequences=2 * n,
            pad_token_id=tokenizer.pad_token_id,
            stop_strings=["\n"],  # only the first line is used
            tokenizer=tokenizer,
        )
    answers = tokenizer.batch_decode(out[:, ids.input_ids.shape[1] :], skip_special_tokens=True)
    written = [as_template(a, inputs) for a in answers]
    distinct = list(dict.fromkeys(t for t in written if t and t not in known))
    return distinct[:n]


def as_template(answer: str, inputs: tuple[str, ...] = DEFAULT_INPUTS) -> str | None:
    """A usable template from an LM answer: its first line, with each input's slot exactly once
    and an ending the label word can follow. Otherwise the line's words (cut after its first
    colon) are the answer cue after the inputs: "{text}\\nThe article is about:"."""
    lines = [line.strip().strip("\"'`").strip() for line in answer.splitlines()]
    line = next((line for line in lines if line), "")
    line = line.removeprefix("Prompt:").strip()
    if not line:
        return None
    slots = ["{" + slot + "}" for slot in inputs]
    if all(line.count(slot) == 1 for slot in slots):
        return line + CUE_SUFFIX if line.endswith(slots[-1]) else line
    for slot in slots:
        line = line.replace(slot, "")
    cue = line.split(":")[0].strip().rstrip(".!?").strip()
    return f"{input_block(inputs)}\n{cue}:" if cue else None


def unusable(template: str, task, tokenizer, context: RunContext) -> str | None:
    """Why `template` is unusable: a slot the task lacks, or rank classification cannot score
    the labels after it; None if usable."""
    problem = task.template_problem(template)
    if problem or context.prompt.predict != "rank" or task.generates:
        return problem
    probe = dataclasses.replace(task, templates=[template])
    try:
        PromptFormat(
            probe, tokenizer, dataclasses.replace(context.prompt, template=0)
        ).label_candidates()
    except ValueError as error:
        return str(error)
    return None
