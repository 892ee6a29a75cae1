"""Unsafe-content check: narrow lexical phrases first, then a cheap offline classifier (~0.2-0.5 ms).

The classifier is the same kind of linear model as the injection one (hashed n-grams + word pieces), fitted
on ``shared/datasets/moderation`` by ``bench/train_moderation.py``: a "flagged" model decides, per-category
models name the category. Weights ship in ``guardrails/data/moderation.npz`` (no texts).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import numpy as np

from tollhouse.guardrails.base import ALLOW, Block, Mode, Phase, Verdict
from tollhouse.guardrails.features import Features, LinearText, load_weights
from tollhouse.guardrails.normalize import normalise
from tollhouse.guardrails.output import UNSAFE, PatternGuard
from tollhouse.types import Message, RequestContext

NAMES = {
    "S": "sexual",
    "H": "hate",
    "V": "violence",
    "HR": "harassment",
    "SH": "self-harm",
    "S3": "sexual/minors",
    "H2": "hate/threatening",
    "V2": "violence/graphic",
}
CATEGORIES = ("S", "H", "V", "SH")  # shipped per-category models (the others have too few examples)
OFFLOOP_CHARS = 3000


@dataclass(slots=True, frozen=True)
class ModerationModel:
    flagged: LinearText
    categories: dict[str, LinearText]
    threshold: float

    @classmethod
    def load(cls, path: str | None = None) -> ModerationModel:
        return cls._of(load_weights("moderation.npz", path))

    @classmethod
    def _of(cls, z: Any) -> ModerationModel:
        def lt(prefix: str) -> LinearText:
            return LinearText.of(z, f"{prefix}_lex", f"{prefix}_piece", f"{prefix}_bias")

        cats = [str(c) for c in z["categories"]]
        return cls(lt("flagged"), {c: lt(c) for c in cats}, float(z["threshold"]))

    def save(self, path: str) -> None:
        arrays: dict[str, Any] = {"threshold": np.float32(self.threshold)}
        arrays["categories"] = np.asarray(list(self.categories))
        for prefix, m in [("flagged", self.flagged), *self.categories.items()]:
            arrays[f"{prefix}_lex"] = m.lex_w.astype(np.float16)
            arrays[f"{prefix}_piece"] = m.piece_w.astype(np.float16)
            arrays[f"{prefix}_bias"] = np.float32(m.bias)
        np.savez_compressed(path, **arrays)

    def category(self, text: str) -> str | None:
        """The most likely category name when the text is flagged, else None."""
        f = Features.of(normalise(text))
        if self.flagged.prob_of(f) < self.threshold:
            return None
        if not self.categories:
            return "unsafe"
        best = max(self.categories.items(), key=lambda kv: kv[1].prob_of(f))[0]
        return NAMES.get(best, best)


class UnsafeContentGuard:
    """Lexical phrases (cheap, explicit cases), then the classifier when ``classifier`` is on."""

    name = "unsafe_content"
    cost = 8

    def __init__(self, mode: Mode, phases: frozenset[Phase], model: ModerationModel | None) -> None:
        self.mode = mode
        self.phases = phases
        self.model = model
        self._lexical = PatternGuard(self.name, mode, UNSAFE, phases)

    def find(self, text: str) -> str | None:
        label = self._lexical.find(text)
        if label is None and self.model is not None:
            label = self.model.category(text)
        return label

    async def check(self, messages: list[Message], ctx: RequestContext) -> Verdict:
        for m in messages:
            text = m.text()
            label = await asyncio.to_thread(self.find, text) if len(text) > OFFLOOP_CHARS else self.find(text)
            if label is not None:
                return Block(f"unsafe content: {label}")
        return ALLOW
