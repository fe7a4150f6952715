"""Speed benchmarks on the packaged SmolLM2 and AG News: prints numbers and ratios.

    python scripts/benchmark.py [--n 400] [--steps 6]
    python scripts/benchmark.py --profile [--n-train 100] [--large] [--steps 30]
        [--full-steps prompt-lora] [--write-docs]
    python scripts/benchmark.py --packing [--steps 12]

1. zero-shot rank classification, seconds per 1,000 test examples and accuracy, fp32 vs bf16;
2. the KV-cache scorer against scoring each (prompt + label) sequence separately;
3. the same scorer on a frozen copy of the weights (as every PEFT-wrapped model is): it should cost
   what the backbone costs (see `prompting.last_positions`);
4. a LoRA / full fine-tuning step, fp32 vs bf16 autocast over fp32 master weights;
5. the soft prompts (prefix- and p-tuning, untrained, starting from the template): scoring after
   their virtual tokens' KV cache should cost what zero-shot costs and predict what it predicts.
6. `--profile`: tokens/s and the share of the matmul peak (a 2048^3 bf16 and fp32 matmul timed
   in the same process next to each row, so a loaded machine shows as a lower peak, not as a
   slower method) for each family's training phases and whole run, zero-shot scoring, feature
   extraction and generation (`run_profile`); `--write-docs` writes the table to
   docs/benchmarks/speed.md.
7. `--packing`: a training step on the same batches packed into one sequence and right-padded,
   alternated in one process, for each method that packs.
Speed targets live here, never in tests: timings depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from promptworth.backbones import DEFAULT_CAUSAL_LM, DEFAULT_ENCODER, BackboneCache
from promptworth.backbones.device import Placement, choose_placement
from promptworth.methods import make_method
from promptworth.methods.base import PromptOptions, RunContext
from promptworth.methods.generation import Decoding, generate
from promptworth.methods.prompting import PromptFormat, label_scores, score_candidates
from promptworth.methods.training import autocast_for
from promptworth.tasks import load_task
from promptworth.tasks.subsets import DEFAULT_SAMPLING, fixed_test_indices, nested_subsets


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


def packing_comparison(steps: int) -> None:
    """--packing: a training step (forward and backward) on the same AG News batches packed and
    padded, alternated in one process so the machine's drift falls on both, per method that
    packs (prompt-lora with its dropout, ia3, prompt-ft)."""
    from promptworth.methods.prompt_training import build_sequences, label_only_loss, packs

    task, placement = load_task("ag_news"), choose_placement()
    cache = BackboneCache(placement)
    backbone = cache.get(DEFAULT_CAUSAL_LM, "causal-lm")
    context = RunContext(task, 0, cache, DEFAULT_CAUSAL_LM, DEFAULT_ENCODER)
    rows = nested_subsets(task.train.labels, [1000], 0, DEFAULT_SAMPLING)[1000]
    rng = np.random.default_rng(0)
    batches = [rng.choice(rows, 8, replace=False) for _ in range(steps)]
    for name in ("prompt-lora", "ia3", "prompt-ft"):
        method = make_method(name)
        model = method.trainable_model(backbone, context).train()
        assert packs(model, method.virtual_tokens), f"{name} does not pack"
        seqs = build_sequences(method.prompt_format(backbone, context), task.train)
        seconds = {True: [], False: []}
        for batch in batches:
            for packed in (True, False):
                start = time.perf_counter()
                with autocast_for(placement):
                    loss, _ = label_only_loss(model, backbone.tokenizer, seqs, batch, packed)
                loss.backward()
                model.zero_grad(set_to_none=True)
                seconds[packed].append(time.perf_counter() - start)
        real = sum(len(seqs.input_ids[i]) for b in batches for i in b)
        padded = sum(len(b) * max(len(seqs.input_ids[i]) for i in b) for b in batches)
        packed_s, padded_s = (float(np.median(seconds[k][1:])) for k in (True, False))
        print(
            f"{name}: packed {packed_s:.2f} s/step, padded {padded_s:.2f} s/step "
            f"({padded_s / packed_s:.2f}x; padded batches hold {padded / real:.2f}x the tokens)",
            flush=True,
        )


# The speed profile (--profile). FLOPs per token by the usual counts over N, the parameters of
# the matmuls every token passes through (linear layers, LM head included; embedding lookups and
# attention's sequence-length terms are left out): 2N for a forward pass, 4N for forward and
# activation gradients through frozen weights, 6N when the weights get gradients too.
TRAINED_FAMILIES = (  # (family, method, FLOP per token in units of N, the backbone it trains)
    ("LoRA", "prompt-lora", 4, "causal-lm"),
    ("IA3", "ia3", 4, "causal-lm"),
    ("soft prompt", "prompt-tuning", 4, "causal-lm"),
    ("full fine-tuning", "prompt-ft", 6, "causal-lm"),
    ("encoder fine-tuning", "encoder-ft", 6, "encoder"),
)
PHASE_COUNTS = {"forward": 2, "backward": None, "optimizer": 0}  # None: the family's count - 2


@dataclass
class ProfileRow:
    what: str  # family and method
    part: str  # phase, or "whole run"
    count: int  # FLOP per token in units of N (0: no matmul FLOPs, the share is not defined)
    n_params: int
    tokens: int
    seconds: float
    peaks: dict[str, float]  # GFLOP/s of the 2048^3 matmul next to this row, per dtype

    def gflops(self) -> float:
        return self.count * self.n_params * self.tokens / self.seconds / 1e9

    def cells(self) -> list[str]:
        share = (
            [f"{100 * self.gflops() / self.peaks[d]:.1f} %" for d in ("bfloat16", "float32")]
            if self.count
            else ["-", "-"]
        )
        return [
            self.what,
            self.part,
            f"{self.count}N" if self.count else "-",
            f"{self.tokens:,}",
            f"{self.seconds:.1f}",
            f"{self.tokens / self.seconds:,.0f}",
            f"{self.gflops():.0f}" if self.count else "-",
            *share,
            f"{self.peaks['bfloat16']:.0f} / {self.peaks['float32']:.0f}",
        ]


PROFILE_HEADER = (
    "what",
    "part",
    "FLOP/token",
    "tokens",
    "seconds",
    "tokens/s",
    "GFLOP/s",
    "bf16 peak",
    "fp32 peak",
    "peak GFLOP/s bf16 / fp32",
)


def matmul_peak(dtype: str, size: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s of the fastest of `repeats` size^3 matmuls at `dtype` (after one warm-up)."""
    a = torch.randn(size, size, dtype=getattr(torch, dtype))
    b = torch.randn(size, size, dtype=getattr(torch, dtype))
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def peaks() -> dict[str, float]:
    return {dtype: matmul_peak(dtype) for dtype in ("bfloat16", "float32")}


def matmul_params(model) -> int:
    """N: weights of the linear layers every token passes through (the LM head included)."""
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))


def profile_training(cache, task, family, n_train: int, steps: int | None) -> list[ProfileRow]:
    """One run of the family's method on `n_train` labels, its step budget cut to `steps` (None:
    the recipe's own), with the rule's selection as configured (dev split or folds, step-0
    candidate, merging)."""
    name, method, count, kind = family
    context = RunContext(task, 0, cache, DEFAULT_CAUSAL_LM, DEFAULT_ENCODER)
    rows = nested_subsets(task.train.labels, [n_train], 0, DEFAULT_SAMPLING)[n_train]
    split = task.train.subset(rows)
    backbone = cache.get(DEFAULT_CAUSAL_LM if kind == "causal-lm" else DEFAULT_ENCODER, kind)
    n_params = matmul_params(backbone.model)
    fitted = make_method(method, **({} if steps is None else {"max_steps": steps}))
    start = time.perf_counter()
    fitted.fit(split, context)
    whole = time.perf_counter() - start
    stats = fitted.selection_.stats
    measured = peaks()
    what = f"{name} ({method}, n={n_train}, {stats.steps} steps)"
    out = []
    for phase, phase_count in PHASE_COUNTS.items():
        phase_count = count - 2 if phase_count is None else phase_count
        seconds = getattr(stats.seconds, phase)
        out.append(ProfileRow(what, phase, phase_count, n_params, stats.tokens, seconds, measured))
    timed = sum(getattr(stats.seconds, p) for p in ("forward", "backward", "optimizer"))
    rest = ProfileRow(what, "", 0, n_params, stats.tokens, 0, measured)
    out.append(replace(rest, part="dev scoring", seconds=stats.seconds.scoring))
    out.append(replace(rest, part="rest of the run", seconds=whole - timed - stats.seconds.scoring))
    out.append(replace(rest, part="whole run", count=count, seconds=whole))
    return out


def profile_inference(cache, task, n: int) -> list[ProfileRow]:
    """Zero-shot rank scoring, the head's feature extraction and greedy generation (batch 1, 8)."""
    from promptworth.backbones.embed import embed

    backbone = cache.get(DEFAULT_CAUSAL_LM, "causal-lm")
    n_params = matmul_params(backbone.model)
    test = task.test.subset(fixed_test_indices(len(task.test), n))
    fmt = PromptFormat(task, backbone.tokenizer, PromptOptions())
    prompts = [fmt.encode_prompt(fmt.prompt(t)) for t in test.texts]
    tokens = sum(map(len, prompts))
    out = []
    start = time.perf_counter()
    label_scores(backbone.model, fmt, prompts, 0)
    seconds = time.perf_counter() - start
    row = ProfileRow("zero-shot scoring", "forward", 2, n_params, tokens, seconds, peaks())
    out.append(row)
    start = time.perf_counter()
    embed(backbone, test.texts)
    seconds = time.perf_counter() - start
    out.append(replace(row, what="head features", seconds=seconds, peaks=peaks()))
    # 5 new tokens: what predict="generate" asks for (mostly the prompt's forward pass); 64: a
    # short answer or summary, where decoding one token at a time dominates
    for new_tokens, batch in itertools.product((5, 64), (1, 8)):
        subset = prompts[: 8 * max(1, n // 64)]
        start = time.perf_counter()
        decoding = Decoding(max_new_tokens=new_tokens)
        made = generate(backbone.model, backbone.tokenizer, subset, decoding, batch)
        seconds = time.perf_counter() - start
        gen_tokens = sum(map(len, subset)) + sum(made.new_tokens)  # an early end counts less
        what = f"generation, batch {batch} (up to {new_tokens} new tokens)"
        out.append(replace(row, what=what, tokens=gen_tokens, seconds=seconds, peaks=peaks()))
    return out


def environment(placement: Placement) -> list[str]:
    import platform

    import peft
    import transformers

    info = Path("/proc/cpuinfo").read_text()
    cpu = next(
        (line.split(":", 1)[1].strip() for line in info.splitlines() if "model name" in line),
        platform.processor() or "unknown",
    )
    flags = [f for f in ("avx512_bf16", "amx_bf16", "amx_tile") if f in info]
    return [
        f"cpu: {cpu} (bf16 flags: {', '.join(flags) or 'none'})",
        f"threads: {torch.get_num_threads()}",
        f"device / dtype: {placement.device} / {placement.dtype}",
        f"torch {torch.__version__}, transformers {transformers.__version__}, "
        f"peft {peft.__version__}, python {platform.python_version()}",
    ]


def markdown_table(rows: list[ProfileRow]) -> list[str]:
    lines = ["| " + " | ".join(PROFILE_HEADER) + " |", "|" + "---|" * len(PROFILE_HEADER)]
    return lines + ["| " + " | ".join(row.cells()) + " |" for row in rows]


def run_profile(args) -> None:
    """Each section's rows print as they finish (and go to the docs, with --write-docs)."""
    torch.manual_seed(0)
    task = load_task("ag_news")
    placement = choose_placement()
    cache = BackboneCache(placement)
    env = environment(placement)
    wanted = set(filter(None, args.only.split(",")))
    sizes = [args.n_train] + ([1000] if args.large else [])
    sections = []
    if not wanted or "inference" in wanted:
        sections.append(lambda: profile_inference(cache, task, args.n))
    whole = set(filter(None, args.full_steps.split(",")))
    for family in TRAINED_FAMILIES:
        if not wanted or family[1] in wanted:
            sections += [
                lambda family=family, n=n: profile_training(cache, task, family, n, args.steps)
                for n in sizes
            ]
        if family[1] in whole:  # a whole run as the sweep trains it, at the largest size
            sections.append(
                lambda family=family: profile_training(cache, task, family, sizes[-1], None)
            )
    rows = []
    for section in sections:
        new = section()
        rows += new
        print("\n".join(markdown_table(new)[2:]), flush=True)
        if args.write_docs:
            write_docs(env, markdown_table(rows), " ".join(sys.argv[1:]))
    print("\n".join([*env, "", *markdown_table(rows)]))


def write_docs(env: list[str], table: list[str], arguments: str) -> None:
    path = Path(__file__).resolve().parents[1] / "docs" / "benchmarks" / "speed.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = [
        "# Speed profile",
        "",
        "Written by `python scripts/benchmark.py " + arguments + "`; do not edit by hand.",
        "",
        "Tokens per second, and the share of the matmul peak they reach, per method family and",
        "part of a run. FLOP per token: 2N (forward), 4N (forward and activation gradients",
        "through frozen weights), 6N (every weight trained), N = the weights of the linear",
        "layers a token passes through (LM head included; embedding lookups and attention's",
        "sequence-length terms left out). Backward counts 2N (frozen) or 4N (full); the",
        "optimizer, dev scoring and the rest of a run (model copies, the step-0 candidate,",
        "snapshots, merging) have no count, their seconds say what they cost. The peak is a",
        "2048^3 matmul timed in the same process next to each row: on a shared machine it moves",
        "with the load, and the shares are against it. Training runs have their step budget cut",
        "(`--steps`), except those of `--full-steps`, run at the recipe's own budget as a sweep",
        "trains them (dev scoring then takes the share it takes in a sweep); tokens are the",
        "non-padding tokens trained on. On a shared virtual machine a row measured again can",
        "move by more than a change under test: compare changes within one process, alternating",
        "them, rather than against this table.",
        "",
        "```",
        *env,
        "```",
        "",
        *table,
        "",
    ]
    path.write_text("\n".join(text))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=400, help="test examples to score")
    parser.add_argument("--steps", type=int, default=6, help="training steps to time")
    parser.add_argument("--profile", action="store_true", help="the per-family speed profile")
    parser.add_argument("--n-train", type=int, default=100, help="labels per profiled run")
    parser.add_argument("--large", action="store_true", help="also profile 1,000 labels")
    parser.add_argument("--only", default="", help="comma-separated profile rows to run")
    parser.add_argument(
        "--full-steps",
        default="",
        help="comma-separated methods also profiled at their own step budget (largest size)",
    )
    parser.add_argument("--write-docs", action="store_true", help="write the profile's table")
    parser.add_argument(
        "--packing", action="store_true", help="packed against padded steps, alternated"
    )
    args = parser.parse_args()
    if args.profile:
        return run_profile(args)
    if args.packing:
        return packing_comparison(args.steps)
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
