"""The numpy all-MiniLM-L6-v2 encoder: shape, unit norm, meaning, determinism, batching, truncation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tollhouse.embeddings.encoder import MAX_TOKENS, SentenceEncoder

RESET = "How do I reset my password?"
CHANGE = "What is the way to change my password?"
WEATHER = "The weather in Paris is sunny"


@pytest.fixture(scope="module")
def encoder() -> SentenceEncoder:
    return SentenceEncoder()


def test_shape_dtype_and_unit_norm(encoder: SentenceEncoder) -> None:
    vectors = encoder.encode([RESET, CHANGE, WEATHER])
    assert vectors.shape == (3, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_paraphrases_are_closer_than_unrelated_text(encoder: SentenceEncoder) -> None:
    reset, change, weather = encoder.encode([RESET, CHANGE, WEATHER])
    paraphrase = float(reset @ change)
    assert paraphrase > 0.6
    assert abs(float(reset @ weather)) < 0.2
    assert abs(float(change @ weather)) < 0.2


def test_deterministic(encoder: SentenceEncoder) -> None:
    np.testing.assert_array_equal(encoder.encode([RESET, WEATHER]), encoder.encode([RESET, WEATHER]))


def test_batch_equals_single_despite_padding(encoder: SentenceEncoder) -> None:
    texts = [RESET, "ok", WEATHER + " and warm, with a light breeze from the west all afternoon.", CHANGE]
    batch = encoder.encode(texts)
    singles = np.vstack([encoder.encode([t]) for t in texts])
    np.testing.assert_allclose(batch, singles, atol=1e-5)


def test_batches_larger_than_the_internal_batch_keep_input_order() -> None:
    small = SentenceEncoder(batch_size=2)
    texts = [f"sentence number {i} " * (i % 4 + 1) for i in range(7)]
    np.testing.assert_allclose(small.encode(texts), np.vstack([small.encode([t]) for t in texts]), atol=1e-5)


def test_token_counts_include_special_tokens_and_stop_at_the_limit(encoder: SentenceEncoder) -> None:
    assert encoder.count_tokens(["hello world"]) == 4  # [CLS] hello world [SEP]
    assert encoder.count_tokens(["word " * 1000]) == MAX_TOKENS
    vectors, tokens = encoder.encode_counted(["hello world", "word " * 1000])
    assert tokens == 4 + MAX_TOKENS
    assert vectors.shape == (2, 384)


def test_empty_list(encoder: SentenceEncoder) -> None:
    assert encoder.encode([]).shape == (0, 384)
    assert encoder.count_tokens([]) == 0


def test_missing_model_files_are_reported(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"tokenizer\.json"):
        SentenceEncoder(str(tmp_path))
