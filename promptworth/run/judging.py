"""The judge outside a run (docs/concepts/judging.md#llm-as-judge): its check on
Factual-Summary-Pairs, kept in OUT/judge_checks.json and shown beside judged scores, and the
pairwise comparison of two methods' stored answers.

- The check asks the pointwise judge about each pair's faithful and unfaithful summary with the
  article sentence as the reference (742 verdicts; right = yes to the faithful one, no to the
  other), and the pairwise judge which of the two is better, in both orders (371 pairs; right =
  the faithful one wins after the swap rule; a flipped verdict is wrong). Each accuracy has the
  exact binomial 95 % interval (analysis/uncertainty.py).
- The comparison pairs the runs of two methods scored on the same test rows (same size and
  seed; a method that trains nothing pairs with every run of the other), judges each row in both
  orders, and gives the wins, the flip rate and Cohen's kappa of the surviving verdicts with
  each stored metric's ranking of the two answers (ROUGE-L, say).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from promptworth.analysis.agreement import (
    FIRST,
    check_accuracy,
    decided_kappa,
    ranking_outcomes,
    summarise,
)
from promptworth.atomic import locked, replace_atomically
from promptworth.errors import PromptworthError
from promptworth.paths import inside
from promptworth.run.model_scores import JUDGE_PROTOCOL, Judge
from promptworth.tasks.answers import final_answer
from promptworth.tasks.factual_pairs import NAME, factual_summary_pairs

CHECKS_FILE = "judge_checks.json"


def check_key(revision: str, dtype: str) -> str:
    """Which judge a check measured: its weights, prompt protocol and precision."""
    return f"{revision}|{JUDGE_PROTOCOL}|{dtype}"


def loaded_judge(spec: str, dtype: str):
    """(Judge, revision, placement) of causal LM `spec`, loaded through the backbone cache."""
    from promptworth.backbones import BackboneCache
    from promptworth.backbones.device import choose_placement
    from promptworth.backbones.preflight import check_backbone

    check_backbone(spec, "--judge-model")
    placement = choose_placement(dtype)
    cache = BackboneCache(placement)
    backbone = cache.get(spec, "causal-lm")
    return Judge(backbone), backbone.revision, placement


def run_check(spec: str, dtype: str = "auto", limit: int | None = None) -> dict:
    """The judge `spec`'s accuracy on Factual-Summary-Pairs (the first `limit` pairs)."""
    pairs = factual_summary_pairs()[:limit]
    judge, revision, placement = loaded_judge(spec, dtype)
    start = time.perf_counter()
    n = len(pairs)
    sources = [(pair.source,) for pair in pairs]
    faithful, unfaithful = [p.correct for p in pairs], [p.incorrect for p in pairs]
    p_yes = judge.p_yes([""] * (2 * n), sources * 2, faithful + unfaithful)
    pointwise = check_accuracy(p_yes > 0.5, np.arange(2 * n) < n)
    outcomes = judge.pairwise([""] * n, sources, faithful, unfaithful)
    pairwise = check_accuracy(outcomes == FIRST, np.ones(n, dtype=bool))
    return {
        "key": check_key(revision, placement.dtype),
        "judge": spec,
        "revision": revision,
        "protocol": JUDGE_PROTOCOL,
        "dtype": placement.dtype,
        "set": NAME,
        "pointwise": accuracy_record(pointwise),
        "pairwise": {**accuracy_record(pairwise), "flip_rate": summarise(outcomes).flip_rate},
        "seconds": round(time.perf_counter() - start, 3),
    }


def accuracy_record(found) -> dict:
    return {
        "n": found.n,
        "right": found.right,
        "accuracy": found.accuracy,
        "ci95": list(found.interval),
        "text": found.text(),
    }


def read_checks(out: Path) -> dict[str, dict]:
    """check key -> record, from OUT/judge_checks.json ({} without one)."""
    path = inside(out, CHECKS_FILE)
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise PromptworthError(
            f"{path}: not valid JSON ({error}); delete it and run the check again"
        ) from None


def save_check(out: Path, record: dict) -> Path:
    """Add `record` to OUT/judge_checks.json (a check of the same judge replaces the old)."""
    path = inside(out, CHECKS_FILE)
    with locked(path):  # two checks into one --out never lose each other's record
        checks = read_checks(out)
        checks[record["key"]] = record
        text = json.dumps(checks, indent=2, ensure_ascii=False)
        replace_atomically(path, lambda handle: handle.write(text.encode()))
    return path


def paired_runs(runs_a: list, runs_b: list) -> list[tuple[tuple, tuple]]:
    """(run of A, run of B) scored alike: the same (n_train, seed); a method whose runs all have
    n_train 0 (it trains nothing) pairs with every run of the other. Runs are (config, result)."""

    def by_cell(runs):
        return {(c["n_train"], c["seed"]): (c, r) for c, r in runs}

    cells_a, cells_b = by_cell(runs_a), by_cell(runs_b)
    if set(cells_a) == {(0, 0)} and set(cells_b) != {(0, 0)}:
        return [(cells_a[(0, 0)], run) for run in cells_b.values()]
    if set(cells_b) == {(0, 0)} and set(cells_a) != {(0, 0)}:
        return [(run, cells_b[(0, 0)]) for run in cells_a.values()]
    return [(cells_a[cell], cells_b[cell]) for cell in sorted(set(cells_a) & set(cells_b))]


def compare_answers(judge: Judge, test, pairs: list[tuple[tuple, tuple]]) -> list[dict]:
    """For each paired runs (A, B), the pairwise verdicts on `test` (the Split both were scored
    on): A wins, B wins, flipped, flip rate, and kappa with each metric's ranking."""
    compared = []
    for (config_a, result_a), (config_b, result_b) in pairs:
        start = time.perf_counter()
        answers_a, answers_b = (
            [final_answer(p) for p in r["predictions"]] for r in (result_a, result_b)
        )
        outcomes = judge.pairwise(test.texts, test.references, answers_a, answers_b)
        summary = summarise(outcomes)
        rows_a, rows_b = result_a.get("row_scores", {}), result_b.get("row_scores", {})
        agreement = {}
        for metric in rows_a:
            if metric in rows_b and metric != "judge":
                kappa, decided = decided_kappa(
                    outcomes, ranking_outcomes(rows_a[metric], rows_b[metric])
                )
                agreement[metric] = {"kappa": kappa, "rows": decided}
        compared.append(
            {
                "n_train": (config_a["n_train"], config_b["n_train"]),
                "seed": (config_a["seed"], config_b["seed"]),
                "rows": summary.n,
                "a_wins": summary.first_wins,
                "b_wins": summary.second_wins,
                "flipped": summary.flipped,
                "flip_rate": summary.flip_rate,
                "kappa_with": agreement,
                "judge_seconds": round(time.perf_counter() - start, 3),
            }
        )
    return compared
