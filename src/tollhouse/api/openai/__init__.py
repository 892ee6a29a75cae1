"""OpenAI ingress: wire models (``protocol``), routes (``router``), schema docs (``docs``) and ``INGRESS``,
the routes and hot-route table the app serves."""

from __future__ import annotations

from tollhouse.api.ingress import Ingress
from tollhouse.api.openai import router as routes
from tollhouse.api.openai.docs import docs_router

INGRESS = Ingress(
    name="openai",
    router=routes.router,
    hot_routes={
        "/v1/chat/completions": routes.chat_completions,
        "/v1/completions": routes.completions,
        "/v1/embeddings": routes.embeddings,
    },
    docs_router=docs_router,
)
