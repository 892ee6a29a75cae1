"""Retrieval-augmented generation: collections of documents per tenant, chunked, embedded and searched by
BM25 + dense vectors fused by reciprocal rank fusion (docs/RETRIEVAL.md, ADR 0020)."""
