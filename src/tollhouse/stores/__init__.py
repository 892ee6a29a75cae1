"""Persistence: one Protocol per capability, each with an embedded (memory / SQLite) and a shared (Redis /
PostgreSQL) backend; ``stores.build`` opens them from the settings."""
