"""OpenAI-style moderation of texts (``POST /v1/moderations``): the lexical phrases and the offline classifier
of the ``unsafe_content`` rule, answered per category.

``category_scores`` holds the classifier's probability for the categories it has a model for (sexual, hate,
violence, self-harm) and 0 for the others (harassment, illicit and the sub-categories), whose training data
is too thin to score (docs/GUARDRAILS.md). ``flagged`` is the classifier's "any category" decision or a
lexical phrase; a flagged text names its most likely category (or the phrase's).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from tollhouse.guardrails.features import Features
from tollhouse.guardrails.moderation import NAMES, ModerationModel
from tollhouse.guardrails.normalize import normalise
from tollhouse.guardrails.output import UNSAFE, PatternGuard

# The category names of OpenAI's moderation response, all required in ``categories`` / ``category_scores``.
CATEGORIES = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/instructions",
    "self-harm/intent",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)
MODEL_NAME = "tollhouse-moderation"
MODEL_ALIASES = frozenset(
    {MODEL_NAME, "omni-moderation-latest", "text-moderation-latest", "text-moderation-stable"}
)
CATEGORY_THRESHOLD = 0.5  # a category is named when its own model says so (or it is the flagged text's best)


@dataclass(slots=True, frozen=True)
class Result:
    flagged: bool
    categories: dict[str, bool]
    scores: dict[str, float]


class Moderator:
    """Loads the shipped weights on first use (once, thread-safe) and moderates texts."""

    def __init__(self, model: ModerationModel | None = None) -> None:
        self._model = model
        self._lock = threading.Lock()
        self._lexical = PatternGuard("moderation", "enforce", UNSAFE, frozenset({"input", "output"}))

    def model(self) -> ModerationModel:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = ModerationModel.load()
        return self._model

    def moderate(self, text: str) -> Result:
        m = self.model()
        f = Features.of(normalise(text))
        scores = dict.fromkeys(CATEGORIES, 0.0)
        for code, lt in m.categories.items():
            name = NAMES.get(code, code)
            if name in scores:
                scores[name] = round(lt.prob_of(f), 6)
        categories = {c: s >= CATEGORY_THRESHOLD for c, s in scores.items()}
        phrase = self._lexical.find(text)
        flagged = phrase is not None or m.flagged.prob_of(f) >= m.threshold
        if phrase is not None and phrase in categories:
            categories[phrase] = True
            scores[phrase] = max(scores[phrase], 1.0)
        if flagged and not any(categories.values()):
            categories[max(scores, key=lambda c: scores[c])] = True
        if not flagged:  # categories only on flagged texts: one decision, not two
            categories = dict.fromkeys(CATEGORIES, False)
        return Result(flagged, categories, scores)
