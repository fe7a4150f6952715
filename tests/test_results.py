"""The results table: one row per run, variants of a method kept apart."""

from __future__ import annotations

from promptworth.analysis.results import method_labels, results_frame, summary_table


def config(method: str, seed: int, **params) -> dict:
    return {"method": method, "method_params": {"k": 4, **params}, "n_train": 10, "seed": seed}


def test_one_parameter_set_keeps_the_plain_name():
    assert method_labels([config("few-shot", 0), config("few-shot", 1)]) == ["few-shot"] * 2


def test_variants_are_named_by_the_parameters_that_differ():
    configs = [
        config("few-shot", 0, selection="random"),
        config("few-shot", 0, selection="knn"),
        config("head", 0),
    ]
    assert method_labels(configs) == [
        "few-shot[selection=random]",
        "few-shot[selection=knn]",
        "head",
    ]


def test_nested_parameters_keep_their_parent_and_unrecorded_ones_stay_out():
    """A nested parameter is named by its path; one that only one variant records (an older
    store) is left out when recorded differences already tell the variants apart."""
    student = {"max_steps": 400, "batch_size": 8}
    configs = [
        config("distill", 0, teacher="ia3", student_params=student, teacher_params={"r": 8}),
        config("distill", 0, teacher="zero-shot", student_params=student, teacher_params={}),
        config("distill", 0, teacher="zero-shot", student_params={**student, "max_steps": 150}),
    ]
    assert method_labels(configs) == [
        "distill[student_params.max_steps=400,teacher=ia3]",
        "distill[student_params.max_steps=400,teacher=zero-shot]",
        "distill[student_params.max_steps=150,teacher=zero-shot]",
    ]
    older = config("distill", 0, teacher="zero-shot", student_params={})
    assert method_labels([configs[1], older]) == [
        "distill[student_params.max_steps=400]",
        "distill[student_params.max_steps=None]",
    ]


def test_variants_are_not_averaged_together():
    rows = [
        (f"key{i}", config("few-shot", seed, selection=sel), {"accuracy": acc})
        for i, (seed, sel, acc) in enumerate(
            [(0, "random", 0.4), (1, "random", 0.5), (0, "knn", 0.8), (1, "knn", 0.9)]
        )
    ]
    table = summary_table(results_frame(rows))
    assert table.loc["few-shot[selection=random]", 10] == "0.450 ± 0.071"
    assert table.loc["few-shot[selection=knn]", 10] == "0.850 ± 0.071"


def test_compare_accepts_variant_names():
    from promptworth.cli.arguments import method_pair

    assert method_pair("head,few-shot[calibrate=True,selection=knn]") == (
        "head",
        "few-shot[calibrate=True,selection=knn]",
    )
    assert method_pair("few-shot[k=4,selection=random], head") == (
        "few-shot[k=4,selection=random]",
        "head",
    )


def sized(method: str, n_train: int, **params) -> dict:
    return {**config(method, 0, **params), "n_train": n_train}


def test_a_recipe_that_changes_with_size_is_one_curve_and_says_so():
    """Variants that never share a size and differ only in method parameters are one method's
    recipe by size: one plain name, and recipes_by_size says which parameters held where."""
    from promptworth.analysis.results import recipes_by_size

    configs = [
        sized("distill", 10, teacher="zero-shot"),
        sized("distill", 100, teacher="head"),
        sized("distill", 1000, teacher="head"),
        sized("head", 10),
    ]
    assert method_labels(configs) == ["distill"] * 3 + ["head"]
    assert recipes_by_size(configs) == {
        "distill": [([10], "teacher=zero-shot"), ([100, 1000], "teacher=head")]
    }
    shared_size = [*configs, sized("distill", 100, teacher="zero-shot")]
    assert method_labels(shared_size)[:2] == ["distill[teacher=zero-shot]", "distill[teacher=head]"]
    assert recipes_by_size(shared_size) == {}
    other_task = [configs[0], {**configs[1], "task": "b"}]
    assert method_labels(other_task) == ["distill[teacher=zero-shot]", "distill[teacher=head]"]
