"""OpenAI request bodies as pydantic models: lenient (unknown fields accepted and reported), exact in
what they check, and converted to internal types by ``to_internal``. Their JSON schema is what
``/docs`` shows.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tollhouse.types import ChatRequest, CompletionRequest, EmbeddingRequest, Message
from tollhouse.wire.openai_content import (
    content_from_dict,
    response_format_from_dict,
    tool_call_from_dict,
    tool_choice_from_dict,
    tool_from_dict,
)

# OpenAI parameters we relay to OpenAI-compatible upstreams without interpreting them.
_RELAYED = (
    "frequency_penalty",
    "presence_penalty",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "parallel_tool_calls",
    "max_completion_tokens",
    "metadata",
    "store",
    "service_tier",
    "modalities",
    "audio",
    "prediction",
    "reasoning_effort",
    "functions",
    "function_call",
    "best_of",
    "suffix",
)


class Wire(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    def ignored_fields(self) -> list[str]:
        return sorted((self.model_extra or {}).keys())

    def relayed(self) -> dict[str, Any]:
        # Declared fields from __dict__, undeclared ones from the extras: getattr() on a name a model does
        # not declare goes through BaseModel.__getattr__ and a raised AttributeError (~10 µs per request).
        fields = self.__dict__
        extra = self.__pydantic_extra__ or {}
        out: dict[str, Any] = {}
        for k in _RELAYED:
            v = fields[k] if k in fields else extra.get(k)
            if v is not None:
                out[k] = v
        return out


class ChatMessage(Wire):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None

    @field_validator("content")
    @classmethod
    def _parts(cls, v: Any) -> Any:
        if isinstance(v, list):
            for i, part in enumerate(v):
                if not isinstance(part.get("type"), str):
                    raise ValueError(f"content part {i} has no 'type'")
                if part["type"] == "text" and not isinstance(part.get("text"), str):
                    raise ValueError(f"content part {i} of type 'text' needs a string 'text'")
        return v

    def to_internal(self) -> Message:
        calls = self.tool_calls
        return Message(
            role=self.role,
            content=content_from_dict(self.content),
            name=self.name,
            tool_calls=None if calls is None else [tool_call_from_dict(c) for c in calls],
            tool_call_id=self.tool_call_id,
            extra=dict(self.model_extra) if self.model_extra else None,
        )


class StreamOptions(Wire):
    include_usage: bool = False


class _Sampling(Wire):
    max_tokens: int | None = Field(None, ge=1, description="Largest number of tokens to generate.")
    max_completion_tokens: int | None = Field(None, ge=1, description="Newer name of `max_tokens`.")
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    n: int = Field(1, ge=1, le=8)
    stop: str | list[str] | None = None
    seed: int | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    logit_bias: dict[str, float] | None = None

    @field_validator("stop")
    @classmethod
    def _stop(cls, v: Any) -> Any:
        if isinstance(v, list) and len(v) > 4:
            raise ValueError("at most 4 stop sequences")
        return v

    def stop_list(self) -> list[str] | None:
        if self.stop is None:
            return None
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)

    def max_out(self) -> int | None:
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens


class ChatCompletionRequest(_Sampling):
    """Body of `POST /v1/chat/completions`."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "model": "local",
                    "messages": [{"role": "user", "content": "Say hello in one sentence."}],
                    "max_tokens": 32,
                }
            ]
        }
    )

    model: str = Field(..., min_length=1, description="Model name or alias (see GET /v1/models).")
    messages: list[ChatMessage] = Field(..., min_length=1)
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(None, ge=0, le=20)
    parallel_tool_calls: bool | None = None
    metadata: dict[str, str] | None = None
    store: bool | None = None
    service_tier: str | None = None
    modalities: list[str] | None = None
    audio: dict[str, Any] | None = None
    prediction: dict[str, Any] | None = None
    reasoning_effort: str | None = None
    functions: list[dict[str, Any]] | None = None
    function_call: str | dict[str, Any] | None = None
    cache: Any = Field(
        None,
        description='Tollhouse cache directives: `{"no_cache": true, "no_store": true, "ttl": 60}` '
        "(also as the `Cache-Control` and `x-tollhouse-cache-ttl` headers). Never sent upstream.",
    )

    def to_internal(self) -> ChatRequest:
        return ChatRequest(
            model=self.model,
            messages=[m.to_internal() for m in self.messages],
            stream=self.stream,
            include_usage=bool(self.stream_options and self.stream_options.include_usage),
            max_tokens=self.max_out(),
            temperature=self.temperature,
            top_p=self.top_p,
            stop=self.stop_list(),
            seed=self.seed,
            n=self.n,
            user=self.user,
            tools=None if self.tools is None else [tool_from_dict(t) for t in self.tools],
            tool_choice=tool_choice_from_dict(self.tool_choice),
            response_format=response_format_from_dict(self.response_format),
            extra=self.relayed(),
        )


class CompletionCreateRequest(_Sampling):
    """Body of `POST /v1/completions` (legacy text completions; one prompt string per request)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"model": "local", "prompt": "The capital of France is", "max_tokens": 8}]
        }
    )

    model: str = Field(..., min_length=1)
    prompt: str | list[str] = Field(..., description="A string, or a list holding exactly one string.")
    echo: bool = False
    logprobs: int | None = Field(None, ge=0, le=5)
    best_of: int | None = Field(None, ge=1)
    suffix: str | None = None

    @field_validator("prompt")
    @classmethod
    def _one_prompt(cls, v: Any) -> Any:
        if isinstance(v, list) and len(v) != 1:
            raise ValueError("only one prompt per request is supported; send a string")
        return v

    def to_internal(self) -> CompletionRequest:
        prompt = self.prompt if isinstance(self.prompt, str) else self.prompt[0]
        return CompletionRequest(
            model=self.model,
            prompt=prompt,
            stream=self.stream,
            include_usage=bool(self.stream_options and self.stream_options.include_usage),
            max_tokens=self.max_out(),
            temperature=self.temperature,
            top_p=self.top_p,
            stop=self.stop_list(),
            seed=self.seed,
            n=self.n,
            echo=self.echo,
            user=self.user,
            extra=self.relayed(),
        )


class EmbeddingCreateRequest(Wire):
    """Body of `POST /v1/embeddings`."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"model": "local-embed", "input": ["first text", "second text"]}]}
    )

    model: str = Field(..., min_length=1)
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(None, ge=1)
    user: str | None = None

    @field_validator("input")
    @classmethod
    def _not_empty(cls, v: Any) -> Any:
        if isinstance(v, list) and not v:
            raise ValueError("input must not be empty")
        return v

    def to_internal(self) -> EmbeddingRequest:
        raw = self.input
        items: list[str] | list[list[int]]
        if isinstance(raw, str):
            items = [raw]
        elif all(isinstance(x, int) for x in raw):
            items = [[int(x) for x in raw if isinstance(x, int)]]
        elif all(isinstance(x, str) for x in raw):
            items = [x for x in raw if isinstance(x, str)]
        else:
            items = [x for x in raw if isinstance(x, list)]
        return EmbeddingRequest(
            model=self.model,
            input=items,
            encoding_format=self.encoding_format,
            dimensions=self.dimensions,
            user=self.user,
        )
