"""Anthropic ingress: Messages API wire models (``protocol``), routes (``router``) and ``INGRESS``, the
routes and hot-route table the app serves."""

from __future__ import annotations

from tollhouse.api.anthropic import router as routes
from tollhouse.api.anthropic.docs import docs_router
from tollhouse.api.ingress import Ingress

INGRESS = Ingress(
    name="anthropic",
    router=routes.router,
    docs_router=docs_router,
    hot_routes={
        "/v1/messages": routes.messages,
        "/v1/messages/count_tokens": routes.count_tokens,
    },
)
