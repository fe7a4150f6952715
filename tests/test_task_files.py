"""Task files (YAML): a good one loads into the task it describes; each malformed one is refused
with one line naming the file and the field; `tasks new` writes a file that loads."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pandas as pd
import pytest

from promptworth.cli import main
from promptworth.errors import PromptworthError
from promptworth.tasks import load_task
from promptworth.tasks.taskfile import starter_yaml
from promptworth.testing import tiny_pair_task, tiny_task, write_task_files

GOOD = """\
name: mine
description: my topics
train: data/train.csv
test: data/test.csv
labels:
  sports: [sport, sports]
  business: [business]
  science: science
templates:
  - "Article: {text}\\nTopic:"
  - "{text} is about"
"""

PAIR = """\
name: pairs
train: pair.csv
inputs: {passage: p, question: q}
label_column: answer
labels:
  no: [no]
  yes: [yes, right]
templates:
  - "{passage}\\nQuestion: {question}?\\nAnswer:"
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    write_task_files(tiny_task(), tmp_path / "data")
    pair = tiny_pair_task()
    passages, questions = zip(*pair.train.texts)
    answers = ["yes" if y else "no" for y in pair.train.labels]
    frame = pd.DataFrame({"p": passages, "q": questions, "answer": answers})
    frame.drop_duplicates(["p", "q"]).to_csv(tmp_path / "pair.csv", index=False)
    return tmp_path


def write(folder: Path, text: str, name: str = "task.yaml") -> str:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_a_task_file_gives_its_labels_words_templates_and_data(folder):
    task = load_task(write(folder, GOOD))
    assert task.name == "mine" and task.description == "my topics"
    assert task.label_names == ["sports", "business", "science"]  # the file's order
    assert task.verbalizers == [["sport", "sports"], ["business"], ["science"]]
    assert task.templates[0] == "Article: {text}\nTopic:"
    assert task.inputs == ("text",)
    data = load_task(str(folder / "data" / "train.csv"), str(folder / "data" / "test.csv"))
    assert task.train.texts == data.train.texts and task.test.texts == data.test.texts
    named = [task.label_names[y] for y in task.train.labels]
    assert named == [data.label_names[y] for y in data.train.labels]


def test_a_pair_task_file_has_two_inputs_and_renders_both(folder):
    task = load_task(write(folder, PAIR))
    assert task.inputs == ("passage", "question")
    passage, question = task.train.texts[0]
    assert task.render(0, task.train.texts[0]) == f"{passage}\nQuestion: {question}?\nAnswer:"
    assert task.label_names == ["no", "yes"]  # YAML 1.2: yes/no stay words, not booleans
    assert len(task.test) == round(0.2 * (len(task.train) + len(task.test)))  # held out


def test_the_fingerprint_covers_templates_words_names_and_inputs(folder):
    base = load_task(write(folder, GOOD))
    variants = {
        "template": GOOD.replace("Article:", "Story:"),
        "words": GOOD.replace("[sport, sports]", "[sport]"),
        "names": GOOD.replace("my topics", "my topics").replace(
            "  science: science", "  science: [science, research]"
        ),
    }
    prints = {
        key: load_task(write(folder, text, f"{key}.yaml")).fingerprint
        for key, text in variants.items()
    }
    assert base.fingerprint not in prints.values() and len(set(prints.values())) == 3
    renamed = dataclasses.replace(base, inputs=("article",), templates=["A: {article}"])
    assert renamed.fingerprint != dataclasses.replace(base, templates=["A: {text}"]).fingerprint


BAD = [
    ("not: [valid", "not valid YAML (line 1"),
    ("- a list\n- of things\n", "expected a mapping of fields"),
    (GOOD.replace("labels:", "lables:"), "lables: unknown field; did you mean 'labels'?"),
    (GOOD.replace("name: mine\n", ""), "name: missing"),
    (GOOD.replace("train: data/train.csv", "train: data/nothere.csv"), "train: no such data file"),
    (GOOD.replace("name: mine", "name: [1, 2]"), "name: expected a task name"),
    (GOOD.replace("science: science", "science: science\n  physics: [physics]"), "'physics' never"),
    (GOOD.replace("  science: science", "  science: []"), "labels.science: expected a non-empty"),
    (GOOD.replace("[business]", "[sport]"), "labels: verbaliser word 'sport' is given to labels"),
    (GOOD.replace("Article: {text}", "Article: {txt}"), "templates[0]: slot {txt} is not an input"),
    (GOOD.replace("{text} is about", "it is about"), "templates[1]: 'it is about' has no slot"),
    (GOOD.replace("templates:\n", "templates: 3\n").split("  - ")[0], "templates: expected a list"),
    (GOOD.replace("labels:", "encoding: klingon\nlabels:"), "encoding: unknown encoding"),
    (GOOD.split("labels:")[0] + "labels: [sports, business]\n", "labels: expected a mapping"),
    (GOOD.replace("  science: science\n", ""), "is not one of the labels of"),
    (
        GOOD.replace("test:", "text_column: text\ninputs: {text: text}\ntest:"),
        "inputs: give either",
    ),
    (PAIR.replace("{passage: p, question: q}", "{passage: p, 'two words': q}"), "slot 'two words'"),
    (PAIR.replace("{question}?", "{questoin}?"), "did you mean 'question'?"),
    (PAIR.replace("question: q}", "question: qq}"), "no column 'qq'"),
    (PAIR.replace("[yes, right]", "[yes, true]"), "labels.yes: verbaliser words must be non-empty"),
    # a name is one folder of a suite's output, never a path
    (GOOD.replace("name: mine", "name: ../../victim"), "name: '../../victim' is not a task name"),
    (GOOD.replace("name: mine", "name: /tmp/elsewhere"), "name: '/tmp/elsewhere' is not a task"),
    (GOOD.replace("name: mine", "name: '..'"), "name: '..' is not a task name"),
    (GOOD.replace("name: mine", "name: a\\b"), "is not a task name"),
    # a file that says two things
    (
        GOOD.replace("test:", "train: data/test.csv\ntest:"),
        "line 4: key 'train' given twice (first",
    ),
    (GOOD.replace("  business:", "  sports: [x]\n  business:"), "line 7: key 'sports' given twice"),
    (GOOD.replace("[business]", "&words [business]"), "line 7: &words: anchors and aliases"),
    (GOOD.replace("science: science", "science: *w"), "line 8: *w: anchors and aliases are not"),
]


@pytest.mark.parametrize("text, expected", BAD, ids=[expected for _, expected in BAD])
def test_a_malformed_task_file_is_one_line_naming_file_and_field(folder, text, expected, capsys):
    path = write(folder, text)
    with pytest.raises(PromptworthError) as error:
        load_task(path)
    message = str(error.value)
    assert expected in message
    assert "\n" not in message
    if "is not one of the labels" not in message and "no column" not in message:
        assert message.startswith(path)  # the file, then the field
    # and the CLI prints it on one line with status 2, before any model loads
    assert main(["tasks", "show", path]) == 2
    assert capsys.readouterr().err.count("\n") == 1


BILLION_LAUGHS = (
    "name: lol\ntrain: data/train.csv\nl0: &l0 [lol, lol, lol, lol, lol, lol, lol]\n"
    + "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 10))
)


def test_a_billion_laughs_file_is_refused_at_its_first_anchor_in_well_under_a_second(folder):
    path = write(folder, BILLION_LAUGHS)
    assert len(BILLION_LAUGHS) < 1000
    start = time.perf_counter()
    with pytest.raises(PromptworthError) as error:
        load_task(path)
    assert time.perf_counter() - start < 0.5
    assert str(error.value) == (
        f"{path}: line 3: &l0: anchors and aliases are not accepted in task files; write the "
        "value out where it is used"
    )


@pytest.mark.parametrize(
    "fields",
    [
        "name: {value}/y",
        "name: t\nlabels: {{sports: [{value}, 5], business: [b]}}",
        "name: t\ntemplates: ['{value}']",
        "name: t\nunknown_{value}: 1",
        "name: t\nlabels: {{{value}: [a], {value}: [b]}}",
    ],
    ids=["name", "labels", "templates", "field", "duplicate-key"],
)
def test_an_error_quotes_at_most_about_200_characters_of_a_value(folder, fields):
    text = "train: data/train.csv\n" + fields.format(
        value="x" * 1000
    )  # a YAML key holds up to 1024 + "\n"
    with pytest.raises(PromptworthError) as error:
        load_task(write(folder, text))
    assert "xxxxxxxx" in str(error.value) and len(str(error.value)) < 200 + 250


def test_file_options_are_refused_with_a_task_file(folder):
    path = write(folder, GOOD)
    with pytest.raises(PromptworthError, match="--text-column: for a task from a file"):
        load_task(path, text_column="body")
    with pytest.raises(PromptworthError, match="--test-file: a task file names its own"):
        load_task(path, test_file=str(folder / "data" / "test.csv"))


def test_tasks_new_writes_a_file_that_loads_and_tasks_show_prints_it(folder, capsys):
    out = folder / "new.yaml"
    assert main(["tasks", "new", str(folder / "data" / "train.csv"), "-o", str(out)]) == 0
    text = out.read_text()
    assert '"sports": ["sports"]  # 16 rows' in text and 'train: "data/train.csv"' in text
    edited = text.replace('"sports": ["sports"]', '"sports": ["sport", "football"]')
    out.write_text(edited.replace("# test: test.csv", 'test: "data/test.csv"'))
    task = load_task(str(out))
    assert task.verbalizers[task.label_names.index("sports")] == ["sport", "football"]
    capsys.readouterr()
    assert main(["tasks", "show", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "sport, football" in shown and "Text: " in shown and "16 / " in shown
    assert main(["tasks", "new", str(folder / "data" / "train.csv"), "-o", str(out)]) == 2


def test_tasks_new_proposes_words_from_label_values(tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("body,kind\nfirst text,sci_tech\nsecond text,World\nthird,World\n")
    text = starter_yaml(str(data), "body", "kind", str(tmp_path / "t.yaml"))
    assert '"sci_tech": ["sci tech"]  # 1 rows' in text and '"World": ["world"]  # 2 rows' in text
    assert 'text_column: "body"' in text and 'label_column: "kind"' in text


def test_a_task_file_can_name_a_datasets_dataset_with_two_inputs(tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    pair = tiny_pair_task(n_train=20, n_test=10)
    features = datasets.Features(
        {
            "p": datasets.Value("string"),
            "q": datasets.Value("string"),
            "label": datasets.ClassLabel(names=["False", "True"]),
        }
    )

    def split(part):
        columns = {"p": [p for p, _ in part.texts], "q": [q for _, q in part.texts]}
        return datasets.Dataset.from_dict({**columns, "label": part.labels.tolist()}, features)

    loaded = datasets.DatasetDict({"train": split(pair.train), "test": split(pair.test)})
    monkeypatch.setattr(datasets, "load_dataset", lambda name: loaded)
    text = (
        "name: hub_pairs\ntrain: someone/pairs\ninputs: {passage: p, question: q}\n"
        "labels: {'False': [no], 'True': [yes]}\n"
        "templates: ['{passage} Q: {question}? A:']\n"
    )
    task = load_task(write(tmp_path, text))
    assert task.inputs == ("passage", "question") and task.verbalizers == [["no"], ["yes"]]
    assert task.train.texts[0] == pair.train.texts[0] and len(task.test) == len(pair.test)
    assert task.version.startswith("datasets-")
    with pytest.raises(PromptworthError, match="test: a datasets name brings its own"):
        load_task(write(tmp_path, text + "test: other.csv\n", "t2.yaml"))
