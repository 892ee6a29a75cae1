"""Model registry: public names and aliases → deployments (config + live provider).

Built once in the app lifespan; provider modules are imported lazily so a gateway that serves only
remote upstreams never loads llama.cpp or the encoder.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from tollhouse.errors import ModelNotFound
from tollhouse.providers.base import Provider
from tollhouse.settings import ModelConfig

log = logging.getLogger("tollhouse.registry")


@dataclass(slots=True)
class Deployment:
    """One configured model and the provider that serves it."""

    config: ModelConfig
    provider: Provider

    @property
    def name(self) -> str:
        return self.config.name


def build_provider(cfg: ModelConfig) -> Provider:
    """Construct the provider for one model config (may load a model: call from the lifespan)."""
    if cfg.provider == "openai":
        from tollhouse.providers.openai_compat import OpenAICompatProvider

        return OpenAICompatProvider(cfg)
    if cfg.provider == "anthropic":
        from tollhouse.providers.anthropic import AnthropicProvider

        return AnthropicProvider(cfg)
    if cfg.provider == "llamacpp":
        from tollhouse.providers.llamacpp import LlamaCppProvider

        return LlamaCppProvider(cfg)
    if cfg.provider == "mock":
        from tollhouse.providers.mock import MockProvider

        return MockProvider(cfg)
    from tollhouse.providers.encoder import EncoderProvider

    return EncoderProvider(cfg)


class ModelRegistry:
    """Name/alias lookup over the deployments. Read-only after start-up."""

    def __init__(self, deployments: list[Deployment]) -> None:
        self._deployments = deployments
        self._by_name: dict[str, Deployment] = {}
        for d in deployments:
            for n in [d.config.name, *d.config.aliases]:
                self._by_name[n] = d

    @classmethod
    async def build(cls, configs: list[ModelConfig]) -> ModelRegistry:
        built: list[Deployment] = []
        try:
            for cfg in configs:
                built.append(Deployment(cfg, build_provider(cfg)))
                log.info("model ready", extra={"model": cfg.name, "provider": cfg.provider})
        except BaseException:
            await cls(built).aclose()
            raise
        return cls(built)

    def get(self, model: str) -> Deployment:
        d = self._by_name.get(model)
        if d is None:
            raise ModelNotFound(
                f"The model '{model}' does not exist or you do not have access to it.", param="model"
            )
        return d

    def all(self) -> list[Deployment]:
        return list(self._deployments)

    async def aclose(self) -> None:
        await asyncio.gather(*(d.provider.aclose() for d in self._deployments), return_exceptions=True)
