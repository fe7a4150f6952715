"""PEFT methods on the prompt-based objective: prompt tuning, prefix tuning, p-tuning, (IA)3, QLoRA.

What is specific to them: virtual tokens change how a model must be scored (PEFT rebuilds them
on every forward call), the soft prompt starts from the template's words, the artifact is what
PEFT saves, the shared backbone is never touched, and qlora refuses to run without 4-bit support.
"""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch

from promptworth.errors import PromptworthError
from promptworth.methods import make_method, method_class
from promptworth.methods.base import NO_LABEL, PromptOptions, SavedState
from promptworth.methods.batching import same_length_batches
from promptworth.methods.generation import Decoding, generate_texts
from promptworth.methods.prompt_tuning import instruction_words
from promptworth.methods.prompting import (
    PromptFormat,
    predict_with_lm,
    score_after_cache,
    score_candidates,
    virtual_token_cache,
)
from promptworth.methods.qlora import QLoRA, unavailable_reason

VIRTUAL = ["prompt-tuning", "prefix-tuning", "p-tuning"]
ADAPTERS = [*VIRTUAL, "ia3"]


def tiny(name: str, **params):
    return make_method(name, **{**method_class(name).test_params, **params})


def perturbed_model(name, backbone, context):
    """The method's untrained PEFT model with seeded noise on its adapter, so it matters."""
    model = tiny(name).trainable_model(backbone, context)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for param in model.parameters():
            if param.requires_grad:
                param.add_(0.5 * torch.randn(param.shape, generator=generator))
    return model.eval()


def reference_scores(model, prompt_ids, candidates) -> np.ndarray:
    """One unpadded forward pass per prompt and answer, summing the answer's log-probs."""
    scores = np.full((len(prompt_ids), len(candidates)), -np.inf)
    with torch.no_grad():
        for row, prompt in enumerate(prompt_ids):
            for label, words in enumerate(candidates):
                for word in words:
                    ids = torch.tensor([prompt + word])
                    logprobs = torch.log_softmax(model(input_ids=ids).logits[0].float(), -1)
                    start = logprobs.shape[0] - ids.shape[1] + len(prompt) - 1  # after virtual
                    value = sum(logprobs[start + k, t].item() for k, t in enumerate(word))
                    scores[row, label] = max(scores[row, label], value)
    return scores


@pytest.fixture
def scoring_case(task, backbones, tiny_lm_dir, make_context):
    """Prompts of varied length (so batches are padded) and every word as its own candidate,
    so multi-token words are compared too, not hidden behind a better one-token word."""
    backbone = backbones.get(tiny_lm_dir, "causal-lm")
    fmt = PromptFormat(task, backbone.tokenizer, PromptOptions())
    texts = [*task.test.texts[:10], "a much longer text about the match " * 4]
    prompt_ids = [fmt.encode_prompt(fmt.prompt(t)) for t in texts]
    candidates = [[word] for words in fmt.label_candidates() for word in words]
    assert max(len(w[0]) for w in candidates) > 1, "the case needs a multi-token answer"
    return backbone, make_context(), prompt_ids, candidates


@pytest.mark.parametrize("name", VIRTUAL)
def test_scoring_after_the_virtual_token_cache_matches_reference(name, scoring_case):
    backbone, context, prompt_ids, candidates = scoring_case
    model = perturbed_model(name, backbone, context)
    expected = reference_scores(model, prompt_ids, candidates)
    cache = virtual_token_cache(model)
    n_virtual = model.active_peft_config.num_virtual_tokens
    assert cache.get_seq_length() == n_virtual
    for batch_size in (1, 4, 16):  # left padding after the virtual tokens must not change a score
        scores = score_after_cache(
            model.get_base_model(),
            backbone.tokenizer,
            cache,
            n_virtual,
            prompt_ids,
            candidates,
            batch_size,
            False,
        )
        np.testing.assert_allclose(scores, expected, atol=1e-4)
    assert cache.get_seq_length() == n_virtual  # each batch continued a copy


def test_kv_cache_scoring_matches_reference_without_virtual_tokens(scoring_case):
    backbone, context, prompt_ids, candidates = scoring_case
    model = perturbed_model("ia3", backbone, context)
    scores = score_candidates(model, backbone.tokenizer, prompt_ids, candidates, 4, False)
    np.testing.assert_allclose(scores, reference_scores(model, prompt_ids, candidates), atol=1e-4)
    assert not method_class("ia3").virtual_tokens


@pytest.mark.filterwarnings("ignore:Position ids are not supported")
@pytest.mark.parametrize("name", ["prompt-tuning", "p-tuning"])
def test_kv_cache_scoring_is_wrong_with_virtual_tokens(name, scoring_case):
    """Why these methods score without a cache: PEFT re-inserts the virtual tokens on the
    continuation call. If this starts failing, PEFT changed. (Prefix tuning's fresh prefix
    cache now yields to the caller's `cache`, see backbones/adapters.py; it still scores
    without one, as its padding needs.)"""
    backbone, context, prompt_ids, candidates = scoring_case
    model = perturbed_model(name, backbone, context)
    cached = score_candidates(model, backbone.tokenizer, prompt_ids, candidates, 4, False)
    assert np.abs(cached - reference_scores(model, prompt_ids, candidates)).max() > 1e-2
    assert method_class(name).virtual_tokens


@pytest.mark.parametrize("name", VIRTUAL)
def test_predict_ranks_by_full_sequence_scores(name, task, make_context):
    method = tiny(name).fit(task.train.subset(range(24)), make_context())
    fmt = method.format_
    prompt_ids = [fmt.encode_prompt(fmt.prompt(t)) for t in task.test.texts]
    expected = reference_scores(method.model_, prompt_ids, fmt.label_candidates()).argmax(1)
    prediction = method.predict(task.test.texts)
    np.testing.assert_array_equal(prediction.labels, expected)
    # Every example also pays for the virtual tokens the model attends to: as many as the
    # template's leading words they replace, so as many prompt tokens as zero-shot reads.
    n_virtual = method.n_virtual_ * len(prompt_ids)
    assert prediction.prompt_tokens == sum(map(len, prompt_ids)) + n_virtual
    plain = PromptFormat(task, fmt.tokenizer, fmt.options)
    assert prediction.prompt_tokens == sum(
        len(plain.encode_prompt(plain.prompt(t))) for t in task.test.texts
    )


@pytest.mark.parametrize("name", VIRTUAL)
def test_generation_without_padding_matches_one_by_one(name, scoring_case):
    backbone, context, prompt_ids, _ = scoring_case
    model = perturbed_model(name, backbone, context)
    tok = backbone.tokenizer
    together = generate_texts(model, tok, prompt_ids, Decoding(3), 8, padding=False)
    alone = [generate_texts(model, tok, [p], Decoding(3), 1)[0] for p in prompt_ids]
    assert together == alone


@pytest.mark.parametrize("name", VIRTUAL)
def test_generate_mode_predicts(name, task, make_context):
    context = make_context(prompt=PromptOptions(batch_size=8, predict="generate"))
    prediction = tiny(name).fit(task.train.subset(range(12)), context).predict(task.test.texts)
    assert prediction.labels.shape == (len(task.test),)
    assert set(prediction.labels.tolist()) <= set(range(task.n_labels)) | {NO_LABEL}


def test_same_length_batches_need_no_padding():
    lengths = [3, 1, 3, 2, 3, 1, 3]
    batches = same_length_batches(lengths, 2)
    assert sorted(np.concatenate(batches).tolist()) == list(range(len(lengths)))
    for batch in batches:
        assert 1 <= len(batch) <= 2 and len({lengths[i] for i in batch}) == 1


def test_text_init_starts_from_the_instruction_words(backbones, tiny_lm_dir, make_context):
    context = make_context()
    assert instruction_words(context) == "Text: Topic:"  # template "Text: {text}\nTopic:"
    backbone = backbones.get(tiny_lm_dir, "causal-lm")
    method = tiny("prompt-tuning", init="text", num_virtual_tokens=7)
    soft = method.trainable_model(backbone, context).prompt_encoder["default"].embedding.weight
    ids = backbone.tokenizer("Text: Topic:").input_ids
    ids = (ids * 7)[:7]  # PEFT repeats the words to fill the virtual tokens
    words = backbone.model.get_input_embeddings().weight[ids]
    torch.testing.assert_close(soft.detach(), words.detach().float())


def test_p_tuning_artifact_is_the_virtual_tokens_not_the_encoder(task, make_context):
    # cv_folds=0: trained on the budget, never the kept start (which serves the plain prompt)
    method = tiny("p-tuning", cv_folds=0).fit(task.train.subset(range(12)), make_context())
    hidden = method.model_.get_base_model().config.hidden_size
    virtual = method.n_virtual_ * hidden
    assert method.cost_.artifact_bytes == virtual * 4  # fp32 embeddings, as PEFT saves them
    assert method.cost_.trainable_params > virtual  # the MLP encoder trains too


def test_prefix_tuning_trains_keys_and_values_for_every_layer(task, make_context):
    method = tiny("prefix-tuning", cv_folds=0).fit(task.train.subset(range(12)), make_context())
    config = method.model_.get_base_model().config
    kv_width = config.num_key_value_heads * config.hidden_size // config.num_attention_heads
    per_token = config.num_hidden_layers * 2 * kv_width
    assert method.cost_.trainable_params == method.n_virtual_ * per_token
    assert method.cost_.artifact_bytes == method.cost_.trainable_params * 4


@pytest.mark.parametrize("name", ADAPTERS)
def test_shared_backbone_is_never_modified(name, task, backbones, tiny_lm_dir, make_context):
    model = backbones.get(tiny_lm_dir, "causal-lm").model
    before = {n: (p.requires_grad, p.detach().clone()) for n, p in model.named_parameters()}
    tiny(name).fit(task.train.subset(range(12)), make_context())
    for n, p in model.named_parameters():
        assert p.requires_grad == before[n][0], n
        torch.testing.assert_close(p.detach(), before[n][1])


STARTS = [
    ("prompt-tuning", {}),
    ("prefix-tuning", {}),
    ("prefix-tuning", {"projection": True}),
    ("p-tuning", {}),
    ("p-tuning", {"encoder": "LSTM"}),
]


@pytest.mark.parametrize("chat", [False, True])
@pytest.mark.parametrize(("name", "params"), STARTS)
def test_untrained_virtual_tokens_score_as_zero_shot(name, params, chat, task, make_context):
    """init=template: the virtual tokens replace the template's leading words (with the chat
    header when there is one) and start as exactly them, so step 0 is the zero-shot prompt."""
    context = make_context(prompt=PromptOptions(batch_size=4, chat=chat))
    backbone = context.backbones.get(context.model, "causal-lm")
    method = tiny(name, **params)
    fmt = method.prompt_format(backbone, context)
    model = method.trainable_model(backbone, context).eval()
    n_virtual = method.n_virtual(model)
    assert n_virtual == len(fmt.head) > 0
    texts = [*task.test.texts[:8], "a much longer text about the match " * 4]
    untrained = predict_with_lm(model, fmt, texts, n_virtual)
    zero_shot = make_method("zero-shot").fit(task.train, context).predict(texts)
    np.testing.assert_allclose(untrained.scores, zero_shot.scores, atol=1e-5)
    assert untrained.prompt_tokens == zero_shot.prompt_tokens


def test_template_init_replaces_the_leading_words(backbones, tiny_lm_dir, make_context):
    context = make_context()
    backbone = backbones.get(tiny_lm_dir, "causal-lm")
    fmt = tiny("prefix-tuning").prompt_format(backbone, context)
    tokenizer = backbone.tokenizer
    assert fmt.head == tokenizer("Text:").input_ids  # the space stays with the text
    prompt = fmt.prompt("the team won")
    assert tokenizer.decode(fmt.encode_prompt(prompt)) == " the team won\nTopic:"


@pytest.mark.parametrize("name", VIRTUAL)
def test_a_template_without_leading_words_is_refused(name, task, make_context):
    context = make_context(prompt=PromptOptions(template=1))  # "{text} is about"
    with pytest.raises(PromptworthError, match=r"template 1 \('\{text\} is about'\) has none"):
        tiny(name).fit(task.train.subset(range(12)), context)


@pytest.mark.parametrize("name", VIRTUAL)
def test_template_init_takes_its_count_from_the_words(name):
    with pytest.raises(PromptworthError, match="one virtual token per token"):
        make_method(name, num_virtual_tokens=5)
    make_method(name, num_virtual_tokens=5, init="random" if name != "prompt-tuning" else "vocab")


needs_no_4bit = pytest.mark.skipif(
    unavailable_reason("cuda" if torch.cuda.is_available() else "cpu") is None,
    reason="this machine can train 4-bit: the refusal does not apply",
)


@needs_no_4bit
def test_qlora_refuses_without_4bit_support(task, make_context):
    with pytest.raises(PromptworthError, match="qlora needs a CUDA GPU with bitsandbytes") as error:
        QLoRA(**QLoRA.test_params).fit(task.train.subset(range(12)), make_context())
    assert "use prompt-lora" in str(error.value)


@needs_no_4bit
def test_qlora_refuses_before_loading_any_model(task, make_context):
    context = make_context(model="/no/such/model")  # loading it would raise OSError instead
    with pytest.raises(PromptworthError, match="qlora needs a CUDA GPU"):
        QLoRA().fit(task.train.subset(range(12)), context)
    with pytest.raises(PromptworthError, match="qlora needs a CUDA GPU"):
        QLoRA.check_device("cpu")  # what a sweep can call at plan time
    with pytest.raises(PromptworthError, match="qlora needs a CUDA GPU"):  # what predict calls
        QLoRA().restore(SavedState(), context)


@pytest.mark.parametrize("double_quant", [True, False])
def test_qlora_saves_the_quantization_it_loads_the_base_with(double_quant):
    """The recipe an artifact keeps is JSON and is what bitsandbytes is given, at fit and at
    load alike."""
    from promptworth.methods.qlora import bnb_config, quantization_recipe

    config = QLoRA(double_quant=double_quant).config
    recipe = quantization_recipe(config, "bfloat16")
    assert json.loads(json.dumps(recipe)) == recipe
    built = bnb_config(recipe)
    assert built.load_in_4bit and built.bnb_4bit_quant_type == "nf4"
    assert built.bnb_4bit_use_double_quant is double_quant
    assert built.bnb_4bit_compute_dtype == torch.bfloat16


def test_qlora_names_missing_bitsandbytes(monkeypatch):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "bitsandbytes" else find_spec(n, *a)
    )
    assert "pip install bitsandbytes" in unavailable_reason("cuda")


def test_qlora_keeps_its_adapter_unmerged_by_default():
    assert QLoRA().get_params()["merge"] is False


def test_qlora_refuses_an_artifact_quantized_otherwise(make_context, monkeypatch):
    """Before any model loads (the model does not exist): the saved recipe is not the one this
    restore would use (another compute dtype)."""
    from promptworth.methods.qlora import quantization_recipe

    monkeypatch.setattr(QLoRA, "check_device", classmethod(lambda cls, device: None))
    context = make_context(model="/no/such/model")
    other = "float16" if context.backbones.placement.dtype != "float16" else "bfloat16"
    saved = SavedState(meta={"quantization": quantization_recipe(QLoRA().config, other)})
    with pytest.raises(PromptworthError, match="qlora: the model was quantized as"):
        QLoRA().restore(saved, context)
