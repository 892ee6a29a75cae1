"""Documented answers of the stored-prompt admin routes and of the routes twinned in the ingress docs
(shapes and examples for /docs; the routes render their own JSON)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


def _example(value: dict[str, Any]) -> ConfigDict:
    return ConfigDict(extra="allow", json_schema_extra={"examples": [value]})


class PromptList(BaseModel):
    model_config = _example({"data": [{"id": "support-answer", "versions": 3, "labels": {"production": 2}}]})
    data: list[dict[str, Any]]


class PromptDetail(BaseModel):
    model_config = _example(
        {
            "id": "support-answer",
            "versions": [{"version": 1}],
            "labels": {"production": 1},
            "experiment": None,
        }
    )
    id: str


class PromptVersionOut(BaseModel):
    model_config = _example(
        {"version": 2, "messages": [{"role": "system", "content": "Answer {{ product }} questions."}]}
    )
    version: int


class VersionMetrics(BaseModel):
    model_config = _example({"version": 2, "requests": 120, "error_rate": 0.05, "latency_ms": {"p50": 410}})
    version: int


class LabelEvent(BaseModel):
    model_config = _example({"label": "production", "version": 1, "actor": "api", "reason": "rollback"})
    label: str
    version: int


class ExperimentOut(BaseModel):
    model_config = _example({"id": "support-answer", "experiment": {"weights": {"2": 0.9, "3": 0.1}}})
    id: str
    experiment: dict[str, Any] | None


class DataList(BaseModel):
    model_config = _example({"data": []})
    data: list[Any]


class ModerationOut(BaseModel):
    model_config = _example(
        {
            "id": "modr-1",
            "model": "tollhouse-moderation",
            "results": [
                {"flagged": False, "categories": {"violence": False}, "category_scores": {"violence": 0.01}}
            ],
        }
    )
    id: str
    model: str
    results: list[dict[str, Any]]


class MessageOut(BaseModel):
    model_config = _example(
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "local",
            "content": [{"type": "text", "text": "Paris."}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 12, "output_tokens": 3},
        }
    )
    id: str
    type: str
    role: str
    content: list[dict[str, Any]]
    stop_reason: str | None
    usage: dict[str, Any]


class TokenCount(BaseModel):
    model_config = _example({"input_tokens": 12})
    input_tokens: int
