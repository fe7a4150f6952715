"""Metrics a model scores: BERTScore (against bert_score's own `score`), the LLM judge (its
yes/no scoring, the pairwise swap rule, Cohen's kappa) and judged sweeps whose keys tell judges
apart."""

from __future__ import annotations

import numpy as np
import pytest

from promptworth.analysis.agreement import (
    FIRST,
    FLIPPED,
    SECOND,
    check_accuracy,
    cohen_kappa,
    decided_kappa,
    ranking_outcomes,
    summarise,
    swap_rule,
)
from promptworth.backbones import BackboneCache
from promptworth.backbones.device import Placement
from promptworth.errors import PromptworthError
from promptworth.methods import make_method
from promptworth.run import runner
from promptworth.run.model_scores import Judge, ModelScorers, bertscore_rows
from promptworth.testing import tiny_generation_task


@pytest.fixture(scope="module")
def cache():
    return BackboneCache(Placement("cpu", "float32"))


def test_swap_rule_counts_a_verdict_only_if_it_survives_the_swap():
    # True: the answer shown first (position A) was preferred.
    # row 0: X in A preferred, then Y in A not preferred -> X wins both times
    # row 1: X in A not preferred, Y in A preferred -> Y wins both times
    # row 2: A preferred both times -> position bias, the verdict flipped
    # row 3: B preferred both times -> flipped too
    first_order = np.array([True, False, True, False])
    swapped_order = np.array([False, True, True, False])
    outcomes = swap_rule(first_order, swapped_order)
    assert outcomes.tolist() == [FIRST, SECOND, FLIPPED, FLIPPED]
    summary = summarise(outcomes)
    assert (summary.first_wins, summary.second_wins, summary.flipped) == (1, 1, 2)
    assert summary.flip_rate == 0.5
    with pytest.raises(ValueError, match="same rows"):
        swap_rule(first_order, swapped_order[:3])


def test_cohen_kappa_on_a_hand_computed_table():
    # 10 rows: both yes 4, both no 3, a yes/b no 2, a no/b yes 1
    a = np.array([1] * 4 + [0] * 3 + [1] * 2 + [0])
    b = np.array([1] * 4 + [0] * 3 + [0] * 2 + [1])
    # p_o = 0.7; a says yes 0.6, b says yes 0.5: p_e = 0.6*0.5 + 0.4*0.5 = 0.5; kappa = 0.4
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    assert cohen_kappa(a, a) == pytest.approx(1.0)
    assert cohen_kappa(np.ones(5), np.ones(5)) is None  # chance agreement 1: undefined
    assert cohen_kappa(np.array([]), np.array([])) is None


def test_kappa_with_a_metric_ranking_leaves_out_ties_and_flips():
    judge = np.array([FIRST, SECOND, FLIPPED, FIRST, SECOND])
    ranking = ranking_outcomes([0.5, 0.2, 0.9, 0.3, 0.1], [0.1, 0.4, 0.1, 0.3, 0.6])
    assert ranking.tolist() == [FIRST, SECOND, FIRST, FLIPPED, SECOND]
    kappa, n = decided_kappa(judge, ranking)
    assert n == 3 and kappa == pytest.approx(1.0)


def test_check_accuracy_has_the_exact_binomial_interval():
    found = check_accuracy(np.array([1, 1, 0, 1]), np.array([1, 1, 1, 1]))
    assert (found.right, found.n, found.accuracy) == (3, 4, 0.75)
    low, high = found.interval
    assert low == pytest.approx(0.194, abs=1e-3) and high == pytest.approx(0.994, abs=1e-3)


def test_bertscore_equals_bert_scores_own_score(cache, tiny_encoder_dir, tmp_path):
    import shutil

    from bert_score import score
    from transformers import AutoTokenizer

    # bert_score's `score` truncates at the tokenizer's model_max_length: give the tiny one its
    # encoder's 128 positions (promptworth reads them from the config itself)
    reference_dir = shutil.copytree(tiny_encoder_dir, tmp_path / "encoder")
    tokenizer = AutoTokenizer.from_pretrained(reference_dir)
    tokenizer.model_max_length = 128
    tokenizer.save_pretrained(reference_dir)

    outputs = ["the team won the match", "shares rose after profits", "a new chip", ""]
    references = [
        ("the team won the game",),
        ("the bank cut interest rates", "shares rose after profits"),
        ("the rocket reached orbit",),
        ("fans cheered",),
    ]
    encoder = cache.get(tiny_encoder_dir, "encoder")
    ours = bertscore_rows(encoder, outputs, references)
    _, _, f1 = score(  # bert_score cannot encode the empty answer: it is left out
        outputs[:3],
        [list(refs) for refs in references[:3]],
        model_type=str(reference_dir),
        num_layers=encoder.model.config.num_hidden_layers,
        use_fast_tokenizer=True,
        device="cpu",
    )
    assert ours[:3] == pytest.approx(np.clip(f1.numpy(), 0, 1), abs=1e-5)
    assert ours[1] == pytest.approx(1.0, abs=1e-5)  # identical to its second reference
    assert ours[3] == 0.0  # an empty answer matches nothing


def test_judge_p_yes_is_the_yes_no_likelihood_after_the_prompt(cache, tiny_lm_dir):
    import torch

    judge = Judge(cache.get(tiny_lm_dir, "causal-lm"))
    examples, refs, answers = ["the team won"], [("sports",)], ["sports news"]
    p_yes = judge.p_yes(examples, refs, answers)
    prompt = judge.pointwise_prompt(examples[0], refs[0], answers[0])
    assert "Reference answer: sports" in prompt and prompt.endswith("assistant\n")
    fmt, model = judge.format, judge.backbone.model
    ids = fmt.encode_prompt(prompt)
    with torch.no_grad():
        logprobs = torch.log_softmax(model(torch.tensor([ids])).logits[0, -1], -1)

    def best(words):  # each word's whole in-context likelihood, computed without a cache
        values = []
        for word in words:
            answer = fmt.answer_ids(prompt, word)
            with torch.no_grad():
                full = model(torch.tensor([ids + answer])).logits[0].log_softmax(-1)
            values.append(sum(full[len(ids) - 1 + i, t].item() for i, t in enumerate(answer)))
        return max(values)

    assert logprobs.shape[0] > 0
    no, yes = best(("no", "No")), best(("yes", "Yes"))
    assert p_yes[0] == pytest.approx(np.exp(yes) / (np.exp(yes) + np.exp(no)), rel=1e-4)


def test_pairwise_judge_judges_both_orders(cache, tiny_lm_dir):
    judge = Judge(cache.get(tiny_lm_dir, "causal-lm"))
    task = tiny_generation_task(4, 6)
    answers = ["sports", "business news", "science", "sports", "", "business"]
    outcomes = judge.pairwise(task.test.texts, task.test.references, answers, answers[::-1])
    assert set(outcomes.tolist()) <= {FIRST, SECOND, FLIPPED}
    # the same answer on both sides: the judge prefers a position both times, never an answer
    same = judge.pairwise(task.test.texts, task.test.references, answers, answers)
    assert (same == FLIPPED).all()


def test_runner_stores_judge_and_bertscore_rows_with_their_own_cost(make_context):
    task = tiny_generation_task()
    task.metrics = (*task.metrics, "bertscore", "judge")
    context = make_context(task=task)
    method = make_method("zero-shot")
    result = runner.execute(
        method, task.train.subset([]), task.test, context, judge_model=context.model
    )
    rows = result["row_scores"]
    assert set(rows) == {"exact_match", "token_f1", "bertscore", "judge"}
    assert set(rows["judge"]) <= {0.0, 1.0}
    assert rows["judge"] == [float(p > 0.5) for p in result["judge_p_yes"]]
    assert all(0 <= v <= 1 for v in rows["bertscore"])
    assert result["judge_seconds"] >= 0 and result["bertscore_seconds"] >= 0
    assert "judge_kappa_exact_match" in result
    with pytest.raises(ValueError, match="judge model"):
        scorers = ModelScorers(context.backbones, context.encoder)  # no judge model
        runner.scored(task, task.test, method.predict(task.test.texts), scorers)


def test_judged_sweep_keys_tell_judges_apart(tmp_path, tiny_lm_dir, tiny_encoder_dir):
    from promptworth.run.sweep import Sweep, SweepSpec
    from promptworth.testing import save_tiny_causal_lm

    other = save_tiny_causal_lm(tmp_path / "other-judge")
    (other / "note.txt").write_text("another revision")  # same weights, another directory

    def spec(**given):
        return SweepSpec(
            task="nq_open",
            models=[str(tiny_lm_dir)],
            encoders=[str(tiny_encoder_dir)],
            methods=["zero-shot"],
            sizes=[2],
            seeds=[0],
            test_size=4,
            dtype="float32",
            out=tmp_path / "out",
            **given,
        )

    plain = Sweep(spec(), quiet=True).plan()[0].config
    judged = Sweep(spec(add_metrics=["judge"]), quiet=True).plan()[0].config
    other_judge = Sweep(spec(add_metrics=["judge"], judge_model=str(other)), quiet=True)
    assert "judge" not in plain.to_dict()
    assert judged.judge["model"] == judged.model  # a self-judge
    assert other_judge.plan()[0].config.judge["model"] == str(other.resolve())
    assert len({plain.key(), judged.key(), other_judge.plan()[0].config.key()}) == 3
    with pytest.raises(PromptworthError, match=r"--judge-model .* not scored by the judge"):
        Sweep(spec(judge_model=str(other)), quiet=True)
    with pytest.raises(PromptworthError, match="--add-metrics 'bleu': choose from"):
        Sweep(spec(add_metrics=["bleu"]), quiet=True)


def test_judge_check_keeps_its_accuracy_beside_the_judged_scores(
    tmp_path, tiny_lm_dir, tiny_encoder_dir, capsys
):
    import json

    from promptworth.cli import main
    from promptworth.testing import write_generation_task_file

    task_file = write_generation_task_file(tmp_path, "[exact_match]")
    out = tmp_path / "out"
    args = ["run", "--task", str(task_file), "--model", tiny_lm_dir, "--encoder"]
    args += [tiny_encoder_dir, "--methods", "zero-shot,few-shot", "--quiet", "--sizes", "2"]
    args += ["--param", "few-shot.calibrate=false", "--seeds", "1", "--dtype", "float32"]
    assert main([*args, "--add-metrics", "judge,bertscore", "--out", str(out)]) == 0
    report = (out / "report.md").read_text()
    assert "## The judge" in report and "(self-judge)" in report and "not run" in report
    check = ["judge", "check", "--judge-model", tiny_lm_dir, "--limit", "3", "--out", str(out)]
    assert main([*check, "--dtype", "float32"]) == 0
    printed = capsys.readouterr().out
    assert "pointwise yes/no accuracy" in printed and "(n=6)" in printed
    (record,) = json.loads((out / "judge_checks.json").read_text()).values()
    assert record["pointwise"]["n"] == 6 and record["pairwise"]["n"] == 3
    low, high = record["pointwise"]["ci95"]
    assert low <= record["pointwise"]["accuracy"] <= high
    assert main(["report", str(out)]) == 0
    assert record["pointwise"]["text"] in (out / "report.md").read_text()
    pair = ["judge", "pair", str(out), "zero-shot,few-shot", "--task", str(task_file)]
    assert main([*pair, "--dtype", "float32"]) == 0
    printed = capsys.readouterr().out
    assert (
        "(self-judge)" in printed and "flip rate" in printed and "kappa with exact_match" in printed
    )
    wrong = ["judge", "pair", str(out), "zero-shot,few-shot", "--task", "nq_open"]
    assert main(wrong) != 0
    assert "its test rows are not those the runs were scored on" in capsys.readouterr().err


def test_runs_pair_by_size_and_seed_and_a_method_without_training_with_all():
    from promptworth.run.judging import paired_runs

    def runs(*cells):
        return [({"n_train": n, "seed": s}, {"id": (n, s)}) for n, s in cells]

    zero_shot = runs((0, 0))
    lora = runs((4, 0), (4, 1), (8, 0))
    few_shot = runs((4, 0), (8, 0), (8, 1))
    assert [b[1]["id"] for _, b in paired_runs(zero_shot, lora)] == [(4, 0), (4, 1), (8, 0)]
    assert [a[1]["id"] for a, _ in paired_runs(lora, zero_shot)] == [(4, 0), (4, 1), (8, 0)]
    shared = paired_runs(lora, few_shot)
    assert [(a[1]["id"], b[1]["id"]) for a, b in shared] == [((4, 0), (4, 0)), ((8, 0), (8, 0))]
