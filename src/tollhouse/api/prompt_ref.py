"""A request's reference to a stored prompt, from any ingress: the body's ``prompt`` field, a
``tollhouse_prompt`` metadata entry, or the ``x-tollhouse-prompt`` header (for SDKs that drop unknown
fields), in that order. Each takes an object ``{"id", "version" | "label", "variables", "unit"}``; the
metadata entry and the header take it as JSON text, or the short forms ``id``, ``id@3``, ``id@staging``.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from tollhouse.errors import InvalidRequest
from tollhouse.types import PromptRef

HEADER = "x-tollhouse-prompt"
METADATA_KEY = "tollhouse_prompt"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
_FIELDS = {"id", "version", "label", "variables", "unit"}


def prompt_ref(body: Any, metadata: dict[str, str] | None, header: str | None) -> PromptRef | None:
    if body is not None:
        return _parse(body, "prompt")
    if metadata and METADATA_KEY in metadata:
        return _parse(_text(metadata[METADATA_KEY], f"metadata.{METADATA_KEY}"), f"metadata.{METADATA_KEY}")
    if header:
        return _parse(_text(header, HEADER), HEADER)
    return None


def _text(value: str, where: str) -> Any:
    value = value.strip()
    if value.startswith("{"):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            raise InvalidRequest(f"{where}: not valid JSON.", param=where) from None
    return value


def _parse(value: Any, where: str) -> PromptRef:
    if isinstance(value, str):
        name, _, at = value.partition("@")
        value = (
            {"id": name}
            if not at
            else {"id": name, **({"version": int(at)} if at.isdigit() else {"label": at})}
        )
    if not isinstance(value, dict):
        raise InvalidRequest(
            f'{where}: expected {{"id": …, "version" or "label", "variables": {{…}}}}.', param=where
        )
    unknown = set(value) - _FIELDS
    if unknown:
        raise InvalidRequest(
            f"{where}: unknown fields {sorted(unknown)}.", param=f"{where}.{sorted(unknown)[0]}"
        )
    pid = value.get("id")
    if not isinstance(pid, str) or not _ID.match(pid):
        raise InvalidRequest(
            f"{where}.id: a prompt id (letters, digits, '_', '-', '.').", param=f"{where}.id"
        )
    version = value.get("version")
    if version is not None and (not isinstance(version, int) or isinstance(version, bool) or version < 1):
        raise InvalidRequest(f"{where}.version: a version number (1, 2, …).", param=f"{where}.version")
    label: Any = value.get("label")
    if label is not None and (not isinstance(label, str) or not label or len(label) > 64):
        raise InvalidRequest(f"{where}.label: a label name.", param=f"{where}.label")
    if version is not None and label is not None:
        raise InvalidRequest(f"{where}: give a version or a label, not both.", param=f"{where}.version")
    variables = value.get("variables") or {}
    if not isinstance(variables, dict):
        raise InvalidRequest(f"{where}.variables: an object of name → value.", param=f"{where}.variables")
    unit = value.get("unit")
    if unit is not None and (not isinstance(unit, str) or not unit or len(unit) > 256):
        raise InvalidRequest(f"{where}.unit: a string of up to 256 characters.", param=f"{where}.unit")
    return PromptRef(pid, version, label, variables, unit)
