"""The embedded encoder for retrieval: rows in the order of the texts whatever the number of threads, unit
length; vectors of other deployments are normalised."""

from __future__ import annotations

import numpy as np

from tollhouse.rag.embedding import LocalEmbedder, normalise

TEXTS = ["Paid leave is 27 days.", "The Wi-Fi is heron-5g.", "Parking costs 14 euros.", "Dogs under 12 kg."]


async def test_threads_keep_the_order_and_the_vectors() -> None:
    one, three = LocalEmbedder(threads=1), LocalEmbedder(threads=3)
    try:
        a, b = await one.embed(TEXTS), await three.embed(TEXTS)
    finally:
        one.close()
        three.close()
    assert a.shape == b.shape == (4, 384)
    assert np.allclose(a, b, atol=1e-5)  # one text per forward pass: the thread does not matter
    assert np.allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-3)
    assert float(a[0] @ a[1]) < 0.9  # different texts, different vectors


def test_normalise() -> None:
    m = normalise(np.asarray([[3.0, 4.0], [0.0, 0.0]], dtype=np.float32))
    assert np.allclose(m, [[0.6, 0.8], [0.0, 0.0]])
