"""OpenAI request bodies as pydantic models: lenient with unknown fields (accepted and reported), strict
where OpenAI is strict (types, and every number within the range OpenAI's spec documents or, where it
documents none, a sane bound: a 400 naming the field), and converted to internal types by ``to_internal``.
Their JSON schema is what ``/docs`` shows. Shape checks of the plain-JSON values: ``checks``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    field_validator,
    model_validator,
)

from tollhouse.api.errors import FieldError
from tollhouse.api.openai import checks
from tollhouse.api.openai.checks import INT64_MAX, INT64_MIN
from tollhouse.api.prompt_ref import METADATA_KEY, prompt_ref
from tollhouse.errors import InvalidRequest
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
_RELAYED_SET = frozenset(_RELAYED)


MAX_N = 128  # choices per request (OpenAI: 1-128); each deployment may allow fewer (`max_n`)
MAX_TOKENS = 2**31 - 1  # any larger `max_tokens` is meaningless (and beyond every model's cap)
MAX_DIMENSIONS = 4096  # ours: no embedding model we know of has more; each model may allow fewer
MAX_EMBEDDING_INPUTS = 2048  # OpenAI: an input array holds at most 2048 items
TOKEN_ID_MAX = checks.TOKEN_ID_MAX

TokenId = Annotated[StrictInt, Field(ge=0, le=TOKEN_ID_MAX)]
_TOKEN_IDS = f"token ids are integers from 0 to {TOKEN_ID_MAX}"


def _token_ids(tokens: list[Any], where: str) -> None:
    """Each token id within range: ``min`` / ``max`` in C on the common path; the culprit's index only
    when one is out (non-integers are left to the field's own type check)."""
    try:
        if min(tokens) >= 0 and max(tokens) <= TOKEN_ID_MAX:
            return
    except TypeError:
        return
    for j, token in enumerate(tokens):
        if not 0 <= token <= TOKEN_ID_MAX:
            raise FieldError(f"{where}{j}", _TOKEN_IDS)


class Wire(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    @model_validator(mode="after")
    def _narrow_extras(self) -> Self:
        """Unknown fields are relayed or hashed: refuse integers no encoder can write (beyond 64 bits)."""
        extra = self.__pydantic_extra__
        if extra:
            for key, value in extra.items():
                checks.narrow_ints(value, key)
        return self

    def ignored_fields(self) -> list[str]:
        return sorted((self.model_extra or {}).keys())

    def vendor(self) -> dict[str, Any]:
        """Top-level fields OpenAI does not define (what the openai SDK's ``extra_body`` merges in): each
        deployment passes on those its ``extra_params`` allows and logs and drops the rest."""
        extra = self.__pydantic_extra__
        if not extra:
            return {}
        return {k: v for k, v in extra.items() if k not in _RELAYED_SET}

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
            checks.content_parts(v)
        return v

    @field_validator("tool_calls")
    @classmethod
    def _calls(cls, v: Any) -> Any:
        # Earlier answers are relayed as they came (any upstream's shape), but must be encodable.
        if v is not None:
            checks.narrow_ints(v, "", levels=0)
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
    include_usage: StrictBool = False


class _Sampling(Wire):
    max_tokens: StrictInt | None = Field(
        None, ge=1, le=MAX_TOKENS, description="Largest number of tokens to generate."
    )
    max_completion_tokens: StrictInt | None = Field(
        None, ge=1, le=MAX_TOKENS, description="Newer name of `max_tokens`."
    )
    temperature: StrictFloat | None = Field(None, ge=0, le=2)
    top_p: StrictFloat | None = Field(None, ge=0, le=1)
    n: StrictInt = Field(1, ge=1, le=MAX_N, description="Choices to generate (the model may allow fewer).")
    stop: str | list[str] | None = Field(None, description="Up to 4 sequences where generation stops.")
    seed: StrictInt | None = Field(None, ge=INT64_MIN, le=INT64_MAX)
    stream: StrictBool | None = False
    stream_options: StreamOptions | None = None
    user: str | None = None
    frequency_penalty: StrictFloat | None = Field(None, ge=-2, le=2)
    presence_penalty: StrictFloat | None = Field(None, ge=-2, le=2)
    logit_bias: dict[str, StrictFloat] | None = Field(
        None, description="Token id (as a string) → bias from -100 to 100."
    )

    @field_validator("stop")
    @classmethod
    def _stop(cls, v: Any) -> Any:
        if isinstance(v, list) and len(v) > 4:
            raise ValueError("at most 4 stop sequences")
        return v

    @field_validator("logit_bias")
    @classmethod
    def _bias(cls, v: Any) -> Any:
        if v is not None:
            checks.logit_bias(v)
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

    model: str = Field(
        "",
        description="Model name or alias (see GET /v1/models); optional with a stored `prompt` that "
        "sets one.",
    )
    messages: list[ChatMessage] = Field(
        default_factory=list, description="At least one, unless a stored `prompt` supplies them."
    )
    prompt: Any = Field(
        None,
        description='A stored prompt: `{"id": "support-answer", "version": 3 | "label": "production", '
        '"variables": {...}}` (also as `metadata.tollhouse_prompt` or the `x-tollhouse-prompt` header). '
        "Its messages go in front of `messages`; its model and parameters apply unless set here.",
    )
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None
    logprobs: StrictBool | None = None
    top_logprobs: StrictInt | None = Field(None, ge=0, le=20)
    parallel_tool_calls: StrictBool | None = None
    metadata: dict[str, str] | None = None
    store: StrictBool | None = None
    service_tier: str | None = None
    modalities: list[str] | None = None
    audio: dict[str, Any] | None = None
    prediction: dict[str, Any] | None = None
    reasoning_effort: str | None = None
    functions: list[dict[str, Any]] | None = Field(None, max_length=128)
    function_call: str | dict[str, Any] | None = None
    cache: Any = Field(
        None,
        description='Tollhouse cache directives: `{"no_cache": true, "no_store": true, "ttl": 60, '
        '"sampled": true}` (also as the `Cache-Control` and `x-tollhouse-cache-ttl` headers). Never sent '
        "upstream.",
    )

    @field_validator("tools")
    @classmethod
    def _tools(cls, v: Any) -> Any:
        if v is not None:
            checks.tools(v)
        return v

    @field_validator("functions")
    @classmethod
    def _functions(cls, v: Any) -> Any:
        if v is not None:
            checks.functions(v)
        return v

    @field_validator("tool_choice")
    @classmethod
    def _tool_choice(cls, v: Any) -> Any:
        if v is not None:
            checks.tool_choice(v)
        return v

    @field_validator("function_call")
    @classmethod
    def _function_call(cls, v: Any) -> Any:
        if v is not None:
            checks.function_call(v)
        return v

    @field_validator("response_format")
    @classmethod
    def _response_format(cls, v: Any) -> Any:
        if v is not None:
            checks.response_format(v)
        return v

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, v: Any) -> Any:
        if v is not None:
            checks.metadata(v)
        return v

    @field_validator("audio", "prediction")
    @classmethod
    def _encodable(cls, v: Any) -> Any:
        if v is not None:
            checks.narrow_ints(v, "", levels=0)
        return v

    def to_internal(self, prompt_header: str | None = None) -> ChatRequest:
        ref = prompt_ref(self.prompt, self.metadata, prompt_header)
        if ref is None:
            if not self.model:
                raise InvalidRequest("model: a model name is required.", param="model")
            if not self.messages:
                raise InvalidRequest("messages: at least one message is required.", param="messages")
        extra = self.relayed()
        vendor = self.vendor()
        # Ours, not a vendor field: the retrieval stage reads it (one dict lookup when absent).
        retrieval = vendor.pop("retrieval", None) if vendor else None
        if self.metadata and METADATA_KEY in self.metadata:  # ours, not the upstream's
            rest = {k: v for k, v in self.metadata.items() if k != METADATA_KEY}
            if rest:
                extra["metadata"] = rest
            else:
                extra.pop("metadata", None)
        return ChatRequest(
            prompt=ref,
            model=self.model,
            messages=[m.to_internal() for m in self.messages],
            stream=bool(self.stream),
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
            extra=extra,
            vendor=vendor,
            retrieval=retrieval,
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
    echo: StrictBool = False
    logprobs: StrictInt | None = Field(None, ge=0, le=5)
    best_of: StrictInt | None = Field(None, ge=1, le=20)
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
            stream=bool(self.stream),
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
            vendor=self.vendor(),
        )


class EmbeddingCreateRequest(Wire):
    """Body of `POST /v1/embeddings`."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"model": "local-embed", "input": ["first text", "second text"]}]}
    )

    model: str = Field(..., min_length=1)
    input: str | list[str] | list[TokenId] | list[list[TokenId]] = Field(
        ...,
        description=f"A string, or a list of up to {MAX_EMBEDDING_INPUTS} strings or token-id arrays; "
        "none empty.",
    )
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: StrictInt | None = Field(
        None, ge=1, le=MAX_DIMENSIONS, description="Shorten each vector (the model may allow fewer)."
    )
    user: str | None = None

    @field_validator("input", mode="before")
    @classmethod
    def _inputs(cls, v: Any) -> Any:
        """Clear messages before the union's own: what is empty, too many, or not a token id."""
        if isinstance(v, str):
            if not v:
                raise ValueError("input must not be an empty string")
            return v
        if not isinstance(v, list):
            raise ValueError("must be a string, or a list of strings or of token-id arrays")
        if not v:
            raise ValueError("input must not be empty")
        if len(v) > MAX_EMBEDDING_INPUTS:
            raise ValueError(f"at most {MAX_EMBEDDING_INPUTS} inputs per request")
        kind = type(v[0])
        for i, item in enumerate(v):
            if type(item) is not kind or kind not in (str, int, list):
                raise FieldError(str(i), "items must all be strings, all token ids or all token-id arrays")
            if kind is not int and not item:
                raise FieldError(str(i), f"input {i} is empty")
            if kind is list:
                _token_ids(item, f"{i}.")
        if kind is int:
            _token_ids(v, "")
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


MAX_MODERATION_INPUTS = 32  # texts per moderation request
MAX_MODERATION_CHARS = 32_000  # characters per text


class ModerationCreateRequest(Wire):
    """Body of `POST /v1/moderations`."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"model": "omni-moderation-latest", "input": "I want to hurt them."}]}
    )

    model: str | None = Field(None, description="Any moderation model name; one classifier answers.")
    input: str | list[Any] = Field(
        ...,
        description=f"A string, or a list of up to {MAX_MODERATION_INPUTS} strings or "
        '`{"type": "text", "text": …}` parts; at most {MAX_MODERATION_CHARS} characters each.',
    )

    @field_validator("input", mode="before")
    @classmethod
    def _inputs(cls, v: Any) -> Any:
        if isinstance(v, str):
            return _moderation_text(v, "")
        if not isinstance(v, list):
            raise ValueError("must be a string or a list of strings or text parts")
        if not v:
            raise ValueError("input must not be empty")
        if len(v) > MAX_MODERATION_INPUTS:
            raise ValueError(f"at most {MAX_MODERATION_INPUTS} inputs per request")
        out = []
        for i, item in enumerate(v):
            if isinstance(item, dict):
                if item.get("type") != "text" or not isinstance(item.get("text"), str):
                    raise FieldError(str(i), "only text parts are moderated ({'type': 'text', 'text': ...})")
                item = item["text"]
            if not isinstance(item, str):
                raise FieldError(str(i), "items must be strings or text parts")
            out.append(_moderation_text(item, f"input {i} "))
        return out

    def texts(self) -> list[str]:
        return [self.input] if isinstance(self.input, str) else [str(t) for t in self.input]


def _moderation_text(text: str, where: str) -> str:
    if len(text) > MAX_MODERATION_CHARS:
        raise ValueError(f"{where}is too long: at most {MAX_MODERATION_CHARS} characters")
    return text
