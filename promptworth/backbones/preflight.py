"""Pre-flight checks of a backbone spec, before any model loads.

A spec is resolved as `resolve()` does: a packaged alias, a local directory, else a Hugging Face
id. A local directory must hold what loading reads: a config.json that parses, complete weights
and a tokenizer, and must not ask for custom code (backbones/loading.py: nothing shipped with a
model runs); a path that does not exist is refused instead of being taken for a Hub id.
Hub ids are left to loading (only the Hub can say whether they exist), except that one already
in the local Hugging Face cache is checked for custom code like a directory; loading refuses
it for one that is not (backbones/loading.py).
"""

from __future__ import annotations

import json
from pathlib import Path

from promptworth.backbones.loading import load_pretrained, read_json, refuse_custom_code
from promptworth.backbones.packaged import PACKAGED
from promptworth.backbones.revision import cached_snapshot
from promptworth.errors import PromptworthError
from promptworth.paths import looks_like_path

WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "vocab.json",
    "tokenizer.model",
    "spiece.model",
    "sentencepiece.bpe.model",
)
CHAT_TEMPLATE_FILES = ("chat_template.jinja", "chat_template.json")


def check_backbone(spec: str, where: str, chat: bool = False) -> None:
    """Refuse a spec that cannot load; `where` names the flag or parameter that gave it.
    With `chat`, a local directory must also carry a chat template (--chat)."""
    if spec in PACKAGED:
        try:
            PACKAGED[spec].require()
        except FileNotFoundError as error:
            raise PromptworthError(f"{where} {spec}: {error}") from None
        return
    path = Path(spec).expanduser()
    if path.is_dir():
        check_model_dir(path, where, chat)
    elif path.exists():
        raise PromptworthError(
            f"{where} {spec}: is a file; give a model directory (with config.json), a packaged "
            f"alias ({', '.join(PACKAGED)}) or a Hugging Face id"
        )
    elif looks_like_path(spec):
        raise PromptworthError(f"{where} {spec}: no such model directory")
    else:
        snapshot = cached_snapshot(spec)
        if snapshot is not None:
            refuse_custom_code(snapshot, where)


def check_model_dir(path: Path, where: str, chat: bool) -> None:
    config = path / "config.json"
    if not config.is_file():
        raise PromptworthError(
            f"{where} {path}: no config.json; a model directory needs one (save_pretrained "
            "writes it)"
        )
    if not isinstance(read_json(config, where), dict):
        raise PromptworthError(f"{where} {config}: not a JSON object")
    weights = [path / name for name in WEIGHT_FILES if (path / name).is_file()]
    if not weights:
        raise PromptworthError(f"{where} {path}: no weights ({', '.join(WEIGHT_FILES)})")
    for index in (w for w in weights if w.suffix == ".json"):
        missing = sorted(set(read_json(index, where).get("weight_map", {}).values()))
        missing = [name for name in missing if not (path / name).is_file()]
        if missing:
            raise PromptworthError(f"{where} {index}: shard {missing[0]} is missing")
    for weight in sorted(path.glob("*.safetensors")):
        check_safetensors(weight, where)
    if not any((path / name).is_file() for name in TOKENIZER_FILES):
        raise PromptworthError(f"{where} {path}: no tokenizer ({', '.join(TOKENIZER_FILES)})")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        if (path / name).is_file():
            read_json(path / name, where)
    refuse_custom_code(path, where)
    if chat and not has_chat_template(path, where):
        raise PromptworthError(
            f"--chat: {where} {path} has no chat template; leave --chat out for this model"
        )


def check_safetensors(path: Path, where: str) -> None:
    """The header parses and the tensors it declares end exactly where the file ends, so a
    truncated or overwritten weight file is refused here instead of inside every run."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        n_header = int.from_bytes(handle.read(8), "little") if size >= 8 else -1
        header = handle.read(n_header) if 0 < n_header <= size - 8 else b""
    try:
        tensors = {k: v for k, v in json.loads(header).items() if k != "__metadata__"}
        end = max((int(t["data_offsets"][1]) for t in tensors.values()), default=0)
        complete = 8 + n_header + end == size
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        complete = False
    if not complete:
        raise PromptworthError(
            f"{where} {path}: not a complete safetensors file (truncated or corrupt); "
            "save or download the model again"
        )


def model_has_chat_template(spec: str, where: str = "--model") -> bool:
    """Whether the model `spec` names has a chat template: read from its files (a packaged
    model declares it), or from its tokenizer for a hub id not in the local cache."""
    if spec in PACKAGED:
        return PACKAGED[spec].chat_template
    path = Path(spec).expanduser()
    folder = path if path.is_dir() else cached_snapshot(spec)
    if folder is not None:
        return has_chat_template(folder, where)
    from transformers import AutoTokenizer

    tokenizer = load_pretrained(AutoTokenizer, spec, where)
    return bool(getattr(tokenizer, "chat_template", None))


def has_chat_template(path: Path, where: str) -> bool:
    config = path / "tokenizer_config.json"
    in_config = config.is_file() and "chat_template" in read_json(config, where)
    return in_config or any((path / name).is_file() for name in CHAT_TEMPLATE_FILES)
