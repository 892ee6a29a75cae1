"""What a public model name routes to (``Group``), the seam an automatic router fills (``Selector``), and
every deployment a routed request may end on (``reachable``)."""

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


def reachable(start: list[Group], groups: dict[str, Group], capability: str) -> tuple[Deployment, ...]:
    """Every deployment able to serve ``capability`` that a request starting on the ``start`` groups may be
    served by, the first group's first member first: their members, then every fallback chain (for any
    error class) transitively, as the router follows them (an automatic router's name: its top tier)."""
    seen: list[Group] = []
    queue = list(start)
    while queue:
        g = queue.pop(0)
        if any(g is s for s in seen):
            continue
        seen.append(g)
        for _, names in g.fallbacks:
            for n in names:
                fb = groups.get(n)
                if fb is not None:
                    queue.append(fb.auto.tier_groups[-1] if fb.auto is not None else fb)
    deps: list[Deployment] = []
    for g in seen:
        for t in g.picker.targets:
            if all(d is not t.dep for d in deps) and getattr(t.dep.provider.capabilities, capability):
                deps.append(t.dep)
    return tuple(deps)
