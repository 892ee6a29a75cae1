"""Cache keys: the canonical form of a chat request, hashed, inside a tenant scope.

Everything that can change the answer is in the exact key (model, messages with whitespace folded, every
sampling and tool parameter, the prompt version); transport details (``stream``, ``stream_options``,
``user``) are not. The semantic cache matches the final user message by meaning and everything else by
``context_hash``. The canonical form spells parts, tools and tool calls in their OpenAI JSON shape, so a
request keeps its key across releases and ingresses.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from tollhouse.types import ChatRequest, ContentPart, Message, Principal, Raw
from tollhouse.wire.openai_content import (
    part_to_dict,
    response_format_to_dict,
    tool_call_to_dict,
    tool_choice_to_dict,
    tool_to_dict,
)


def fold(text: str) -> str:
    """Whitespace-normalised text: runs of white space become one space, ends trimmed."""
    return " ".join(text.split())


def _part(p: ContentPart) -> Any:
    d = part_to_dict(p)
    # Any part with a string ``text`` has it folded, whatever its type (a Raw part's dict is the request's).
    if isinstance(d, dict) and isinstance(d.get("text"), str):
        if isinstance(p, Raw):
            return {**d, "text": fold(d["text"])}
        d["text"] = fold(d["text"])
    return d


def _content(content: str | list[ContentPart] | None) -> Any:
    if isinstance(content, str):
        return fold(content)
    if content is None:
        return None
    return [_part(p) for p in content]


def _message(m: Message) -> list[Any]:
    calls = None if m.tool_calls is None else [tool_call_to_dict(c) for c in m.tool_calls]
    return [m.role, _content(m.content), m.name, calls, m.tool_call_id, m.extra]


def _tools(req: ChatRequest) -> list[Any]:
    """``tools``, ``tool_choice`` and ``response_format`` in canonical form."""
    return [
        None if req.tools is None else [tool_to_dict(t) for t in req.tools],
        None if req.tool_choice is None else tool_choice_to_dict(req.tool_choice),
        None if req.response_format is None else response_format_to_dict(req.response_format),
    ]


_DUMPS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
_INT64 = (-(2**63), 2**64 - 1)  # what orjson writes as a JSON number


def _digest(obj: Any) -> str:
    try:
        raw = orjson.dumps(obj, option=_DUMPS)
    except TypeError:  # an integer orjson cannot write (the API refuses them; other callers may not)
        raw = orjson.dumps(_wide_ints(obj), option=_DUMPS)
    return hashlib.blake2b(raw, digest_size=20).hexdigest()


def _wide_ints(obj: Any) -> Any:
    """``obj`` with each integer outside orjson's range spelled as ``["int", "<digits>"]``, so a key is
    still computed (and differs for different integers) instead of the request failing."""
    if isinstance(obj, int) and not isinstance(obj, bool) and not _INT64[0] <= obj <= _INT64[1]:
        return ["int", str(obj)]
    if isinstance(obj, dict):
        return {k: _wide_ints(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_wide_ints(v) for v in obj]
    return obj


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


def exact_key(
    tenant: str, model: str, req: ChatRequest, prompt_version: str | None, ingress: str = "openai"
) -> str:
    """Hex digest naming the exact entry for this request in this tenant scope. Each ingress (wire format)
    has its own entries: the same question asked in Anthropic's format never gets an answer stored for an
    OpenAI client, or back (OpenAI keys are unchanged)."""
    params = [req.temperature, req.top_p, req.max_tokens, req.stop, req.seed, req.n, *_tools(req)]
    parts = [tenant, model, prompt_version, [_message(m) for m in req.messages], params, req.extra]
    if ingress != "openai":
        parts.append(ingress)
    if req.vendor:  # vendor extras (top_k …) change the answer; keys of requests without any are unchanged
        parts.append(req.vendor)
    return _digest(parts)


def context_hash(req: ChatRequest, prompt_version: str | None, ingress: str = "openai") -> str:
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
        *_tools(req),
        req.extra,
    ]
    if ingress != "openai":
        param_class.append(ingress)
    if req.vendor:
        param_class.append(req.vendor)
    return _digest([prompt_version, earlier, param_class])


def user_turns(req: ChatRequest) -> int:
    return sum(1 for m in req.messages if m.role == "user")
