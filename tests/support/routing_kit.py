"""Builders for routing tests: mock deployments with scripted faults behind a real Gateway and Router, a
fake monotonic clock, and a sleep that records instead of waiting."""

from __future__ import annotations

import random
from typing import Any

from tollhouse.gateway import Gateway
from tollhouse.operations import CHAT
from tollhouse.providers.mock import MockProvider
from tollhouse.providers.registry import Deployment, ModelRegistry
from tollhouse.routing.router import Router
from tollhouse.settings import MockModel, RoutingSettings
from tollhouse.types import ChatRequest, Message, RequestContext


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class RecordingSleep:
    """Records backoff delays and returns at once (tests never wait for a backoff)."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


class Kit:
    def __init__(self, models: dict[str, dict[str, Any]], routing: dict[str, Any] | None = None) -> None:
        self.providers: dict[str, MockProvider] = {}
        deployments = []
        for name, fields in models.items():
            cfg = MockModel.model_validate({"name": name, "reply": f"from {name}", **fields})
            provider = MockProvider(cfg)
            self.providers[name] = provider
            deployments.append(Deployment(cfg, provider))
        self.registry = ModelRegistry(deployments)
        self.settings = RoutingSettings.model_validate(routing or {})
        self.clock = FakeClock()
        self.sleep = RecordingSleep()
        self.router = Router(
            self.registry, self.settings, clock=self.clock, sleep=self.sleep, rng=random.Random(7)
        )
        self.gateway = Gateway(registry=self.registry, router=self.router)

    def calls(self, name: str) -> int:
        return self.providers[name].calls

    def circuit(self, name: str) -> str:
        state: str = self.router.circuits()[name]["state"]
        return state

    async def chat(self, model: str, text: str = "hello", **kw: Any) -> tuple[str, RequestContext]:
        ctx = RequestContext(request_id="t")
        resp = await self.gateway.handle(ctx, CHAT, request(model, text, **kw))
        return resp.choices[0].message.text(), ctx

    async def stream(self, model: str, text: str = "hello", **kw: Any) -> tuple[list[str], RequestContext]:
        ctx = RequestContext(request_id="t")
        chunks = await self.gateway.handle_stream(ctx, CHAT, request(model, text, stream=True, **kw))
        out: list[str] = []
        async for c in chunks:
            for ch in c.choices:
                if ch.delta.content:
                    out.append(ch.delta.content)
        return out, ctx


def request(model: str, text: str = "hello", **kw: Any) -> ChatRequest:
    return ChatRequest(model=model, messages=[Message(role="user", content=text)], **kw)


def group(name: str, *members: str, strategy: str = "priority", **extra: Any) -> dict[str, Any]:
    return {"name": name, "strategy": strategy, "deployments": [{"model": m} for m in members], **extra}
