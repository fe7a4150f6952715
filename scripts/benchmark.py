"""Speed benchmarks on the packaged SmolLM2 and AG News: prints numbers and ratios.

    python scripts/benchmark.py [--n 400] [--steps 6]

1. zero-shot rank classification, seconds per 1,000 test examples and accuracy, fp32 vs bf16;
2. the KV-cache scorer against scoring each (prompt + label) sequence separately;
3. the same scorer on a frozen copy of the weights (as every PEFT-wrapped model is): it should cost
   what the backbone costs (see `prompting.last_positions`);
4. a LoRA / full fine-tuning step, fp32 vs bf16 autocast over fp32 master weights;
5. the soft prompts (prefix- and p-tuning, untrained, starting from the template): scoring after
   their virtual tokens' KV cache should cost what zero-shot costs and predict what it predicts.
Speed targets live here, never in tests: timings depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from promptworth.backbones import DEFAULT_CAUSAL_LM, DEFAULT_ENCODER, BackboneCache
from promptworth.backbones.device import Placement
from promptworth.methods import make_method
from promptworth.methods.base import PromptOptions, RunContext
from promptworth.methods.prompting import PromptFormat, label_scores, score_candidates
from promptworth.methods.training import autocast_for
from promptworth.tasks import load_task
from promptworth.tasks.subsets import fixed_test_indices


def zero_shot(backbone, task, n: int) -> tuple[float, float, list[list[int]], PromptFormat]:
    test = task.test.subset(fixed_test_indices(len(task.test), n))
    fmt = PromptFormat(task, backbone.tokenizer, PromptOptions())
    prompts = [fmt.encode_prompt(fmt.prompt(t)) for t in test.texts]
    start = time.perf_counter()
    scores = score_candidates(
        backbone.model, backbone.tokenizer, prompts, fmt.label_candidates(), 16, False
    )
    seconds = time.perf_counter() - start
    return 1000 * seconds / n, float((scores.argmax(1) == test.labels).mean()), prompts, fmt


def naive_scoring(backbone, prompts: list[list[int]], fmt: PromptFormat) -> float:
    """One forward per (prompt, label word), batched by label: what the KV cache avoids."""
    start = time.perf_counter()
    with torch.inference_mode():
        for words in fmt.label_candidates():
            for ids in words:
                for i in range(0, len(prompts), 16):
                    batch = [p + ids for p in prompts[i : i + 16]]
                    width = max(map(len, batch))
                    x = torch.tensor([[0] * (width - len(b)) + b for b in batch])
                    starts = width - torch.tensor([len(b) for b in batch])
                    mask = (torch.arange(width) >= starts[:, None]).long()
                    backbone.model(input_ids=x, attention_mask=mask)
    return 1000 * (time.perf_counter() - start) / len(prompts)


def frozen_scoring(backbone, prompts: list[list[int]], fmt: PromptFormat) -> float:
    """Seconds per 1,000 examples with every weight frozen (requires_grad False)."""
    model = backbone.fresh_model().requires_grad_(False)
    start = time.perf_counter()
    score_candidates(model, backbone.tokenizer, prompts, fmt.label_candidates(), 16, False)
    return 1000 * (time.perf_counter() - start) / len(prompts)


def soft_prompt_scoring(cache: BackboneCache, task, n: int) -> list[str]:
    """Per soft-prompt method: seconds per 1,000 examples as a ratio of zero-shot's (same rows,
    same process) and the share of predictions equal to zero-shot's (the template start)."""
    backbone = cache.get(DEFAULT_CAUSAL_LM, "causal-lm")
    test = task.test.subset(fixed_test_indices(len(task.test), n))
    context = RunContext(task, 0, cache, DEFAULT_CAUSAL_LM, DEFAULT_ENCODER)
    plain = PromptFormat(task, backbone.tokenizer, PromptOptions())
    start = time.perf_counter()
    zero = label_scores(
        backbone.model, plain, [plain.encode_prompt(plain.prompt(t)) for t in test.texts], 0
    )
    zero_seconds = time.perf_counter() - start
    lines = []
    for name in ("prefix-tuning", "p-tuning", "prompt-tuning"):
        method = make_method(name)
        fmt = method.prompt_format(backbone, context)
        model = method.trainable_model(backbone, context).eval()
        prompts = [fmt.encode_prompt(fmt.prompt(t)) for t in test.texts]
        start = time.perf_counter()
        scores = label_scores(model, fmt, prompts, method.n_virtual(model))
        ratio = (time.perf_counter() - start) / zero_seconds
        same = float((scores.argmax(1) == zero.argmax(1)).mean())
        lines.append(f"{name} {ratio:.2f}x zero-shot's time, {same:.3f} of its predictions")
    return lines


def train_step(backbone, placement: Placement, lora: bool, steps: int) -> float:
    from peft import LoraConfig, get_peft_model

    model = backbone.fresh_model().float() if not lora else backbone.fresh_model()
    if lora:
        model = get_peft_model(model, LoraConfig(r=8, task_type="CAUSAL_LM"))
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-5)
    x = torch.randint(100, 40000, (8, 72))
    labels = torch.full_like(x, -100)
    labels[:, -1] = x[:, -1]
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        with autocast_for(placement):
            loss = model(input_ids=x, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        times.append(time.perf_counter() - start)
    return float(np.median(times[1:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=400, help="test examples to score")
    parser.add_argument("--steps", type=int, default=6, help="training steps to time")
    args = parser.parse_args()
    torch.manual_seed(0)
    task = load_task("ag_news")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    rows = {}
    for dtype in ("float32", "bfloat16"):
        placement = Placement("cpu", dtype)
        cache = BackboneCache(placement)
        backbone = cache.get(DEFAULT_CAUSAL_LM, "causal-lm")
        per_1000, accuracy, prompts, fmt = zero_shot(backbone, task, args.n)
        naive = naive_scoring(backbone, prompts[: args.n // 4], fmt)
        frozen = frozen_scoring(backbone, prompts, fmt)
        lora = train_step(backbone, placement, lora=True, steps=args.steps)
        full = train_step(backbone, placement, lora=False, steps=args.steps)
        rows[dtype] = (per_1000, accuracy, naive, lora, full)
        soft = soft_prompt_scoring(cache, task, args.n)
        print(
            f"{dtype:9s} zero-shot {per_1000:6.1f} s/1000 examples, accuracy {accuracy:.3f} "
            f"(n={args.n}); naive per-label scoring {naive:6.1f} s/1000 "
            f"(KV cache {naive / per_1000:.1f}x faster); frozen weights {frozen:6.1f} s/1000 "
            f"({frozen / per_1000:.2f}x the backbone's); LoRA step {lora:.2f} s, "
            f"full FT step {full:.2f} s (batch 8 x 72 tokens); untrained soft prompts: "
            + "; ".join(soft)
        )
    fp32, bf16 = rows["float32"], rows["bfloat16"]
    print(
        f"bf16 vs fp32: zero-shot {fp32[0] / bf16[0]:.2f}x faster, accuracy "
        f"{bf16[1] - fp32[1]:+.3f}; LoRA step {fp32[3] / bf16[3]:.2f}x; "
        f"full FT step {fp32[4] / bf16[4]:.2f}x"
    )


if __name__ == "__main__":
    main()
