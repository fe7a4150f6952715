"""Task loading: the StaICC shuffle is inverted exactly; user files fail with clear errors."""

from __future__ import annotations

import pickle
from collections import Counter

import numpy as np
import pytest

from promptworth.paths import looks_like_path
from promptworth.tasks import load_task, staicc
from promptworth.tasks.files import TaskDataError, load_files


def staicc_shuffle(rows: list) -> list:
    """StaICC's own forward shuffle (stable_random.sample_index_set), written from its docs."""
    x, pool, out = staicc.LCG_SEED, list(range(len(rows))), []
    for _ in range(len(rows)):
        x = (x * staicc.LCG_A + staicc.LCG_B) % staicc.LCG_M
        out.append(rows[pool.pop(int(x / staicc.LCG_M * len(pool)))])
    return out


def test_unshuffle_inverts_the_lcg_shuffle():
    rows = [(f"row {i}", i % 4) for i in range(257)]
    assert staicc.unshuffle(staicc_shuffle(rows)) == rows


def test_unpickler_refuses_globals(tmp_path):
    path = tmp_path / "evil.dataset"
    path.write_bytes(pickle.dumps([(["text"], Counter())]))  # a global: collections.Counter
    with path.open("rb") as handle, pytest.raises(pickle.UnpicklingError, match="refusing"):
        staicc._NoGlobalsUnpickler(handle).load()


def test_ag_news_canonical_split():
    task = load_task("ag_news")
    assert (len(task.train), len(task.test)) == (120_000, 7_600)
    assert np.bincount(task.train.labels).tolist() == [30_000] * 4
    assert np.bincount(task.test.labels).tolist() == [1_900] * 4
    assert task.train.texts[0].startswith("Wall St. Bears Claw Back Into the Black (Reuters)")
    assert task.train.labels[0] == 2
    assert task.test.texts[0].startswith("Fears for T N pension after talks")
    assert task.test.labels[0] == 2
    assert task.label_names == ["World", "Sports", "Business", "Sci/Tech"]
    assert "Given news article: {text}. The topic is:" in task.templates


def write(path, text):
    path.write_text(text)
    return str(path)


def test_csv_task_with_held_out_test(tmp_path):
    rows = "\n".join(f"text number {i},{'pos' if i % 2 else 'neg'}" for i in range(20))
    task = load_files(write(tmp_path / "d.csv", "text,label\n" + rows))
    assert task.label_names == ["neg", "pos"]
    assert len(task.train) + len(task.test) == 20 and len(task.test) == 4
    assert task.version.startswith("sha256-")


def test_jsonl_task_with_test_file(tmp_path):
    train = write(tmp_path / "train.jsonl", '{"t": "a b", "y": 1}\n{"t": "c d", "y": 0}\n')
    test = write(tmp_path / "test.jsonl", '{"t": "e f", "y": 1}\n')
    task = load_files(train, test, text_column="t", label_column="y")
    assert (len(task.train), len(task.test)) == (2, 1)


def test_missing_column_names_file_and_columns(tmp_path):
    path = write(tmp_path / "d.csv", "sentence,label\nhello,1\n")
    with pytest.raises(TaskDataError, match=r"d\.csv: no column 'text'.*sentence"):
        load_files(path)


def test_empty_text_names_the_row(tmp_path):
    path = write(tmp_path / "d.csv", "text,label\nfine,1\n,0\n")
    with pytest.raises(TaskDataError, match="row 2: field 'text' is empty"):
        load_files(path)


def test_missing_label_names_the_row(tmp_path):
    path = write(tmp_path / "d.jsonl", '{"text": "a", "label": 1}\n{"text": "b", "label": null}\n')
    with pytest.raises(TaskDataError, match="row 2: field 'label' is missing"):
        load_files(path)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(TaskDataError, match="no such file"):
        load_files(str(tmp_path / "nope.csv"))


def test_numeric_labels_are_one_label_however_spelled(tmp_path):
    """Train 0,1,2 and test 0.0,1.0,"2" are three classes, not six."""
    train = write(
        tmp_path / "train.csv", "text,label\n" + "".join(f"t{i},{i % 3}\n" for i in range(9))
    )
    test = write(
        tmp_path / "test.jsonl", '{"text": "a", "label": 0.0}\n{"text": "b", "label": "2"}\n'
    )
    task = load_files(train, test)
    assert task.label_names == ["0", "1", "2"]
    assert task.test.labels.tolist() == [0, 2]


def test_labels_are_stripped_and_numbers_sorted_as_numbers(tmp_path):
    rows = "".join(f"t{i},{[' 10', '2 ', '10'][i % 3]}\n" for i in range(9))
    assert load_files(write(tmp_path / "d.csv", "text,label\n" + rows)).label_names == ["2", "10"]
    rows = "".join(f"t{i},{[' pos', 'neg ', 'pos'][i % 3]}\n" for i in range(9))
    assert load_files(write(tmp_path / "e.csv", "text,label\n" + rows)).label_names == [
        "neg",
        "pos",
    ]


def test_texts_that_look_like_numbers_or_missing_values_stay_text(tmp_path):
    path = write(tmp_path / "d.csv", "\ufefftext,label\nNA,a\n123,b\nnull,a\nNone,b\n")
    task = load_files(path, path, allow_overlap=True)
    assert sorted(task.train.texts) == ["123", "NA", "None", "null"]


def test_a_little_overlap_is_a_warning_with_its_count(tmp_path, caplog):
    train = "text,label\n" + "".join(f"train {i},{i % 2}\n" for i in range(20))
    test = "text,label\ntrain 3,1\n" + "".join(f"test {i},{i % 2}\n" for i in range(199))
    task = load_files(write(tmp_path / "a.csv", train), write(tmp_path / "b.csv", test))
    assert len(task.test) == 200
    assert "b.csv: 1 of 200 test texts (0.5%) also appear in the training rows" in caplog.text


def test_overlap_is_allowed_when_asked(tmp_path):
    path = write(tmp_path / "d.csv", "text,label\n" + "".join(f"t{i},{i % 2}\n" for i in range(8)))
    with pytest.raises(TaskDataError, match="8 of 8 test texts"):
        load_files(path, path)
    assert len(load_files(path, path, allow_overlap=True).test) == 8


def test_another_encoding_is_read_when_named_and_is_part_of_the_version(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes("text,label\ncafé,a\nthé,b\nbière,a\nvin,b\neau,a\n".encode("latin-1"))
    with pytest.raises(TaskDataError, match=r"not valid utf-8 text \(line 2: byte 0xe9\)"):
        load_files(str(path))
    task = load_files(str(path), encoding="latin-1")
    assert "café" in task.train.texts + task.test.texts
    assert task.version.endswith("-iso8859-1")


@pytest.mark.parametrize(
    ("spec", "is_path"),
    [
        ("ag_news", False),
        ("stanfordnlp/imdb", False),
        ("Qwen/Qwen2.5-0.5B", False),
        ("bigcode/the-stack-v1.2", False),
        ("good.cvs", True),
        ("data/good.csv", True),
        ("./model", True),
        ("/abs/dir", True),
        ("~/models/x", True),
        ("a/b/c", True),
        ("tests/anything", True),  # under an existing local directory
    ],
)
def test_paths_are_told_from_hub_names(spec, is_path):
    assert looks_like_path(spec) is is_path
