"""Response caching: exact (canonical request hash) and semantic (embedded encoder + vector index)."""
