"""Unsafe-content check: narrow lexical phrases first, then an offline classifier (opt-in).

Two parts, both fitted by ``bench/train_moderation.py`` (weights only, no texts, in
``guardrails/data/moderation.npz``):

- the cheap linear model of the injection family (hashed n-grams + word pieces, ~0.2-0.5 ms), fitted on the
  shared moderation set: a "flagged" model and per-category models (sexual, hate, violence, self-harm). It
  reads long-form web text (spam, forum posts) well and short sentences poorly;
- logistic heads over the embedded MiniLM sentence encoder's vector of the text (one per category, plus
  "flagged"), fitted on the moderation set plus generated texts per category and their benign look-alikes
  (``evals/moderation_data.py``). ~2-10 ms per text (the encoder).

A text is flagged when a phrase matches or the classifier says so. Long texts (≥ ``SHORT_WORDS`` words): the
cheap model reaches ``threshold`` or the head reaches ``emb_threshold``; short texts: the head reaches
``short_threshold``, or the cheap model reaches ``short_cheap`` while the head reaches ``short_agree``. All
five thresholds are chosen together for
the best F1 at ≤ 3 % false positives on the dev set's safe rows (ADR 0029).
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from tollhouse.guardrails.base import ALLOW, Block, Mode, Phase, Verdict
from tollhouse.guardrails.features import F32, Features, LinearText, load_weights
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
    "IL": "illicit",
}
CATEGORIES = ("S", "H", "V", "SH")  # cheap per-category models (the dev set has enough of these)
HEADS = ("S", "H", "V", "HR", "SH", "S3", "H2", "V2", "IL")  # encoder heads (generated data fills the gaps)
EMB_CHARS = 2000  # the encoder reads the first 256 word pieces; this bounds tokenisation
CATEGORY_THRESHOLD = 0.5
SHORT_WORDS = 30  # shorter texts are decided mainly by the encoder head (the cheap model misreads them)


class _Encoder:
    """The shared int8 sentence encoder, created on first use (thread-safe)."""

    _enc: Any = None
    _lock = threading.Lock()

    @classmethod
    def embed(cls, text: str) -> F32:
        if cls._enc is None:
            with cls._lock:
                if cls._enc is None:
                    from tollhouse.embeddings.onnx_encoder import OnnxSentenceEncoder

                    cls._enc = OnnxSentenceEncoder()
        row: F32 = cls._enc.encode([text[:EMB_CHARS]])[0]
        return row


@dataclass(slots=True, frozen=True)
class Scores:
    cheap: float  # the cheap "flagged" probability
    emb: float  # the encoder head's "flagged" probability
    categories: dict[str, float]  # code → probability: the head's, or for a long text the max with the cheap
    short: bool  # fewer than SHORT_WORDS words


@dataclass(slots=True, frozen=True)
class ModerationModel:
    flagged: LinearText
    categories: dict[str, LinearText]
    threshold: float
    emb_w: F32  # [384, 1 + len(heads)]: column 0 is "flagged"
    emb_b: F32
    heads: tuple[str, ...]
    emb_threshold: float
    short_threshold: float
    short_cheap: float
    short_agree: float

    @classmethod
    def load(cls, path: str | None = None) -> ModerationModel:
        return cls._of(load_weights("moderation.npz", path))

    @classmethod
    def _of(cls, z: Any) -> ModerationModel:
        def lt(prefix: str) -> LinearText:
            return LinearText.of(z, f"{prefix}_lex", f"{prefix}_piece", f"{prefix}_bias")

        cats = [str(c) for c in z["categories"]]
        return cls(
            lt("flagged"),
            {c: lt(c) for c in cats},
            float(z["threshold"]),
            np.ascontiguousarray(z["emb_w"], dtype=np.float32),
            np.ascontiguousarray(z["emb_b"], dtype=np.float32),
            tuple(str(h) for h in z["heads"]),
            float(z["emb_threshold"]),
            float(z["short_threshold"]),
            float(z["short_cheap"]),
            float(z["short_agree"]),
        )

    def save(self, path: str) -> None:
        arrays: dict[str, Any] = {"threshold": np.float32(self.threshold)}
        arrays["categories"] = np.asarray(list(self.categories))
        for prefix, m in [("flagged", self.flagged), *self.categories.items()]:
            arrays[f"{prefix}_lex"] = m.lex_w.astype(np.float16)
            arrays[f"{prefix}_piece"] = m.piece_w.astype(np.float16)
            arrays[f"{prefix}_bias"] = np.float32(m.bias)
        arrays["emb_w"] = self.emb_w.astype(np.float32)
        arrays["emb_b"] = self.emb_b.astype(np.float32)
        arrays["heads"] = np.asarray(list(self.heads))
        arrays["emb_threshold"] = np.float32(self.emb_threshold)
        arrays["short_threshold"] = np.float32(self.short_threshold)
        arrays["short_cheap"] = np.float32(self.short_cheap)
        arrays["short_agree"] = np.float32(self.short_agree)
        np.savez_compressed(path, **arrays)

    def scores_of(self, f: Features, vector: F32, words: int) -> Scores:
        """Scores from a text's cheap features, its encoder vector and its number of words."""
        z = vector @ self.emb_w + self.emb_b
        p = 1.0 / (1.0 + np.exp(-np.clip(z, -30.0, 30.0)))
        cats = {h: float(p[1 + i]) for i, h in enumerate(self.heads)}
        short = words < SHORT_WORDS
        for code, m in self.categories.items() if not short else ():  # short texts: the heads only
            cats[code] = max(cats.get(code, 0.0), m.prob_of(f))
        return Scores(self.flagged.prob_of(f), float(p[0]), cats, short)

    def scores(self, text: str) -> Scores:
        return self.scores_of(Features.of(normalise(text)), _Encoder.embed(text), len(text.split()))

    def is_flagged(self, s: Scores) -> bool:
        if s.short:
            return s.emb >= self.short_threshold or (
                s.cheap >= self.short_cheap and s.emb >= self.short_agree
            )
        return s.cheap >= self.threshold or s.emb >= self.emb_threshold

    def category(self, text: str) -> str | None:
        """The most likely category name when the text is flagged, else None."""
        s = self.scores(text)
        if not self.is_flagged(s):
            return None
        best = max(s.categories.items(), key=lambda kv: kv[1])[0] if s.categories else "unsafe"
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
            # The classifier runs the sentence encoder (milliseconds): off the event loop.
            label = self._lexical.find(text)
            if label is None and self.model is not None:
                label = await asyncio.to_thread(self.model.category, text)
            if label is not None:
                return Block(f"unsafe content: {label}")
        return ALLOW
