"""With the real int8 encoder, look-alikes that score *above* the default threshold are turned away by the
match check that knows them (the check, not the cosine, decides), and true repeats above it are served."""

from __future__ import annotations

import numpy as np
import pytest

from tollhouse.caching.semantic import SemanticConfig, TextFeatures, mismatch, query_text
from tollhouse.embeddings.onnx_encoder import OnnxSentenceEncoder

THRESHOLD = SemanticConfig().threshold

HARD_NEGATIVES = [
    (
        "Who is the chief minister of Tamil Nadu?",
        "Who is the next chief minister of Tamil Nadu?",
        "qualifiers",
    ),
    (
        "Is it possible to travel faster than light?",
        "Is it impossible to travel faster than light?",
        "negating_prefix",
    ),
]

REPEATS = [
    ("How do I reset my password?", "How can I reset my password?"),
    (
        "What is the difference between a goal and a dream?",
        "What's the difference between a dream and a goal?",
    ),
    ("How To Speak English Fluently?", "How do I speak English fluently?"),
    ("What are the benefits of drinking green tea?", "What are the health benefits of drinking green tea?"),
]


@pytest.fixture(scope="module")
def encoder() -> OnnxSentenceEncoder:
    return OnnxSentenceEncoder()


def _cosine(enc: OnnxSentenceEncoder, a: str, b: str) -> float:
    v, w = enc.encode([query_text(a)])[0], enc.encode([query_text(b)])[0]
    return float(np.dot(v, w))


@pytest.mark.parametrize(("stored", "query", "check"), HARD_NEGATIVES)
def test_look_alike_above_threshold_is_rejected_by_its_check(
    encoder: OnnxSentenceEncoder, stored: str, query: str, check: str
) -> None:
    assert _cosine(encoder, stored, query) >= THRESHOLD
    assert mismatch(TextFeatures.of(stored), TextFeatures.of(query)) == check


@pytest.mark.parametrize(("stored", "query"), REPEATS)
def test_true_repeat_is_served(encoder: OnnxSentenceEncoder, stored: str, query: str) -> None:
    assert _cosine(encoder, stored, query) >= THRESHOLD
    assert mismatch(TextFeatures.of(stored), TextFeatures.of(query)) is None
