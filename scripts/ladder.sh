#!/usr/bin/env bash
# The full-ladder measurement: every method on AG News with the packaged SmolLM2-135M
# and MiniLM, at 10, 100 and 1,000 labels, 200 fixed test rows, into one store.
# Usage: bash scripts/ladder.sh [OUT]   (resumable: rerun it and only missing runs execute)
#
# Budget: written for a 2-core CPU (bf16 where the CPU has AVX512-BF16, else fp32, ~2-5 s per LoRA
# step of 8 texts).
# Methods without LM training run 2 seeds. Methods that train the causal LM are capped at
# `steps` optimiser steps and run seed 0 first at every size, then a second seed where time
# allows; with a GPU, raise `steps` and use --seeds 3 everywhere.
# Runs go one after another: on a 2-core machine parallel torch jobs slow each other down
# many-fold and the cost columns would measure the contention.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-ladder-out}"
steps=30  # optimiser steps (batch 8) for every method that trains the causal LM
run() {
  echo "== $(date -u +%H:%M:%S) promptworth run $*"
  .venv/bin/promptworth run --sizes 10,100,1000 --test-size 200 --out "$out" --quiet "$@"
}
lm_steps=()
for m in prompt-lora ia3 p-tuning prompt-tuning prefix-tuning prompt-ft dpo; do
  lm_steps+=(--param "$m.max_steps=$steps")
done
search=(--param prompt-search.n_paraphrases=1 --param prompt-search.max_dev=32)
# The teacher is prompt-lora with the same settings as its own runs.
distill=(--param "distill.teacher_params={\"max_steps\": $steps}" --param distill.n_unlabeled=200)
dpo=(--param dpo.dpo_max_steps=10)

run --seeds 2 --methods zero-shot,features-lr,encoder-head,encoder-ft,head
run --seeds 2 --methods few-shot --param few-shot.selection=random --param few-shot.calibrate=false
run --seeds 2 --methods few-shot --param few-shot.selection=knn --param few-shot.calibrate=false
run --seeds 2 --methods few-shot --param few-shot.calibrate=true
for seeds in 1 2; do
  run --seeds $seeds --methods prompt-lora,ia3 "${lm_steps[@]}"
  run --seeds $seeds --methods prompt-search "${search[@]}"
  run --seeds $seeds --methods distill "${distill[@]}"
  run --seeds $seeds --methods dpo "${lm_steps[@]}" "${dpo[@]}"
  run --seeds $seeds --methods prompt-ft,p-tuning,prompt-tuning,prefix-tuning "${lm_steps[@]}"
done
# qlora needs CUDA + bitsandbytes; on a CPU machine it is refused before anything loads.
.venv/bin/promptworth run --methods qlora --sizes 10 --seeds 1 --out "$out" --quiet ||
  echo "qlora refused on this machine (exit $?)"
echo "== $(date -u +%H:%M:%S) done"
