"""Cache keys: the canonical form of a chat request, hashed, inside a tenant scope.

Everything that can change the answer is in the exact key (model, messages with whitespace folded, every
sampling and tool parameter, the prompt version); transport details (``stream``, ``stream_options``,
``user``) are not. The semantic cache matches the final user message by meaning and everything else by
``context_hash``.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from tollhouse.types import ChatRequest, Message, Principal

# Request fields outside ``extra`` that change what the model answers.
_PARAMS = (
    "temperature",
    "top_p",
    "max_tokens",
    "stop",
    "seed",
    "n",
    "tools",
    "tool_choice",
    "response_format",
)


def fold(text: str) -> str:
    """Whitespace-normalised text: runs of white space become one space, ends trimmed."""
    return " ".join(text.split())


def _content(content: str | list[dict[str, Any]] | None) -> Any:
    if isinstance(content, str):
        return fold(content)
    if content is None:
        return None
    return [{**p, "text": fold(p["text"])} if isinstance(p.get("text"), str) else p for p in content]


def _message(m: Message) -> list[Any]:
    return [m.role, _content(m.content), m.name, m.tool_calls, m.tool_call_id, m.extra]


def _digest(obj: Any) -> str:
    raw = orjson.dumps(obj, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return hashlib.blake2b(raw, digest_size=20).hexdigest()


def tenant_scope(principal: Principal, scope: str) -> str:
    """The tenant an entry belongs to. Anonymous callers (no keys configured) share one scope."""
    if principal.anonymous or principal.key_id is None:
        return "anon"
    if scope == "global":
        return "global"
    if scope == "team":
        return f"team:{principal.team}" if principal.team else f"key:{principal.key_id}"
    if scope == "user":
        return f"user:{principal.user}" if principal.user else f"key:{principal.key_id}"
    return f"key:{principal.key_id}"


def exact_key(tenant: str, model: str, req: ChatRequest, prompt_version: str | None) -> str:
    """Hex digest naming the exact entry for this request in this tenant scope."""
    params = [getattr(req, p) for p in _PARAMS]
    return _digest([tenant, model, prompt_version, [_message(m) for m in req.messages], params, req.extra])


def context_hash(req: ChatRequest, prompt_version: str | None) -> str:
    """What must be identical for a semantic hit besides the final user message: every earlier message
    (the system prompt, for single-turn requests), the tool schema and the parameter class."""
    earlier = [_message(m) for m in req.messages[:-1]]
    temperature = 1.0 if req.temperature is None else req.temperature
    param_class = [
        "greedy" if temperature == 0 else "sampled",
        req.top_p,
        req.stop,
        req.seed,
        req.n,
        req.tools,
        req.tool_choice,
        req.response_format,
        req.extra,
    ]
    return _digest([prompt_version, earlier, param_class])


def user_turns(req: ChatRequest) -> int:
    return sum(1 for m in req.messages if m.role == "user")
