"""Prometheus metrics, derived from each finished ``RequestContext`` in one place (``observe``).

Labels are bounded by configuration: model and deployment names that resolved (an unknown model name is
``""``), endpoint, ingress, HTTP status, error class from the error tree, key id / team (optional). Never a
request id or a raw user id. Labelled children are cached per label tuple, so a request costs a few dict
lookups and ``observe`` calls. With several workers, ``PROMETHEUS_MULTIPROC_DIR`` switches
prometheus_client to its multiprocess mode (ADR 0005); gauges are then published by each worker every
``sample_interval_s``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as mp
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from tollhouse.pricing import PriceBook
from tollhouse.settings import MetricsSettings, ModelConfig
from tollhouse.types import RequestContext

# Whole requests: from a fast cache hit to a long generation.
DURATION_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)
# Time to first token: interactive targets sit between 100 ms and 2 s.
TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0)
# Time per output token (inter-token latency): 1 ms (fast small models) to 1 s (overloaded).
TPOT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0)
# The gateway's own cost per request: tens of microseconds to a few milliseconds.
OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)
# The retrieval stage: a search over an embedded index (milliseconds) to a remote embedding call.
RETRIEVAL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

BREAKER_STATES = {"closed": 0, "half_open": 1, "open": 2}
# Exception class of a request's final failure → the routing error class used as the ``class`` label
# (the same values routing records per failed attempt in ``ctx.failures``).
ERROR_CLASSES = {
    "UpstreamTimeout": "timeout",
    "UpstreamRateLimited": "rate_limit",
    "UpstreamConnectionError": "connection",
    "UpstreamUnavailable": "server_error",
    "UpstreamError": "server_error",
    "UpstreamContextWindowExceeded": "context_window",
    "UpstreamContentFiltered": "content_filter",
    "UpstreamBadRequest": "bad_request",
}
CACHE_EVENTS = frozenset({"hit", "miss", "semantic-hit", "skip"})


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class Metrics:
    """Every metric family. ``observe(ctx, status)`` once per finished request; ``render()`` for a scrape."""

    def __init__(self, settings: MetricsSettings, models: list[ModelConfig]) -> None:
        self.settings = settings
        self.multiprocess = multiprocess_dir() is not None
        # In multiprocess mode values live in files and a scrape reads them all, so nothing is registered.
        self.registry = CollectorRegistry(auto_describe=True)
        reg: CollectorRegistry | None = None if self.multiprocess else self.registry
        if reg is not None:
            ProcessCollector(registry=reg)
            PlatformCollector(registry=reg)
            GCCollector(registry=reg)
        self.prices = PriceBook(models)
        self.key_labels = settings.key_labels
        self.in_flight = 0
        self._gauge_sources: list[Callable[[], None]] = []

        def counter(name: str, doc: str, labels: Iterable[str] = ()) -> Counter:
            return Counter(name, doc, list(labels), registry=reg)

        def histogram(name: str, doc: str, labels: Iterable[str], buckets: tuple[float, ...]) -> Histogram:
            return Histogram(name, doc, list(labels), buckets=buckets, registry=reg)

        def gauge(name: str, doc: str, labels: Iterable[str] = ()) -> Gauge:
            return Gauge(name, doc, list(labels), registry=reg, multiprocess_mode="livesum")

        self.requests = counter(
            "tollhouse_requests",
            "Requests by outcome. status is the HTTP status, or the error's status when a stream failed "
            "after its headers (499: the client went away).",
            ("model", "deployment", "endpoint", "ingress", "status"),
        )
        self.duration = histogram(
            "tollhouse_request_duration_seconds",
            "Whole request, first byte in to last byte out (streams included).",
            ("model", "deployment", "endpoint", "stream"),
            DURATION_BUCKETS,
        )
        self.ttft = histogram(
            "tollhouse_time_to_first_token_seconds",
            "Streams: request start to the first content chunk.",
            ("model", "deployment"),
            TTFT_BUCKETS,
        )
        self.tpot = histogram(
            "tollhouse_time_per_output_token_seconds",
            "Streams: (duration - TTFT) / (completion tokens - 1).",
            ("model", "deployment"),
            TPOT_BUCKETS,
        )
        self.overhead = histogram(
            "tollhouse_gateway_overhead_seconds",
            "Time spent in the gateway itself: duration minus time waiting on providers.",
            ("endpoint", "stream"),
            OVERHEAD_BUCKETS,
        )
        self.tokens = counter(
            "tollhouse_tokens",
            "Tokens by type (prompt, completion, cached).",
            ("model", "deployment", "type"),
        )
        self.cost = counter(
            "tollhouse_cost_usd", "Cost in USD at the configured prices.", ("model", "key", "team")
        )
        self.cache_events = counter("tollhouse_cache_events", "Response cache events.", ("model", "type"))
        self.guardrail_events = counter(
            "tollhouse_guardrail_events", "Guardrail verdicts.", ("rule", "outcome")
        )
        self.tool_calls = counter(
            "tollhouse_tool_calls",
            "Gateway tool calls by outcome (ok or the error code).",
            ("tool", "status"),
        )
        self.tool_errors = counter("tollhouse_tool_errors", "Gateway tool calls that failed.", ("tool",))
        self.tool_seconds = histogram(
            "tollhouse_tool_duration_seconds",
            "Gateway tool call latency.",
            ("tool",),
            (0.001, 0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
        )
        self.upstream_errors = counter(
            "tollhouse_upstream_errors", "Failed provider calls by error class.", ("deployment", "class")
        )
        self.attempts = counter(
            "tollhouse_provider_attempts", "Provider calls (first tries, retries and fallbacks).", ("model",)
        )
        self.retries = counter("tollhouse_retries", "Provider calls that were retries.", ("model",))
        self.fallbacks = counter(
            "tollhouse_fallbacks",
            "Moves to a fallback model group; deployment is the one that finally served ('' if none).",
            ("model", "deployment"),
        )
        self.breaker_state = gauge(
            "tollhouse_circuit_breaker_state",
            "Circuit state: 0 closed, 1 half-open, 2 open.",
            ("deployment",),
        )
        self.in_flight_gauge = gauge("tollhouse_requests_in_flight", "HTTP requests being served.")
        self.queue_depth = gauge(
            "tollhouse_embedded_queue_depth", "Requests waiting for an embedded model.", ("deployment",)
        )
        self.embedded_in_flight = gauge(
            "tollhouse_embedded_in_flight",
            "Requests admitted to an embedded model (running + waiting).",
            ("deployment",),
        )
        self.store_errors = gauge(
            "tollhouse_store_errors",
            "Failed calls to a shared store since start (rate_limit, budget, ledger_journal, cache), "
            "each logged; a rate-limit or budget error admitted or refused per `on_store_error`.",
            ("store",),
        )
        self.unknown_cost = gauge(
            "tollhouse_unknown_cost_requests",
            "Successful requests since start whose usage, so cost, was unknown (recorded as null, never 0).",
        )
        self.cache_saved = counter(
            "tollhouse_cache_saved_usd", "USD that cache hits saved (the stored answers' cost).", ("model",)
        )
        self.prompt_requests = counter(
            "tollhouse_prompt_requests",
            "Requests that used a stored prompt, by prompt id, version and status (docs/PROMPTS.md).",
            ("prompt", "version", "status"),
        )
        self.retrieval_seconds = histogram(
            "tollhouse_retrieval_duration_seconds",
            "The retrieval stage of chat requests that named a collection (docs/RETRIEVAL.md).",
            ("model",),
            RETRIEVAL_BUCKETS,
        )
        self.retrieval_chunks = counter(
            "tollhouse_retrieval_chunks", "Chunks retrieval added to chat requests.", ("model",)
        )
        self.retrieval_tokens = counter(
            "tollhouse_retrieval_tokens_added",
            "Tokens retrieval added to chat requests (chunk tokens).",
            ("model",),
        )
        self.eval_dropped = counter(
            "tollhouse_eval_records_dropped", "Evaluation records dropped (queue full or write failed)."
        )
        self._req_children: dict[tuple[str, ...], tuple[Any, Any, Any]] = {}
        self._stream_children: dict[tuple[str, str], tuple[Any, Any]] = {}
        self._token_children: dict[tuple[str, str], tuple[Any, Any, Any]] = {}
        self._cost_children: dict[tuple[str, str, str], Any] = {}
        self._attempt_children: dict[str, Any] = {}

    # ---- per request ---------------------------------------------------------------------------------

    def observe(self, ctx: RequestContext | None, status: int, elapsed: float) -> None:
        """Record one finished HTTP request. ``ctx`` is None for requests that never reached a route
        handler that builds one (health, docs, 404s); ``elapsed`` is the middleware's own measure."""
        if ctx is None:
            key: tuple[str, ...] = ("", "", "other", "openai", str(status), "false")
            children = self._req_children.get(key) or self._request_children(key)
            children[0].inc()
            children[1].observe(elapsed)
            return
        resolved = ctx.deployment is not None
        model = (ctx.model_requested or "") if resolved else ""
        deployment = ctx.deployment or ""
        if ctx.error_type is not None and ctx.status != 200:
            status = ctx.status
        stream = "true" if ctx.stream else "false"
        key = (model, deployment, ctx.endpoint, ctx.ingress, str(status), stream)
        children = self._req_children.get(key) or self._request_children(key)
        total = ctx.elapsed()
        children[0].inc()
        children[1].observe(total)
        children[2].observe(max(0.0, total - ctx.upstream_seconds))
        usage = ctx.usage
        if ctx.stream and ctx.ttft_seconds is not None and resolved:
            ttft, tpot = self._stream_children.get((model, deployment)) or self._streams(model, deployment)
            ttft.observe(ctx.ttft_seconds)
            if usage is not None and usage.completion_tokens > 1 and ctx.error_type is None:
                tpot.observe((total - ctx.ttft_seconds) / (usage.completion_tokens - 1))
        if usage is not None:
            prompt, completion, cached = self._token_children.get((model, deployment)) or self._token_kids(
                model, deployment
            )
            prompt.inc(usage.prompt_tokens)
            completion.inc(usage.completion_tokens)
            if usage.cached_tokens:
                cached.inc(usage.cached_tokens)
            cost = self.prices.cost(ctx.deployment, usage)
            if cost:
                p = ctx.principal
                ck = (model, p.key_id or "", p.team or "") if self.key_labels else (model, "", "")
                child = self._cost_children.get(ck)
                if child is None:
                    child = self._cost_children[ck] = self.cost.labels(*ck)
                child.inc(cost)
        self._routing(ctx, model, deployment)
        if ctx.cache_status is not None:
            kind = ctx.cache_status if ctx.cache_status in CACHE_EVENTS else "other"
            self.cache_events.labels(model, kind).inc()
            if ctx.cache_saved_usd:
                self.cache_saved.labels(model).inc(ctx.cache_saved_usd)
        if ctx.guardrail_events:
            for rule, outcome in ctx.guardrail_events:
                self.guardrail_events.labels(rule, outcome).inc()
        if ctx.tools_used:
            self._tools(ctx)
        got = ctx.retrieval
        if got is not None:
            self.retrieval_seconds.labels(model).observe(ctx.stage_seconds.get("retrieval", 0.0))
            self.retrieval_chunks.labels(model).inc(len(got.texts))
            self.retrieval_tokens.labels(model).inc(got.tokens_added)
        if ctx.prompt_template is not None:
            self.prompt_requests.labels(ctx.prompt_template, ctx.prompt_version or "", str(status)).inc()

    def _tools(self, ctx: RequestContext) -> None:
        for use in ctx.tools_used or ():
            # A name the model made up is not a label value: cardinality stays bounded by the registry.
            tool = "(unknown)" if use.status == "unknown_tool" else use.name
            self.tool_calls.labels(tool, use.status).inc()
            if use.status not in ("ok", "skipped"):
                self.tool_errors.labels(tool).inc()
            if use.status != "skipped":
                self.tool_seconds.labels(tool).observe(use.duration_s)

    def _routing(self, ctx: RequestContext, model: str, deployment: str) -> None:
        """Attempts, retries, fallbacks and failed provider calls, from the routing fields."""
        attempts = ctx.attempts
        failures = ctx.failures
        if attempts:
            child = self._attempt_children.get(model)
            if child is None:
                child = self._attempt_children[model] = self.attempts.labels(model)
            child.inc(attempts)
            retries = attempts - 1 - ctx.fallbacks
            if retries > 0:
                self.retries.labels(model).inc(retries)
        if ctx.fallbacks:
            self.fallbacks.labels(model, deployment if ctx.error_type is None else "").inc(ctx.fallbacks)
        if failures:
            for f in failures:  # "deployment:error_class" per failed attempt that routing moved on from
                dep, _, kind = f.rpartition(":")
                self.upstream_errors.labels(dep, kind).inc()
        # The final failure is in ``failures`` only when routing moved on from it (then every attempt is).
        final = ERROR_CLASSES.get(ctx.error_class or "")
        if final is not None and (not attempts or attempts > len(failures or ())):
            self.upstream_errors.labels(deployment, final).inc()

    def _request_children(self, key: tuple[str, ...]) -> tuple[Any, Any, Any]:
        model, deployment, endpoint, ingress, status, stream = key
        kids = (
            self.requests.labels(model, deployment, endpoint, ingress, status),
            self.duration.labels(model, deployment, endpoint, stream),
            self.overhead.labels(endpoint, stream),
        )
        self._req_children[key] = kids
        return kids

    def _streams(self, model: str, deployment: str) -> tuple[Any, Any]:
        kids = (self.ttft.labels(model, deployment), self.tpot.labels(model, deployment))
        self._stream_children[(model, deployment)] = kids
        return kids

    def _token_kids(self, model: str, deployment: str) -> tuple[Any, Any, Any]:
        kids = tuple(self.tokens.labels(model, deployment, t) for t in ("prompt", "completion", "cached"))
        self._token_children[(model, deployment)] = kids  # type: ignore[assignment]
        return kids  # type: ignore[return-value]

    # ---- events reported by other components ------------------------------------------------------------

    def watch_circuits(self, circuits: Callable[[], dict[str, dict[str, Any]]]) -> None:
        """Publish circuit states from ``circuits()`` (``Router.circuits``: name → {"state": …})."""

        def sample() -> None:
            for name, snap in circuits().items():
                self.breaker_state.labels(name).set(BREAKER_STATES.get(str(snap.get("state")), -1))

        self.add_gauge_source(sample)

    def watch_counts(
        self, store_errors: dict[str, Callable[[], int]], unknown_cost: Callable[[], int]
    ) -> None:
        """Publish the stages' own counters: store errors per store, requests of unknown cost."""

        def sample() -> None:
            for store, count in store_errors.items():
                self.store_errors.labels(store).set(count())
            self.unknown_cost.set(unknown_cost())

        self.add_gauge_source(sample)

    # ---- gauges and scrapes ------------------------------------------------------------------------------

    def clear_gauge_sources(self) -> None:
        self._gauge_sources = []

    def add_gauge_source(self, fn: Callable[[], None]) -> None:
        """``fn`` sets gauges from live state; called on every scrape (and by the multiprocess sampler)."""
        self._gauge_sources.append(fn)

    def watch_deployments(self, deployments: Iterable[tuple[str, object]]) -> None:
        """Publish queue depth / in-flight of providers that have them (the embedded llama.cpp model)."""
        watched = [(n, p) for n, p in deployments if hasattr(p, "queue_depth")]
        if not watched:
            return

        def sample() -> None:
            for name, provider in watched:
                self.queue_depth.labels(name).set(getattr(provider, "queue_depth", 0))
                self.embedded_in_flight.labels(name).set(getattr(provider, "in_flight", 0))

        self.add_gauge_source(sample)

    def refresh(self) -> None:
        self.in_flight_gauge.set(self.in_flight)
        for fn in self._gauge_sources:
            fn()

    def render(self) -> tuple[bytes, str]:
        """The exposition text of this process, or of every worker in multiprocess mode."""
        self.refresh()
        if self.multiprocess:
            registry = CollectorRegistry()
            mp.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def close(self) -> None:
        """Multiprocess mode: drop this worker's live gauges from the shared files."""
        if self.multiprocess:
            mp.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


class NoMetrics:
    """Metrics off: the same surface, nothing kept."""

    in_flight = 0
    multiprocess = False

    def observe(self, ctx: RequestContext | None, status: int, elapsed: float) -> None:
        return None

    def watch_circuits(self, circuits: Callable[[], dict[str, dict[str, Any]]]) -> None:
        return None

    def watch_counts(
        self, store_errors: dict[str, Callable[[], int]], unknown_cost: Callable[[], int]
    ) -> None:
        return None

    def clear_gauge_sources(self) -> None:
        return None

    def watch_deployments(self, deployments: Iterable[tuple[str, object]]) -> None:
        return None

    def refresh(self) -> None:
        return None

    def close(self) -> None:
        return None
