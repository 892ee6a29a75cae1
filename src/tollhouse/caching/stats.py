"""Per-process cache counters behind ``GET /v1/cache/stats`` (the ledger holds the cross-replica view)."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(slots=True)
class CacheStats:
    hits: int = 0
    semantic_hits: int = 0
    shadow_hits: int = 0  # semantic hits computed but not served (`semantic.shadow`)
    misses: int = 0
    skips: int = 0
    stores: int = 0
    errors: int = 0
    invalidations: int = 0
    saved_usd: float = 0.0

    def record_hit(self, status: str, saved_usd: float | None) -> None:
        if status == "semantic-hit":
            self.semantic_hits += 1
        else:
            self.hits += 1
        self.saved_usd += saved_usd or 0.0

    def to_dict(self) -> dict[str, float | int]:
        out: dict[str, float | int] = asdict(self)
        looked = self.hits + self.semantic_hits + self.misses
        out["hit_rate"] = round((self.hits + self.semantic_hits) / looked, 4) if looked else 0.0
        out["saved_usd"] = round(self.saved_usd, 8)
        return out
