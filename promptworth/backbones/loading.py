"""The one place promptworth loads a model, tokenizer or config from a folder or a hub id.

Nothing loaded from a model executes code. transformers runs Python shipped with a model when its
config.json or tokenizer_config.json names it (`auto_map`), and, when the caller does not say
`trust_remote_code`, asks on standard input "Do you wish to run the custom code? [y/N]" (a `y`
runs it). So every load goes through `load_pretrained`, which always passes
`trust_remote_code=False` and turns transformers' prompt off for the whole process; and a folder
that asks for custom code is refused, with one line naming it, before anything is loaded
(`refuse_custom_code`, also called by the pre-flight checks of backbones/preflight.py).
tests/test_model_code.py scans the package for any other `from_pretrained` call.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from promptworth.errors import PromptworthError

CODE_CONFIGS = ("config.json", "tokenizer_config.json")
ADVICE = (
    "promptworth never runs code shipped with a model; use a model whose architecture "
    "transformers ships (save it with save_pretrained from a standard class)"
)


def refuse_custom_code(folder: Path, where: str = "model") -> None:
    """Refuse a model folder whose config or tokenizer config asks transformers to import Python
    from the folder or a hub repository (`auto_map`), or whose model_type transformers does not
    know (which it can only load with such code). `where` names the flag that gave it."""
    for name in CODE_CONFIGS:
        config = read_config(folder / name, where)
        auto_map = config.get("auto_map")
        if auto_map:
            named = sorted(auto_map) if isinstance(auto_map, dict) else [str(auto_map)]
            raise PromptworthError(
                f"{where} {folder}: {name} names custom code (auto_map: {', '.join(named)}); "
                f"{ADVICE}"
            )
    model_type = read_config(folder / "config.json", where).get("model_type")
    if model_type is not None and model_type not in known_model_types():
        raise PromptworthError(
            f"{where} {folder}: config.json model_type {model_type!r} is not one transformers "
            f"knows, so only code shipped with the model could load it; {ADVICE}"
        )


def read_config(path: Path, where: str) -> dict:
    """A config file's JSON object; {} when the file is absent or holds no object."""
    config = read_json(path, where) if path.is_file() else {}
    return config if isinstance(config, dict) else {}


def read_json(path: Path, where: str):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise PromptworthError(f"{where} {path}: not valid JSON ({error})") from None


def known_model_types() -> set[str]:
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    return set(CONFIG_MAPPING_NAMES)


def never_prompt() -> None:
    """Make transformers refuse, instead of asking on standard input, whenever any load (ours or
    a library's) leaves `trust_remote_code` unset for a model with custom code: with the prompt's
    timeout at 0 it raises (the setting its own CI uses)."""
    from transformers import dynamic_module_utils

    dynamic_module_utils.TIME_OUT_REMOTE_CODE = 0


def load_pretrained(loader: Any, source: str | Path, where: str = "model", **options) -> Any:
    """`loader.from_pretrained(source, **options)` (loader: a transformers Auto class, model
    class or config class) with `trust_remote_code=False`, after refusing a local folder that
    asks for custom code. A hub model that needs custom code is refused in one line too."""
    if "trust_remote_code" in options:
        raise TypeError("load_pretrained always loads with trust_remote_code=False")
    never_prompt()
    if Path(source).is_dir():
        refuse_custom_code(Path(source), where)
    try:
        return loader.from_pretrained(source, trust_remote_code=False, **options)
    except ValueError as error:
        if "trust_remote_code" not in str(error):
            raise
        raise PromptworthError(f"{where} {source}: needs custom code to load; {ADVICE}") from None
