"""Checks of the OpenAI request values the protocol keeps as plain JSON: content parts, tools, tool choice,
response formats, logit bias, metadata, and integers too wide for any upstream. Strict where OpenAI's spec is
strict (the ranges and required fields below are the spec's), lenient with kinds it may add (unknown part,
tool or tool-choice types are relayed untouched). A failure is a ``FieldError`` naming the path below the
field, which the 400 then names in full (``messages.0.content.1.image_url.url``).
"""

from __future__ import annotations

import math
import re
from typing import Any

import orjson

from tollhouse.api.errors import FieldError

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1  # `seed` (format int64)
NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # function and json_schema names
IMAGE_DETAIL = ("auto", "low", "high")
TOOL_CHOICE_MODES = ("none", "auto", "required")
FUNCTION_CALL_MODES = ("none", "auto")
RESPONSE_FORMATS = ("text", "json_object", "json_schema")
LOGIT_BIAS_MAX_ENTRIES = 1024  # ours: OpenAI documents no count; a bias per token of a vocabulary is absurd
TOKEN_ID = re.compile(r"^[0-9]{1,10}$")
TOKEN_ID_MAX = 2**31 - 1  # ours: token ids are int32 everywhere we know of
METADATA_MAX_PAIRS, METADATA_KEY_CHARS, METADATA_VALUE_CHARS = 16, 64, 512
_WIDE = "an integer outside the 64-bit range"
# The optional members of a function tool's `function`, their types and how a refusal says it.
_FUNCTION_FIELDS = (
    ("parameters", dict, "a JSON schema object"),
    ("description", str, "a string"),
    ("strict", bool, "true or false"),
)


def _name(value: Any, where: str, what: str) -> None:
    if not isinstance(value, str):
        raise FieldError(where, f"{what} needs a string 'name'")
    if not NAME.match(value):
        raise FieldError(where, "must be 1 to 64 letters, digits, underscores or dashes")


def _object(value: Any, where: str, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise FieldError(where, f"must be an object ({what})")
    return value


def _optional(d: dict[str, Any], key: str, kind: type, where: str, what: str) -> None:
    """``d[key]`` is absent, null, or of ``kind``."""
    value = d.get(key)
    if value is not None and not isinstance(value, kind):
        raise FieldError(f"{where}.{key}" if where else key, f"must be {what}")


def content_parts(parts: list[dict[str, Any]]) -> None:
    """Parts of a message's ``content``: each has a string ``type``; the kinds OpenAI defines carry what the
    spec requires (``text``; ``image_url.url``; ``input_audio.data`` and ``.format``; a ``file`` object)."""
    for i, part in enumerate(parts):
        kind = part.get("type")
        if not isinstance(kind, str):
            raise FieldError(f"{i}.type", f"content part {i} needs a string 'type'")
        if kind == "text":
            if not isinstance(part.get("text"), str):
                raise FieldError(f"{i}.text", f"content part {i} of type 'text' needs a string 'text'")
        elif kind == "image_url":
            img = _object(part.get("image_url"), f"{i}.image_url", "with a string 'url'")
            url = img.get("url")
            if not isinstance(url, str) or not url:
                raise FieldError(f"{i}.image_url.url", "must be a non-empty string (a URL or a data: URL)")
            detail = img.get("detail")
            if detail is not None and detail not in IMAGE_DETAIL:
                raise FieldError(f"{i}.image_url.detail", "must be one of auto, low, high")
        elif kind == "input_audio":
            audio = _object(part.get("input_audio"), f"{i}.input_audio", "with 'data' and 'format'")
            for key in ("data", "format"):
                if not isinstance(audio.get(key), str):
                    raise FieldError(f"{i}.input_audio.{key}", "must be a string")
        elif kind == "file":
            f = _object(part.get("file"), f"{i}.file", "with 'file_id' or 'file_data'")
            for key in ("file_id", "file_data", "filename"):
                _optional(f, key, str, f"{i}.file", "a string")
        narrow_ints(part, str(i))


def tools(items: list[dict[str, Any]]) -> None:
    """``tools``: a function tool names its function (``^[A-Za-z0-9_-]{1,64}$``), and its ``parameters``
    are an object; tools of other types (``custom`` …) are relayed untouched."""
    for i, tool in enumerate(items):
        kind = tool.get("type")
        if kind == "function":
            fn = tool.get("function")
            if not isinstance(fn, dict):
                raise FieldError(f"{i}.function", "must be an object (with a 'name')")
            name = fn.get("name")
            if not (isinstance(name, str) and NAME.match(name)):  # the common case in one test
                _name(name, f"{i}.function.name", "a function tool")
            for key, kinds, what in _FUNCTION_FIELDS:
                value = fn.get(key)
                if value is not None and not isinstance(value, kinds):
                    raise FieldError(f"{i}.function.{key}", f"must be {what}")
        elif not isinstance(kind, str):
            raise FieldError(f"{i}.type", "must be a string such as 'function'")
    narrow_ints(items, "", levels=0)  # one C call for every schema


def functions(items: list[dict[str, Any]]) -> None:
    """The legacy ``functions``: each names itself and its ``parameters`` are an object."""
    for i, fn in enumerate(items):
        _name(fn.get("name"), f"{i}.name", "a function")
        _optional(fn, "parameters", dict, str(i), "a JSON schema object")
    narrow_ints(items, "", levels=0)


def tool_choice(value: str | dict[str, Any]) -> None:
    """``none`` / ``auto`` / ``required``, or an object with a string ``type`` (a named function needs its
    ``function.name``)."""
    if isinstance(value, str):
        if value not in TOOL_CHOICE_MODES:
            raise FieldError("", "must be none, auto, required or an object naming a tool")
        return
    kind = value.get("type")
    if not isinstance(kind, str):
        raise FieldError("type", "must be a string such as 'function'")
    if kind == "function":
        fn = _object(value.get("function"), "function", "with a 'name'")
        if not isinstance(fn.get("name"), str):
            raise FieldError("function.name", "must be a string")
    narrow_ints(value, "")


def function_call(value: str | dict[str, Any]) -> None:
    """The legacy ``function_call``: ``none``, ``auto`` or ``{"name": …}``."""
    if isinstance(value, str):
        if value not in FUNCTION_CALL_MODES:
            raise FieldError("", 'must be none, auto or {"name": …}')
    elif not isinstance(value.get("name"), str):
        raise FieldError("name", "must be a string")


def response_format(value: dict[str, Any]) -> None:
    """``text``, ``json_object`` or ``json_schema`` (whose ``json_schema`` names itself; ``schema`` is an
    object)."""
    kind = value.get("type")
    if kind not in RESPONSE_FORMATS:
        raise FieldError("type", "must be one of text, json_object, json_schema")
    if kind == "json_schema":
        js = _object(value.get("json_schema"), "json_schema", "with a 'name' and a 'schema'")
        _name(js.get("name"), "json_schema.name", "a json_schema")
        _optional(js, "schema", dict, "json_schema", "a JSON schema object")
        _optional(js, "strict", bool, "json_schema", "true or false")
    narrow_ints(value, "")


def logit_bias(value: dict[str, float]) -> None:
    """Token ids (as strings) to a bias from -100 to 100."""
    if len(value) > LOGIT_BIAS_MAX_ENTRIES:
        raise FieldError("", f"at most {LOGIT_BIAS_MAX_ENTRIES} entries")
    for token, bias in value.items():
        if not TOKEN_ID.match(token) or int(token) > TOKEN_ID_MAX:
            raise FieldError(token, "keys must be token ids (non-negative integers, as strings)")
        if not (math.isfinite(bias) and -100 <= bias <= 100):
            raise FieldError(token, "must be a number from -100 to 100")


def metadata(value: dict[str, str]) -> None:
    """At most 16 pairs; keys up to 64 characters, values up to 512."""
    if len(value) > METADATA_MAX_PAIRS:
        raise FieldError("", f"at most {METADATA_MAX_PAIRS} key-value pairs")
    for key, v in value.items():
        if len(key) > METADATA_KEY_CHARS:
            raise FieldError(key, f"keys are at most {METADATA_KEY_CHARS} characters")
        if len(v) > METADATA_VALUE_CHARS:
            raise FieldError(key, f"values are at most {METADATA_VALUE_CHARS} characters")


def narrow_ints(value: Any, where: str, levels: int = 2) -> None:
    """Refuse an integer no JSON encoder we use can write (beyond 64 bits) anywhere in ``value``: it would
    fail the cache key and the upstream request. The first ``levels`` of objects are walked here (so long
    strings such as data URLs are not copied); anything deeper is one C call (``orjson.dumps``)."""
    if value is None or isinstance(value, str | float | bool):
        return
    if isinstance(value, int):
        if not INT64_MIN <= value < 2**64:
            raise FieldError(where, _WIDE)
        return
    if levels > 0 and isinstance(value, dict):
        for key, v in value.items():
            if not isinstance(v, str):
                narrow_ints(v, f"{where}.{key}" if where else str(key), levels - 1)
        return
    try:
        orjson.dumps(value)
    except TypeError:
        path = _wide_path(value)
        if path is None:
            raise FieldError(where, "is nested too deeply") from None
        raise FieldError(".".join(p for p in (where, path) if p), _WIDE) from None


def _wide_path(value: Any) -> str | None:
    """The dotted path of the first integer orjson cannot write, or None."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, v = stack.pop()
        if isinstance(v, int) and not isinstance(v, bool) and not INT64_MIN <= v < 2**64:
            return path
        items = v.items() if isinstance(v, dict) else enumerate(v) if isinstance(v, list) else ()
        for k, child in items:
            stack.append((f"{path}.{k}" if path else str(k), child))
    return None
