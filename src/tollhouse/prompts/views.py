"""How prompts look to people: the admin API's JSON and the CLI's text (a summary line per prompt, a
version's text, and a unified diff between two versions)."""

from __future__ import annotations

import difflib
from typing import Any

import yaml

from tollhouse.stores.prompts import Prompt, PromptVersion


def summary(prompt: Prompt) -> dict[str, Any]:
    return {
        "id": prompt.id,
        "latest": prompt.latest,
        "labels": dict(sorted(prompt.labels.items())),
        "experiment": prompt.experiment,
    }


def detail(prompt: Prompt) -> dict[str, Any]:
    return prompt.to_dict()


def version_text(version: PromptVersion) -> str:
    """A version as reviewable YAML (what ``diff`` compares)."""
    data = version.to_dict()
    data.pop("created_at", None)
    data.pop("version", None)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def diff(prompt: Prompt, a: int, b: int) -> str:
    """Unified diff from version ``a`` to version ``b``. Raises ``KeyError`` for a missing version."""
    for v in (a, b):
        if v not in prompt.versions:
            raise KeyError(f"prompt {prompt.id!r} has no version {v}")
    lines = difflib.unified_diff(
        version_text(prompt.versions[a]).splitlines(keepends=True),
        version_text(prompt.versions[b]).splitlines(keepends=True),
        fromfile=f"{prompt.id}@{a}",
        tofile=f"{prompt.id}@{b}",
    )
    return "".join(lines)
