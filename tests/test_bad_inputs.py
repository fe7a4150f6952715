"""Every bad input is refused up front: exit status 2, one line naming the flag, parameter, file,
row or field, no traceback, and the store in --out untouched.

Each case runs the CLI in-process on tiny files and tiny random-weight models, so nothing real
loads. Cases marked `store` start from a copy of an --out holding a finished run and check that
every file in it is byte-identical afterwards; the others check that --out was never created.
"""

from __future__ import annotations

import gc
import json
import shutil
from pathlib import Path

import pytest

from promptworth.cli import main
from promptworth.testing import tiny_task, write_task_files

# A valid run of the cheapest method; each case changes one thing.
BASE = {
    "--task": "{train}",
    "--test-file": "{test}",
    "--model": "{lm}",
    "--encoder": "{enc}",
    "--methods": "features-lr",
    "--sizes": "8",
    "--seeds": "1",
    "--test-size": "20",
    "--dtype": "float32",
    "--out": "{out}",
}


def run(category, expected, overrides=None, *extra, store=False, id=None):
    """A `run` case: BASE with `overrides` (None drops a flag) and `extra` arguments."""
    flags = {**BASE, **(overrides or {})}
    argv = ["run", "--quiet"]
    for flag, value in flags.items():
        argv += [flag, value] if value is not None else []
    return pytest.param(category, argv + list(extra), expected, store, id=id or expected)


def command(category, expected, *argv, store=False, id=None):
    """Any other command, written out in full."""
    return pytest.param(category, list(argv), expected, store, id=id or expected)


def advantage(expected, *extra, results="{results}", baseline="zero-shot", method="head", id=None):
    """An `advantage` case on learning curves of head and zero-shot, with one thing changed."""
    argv = ["advantage", results, "--baseline", baseline, "--method", method, *extra]
    return command("advantage", expected, *argv, id=id)


def rows(*pairs: tuple[str, str]) -> str:
    return "text,label\n" + "".join(f"{text},{label}\n" for text, label in pairs)


TEN = [(f"a training text number {i}", "ab"[i % 2]) for i in range(10)]
# name -> content of a file written into {bad}
FILES: dict[str, str | bytes] = {
    "empty.csv": "",
    "header-only.csv": "text,label\n",
    "no-text-column.csv": "sentence,label\nhello,a\n",
    "empty-text.csv": rows(("fine", "a"), ("", "b")),
    "blank-text.csv": rows(("fine", "a"), ("   ", "b")),
    "no-label.csv": rows(("x", "a"), ("y", "b"), ("z", "")),
    "ragged.csv": rows(("a", "b")) + "c,d,e\n",
    "null-text.jsonl": '{"text": "a", "label": 1}\n{"text": null, "label": 0}\n',
    "number-text.jsonl": '{"text": "a", "label": 1}\n{"text": 5, "label": 0}\n',
    "list-label.jsonl": '{"text": "a", "label": 1}\n{"text": "b", "label": [0, 1]}\n',
    "broken.jsonl": '{"text": "a", "label": 1}\n{"text": \n',
    "one-class.csv": rows(*[(text, "a") for text, _ in TEN]),
    "unseen-test.csv": rows(("the team won", "sports"), ("a new label", "zzz")),
    "latin1.csv": rows(*TEN, ("café au lait", "a")).encode("latin-1"),
    "utf16.csv": rows(*TEN).encode("utf-16"),
    "notes.txt": "not a table\n",
    "corrupt.parquet": b"this is not parquet",
    "no-label-column.tsv": "text\tlabel_x\nhello\ta\n",
}

CASES = [
    # ---- CLI values -------------------------------------------------------------------------
    run("cli", "--sizes -5", {"--sizes": "-5"}, store=True, id="sizes-negative"),
    run("cli", "--sizes 0", {"--sizes": "0"}, id="sizes-zero"),
    run("cli", "--sizes: empty", {"--sizes": ""}, id="sizes-empty"),
    run("cli", "--sizes: 8 given more than once", {"--sizes": "8,8"}, id="sizes-repeated"),
    run("cli", "argument --sizes", {"--sizes": "8,,16"}, id="sizes-empty-item"),
    run("cli", "argument --sizes", {"--sizes": "ten"}, id="sizes-not-integers"),
    run("cli", "--sizes 1000", {"--sizes": "8,1000"}, id="sizes-exceed-pool"),
    run("cli", "argument --seeds", {"--seeds": "0"}, id="seeds-zero"),
    run("cli", "argument --seeds", {"--seeds": "-1"}, store=True, id="seeds-negative"),
    run("cli", "argument --seeds", {"--seeds": "two"}, id="seeds-not-integer"),
    run("cli", "--test-size 0", {"--test-size": "0"}, id="test-size-zero"),
    run("cli", "--test-size -3", {"--test-size": "-3"}, id="test-size-negative"),
    run("cli", "--full-test", {}, "--full-test", id="test-size-and-full-test"),
    run("cli", "--methods: no method", {"--methods": ","}, id="methods-comma"),
    run("cli", "--methods: no method", {"--methods": ""}, id="methods-empty"),
    run("cli", "unknown method 'nope'", {"--methods": "nope"}, id="methods-unknown"),
    run("cli", "--methods: features-lr given", {"--methods": "features-lr,features-lr"}),
    run("cli", "--max-text-tokens 0", {}, "--max-text-tokens", "0", id="max-text-tokens-0"),
    run("cli", "--max-text-tokens -1", {}, "--max-text-tokens", "-1", id="max-text-tokens-neg"),
    run("cli", "argument --dtype", {"--dtype": "float8"}, id="dtype-unknown"),
    run("cli", "argument --predict", {}, "--predict", "sample", id="predict-unknown"),
    run("cli", "argument --preset", {}, "--preset", "huge", id="preset-unknown"),
    run("cli", "--out {bad}/notes.txt: is a file", {"--out": "{bad}/notes.txt"}, id="out-file"),
    run("cli", "--compare features-lr,nope", {}, "--compare", "features-lr,nope", id="compare"),
    run("cli", "--encoding 'klingon'", {}, "--encoding", "klingon", id="encoding-unknown"),
    run(
        "cli",
        "--methods few-shot: calibrate=true",
        {"--methods": "few-shot"},
        *("--param", "few-shot.calibrate=true", "--predict", "generate"),
        id="calibrate-with-generate",
    ),
    # ---- templates --------------------------------------------------------------------------
    run("templates", "--template 99", {}, "--template", "99", store=True, id="template-99"),
    run("templates", "--template 2: task 'train' has 2", {}, "--template", "2", id="template-2"),
    run("templates", "--template -1", {}, "--template", "-1", id="template-negative"),
    run("templates", "slot(s) {{txt}}", {}, "--template", "T: {{txt}}", id="template-bad-slot"),
    run("templates", "has no slot", {}, "--template", "Topic:", store=True, id="template-no-slot"),
    run("templates", "mean 'sports'?", {}, "--verbalizer", "sprots=x", id="verbalizer-label"),
    run("templates", "non-empty words", {}, "--verbalizer", "sports=x,", id="verbalizer-empty"),
    run(
        "templates",
        "'business' is given",
        {},
        "--verbalizer",
        "sports=business",
        id="verbalizer-shared",
    ),
    run("templates", "expected LABEL=WORD", {}, "--verbalizer", "a", id="verbalizer-no-equals"),
    # ---- method parameters ------------------------------------------------------------------
    run("params", "features-lr.C='abc'", {}, "--param", "features-lr.C=abc", store=True),
    run("params", "features-lr.C=0.0", {}, "--param", "features-lr.C=0", id="C-zero"),
    run("params", "features-lr.C='nan'", {}, "--param", "features-lr.C=nan", id="C-nan"),
    run("params", "features-lr.max_tokens='8.5'", {}, "--param", "features-lr.max_tokens=8.5"),
    run("params", "features-lr.normalize='yes'", {}, "--param", "features-lr.normalize=yes"),
    run(
        "params",
        "features-lr.classifier='xgboost'",
        {},
        "--param",
        "features-lr.classifier=xgboost",
    ),
    run("params", "has no parameter nope", {}, "--param", "features-lr.nope=1", id="param-unknown"),
    run("params", "unknown method 'nope'", {}, "--param", "nope.C=1", id="param-method-unknown"),
    run("params", "argument --param", {}, "--param", "features-lr.C", id="param-no-equals"),
    run("params", "argument --param", {}, "--param", "C=1", id="param-no-method"),
    run(
        "params",
        "--param features-lr.C given more than once",
        {},
        *("--param", "features-lr.C=2", "--param", "features-lr.C=3"),
        id="param-repeated",
    ),
    run(
        "params",
        "p-tuning.encoder='GRU'",
        {"--methods": "p-tuning"},
        "--param",
        "p-tuning.encoder=GRU",
    ),
    run(
        "params",
        "prompt-tuning.init='zeros'",
        {"--methods": "prompt-tuning"},
        *("--param", "prompt-tuning.init=zeros"),
    ),
    run(
        "params",
        "prompt-lora.learning_rate=0.0",
        {"--methods": "prompt-lora"},
        *("--param", "prompt-lora.learning_rate=0"),
    ),
    run(
        "params",
        "prompt-lora.dropout=1.5",
        {"--methods": "prompt-lora"},
        *("--param", "prompt-lora.dropout=1.5"),
    ),
    run(
        "params",
        "prefix-tuning.batch_size=0",
        {"--methods": "prefix-tuning"},
        *("--param", "prefix-tuning.batch_size=0"),
    ),
    run("params", "few-shot.k=0", {"--methods": "few-shot"}, "--param", "few-shot.k=0"),
    run(
        "params",
        "few-shot.selection='best'",
        {"--methods": "few-shot"},
        *("--param", "few-shot.selection=best"),
    ),
    run("params", "head.pooling='max'", {"--methods": "head"}, "--param", "head.pooling=max"),
    run("params", "dpo.negatives='some'", {"--methods": "dpo"}, "--param", "dpo.negatives=some"),
    run(
        "params",
        "preference file {bad}/nope.csv does not exist",
        {"--methods": "dpo"},
        *("--param", "dpo.preference_file={bad}/nope.csv"),
    ),
    run(
        "params",
        "prompt-search.max_dev=0",
        {"--methods": "prompt-search"},
        *("--param", "prompt-search.max_dev=0"),
    ),
    run(
        "params",
        "distill.teacher='distill'",
        {"--methods": "distill"},
        *("--param", "distill.teacher=distill"),
    ),
    run(
        "params",
        "distill.temperature=0.0",
        {"--methods": "distill"},
        *("--param", "distill.temperature=0"),
    ),
    run(
        "params",
        "head.C='x'",
        {"--methods": "distill"},
        *("--param", "distill.teacher=head", "--param", 'distill.teacher_params={{"C": "x"}}'),
        id="distill-teacher-params",
    ),
    run(
        "params",
        "encoder-ft.encoder {bad}/no-such-encoder: no such model directory",
        {"--methods": "encoder-ft"},
        *("--param", "encoder-ft.encoder={bad}/no-such-encoder"),
    ),
    # ---- model directories ------------------------------------------------------------------
    run("models", "--model {bad}/nope: no such model", {"--model": "{bad}/nope"}, store=True),
    run("models", "--model ./typo-model: no such model", {"--model": "./typo-model"}),
    run("models", "--model {bad}/notes.txt: is a file", {"--model": "{bad}/notes.txt"}),
    run("models", "no-config: no config.json", {"--encoder": "{models}/no-config"}),
    run("models", "bad-config/config.json: not valid JSON", {"--encoder": "{models}/bad-config"}),
    run("models", "list-config/config.json: not a JSON", {"--encoder": "{models}/list-config"}),
    run("models", "no-weights: no weights", {"--encoder": "{models}/no-weights"}),
    run(
        "models", "truncated/model.safetensors: not a complete", {"--encoder": "{models}/truncated"}
    ),
    run(
        "models",
        "missing-shard/model.safetensors.index.json: shard",
        {"--encoder": "{models}/missing-shard"},
    ),
    run("models", "no-tokenizer: no tokenizer", {"--encoder": "{models}/no-tokenizer"}),
    run(
        "models",
        "bad-tokenizer/tokenizer.json: not valid JSON",
        {"--encoder": "{models}/bad-tokenizer"},
    ),
    run(
        "models",
        "--chat: --model",
        {"--model": "{models}/lm-no-chat"},
        "--chat",
        id="chat-no-template",
    ),
    # ---- data files, labels, encodings and paths ---------------------------------------------
    run("data", "no such file: {bad}/nope.csv", {"--task": "{bad}/nope.csv"}, id="task-missing"),
    run("data", "no such file: no-such-dir/good.cvs", {"--task": "no-such-dir/good.cvs"}),
    run("data", "no such file: good.cvs", {"--task": "good.cvs", "--test-file": None}),
    run(
        "data", "no such file: {bad}/nope.csv", {"--test-file": "{bad}/nope.csv"}, id="test-missing"
    ),
    run("data", "{bad}: is a directory", {"--task": "{bad}"}, id="task-directory"),
    run("data", "--test-file is for a task from a file", {"--task": "ag_news"}),
    run(
        "data",
        "--text-column: for a task from a file",
        {"--task": "ag_news", "--test-file": None},
        "--text-column",
        "article",
        id="builtin-text-column",
    ),
    run(
        "data",
        "--encoding: for a task from a file",
        {"--task": "ag_news", "--test-file": None},
        "--encoding",
        "latin-1",
        id="builtin-encoding",
    ),
    run("data", "notes.txt: unknown file type '.txt'", {"--task": "{bad}/notes.txt"}),
    run("data", "empty.csv: the file is empty", {"--task": "{bad}/empty.csv"}),
    run("data", "header-only.csv: no data rows", {"--task": "{bad}/header-only.csv"}),
    run("data", "no-text-column.csv: no column 'text'", {"--task": "{bad}/no-text-column.csv"}),
    run("data", "train.csv: no column 'body'", {}, "--text-column", "body", id="text-column"),
    run("data", "no-label-column.tsv: no column 'label'", {"--task": "{bad}/no-label-column.tsv"}),
    run("data", "empty-text.csv: row 2: field 'text' is empty", {"--task": "{bad}/empty-text.csv"}),
    run("data", "blank-text.csv: row 2: field 'text' is empty", {"--task": "{bad}/blank-text.csv"}),
    run("data", "no-label.csv: row 3: field 'label' is missing", {"--task": "{bad}/no-label.csv"}),
    run(
        "data", "null-text.jsonl: row 2: field 'text' is empty", {"--task": "{bad}/null-text.jsonl"}
    ),
    run(
        "data",
        "number-text.jsonl: row 2: field 'text' is not text",
        {"--task": "{bad}/number-text.jsonl"},
    ),
    run(
        "data",
        "list-label.jsonl: row 2: field 'label' is not a label",
        {"--task": "{bad}/list-label.jsonl"},
    ),
    run("data", "ragged.csv: could not read it as .csv", {"--task": "{bad}/ragged.csv"}),
    run("data", "broken.jsonl: could not read it as .jsonl", {"--task": "{bad}/broken.jsonl"}),
    run("data", "corrupt.parquet: could not read it", {"--task": "{bad}/corrupt.parquet"}),
    run(
        "data",
        "one-class.csv: the training rows hold 1 class ('a')",
        {"--task": "{bad}/one-class.csv", "--test-file": None},
    ),
    run(
        "data",
        "unseen-test.csv: test label(s) 'zzz' never occur",
        {"--test-file": "{bad}/unseen-test.csv"},
        store=True,
    ),
    run("data", "--allow-overlap", {"--test-file": "{train}"}, id="overlap-train-as-test"),
    run(
        "data",
        "latin1.csv: not valid utf-8 text (line 12: byte 0xe9); give the file's encoding",
        {"--task": "{bad}/latin1.csv", "--test-file": None},
    ),
    run(
        "data",
        "utf16.csv: not valid utf-8 text (line 1: byte 0xff); give the file's encoding, it starts "
        "with a UTF-16 byte-order mark: --encoding utf-16",
        {"--task": "{bad}/utf16.csv", "--test-file": None},
    ),
    # ---- the advantage command --------------------------------------------------------------
    advantage("file not found: {bad}/nope.csv", results="{bad}/nope.csv"),
    advantage("{bad} is a directory", results="{bad}", id="adv-directory"),
    advantage("empty.csv is empty", results="{bad}/empty.csv"),
    advantage("notes.txt: missing column(s)", results="{bad}/notes.txt"),
    advantage("line 3, column 'value'", results="{bad}/adv-value.csv"),
    advantage("line 2, column 'n_train'", results="{bad}/adv-negative.csv"),
    advantage("unknown method 'nope'", method="nope", id="adv-method"),
    advantage("unknown method 'nope'", baseline="nope", id="adv-baseline"),
    advantage("method and baseline are the same ('head')", baseline="head"),
    advantage("--target nan: expected a finite score", "--target", "nan"),
    advantage("--plot {bad}/no/a.png: no such directory", "--plot", "{bad}/no/a.png"),
    advantage("--plot {bad}/a.docx: use a suffix of", "--plot", "{bad}/a.docx"),
    advantage("unknown task 'imdb'", "--task", "imdb"),
    advantage("several metrics", results="{bad}/adv-two-metrics.csv"),
    advantage("argument --estimator", "--estimator", "best"),
    command("advantage", "required: --baseline", "advantage", "{results}", "--method", "head"),
    # ---- the report command -----------------------------------------------------------------
    command("report", "{bad}: no runs.sqlite here", "report", "{bad}", id="report-no-store"),
    command(
        "report", "{bad}/nope: no runs.sqlite here", "report", "{bad}/nope", id="report-no-dir"
    ),
    command(
        "report",
        "--compare features-lr,nope",
        "report",
        "{out}",
        "--compare",
        "features-lr,nope",
        store=True,
    ),
]


def broken_models(root: Path, lm: str, encoder: str) -> None:
    """Copies of the tiny models, each with one thing wrong."""
    for name in (
        "no-config",
        "bad-config",
        "list-config",
        "no-weights",
        "truncated",
        "no-tokenizer",
        "bad-tokenizer",
        "missing-shard",
    ):
        shutil.copytree(encoder, root / name)
    (root / "no-config" / "config.json").unlink()
    (root / "bad-config" / "config.json").write_text("{oops")
    (root / "list-config" / "config.json").write_text("[1, 2]")
    (root / "no-weights" / "model.safetensors").unlink()
    weights = root / "truncated" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (root / "no-tokenizer" / name).unlink()
    (root / "bad-tokenizer" / "tokenizer.json").write_text("{")
    (root / "missing-shard" / "model.safetensors").rename(
        root / "missing-shard" / "model-00001-of-00002.safetensors"
    )
    index = {
        "weight_map": {
            "a": "model-00001-of-00002.safetensors",
            "b": "model-00002-of-00002.safetensors",
        }
    }
    (root / "missing-shard" / "model.safetensors.index.json").write_text(json.dumps(index))
    shutil.copytree(lm, root / "lm-no-chat")
    (root / "lm-no-chat" / "chat_template.jinja").unlink()


@pytest.fixture(scope="module")
def places(tmp_path_factory, tiny_lm_dir, tiny_encoder_dir) -> dict[str, str]:
    """Placeholders of the cases: the good task files, the tiny models, the bad files and
    models, a finished store (--out of a valid run) and learning curves for `advantage`."""
    root = tmp_path_factory.mktemp("bad-inputs")
    train, test = write_task_files(tiny_task(), root)
    bad = root / "bad"
    bad.mkdir()
    for name, content in FILES.items():
        (bad / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    adv_header = "method,seed,n_train,metric,value\n"
    (bad / "adv-value.csv").write_text(adv_header + "head,0,10,acc,0.5\nhead,0,20,acc,abc\n")
    (bad / "adv-negative.csv").write_text(adv_header + "head,0,ten,acc,0.5\n")
    curves = "head,0,10,acc,0.5,t\nhead,0,100,acc,0.7,t\nzero-shot,0,0,acc,0.55,t\n"
    (bad / "adv-good.csv").write_text(adv_header.replace("\n", ",task\n") + curves)
    (bad / "adv-two-metrics.csv").write_text(
        adv_header + curves.replace(",t\n", "\n") + "head,0,10,f1,0.4\n"
    )
    broken_models(root / "models", tiny_lm_dir, tiny_encoder_dir)
    places = {
        "train": train,
        "test": test,
        "lm": tiny_lm_dir,
        "enc": tiny_encoder_dir,
        "bad": str(bad),
        "models": str(root / "models"),
    }
    store = root / "store"
    valid = [arg.format(**places, out=store) for arg in run("", "").values[1]]
    assert main(valid) == 0, "the valid base run must succeed"
    gc.collect()  # the sweep's store connection closes: SQLite folds its -wal into runs.sqlite
    assert sorted(p.name for p in store.glob("runs.sqlite*")) == ["runs.sqlite"]
    return {**places, "store": str(store), "results": str(bad / "adv-good.csv")}


def snapshot(folder: Path) -> dict[str, bytes] | None:
    if not folder.exists():
        return None
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize(("category", "argv", "expected", "store"), CASES)
def test_bad_input_is_one_line_and_exit_2(
    places, tmp_path, capsys, category, argv, expected, store
):
    out = tmp_path / "out"
    if store:
        shutil.copytree(places["store"], out)
    before = snapshot(out)
    capsys.readouterr()
    code = main([arg.format(**places, out=out) for arg in argv])
    stdout, stderr = capsys.readouterr()
    lines = stderr.strip().splitlines()
    assert code == 2, stderr
    assert len(lines) == 1 and lines[0].startswith("promptworth: error: "), stderr
    assert expected.format(**places, out=out) in lines[0]
    assert "Traceback" not in stderr and stdout == ""
    if store:
        gc.collect()  # a store opened to read closes: SQLite removes its -wal and -shm files
    assert snapshot(out) == before  # None: no --out was created


def test_cases_cover_every_category():
    counts: dict[str, int] = {}
    for case in CASES:
        counts[case.values[0]] = counts.get(case.values[0], 0) + 1
    assert set(counts) == {"cli", "templates", "params", "models", "data", "advantage", "report"}
    assert sum(counts.values()) >= 60


def test_a_bug_keeps_its_traceback_and_exits_1(places, tmp_path, capsys, monkeypatch):
    """Anything but a PromptworthError is promptworth's fault: traceback, "bug", exit 1."""
    from promptworth.run import validate

    def broken(spec, task=None):
        raise KeyError("boom")

    monkeypatch.setattr(validate, "checked_task", broken)
    argv = [arg.format(**places, out=tmp_path / "out") for arg in run("", "").values[1]]
    assert main(argv) == 1
    stderr = capsys.readouterr().err
    assert "Traceback (most recent call last)" in stderr and "KeyError: 'boom'" in stderr
    assert "this is a bug in promptworth" in stderr
    assert not (tmp_path / "out").exists()
