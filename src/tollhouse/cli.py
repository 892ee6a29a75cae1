"""Command line: ``tollhouse serve``, ``check-config``, ``config-docs``, ``keys …``, ``prompts …``, ``usage``
and ``eval``."""

from __future__ import annotations

import os

# One BLAS thread for the embedded encoder's small matrices, set before numpy loads (workers inherit it):
# with the event loop busy on the other core, two BLAS threads took one query embedding from ~11 ms to
# 35-50 ms p50 (docs/PERFORMANCE.md). An explicit OPENBLAS_NUM_THREADS wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import ipaddress
import sys

from tollhouse.access.keys import has_keys
from tollhouse.cli_keys import add_key_commands, add_usage_commands
from tollhouse.cli_prompts import add_prompt_commands
from tollhouse.cli_rag import add_rag_commands
from tollhouse.errors import StoreUnavailable, TollhouseError
from tollhouse.settings import ConfigError, Settings, load_settings
from tollhouse.version import __version__


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _load(args: argparse.Namespace) -> Settings:
    overrides: dict[str, object] = {}
    server: dict[str, object] = {}
    for name in ("host", "port", "workers"):
        value = getattr(args, name, None)
        if value is not None:
            server[name] = value
    settings = load_settings(args.config, **overrides)
    if server:
        merged = settings.server.model_dump() | server
        settings = settings.model_copy(update={"server": type(settings.server).model_validate(merged)})
    return settings


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from tollhouse.telemetry.logging import configure

    settings = _load(args)
    srv = settings.server
    if (
        not _is_loopback(srv.host)
        and not srv.allow_unauthenticated
        and settings.admin_key() is None
        and not has_keys(settings.keys)
    ):
        print(
            f"refusing to serve on {srv.host}: no API key is configured (no admin key in auth.admin_key_env "
            "and no key created with `tollhouse keys create`), so anyone who can reach this address could "
            "use it. Bind 127.0.0.1, create a key, set an admin key, "
            "or set server.allow_unauthenticated: true "
            "(TOLLHOUSE_SERVER__ALLOW_UNAUTHENTICATED=true) if a trusted proxy in front does authentication.",
            file=sys.stderr,
        )
        return 2
    from tollhouse.cli_check import missing_model_files

    missing = missing_model_files(settings)
    if missing:
        for problem in missing:
            print(f"tollhouse: cannot serve: {problem}", file=sys.stderr)
        return 2
    configure(settings.logging)
    common: dict[str, object] = {
        "host": srv.host,
        "port": srv.port,
        "loop": "uvloop" if sys.platform != "win32" else "asyncio",
        "http": "httptools",
        "lifespan": "on",
        "access_log": False,
        "log_config": None,
        "timeout_graceful_shutdown": int(srv.graceful_shutdown_s),
        "timeout_keep_alive": 30,
        "backlog": 4096,
    }
    if srv.workers > 1:
        # Each worker process builds its own app from the same config file and environment.
        if args.config:
            os.environ["TOLLHOUSE_CONFIG"] = os.path.abspath(args.config)
        os.environ["TOLLHOUSE_SERVER__WORKERS"] = str(srv.workers)
        if settings.telemetry.metrics.enabled:
            _metrics_multiprocess_dir()
        uvicorn.run("tollhouse.app:app_from_env", factory=True, workers=srv.workers, **common)  # type: ignore[arg-type]
        return 0
    from tollhouse.app import create_app

    uvicorn.run(create_app(settings), **common)  # type: ignore[arg-type]
    return 0


def _metrics_multiprocess_dir() -> str:
    """Several workers share one /metrics through prometheus_client's multiprocess mode (ADR 0005): every
    worker writes its samples to files in PROMETHEUS_MULTIPROC_DIR and a scrape of any worker sums them.
    The variable must be set before the workers import prometheus_client; a given directory is emptied
    (stale files from an earlier run would be counted again), else a fresh temporary one is made."""
    import glob
    import tempfile

    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path:
        os.makedirs(path, exist_ok=True)
        for f in glob.glob(os.path.join(path, "*.db")):
            os.remove(f)
    else:
        path = tempfile.mkdtemp(prefix="tollhouse-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    return path


def cmd_check_config(args: argparse.Namespace) -> int:
    from tollhouse.cli_check import check_config
    from tollhouse.settings import resolve_config_path

    settings = _load(args)
    source = resolve_config_path(args.config) or "defaults and environment (no YAML file)"
    report, errors, warnings = check_config(settings, str(source))
    print(report)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    for e in errors:
        print(f"error: {e}", file=sys.stderr)
    if errors:
        print(f"configuration is NOT ready: {len(errors)} error(s)", file=sys.stderr)
        return 1
    print("\nconfiguration is valid")
    return 0


def cmd_config_docs(args: argparse.Namespace) -> int:
    from tollhouse.config_docs import render

    sys.stdout.write(render())
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tollhouse", description="OpenAI-compatible LLM gateway.")
    p.add_argument("--version", action="version", version=f"tollhouse {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the gateway")
    serve.add_argument("--config", help="YAML config file (default: $TOLLHOUSE_CONFIG or ./tollhouse.yaml)")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to bind (default 8000)")
    serve.add_argument("--workers", type=int, help="worker processes (default 1)")
    serve.set_defaults(func=cmd_serve)
    check = sub.add_parser(
        "check-config",
        help="validate the configuration, print the routing table and stores; fail on a missing embedded "
        "model or an unreachable store",
    )
    check.add_argument("--config", help="YAML config file")
    check.set_defaults(func=cmd_check_config)
    docs = sub.add_parser("config-docs", help="print the configuration reference (Markdown)")
    docs.set_defaults(func=cmd_config_docs)
    add_key_commands(sub, _load)
    add_usage_commands(sub, _load)
    add_prompt_commands(sub, _load)
    add_rag_commands(sub, _load)
    ev = sub.add_parser("eval", help="measure quality on the shared dev sets, or gate a prompt version")
    ev.add_argument(
        "target", choices=["guardrails", "injection", "pii", "moderation", "cache", "prompt", "retrieval"]
    )
    ev.add_argument("prompt_id", nargs="?", help="prompt: the stored prompt's id")
    ev.add_argument("--config", help="prompt: YAML config file (models, prompts)")
    ev.add_argument("--version", type=int, help="prompt: the candidate version")
    ev.add_argument("--against", type=int, help="prompt: the baseline version")
    ev.add_argument(
        "--dataset",
        help="prompt: JSONL cases (variables, messages, expected, tags, checks); retrieval: a BEIR folder "
        "(corpus.jsonl, queries.jsonl, qrels.tsv; default DATASETS/scifact)",
    )
    ev.add_argument("--checks", help="prompt: YAML list of checks applied to every case")
    ev.add_argument("--judge", help="prompt: model that judges the answers (e.g. local, the embedded model)")
    ev.add_argument("--rubric", help="prompt: what the judge should prefer")
    ev.add_argument("--judge-mode", dest="judge_mode", choices=["pairwise", "pointwise"], default="pairwise")
    ev.add_argument("--embed-model", dest="embed_model", default="local-embed", help="prompt: for similarity")
    ev.add_argument(
        "--max-regression",
        dest="max_regression",
        type=float,
        default=0.0,
        help="prompt: how far a check's pass rate may fall below the baseline's (0.05 = 5 points)",
    )
    ev.add_argument(
        "--min-pass-rate",
        dest="min_pass_rate",
        type=float,
        help="prompt: every check of the candidate must pass at least this share",
    )
    ev.add_argument("--out", help="prompt, retrieval: also write the results as JSON here")
    ev.add_argument(
        "--datasets",
        default="../shared/datasets",
        help="folder of dev sets laid out like the shared ones (injection/, pii/, moderation/, paraphrase/, "
        "each with dev.jsonl); default ../shared/datasets",
    )
    ev.add_argument("--limit", type=_positive, help="use an even slice of this many rows per set")
    ev.add_argument(
        "--classifier",
        action="store_true",
        help="injection: also cross-validate the opt-in embedding classifier (encodes every row: slow)",
    )
    ev.add_argument(
        "--thresholds",
        help="cache: comma-separated similarity thresholds to report (default: a sweep)",
    )
    ev.add_argument(
        "--encoder",
        choices=["int8", "exact"],
        default="int8",
        help="cache: the sentence encoder to measure (cache.semantic.encoder; default int8)",
    )
    ev.set_defaults(func=cmd_eval)
    return p


def _positive(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {value!r}")
    return n


DATASETS_HELP = (
    "pass --datasets DIR: a folder laid out like the shared dev sets (injection/dev.jsonl, pii/dev.jsonl, "
    "moderation/dev.jsonl, paraphrase/dev.jsonl, JSON Lines as described in their README). The shared "
    "ones are the shared/datasets folder that sits beside the project checkout"
)


def cmd_eval_prompt(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tollhouse.evals.prompt_eval import Options, run_prompt_eval

    if not args.prompt_id or args.version is None or not args.dataset:
        print("tollhouse: eval prompt ID --version N --dataset cases.jsonl [--against M]", file=sys.stderr)
        return 2
    opts = Options(
        prompt=args.prompt_id,
        version=args.version,
        against=args.against,
        dataset=Path(args.dataset),
        checks=Path(args.checks) if args.checks else None,
        judge=args.judge,
        mode=args.judge_mode,
        embed_model=args.embed_model,
        max_regression=args.max_regression,
        min_pass_rate=args.min_pass_rate,
        out=Path(args.out) if args.out else None,
    )
    if args.rubric:
        opts.rubric = args.rubric
    return run_prompt_eval(_load(args), opts, sys.stdout)


def cmd_eval(args: argparse.Namespace) -> int:
    from pathlib import Path

    if args.target == "prompt":
        return cmd_eval_prompt(args)
    if args.target == "retrieval":
        from tollhouse.evals.retrieval import cli_eval

        return cli_eval(
            args.dataset or str(Path(args.datasets) / "scifact"), args.limit, args.out, sys.stdout
        )

    from tollhouse.evals.guardrails import missing, run
    from tollhouse.evals.report import SETS

    datasets = Path(args.datasets)
    which = "all" if args.target == "guardrails" else args.target
    absent = (
        [SETS["cache"]] * (not (datasets / SETS["cache"]).is_file())
        if which == "cache"
        else missing(datasets, which)
    )
    if not datasets.is_dir() or absent:
        what = (
            f"{datasets} is not a folder"
            if not datasets.is_dir()
            else f"{datasets} has no {', '.join(absent)}"
        )
        print(f"tollhouse: --datasets: {what}; {DATASETS_HELP}.", file=sys.stderr)
        return 2
    if args.target == "cache":
        from tollhouse.evals.cache import run_cache_eval

        try:
            thresholds = [float(t) for t in args.thresholds.split(",")] if args.thresholds else None
        except ValueError:
            print(f"tollhouse: --thresholds must be numbers separated by commas, got {args.thresholds!r}")
            return 2
        return run_cache_eval(Path(args.datasets), thresholds, sys.stdout, encoder=args.encoder)
    try:
        lines = run(datasets, which, args.limit, classifier=args.classifier)
    except (ValueError, KeyError) as exc:  # a row without the fields its set needs
        print(f"tollhouse: --datasets: {exc}", file=sys.stderr)
        return 2
    for line in lines:
        print(line)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        print(f"tollhouse: {exc}", file=sys.stderr)
        return 2
    except StoreUnavailable as exc:  # e.g. `tollhouse costs` while the ledger database is down
        print(f"tollhouse: {exc.message} ({exc.cause})", file=sys.stderr)
        return 1
    except TollhouseError as exc:  # e.g. `tollhouse keys revoke` of an unknown id
        print(f"tollhouse: {exc.message}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
