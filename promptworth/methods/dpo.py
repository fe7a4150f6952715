"""dpo: prompt-lora supervised tuning, then Direct Preference Optimization (Rafailov et al. 2023)
with TRL's DPOTrainer.

Preference pairs come from the labelled subset: prompt = the rendered prompt, chosen = the gold
label's word as it follows the prompt, rejected = a wrong label's word (one seeded draw per
example, or every wrong label). A user's own pairs can replace them (`preference_file`: CSV or
JSONL with columns prompt, chosen, rejected). The reference policy is the supervised model: TRL
copies its LoRA adapter into a frozen "ref" adapter and goes on training the original one, so the
artifact stays one adapter. The preference stage is the training rule's second stage
(training.Learner.stage): kept only where it scores better on held-out rows than SFT alone.
"""

from __future__ import annotations

import contextlib
import math
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from promptworth.errors import PromptworthError
from promptworth.methods.base import RunContext, at_least, one_of, positive
from promptworth.methods.prompt_lora import PromptLoRA
from promptworth.methods.prompting import PromptFormat
from promptworth.methods.training import Learner, TrainStats
from promptworth.tasks.base import Split

PREFERENCE_COLUMNS = ("prompt", "chosen", "rejected")
NEGATIVES = ("one", "all")


@dataclass
class PreferenceStats:
    pairs: int = 0  # distinct preference pairs
    examples: int = 0  # pairs processed, counting repeats
    tokens: int = 0  # non-padding tokens of chosen and rejected sequences processed
    steps: int = 0


def read_preference_file(path: str) -> list[dict[str, str]]:
    """Rows of a CSV or JSONL file with columns prompt, chosen, rejected, all non-empty."""
    import pandas as pd

    file = Path(path).expanduser()
    if not file.is_file():
        raise PromptworthError(f"preference file {path} does not exist")
    readers = {
        ".csv": lambda: pd.read_csv(file, dtype=str, keep_default_na=False),
        ".jsonl": lambda: pd.read_json(file, lines=True, dtype=False),
    }
    if file.suffix.lower() not in readers:
        raise PromptworthError(f"preference file {path}: use a .csv or .jsonl file")
    try:
        frame = readers[file.suffix.lower()]()
    except ValueError as error:  # pandas' parse, empty-file and decoding errors
        raise PromptworthError(f"preference file {path}: could not read it: {error}") from error
    missing = [c for c in PREFERENCE_COLUMNS if c not in frame.columns]
    if missing:
        raise PromptworthError(
            f"preference file {path} has no column {', '.join(missing)}; "
            f"it needs the columns {', '.join(PREFERENCE_COLUMNS)}"
        )
    if frame.empty:
        raise PromptworthError(f"preference file {path} has no rows")
    rows = frame[list(PREFERENCE_COLUMNS)].fillna("").astype(str).to_dict("records")
    for number, row in enumerate(rows, start=1):
        empty = [c for c in ("prompt", "chosen", "rejected") if not row[c].strip()]
        if empty:
            raise PromptworthError(
                f"preference file {path}, row {number}: empty {', '.join(empty)}"
            )
    return rows


def label_pairs(fmt: PromptFormat, split: Split, negatives: str, seed: int) -> list[dict]:
    """Gold label word (chosen) against wrong label words (rejected), in context."""
    rng = np.random.default_rng(seed)
    words = [options[0] for options in fmt.task.verbalizers]
    pairs = []
    for text, label in zip(split.texts, split.labels):
        prompt = fmt.prompt(text)
        wrong = [y for y in range(len(words)) if y != label]
        for y in wrong if negatives == "all" else [rng.choice(wrong)]:
            pairs.append(
                {
                    "prompt": prompt,
                    "chosen": fmt.completion(prompt, words[label]),
                    "rejected": fmt.completion(prompt, words[y]),
                }
            )
    return pairs


@contextlib.contextmanager
def quiet_datasets():
    """No progress bars from the `datasets` maps TRL runs over a few pairs; restored after."""
    import datasets

    enabled = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if enabled:
            datasets.enable_progress_bars()


def pairs_processed(n_pairs: int, batch_size: int, steps: int) -> int:
    """Pairs a trainer saw in `steps` batches, epochs ending in a short batch (no drop_last)."""
    per_epoch = math.ceil(n_pairs / batch_size)
    epochs, rest = divmod(steps, per_epoch)
    return epochs * n_pairs + rest * batch_size


class DPO(PromptLoRA):
    name = "dpo"
    family = "parameter-efficient"

    test_params: ClassVar[dict[str, Any]] = {
        "max_steps": 3,
        "batch_size": 4,
        "dpo_max_steps": 2,
        "dpo_batch_size": 4,
    }

    @dataclass(frozen=True)
    class Config(PromptLoRA.Config):
        # The supervised stage is prompt-lora with the inherited parameters; then:
        dpo_max_steps: int = 30
        dpo_learning_rate: float = 2e-4  # high for DPO: the stage is only a few steps
        dpo_batch_size: int = 8
        beta: float = 0.1  # strength of the pull towards the supervised (reference) model
        negatives: str = "one"  # "one": a seeded wrong label per example; "all": every one
        preference_file: str = ""  # CSV/JSONL of prompt,chosen,rejected replacing label pairs

        def __post_init__(self) -> None:
            super().__post_init__()
            at_least(self, 1, "dpo_max_steps", "dpo_batch_size")
            positive(self, "dpo_learning_rate", "beta")
            one_of(self, "negatives", NEGATIVES)
            if self.preference_file:  # a small file: read it now, not after the SFT stage
                read_preference_file(self.preference_file)

    def fit(self, train_split: Split, context: RunContext) -> DPO:
        c = self.config
        self.user_pairs_ = read_preference_file(c.preference_file) if c.preference_file else None
        return super().fit(train_split, context)

    def learner(self, model, tokenizer, train_split: Split, context: RunContext) -> Learner:
        """The supervised learner with the preference stage as its second stage: the training
        rule keeps the stage only where it scores better than the supervised model alone."""
        learner = super().learner(model, tokenizer, train_split, context)

        def stage(rows: np.ndarray) -> TrainStats:
            fmt, negatives = self.format_, self.config.negatives
            pairs = self.user_pairs_ or label_pairs(
                fmt, train_split.subset(rows), negatives, context.seed
            )
            context.say(f"dpo: {len(pairs)} preference pairs")
            stats = self.preference_tune(model, pairs, context)
            self.preference_stats_ = stats  # the last stage run's
            return TrainStats(stats.steps, stats.examples, stats.tokens)

        return replace(learner, stage=stage)

    def preference_tune(self, model, pairs: list[dict], context: RunContext) -> PreferenceStats:
        """DPO on the supervised model's adapter; the reference is a frozen copy of it."""
        from datasets import Dataset
        from transformers import PrinterCallback
        from trl import DPOConfig, DPOTrainer

        from promptworth.backbones.adapters import upstream_noise

        c, placement, seed = self.config, context.backbones.placement, context.seed
        with tempfile.TemporaryDirectory(prefix="promptworth-dpo-") as scratch, quiet_datasets():
            args = DPOConfig(
                output_dir=scratch,  # nothing is written: no checkpoints, no reports
                save_strategy="no",
                report_to="none",
                logging_strategy="no",
                disable_tqdm=True,
                max_steps=c.dpo_max_steps,
                per_device_train_batch_size=c.dpo_batch_size,
                learning_rate=c.dpo_learning_rate,
                beta=c.beta,
                seed=seed,
                data_seed=seed,
                activation_checkpointing=False,
                bf16=placement.dtype == "bfloat16",
                fp16=placement.dtype == "float16",
                use_cpu=not placement.device.startswith("cuda"),
                include_num_input_tokens_seen="non_padding",
                dataloader_num_workers=0,
            )
            trainer = DPOTrainer(
                model=model,
                args=args,
                train_dataset=Dataset.from_list(pairs),
                processing_class=self.format_.tokenizer,
            )
            trainer.remove_callback(PrinterCallback)  # it prints the metrics dict to stdout
            with upstream_noise():
                trainer.train()
        model.delete_adapter("ref")
        model.train()  # as the supervised loop left it
        steps = trainer.state.global_step
        return PreferenceStats(
            pairs=len(pairs),
            examples=pairs_processed(len(pairs), c.dpo_batch_size, steps),
            tokens=int(trainer.state.num_input_tokens_seen),
            steps=steps,
        )
