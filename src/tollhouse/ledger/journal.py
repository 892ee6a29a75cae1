"""The ledger's local append-only journal: no record is acknowledged before it is on disk.

Every record is appended (one ``write(2)``, no fsync: it survives a killed process, not a power cut) to the
process's active segment file, which it holds under an exclusive ``flock``. A flush rotates the segment,
writes its records to the database and deletes the file; if the database is down the file stays (the spill)
and is retried. A segment whose lock can be taken belongs to a dead process and is replayed by whoever
finds it. Writes are idempotent on the record id, so a replay after a partial success never doubles a row.
"""

from __future__ import annotations

import fcntl
import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson

from tollhouse.stores.base import LedgerRecord, ledger_row

log = logging.getLogger("tollhouse.ledger")
SUFFIX = ".jsonl"


class Segment:
    """One journal file and the records appended to it by this process (``records`` is None for a segment
    adopted from a dead process: read from the file when written)."""

    __slots__ = ("fd", "path", "records")

    def __init__(self, path: Path, fd: int, records: list[LedgerRecord] | None) -> None:
        self.path = path
        self.fd = fd
        self.records = records

    def load(self) -> list[LedgerRecord]:
        if self.records is not None:
            return self.records
        return list(read_segment(self.path))

    def delete(self) -> None:
        self.path.unlink(missing_ok=True)
        os.close(self.fd)

    def release(self) -> None:
        """Close without deleting (shutdown with the database down: the next start replays it)."""
        os.close(self.fd)


def read_segment(path: Path) -> Iterator[LedgerRecord]:
    with path.open("rb") as f:
        for n, line in enumerate(f, 1):
            try:
                yield LedgerRecord(*orjson.loads(line))
            except (orjson.JSONDecodeError, TypeError):
                # Only a torn last line (killed mid-write) can be malformed; it was never acknowledged.
                log.warning("skipping malformed journal line", extra={"file": str(path), "line": n})


class Journal:
    def __init__(self, directory: str) -> None:
        self.dir = Path(directory)
        self._active: Segment | None = None

    def open(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self._active = self._new_segment()

    def _new_segment(self) -> Segment:
        path = self.dir / f"seg-{os.getpid()}-{uuid.uuid4().hex[:12]}{SUFFIX}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return Segment(path, fd, [])

    def append(self, record: LedgerRecord) -> int:
        """Append one record; returns how many records the active segment holds."""
        seg = self._active
        if seg is None or seg.records is None:
            raise RuntimeError("journal is not open")
        os.write(seg.fd, orjson.dumps(ledger_row(record)) + b"\n")
        seg.records.append(record)
        return len(seg.records)

    def rotate(self) -> Segment | None:
        """Seal the active segment (if it holds anything) and start a new one."""
        seg = self._active
        if seg is None or not seg.records:
            return None
        self._active = self._new_segment()
        return seg

    def orphans(self, owned: set[Path]) -> list[Segment]:
        """Segments left by dead processes (their lock is free), now locked by this process."""
        out = []
        for path in sorted(self.dir.glob(f"*{SUFFIX}")):
            if path in owned or (self._active is not None and path == self._active.path):
                continue
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)  # a live process owns it
                continue
            if not path.exists():  # deleted by its owner between glob and lock
                os.close(fd)
                continue
            out.append(Segment(path, fd, None))
        return out

    def close(self) -> None:
        """Remove the (empty) active segment on shutdown."""
        seg, self._active = self._active, None
        if seg is not None:
            if seg.records:
                seg.release()
            else:
                seg.delete()
