"""Request bodies and documented answers of the ``/v1/collections`` routes (docs/RETRIEVAL.md)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


def _example(value: dict[str, Any]) -> ConfigDict:
    return ConfigDict(extra="allow", json_schema_extra={"examples": [value]})


_COLLECTION = {
    "id": "handbook",
    "object": "collection",
    "embedding_model": "local-embed",
    "dimensions": 384,
    "documents": 12,
    "chunks": 87,
    "created": 1764800000,
    "description": "Staff handbook",
}
_HIT = {
    "marker": "[1]",
    "document_id": "leave-policy",
    "chunk": 0,
    "score": 0.0328,
    "span": [0, 84],
    "text": "# Leave\nEmployees get 25 days of paid leave per year.",
    "heading": "Leave",
    "metadata": {"dept": "hr"},
    "bm25_rank": 1,
    "dense_rank": 1,
}


class CollectionCreate(BaseModel):
    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {"name": "handbook", "embedding_model": "local-embed", "description": "Staff handbook"}
            ]
        },
    )
    name: str = Field(description="1-64 letters, digits, `_`, `-`, `.`; unique per tenant.")
    embedding_model: str | None = Field(None, description="Default: `rag.embedding_model`.")
    description: str = Field("", max_length=1000)


class CollectionUpdate(BaseModel):
    model_config = ConfigDict(
        extra="ignore", json_schema_extra={"examples": [{"embedding_model": "text-embed"}]}
    )
    embedding_model: str = Field(description="Re-embed every chunk with this model and use it from now on.")


class DocumentCreate(BaseModel):
    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "id": "leave-policy",
                    "text": "# Leave\nEmployees get 25 days of paid leave per year.",
                    "kind": "markdown",
                    "metadata": {"dept": "hr"},
                }
            ]
        },
    )
    id: str = Field(description="Document id; posting the same id again replaces the document.")
    text: str | None = Field(None, description="The document as text (text, Markdown or HTML).")
    content_base64: str | None = Field(None, description="The document's bytes, base64 (PDF).")
    kind: Literal["text", "markdown", "html", "pdf"] = "text"
    title: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict, description="Filterable fields.")


class SearchRequest(BaseModel):
    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {"query": "how many days of leave?", "k": 5, "filters": {"dept": "hr"}, "mode": "hybrid"}
            ]
        },
    )
    query: str
    k: int = 5
    filters: dict[str, Any] | None = Field(None, description='Metadata field → value or {"$in": [values]}.')
    mode: Literal["hybrid", "bm25", "dense"] = "hybrid"


class CollectionOut(BaseModel):
    model_config = _example(_COLLECTION)
    id: str
    object: str


class CollectionList(BaseModel):
    model_config = _example({"object": "list", "data": [_COLLECTION]})
    data: list[dict[str, Any]]


class Deleted(BaseModel):
    model_config = _example({"id": "handbook", "object": "collection.deleted", "deleted": True})
    id: str
    deleted: bool


class DocumentOut(BaseModel):
    model_config = _example(
        {"id": "leave-policy", "object": "document", "status": "created", "chunks": 3, "tokens": 412}
    )
    id: str
    status: str


class DocumentList(BaseModel):
    model_config = _example(
        {
            "object": "list",
            "data": [
                {
                    "id": "leave-policy",
                    "chunks": 3,
                    "title": None,
                    "metadata": {"dept": "hr"},
                    "created": 1764800000,
                }
            ],
            "has_more": False,
        }
    )
    data: list[dict[str, Any]]


class SearchResults(BaseModel):
    model_config = _example(
        {"object": "list", "collection": "handbook", "mode": "hybrid", "data": [_HIT], "latency_ms": 3.1}
    )
    data: list[dict[str, Any]]
