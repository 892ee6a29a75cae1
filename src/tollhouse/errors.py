"""The one error tree. Every error that reaches a client is one of these, rendered in one place.

TollhouseError                      500 server_error
├── InvalidRequest                  400 invalid_request_error (names the param)
│   ├── ContextWindowExceeded       400 code=context_length_exceeded
│   └── GuardrailBlocked            400 code=guardrail_blocked (an input guardrail; names the rule)
├── OutputBlocked                   422 content_filter, code=guardrail_blocked (an output guardrail withheld
│                                       the model's answer; names the rule)
├── BodyTooLarge                    413 invalid_request_error
├── AuthenticationFailed            401 authentication_error
├── PermissionDenied                403 permission_error
├── ModelNotFound                   404 invalid_request_error, code=model_not_found
├── NotFound                        404 not_found_error
├── IdempotencyConflict             409 code=idempotency_conflict (same key still in progress)
├── IdempotencyKeyReused            422 code=idempotency_key_reused (same key, different body)
├── RateLimited                     429 rate_limit_error (retry_after)
│   └── BudgetExceeded              429 or 402 code=budget_exceeded (a spend budget is used up)
│       └── Downgrade               (internal: the gateway re-routes to a cheaper model; 429 if not)
├── Overloaded                      503 overloaded_error (retry_after; our own queue is full)
├── StoreUnavailable                503 code=store_unavailable (retry_after; names the store that is down)
└── UpstreamError                   502 upstream_error (retryable)
    ├── UpstreamTimeout             504 (retryable)
    ├── UpstreamRateLimited         429 (retry_after, retryable)
    ├── UpstreamUnavailable         502/503 (5xx and connection errors, retryable)
    │   └── UpstreamConnectionError 502 code=upstream_unreachable (no answer: refused, reset, DNS)
    ├── UpstreamBadRequest          400 (the upstream refused the request; not retryable)
    ├── UpstreamContextWindowExceeded 400 code=context_length_exceeded (a larger model may help)
    ├── UpstreamContentFiltered     400 code=content_filter
    └── ResponseSchemaMismatch      502 code=response_schema_mismatch (answer failed the json_schema twice)
"""

from __future__ import annotations

import math


class TollhouseError(Exception):
    """Base of every error the gateway raises on purpose."""

    status: int = 500
    type: str = "server_error"
    code: str | None = None
    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        """HTTP headers the error carries (Retry-After for throttling errors)."""
        if self.retry_after is None:
            return {}
        return {"retry-after": str(max(1, math.ceil(self.retry_after)))}


class InvalidRequest(TollhouseError):
    status = 400
    type = "invalid_request_error"


class ContextWindowExceeded(InvalidRequest):
    code = "context_length_exceeded"


class GuardrailBlocked(InvalidRequest):
    """A guardrail refused the request; the message names the rule, never the offending text."""

    code = "guardrail_blocked"


class OutputBlocked(TollhouseError):
    """An output guardrail withheld the model's answer: the request was valid and the call succeeded (its
    usage is billed), so neither a client error (400) nor a failure worth retrying (5xx); 422 with the type
    of a filtered answer (docs/GUARDRAILS.md). The message names the rule, never the text."""

    status = 422
    type = "content_filter"
    code = "guardrail_blocked"


class BodyTooLarge(TollhouseError):
    status = 413
    type = "invalid_request_error"
    code = "request_too_large"


class AuthenticationFailed(TollhouseError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class PermissionDenied(TollhouseError):
    status = 403
    type = "permission_error"


class ModelNotFound(TollhouseError):
    status = 404
    type = "invalid_request_error"
    code = "model_not_found"


class NotFound(TollhouseError):
    status = 404
    type = "not_found_error"


class Conflict(TollhouseError):
    """The thing to create exists already (a collection of that name)."""

    status = 409
    type = "invalid_request_error"
    code = "already_exists"


class IdempotencyConflict(TollhouseError):
    status = 409
    type = "invalid_request_error"
    code = "idempotency_conflict"


class IdempotencyKeyReused(TollhouseError):
    status = 422
    type = "invalid_request_error"
    code = "idempotency_key_reused"


class RateLimited(TollhouseError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"


class BudgetExceeded(RateLimited):
    """A key's, user's or team's budget for the day or month is used up (``budgets.exceeded_status``)."""

    code = "budget_exceeded"
    type = "insufficient_quota"

    def __init__(self, message: str, *, status: int = 429, retry_after: float | None = None) -> None:
        super().__init__(message, retry_after=retry_after)
        self.status = 402 if status == 402 else 429


class Downgrade(BudgetExceeded):
    """A budget is used up and the policy is to downgrade: the gateway re-routes the request to ``model``
    and admits it again (a caller that cannot re-route sees the ``BudgetExceeded`` it also is)."""

    def __init__(self, message: str, model: str, *, status: int = 429, reason: str = "budget") -> None:
        super().__init__(message, status=status)
        self.model = model
        self.reason = reason  # "budget" or "emergency": x-tollhouse-route is <reason>-downgrade:<model>


class Overloaded(TollhouseError):
    status = 503
    type = "overloaded_error"
    code = "overloaded"
    retryable = True


class StoreUnavailable(TollhouseError):
    """A store the answer needs (key store, usage ledger, cache, idempotency store…) cannot be reached. The
    message names the store, never its address; ``cause`` (the underlying error) is for the log only."""

    status = 503
    type = "server_error"
    code = "store_unavailable"
    retryable = True

    def __init__(self, store: str, cause: str = "", *, retry_after: float = 5.0) -> None:
        super().__init__(
            f"The {store} is unavailable; try again shortly.",
            retry_after=retry_after,
        )
        self.store = store
        self.cause = cause


class UpstreamError(TollhouseError):
    status = 502
    type = "upstream_error"
    code = "upstream_error"
    retryable = True


class UpstreamTimeout(UpstreamError):
    status = 504
    code = "upstream_timeout"


class UpstreamRateLimited(UpstreamError):
    status = 429
    type = "rate_limit_error"
    code = "upstream_rate_limited"


class UpstreamUnavailable(UpstreamError):
    code = "upstream_unavailable"

    def __init__(self, message: str, *, status: int = 502, retry_after: float | None = None) -> None:
        super().__init__(message, retry_after=retry_after)
        self.status = 503 if status == 503 else 502


class UpstreamConnectionError(UpstreamUnavailable):
    code = "upstream_unreachable"


class UpstreamBadRequest(UpstreamError):
    status = 400
    type = "invalid_request_error"
    code = "upstream_bad_request"
    retryable = False


class UpstreamContextWindowExceeded(UpstreamBadRequest):
    code = "context_length_exceeded"


class UpstreamContentFiltered(UpstreamBadRequest):
    code = "content_filter"


class ResponseSchemaMismatch(UpstreamError):
    code = "response_schema_mismatch"
    retryable = False
