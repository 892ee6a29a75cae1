"""The int8 ONNX encoder of the semantic cache: shape, unit norm, meaning, agreement with the exact numpy
encoder, per-text results independent of the other texts of a call, truncation and a missing model file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tollhouse.embeddings.encoder import MAX_TOKENS, SentenceEncoder
from tollhouse.embeddings.onnx_encoder import INT8_MODEL, OnnxSentenceEncoder

RESET = "How do I reset my password?"
CHANGE = "What is the way to change my password?"
WEATHER = "The weather in Paris is sunny"
TEXTS = [
    RESET,
    CHANGE,
    WEATHER,
    "What major events happened in 1994?",
    "Is it safe to use Xiaomi mobile phones?",
    "A man is cutting an onion into thin slices on a wooden board.",
]


@pytest.fixture(scope="module")
def encoder() -> OnnxSentenceEncoder:
    return OnnxSentenceEncoder()


def test_the_model_ships_in_the_package() -> None:
    assert INT8_MODEL.is_file()
    assert 15e6 < INT8_MODEL.stat().st_size < 40e6  # int8 weights: about a quarter of the 91 MB fp32 graph


def test_shape_dtype_and_unit_norm(encoder: OnnxSentenceEncoder) -> None:
    vectors = encoder.encode(TEXTS)
    assert vectors.shape == (len(TEXTS), 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert encoder.encode([]).shape == (0, 384)


def test_paraphrases_are_closer_than_unrelated_text(encoder: OnnxSentenceEncoder) -> None:
    reset, change, weather = encoder.encode([RESET, CHANGE, WEATHER])
    assert float(reset @ change) > 0.6
    assert abs(float(reset @ weather)) < 0.2


def test_close_to_the_exact_encoder() -> None:
    int8 = OnnxSentenceEncoder().encode(TEXTS)
    exact = SentenceEncoder().encode(TEXTS)
    agreement = np.einsum("ij,ij->i", int8, exact)
    assert agreement.min() > 0.97  # quantised weights move each vector a little, never far
    # and pairwise similarities keep their order
    assert np.argsort(int8 @ int8[0]).tolist()[-2:] == np.argsort(exact @ exact[0]).tolist()[-2:]


def test_a_text_encodes_the_same_alone_or_with_others(encoder: OnnxSentenceEncoder) -> None:
    together = encoder.encode(TEXTS)
    alone = np.vstack([encoder.encode([t]) for t in TEXTS])
    np.testing.assert_array_equal(together, alone)


def test_long_text_is_truncated_not_rejected(encoder: OnnxSentenceEncoder) -> None:
    long_text = "password " * (MAX_TOKENS * 2)
    vector = encoder.encode([long_text])
    assert vector.shape == (1, 384) and np.isfinite(vector).all()


def test_missing_model_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.onnx"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        OnnxSentenceEncoder(str(missing))
