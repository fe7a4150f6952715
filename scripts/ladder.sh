#!/usr/bin/env bash
# The full-ladder measurement (issue #4): every method on AG News with the packaged SmolLM2-135M
# and MiniLM, at 10, 100 and 1,000 labels, 2 seeds, 200 fixed test rows, into one store.
# Usage: bash scripts/ladder.sh [OUT]   (resumable: rerun it and only missing runs execute)
# Runs go one after another: on a 2-core machine parallel torch jobs slow each other down
# many-fold and the cost columns would measure the contention.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-ladder-out}"
steps=100  # optimiser steps for every method that trains the LM (batch 8)
run() {
  echo "== $(date -u +%H:%M:%S) promptworth run $*"
  .venv/bin/promptworth run --sizes 10,100,1000 --seeds 2 --test-size 200 --out "$out" --quiet "$@"
}
run --methods zero-shot,features-lr,encoder-head,encoder-ft,head
run --methods few-shot --param few-shot.selection=random
run --methods few-shot --param few-shot.selection=knn
run --methods few-shot --param few-shot.calibrate=true
run --methods prompt-lora,ia3,p-tuning,prompt-tuning,prefix-tuning,prompt-ft \
  --param prompt-lora.max_steps=$steps --param ia3.max_steps=$steps \
  --param p-tuning.max_steps=$steps --param prompt-tuning.max_steps=$steps \
  --param prefix-tuning.max_steps=$steps --param prompt-ft.max_steps=$steps
run --methods prompt-search
run --methods dpo --param dpo.max_steps=$steps
# The teacher is prompt-lora with the same settings as its own runs above.
run --methods distill --param "distill.teacher_params={\"max_steps\": $steps}"
# qlora needs CUDA + bitsandbytes; on a CPU machine it is refused before anything loads.
.venv/bin/promptworth run --methods qlora --sizes 10 --seeds 1 --out "$out" --quiet ||
  echo "qlora refused on this machine (exit $?)"
echo "== $(date -u +%H:%M:%S) done"
