"""Nothing shipped with a model runs: a model folder whose config.json or tokenizer_config.json
names custom code (auto_map, or a model_type transformers does not know) is refused in one line
before anything loads, on every CLI path, even when `y` waits on standard input; and every load
of the package goes through backbones/loading.py, which never lets transformers run it or ask.

The folders are the tiny test model with a `custom.py` that, when imported, writes a marker file:
the marker appearing is the custom code having run.
"""

from __future__ import annotations

import ast
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import promptworth
from promptworth.backbones import loading
from promptworth.cli import main
from promptworth.testing import tiny_task, write_task_files

PACKAGE = Path(promptworth.__file__).parent
VARIANTS = ("config-auto-map", "unknown-model-type", "tokenizer-auto-map")
CUSTOM_CODE = """from pathlib import Path

Path({marker!r}).write_text("custom code ran")

from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast


class CustomConfig(LlamaConfig):
    model_type = "promptworth-custom"


class CustomModel(LlamaForCausalLM):
    config_class = CustomConfig


class CustomTokenizer(PreTrainedTokenizerFast):
    pass
"""


def ask_for_code(folder: Path, variant: str, marker: Path) -> None:
    """Make a saved model folder ask transformers to import its custom.py, as `variant` says."""
    (folder / "custom.py").write_text(CUSTOM_CODE.format(marker=str(marker)))
    config = json.loads((folder / "config.json").read_text())
    if variant in ("config-auto-map", "unknown-model-type"):
        config["auto_map"] = {
            "AutoConfig": "custom.CustomConfig",
            "AutoModelForCausalLM": "custom.CustomModel",
        }
    if variant == "unknown-model-type":
        config["model_type"] = "promptworth-custom"
    (folder / "config.json").write_text(json.dumps(config))
    if variant == "tokenizer-auto-map":
        path = folder / "tokenizer_config.json"
        tokenizer = json.loads(path.read_text())
        tokenizer["auto_map"] = {"AutoTokenizer": [None, "custom.CustomTokenizer"]}
        tokenizer["tokenizer_class"] = "CustomTokenizer"
        path.write_text(json.dumps(tokenizer))


@pytest.fixture
def marker(tmp_path) -> Path:
    return tmp_path / "custom-code-ran"


def custom_folder(tmp_path: Path, tiny_lm_dir: str, variant: str, marker: Path) -> Path:
    folder = tmp_path / f"custom-{variant}"
    shutil.copytree(tiny_lm_dir, folder)
    ask_for_code(folder, variant, marker)
    return folder


@pytest.fixture
def answer_yes(monkeypatch):
    """`y` on standard input, as if a user (or a pipe) answered transformers' prompt; and a count
    of the package's loads (every one starts with `never_prompt`)."""
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n" * 10))
    loads = []
    real = loading.never_prompt
    monkeypatch.setattr(loading, "never_prompt", lambda: loads.append(1) or real())
    return loads


@pytest.fixture(scope="module")
def task_files(tmp_path_factory):
    return write_task_files(tiny_task(n_train=40, n_test=16), tmp_path_factory.mktemp("task"))


def run_argv(task_files, model, encoder, out) -> list[str]:
    return [
        "run",
        "--quiet",
        *("--task", task_files[0], "--test-file", task_files[1]),
        *("--model", str(model), "--encoder", encoder, "--methods", "features-lr"),
        *("--sizes", "8", "--seeds", "1", "--test-size", "10", "--dtype", "float32"),
        *("--out", str(out)),
    ]


def refusal(capsys, folder: Path) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert str(folder) in err and "never runs code shipped with a model" in err, err
    return err


def test_no_from_pretrained_outside_the_loading_module():
    """Every model, tokenizer, config or processor the package loads goes through
    backbones/loading.py, which always passes trust_remote_code=False."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "backbones" / "loading.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            called = node.func if isinstance(node, ast.Call) else None
            name = getattr(called, "attr", getattr(called, "id", None))
            if name in ("from_pretrained", "from_single_file"):
                found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert not found, f"load through promptworth.backbones.loading instead: {found}"


def test_the_folders_run_their_code_when_transformers_is_asked_plainly(
    tmp_path, tiny_lm_dir, marker
):
    """The premise: a plain load of these folders, answering `y`, runs custom.py. (A subprocess,
    so the code runs outside the test process, with its module cache in tmp_path.)"""
    folders = [custom_folder(tmp_path, tiny_lm_dir, v, marker) for v in VARIANTS[1:]]
    script = "import sys\nfrom transformers import AutoTokenizer\n"
    script += "AutoTokenizer.from_pretrained(sys.argv[1])\n"
    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HUB_OFFLINE": "1"}
    for folder in folders:
        marker.unlink(missing_ok=True)
        subprocess.run(
            [sys.executable, "-c", script, str(folder)],
            input="y\n",
            text=True,
            capture_output=True,
            env=env,
            timeout=300,
        )
        assert marker.exists(), folder.name


@pytest.mark.parametrize("variant", VARIANTS)
def test_run_refuses_a_folder_that_asks_for_code(
    variant, tmp_path, tiny_lm_dir, tiny_encoder_dir, task_files, marker, answer_yes, capsys
):
    folder = custom_folder(tmp_path, tiny_lm_dir, variant, marker)
    out = tmp_path / "out"
    assert main(run_argv(task_files, folder, tiny_encoder_dir, out)) == 2
    refusal(capsys, folder)
    assert not marker.exists() and not out.exists() and not answer_yes


def test_run_refuses_it_from_a_real_terminal_answer(
    tmp_path, tiny_lm_dir, tiny_encoder_dir, task_files, marker
):
    """The CLI as a process, `y` piped into its standard input."""
    folder = custom_folder(tmp_path, tiny_lm_dir, "tokenizer-auto-map", marker)
    argv = run_argv(task_files, folder, tiny_encoder_dir, tmp_path / "out")
    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HUB_OFFLINE": "1"}
    env["PYTHONPATH"] = str(PACKAGE.parent)
    done = subprocess.run(
        [sys.executable, "-m", "promptworth.cli", *argv],
        input="y\n",
        text=True,
        capture_output=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("promptworth: error: --model ")
    assert not marker.exists()


def test_suite_refuses_it(
    tmp_path, tiny_lm_dir, tiny_encoder_dir, task_files, marker, answer_yes, capsys
):
    folder = custom_folder(tmp_path, tiny_lm_dir, "unknown-model-type", marker)
    out = tmp_path / "out"
    argv = ["suite", "--quiet", "--tasks", task_files[0], "--model", str(folder)]
    argv += ["--encoder", tiny_encoder_dir, "--methods", "zero-shot,features-lr"]
    argv += ["--sizes", "8", "--seeds", "1", "--test-size", "10", "--allow-overlap"]
    assert main([*argv, "--out", str(out)]) == 2
    refusal(capsys, folder)
    assert not marker.exists() and not out.exists() and not answer_yes


def test_commands_over_a_store_never_load_its_model(
    tmp_path, tiny_lm_dir, tiny_encoder_dir, task_files, marker, answer_yes, capsys
):
    """A run finished on a folder that later asks for code: `report`, `recommend` and
    `tasks show` do not load it; a new `run` on it is refused."""
    folder = tmp_path / "model"
    shutil.copytree(tiny_lm_dir, folder)
    out = tmp_path / "out"
    assert main(run_argv(task_files, folder, tiny_encoder_dir, out)) == 0
    assert answer_yes  # the run loaded its models through backbones/loading.py
    ask_for_code(folder, "tokenizer-auto-map", marker)
    answer_yes.clear()
    capsys.readouterr()
    assert main(["report", str(out)]) == 0
    assert main(["recommend", str(out)]) == 0
    assert main(["recommend", str(out), "--json"]) == 0
    data = tmp_path / "data.csv"
    data.write_text("text,label\n" + "".join(f"row {i},{'ab'[i % 2]}\n" for i in range(20)))
    assert main(["tasks", "show", str(data)]) == 0
    assert not answer_yes and not marker.exists()
    assert main(run_argv(task_files, folder, tiny_encoder_dir, out)) == 2
    refusal(capsys, folder)
    assert not answer_yes and not marker.exists()


def test_load_pretrained_refuses_before_transformers_reads_the_folder(
    tmp_path, tiny_lm_dir, marker, answer_yes
):
    """The Python API's loads (methods, reports, packaged models) take the same path."""
    from transformers import AutoTokenizer

    for variant in VARIANTS:
        folder = custom_folder(tmp_path, tiny_lm_dir, variant, marker)
        with pytest.raises(promptworth.errors.PromptworthError, match=str(folder)):
            loading.load_pretrained(AutoTokenizer, folder)
    with pytest.raises(TypeError):
        loading.load_pretrained(AutoTokenizer, tiny_lm_dir, trust_remote_code=True)
    assert len(loading.load_pretrained(AutoTokenizer, tiny_lm_dir)) > 0
    assert not marker.exists()


def test_a_cached_hub_model_that_asks_for_code_is_refused_up_front(
    tmp_path, tiny_lm_dir, tiny_encoder_dir, task_files, marker, answer_yes, capsys, monkeypatch
):
    """A Hugging Face id whose snapshot is in the local cache is checked like a folder."""
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    repo = cache / "models--someone--custom-lm"
    snapshot = repo / "snapshots" / ("0" * 40)
    shutil.copytree(tiny_lm_dir, snapshot)
    ask_for_code(snapshot, "config-auto-map", marker)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    out = tmp_path / "out"
    assert main(run_argv(task_files, "someone/custom-lm", tiny_encoder_dir, out)) == 2
    refusal(capsys, snapshot)
    assert not marker.exists() and not out.exists() and not answer_yes
