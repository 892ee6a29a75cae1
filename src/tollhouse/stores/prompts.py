"""The prompt registry's data: prompts with immutable versions, labels that move between versions (with
their history), and an optional experiment per prompt; the ``PromptStore`` Protocol and its folder backend.

``FilePromptStore``: one YAML file per prompt in a folder (reviewable in git). The gateway re-reads the folder
when a file's modification time changes; a push or a label move rewrites the prompt's file atomically.
SQLite and PostgreSQL backends: ``stores/prompts_sql.py``.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml

PROMPT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
LABEL = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]{0,63}$")


class PromptConflict(ValueError):
    """A write that lost a race: the label no longer points where the caller saw it."""


@dataclass(slots=True, frozen=True)
class PromptVersion:
    """One immutable version: template messages (``role`` + Jinja2 ``content``), the model and parameters
    it sets unless a request does, the variables it takes (name → ``{"type", "required", "enum"}``), who
    wrote it, when, and why."""

    prompt_id: str
    version: int
    messages: tuple[tuple[str, str], ...]
    model: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)
    author: str | None = None
    created_at: float = 0.0
    notes: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "messages": [{"role": r, "content": c} for r, c in self.messages],
            "model": self.model,
            "params": self.params,
            "variables": self.variables,
            "author": self.author,
            "created_at": self.created_at,
            "notes": self.notes,
        }

    @classmethod
    def from_dict(cls, prompt_id: str, data: dict[str, Any]) -> PromptVersion:
        return cls(
            prompt_id=prompt_id,
            version=int(data["version"]),
            messages=tuple((str(m["role"]), str(m["content"])) for m in data["messages"]),
            model=data.get("model"),
            params=dict(data.get("params") or {}),
            variables=dict(data.get("variables") or {}),
            author=data.get("author"),
            created_at=float(data.get("created_at") or 0.0),
            notes=data.get("notes"),
        )


@dataclass(slots=True, frozen=True)
class LabelEvent:
    """A label moved: by whom (``actor``: a person, ``api``, ``rollback``), why, from which version."""

    label: str
    version: int
    previous: int | None
    at: float
    actor: str
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "version": self.version,
            "previous": self.previous,
            "at": self.at,
            "actor": self.actor,
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LabelEvent:
        prev = data.get("previous")
        return cls(
            label=str(data["label"]),
            version=int(data["version"]),
            previous=None if prev is None else int(prev),
            at=float(data.get("at") or 0.0),
            actor=str(data.get("actor") or ""),
            reason=str(data.get("reason") or ""),
        )


@dataclass(slots=True)
class Prompt:
    """A prompt as stored: versions by number, labels, label history (oldest first) and its experiment
    (the plain JSON the admin API accepts; ``prompts.experiments`` validates and reads it)."""

    id: str
    versions: dict[int, PromptVersion] = field(default_factory=dict)
    labels: dict[str, int] = field(default_factory=dict)
    history: list[LabelEvent] = field(default_factory=list)
    experiment: dict[str, Any] | None = None
    # Results of ``tollhouse eval prompt`` runs (newest last, the last ``MAX_EVALUATIONS`` kept).
    evaluations: list[dict[str, Any]] = field(default_factory=list)

    @property
    def latest(self) -> int:
        return max(self.versions, default=0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "labels": dict(self.labels),
            "experiment": self.experiment,
            "versions": [self.versions[v].to_dict() for v in sorted(self.versions)],
            "history": [e.to_dict() for e in self.history],
            "evaluations": list(self.evaluations),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], prompt_id: str | None = None) -> Prompt:
        pid = prompt_id or str(data["id"])
        versions = [PromptVersion.from_dict(pid, v) for v in data.get("versions") or []]
        return cls(
            id=pid,
            versions={v.version: v for v in versions},
            labels={str(k): int(v) for k, v in (data.get("labels") or {}).items()},
            history=[LabelEvent.from_dict(e) for e in data.get("history") or []],
            experiment=data.get("experiment"),
            evaluations=list(data.get("evaluations") or []),
        )


class PromptStore(Protocol):
    """Where prompts live. Reads are rare (the registry keeps every prompt in memory and polls ``token``);
    writes are admin actions. Versions are immutable: ``push`` numbers a new one."""

    async def open(self) -> None: ...

    async def token(self) -> str:
        """Changes whenever anything stored changes (the registry reloads when it does)."""
        ...

    async def load(self) -> dict[str, Prompt]: ...

    async def push(self, version: PromptVersion) -> PromptVersion:
        """Store a new version numbered one past the prompt's latest (``version.version`` is ignored)."""
        ...

    async def move_label(self, prompt_id: str, event: LabelEvent, expect: int | None = None) -> None:
        """Point ``event.label`` at ``event.version`` and append the event to the history. ``expect``: move
        only if the label still points there (else ``PromptConflict``). Raises ``KeyError`` for an
        unknown prompt or version."""
        ...

    async def set_experiment(self, prompt_id: str, experiment: dict[str, Any] | None) -> None: ...

    async def add_evaluation(self, prompt_id: str, result: dict[str, Any]) -> None:
        """Keep an evaluation's result with the prompt (the last ``MAX_EVALUATIONS``)."""
        ...

    async def aclose(self) -> None: ...


def apply_label(prompt: Prompt, event: LabelEvent, expect: int | None) -> None:
    """``move_label`` on an in-memory prompt (every backend checks the same way)."""
    if event.version not in prompt.versions:
        raise KeyError(f"prompt {prompt.id!r} has no version {event.version}")
    current = prompt.labels.get(event.label)
    if expect is not None and current != expect:
        raise PromptConflict(f"label {event.label!r} of {prompt.id!r} is at {current}, not {expect}")
    prompt.labels[event.label] = event.version
    prompt.history.append(event)


MAX_EVALUATIONS = 50


def keep_evaluation(prompt: Prompt, result: dict[str, Any]) -> None:
    prompt.evaluations = [*prompt.evaluations, result][-MAX_EVALUATIONS:]


def add_version(prompt: Prompt, version: PromptVersion) -> PromptVersion:
    """``push`` on an in-memory prompt: the next number, now as its time if it has none."""
    new = numbered(version, prompt.latest + 1)
    prompt.versions[new.version] = new
    return new


class FilePromptStore:
    """One ``<id>.yaml`` per prompt in ``folder``. Hand-written files may omit ``id`` (the file name),
    version numbers (their position, from 1) and ``created_at``."""

    def __init__(self, folder: str) -> None:
        self.folder = Path(folder)
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        await asyncio.to_thread(self.folder.mkdir, parents=True, exist_ok=True)

    def _files(self) -> list[Path]:
        return sorted(p for p in self.folder.glob("*.y*ml") if p.suffix in (".yaml", ".yml"))

    async def token(self) -> str:
        def run() -> str:
            parts = []
            for p in self._files():
                st = p.stat()
                parts.append(f"{p.name}:{st.st_mtime_ns}:{st.st_size}")
            return "|".join(parts)

        return await asyncio.to_thread(run)

    def _read(self, path: Path) -> Prompt:
        data = yaml.safe_load(path.read_text()) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: a prompt file holds a mapping")
        pid = str(data.get("id") or path.stem)
        versions = data.get("versions") or []
        for i, v in enumerate(versions, start=1):
            v.setdefault("version", i)
        return Prompt.from_dict({**data, "versions": versions}, pid)

    async def load(self) -> dict[str, Prompt]:
        def run() -> dict[str, Prompt]:
            out = {}
            for p in self._files():
                prompt = self._read(p)
                out[prompt.id] = prompt
            return out

        return await asyncio.to_thread(run)

    def _path(self, prompt_id: str) -> Path:
        if not PROMPT_ID.match(prompt_id):
            raise ValueError(f"invalid prompt id {prompt_id!r}")
        for suffix in (".yaml", ".yml"):
            p = self.folder / f"{prompt_id}{suffix}"
            if p.exists():
                return p
        return self.folder / f"{prompt_id}.yaml"

    def _write(self, path: Path, prompt: Prompt) -> None:
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(yaml.safe_dump(prompt.to_dict(), sort_keys=False, allow_unicode=True, width=100))
        os.replace(tmp, path)

    async def _update(self, prompt_id: str, fn: Any, create: bool = False) -> Any:
        async with self._lock:

            def run() -> Any:
                path = self._path(prompt_id)
                if path.exists():
                    prompt = self._read(path)
                elif create:
                    prompt = Prompt(prompt_id)
                else:
                    raise KeyError(f"unknown prompt {prompt_id!r}")
                out = fn(prompt)
                self._write(path, prompt)
                return out

            return await asyncio.to_thread(run)

    async def push(self, version: PromptVersion) -> PromptVersion:
        result: PromptVersion = await self._update(version.prompt_id, lambda p: add_version(p, version), True)
        return result

    async def move_label(self, prompt_id: str, event: LabelEvent, expect: int | None = None) -> None:
        await self._update(prompt_id, lambda p: apply_label(p, event, expect))

    async def set_experiment(self, prompt_id: str, experiment: dict[str, Any] | None) -> None:
        def fn(prompt: Prompt) -> None:
            prompt.experiment = experiment

        await self._update(prompt_id, fn)

    async def add_evaluation(self, prompt_id: str, result: dict[str, Any]) -> None:
        await self._update(prompt_id, lambda p: keep_evaluation(p, result))

    async def aclose(self) -> None:
        return None


def numbered(version: PromptVersion, number: int) -> PromptVersion:
    return PromptVersion(
        prompt_id=version.prompt_id,
        version=number,
        messages=version.messages,
        model=version.model,
        params=version.params,
        variables=version.variables,
        author=version.author,
        created_at=version.created_at or time.time(),
        notes=version.notes,
    )
