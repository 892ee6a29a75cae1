"""What the upstream HTTP client raises: one small tree the providers map onto the ``Upstream*`` errors.

Timeouts are ``TimeoutError`` subclasses so ``except TimeoutError`` catches them with asyncio's own.
"""

from __future__ import annotations


class HttpClientError(Exception):
    """Any failure of the upstream HTTP client other than a timeout."""


class ConnectError(HttpClientError):
    """The connection could not be opened (refused, DNS, TLS) or was reset by the peer."""


class Disconnected(HttpClientError):
    """The server closed the connection before its answer began."""


class PayloadError(HttpClientError):
    """The answer's body was cut short, malformed, too large or undecodable."""


class ProtocolError(HttpClientError):
    """The server's answer is not valid HTTP/1.1 (status line or headers)."""


class ConnectTimeout(TimeoutError):
    """No connection (new or pooled) within the connect timeout."""


class ReadTimeout(TimeoutError):
    """No bytes from the server within the read timeout, or the request's total time ran out."""
