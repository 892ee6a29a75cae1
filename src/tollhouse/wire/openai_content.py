"""OpenAI JSON ⇄ the pieces inside messages and requests: content parts, tools, tool calls (whole and
streamed), tool choice, response formats. Exact both ways: what is parsed here renders back to the same
JSON (keys the types do not model ride in ``extra``, after the modelled ones, which come in OpenAI's
order). A value the types cannot hold exactly — an unknown type, keys nested where none are expected, an
explicit null, a wrong value type — is kept whole as ``Raw`` and relayed untouched.
"""

from __future__ import annotations

from typing import Any, TypeGuard

from tollhouse.types import (
    AudioPart,
    ContentPart,
    FilePart,
    ImagePart,
    Raw,
    ResponseFormat,
    TextPart,
    ToolCall,
    ToolCallDelta,
    ToolChoice,
    ToolSpec,
)

_TEXT = frozenset({"type", "text"})
_IMAGE = frozenset({"type", "image_url"})
_IMAGE_URL = frozenset({"url", "detail"})
_AUDIO = frozenset({"type", "input_audio"})
_AUDIO_DATA = frozenset({"data", "format"})
_FILE = frozenset({"type", "file"})
_FILE_DATA = frozenset({"file_id", "file_data", "filename"})
_TOOL = frozenset({"type", "function"})
_FUNCTION = frozenset({"name", "description", "parameters", "strict"})
_CALL = frozenset({"id", "type", "function"})
_CALL_FUNCTION = frozenset({"name", "arguments"})
_DELTA = frozenset({"index", "id", "type", "function"})
_FORMAT = frozenset({"type"})
_SCHEMA_FORMAT = frozenset({"type", "json_schema"})
_JSON_SCHEMA = frozenset({"name", "description", "schema", "strict"})
# The value type of each key, where the key may appear.
_IMAGE_URL_TYPES: dict[str, type] = {"url": str, "detail": str}
_AUDIO_TYPES: dict[str, type] = {"data": str, "format": str}
_FILE_TYPES: dict[str, type] = {"file_id": str, "file_data": str, "filename": str}
_FUNCTION_TYPES: dict[str, type] = {"name": str, "description": str, "parameters": dict, "strict": bool}
_CALL_TYPES: dict[str, type] = {"name": str, "arguments": str}
_DELTA_TYPES: dict[str, type] = {"id": str, "type": str}
_JSON_SCHEMA_TYPES: dict[str, type] = {"name": str, "description": str, "schema": dict, "strict": bool}
_CHOICES = {mode: ToolChoice(mode) for mode in ("auto", "none", "required")}  # shared: ToolChoice is frozen


def _extra(d: dict[str, Any], known: frozenset[str]) -> dict[str, Any] | None:
    """The keys of ``d`` outside ``known``, or None when there are none."""
    if len(d) <= len(known) and d.keys() <= known:
        return None
    return {k: v for k, v in d.items() if k not in known} or None


def _typed(d: dict[str, Any], types: dict[str, type]) -> bool:
    """Each of these keys is absent from ``d`` or holds a value of its type (so never null)."""
    return all(k not in d or isinstance(d[k], t) for k, t in types.items())


def _fits(d: Any, known: frozenset[str], types: dict[str, type]) -> TypeGuard[dict[str, Any]]:
    """``d`` is an object with no keys outside ``known`` and, for each key present, a value of its type."""
    return isinstance(d, dict) and d.keys() <= known and _typed(d, types)


def _put(out: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        out[key] = value


# ---- content parts ----------------------------------------------------------------------------------------


def part_from_dict(d: Any) -> ContentPart:
    if not isinstance(d, dict):
        return Raw(d)
    kind = d.get("type")
    if kind == "text":
        text = d.get("text")
        if isinstance(text, str):
            return TextPart(text, _extra(d, _TEXT))
    elif kind == "image_url":
        img = d.get("image_url")
        if _fits(img, _IMAGE_URL, _IMAGE_URL_TYPES) and "url" in img:
            return ImagePart(url=img["url"], detail=img.get("detail"), extra=_extra(d, _IMAGE))
    elif kind == "input_audio":
        audio = d.get("input_audio")
        if _fits(audio, _AUDIO_DATA, _AUDIO_TYPES) and len(audio) == 2:
            return AudioPart(audio["data"], audio["format"], _extra(d, _AUDIO))
    elif kind == "file":
        f = d.get("file")
        if _fits(f, _FILE_DATA, _FILE_TYPES):
            return FilePart(f.get("file_id"), f.get("file_data"), f.get("filename"), _extra(d, _FILE))
    return Raw(d)


def part_to_dict(p: ContentPart) -> Any:
    out: dict[str, Any]
    if isinstance(p, TextPart):
        out = {"type": "text", "text": p.text}
    elif isinstance(p, ImagePart):
        url = p.url
        if url is None:
            url = f"data:{p.media_type or 'application/octet-stream'};base64,{p.data or ''}"
        img: dict[str, Any] = {"url": url}
        _put(img, "detail", p.detail)
        out = {"type": "image_url", "image_url": img}
    elif isinstance(p, AudioPart):
        out = {"type": "input_audio", "input_audio": {"data": p.data, "format": p.format}}
    elif isinstance(p, FilePart):
        f: dict[str, Any] = {}
        _put(f, "file_id", p.file_id)
        _put(f, "file_data", p.data)
        _put(f, "filename", p.filename)
        out = {"type": "file", "file": f}
    else:
        return p.value
    if p.extra:
        out.update(p.extra)
    return out


def content_from_dict(v: Any) -> str | list[ContentPart] | None:
    """A message's ``content``: a string, a list of parts, or None (lenient: anything else is None)."""
    if isinstance(v, str):
        return v
    if isinstance(v, list):
        return [part_from_dict(p) for p in v]
    return None


def content_to_dict(v: str | list[ContentPart] | None) -> Any:
    if v is None or isinstance(v, str):
        return v
    return [part_to_dict(p) for p in v]


# ---- tools ------------------------------------------------------------------------------------------------


def tool_from_dict(d: Any) -> ToolSpec | Raw:
    if isinstance(d, dict) and d.get("type") == "function":
        fn = d.get("function")
        if _fits(fn, _FUNCTION, _FUNCTION_TYPES) and "name" in fn:
            return ToolSpec(
                fn["name"], fn.get("description"), fn.get("parameters"), fn.get("strict"), _extra(d, _TOOL)
            )
    return Raw(d)


def tool_to_dict(t: ToolSpec | Raw) -> Any:
    if isinstance(t, Raw):
        return t.value
    fn: dict[str, Any] = {"name": t.name}
    _put(fn, "description", t.description)
    _put(fn, "parameters", t.parameters)
    _put(fn, "strict", t.strict)
    out: dict[str, Any] = {"type": "function", "function": fn}
    if t.extra:
        out.update(t.extra)
    return out


def tool_choice_from_dict(v: Any) -> ToolChoice | Raw | None:
    if v is None:
        return None
    if isinstance(v, str):
        return _CHOICES.get(v) or Raw(v)
    if isinstance(v, dict) and v.get("type") == "function" and len(v) == 2:
        fn = v.get("function")
        if isinstance(fn, dict) and len(fn) == 1 and isinstance(fn.get("name"), str):
            return ToolChoice("tool", fn["name"])
    return Raw(v)


def tool_choice_to_dict(c: ToolChoice | Raw) -> Any:
    if isinstance(c, Raw):
        return c.value
    if c.mode == "tool":
        return {"type": "function", "function": {"name": c.name}}
    return c.mode


def response_format_from_dict(d: Any) -> ResponseFormat | Raw | None:
    if d is None:
        return None
    if isinstance(d, dict):
        kind = d.get("type")
        if kind == "text" or kind == "json_object":
            return ResponseFormat(kind, extra=_extra(d, _FORMAT))
        js = d.get("json_schema")
        if kind == "json_schema" and _fits(js, _JSON_SCHEMA, _JSON_SCHEMA_TYPES):
            return ResponseFormat(
                "json_schema",
                js.get("name"),
                js.get("description"),
                js.get("schema"),
                js.get("strict"),
                _extra(d, _SCHEMA_FORMAT),
            )
    return Raw(d)


def response_format_to_dict(f: ResponseFormat | Raw) -> Any:
    if isinstance(f, Raw):
        return f.value
    out: dict[str, Any] = {"type": f.type}
    if f.type == "json_schema":
        js: dict[str, Any] = {}
        _put(js, "name", f.name)
        _put(js, "description", f.description)
        _put(js, "schema", f.schema)
        _put(js, "strict", f.strict)
        out["json_schema"] = js
    if f.extra:
        out.update(f.extra)
    return out


# ---- tool calls -------------------------------------------------------------------------------------------


def tool_call_from_dict(d: Any) -> ToolCall | Raw:
    if isinstance(d, dict) and d.get("type") == "function" and isinstance(d.get("id"), str):
        fn = d.get("function")
        if _fits(fn, _CALL_FUNCTION, _CALL_TYPES) and len(fn) == 2:
            return ToolCall(d["id"], fn["name"], fn["arguments"], _extra(d, _CALL))
    return Raw(d)


def tool_call_to_dict(c: ToolCall | Raw) -> Any:
    if isinstance(c, Raw):
        return c.value
    out: dict[str, Any] = {
        "id": c.id,
        "type": "function",
        "function": {"name": c.name, "arguments": c.arguments},
    }
    if c.extra:
        out.update(c.extra)
    return out


def tool_call_delta_from_dict(d: Any) -> ToolCallDelta | Raw:
    if isinstance(d, dict) and _typed(d, _DELTA_TYPES):
        index, fn = d.get("index"), d.get("function")
        if type(index) is int and _fits(fn, _CALL_FUNCTION, _CALL_TYPES):
            return ToolCallDelta(
                index, d.get("id"), d.get("type"), fn.get("name"), fn.get("arguments"), _extra(d, _DELTA)
            )
    return Raw(d)


def tool_call_delta_to_dict(c: ToolCallDelta | Raw) -> Any:
    if isinstance(c, Raw):
        return c.value
    out: dict[str, Any] = {"index": c.index}
    _put(out, "id", c.id)
    _put(out, "type", c.type)
    fn: dict[str, Any] = {}
    _put(fn, "name", c.name)
    _put(fn, "arguments", c.arguments)
    out["function"] = fn
    if c.extra:
        out.update(c.extra)
    return out
