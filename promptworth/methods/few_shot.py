"""few-shot: in-context learning (Brown et al. 2020); no weight changes.

k labelled demonstrations from the run's training subset, each the task template followed by
its gold label word, precede the test prompt; the answer is read by rank classification or
generation exactly as in zero-shot. Demonstrations are a seeded draw balanced over the labels and
shared by every test input (its prefix then runs once and its KV cache serves every input) or,
per input, the k training examples nearest to it by encoder cosine similarity (Liu et al. 2022).
Contextual calibration (Zhao et al. 2021) divides out the label probabilities the same
demonstrations give content-free inputs.

On a generation task a demonstration ends with its first reference, the random demonstrations
are the first k rows of the training subset (the sweep draws it at random per seed and nests it
across sizes, so a larger subset shows the same first demonstrations), and the answer is
generated as in zero-shot; there are no label probabilities to calibrate.

With the chat template (--chat, the default for a generation task on a chat model) each
demonstration is a user turn (its prompt) and the assistant's reply (its answer), and the test
prompt the last user turn, as lm-evaluation-harness's multi-turn few-shot does: demonstrations
pasted into one user message lead a small chat model to answer with one of their questions.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np

from promptworth.backbones.embed import embed
from promptworth.errors import PromptworthError
from promptworth.methods.base import (
    Method,
    Prediction,
    PromptOptions,
    RunContext,
    SavedState,
    TrainingCost,
    at_least,
    count_params,
    one_of,
)
from promptworth.methods.generation import answer_prediction, classify_by_generation
from promptworth.methods.prompting import (
    PromptFormat,
    output_cache,
    score_after_cache,
    score_candidates,
)
from promptworth.tasks.base import Example, Split, Task
from promptworth.tasks.subsets import interleave

SEPARATOR = "\n\n"  # between demonstrations, and between the last one and the test prompt
# A demonstration: its prompt (the template around a training input) and its answer.
Demo = tuple[str, str]
CONTENT_FREE = ("N/A", "", "[MASK]")  # Zhao et al. 2021
SELECTIONS = ("random", "knn")
GENERATION_K = 4  # demonstrations of a generation task when k is not given (no labels to count)
# Re-tokenising a truncated text inside a prompt can take a few more tokens than the truncation.
TOKEN_MARGIN = 4
EMBED_POOLING, EMBED_MAX_TOKENS = "mean", 128  # as the encoder-feature methods, to share the cache


class FewShot(Method):
    name = "few-shot"
    family = "prompting"
    updates_weights = False
    shows_demonstrations = True
    task_types = ("classification", "generation")
    test_params: ClassVar[dict[str, Any]] = {"k": 3}
    generation_test_params: ClassVar[dict[str, Any]] = {"k": 3, "calibrate": False}

    @dataclass(frozen=True)
    class Config:
        # Demonstrations per prompt, at most (fewer if n_train or the context is short); None:
        # one per label. "random" spreads them over the labels as evenly as k allows.
        k: int | None = None
        selection: str = "random"  # "random": one balanced draw for all inputs; "knn": per input
        # Contextual calibration with content-free inputs: on by default, as it measured better
        # (docs/reference/methods/few-shot.md: 0.55 vs 0.45 on AG News with SmolLM2-135M and
        # balanced demonstrations).
        calibrate: bool = True

        def __post_init__(self) -> None:
            if self.k is not None:
                at_least(self, 1, "k")
            one_of(self, "selection", SELECTIONS)

    @classmethod
    def reads_backbones(cls, params: dict[str, Any]) -> tuple[str, ...]:
        """The causal LM; the encoder too when it picks the demonstrations (selection=knn)."""
        knn = params.get("selection", cls.Config.selection) == "knn"
        return ("causal-lm", "encoder") if knn else ("causal-lm",)

    def task_problem(self, task: Task) -> str | None:
        if task.generates and self.config.calibrate:
            return (
                "calibrate=true needs label probabilities, which a generation task has none "
                "of: add --param few-shot.calibrate=false"
            )
        return super().task_problem(task)

    def incompatible(self, prompt: PromptOptions) -> str | None:
        if self.config.calibrate and prompt.predict != "rank":
            return (
                "calibrate=true needs label probabilities: use --predict rank, "
                "or --param few-shot.calibrate=false"
            )
        return None

    def fit(self, train: Split, context: RunContext) -> FewShot:
        problem = self.incompatible(context.prompt) or self.task_problem(context.task)
        if problem:
            raise PromptworthError(f"{self.name}: {problem}")
        if not len(train):
            raise ValueError("few-shot needs labelled examples to show; n_train is 0")
        self.use_backbone(context)
        task = context.task
        answers = (
            [refs[0] for refs in train.references]
            if task.generates
            else [task.verbalizers[label][0] for label in train.labels]
        )
        demos = [
            render_demo(self.format_, self.template_, text, answer)
            for text, answer in zip(train.texts, answers)
        ]
        self.cost_ = self.choose_demos(train, demos, context)
        return self

    def choose_demos(self, train: Split, demos: list[Demo], context: RunContext) -> TrainingCost:
        """Keep `demos` (one per row of `train`) and choose among them as `selection` says: the
        balanced draw (a generation task's first k rows), or (knn) the rows' encoder vectors.
        Returns what that cost."""
        c, task = self.config, context.task
        self.demos_ = demos
        self.demo_tokens_ = demo_tokens(self.format_, self.demos_)
        self.budget_, self.k_fit_ = self.demo_budget()
        self.k_ = c.k if c.k is not None else (GENERATION_K if task.generates else task.n_labels)
        total_params = count_params(self.model_)[1]
        cached_seconds = 0.0
        if c.selection == "random":
            drawn = (
                np.arange(min(self.k_, len(train)))
                if task.generates
                else balanced_draw(train.labels, task.n_labels, self.k_, context.seed)
            )
            self.fixed_ = self.fitting(drawn)
            artifact = shown_demos(self.format_, [self.demos_[i] for i in self.fixed_])
            n_used = len(self.fixed_)
        else:
            self.use_encoder(context)
            self.train_vectors_, cached_seconds = self.unit_vectors(train.texts)
            artifact = shown_demos(self.format_, self.demos_)  # any may be chosen
            n_used = len(train)
            total_params += count_params(self.encoder_.model)[1]
        return TrainingCost(
            trainable_params=0,
            total_params=total_params,
            train_examples=n_used,
            artifact_bytes=len(artifact.encode("utf-8")),
            cached_seconds=cached_seconds,
        )

    def use_backbone(self, context: RunContext):
        """The causal LM and the prompt format, template and label words read with it."""
        backbone = context.backbones.get(context.model, "causal-lm")
        self.model_, self.model_spec_ = backbone.model, backbone.spec
        self.format_ = PromptFormat(context.task, backbone.tokenizer, context.prompt)
        self.template_ = self.format_.shown(context.task.templates[context.prompt.template])
        generates = context.task.generates
        self.candidates_ = [] if generates else self.format_.label_candidates()
        return backbone

    def use_encoder(self, context: RunContext) -> None:
        """The encoder that finds each input's nearest demonstrations (selection=knn)."""
        from promptworth.backbones.features import FeatureCache

        self.encoder_ = context.backbones.get(context.encoder, "encoder")
        self.features_ = context.features if context.features is not None else FeatureCache()

    @classmethod
    def unsaveable(cls, params: dict) -> str | None:
        return None

    def state(self) -> SavedState:
        """The rendered demonstrations and the choice among them: the balanced draw, or (knn)
        the training rows' encoder vectors."""
        self.check_fitted()
        backbones = {"causal-lm": self.model_spec_}
        tensors = {"demo_tokens": self.demo_tokens_}
        if self.config.selection == "random":
            tensors["fixed"] = self.fixed_
        else:
            tensors["train_vectors"] = self.train_vectors_
            backbones["encoder"] = self.encoder_.spec
        demos = {"demo_turns": self.demos_, "budget": int(self.budget_), "k_fit": int(self.k_fit_)}
        return self.saved(tensors, backbones, k=self.k_, **demos)

    def restore(self, state: SavedState, context: RunContext) -> FewShot:
        self.use_backbone(context)
        meta, tensors = state.meta, state.tensors
        if "demo_turns" not in meta:
            raise PromptworthError(
                f"{self.name}: this artifact keeps its demonstrations as one text (saved by an "
                "earlier promptworth); fit it again"
            )
        self.demos_ = [(prompt, answer) for prompt, answer in meta["demo_turns"]]
        self.demo_tokens_ = np.asarray(tensors["demo_tokens"])
        self.budget_, self.k_fit_, self.k_ = meta["budget"], meta["k_fit"], meta["k"]
        if self.config.selection == "random":
            self.fixed_ = np.asarray(tensors["fixed"])
        else:
            self.use_encoder(context)
            self.train_vectors_ = np.asarray(tensors["train_vectors"])
        self.restored(state)
        return self

    def demo_budget(self) -> tuple[int, int]:
        """Tokens left for demonstrations once the longest possible test prompt and answer fit,
        and how many demonstrations of the longest possible length (max_text_tokens) fit in them.
        """
        fmt, model = self.format_, self.model_
        max_positions = model.config.max_position_embeddings
        empty = fmt.task.fill(self.template_, fmt.task.blank(""))
        text_and_answer = fmt.options.max_text_tokens + self.answer_tokens()
        test_tokens = len(fmt.encode_prompt(fmt.as_sent(empty))) + text_and_answer
        budget = max_positions - test_tokens - TOKEN_MARGIN
        if budget <= 0:
            raise ValueError(
                f"no room for demonstrations: the model reads {max_positions} positions and a "
                f"test prompt may take {test_tokens}; lower --max-text-tokens"
            )
        bare = int(demo_tokens(fmt, [(empty, "")])[0])
        return budget, budget // (bare + text_and_answer + TOKEN_MARGIN)

    def answer_tokens(self) -> int:
        """The most tokens that may follow a test prompt: the longest label word or answer."""
        if self.format_.task.generates:
            return self.format_.task.max_new_tokens
        return max(len(ids) for words in self.candidates_ for ids in words)

    def fitting(self, ranked: np.ndarray) -> np.ndarray:
        """The leading demonstrations of `ranked` whose tokens fit the context budget."""
        keep = ranked[np.cumsum(self.demo_tokens_[ranked]) <= self.budget_]
        if not len(keep):
            raise ValueError(
                f"no demonstration fits the {self.budget_} tokens the context leaves; "
                "lower --max-text-tokens"
            )
        return keep

    def unit_vectors(self, texts: list[Example]) -> tuple[np.ndarray, float]:
        """L2-normalised encoder embeddings (cosine = dot product), from the feature cache."""
        enc = self.encoder_
        namespace = (
            f"{enc.spec}@{enc.revision}/{enc.placement.dtype}/{EMBED_POOLING}/{EMBED_MAX_TOKENS}"
        )
        vectors = self.features_.get(
            namespace, texts, lambda missing: embed(enc, missing, EMBED_POOLING, EMBED_MAX_TOKENS)
        )
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12), self.features_.cost(namespace, len(texts))

    def demonstrations(self, texts: list[Example]) -> tuple[list[np.ndarray], float]:
        """The demonstrations of each input, in prompt order; and the cached embedding cost."""
        if self.config.selection == "random":
            return [self.fixed_] * len(texts), 0.0
        vectors, seconds = self.unit_vectors(texts)
        nearest = np.argsort(-(vectors @ self.train_vectors_.T), axis=1, kind="stable")
        # Most similar last: nearest to the test input (Liu et al. 2022).
        return [self.fitting(row[: self.k_])[::-1] for row in nearest], seconds

    def prompt(self, demos: np.ndarray, example: Example) -> str:
        text_cut = self.format_.truncate(example)
        body = self.format_.task.fill(self.template_, text_cut)
        return demonstrated(self.format_, [self.demos_[i] for i in demos], body)

    def predict(self, texts: list[Example]) -> Prediction:
        self.check_fitted()
        fmt, options = self.format_, self.format_.options
        demos, embed_seconds = self.demonstrations(texts)
        inputs = list(zip(demos, texts))
        if self.config.calibrate:  # content-free inputs once per distinct set of demonstrations
            demo_sets = demos[:1] if self.config.selection == "random" else demos
            blanks = [fmt.task.blank(cf) for cf in CONTENT_FREE]
            inputs += [(d, cf) for d in demo_sets for cf in blanks]
        prompt_ids = [fmt.encode_prompt(self.prompt(d, t)) for d, t in inputs]
        n_tokens = sum(len(ids) for ids in prompt_ids[: len(texts)])
        k_used = np.array([len(d) for d in demos])
        extra = {
            "selection": self.config.selection,
            "k": self.k_,
            "k_used_mean": float(k_used.mean()),
            "k_used_min": int(k_used.min()),
            "k_fit_longest": int(self.k_fit_),
            "demo_token_budget": int(self.budget_),
            "max_positions": int(self.model_.config.max_position_embeddings),
            "calibrated": self.config.calibrate,
        }
        if fmt.task.generates:
            prediction = answer_prediction(self.model_, fmt, prompt_ids)
            return replace(
                prediction,
                prompt_tokens=n_tokens,
                cached_seconds=embed_seconds,
                extra={**extra, **prediction.extra},
            )
        if options.predict == "generate":
            prediction = classify_by_generation(self.model_, fmt, prompt_ids)
            return replace(
                prediction,
                prompt_tokens=n_tokens,
                cached_seconds=embed_seconds,
                extra={**extra, **prediction.extra},
            )
        if options.predict != "rank":
            raise ValueError(f"unknown prediction mode {options.predict!r}; use rank or generate")
        if self.config.selection == "random":
            shared = common_prefix_length(prompt_ids)
            extra["prefix_tokens_cached"] = shared
            scores = score_with_prefix(
                self.model_,
                fmt.tokenizer,
                prompt_ids[0][:shared],
                [ids[shared:] for ids in prompt_ids],
                self.candidates_,
                options.batch_size,
                options.length_norm,
            )
        else:
            scores = score_candidates(
                self.model_,
                fmt.tokenizer,
                prompt_ids,
                self.candidates_,
                options.batch_size,
                options.length_norm,
            )
        scores = calibrated_scores(scores, len(texts), self.config.calibrate)
        return Prediction(
            scores.argmax(axis=1),
            prompt_tokens=n_tokens,
            cached_seconds=embed_seconds,
            extra=extra,
            scores=scores,
        )


def balanced_draw(labels: np.ndarray, n_labels: int, k: int, seed: int) -> np.ndarray:
    """k rows of the training subset spread over the labels as evenly as it allows (⌊k/L⌋ or
    ⌈k/L⌉ of each of L labels while each has rows), in prompt order: round-robin over the labels
    in a seeded order, so the label shown last (which the LM favours) is random per seed.

    Why not k rows drawn at random (the rule before): `permutation(n_train)[:k]` drew unrelated
    demonstrations at every training size (a permutation of 10 rows and one of 1,000 share
    nothing), and without regard to labels: with k = 4 over AG News's 4 labels only 4!/4^4 = 9 %
    of such draws show every label. The ladder's uncalibrated runs (0.39 / 0.39 / 0.30 at 10 /
    100 / 1,000 labels) tracked which labels the draw happened to show (five of the six draws
    repeated one label and missed another), not the pool size. Here each label's rows are taken
    in the subset's own order, which the sweep draws at random per seed and nests (subsets.py):
    the smaller subset is a prefix of the larger, so every size whose subset holds the first
    ⌈k/L⌉ rows of each label shows the same demonstrations in the same order.
    """
    per_label = [np.flatnonzero(labels == label) for label in range(n_labels)]
    return interleave(per_label, np.random.default_rng(seed))[:k]


def render_demo(fmt: PromptFormat, template: str, example: Example, answer: str) -> Demo:
    """A demonstration: the task template around the example's inputs, and its answer (the
    gold label's word, or a generation task's first reference)."""
    return fmt.task.fill(template, fmt.truncate(example)), answer


def demo_text(fmt: PromptFormat, demo: Demo) -> str:
    """A demonstration as plain text: its prompt continued by its answer."""
    prompt, answer = demo
    return prompt + fmt.completion(prompt, answer)


def shown_demos(fmt: PromptFormat, demos: list[Demo]) -> str:
    """The demonstrations as text, each followed by SEPARATOR (what an artifact stores)."""
    return "".join(demo_text(fmt, demo) + SEPARATOR for demo in demos)


def demonstrated(fmt: PromptFormat, demos: list[Demo], body: str) -> str:
    """The prompt `body` after `demos`, as the LM sees it: plain text, or a chat whose turns are
    the demonstrations (user: prompt, assistant: answer) and then `body` as the user's turn."""
    if not fmt.options.chat:
        return shown_demos(fmt, demos) + body
    return fmt.as_chat(body, demos)


def demo_tokens(fmt: PromptFormat, demos: list[Demo]) -> np.ndarray:
    """Tokens each of `demos` adds to a prompt: its text and SEPARATOR, or (chat) its two turns
    beyond the conversation without it."""
    if not fmt.options.chat:
        texts = [demo_text(fmt, demo) + SEPARATOR for demo in demos]
        return np.array([len(fmt.tokenizer(t, add_special_tokens=False).input_ids) for t in texts])
    bare = len(fmt.encode_prompt(demonstrated(fmt, [], "")))
    return np.array([len(fmt.encode_prompt(demonstrated(fmt, [d], ""))) - bare for d in demos])


def common_prefix_length(sequences: list[list[int]]) -> int:
    """Tokens every sequence starts with, leaving at least one token of each to run."""
    first = np.array(sequences[0])
    shared = min(len(s) for s in sequences) - 1
    for seq in sequences[1:]:
        differs = np.flatnonzero(first[:shared] != np.array(seq[:shared]))
        shared = int(differs[0]) if len(differs) else shared
    return max(shared, 0)


def calibrated_scores(scores: np.ndarray, n_inputs: int, calibrate: bool) -> np.ndarray:
    """Label scores of the inputs: as they are, or log p(label) - log p_cf(label) with p_cf the
    content-free average, whose softmax is p / p_cf normalised (Zhao et al. 2021).

    Rows after the first `n_inputs` are the content-free prompts, len(CONTENT_FREE) per set of
    demonstrations: one set shared by all inputs, or one per input in input order.
    """
    if not calibrate:
        return scores[:n_inputs]
    log_p = log_softmax(scores[:n_inputs])
    p_cf = np.exp(log_softmax(scores[n_inputs:])).reshape(-1, len(CONTENT_FREE), log_p.shape[1])
    return log_p - np.log(p_cf.mean(axis=1))


def log_softmax(scores: np.ndarray) -> np.ndarray:
    shifted = scores - scores.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def score_with_prefix(
    model,
    tokenizer,
    prefix_ids: list[int],
    suffix_ids: list[list[int]],
    candidates: list[list[list[int]]],
    batch_size: int,
    length_norm: bool,
) -> np.ndarray:
    """`score_candidates` of prefix + suffix for every suffix, running the shared prefix once."""
    import torch

    if not prefix_ids:
        return score_candidates(model, tokenizer, suffix_ids, candidates, batch_size, length_norm)
    device = next(model.parameters()).device
    with torch.inference_mode():
        ids = torch.tensor([prefix_ids], device=device)
        prefix_cache = output_cache(model(input_ids=ids, use_cache=True, logits_to_keep=1))
    return score_after_cache(
        model,
        tokenizer,
        prefix_cache,
        len(prefix_ids),
        suffix_ids,
        candidates,
        batch_size,
        length_norm,
    )
