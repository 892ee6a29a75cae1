"""What a public model name routes to (``Group``), and the seam an automatic router fills (``Selector``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from tollhouse.providers.registry import Deployment
from tollhouse.routing.strategies import Picker
from tollhouse.settings import AutoRouterConfig, ErrorClass
from tollhouse.types import ChatRequest, CompletionRequest, RequestContext


class Selector(Protocol):
    """An automatic router (``routing.auto.AutoRouter``): picks a tier's group per request."""

    cfg: AutoRouterConfig
    tier_groups: list[Group]

    def select(self, ctx: RequestContext, req: ChatRequest | CompletionRequest | None) -> Group: ...

    def escalation(self, group: Group) -> Group | None: ...


@dataclass(slots=True)
class Group:
    """What a public model name routes to: a picker over deployments, fallbacks, or an automatic router."""

    name: str
    picker: Picker
    fallbacks: list[tuple[frozenset[ErrorClass], list[str]]] = field(default_factory=list)
    auto: Selector | None = None

    @property
    def primary(self) -> Deployment:
        """The first member: its limits and capabilities are what a request is validated against."""
        return self.picker.targets[0].dep
