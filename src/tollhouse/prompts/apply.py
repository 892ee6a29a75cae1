"""A rendered prompt applied to a chat request: its messages go in front of the request's own, its model and
parameters apply where the request sets none. Works on the internal ``ChatRequest``, so every ingress that
converts to it (OpenAI chat, Anthropic messages) takes stored prompts the same way."""

from __future__ import annotations

import dataclasses

from tollhouse.errors import InvalidRequest
from tollhouse.types import ChatRequest, RenderedPrompt

_FIELDS = ("temperature", "top_p", "max_tokens", "stop", "seed")


def apply_chat(req: ChatRequest, rendered: RenderedPrompt) -> ChatRequest:
    out = dataclasses.replace(req, messages=[*rendered.messages, *req.messages], prompt=None)
    if not out.model:
        if not rendered.model:
            raise InvalidRequest(
                f"model is required: version {rendered.version} of prompt '{rendered.id}' sets none.",
                param="model",
            )
        out.model = rendered.model
    extra = None
    for name, value in rendered.params.items():
        if name == "retrieval":  # the request's own retrieval wins
            if out.retrieval is None:
                out.retrieval = value
        elif name in _FIELDS:
            if getattr(out, name) is None:
                setattr(out, name, list(value) if name == "stop" else value)
        elif name not in out.extra:
            if extra is None:
                extra = out.extra = dict(out.extra)
            extra[name] = value
    return out


def quiet_chat(req: ChatRequest) -> ChatRequest:
    """A copy for a shadow run: answered whole, usage not streamed."""
    return dataclasses.replace(req, stream=False, include_usage=False)
