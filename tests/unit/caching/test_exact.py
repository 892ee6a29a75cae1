"""Exact-cache pieces: canonical keys, the byte-bounded LRU, TTLs, stream assembly and replay."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from tollhouse.caching.entry import Assembler, CachedAnswer, cacheable, replay
from tollhouse.caching.keys import context_hash, exact_key, tenant_scope
from tollhouse.stores.cache import ENTRY_OVERHEAD, LRUStore
from tollhouse.types import (
    ChatRequest,
    ChatResponse,
    Choice,
    Message,
    Principal,
    ResponseFormat,
    ToolChoice,
    ToolSpec,
    Usage,
)


def req(text: str = "What is the capital of France?", **kw: object) -> ChatRequest:
    msgs = [Message("system", "Be brief."), Message("user", text)]
    return ChatRequest(model="m", messages=msgs, **kw)  # type: ignore[arg-type]


def key(r: ChatRequest, tenant: str = "key:a", model: str = "m", version: str | None = None) -> str:
    return exact_key(tenant, model, r, version)


def test_whitespace_is_folded_but_words_are_not() -> None:
    assert key(req("What is  the capital\nof France? ")) == key(req())
    assert key(req("What is the capital of Spain?")) != key(req())


@pytest.mark.parametrize(
    "change",
    [
        {"temperature": 0.7},
        {"top_p": 0.5},
        {"max_tokens": 10},
        {"stop": ["\n"]},
        {"seed": 7},
        {"n": 2},
        {"tools": [ToolSpec("f", parameters={})]},
        {"tool_choice": ToolChoice("none")},
        {"response_format": ResponseFormat("json_object")},
        {"extra": {"frequency_penalty": 0.5}},
        {"vendor": {"top_k": 5}},
    ],
)
def test_every_output_changing_parameter_changes_the_key(change: dict[str, object]) -> None:
    assert key(req(**change)) != key(req())


def test_vendor_extras_are_part_of_the_key_and_of_the_semantic_context() -> None:
    assert key(req(vendor={"top_k": 5})) == key(req(vendor={"top_k": 5}))
    assert key(req(vendor={"top_k": 5})) != key(req(vendor={"top_k": 6}))
    assert context_hash(req(vendor={"min_p": 0.1}), None) != context_hash(req(), None)
    # A request without extras keeps the key it had before extras existed.
    assert key(req(vendor={})) == key(req())


def test_transport_fields_do_not_change_the_key() -> None:
    assert key(req(stream=True, include_usage=True, user="someone")) == key(req())


def test_tenant_model_and_prompt_version_are_in_the_key() -> None:
    assert key(req(), tenant="key:b") != key(req())
    assert key(req(), model="other") != key(req())
    assert key(req(), version="v2") != key(req())


def test_tenant_scope() -> None:
    p = Principal(key_id="k1", user="u", team="t", anonymous=False)
    assert tenant_scope(p, "key") == "key:k1"
    assert tenant_scope(p, "team") == "team:t"
    assert tenant_scope(p, "user") == "user:u"
    assert tenant_scope(p, "global") == "global"
    assert tenant_scope(replace(p, team=None), "team") == "key:k1"  # no team: never shared with others
    assert tenant_scope(Principal(), "key") == "anon"


def test_context_hash_covers_system_prompt_and_parameter_class() -> None:
    base = req()
    other_system = ChatRequest(model="m", messages=[Message("system", "Be long."), Message("user", "x")])
    assert context_hash(base, None) != context_hash(other_system, None)
    assert context_hash(base, None) == context_hash(req("Something else entirely"), None)
    assert context_hash(req(temperature=0), None) != context_hash(req(temperature=0.5), None)
    assert context_hash(req(temperature=0.2), None) == context_hash(req(temperature=0.9), None)


async def test_lru_is_bounded_by_bytes_and_evicts_least_recently_used() -> None:
    value = b"x" * 100
    per = len("k0") + len(value) + ENTRY_OVERHEAD
    lru = LRUStore(max_bytes=3 * per)
    for i in range(3):
        await lru.set(f"k{i}", value, 60, "t", "m")
    assert await lru.get("k0") == value  # k0 is now the most recent
    await lru.set("k3", value, 60, "t", "m")
    assert await lru.get("k1") is None  # the least recently used went
    assert {k for k in ("k0", "k2", "k3") if await lru.get(k)} == {"k0", "k2", "k3"}
    assert lru.bytes <= lru.max_bytes
    await lru.set("huge", b"x" * (4 * per), 60, "t", "m")
    assert await lru.get("huge") is None  # larger than the whole cache: not stored
    assert await lru.entries() == 3


async def test_lru_ttl_and_invalidation() -> None:
    lru = LRUStore(max_bytes=1 << 20)
    await lru.set("short", b"v", 0.05, "t1", "m1")
    await lru.set("a", b"v", 60, "t1", "m1")
    await lru.set("b", b"v", 60, "t1", "m2")
    await lru.set("c", b"v", 60, "t2", "m1")
    await asyncio.sleep(0.08)
    assert await lru.get("short") is None
    assert await lru.invalidate(tenant="t1", model="m2") == 1
    assert await lru.invalidate(model="m1") == 2
    assert await lru.entries() == 0


def answer(text: str = "Paris.", finish: str = "stop") -> ChatResponse:
    return ChatResponse(
        id="chatcmpl-1",
        model="m",
        choices=[Choice(0, Message("assistant", text), finish)],
        usage=Usage(12, 3),
    )


def test_entry_round_trip_and_cacheable() -> None:
    a = CachedAnswer.of(answer(), "dep", 0.5)
    b = CachedAnswer.from_bytes(a.to_bytes(), "public")
    assert b.response.choices[0].message.content == "Paris."
    assert b.response.usage == Usage(12, 3)
    assert (b.deployment, b.cost_usd, b.response.model) == ("dep", 0.5, "public")
    assert cacheable(answer())
    assert not cacheable(answer(finish="length"))
    assert not cacheable(answer(finish="content_filter"))


def test_replay_reassembles_to_the_original() -> None:
    text = "A fairly long answer that will be split into several replayed chunks. " * 3
    chunks = replay(answer(text), include_usage=True)
    assert len(chunks) > 3
    asm = Assembler()
    for c in chunks:
        asm.feed(c)
    rebuilt = asm.build()
    assert rebuilt is not None
    assert rebuilt.choices[0].message.content == text
    assert rebuilt.choices[0].finish_reason == "stop"
    assert rebuilt.usage == Usage(12, 3)
    assert chunks[-1].choices == [] and chunks[-1].usage == Usage(12, 3)
    assert all(c.usage is None for c in replay(answer(text), include_usage=False))


def test_integers_beyond_64_bits_still_give_a_key() -> None:
    """The API refuses them (a 400), but a caller that builds requests itself must not fail on the key."""
    wide = key(req(seed=2**70))
    assert wide != key(req(seed=2**71)) and wide != key(req())
    assert key(req(extra={"x": [1, -(2**80)]})) != key(req(extra={"x": [1, -(2**81)]}))
    assert key(req(seed=2**63 - 1)) == key(req(seed=2**63 - 1))
