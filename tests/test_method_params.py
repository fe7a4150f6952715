"""Method parameters become their declared types, so one experiment has one run key, and a value
of the wrong type or outside its allowed range is refused naming METHOD.KEY."""

from __future__ import annotations

import json
from dataclasses import fields
from typing import get_type_hints

import pytest

from promptworth.methods import REGISTRY, make_method, method_class
from promptworth.methods.base import TYPE_NAMES, ParameterError, convert, optional_type
from promptworth.methods.pet import STUDENT_RECIPE
from promptworth.run.sweep import Sweep, SweepSpec
from promptworth.testing import tiny_task, write_task_files


@pytest.mark.parametrize(
    ("value", "kind", "expected"),
    [
        (1, float, 1.0),
        ("1", float, 1.0),
        ("1e-3", float, 0.001),
        ("8", int, 8),
        (" 8 ", int, 8),
        (8.0, int, 8),
        ("8.0", int, 8),
        ("true", bool, True),
        ("False", bool, False),
        (True, bool, True),
        ('{"C": 1}', dict, {"C": 1}),
        ({"C": 1}, dict, {"C": 1}),
        ("all-linear", str, "all-linear"),
    ],
)
def test_values_become_the_declared_type(value, kind, expected):
    converted = convert(value, kind)
    assert converted == expected and type(converted) is kind


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("abc", float),
        ("nan", float),
        ("inf", float),
        (True, float),
        (True, int),
        ("8.5", int),
        (8.5, int),
        ("yes", bool),
        (1, bool),
        ("[1]", dict),
        ("{", dict),
        (5, str),
    ],
)
def test_values_of_another_type_are_refused(value, kind):
    with pytest.raises(ValueError):
        convert(value, kind)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_declared_type_converts_and_defaults_round_trip_as_strings(name):
    """What --param gives (a string per value) configures exactly the defaults again."""
    cls = method_class(name)
    hints = get_type_hints(cls.Config).values()
    assert {optional_type(hint)[0] for hint in hints} <= set(TYPE_NAMES)
    defaults = make_method(name).get_params()
    as_strings = {
        f.name: json.dumps(v) if isinstance(v, dict) else str(v)
        for f in fields(cls.Config)
        for v in [defaults[f.name]]
    }
    assert make_method(name, **as_strings).get_params() == defaults


def test_refusal_names_method_key_type_and_value():
    with pytest.raises(ParameterError) as error:
        make_method("features-lr", C="abc")
    assert str(error.value) == (
        "method parameter features-lr.C='abc': expected a finite number (float) or null"
    )


def test_nested_parameters_keep_their_own_method_name_and_are_converted():
    with pytest.raises(ParameterError, match=r"head\.C='x'"):
        make_method("distill", teacher="head", teacher_params={"C": "x"})
    method = make_method("distill", teacher="head", teacher_params='{"C": 1}')
    assert method.get_params()["teacher_params"] == make_method("head", C=1.0).get_params()


@pytest.mark.parametrize(
    ("name", "nested", "inner", "recipe"),
    [
        ("distill", "teacher_params", "teacher", {}),
        ("distill", "student_params", "student", {}),
        ("pet", "pattern_params", "pattern_method", {}),
        ("pet", "student_params", "student", STUDENT_RECIPE),  # pet's own, over the student's
    ],
)
def test_nested_methods_are_stored_with_their_defaults(name, nested, inner, recipe):
    """A nested method's defaults are part of the config (and so of the run key): a run whose
    student's default changed is a new experiment, never the stored one."""
    method = make_method(name)
    inner_method = make_method(method.get_params()[inner], **recipe)
    assert method.get_params()[nested] == inner_method.get_params()


@pytest.fixture
def planned_keys(tmp_path, tiny_lm_dir, tiny_encoder_dir):
    """The run keys a one-method sweep on the tiny task plans, for other spec fields."""
    train, test = write_task_files(tiny_task(), tmp_path)

    def keys(method: str, **fields) -> list[str]:
        spec = SweepSpec(
            task=train,
            test_file=test,
            models=[tiny_lm_dir],
            encoders=[tiny_encoder_dir],
            methods=[method],
            sizes=[8],
            seeds=[0],
            dtype="float32",
            out=tmp_path / "out",
            **fields,
        )
        return [run.config.key() for run in Sweep(spec, quiet=True).plan()]

    return keys


def test_equal_experiments_have_equal_run_keys(planned_keys):
    def keys(params: dict) -> list[str]:
        return planned_keys("features-lr", method_params={"features-lr": params})

    default = keys({})  # C=None: chosen by cross-validation
    assert keys({"C": "null"}) == keys({"max_tokens": "128"}) == default
    assert keys({"C": 1}) == keys({"C": "1.0"}) != default
    assert keys({"C": 2}) != keys({"C": 1})


def test_tune_reaches_every_method_that_has_it_and_a_given_param_wins():
    from promptworth.cli import build_parser
    from promptworth.cli.run import build_spec

    methods = "zero-shot,prompt-lora,encoder-ft"
    given = ["--tune", "quick", "--param", "encoder-ft.tune=full"]
    args = build_parser().parse_args(["run", "--methods", methods, *given])
    spec = build_spec(args)
    assert spec.params("prompt-lora")["tune"] == "quick"
    assert spec.params("encoder-ft")["tune"] == "full"
    assert "tune" not in spec.params("zero-shot")  # no learning rate to search
    untuned = build_spec(build_parser().parse_args(["run", "--methods", "prompt-lora"]))
    assert "tune" not in untuned.params("prompt-lora")


def test_tune_enters_the_run_key(planned_keys):
    def keys(tune: str | None) -> list[str]:
        return planned_keys("encoder-ft", tune=tune)

    assert keys(None) == keys("none") != keys("quick")
