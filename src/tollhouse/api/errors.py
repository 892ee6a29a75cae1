"""The app's exception handlers: every error becomes a ``TollhouseError`` rendered by ``api.render``
(OpenAI's envelope, the right status, the request id); pydantic errors become a 400 naming the field.

Never a traceback or internal detail on the wire; always the detail in the log.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import Match

from tollhouse.api.render import is_anthropic, render_error
from tollhouse.errors import InvalidRequest, NotFound, StoreUnavailable, TollhouseError

log = logging.getLogger("tollhouse.api")

_HTTP_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
}


class FieldError(ValueError):
    """A validator's error that knows which part of its field is wrong: ``where`` is a dotted path below
    the field ('' for the field itself), which the 400's ``param`` and message then name in full."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(message)
        self.where = where


def request_id_of(request: Request) -> str | None:
    rid = request.scope.get("state", {}).get("request_id")
    return str(rid) if rid else None


def validation_error(exc: ValidationError | RequestValidationError) -> InvalidRequest:
    """Turn the first pydantic error into a 400 whose message and ``param`` name the field."""
    errors = exc.errors()
    if not errors:
        return InvalidRequest("invalid request body")
    first = errors[0]
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    # pydantic reports union members as extra loc parts (e.g. 'str', 'list[...]'); keep the field path.
    loc = [p for p in loc if not (p.startswith(("list[", "dict[")) or p in {"str", "int", "float", "bool"})]
    msg = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    cause = (first.get("ctx") or {}).get("error")
    if isinstance(cause, FieldError):
        loc += [p for p in cause.where.split(".") if p]
        msg = str(cause)
    param = ".".join(loc) or None
    if first.get("type") == "json_invalid":
        return InvalidRequest("The request body is not valid JSON.")
    if first.get("type") == "missing":
        return InvalidRequest(f"Missing required parameter: '{param}'.", param=param)
    if param is None:  # a check of the whole body (which fields go together), not of one field
        return InvalidRequest(f"Invalid request body: {msg}.")
    return InvalidRequest(f"Invalid value for '{param}': {msg}.", param=param)


METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(request: Request) -> str:
    """The methods some route answers on the request's path. Starlette's own 405 names only the first route
    it matched, and a path such as ``/admin/keys`` has a ``GET`` and a ``POST`` route. Only on a 405."""
    router = getattr(request.app, "router", None)
    routes = getattr(router, "routes", ())
    scope = dict(request.scope)
    allowed = []
    for method in METHODS:
        scope["method"] = method
        if any(route.matches(scope)[0] == Match.FULL for route in routes):
            allowed.append(method)
    return ", ".join(allowed)


def install(app: FastAPI) -> None:
    """Register the handlers that render every error."""

    async def on_tollhouse(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, TollhouseError)
        # A store outage is logged once, with its cause, by whoever owns the store (``outage.Outage``);
        # each request it fails is only an info line, like a 429.
        level = (
            logging.WARNING if exc.status >= 500 and not isinstance(exc, StoreUnavailable) else logging.INFO
        )
        extra: dict[str, object] = {
            "status": exc.status,
            "error_type": exc.type,
            "error_code": exc.code,
            "detail": exc.message,
        }
        if isinstance(exc, StoreUnavailable):
            extra["cause"] = exc.cause
        log.log(level, "request failed", extra=extra)
        return render_error(exc, request_id_of(request), anthropic=is_anthropic(request.scope))

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError | ValidationError)
        return await on_tollhouse(request, validation_error(exc))

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            err: TollhouseError = NotFound(f"Unknown path: {request.method} {request.url.path}")
        else:
            err = TollhouseError(str(exc.detail))
            err.status = exc.status_code
            err.type = _HTTP_TYPES.get(exc.status_code, "invalid_request_error")
        response = render_error(err, request_id_of(request), anthropic=is_anthropic(request.scope))
        if exc.headers:
            response.headers.update(exc.headers)
        if exc.status_code == 405:  # RFC 9110: say which methods the path has (from every route on it)
            response.headers["allow"] = allowed_methods(request) or response.headers.get("allow", "")
        return response

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.error("unhandled error", exc_info=exc)
        return render_error(
            TollhouseError("The server had an error processing your request."),
            request_id_of(request),
            anthropic=is_anthropic(request.scope),
        )

    app.add_exception_handler(TollhouseError, on_tollhouse)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(ValidationError, on_validation)
    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
