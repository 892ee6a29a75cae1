"""A new version as the admin API, the CLI or a YAML file gives it, checked before it is stored: roles,
templates (parsed, and refused if they reach internals or load files), parameters and variables."""

from __future__ import annotations

import time
from typing import Any

from tollhouse.errors import InvalidRequest
from tollhouse.prompts.template import check_schema, check_template
from tollhouse.stores.prompts import LABEL, PROMPT_ID, PromptVersion

ROLES = ("system", "developer", "user", "assistant")
# The request parameters a version may set (a request's own value wins).
PARAMS = (
    "temperature",
    "top_p",
    "max_tokens",
    "stop",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "tools",  # names of gateway tools (docs/TOOLS.md)
    "retrieval",  # {"collection", "k", …}: retrieve into every request rendered from the version
)
_FIELDS = {"messages", "model", "params", "variables", "notes", "author"}


def check_id(pid: str) -> None:
    if not PROMPT_ID.match(pid):
        raise InvalidRequest(
            f"Invalid prompt id '{pid[:64]}': letters, digits, '_', '-', '.', up to 128 characters.",
            param="id",
        )


def check_label(label: str) -> None:
    if not LABEL.match(label):
        raise InvalidRequest(
            f"Invalid label '{label[:64]}': a letter, then letters, digits, '_', '-'.", param="label"
        )


def draft_version(pid: str, body: dict[str, Any], author: str | None) -> PromptVersion:
    check_id(pid)
    if not isinstance(body, dict):
        raise InvalidRequest("A version is a JSON object.", param=None)
    unknown = set(body) - _FIELDS
    if unknown:
        raise InvalidRequest(
            f"Unknown fields {sorted(unknown)} (allowed: {sorted(_FIELDS)}).", param=sorted(unknown)[0]
        )
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise InvalidRequest("messages: a non-empty list of {role, content}.", param="messages")
    messages = []
    for i, m in enumerate(raw):
        where = f"messages.{i}"
        if not isinstance(m, dict) or not isinstance(m.get("content"), str) or m.get("role") not in ROLES:
            raise InvalidRequest(
                f'{where}: {{"role": one of {list(ROLES)}, "content": template text}}.', param=where
            )
        check_template(m["content"], f"{where}.content")
        messages.append((m["role"], m["content"]))
    model = body.get("model")
    if model is not None and (not isinstance(model, str) or not model):
        raise InvalidRequest("model: a model name.", param="model")
    params = body.get("params") or {}
    if not isinstance(params, dict) or set(params) - set(PARAMS):
        raise InvalidRequest(f"params: an object with some of {list(PARAMS)}.", param="params")
    tools = params.get("tools")
    if tools is not None and not (isinstance(tools, list) and all(isinstance(t, str) and t for t in tools)):
        raise InvalidRequest("params.tools: a list of gateway tool names.", param="params.tools")
    retrieval = params.get("retrieval")
    if retrieval is not None and not (
        isinstance(retrieval, dict) and isinstance(retrieval.get("collection"), str)
    ):
        raise InvalidRequest('params.retrieval: {"collection": name, "k": n, …}.', param="params.retrieval")
    variables = body.get("variables") or {}
    if not isinstance(variables, dict):
        raise InvalidRequest("variables: an object of name → {type, required, …}.", param="variables")
    check_schema(variables)
    notes = body.get("notes")
    return PromptVersion(
        prompt_id=pid,
        version=0,
        messages=tuple(messages),
        model=model,
        params=dict(params),
        variables=dict(variables),
        author=str(body.get("author") or author or "") or None,
        created_at=time.time(),
        notes=None if notes is None else str(notes),
    )
