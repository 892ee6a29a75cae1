"""``tollhouse rag ingest|collections|search|delete|copy``: straight to the configured retrieval store, no
server needed. ``ingest PATH`` takes a file or a folder (``.txt``, ``.md``, ``.html``, ``.pdf``; the
document id is the path relative to PATH) and shows a progress bar; a file that cannot be read is reported
and skipped.
``copy --collection NAME --to-config pg.yaml`` copies a collection, vectors included, to another store.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from tollhouse.errors import InvalidRequest, NotFound
from tollhouse.rag import views
from tollhouse.rag.build import build_retrieval
from tollhouse.rag.loaders import kind_of
from tollhouse.rag.service import NewDocument, Outcome, Retrieval
from tollhouse.settings import Settings

Loader = Callable[[argparse.Namespace], Settings]
SUFFIXES = {".txt", ".text", ".md", ".markdown", ".html", ".htm", ".pdf"}


def files_under(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise InvalidRequest(f"{root}: no such file or folder")
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)


async def ingest(rag: Retrieval, tenant: str, collection: str, root: Path, create: bool, quiet: bool) -> int:
    from tqdm import tqdm

    try:
        await rag.get(tenant, collection)
    except NotFound:
        if not create:
            raise NotFound(f"No collection named '{collection}' (add --create to make it).") from None
        await rag.create(tenant, collection)
    files = files_under(root)
    counts = {"created": 0, "updated": 0, "unchanged": 0, "failed": 0}
    chunks = 0
    is_dir = root.is_dir()  # noqa: ASYNC240  (a CLI run, no event loop to share)
    bar = tqdm(total=len(files), unit="doc", disable=quiet, file=sys.stderr)

    def documents() -> Iterator[NewDocument]:  # read as ingest takes them, a group at a time
        for path in files:
            doc_id = str(path.relative_to(root)) if is_dir else path.name
            yield NewDocument(
                doc_id, path.read_bytes(), kind_of(path.name), {"source": doc_id}, title=path.stem
            )

    def done(_: NewDocument, res: Outcome) -> None:
        nonlocal chunks
        bar.update()
        if isinstance(res, InvalidRequest):
            counts["failed"] += 1
            bar.write(f"skipped {res.message}", file=sys.stderr)
            return
        counts[res.status] += 1
        chunks += res.chunks
        bar.set_postfix(chunks=chunks)

    await rag.ingest_many(tenant, collection, documents(), done=done)
    bar.close()
    print(json.dumps({"collection": collection, "files": len(files), "chunks": chunks, **counts}))
    return 1 if counts["failed"] else 0


def _run(settings: Settings, fn: Callable[[Retrieval], Awaitable[int]]) -> int:
    async def go() -> int:
        rag = build_retrieval(settings.rag)
        try:
            return await fn(rag)
        finally:
            await rag.aclose()

    return asyncio.run(go())


def _rag_cmd(load: Loader) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        settings = load(args)
        t = args.tenant
        action = args.rag_action

        async def act(rag: Retrieval) -> int:
            if action == "ingest":
                return await ingest(rag, t, args.collection, Path(args.path), args.create, args.quiet)
            out: Any
            if action == "copy":
                target = build_retrieval(load(argparse.Namespace(config=args.to_config)).rag)
                try:
                    out = views.collection(await rag.copy_to(target, t, args.collection))
                finally:
                    await target.aclose()
            elif action == "collections":
                out = [views.collection(c) for c in await rag.collections(t)]
            elif action == "search":
                hits = await rag.search(args.collection, args.query, args.k, None, t, args.mode)
                out = [views.hit(h, i) for i, h in enumerate(hits, 1)]
            else:
                await rag.delete(t, args.collection)
                out = {"id": args.collection, "deleted": True}
            print(json.dumps(out, indent=2, ensure_ascii=False))
            return 0

        return _run(settings, act)

    return run


def add_rag_commands(sub: Any, load: Loader) -> None:
    rag = sub.add_parser("rag", help="retrieval collections: ingest files, list, search, delete")
    actions = rag.add_subparsers(dest="rag_action", required=True)
    for action in ("ingest", "collections", "search", "delete", "copy"):
        p = actions.add_parser(action)
        p.add_argument("--config", help="YAML config file")
        p.add_argument(
            "--tenant",
            default="anon",
            help="owner of the collection: anon (no keys), team:NAME or key:ID (default anon)",
        )
        if action == "ingest":
            p.add_argument("path", help="a file, or a folder of .txt / .md / .html / .pdf files")
            p.add_argument("--create", action="store_true", help="create the collection if it does not exist")
            p.add_argument("--quiet", action="store_true", help="no progress bar")
        if action != "collections":
            p.add_argument("--collection", required=True)
        if action == "copy":
            p.add_argument(
                "--to-config",
                required=True,
                help="YAML config of the target store (e.g. rag.backend: postgres)",
            )
        if action == "search":
            p.add_argument("query")
            p.add_argument("-k", type=int, default=5)
            p.add_argument("--mode", choices=["hybrid", "bm25", "dense"], default="hybrid")
        p.set_defaults(func=_rag_cmd(load))
