"""``/v1/collections``: a tenant's document collections — create, list, show, re-embed, delete; add,
list and delete documents; hybrid search. Any API key may use them; a key sees its tenant's collections
only (``rag.service.tenant_of``), and another tenant's collection answers 404 like one that does not exist."""

from __future__ import annotations

import base64
import binascii
import time
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from tollhouse.api.collections_schema import (
    CollectionCreate,
    CollectionList,
    CollectionOut,
    CollectionUpdate,
    Deleted,
    DocumentCreate,
    DocumentList,
    DocumentOut,
    SearchRequest,
    SearchResults,
)
from tollhouse.api.deps import credential, get_gateway, get_runtime, new_context
from tollhouse.api.render import json_response
from tollhouse.errors import InvalidRequest, NotFound
from tollhouse.rag import metering, views
from tollhouse.rag.service import Retrieval, tenant_of

router = APIRouter(prefix="/v1/collections", tags=["Collections (retrieval)"])


async def _caller(request: Request) -> tuple[Retrieval, str]:
    rag = get_runtime(request).rag
    if rag is None:
        raise NotFound("Retrieval is not enabled on this gateway (rag.enabled).")
    ctx = new_context(request, "collections")
    gw = get_gateway(request)
    await gw.authenticate(ctx, credential(request))
    await gw.admit_request(ctx)  # the key's requests per minute, as on every other endpoint
    # Calls to an embedding deployment (ingest, search) are recorded as this key's; the request's own task
    # context ends with it, so nothing to reset.
    metering.CALLER.set(ctx.principal)
    return rag, tenant_of(ctx.principal)


Caller = Annotated[tuple[Retrieval, str], Depends(_caller)]


def _created(body: dict[str, object]) -> Response:
    resp = json_response(body)
    resp.status_code = 201
    return resp


@router.post("", status_code=201, responses={201: {"model": CollectionOut}})
async def create_collection(body: CollectionCreate, caller: Caller) -> Response:
    rag, tenant = caller
    c = await rag.create(tenant, body.name, body.embedding_model, body.description)
    return _created(views.collection(await rag.get(tenant, c.name)))


@router.get("", responses={200: {"model": CollectionList}})
async def list_collections(caller: Caller) -> Response:
    rag, tenant = caller
    return json_response(
        {"object": "list", "data": [views.collection(c) for c in await rag.collections(tenant)]}
    )


@router.get("/{name}", responses={200: {"model": CollectionOut}})
async def show_collection(name: str, caller: Caller) -> Response:
    rag, tenant = caller
    return json_response(views.collection(await rag.get(tenant, name)))


@router.patch("/{name}", responses={200: {"model": CollectionOut}})
async def update_collection(name: str, body: CollectionUpdate, caller: Caller) -> Response:
    """Change the embedding model: every chunk is embedded again (the answer comes when it is done)."""
    rag, tenant = caller
    return json_response(views.collection(await rag.reembed(tenant, name, body.embedding_model)))


@router.delete("/{name}", responses={200: {"model": Deleted}})
async def delete_collection(name: str, caller: Caller) -> Response:
    rag, tenant = caller
    await rag.delete(tenant, name)
    return json_response({"id": name, "object": "collection.deleted", "deleted": True})


@router.post("/{name}/documents", status_code=201, responses={201: {"model": DocumentOut}})
async def add_document(name: str, body: DocumentCreate, caller: Caller) -> Response:
    """Add or replace a document (by id). Posting unchanged content again writes nothing."""
    rag, tenant = caller
    if (body.text is None) == (body.content_base64 is None):
        raise InvalidRequest("Send exactly one of `text` and `content_base64`.", param="text")
    data: bytes | str
    if body.content_base64 is not None:
        try:
            data = base64.b64decode(body.content_base64, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidRequest("`content_base64` is not valid base64.", param="content_base64") from None
    else:
        data = body.text or ""
    res = await rag.ingest(
        tenant, name, body.id, data, kind=body.kind, metadata=body.metadata, title=body.title
    )
    return _created(
        {
            "id": res.document_id,
            "object": "document",
            "status": res.status,
            "chunks": res.chunks,
            "tokens": res.tokens,
        }
    )


@router.get("/{name}/documents", responses={200: {"model": DocumentList}})
async def list_documents(
    name: str, caller: Caller, limit: int = Query(100, ge=1, le=1000), after: str | None = Query(None)
) -> Response:
    rag, tenant = caller
    await rag.get(tenant, name)
    docs = await rag.store.list_documents(tenant, name, limit + 1, after)
    return json_response(
        {"object": "list", "data": [views.document(d) for d in docs[:limit]], "has_more": len(docs) > limit}
    )


@router.delete("/{name}/documents/{doc_id}", responses={200: {"model": Deleted}})
async def delete_document(name: str, doc_id: str, caller: Caller) -> Response:
    rag, tenant = caller
    await rag.delete_document(tenant, name, doc_id)
    return json_response({"id": doc_id, "object": "document.deleted", "deleted": True})


@router.post("/{name}/search", responses={200: {"model": SearchResults}})
async def search(name: str, body: SearchRequest, caller: Caller) -> Response:
    """Hybrid (BM25 + dense, reciprocal rank fusion), or one of them alone; metadata filters."""
    rag, tenant = caller
    t0 = time.perf_counter()
    hits = await rag.search(name, body.query, body.k, body.filters, tenant, body.mode)
    return json_response(
        {
            "object": "list",
            "collection": name,
            "mode": body.mode,
            "data": [views.hit(h, i) for i, h in enumerate(hits, 1)],
            "latency_ms": round((time.perf_counter() - t0) * 1000, 3),
        }
    )
