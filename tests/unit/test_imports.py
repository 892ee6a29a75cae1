"""The import graph of ``src/tollhouse``: no cycles, and the layers' arrows point one way.

Every import counts, lazy ones inside functions and ``TYPE_CHECKING`` blocks included: a cycle hidden by a
lazy import is still a cycle in the design.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import tollhouse

SRC = Path(tollhouse.__file__).parent


def _modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def import_graph() -> dict[str, set[str]]:
    """module → the project modules it imports (``from pkg import mod`` resolves to the module)."""
    mods = _modules()
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    targets.append(sub if sub in mods else node.module)
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            graph[name].update(t for t in targets if t in mods and t != name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, it = work[-1]
            nxt = next(it, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, ())))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp: list[str] = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def test_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles() -> None:
    assert cycles(import_graph()) == []


def _imports_of(prefix: str) -> set[tuple[str, str]]:
    return {
        (mod, dep)
        for mod, deps in import_graph().items()
        if mod == prefix or mod.startswith(prefix + ".")
        for dep in deps
    }


# Which packages each layer must never import (the arrows: api → gateway → pipeline seams → concept
# packages → stores / providers → types, errors, settings; telemetry observes and is imported by no stage).
FORBIDDEN = {
    "tollhouse.providers": (
        "tollhouse.api",
        "tollhouse.gateway",
        "tollhouse.telemetry",
        "tollhouse.pipeline",
    ),
    "tollhouse.stores": (
        "tollhouse.api",
        "tollhouse.gateway",
        "tollhouse.telemetry",
        "tollhouse.pipeline",
        # Backends keep data; the concepts that use them sit above.
        "tollhouse.access",
        "tollhouse.caching",
        "tollhouse.evals",
        "tollhouse.guardrails",
        "tollhouse.ledger",
        "tollhouse.routing",
    ),
    "tollhouse.pipeline": (
        "tollhouse.api",
        "tollhouse.gateway",
        "tollhouse.telemetry",
        "tollhouse.access",
        "tollhouse.caching",
        "tollhouse.guardrails",
        "tollhouse.ledger",
        "tollhouse.routing",
        "tollhouse.providers",
        "tollhouse.stores",
    ),
    "tollhouse.access": ("tollhouse.api", "tollhouse.gateway", "tollhouse.pipeline", "tollhouse.telemetry"),
    "tollhouse.caching": ("tollhouse.api", "tollhouse.gateway", "tollhouse.pipeline", "tollhouse.telemetry"),
    "tollhouse.guardrails": (
        "tollhouse.api",
        "tollhouse.gateway",
        "tollhouse.pipeline",
        "tollhouse.telemetry",
        "tollhouse.evals",
    ),
    "tollhouse.ledger": ("tollhouse.api", "tollhouse.gateway", "tollhouse.pipeline", "tollhouse.telemetry"),
    "tollhouse.tools": ("tollhouse.api", "tollhouse.gateway", "tollhouse.pipeline", "tollhouse.telemetry"),
    "tollhouse.routing": ("tollhouse.api", "tollhouse.gateway", "tollhouse.pipeline", "tollhouse.telemetry"),
    "tollhouse.wire": ("tollhouse.api", "tollhouse.gateway", "tollhouse.pipeline", "tollhouse.providers"),
    "tollhouse.types": ("tollhouse.",),
    "tollhouse.errors": ("tollhouse.",),
    "tollhouse.gateway": ("tollhouse.api", "tollhouse.telemetry", "tollhouse.app", "tollhouse.runtime"),
    "tollhouse.telemetry": ("tollhouse.api", "tollhouse.gateway", "tollhouse.app", "tollhouse.runtime"),
}


def test_layers_point_one_way() -> None:
    wrong = sorted(
        f"{mod} imports {dep}"
        for layer, banned in FORBIDDEN.items()
        for mod, dep in _imports_of(layer)
        if any(dep == b.rstrip(".") or dep.startswith(b.rstrip(".") + ".") for b in banned)
        and not dep.startswith(layer)
    )
    assert wrong == []


def test_routers_reach_only_the_runtime_and_the_gateway() -> None:
    """HTTP modules talk to the runtime's objects through ``api.deps``; they never open stores or build
    stages themselves."""
    reach = ("tollhouse.stores", "tollhouse.pipeline", "tollhouse.providers.registry")
    wrong = sorted(
        f"{mod} imports {dep}"
        for mod, dep in _imports_of("tollhouse.api")
        if any(dep == r or dep.startswith(r + ".") for r in reach)
    )
    assert wrong == []
