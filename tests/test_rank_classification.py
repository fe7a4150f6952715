"""Rank classification: known answers on a hand-made bigram LM, the leading-space case, and
agreement of the KV-cache scorer with plain full-sequence scoring."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from promptworth.methods.base import NO_LABEL, PromptOptions
from promptworth.methods.generation import map_answer
from promptworth.methods.prompting import PromptFormat, score_candidates
from promptworth.testing import tiny_tokenizer


class BigramCache:
    """Stands in for a KV cache: the bigram model needs none, but the scorer crops it."""

    def __init__(self):
        self.cropped = 0

    def crop(self, n: int) -> None:
        self.cropped += n


class BigramLM(torch.nn.Module):
    """next-token logits = table[current token]: every probability is known in advance."""

    def __init__(self, table: torch.Tensor):
        super().__init__()
        self.table = torch.nn.Parameter(table, requires_grad=False)

    def forward(
        self,
        input_ids,
        attention_mask=None,
        position_ids=None,
        past_key_values=None,
        use_cache=False,
        logits_to_keep=0,
    ):
        logits = self.table[input_ids]
        if logits_to_keep:
            logits = logits[:, -logits_to_keep:]
        return SimpleNamespace(logits=logits, past_key_values=past_key_values or BigramCache())


@pytest.fixture(scope="module")
def tokenizer():
    return tiny_tokenizer("causal-lm")


def uniform_table(vocab: int) -> torch.Tensor:
    return torch.zeros(vocab, vocab)


def test_known_log_likelihood(tokenizer, task):
    fmt = PromptFormat(task, tokenizer, PromptOptions())
    candidates = fmt.label_candidates()
    table = uniform_table(len(tokenizer))
    last_prompt_token = fmt.encode_prompt(fmt.prompt("x"))[-1]
    science = candidates[2][0]
    table[last_prompt_token, science[0]] = 5.0  # favour the first token of " science"
    scores = score_candidates(
        BigramLM(table),
        tokenizer,
        [fmt.encode_prompt(fmt.prompt("x"))],
        candidates,
        batch_size=4,
        length_norm=False,
    )
    # Expected, by hand: log-softmax of one row per scored token.
    log_probs = torch.log_softmax(table, dim=-1)
    expected = []
    for words in candidates:  # a label scores as its best verbaliser word
        expected.append(
            max(
                log_probs[last_prompt_token, ids[0]].item()
                + sum(log_probs[a, b].item() for a, b in itertools.pairwise(ids))
                for ids in words
            )
        )
    np.testing.assert_allclose(scores[0], expected, rtol=1e-5)
    assert scores[0].argmax() == 2


def test_length_norm_divides_by_token_count(tokenizer, task):
    fmt = PromptFormat(task, tokenizer, PromptOptions())
    candidates = fmt.label_candidates()
    prompt = [fmt.encode_prompt(fmt.prompt("x"))]
    model = BigramLM(uniform_table(len(tokenizer)))
    summed = score_candidates(model, tokenizer, prompt, candidates, 4, length_norm=False)
    normed = score_candidates(model, tokenizer, prompt, candidates, 4, length_norm=True)
    # Under a uniform model every token costs the same, so the mean per token is equal for all
    # words while the sum favours the shortest word.
    per_token = -np.log(len(tokenizer))
    np.testing.assert_allclose(normed[0], per_token, rtol=1e-6)
    shortest = [min(len(ids) for ids in words) for words in candidates]
    np.testing.assert_allclose(summed[0], per_token * np.array(shortest), rtol=1e-6)


def test_leading_space_follows_the_prompt(tokenizer, task):
    """After "Topic:" the label is " sports" (space); after a chat template's newline, "sports"."""
    plain = PromptFormat(task, tokenizer, PromptOptions(chat=False))
    chat = PromptFormat(task, tokenizer, PromptOptions(chat=True))
    assert plain.prompt("x").endswith("Topic:") and chat.prompt("x").endswith("\n")
    plain_ids = plain.label_candidates()[0][0]
    chat_ids = chat.label_candidates()[0][0]
    assert plain_ids == tokenizer(" sports", add_special_tokens=False).input_ids
    assert chat_ids == tokenizer("sports", add_special_tokens=False).input_ids
    assert plain_ids != chat_ids


def test_scoring_the_wrong_variant_changes_the_answer(tokenizer, task):
    """A model that puts " business" (with space) first after ':' but "sports" (no space) first
    after a newline: in-context tokens pick business for the plain prompt, sports for chat."""
    table = uniform_table(len(tokenizer))
    colon = tokenizer(":", add_special_tokens=False).input_ids[-1]
    newline = tokenizer("\n", add_special_tokens=False).input_ids[-1]
    table[colon, tokenizer(" business", add_special_tokens=False).input_ids[0]] = 8.0
    table[colon, tokenizer("sports", add_special_tokens=False).input_ids[0]] = 9.0
    table[newline, tokenizer("sports", add_special_tokens=False).input_ids[0]] = 8.0
    table[newline, tokenizer(" business", add_special_tokens=False).input_ids[0]] = 9.0
    model = BigramLM(table)
    for chat, expected in ((False, 1), (True, 0)):
        fmt = PromptFormat(task, tokenizer, PromptOptions(chat=chat))
        scores = score_candidates(
            model,
            tokenizer,
            [fmt.encode_prompt(fmt.prompt("x"))],
            fmt.label_candidates(),
            4,
            length_norm=False,
        )
        assert scores[0].argmax() == expected


def full_sequence_scores(model, fmt: PromptFormat, texts: list[str]) -> np.ndarray:
    """Reference scorer: one plain forward per (text, label), no cache, no padding."""
    out = np.zeros((len(texts), fmt.task.n_labels))
    for i, text in enumerate(texts):
        prompt_ids = fmt.encode_prompt(fmt.prompt(text))
        for label, words in enumerate(fmt.label_candidates()):
            best = -np.inf
            for ids in words:
                seq = torch.tensor([prompt_ids + ids])
                with torch.no_grad():
                    logp = torch.log_softmax(model(input_ids=seq).logits[0].float(), dim=-1)
                positions = range(len(prompt_ids) - 1, len(prompt_ids) + len(ids) - 1)
                best = max(best, sum(logp[p, t].item() for p, t in zip(positions, ids)))
            out[i, label] = best
    return out


@pytest.mark.parametrize("chat", [False, True])
def test_kv_cache_scoring_matches_full_sequences(backbones, tiny_lm_dir, task, chat):
    backbone = backbones.get(tiny_lm_dir, "causal-lm")
    fmt = PromptFormat(task, backbone.tokenizer, PromptOptions(chat=chat))
    texts = task.test.texts[:6]  # different lengths: exercises left padding in a batch
    prompts = [fmt.encode_prompt(fmt.prompt(t)) for t in texts]
    cached = score_candidates(
        backbone.model,
        backbone.tokenizer,
        prompts,
        fmt.label_candidates(),
        batch_size=4,
        length_norm=False,
    )
    np.testing.assert_allclose(
        cached, full_sequence_scores(backbone.model, fmt, texts), rtol=1e-4, atol=1e-4
    )


def test_map_answer_takes_the_first_verbaliser_word():
    verbalizers = [["World"], ["Sports"], ["Business"], ["Sci/Tech", "Science"]]
    assert map_answer(" Sports news", verbalizers) == 1
    assert map_answer("business and world", verbalizers) == 2
    assert map_answer(" science", verbalizers) == 3
    assert map_answer(" unrelated", verbalizers) == NO_LABEL
