"""Experiments: a prompt's traffic split across versions by weight, each unit (user, key, or a unit id the
request gives) sticking to one arm by a stable hash; optionally a shadow version run in the background on a
sampled share of requests, within its own spend cap."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Any, Literal

from tollhouse.errors import InvalidRequest

Unit = Literal["user", "key", "request"]


@dataclass(slots=True, frozen=True)
class Shadow:
    version: int
    sample: float  # share of live requests that also run the shadow version
    budget_usd: float  # total the shadow runs may spend; none start once it is reached


@dataclass(slots=True, frozen=True)
class Experiment:
    """Splits the traffic a label would get (``label``, default ``production``) across ``arms``."""

    label: str
    arms: tuple[tuple[int, float], ...]  # (version, weight), weights > 0, sorted by version
    unit: Unit = "user"
    shadow: Shadow | None = None

    @classmethod
    def parse(cls, data: dict[str, Any], versions: set[int] | None = None) -> Experiment:
        """Validate the admin API's JSON: ``{"label", "arms": {"3": 90, "4": 10}, "unit", "shadow":
        {"version", "sample", "budget_usd"}}``. Raises ``InvalidRequest`` naming the field."""
        if not isinstance(data, dict):
            raise InvalidRequest("experiment: expected an object.", param="experiment")
        unknown = set(data) - {"label", "arms", "unit", "shadow"}
        if unknown:
            raise InvalidRequest(f"experiment: unknown fields {sorted(unknown)}.", param="experiment")
        raw = data.get("arms") or {}
        if not isinstance(raw, dict):
            raise InvalidRequest("experiment.arms: an object of version → weight.", param="experiment.arms")
        arms: list[tuple[int, float]] = []
        for k, w in raw.items():
            try:
                version, weight = int(k), float(w)
            except (TypeError, ValueError):
                raise InvalidRequest(
                    f"experiment.arms.{k}: version → weight numbers.", param="experiment.arms"
                ) from None
            if weight < 0 or weight != weight:
                raise InvalidRequest(f"experiment.arms.{k}: weights are ≥ 0.", param="experiment.arms")
            if versions is not None and version not in versions:
                raise InvalidRequest(f"experiment.arms.{k}: no such version.", param="experiment.arms")
            if weight > 0:
                arms.append((version, weight))
        unit = data.get("unit", "user")
        if unit not in ("user", "key", "request"):
            raise InvalidRequest("experiment.unit: user, key or request.", param="experiment.unit")
        shadow = None
        if data.get("shadow") is not None:
            s = data["shadow"]
            try:
                shadow = Shadow(
                    int(s["version"]), float(s.get("sample", 1.0)), float(s.get("budget_usd", 1.0))
                )
            except (TypeError, ValueError, KeyError):
                raise InvalidRequest(
                    'experiment.shadow: {"version": N, "sample": 0-1, "budget_usd": ≥ 0}.',
                    param="experiment.shadow",
                ) from None
            if not 0 <= shadow.sample <= 1 or shadow.budget_usd < 0:
                raise InvalidRequest(
                    "experiment.shadow: sample in 0-1, budget_usd ≥ 0.", param="experiment.shadow"
                )
            if versions is not None and shadow.version not in versions:
                raise InvalidRequest("experiment.shadow.version: no such version.", param="experiment.shadow")
        return cls(str(data.get("label") or "production"), tuple(sorted(arms)), unit, shadow)

    def pick(self, prompt_id: str, unit: str) -> int | None:
        """The arm ``unit`` belongs to: the same answer for the same unit, every time, in every process."""
        if not self.arms:
            return None
        total = sum(w for _, w in self.arms)
        point = bucket(prompt_id, unit) * total
        for version, weight in self.arms:
            point -= weight
            if point < 0:
                return version
        return self.arms[-1][0]

    def sampled(self, rng: random.Random) -> bool:
        return self.shadow is not None and rng.random() < self.shadow.sample


def bucket(prompt_id: str, unit: str) -> float:
    """A stable point in [0, 1) for this unit in this prompt's experiment (independent across prompts)."""
    digest = hashlib.blake2b(f"{prompt_id}\x00{unit}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64
