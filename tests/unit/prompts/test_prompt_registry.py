"""The registry when its counters' Redis is down: requests still render, counts wait in the process, one
warning per outage, metrics answer 503 naming the counters, and the counts arrive once Redis is back."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from tests.support.mock_upstream import free_port

from tollhouse.errors import StoreUnavailable
from tollhouse.prompts.registry import PromptRegistry
from tollhouse.settings import PromptsSettings
from tollhouse.stores.prompt_counters import MemoryPromptCounters, RedisPromptCounters
from tollhouse.stores.prompts import FilePromptStore
from tollhouse.types import PromptRef, RequestContext

VERSION = {"model": "m", "messages": [{"role": "user", "content": "hi {{ who }}"}]}


async def test_counters_outage_is_logged_once_and_counts_are_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = PromptsSettings(enabled=True, folder=str(tmp_path / "p"))
    dead = RedisPromptCounters(f"redis://127.0.0.1:{free_port()}/0", "th-test:")
    reg = PromptRegistry(cfg, FilePromptStore(cfg.folder), dead)
    await reg.store.open()
    await reg.reload()
    await reg.push("greet", VERSION)
    caplog.set_level(logging.INFO, logger="tollhouse.prompts")
    for i in range(3):
        ctx = RequestContext(f"r{i}")
        rendered = reg.render(ctx, PromptRef("greet", variables={"who": "Ada"}), None)
        assert rendered.messages[0].content == "hi Ada" and ctx.prompt_version == "1"
        reg.observe(ctx)
        await reg._tick()
    warnings = [r for r in caplog.records if "prompt counters unavailable" in r.getMessage()]
    assert len(warnings) == 1
    with pytest.raises(StoreUnavailable) as err:
        await reg.version_metrics("greet", 1)
    assert err.value.status == 503 and "prompt counters" in err.value.message
    assert await reg.rate("r0", 5) is False
    # Back: the counts kept in the process arrive at the next flush.
    await dead.aclose()
    reg.counters = MemoryPromptCounters()
    await reg.flush()
    assert (await reg.version_metrics("greet", 1))["requests"] == 3
    assert any("prompt counters available again" in r.getMessage() for r in caplog.records)
    await reg.aclose()
