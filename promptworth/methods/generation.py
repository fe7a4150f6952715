"""Batched text generation from a causal LM: the one helper every generating method calls.

Prompts are left-padded and batched by length, `model.generate` keeps the KV cache, decoding
is greedy unless a temperature is given (then sampled from a seeded generator), and the text
is cut at the first stop string. Generation runs on weights held in the serving dtype, never
under autocast: autocast re-casts every weight at every decoding step, which made greedy
generation with a 135M-parameter model 2.5x slower at batch 8 than bf16 weights
(`serving_copy` casts a trained model's fp32 weights once instead).
"""

from __future__ import annotations

import contextlib
import copy
import re
import time
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from promptworth.backbones.adapters import upstream_noise
from promptworth.backbones.device import Placement, torch_dtype
from promptworth.methods.base import NO_LABEL, Prediction
from promptworth.methods.batching import left_padded, length_batches, same_length_batches

if TYPE_CHECKING:
    from promptworth.methods.prompting import PromptFormat
from promptworth.tasks.answers import ANSWER_TRIGGER, final_answer
from promptworth.tasks.base import UNLABELLED, Task


@dataclass(frozen=True)
class Decoding:
    """How to continue a prompt: greedy when `temperature` is 0, else sampled with `seed`."""

    max_new_tokens: int
    stop: tuple[str, ...] = ()  # the text ends before the first of these
    temperature: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")


def answer_start(text: str) -> str:
    """`text` without its leading white space and one colon that completes the cue it follows
    ("Therefore, the answer is" + ":"): an answer that starts on the next line is not empty."""
    return text.lstrip().removeprefix(":").lstrip()


def cut_at_stop(text: str, stop: tuple[str, ...]) -> str:
    """`text` up to the earliest stop string (all of it when none occurs). Callers pass it
    from its `answer_start`: an answer that starts on a new line is not empty."""
    ends = [text.find(s) for s in stop if s and s in text]
    return text[: min(ends)] if ends else text


def serving_copy(model, placement: Placement):
    """`model` with its floating-point weights in the placement's dtype: itself when they
    already are (a frozen backbone), else a cast copy (a trained model's fp32 master weights),
    so generation never needs autocast."""

    dtype = torch_dtype(placement.dtype)
    weights = next(model.parameters())
    if weights.dtype == dtype or not weights.is_floating_point():
        return model
    return copy.deepcopy(model).to(dtype)


@contextlib.contextmanager
def no_autocast(device):
    import torch

    with torch.autocast(device_type=device.type, enabled=False):
        yield


@dataclass
class Generated:
    """Continuations of prompts: the texts (cut at the stop strings) and how many tokens each
    took to generate (a stop string's overshoot included: the model computed them)."""

    texts: list[str]
    new_tokens: list[int]


def generate_texts(*args, **kwargs) -> list[str]:
    """The texts of `generate` (its arguments), for callers that need no token counts."""
    return generate(*args, **kwargs).texts


def generate(
    model,
    tokenizer,
    prompt_ids: list[list[int]],
    decoding: Decoding,
    batch_size: int,
    padding: bool = True,
) -> Generated:
    """One continuation per prompt, decoded without special tokens and cut at `decoding.stop`.

    Greedy outputs do not depend on the batching (left padding with masked pads and positions
    from the mask). `padding=False` batches only prompts of equal length, for models whose
    virtual tokens left padding would separate from the text (PEFT prompt learning)."""
    import torch

    texts: list[str] = [""] * len(prompt_ids)
    new_tokens = [0] * len(prompt_ids)
    device = next(model.parameters()).device
    batches = length_batches if padding else same_length_batches
    sampling = decoding.temperature > 0
    options = {"do_sample": True, "temperature": decoding.temperature} if sampling else {}
    if not sampling:  # the model's own sampling defaults would otherwise warn beside greedy
        options = {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
    if decoding.stop:
        options["stopping_criteria"] = [StopAfterText(tokenizer, decoding.stop)]
    generator = torch.Generator(device=device).manual_seed(decoding.seed) if sampling else None
    with torch.inference_mode(), no_autocast(device), upstream_noise():
        for batch in batches([len(p) for p in prompt_ids], batch_size):
            ids, mask = left_padded(tokenizer, [prompt_ids[i] for i in batch], device)
            if decoding.stop:
                options["stopping_criteria"][0].start = ids.shape[1]
            with seeded(generator):
                out = model.generate(
                    input_ids=ids,
                    attention_mask=mask,
                    max_new_tokens=decoding.max_new_tokens,
                    pad_token_id=tokenizer.pad_token_id,
                    **options,
                )
            for row, index in enumerate(batch):
                continuation = out[row, ids.shape[1] :]
                text = tokenizer.decode(continuation, skip_special_tokens=True)
                texts[index] = cut_at_stop(answer_start(text), decoding.stop)
                new_tokens[index] = generated_length(continuation.tolist(), tokenizer.pad_token_id)
    return Generated(texts, new_tokens)


def generated_length(continuation: list[int], pad: int | None) -> int:
    """Tokens a row generated: its continuation up to the pads a finished row is filled with."""
    return continuation.index(pad) if pad in continuation else len(continuation)


class StopAfterText:
    """A row of a batch is done once its continuation, from its `answer_start`, holds a stop
    string (transformers' own stop strings would end an answer at a leading newline)."""

    def __init__(self, tokenizer, stop: tuple[str, ...]):
        self.tokenizer, self.stop, self.start = tokenizer, stop, 0

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        texts = self.tokenizer.batch_decode(input_ids[:, self.start :], skip_special_tokens=True)
        done = [any(s in answer_start(text) for s in self.stop) for text in texts]
        return torch.tensor(done, device=input_ids.device)


@contextlib.contextmanager
def seeded(generator):
    """Sampling draws from torch's global generator; fork it and seed it from `generator`, so
    a run's samples depend on its seed only and leave the global state as they found it."""
    import torch

    if generator is None:
        yield
        return
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


ANSWER_STOP = ("\n",)  # a generation task's answer is one line: a summary, a short answer


@dataclass
class Step:
    """One generation call per row of a technique (answer, critique, revision, a chain's step):
    what each row was asked and wrote, the tokens it read and generated, and the step's time."""

    name: str
    prompts: list[str]
    outputs: list[str]
    prompt_tokens: list[int]
    new_tokens: list[int]
    seconds: float  # the whole batch's wall time


def run_step(
    model,
    fmt: PromptFormat,
    name: str,
    prompts: list[str],
    decoding: Decoding,
    prompt_ids: list[list[int]] | None = None,
    padding: bool = True,
) -> Step:
    """`prompts` continued by `decoding`, batched; `prompt_ids` when the caller encoded them."""
    ids = [fmt.encode_prompt(p) for p in prompts] if prompt_ids is None else prompt_ids
    start = time.perf_counter()
    out = generate(model, fmt.tokenizer, ids, decoding, fmt.options.batch_size, padding)
    seconds = time.perf_counter() - start
    outputs = [text.strip() for text in out.texts]
    return Step(name, prompts, outputs, [len(i) for i in ids], out.new_tokens, seconds)


def step_trace(step: Step, row: int) -> dict:
    """One row's record of `step`; its seconds are the batch's share per row."""
    return {
        "step": step.name,
        "prompt": step.prompts[row],
        "output": step.outputs[row],
        "answer": final_answer(step.outputs[row]),
        "prompt_tokens": step.prompt_tokens[row],
        "output_tokens": step.new_tokens[row],
        "seconds": round(step.seconds / len(step.prompts), 4),
    }


def steps_prediction(outputs: list[str], steps: list[Step], **per_row: list) -> Prediction:
    """The answers `outputs` of a technique that ran `steps` (the first one's prompt is the
    row's prompt): tokens read and generated and calls summed over the steps, and every step
    of every row in their traces beside any `per_row` lists (votes)."""
    rows = range(len(outputs))
    kept = traces(
        steps[0].prompts,
        outputs,
        steps=[[step_trace(step, row) for step in steps] for row in rows],
        **per_row,
    )
    return texts_prediction(
        outputs,
        prompt_tokens=sum(sum(step.prompt_tokens) for step in steps),
        generated_tokens=sum(sum(step.new_tokens) for step in steps),
        calls=sum(len(step.prompts) for step in steps),
        extra={"traces": kept},
    )


def answer_prediction(
    model, fmt: PromptFormat, prompt_ids: list[list[int]], padding: bool = True
) -> Prediction:
    """A generation task's answers: greedy, at most the task's max_new_tokens, one line."""
    decoding = Decoding(max_new_tokens=fmt.task.max_new_tokens, stop=ANSWER_STOP)
    prompts = [fmt.tokenizer.decode(ids, skip_special_tokens=True) for ids in prompt_ids]
    step = run_step(model, fmt, "answer", prompts, decoding, prompt_ids, padding)
    return steps_prediction(step.outputs, [step])


def traces(prompts: list[str], outputs: list[str], **per_row: list) -> list[dict]:
    """What a run keeps of every test row (extra["traces"], browsable in report.html): the
    prompt, the output, the answer the text metrics read from it (`final_answer`), and any
    `per_row` lists (votes, samples, steps)."""
    return [
        {
            "prompt": prompt,
            "output": output.strip(),
            "answer": final_answer(output.strip()),
            **{key: values[row] for key, values in per_row.items()},
        }
        for row, (prompt, output) in enumerate(zip(prompts, outputs))
    ]


def texts_prediction(texts: list[str], **fields) -> Prediction:
    """A Prediction of answer texts: no labels (UNLABELLED), empty answers counted unmapped."""
    labels = np.full(len(texts), UNLABELLED, dtype=int)
    empty = sum(not text.strip() for text in texts)
    return Prediction(labels, n_unmapped=empty, texts=[t.strip() for t in texts], **fields)


# Tokens an answer may take beyond its label word's own: a leading space or newline, a full stop.
ANSWER_SLACK = 2
UNMAPPED_SHOWN = 10  # the most frequent unmapped outputs a run keeps


def map_answer(answer: str, verbalizers: list[list[str]]) -> int:
    """The label whose verbaliser word comes first in the answer, as a whole word (case
    ignored: "sports" is not read inside "esports"), or NO_LABEL. At equal positions the
    longer word wins ("science news" over "science")."""
    best_label, best = NO_LABEL, (len(answer) + 1, 0)
    for label, words in enumerate(verbalizers):
        for word in words:
            found = re.search(rf"(?<!\w){re.escape(word.strip())}(?!\w)", answer, re.IGNORECASE)
            if found and (found.start(), -len(word)) < best:
                best_label, best = label, (found.start(), -len(word))
    return best_label


def answer_budget(fmt: PromptFormat) -> int:
    """max_new_tokens for classification by generation: the longest verbaliser word in
    context, plus ANSWER_SLACK."""
    return max(len(ids) for words in fmt.label_candidates() for ids in words) + ANSWER_SLACK


def unmapped_outputs(answers: list[str], labels: np.ndarray) -> list[list]:
    """The outputs that map to no label, [text, count], most frequent first (at most
    UNMAPPED_SHOWN), so a report shows what the model said instead."""
    counts = Counter(" ".join(a.split()) for a, y in zip(answers, labels) if y == NO_LABEL)
    return [[text, count] for text, count in counts.most_common(UNMAPPED_SHOWN)]


def classify_by_generation(
    model, fmt: PromptFormat, prompt_ids: list[list[int]], padding: bool = True
) -> Prediction:
    """Labels from greedy answers: the first verbaliser word each answer names (`map_answer`);
    answers naming none are NO_LABEL, counted, and the most frequent kept in `extra`."""
    decoding = Decoding(max_new_tokens=answer_budget(fmt))
    answers = generate_texts(
        model, fmt.tokenizer, prompt_ids, decoding, fmt.options.batch_size, padding
    )
    labels = np.array([map_answer(a, fmt.task.verbalizers) for a in answers], dtype=int)
    extra = {"unmapped_outputs": unmapped_outputs(answers, labels)}
    return Prediction(labels, n_unmapped=int((labels == NO_LABEL).sum()), extra=extra)


# Zero-shot chain of thought (Kojima et al. 2022): the reasoning follows COT_TRIGGER, then the
# answer follows the task's answer trigger (ANSWER_TRIGGER unless it names its own), and the
# chain is kept with its conclusion after ANSWER_TRIGGER, which is what the metrics read.
COT_TRIGGER = "Let's think step by step."
REASONING_STOP = ("\n\n",)  # a chain ends at a blank line


def answer_trigger(given: str, task: Task) -> str:
    """The cue a chain's answer follows: a method's `answer_trigger` parameter, else the task's,
    else ANSWER_TRIGGER."""
    return given or task.answer_trigger or ANSWER_TRIGGER


def keyed_trigger(params: dict, task: Task) -> dict:
    """`params` of a method that reads the answer trigger, as a run is keyed: the trigger made
    explicit when it is not ANSWER_TRIGGER, left out when it is, so a run on the default cue has
    the key it would have without the parameter."""
    trigger = answer_trigger(params.get("answer_trigger", ""), task)
    rest = {name: value for name, value in params.items() if name != "answer_trigger"}
    return rest if trigger == ANSWER_TRIGGER else {**rest, "answer_trigger": trigger}


class ReadsAnswerTrigger:
    """For a chain-of-thought method whose Config has `answer_trigger`: the cue it asks for the
    answer with, and its runs keyed by it (`keyed_trigger`)."""

    @classmethod
    def planned_params(cls, params: dict, task: Task) -> dict:
        return keyed_trigger(params, task)

    def trigger(self) -> str:
        return answer_trigger(self.config.answer_trigger, self.format_.task)


@dataclass
class Chains:
    """One chain of thought per input: its reasoning prompt, the output (reasoning, then the
    answer trigger and the answer), and the two steps that wrote it."""

    prompts: list[str]
    outputs: list[str]
    steps: list[Step]


def chains_of_thought(
    model,
    fmt: PromptFormat,
    texts: list,
    reasoning: Decoding,
    suffix: str = "",
    trigger: str = ANSWER_TRIGGER,
) -> Chains:
    """Two stages as in Kojima et al. on the task's prompt of each text (`reason_then_answer`)."""
    prompts = [fmt.prompt(text) for text in texts]
    return reason_then_answer(model, fmt, prompts, reasoning, suffix, trigger)


def reason_then_answer(
    model,
    fmt: PromptFormat,
    prompts: list[str],
    reasoning: Decoding,
    suffix: str = "",
    trigger: str = ANSWER_TRIGGER,
) -> Chains:
    """Each prompt, COT_TRIGGER and the reasoning (`reasoning` decoding); then all of it,
    `trigger` and a greedy one-line answer. Step names end with `suffix` (a sample's number)."""
    asked = [prompt + fmt.completion(prompt, COT_TRIGGER) for prompt in prompts]
    first = run_step(model, fmt, "reasoning" + suffix, asked, reasoning)
    concluded = [f"{a} {r}\n{trigger}" for a, r in zip(asked, first.outputs)]
    answer = Decoding(fmt.task.max_new_tokens, stop=ANSWER_STOP)
    second = run_step(model, fmt, "answer" + suffix, concluded, answer)
    return Chains(asked, chain_outputs(first.outputs, second.outputs), [first, second])


def chain_outputs(
    reasons: list[str], answers: list[str], trigger: str = ANSWER_TRIGGER
) -> list[str]:
    """Chains as written (`trigger` between reasoning and answer), or, by default, as kept and
    scored: the conclusion after ANSWER_TRIGGER whichever cue asked for it (the trace keeps the
    prompt as sent), so every metric reads every chain's answer the same way."""
    return [f"{r}\n{trigger} {a}" for r, a in zip(reasons, answers)]
