"""The context variables of the request being served, all in one place. Set by the HTTP middleware and the
telemetry observer, read by logging and by providers; this module imports nothing, so any layer may use it.
"""

from __future__ import annotations

from contextvars import ContextVar

# The request id (the caller's ``X-Request-ID`` or a fresh one), on every log line.
request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
# The W3C trace id (32 hex) of the request being served: ours when tracing is on, else the caller's
# ``traceparent`` one, so log lines join traces either way.
trace_id_var: ContextVar[str | None] = ContextVar("trace_id", default=None)
# Trace context headers (``traceparent``/``tracestate``) for the upstream request under way: the provider
# call's span when tracing is on, else the caller's own headers passed through.
upstream_headers_var: ContextVar[dict[str, str] | None] = ContextVar("tollhouse_upstream_trace", default=None)
