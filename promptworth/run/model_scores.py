"""The generation metrics a model computes, run when a run is scored
(docs/concepts/judging.md#bertscore, docs/concepts/judging.md#llm-as-judge): their per-row scores
are stored with the run's other metrics, so analysis and reports only read them.

- BERTScore-F1 (Zhang et al. 2020) with the run's encoder, computed by the `bert-score` library
  on the model promptworth loaded (backbones/loading.py): the encoder's last layer, no idf
  weighting, no baseline rescaling; the best over a row's references, as `bert_score.score`.
  A row's score is its F1 clipped to [0, 1] (a negative cosine similarity counts as none).
- The judge: a causal LM asked, for each answer, whether it is correct given the reference
  ("yes"/"no"), scored by rank classification of the two words after the prompt, the scorer
  that classifies labels (methods/prompting.py): a verdict is the likelier word, P(yes) is kept
  beside it, and no free text is parsed. The pairwise judge asks which of two answers is better,
  once in each order; a verdict counts only if it survives the swap (analysis/agreement.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from promptworth.analysis.agreement import cohen_kappa, swap_rule
from promptworth.analysis.metrics import JUDGE_REFERENCE_METRICS, METRICS, unparsed_share
from promptworth.methods.base import PromptOptions
from promptworth.methods.prompting import PromptFormat, score_candidates
from promptworth.tasks.answers import final_answer
from promptworth.tasks.base import Example, example_slots

# Changing a judge prompt or its answer words changes every judged score: judged runs carry this
# in their config (store/config.py), so runs judged under an older protocol keep their own keys.
JUDGE_PROTOCOL = "reference-guided-yes-no-v1"
JUDGE_BATCH = 8
# Tokens of each part a judge prompt keeps: the task's input, each reference, each answer.
INPUT_TOKENS, REFERENCE_TOKENS, ANSWER_TOKENS = 384, 128, 128
POINTWISE_QUESTION = "Is the candidate answer correct given the reference answer? Answer yes or no."
PAIRWISE_QUESTION = "Which answer is better given the reference answer? Answer A or B."
VERDICT_WORDS = (("no", "No"), ("yes", "Yes"))  # label 0 = no, 1 = yes
POSITION_WORDS = (("A",), ("B",))


def bertscore_rows(encoder, outputs: list[str], references: list[tuple[str, ...]]) -> np.ndarray:
    """[n] BERTScore-F1 in [0, 1] of each output against its best reference; `encoder` is a
    loaded Backbone (its model and tokenizer). An empty output, or one against only empty
    references, scores 0 (bert_score cannot encode an empty text with transformers 5)."""
    import torch
    from bert_score.utils import bert_cos_score_idf

    pairs = [
        (row, output, ref)
        for row, (output, refs) in enumerate(zip(outputs, references, strict=True))
        for ref in refs
        if output.strip() and ref.strip()
    ]
    best = np.zeros(len(outputs))
    if not pairs:
        return best
    rows, flat_outputs, flat_refs = (list(column) for column in zip(*pairs))
    tokenizer = bounded(encoder.tokenizer, encoder.model.config)
    model = float_outputs(encoder.model)
    device = next(model.parameters()).device
    with torch.inference_mode():
        weights = IdfOne(tokenizer)
        scores = bert_cos_score_idf(
            model, flat_refs, flat_outputs, tokenizer, weights, batch_size=64, device=device
        )
    np.maximum.at(best, rows, np.clip(scores[:, 2].numpy(), 0.0, 1.0))
    return best


def bounded(tokenizer, config):
    """`tokenizer` (a shallow copy) with a `model_max_length` the encoder can read: bert_score
    truncates every text to it, and a tokenizer saved without one says 10**30."""
    import copy

    limit = getattr(config, "max_position_embeddings", None)
    if limit is None or tokenizer.model_max_length <= limit:
        return tokenizer
    tokenizer = copy.copy(tokenizer)
    tokenizer.model_max_length = limit
    return tokenizer


class IdfOne(dict):
    """BERTScore's weights without idf: 1 per token, 0 for [CLS] and [SEP] (as bert_score.score
    builds them when idf=False)."""

    def __init__(self, tokenizer):
        super().__init__({tokenizer.sep_token_id: 0.0, tokenizer.cls_token_id: 0.0})

    def __missing__(self, token: int) -> float:
        return 1.0


def float_outputs(model):
    """`model` returning its last hidden states in float32, so cosine similarities of bf16
    weights are computed at full precision."""
    import torch

    class Wrapped(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, ids, attention_mask=None, output_hidden_states=False):
            out = self.inner(ids, attention_mask=attention_mask)
            return (out[0].float(),)

    return Wrapped(model)


@dataclass
class Judge:
    """A causal LM as a judge: `backbone` is a loaded Backbone; prompts use its chat template
    when its tokenizer has one (an instruction-tuned judge), else plain text."""

    backbone: object

    @property
    def format(self) -> PromptFormat:
        tokenizer = self.backbone.tokenizer
        chat = bool(getattr(tokenizer, "chat_template", None))
        # answer_ids and encode_prompt read only the tokenizer and the chat option
        return PromptFormat(None, tokenizer, PromptOptions(chat=chat))

    def cut(self, text: str, tokens: int) -> str:
        ids = self.backbone.tokenizer(text, add_special_tokens=False).input_ids
        return text if len(ids) <= tokens else self.backbone.tokenizer.decode(ids[:tokens])

    def render(self, body: str) -> str:
        fmt = self.format
        return fmt.as_chat(body) if fmt.options.chat else f"{body}\nAnswer:"

    def context(self, example: Example, references: tuple[str, ...]) -> str:
        """The input (left out when blank) and the references a verdict is given against."""
        shown = "\n".join(example_slots(example)).strip()
        refs = " | ".join(self.cut(ref, REFERENCE_TOKENS) for ref in references)
        lines = [f"Input: {self.cut(shown, INPUT_TOKENS)}"] if shown else []
        return "\n".join([*lines, f"Reference answer: {refs}"])

    def pointwise_prompt(self, example: Example, references: tuple[str, ...], answer: str) -> str:
        candidate = self.cut(answer, ANSWER_TOKENS)
        body = f"{self.context(example, references)}\nCandidate answer: {candidate}\n"
        return self.render(body + POINTWISE_QUESTION)

    def pairwise_prompt(
        self, example: Example, references: tuple[str, ...], first: str, second: str
    ) -> str:
        a, b = self.cut(first, ANSWER_TOKENS), self.cut(second, ANSWER_TOKENS)
        body = f"{self.context(example, references)}\nAnswer A: {a}\nAnswer B: {b}\n"
        return self.render(body + PAIRWISE_QUESTION)

    def scores(self, prompts: list[str], words) -> np.ndarray:
        """[n, len(words)] log-likelihood of each word group after each prompt (rank
        classification: the best-scoring spelling of each group, in context)."""
        if not prompts:
            return np.zeros((0, len(words)))
        fmt = self.format
        ids = [fmt.encode_prompt(prompt) for prompt in prompts]
        candidates = [[fmt.answer_ids(prompts[0], w) for w in group] for group in words]
        return score_candidates(
            self.backbone.model, fmt.tokenizer, ids, candidates, JUDGE_BATCH, length_norm=False
        )

    def p_yes(
        self, examples: list[Example], references: list[tuple[str, ...]], answers: list[str]
    ) -> np.ndarray:
        """[n] P(yes) of each answer, from the yes/no log-likelihoods; the verdict is > 0.5."""
        rows = zip(examples, references, answers, strict=True)
        prompts = [self.pointwise_prompt(x, refs, a) for x, refs, a in rows]
        return softmax_yes(self.scores(prompts, VERDICT_WORDS))

    def pairwise(
        self,
        examples: list[Example],
        references: list[tuple[str, ...]],
        first: list[str],
        second: list[str],
    ) -> np.ndarray:
        """Per row, FIRST, SECOND or FLIPPED (analysis/agreement.py): each pair is judged with
        `first` shown as A, then with `second` shown as A."""

        def prefers_a(shown_a: list[str], shown_b: list[str]) -> np.ndarray:
            rows = zip(examples, references, shown_a, shown_b, strict=True)
            prompts = [self.pairwise_prompt(x, refs, a, b) for x, refs, a, b in rows]
            scores = self.scores(prompts, POSITION_WORDS)
            return scores[:, 0] > scores[:, 1]

        return swap_rule(prefers_a(first, second), prefers_a(second, first))


def softmax_yes(scores: np.ndarray) -> np.ndarray:
    """P(yes) of [n, 2] (no, yes) log-likelihoods, renormalised over the two words."""
    shifted = scores - scores.max(axis=1, keepdims=True)
    weights = np.exp(shifted)
    return weights[:, 1] / weights.sum(axis=1)


@dataclass
class ModelScorers:
    """What the model-scored metrics of a run use: the run's backbone cache, its encoder (for
    BERTScore) and its judge (a causal LM spec; None when the task is not judged)."""

    backbones: object  # promptworth.backbones.BackboneCache
    encoder: str
    judge_model: str | None = None

    def rows(self, key: str, test, outputs: list[str]) -> tuple[np.ndarray, dict]:
        """Metric `key`'s per-row scores of `outputs` on the `test` split, and what else it
        measured (the judge's P(yes) per row)."""
        needs = METRICS[key].needs
        answers = [final_answer(output) for output in outputs]  # a chain's conclusion
        if needs == "encoder":
            encoder = self.backbones.get(self.encoder, "encoder")
            return bertscore_rows(encoder, answers, test.references), {}
        if self.judge_model is None:
            raise ValueError("the judge metric needs a judge model (--judge-model)")
        judge = Judge(self.backbones.get(self.judge_model, "causal-lm"))
        p_yes = judge.p_yes(test.texts, test.references, answers)
        return (p_yes > 0.5).astype(float), {"judge_p_yes": p_yes.round(6).tolist()}

    def score(self, keys: list[str], test, outputs: list[str]) -> tuple[dict, dict]:
        """Per key: (row scores, unparsed share), as analysis.metrics.text_row_scores; and the
        extras: each metric's seconds (`{key}_seconds`, loading left out: the judge's cost is
        counted apart from the method's) and the judge's P(yes) per row."""
        by_metric, extra = {}, {}
        for key in keys:
            loading_before, start = self.backbones.load_seconds, time.perf_counter()
            rows, measured = self.rows(key, test, outputs)
            loading = self.backbones.load_seconds - loading_before
            extra[f"{key}_seconds"] = round(time.perf_counter() - start - loading, 3)
            extra.update(measured)
            by_metric[key] = ([float(v) for v in rows], unparsed_share(key, outputs))
        return by_metric, extra


def judge_agreement(row_scores: dict[str, list[float]]) -> dict[str, float | None]:
    """Cohen's kappa of the judge's 0/1 verdicts with each 0/1 metric the task has
    (`judge_kappa_{metric}`; None when undefined, e.g. both constant)."""
    if "judge" not in row_scores:
        return {}
    verdicts = np.asarray(row_scores["judge"]) > 0.5
    return {
        f"judge_kappa_{key}": cohen_kappa(verdicts, np.asarray(row_scores[key]) > 0.5)
        for key in JUDGE_REFERENCE_METRICS
        if key in row_scores
    }
