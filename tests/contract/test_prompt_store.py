"""``PromptStore`` contract over every backend (a YAML folder, SQLite, real PostgreSQL), and
``PromptCounters`` over memory and real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.support.stores import REDIS_URL

from tollhouse.stores.prompt_counters import (
    MemoryPromptCounters,
    PostgresPromptCounters,
    PromptCounters,
    RedisPromptCounters,
)
from tollhouse.stores.prompts import (
    MAX_EVALUATIONS,
    FilePromptStore,
    LabelEvent,
    PromptConflict,
    PromptStore,
    PromptVersion,
)
from tollhouse.stores.prompts_sql import PostgresPromptStore, SqlitePromptStore


@pytest.fixture(params=["files", "sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[PromptStore]:
    s: PromptStore
    if request.param == "files":
        s = FilePromptStore(str(tmp_path / "prompts"))
    elif request.param == "sqlite":
        s = SqlitePromptStore(str(tmp_path / "prompts.db"))
    else:
        s = PostgresPromptStore(request.getfixturevalue("pg_dsn"))
    await s.open()
    yield s
    await s.aclose()


def _draft(text: str, model: str | None = "m") -> PromptVersion:
    return PromptVersion(
        "greet",
        0,
        (("system", text), ("user", "{{ q }}")),
        model,
        {"temperature": 0.2},
        {"q": {"type": "string"}},
        "ada",
        0.0,
        "first",
    )


async def test_versions_are_numbered_and_immutable(store: PromptStore) -> None:
    t0 = await store.token()
    assert await store.load() == {}
    v1 = await store.push(_draft("one"))
    v2 = await store.push(_draft("two", model=None))
    assert (v1.version, v2.version) == (1, 2)
    assert v1.created_at > 0
    t1 = await store.token()
    assert t1 != t0
    prompt = (await store.load())["greet"]
    assert prompt.versions[1] == v1 and prompt.versions[2] == v2
    assert prompt.versions[1].messages == (("system", "one"), ("user", "{{ q }}"))
    assert prompt.versions[2].model is None and prompt.versions[1].params == {"temperature": 0.2}


async def test_labels_move_with_history_and_conditional_moves(store: PromptStore) -> None:
    await store.push(_draft("one"))
    await store.push(_draft("two"))
    await store.move_label("greet", LabelEvent("production", 1, None, 1.0, "ada"))
    await store.move_label("greet", LabelEvent("production", 2, 1, 2.0, "ada", "better"))
    with pytest.raises(PromptConflict):
        await store.move_label("greet", LabelEvent("production", 1, 2, 3.0, "rollback"), expect=1)
    await store.move_label("greet", LabelEvent("production", 1, 2, 3.0, "rollback", "errors"), expect=2)
    with pytest.raises(KeyError):
        await store.move_label("greet", LabelEvent("production", 9, 1, 4.0, "ada"))
    with pytest.raises(KeyError):
        await store.move_label("nope", LabelEvent("production", 1, None, 4.0, "ada"))
    prompt = (await store.load())["greet"]
    assert prompt.labels == {"production": 1}
    assert [(e.version, e.previous, e.actor) for e in prompt.history] == [
        (1, None, "ada"),
        (2, 1, "ada"),
        (1, 2, "rollback"),
    ]


async def test_experiments_are_stored_and_cleared(store: PromptStore) -> None:
    await store.push(_draft("one"))
    exp = {"arms": {"1": 90, "2": 10}, "unit": "key"}
    await store.set_experiment("greet", exp)
    assert (await store.load())["greet"].experiment == exp
    await store.set_experiment("greet", None)
    assert (await store.load())["greet"].experiment is None


async def test_evaluations_are_kept_newest_last_and_bounded(store: PromptStore) -> None:
    await store.push(_draft("one"))
    for i in range(MAX_EVALUATIONS + 3):
        await store.add_evaluation("greet", {"run": i, "gate": "pass"})
    kept = (await store.load())["greet"].evaluations
    assert len(kept) == MAX_EVALUATIONS and kept[-1] == {"run": MAX_EVALUATIONS + 2, "gate": "pass"}
    assert kept[0]["run"] == 3


async def test_hand_written_yaml_files_are_read(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "support-answer.yaml").write_text(
        "labels: {production: 2}\n"
        "versions:\n"
        "  - messages: [{role: system, content: 'v1 {{ product }}'}]\n"
        "    model: gpt-4o-mini\n"
        "  - messages: [{role: system, content: 'v2 {{ product }}'}]\n"
        "    variables: {product: {type: string}}\n"
    )
    store = FilePromptStore(str(folder))
    await store.open()
    token = await store.token()
    prompt = (await store.load())["support-answer"]
    assert sorted(prompt.versions) == [1, 2] and prompt.labels == {"production": 2}
    (folder / "support-answer.yaml").write_text(
        "versions: [{messages: [{role: user, content: x}]}]\nnotes: y\n"
    )
    assert await store.token() != token


@pytest.fixture(params=["memory", "redis", "postgres"])
async def counters(request: pytest.FixtureRequest) -> AsyncIterator[PromptCounters]:
    c: PromptCounters
    if request.param == "memory":
        c = MemoryPromptCounters()
    elif request.param == "redis":
        c = RedisPromptCounters(REDIS_URL, request.getfixturevalue("redis_prefix"))
    else:
        c = PostgresPromptCounters(request.getfixturevalue("pg_dsn"))
    yield c
    await c.aclose()


async def test_counters_add_read_and_remember(counters: PromptCounters) -> None:
    await counters.add({("p", 1): {"requests": 2, "errors": 1}, ("p", 2): {"requests": 1}})
    await counters.add({("p", 1): {"requests": 1, "l3": 1}})
    got = await counters.read([("p", 1), ("p", 2), ("p", 3)])
    assert got == {("p", 1): {"requests": 3, "errors": 1, "l3": 1}, ("p", 2): {"requests": 1}, ("p", 3): {}}
    await counters.remember({"req-1": ("p", 2), "req-2": ("a:b", 7)})
    assert await counters.answered_by("req-1") == ("p", 2)
    assert await counters.answered_by("req-2") == ("a:b", 7)
    assert await counters.answered_by("req-3") is None
