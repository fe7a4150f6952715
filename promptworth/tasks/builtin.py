"""The built-in tasks: one table row per task, read from the StaICC package (see staicc.py).

Each row names the StaICC file, the label names in the order of the dataset's integer labels
(checked by reading rows of every label), the verbaliser words (first = primary, the word
training methods teach), the prompt templates, and how the canonical rows split:

- `layout` = (train, unused, test) row counts: StaICC concatenated the Hugging Face splits in
  that order before shuffling, and `staicc.load_rows` undoes the shuffle, so the counts cut the
  rows back into the published splits (the unused part is a validation split).
- `layout` None: StaICC ships only the training split. A fixed HELD_OUT share of it is held out as
  test (files.split_off_test, seed 0), minus test rows whose text is also a training text, so a
  score never measures memory.

Templates end where the label word follows, since the models are causal LMs. Where the
literature has one it is cited: LM-BFF = Gao, Fisch & Chen 2021 (Table 1, manual templates);
PET = Schick & Schütze 2021.
"""

from __future__ import annotations

from dataclasses import dataclass

from promptworth.tasks import staicc
from promptworth.tasks.base import Split, Task
from promptworth.tasks.files import HELD_OUT, split_off_test

SENTIMENT_WORDS = [["negative"], ["positive"]]
# LM-BFF's SST-2/MR pattern "<S1> It was [MASK] ." with great/terrible is left out: with the
# packaged SmolLM2-135M it answered "great" for all of 40 SST-2 rows (0.475), where the first
# template below scored 0.775 on the same rows (docs/reference/tasks.md#built-in-tasks).
MOVIE_TEMPLATES = [
    "Review: {text}\nSentiment:",
    "{text}\nThe sentiment of this review is",
    "Movie review: {text}\nSentiment (negative or positive):",
]


@dataclass(frozen=True)
class BuiltinTask:
    staicc_file: str
    label_names: list[str]
    verbalizers: list[list[str]]
    templates: list[str]
    layout: tuple[int, int, int] | None = None


TABLE: dict[str, BuiltinTask] = {
    "ag_news": BuiltinTask(
        "agnews",
        ["World", "Sports", "Business", "Sci/Tech"],
        [["World"], ["Sports"], ["Business"], ["Sci/Tech", "Science", "Technology"]],
        [
            # The reference experiment's template (the blog post repeating Le Scao & Rush).
            "Given news article: {text}. The topic is:",
            "Article: {text}\nTopic (World, Sports, Business or Sci/Tech):",
            # PET patterns for AG News.
            "[Category:] {text}\nCategory:",
            "{text}\nThis news article is about",
        ],
        (120_000, 0, 7_600),
    ),
    "sst2": BuiltinTask("sst2", ["negative", "positive"], SENTIMENT_WORDS, MOVIE_TEMPLATES),
    "rotten_tomatoes": BuiltinTask(
        "rotten_tomatoes", ["negative", "positive"], SENTIMENT_WORDS, MOVIE_TEMPLATES
    ),
    "sst5": BuiltinTask(
        "sst5",
        ["very negative", "negative", "neutral", "positive", "very positive"],
        # LM-BFF SST-5: terrible / bad / okay / good / great.
        [["terrible"], ["bad"], ["okay"], ["good"], ["great"]],
        [
            "{text} It was",  # LM-BFF
            "Review: {text}\nRating (terrible, bad, okay, good or great):",
        ],
    ),
    "subjective": BuiltinTask(
        "subjective",
        ["objective", "subjective"],
        # LM-BFF Subj: "<S1> This is [MASK] ." with objective/subjective.
        [["objective", "fact"], ["subjective", "opinion"]],
        [
            "{text} This is",  # LM-BFF
            "Sentence: {text}\nIs this sentence objective (a fact) or subjective (an opinion)? "
            "It is",
        ],
    ),
    "trec": BuiltinTask(
        "trec",
        ["abbreviation", "entity", "description", "human", "location", "numeric"],
        # LM-BFF TREC: Expression / Entity / Description / Human / Location / Number, lower-cased
        # to follow the templates' running text.
        [
            ["abbreviation", "expression"],
            ["entity", "thing"],
            ["description", "definition"],
            ["person", "human"],
            ["location", "place"],
            ["number"],
        ],
        [
            "Question: {text}\nAnswer type (abbreviation, entity, description, person, location "
            "or number):",
            "{text}\nThis question asks for a",  # LM-BFF's "[MASK] : <S1>" turned around
        ],
        (5_452, 0, 500),
    ),
    "tweet_eval_emotion": BuiltinTask(
        "tweet_eval_emotion",
        ["anger", "joy", "optimism", "sadness"],
        [["anger", "angry"], ["joy", "happy"], ["optimism", "hopeful"], ["sadness", "sad"]],
        [
            "Tweet: {text}\nEmotion (anger, joy, optimism or sadness):",
            "{text}\nThe emotion in this tweet is",
        ],
        (3_257, 374, 1_421),
    ),
    "tweet_eval_hate": BuiltinTask(
        "tweet_eval_hate",
        ["non-hate", "hate"],
        [["no"], ["yes"]],
        [
            # SemEval-2019 HatEval: hate speech against immigrants and women.
            "Tweet: {text}\nIs this tweet hate speech against immigrants or women? Answer:",
            "{text}\nQuestion: is this hateful? Answer (yes or no):",
        ],
    ),
    "financial_phrasebank": BuiltinTask(
        "financial_phrasebank",
        ["negative", "neutral", "positive"],
        [["negative"], ["neutral"], ["positive"]],
        [
            "{text}\nThe sentiment of this financial news is",
            "Sentence: {text}\nSentiment (negative, neutral or positive):",
        ],
    ),
}


def load(name: str) -> Task:
    """Built-in task `name` (a TABLE key) with its canonical or held-out test split."""
    from promptworth.tasks import BUILTIN_TASKS

    entry = TABLE[name]
    rows = staicc.load_rows(entry.staicc_file)
    train, test, rule = splits(name, entry, rows)
    return Task(
        name=name,
        version=f"staicc-{staicc.staicc_version()}-{rule}-v1",
        label_names=entry.label_names,
        verbalizers=entry.verbalizers,
        templates=entry.templates,
        train=train,
        test=test,
        description=BUILTIN_TASKS[name][1],
    )


def splits(name: str, entry: BuiltinTask, rows: list[tuple[str, int]]) -> tuple[Split, Split, str]:
    """(train, test, rule): the published splits by `layout`, else a held-out share."""
    if entry.layout is not None:
        n_train, n_unused, _ = entry.layout
        if len(rows) != sum(entry.layout):
            raise ValueError(f"StaICC {name} has {len(rows)} rows, expected {sum(entry.layout)}")
        return (
            staicc.to_split(rows[:n_train]),
            staicc.to_split(rows[n_train + n_unused :]),
            "canonical",
        )
    texts, labels = [t for t, _ in rows], [y for _, y in rows]
    (train_texts, train_labels), (test_texts, test_labels) = split_off_test(texts, labels)
    seen = {text.strip() for text in train_texts}
    test_rows = [(t, y) for t, y in zip(test_texts, test_labels) if t.strip() not in seen]
    return (
        staicc.to_split(list(zip(train_texts, train_labels))),
        staicc.to_split(test_rows),
        f"heldout{round(100 * HELD_OUT)}",
    )
