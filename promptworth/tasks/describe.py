"""`promptworth tasks show`: what a task is, in a few lines a user can check at a glance."""

from __future__ import annotations

import numpy as np

from promptworth.tasks.base import Task


def describe(task: Task) -> str:
    """Name, inputs, sizes, each label's counts and verbaliser words, the templates, and the
    first template rendered on the first training example."""
    train = np.bincount(task.train.labels, minlength=task.n_labels)
    test = np.bincount(task.test.labels, minlength=task.n_labels)
    width = max(len(name) for name in task.label_names)
    lines = [
        f"{task.name}: {task.description}",
        f"version {task.fingerprint}",
        f"inputs: {task.slot_list()}; {len(task.train)} train rows, {len(task.test)} test rows",
        "labels (train / test rows, verbaliser words):",
        *(
            f"  {name:<{width}}  {train[i]:>7} / {test[i]:<7} {', '.join(words)}"
            for i, (name, words) in enumerate(zip(task.label_names, task.verbalizers))
        ),
        "templates:",
        *(f"  {i}: {template!r}" for i, template in enumerate(task.templates)),
        "template 0 on the first training example (answer: "
        f"{task.verbalizers[task.train.labels[0]][0]!r}):",
        task.render(0, task.train.texts[0]),
    ]
    return "\n".join(lines)
