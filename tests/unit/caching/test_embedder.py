"""The cache's embedder runs the encoder that ``cache.semantic.encoder`` names: int8 by default, exact on
request, each giving that encoder's own vectors of the whitespace-folded text."""

from __future__ import annotations

import numpy as np

from tollhouse.caching.build import build_cache
from tollhouse.caching.embedder import EncoderEmbedder
from tollhouse.config.cache import CacheSettings, SemanticCacheSettings
from tollhouse.config.routing import RedisSettings
from tollhouse.embeddings.encoder import SentenceEncoder
from tollhouse.embeddings.onnx_encoder import OnnxSentenceEncoder
from tollhouse.pricing import PriceBook

TEXT = "  How do I reset\tmy password? "
FOLDED = "How do I reset my password?"


async def test_default_is_int8_and_exact_is_the_numpy_encoder() -> None:
    int8, exact = EncoderEmbedder(), EncoderEmbedder(encoder="exact")
    try:
        assert int8.encoder == "int8"
        a, b = await int8.embed(TEXT), await exact.embed(TEXT)
        np.testing.assert_array_equal(a, OnnxSentenceEncoder().encode([FOLDED])[0])
        np.testing.assert_allclose(b, SentenceEncoder().encode([FOLDED])[0], atol=1e-6)
        assert 0.97 < float(a @ b) < 1.0  # close, not the same vectors
    finally:
        int8.close()
        exact.close()


def test_the_setting_picks_the_encoder() -> None:
    for kind in ("int8", "exact"):
        cfg = CacheSettings(mode="semantic", semantic=SemanticCacheSettings(encoder=kind))
        stage = build_cache(cfg, RedisSettings(), PriceBook([]))
        assert stage is not None and isinstance(stage.embedder, EncoderEmbedder)
        assert stage.embedder.encoder == kind
        stage.embedder.close()
    assert SemanticCacheSettings().encoder == "int8"
