"""AG News (Zhang et al. 2015): 4-class news topic classification, from the StaICC package."""

from __future__ import annotations

from promptworth.tasks import staicc
from promptworth.tasks.base import Task

N_TRAIN = 120_000
N_TEST = 7_600

TEMPLATES = [
    # The reference experiment's template (the blog post repeating Le Scao & Rush on AG News).
    "Given news article: {text}. The topic is:",
    "Article: {text}\nTopic (World, Sports, Business or Sci/Tech):",
    # PET-style patterns (Schick & Schütze 2021).
    "[Category:] {text}\nCategory:",
    "{text}\nThis news article is about",
]


def load() -> Task:
    rows = staicc.load_rows("agnews")
    if len(rows) != N_TRAIN + N_TEST:
        raise ValueError(f"StaICC agnews has {len(rows)} rows, expected {N_TRAIN + N_TEST}")
    return Task(
        name="ag_news",
        version=f"staicc-{staicc.staicc_version()}-canonical-v1",
        label_names=["World", "Sports", "Business", "Sci/Tech"],
        verbalizers=[["World"], ["Sports"], ["Business"], ["Sci/Tech", "Science", "Technology"]],
        templates=TEMPLATES,
        train=staicc.to_split(rows[:N_TRAIN]),
        test=staicc.to_split(rows[N_TRAIN:]),
        description="AG News topic classification (World, Sports, Business, Sci/Tech)",
    )
