"""OpenAI's BPE vocabularies (cl100k_base, o200k_base), vendored in ``data/`` and run by tiktoken: loaded
from the package, never downloaded, checked against the digests tiktoken itself checks.

Loading one takes a fraction of a second and tens of MB, so it happens once per process, in a background
thread, the first time a deployment needs it; until then counters fall back on their upper bound.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import tiktoken

log = logging.getLogger("tollhouse.tokens")
DATA = Path(__file__).parent / "data"

SHA256 = {
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
}
# The pre-tokenizer patterns, as tiktoken_ext.openai_public defines them.
PATTERNS = {
    "cl100k_base": r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+"""
    r"""| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""",
    "o200k_base": "|".join(
        [
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+"""
            r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*"""
            r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""\p{N}{1,3}""",
            r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
            r"""\s*[\r\n]+""",
            r"""\s+(?!\S)""",
            r"""\s+""",
        ]
    ),
}
SPECIAL = {
    "cl100k_base": {
        "<|endoftext|>": 100257,
        "<|fim_prefix|>": 100258,
        "<|fim_middle|>": 100259,
        "<|fim_suffix|>": 100260,
        "<|endofprompt|>": 100276,
    },
    "o200k_base": {"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
}


def ranks(name: str) -> dict[bytes, int]:
    """The vendored vocabulary ``name``: token bytes → rank. Raises ``ValueError`` if the file was altered."""
    raw = gzip.decompress((DATA / f"{name}.tiktoken.gz").read_bytes())
    if hashlib.sha256(raw).hexdigest() != SHA256[name]:
        raise ValueError(f"the vendored {name} vocabulary does not match its SHA-256 digest")
    out: dict[bytes, int] = {}
    for line in raw.splitlines():
        if line:
            token, rank = line.split()
            out[base64.b64decode(token)] = int(rank)
    return out


def load(name: str) -> tiktoken.Encoding:
    """Build the encoding ``name`` (one of ``SHA256``) from the vendored file (blocking)."""
    import tiktoken

    return tiktoken.Encoding(
        name, pat_str=PATTERNS[name], mergeable_ranks=ranks(name), special_tokens=SPECIAL[name]
    )


class Vocabularies:
    """Encodings loaded once per process and shared (they are immutable): ``get`` answers at once, starting
    a background load the first time; ``wait`` blocks until one is loaded (tests, warm-up)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded: dict[str, tiktoken.Encoding] = {}
        self._loading: dict[str, threading.Thread] = {}
        self._failed: set[str] = set()

    def get(self, name: str) -> tiktoken.Encoding | None:
        """The encoding, or None while it loads (or if it cannot be loaded: logged once)."""
        enc = self._loaded.get(name)
        if enc is None and name not in self._failed:
            self._start(name)
        return enc

    def wait(self, name: str) -> tiktoken.Encoding | None:
        self.get(name)
        thread = self._loading.get(name)
        if thread is not None:
            thread.join()
        return self._loaded.get(name)

    def _start(self, name: str) -> None:
        with self._lock:
            if name in self._loading:
                return
            thread = threading.Thread(
                target=self._load, args=(name,), name=f"tollhouse-bpe-{name}", daemon=True
            )
            self._loading[name] = thread
        thread.start()

    def _load(self, name: str) -> None:
        try:
            self._loaded[name] = load(name)
        except Exception:
            self._failed.add(name)
            log.exception("BPE vocabulary %s could not be loaded; prompts are bounded by bytes", name)


VOCABULARIES = Vocabularies()
