"""Prompt token counts for admission, never below what the upstream will bill (docs/adr/0007-reservations.md).

Each deployment gets one counter, chosen once and cached: OpenAI's own BPE (vendored cl100k_base /
o200k_base, by the upstream model's name) for OpenAI-family models, the model's own tokenizer for the
embedded llama.cpp model (chat template included) and the mock, and otherwise a safe upper bound — UTF-8
bytes plus an allowance per message and per request, since a subword tokenizer spends at least one byte of
text on every token. ``Reach`` turns one request into the admission ``Estimate`` over every deployment it
may reach.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from tollhouse.providers.mock import count_words
from tollhouse.tokens.chat import BPE_OVERHEAD, BYTE_OVERHEAD, chat_tokens, text_chars, utf8_len
from tollhouse.tokens.vocab import SHA256, VOCABULARIES
from tollhouse.types import ChatRequest, CompletionRequest, Estimate

if TYPE_CHECKING:
    from tollhouse.providers.registry import Deployment

# The repair retry after an answer failed its json_schema adds the answer and a short note to the prompt.
REPAIR_TOKENS = 256
TEXT_TOKENS = 4  # begin / end markers around one text (a legacy prompt, an embedding input)
# Counting runs on the event loop: prompts longer than this (in characters of text) are bounded by their
# bytes instead, keeping a count under ~1 ms on the 2-core test machine (tiktoken ~35 µs per kB,
# llama.cpp's tokenizer ~350 µs per kB).
BPE_MAX_CHARS = 32_768
OWN_MAX_CHARS = 2_048


class PromptCounter(Protocol):
    """Tokens a deployment will bill for a prompt, at least."""

    def chat(self, req: ChatRequest) -> int: ...

    def completion(self, req: CompletionRequest) -> int: ...

    def text(self, text: str) -> int:
        """One text on its own (an embedding input)."""
        ...


class ByteBound:
    """The safe upper bound for an unknown tokenizer: UTF-8 bytes plus allowances (``chat.BYTE_OVERHEAD``)."""

    def chat(self, req: ChatRequest) -> int:
        return chat_tokens(req, utf8_len, BYTE_OVERHEAD)

    def completion(self, req: CompletionRequest) -> int:
        return utf8_len(req.prompt) + BYTE_OVERHEAD.request

    def text(self, text: str) -> int:
        return utf8_len(text) + TEXT_TOKENS


BYTES = ByteBound()


class Bpe:
    """OpenAI's tokenizer (``encoding``: a vendored vocabulary), counting the chat format the way OpenAI
    bills it, with a margin (``chat.BPE_OVERHEAD``). Until the vocabulary has loaded, the byte bound."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding

    def _count(self) -> Callable[[str], int] | None:
        enc = VOCABULARIES.get(self.encoding)
        if enc is None:
            return None
        encode = enc.encode_ordinary  # special-token text counts as text, as the API treats it

        def count(text: str) -> int:
            return len(encode(text)) if text else 0

        return count

    def chat(self, req: ChatRequest) -> int:
        count = self._count() if text_chars(req) <= BPE_MAX_CHARS else None
        return BYTES.chat(req) if count is None else chat_tokens(req, count, BPE_OVERHEAD)

    def completion(self, req: CompletionRequest) -> int:
        count = self._count() if len(req.prompt) <= BPE_MAX_CHARS else None
        return BYTES.completion(req) if count is None else count(req.prompt) + TEXT_TOKENS

    def text(self, text: str) -> int:
        count = self._count() if len(text) <= BPE_MAX_CHARS else None
        return BYTES.text(text) if count is None else count(text) + TEXT_TOKENS


class Words:
    """The mock provider's billing: whitespace-separated words of the messages' text."""

    def chat(self, req: ChatRequest) -> int:
        return sum(count_words(m.text()) for m in req.messages)

    def completion(self, req: CompletionRequest) -> int:
        return count_words(req.prompt)

    def text(self, text: str) -> int:
        return count_words(text)


class OwnTokenizer:
    """A provider that counts its prompts itself (the embedded llama.cpp model: its tokenizer, its chat
    template). A long prompt, or one it cannot count (it would refuse the request anyway), gets the byte
    bound."""

    def __init__(self, count: Callable[[ChatRequest | CompletionRequest], int]) -> None:
        self._count = count

    def chat(self, req: ChatRequest) -> int:
        if text_chars(req) <= OWN_MAX_CHARS:
            with contextlib.suppress(Exception):
                return self._count(req)
        return BYTES.chat(req)

    def completion(self, req: CompletionRequest) -> int:
        if len(req.prompt) <= OWN_MAX_CHARS:
            with contextlib.suppress(Exception):
                return self._count(req)
        return BYTES.completion(req)

    def text(self, text: str) -> int:
        return BYTES.text(text)


def encoding_for(model: str) -> str | None:
    """The vendored vocabulary of an OpenAI model name (``gpt-4o-mini``, ``ft:gpt-4.1:…``), else None."""
    try:
        from tiktoken.model import encoding_name_for_model
    except ImportError:
        return None
    try:
        name = encoding_name_for_model(model)
    except KeyError:
        return None
    name = "o200k_base" if name == "o200k_harmony" else name  # same vocabulary, other special tokens
    return name if name in SHA256 else None


def choose(dep: Deployment) -> PromptCounter:
    """The counter for one deployment (see the module docstring)."""
    cfg = dep.config
    if cfg.provider == "mock":
        return Words()
    own: Any = getattr(dep.provider, "count_prompt_tokens", None)
    if callable(own):
        return OwnTokenizer(own)
    if cfg.provider == "openai":
        encoding = encoding_for(cfg.upstream_model)
        if encoding is not None:
            return Bpe(encoding)
    return BYTES


@dataclass(slots=True, frozen=True)
class Reach:
    """The deployments a request may be served by (the first is the one it is validated against), each
    one's prompt counter, and how many calls it may pay for one after another (a cascade's tiers)."""

    deployments: tuple[Deployment, ...]
    counters: tuple[PromptCounter, ...]
    calls: int = 1

    def estimate(
        self,
        prompt: Callable[[PromptCounter], int],
        max_tokens: int | None,
        *,
        choices: int = 1,
        repair: bool = False,
        output: bool = True,
    ) -> Estimate:
        """``prompt`` counts the request with one counter (once per distinct counter). Output: the
        request's ``max_tokens`` (else each deployment's cap) for each of ``choices``; ``repair``: the
        answer may be asked for once more. ``output`` False: nothing is generated (embeddings)."""
        calls = self.calls * (2 if repair else 1)
        counted: dict[int, int] = {}
        worst: list[tuple[str, int, int]] = []
        for dep, counter in zip(self.deployments, self.counters, strict=True):
            cap = dep.config.max_output_tokens
            if worst and max_tokens is not None and max_tokens > cap:
                continue  # routing never picks a deployment whose cap is below the request's max_tokens
            p = counted.get(id(counter))
            if p is None:
                p = counted[id(counter)] = prompt(counter)
            out = (max_tokens or cap) * choices if output else 0
            worst.append((dep.name, calls * p + (calls - 1) * (out + REPAIR_TOKENS), calls * out))
        first = self.deployments[0].config.max_output_tokens
        return Estimate(counted[id(self.counters[0])], (max_tokens or first) if output else 0, tuple(worst))


class TokenCounters:
    """Counters per deployment name and ``Reach`` per routed set, built on first use and kept (one per
    gateway: names are unique within one configuration)."""

    def __init__(self) -> None:
        self._counters: dict[str, PromptCounter] = {}
        self._reach: dict[tuple[int, int], tuple[tuple[Deployment, ...], Reach]] = {}

    def counter(self, dep: Deployment) -> PromptCounter:
        c = self._counters.get(dep.name)
        if c is None:
            c = self._counters[dep.name] = choose(dep)
        return c

    def reach(self, deployments: tuple[Deployment, ...], calls: int = 1) -> Reach:
        """``deployments`` is the router's cached tuple: the same object for the same route."""
        key = (id(deployments), calls)
        hit = self._reach.get(key)
        if hit is not None and hit[0] is deployments:
            return hit[1]
        reach = Reach(deployments, tuple(self.counter(d) for d in deployments), calls)
        self._reach[key] = (deployments, reach)
        return reach
