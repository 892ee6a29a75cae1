"""OpenAI-style moderation of texts (``POST /v1/moderations``): the lexical phrases and the offline classifier
of the ``unsafe_content`` rule, answered per category.

``category_scores`` holds the classifier's probability per category (``ModerationModel.scores``);
``harassment/threatening`` and ``illicit/violent`` are the lesser of their parent's and violence's score;
``self-harm/intent`` and ``self-harm/instructions`` score 0 unless a phrase names them (no model tells them
apart from ``self-harm``). ``flagged`` is the classifier's decision or a lexical phrase; a flagged text names
the categories scoring at least 0.5, or else its most likely one.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from tollhouse.guardrails.moderation import CATEGORY_THRESHOLD, NAMES, ModerationModel
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
        s = m.scores(text)
        scores = dict.fromkeys(CATEGORIES, 0.0)
        for code, p in s.categories.items():
            scores[NAMES.get(code, code)] = round(p, 6)
        scores["harassment/threatening"] = min(scores["harassment"], scores["violence"])
        scores["illicit/violent"] = min(scores["illicit"], scores["violence"])
        categories = {c: v >= CATEGORY_THRESHOLD for c, v in scores.items()}
        phrase = self._lexical.find(text)
        flagged = phrase is not None or m.is_flagged(s)
        if phrase is not None and phrase in categories:
            categories[phrase] = True
            scores[phrase] = max(scores[phrase], 1.0)
        if flagged and not any(categories.values()):
            categories[max(scores, key=lambda c: scores[c])] = True
        if not flagged:  # categories only on flagged texts: one decision, not two
            categories = dict.fromkeys(CATEGORIES, False)
        return Result(flagged, categories, scores)
