"""The named starting points of a sweep (`--preset`). `default` is also SweepSpec's default, so
the library and the CLI run the same experiment when nothing is given."""

from __future__ import annotations

from pathlib import Path

PRESETS: dict[str, dict] = {
    # The main job, sized for 2 CPU cores in about 20 minutes: 500 test rows (a 95 % interval of
    # about ±4 points) and the two sizes where the ladder's verdicts turn (10: prompting vs few
    # labels; 100: fine-tuning takes over). prompt-lora needs 60 steps at 100 labels (30 leave
    # it at zero-shot's accuracy on AG News), and each LM evaluation of 500 rows takes about a
    # minute on such a CPU, so 2 seeds rather than 3, and 2-fold selection at 10 labels.
    "default": {
        "methods": ["zero-shot", "head", "prompt-lora", "features-lr", "encoder-ft"],
        "sizes": [10, 100],
        "seeds": [0, 1],
        "test_size": 500,
        "params": {
            "prompt-lora": {"max_steps": 60, "cv_folds": 2},
            "encoder-ft": {"cv_folds": 2},
        },
    },
    # Minutes: checks an installation or a task file end to end.
    "smoke": {
        "methods": ["zero-shot", "head", "prompt-lora"],
        "sizes": [10, 32],
        "seeds": [0, 1],
        "test_size": 100,
        "params": {"prompt-lora": {"max_steps": 12, "cv_folds": 2}},
    },
    # The sizes of Le Scao & Rush's curves, every test row: hours on a CPU, minutes on a GPU.
    "full": {
        "methods": ["zero-shot", "head", "prompt-lora", "prompt-ft"],
        "sizes": [10, 32, 100, 320, 1000],
        "seeds": [0, 1, 2],
        "test_size": None,
        "params": {},
    },
}
DEFAULT_PRESET = "default"
DEFAULT_OUT = Path("promptworth-out")  # where a sweep writes when no --out is given


def preset_value(name: str, field: str):
    """A fresh copy of one field of a preset (a list or dict a caller may change)."""
    import copy

    return copy.deepcopy(PRESETS[name][field])


def preset_text(name: str) -> str:
    """What a preset runs, in one line: for --help and the docs."""
    preset = PRESETS[name]
    test = preset["test_size"] or "all"
    return (
        f"{', '.join(preset['methods'])} at sizes {', '.join(map(str, preset['sizes']))}, "
        f"{len(preset['seeds'])} seeds, {test} test rows"
    )
