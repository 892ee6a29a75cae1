"""Stored prompts: versioned templates, labels, experiments, per-version metrics and automatic rollback."""
