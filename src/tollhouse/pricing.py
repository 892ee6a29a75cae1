"""Cost of a request in USD from its usage and the deployment's configured price per 1M tokens, and its
worst case before the call (budgets). Pure."""

from __future__ import annotations

from collections.abc import Iterable

from tollhouse.settings import ModelConfig, Pricing
from tollhouse.types import Usage


def cost_usd(usage: Usage, pricing: Pricing) -> float:
    """Prompt tokens at the input price (cached ones at the cached price when set), completion tokens at
    the output price."""
    cached = usage.cached_tokens or 0
    cached_price = (
        pricing.input_per_1m if pricing.cached_input_per_1m is None else pricing.cached_input_per_1m
    )
    return (
        (usage.prompt_tokens - cached) * pricing.input_per_1m
        + cached * cached_price
        + usage.completion_tokens * pricing.output_per_1m
    ) / 1_000_000


class PriceBook:
    """Deployment name → pricing, built once from the configured models. Unknown names cost nothing."""

    __slots__ = ("_prices",)

    def __init__(self, models: list[ModelConfig]) -> None:
        self._prices = {m.name: m.pricing for m in models}

    def cost(self, deployment: str | None, usage: Usage | None) -> float:
        if usage is None or deployment is None:
            return 0.0
        pricing = self._prices.get(deployment)
        return 0.0 if pricing is None else cost_usd(usage, pricing)

    def worst_case(self, deployment: str | None, prompt_tokens: int, max_output_tokens: int) -> float:
        """Upper estimate before the call: all prompt tokens at the input price, the whole output cap."""
        pricing = self._prices.get(deployment) if deployment is not None else None
        if pricing is None:
            return 0.0
        return (prompt_tokens * pricing.input_per_1m + max_output_tokens * pricing.output_per_1m) / 1_000_000

    def worst_of(self, candidates: Iterable[tuple[str, int, int]]) -> float:
        """The largest worst case over ``(deployment, prompt tokens, output tokens)`` candidates: every
        deployment a request may reach, with the tokens it could be billed there."""
        return max((self.worst_case(name, p, o) for name, p, o in candidates), default=0.0)
