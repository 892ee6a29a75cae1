"""HTTP tools declared in config: a URL template filled from the arguments, headers from the environment,
one request, and the part of the JSON answer a JSONPath subset selects. Only hosts on the allowlist are
reached (checked after the template is filled; redirects are not followed), and an answer larger than the
cap is an error, read no further than the cap."""

from __future__ import annotations

import os
import re
import urllib.parse
from typing import Any

import aiohttp
import orjson

from tollhouse.config.tools import HttpToolConfig
from tollhouse.tools.base import Scope, Tool, ToolFailure

_PLACEHOLDER = re.compile(r"\{([A-Za-z0-9_]+)\}")
_STEP = re.compile(r"\.([A-Za-z0-9_-]+)|\[(\d+)\]|\[\"([^\"]+)\"\]")


def parse_path(path: str) -> list[str | int]:
    """``$.a.b[0]["c d"]`` → ``["a", "b", 0, "c d"]``; ``ValueError`` on anything else."""
    if not path.startswith("$"):
        raise ValueError(f"JSONPath must start with '$': {path!r}")
    steps: list[str | int] = []
    pos = 1
    while pos < len(path):
        m = _STEP.match(path, pos)
        if m is None:
            raise ValueError(f'unsupported JSONPath at {path[pos:]!r} (use .name, [index] or ["name"])')
        steps.append(m.group(1) or (int(m.group(2)) if m.group(2) else m.group(3)))
        pos = m.end()
    return steps


def select(value: Any, steps: list[str | int]) -> Any:
    for step in steps:
        if isinstance(step, int):
            if isinstance(value, list) and -len(value) <= step < len(value):
                value = value[step]
                continue
        elif isinstance(value, dict) and step in value:
            value = value[step]
            continue
        raise ToolFailure("bad_response", f"the answer has no {step!r} where the tool expected it")
    return value


def _quote(value: Any) -> str:
    return urllib.parse.quote(str(value), safe="")


def host_of(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    host = (parts.hostname or "").lower()
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return host if parts.port is None or parts.port == default else f"{host}:{parts.port}"


class HttpTools:
    """Builds the configured HTTP tools over one pooled session (opened at start, closed at shutdown)."""

    def __init__(self, allowed_hosts: list[str], max_bytes: int) -> None:
        self.allowed = frozenset(h.lower() for h in allowed_hosts)
        self.max_bytes = max_bytes
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()

    def tool(self, cfg: HttpToolConfig) -> Tool:
        steps = parse_path(cfg.response_path) if cfg.response_path else None
        template_host = host_of(_PLACEHOLDER.sub("x", cfg.url))
        if "{" not in urllib.parse.urlsplit(cfg.url).netloc and template_host not in self.allowed:
            raise ValueError(
                f"HTTP tool '{cfg.name}': host {template_host} is not in tools.http_allowed_hosts"
            )

        async def run(args: dict[str, Any]) -> str:
            url = _PLACEHOLDER.sub(lambda m: _quote(args.get(m.group(1), "")), cfg.url)
            if host_of(url) not in self.allowed:
                raise ToolFailure("host_not_allowed", f"host {host_of(url)} is not allowed")
            headers = {name: os.environ.get(env, "") for name, env in cfg.headers_env.items()}
            body = orjson.dumps(args) if cfg.method == "POST" else None
            if body is not None:
                headers["Content-Type"] = "application/json"
            async with self.session().request(
                cfg.method, url, data=body, headers=headers, allow_redirects=False
            ) as resp:
                data = await resp.content.read(self.max_bytes + 1)
                if len(data) > self.max_bytes:
                    raise ToolFailure("result_too_large", f"the answer is larger than {self.max_bytes} bytes")
                if resp.status >= 300:  # a redirect is not followed: it may leave the allowlist
                    raise ToolFailure(
                        "http_error", f"HTTP {resp.status}: {data[:200].decode(errors='replace')}"
                    )
            if steps is None:
                return data.decode(errors="replace")
            try:
                value = orjson.loads(data)
            except orjson.JSONDecodeError:
                raise ToolFailure("bad_response", "the answer is not JSON") from None
            picked = select(value, steps)
            return picked if isinstance(picked, str) else orjson.dumps(picked).decode()

        return Tool(
            cfg.name,
            cfg.description,
            cfg.parameters,
            run,
            timeout_s=cfg.timeout_s,
            concurrency=cfg.concurrency,
            scope=Scope(frozenset(cfg.scope.keys), frozenset(cfg.scope.teams)),
            source="http",
        )
