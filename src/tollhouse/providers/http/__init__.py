"""A lean HTTP/1.1 client for the model upstreams: keep-alive pool per origin, asyncio protocol, httptools.

See ADR 0031 for why the providers do not use aiohttp for this call.
"""

from tollhouse.providers.http.client import HttpClient, Timeouts
from tollhouse.providers.http.errors import (
    ConnectError,
    ConnectTimeout,
    Disconnected,
    HttpClientError,
    PayloadError,
    ProtocolError,
    ReadTimeout,
)
from tollhouse.providers.http.response import Response, StreamResponse

__all__ = [
    "ConnectError",
    "ConnectTimeout",
    "Disconnected",
    "HttpClient",
    "HttpClientError",
    "PayloadError",
    "ProtocolError",
    "ReadTimeout",
    "Response",
    "StreamResponse",
    "Timeouts",
]
