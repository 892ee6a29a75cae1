"""Persistence, one Protocol per capability, each with an embedded (SQLite / memory) and a shared backend."""
