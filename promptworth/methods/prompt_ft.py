"""prompt-ft (Setup 2, full): every weight of the causal LM learns the prompt-based objective."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from promptworth.methods.base import RunContext
from promptworth.methods.prompt_training import PromptTrainedMethod, TrainingConfig


class PromptFT(PromptTrainedMethod):
    name = "prompt-ft"
    family = "prompt-based training"
    # every LM weight: LM-BFF's grid (Gao et al. 2021, "Making Pre-trained LMs Better Few-shot
    # Learners", lr {1e-5, 2e-5, 5e-5} x batch {2, 4, 8}, 1,000 steps, dev-selected)
    learning_rates = (1e-5, 2e-5, 5e-5)

    test_params: ClassVar[dict[str, Any]] = {"max_steps": 3, "batch_size": 4}

    @dataclass(frozen=True)
    class Config(TrainingConfig):
        learning_rate: float = 3e-5

    def trainable_model(self, backbone, context: RunContext):
        model = backbone.fresh_model().float()  # fp32 master weights; autocast does the speed
        for param in model.parameters():
            param.requires_grad_(True)
        return model
