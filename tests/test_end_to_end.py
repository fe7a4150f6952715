"""One end-to-end run on the real packaged model (SmolLM2-135M) and data (AG News); minutes."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from promptworth.cli import main


@pytest.mark.e2e
def test_real_model_and_data(tmp_path, capsys):
    out = tmp_path / "e2e"
    code = main(
        [
            "run",
            "--methods",
            "zero-shot,head,prompt-lora",
            "--sizes",
            "10",
            "--seeds",
            "1",
            "--test-size",
            "40",
            "--param",
            "prompt-lora.max_steps=3",
            "--quiet",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    results = pd.read_csv(out / "results.csv")
    assert sorted(results["method"]) == ["head", "prompt-lora", "zero-shot"]
    assert (results["n_test"] == 40).all()
    zero_shot = results.set_index("method").loc["zero-shot"]
    # SmolLM2 scores ~0.7 zero-shot on AG News with the reference template (chance: 0.25).
    assert zero_shot["accuracy"] > 0.45
    assert zero_shot["prompt_tokens_per_example"] > 20
    lora = results.set_index("method").loc["prompt-lora"]
    assert lora["trainable_params"] > 0 and lora["train_tokens"] > 0
    assert lora["artifact_bytes"] < lora["total_params"]  # an adapter, not a whole model
    assert json.loads((out / "advantage.json").read_text())["pairs"]
    assert "Accuracy" in (out / "report.md").read_text()
    assert "Report:" in capsys.readouterr().out
