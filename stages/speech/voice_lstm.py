"""Resemblyzer's voice encoder (GE2E: a 3-layer LSTM over 40 mel bands, then a linear layer, ReLU and
L2 normalisation) run in NumPy, so a worker never imports torch for it.

torch is ~190 MB of resident libraries for a 1.4 M-parameter model (measured: BENCHMARKS.md section 4).
The weights are Resemblyzer's own ``pretrained.pt``, converted once to ``.npz`` by a child process
that imports torch (``python -m stages.speech.voice_lstm SRC DST``) and cached in
``Settings.cache_dir/models`` under the checkpoint's sha256; the worker then only reads the ``.npz``.

The forward pass is PyTorch's ``nn.LSTM`` (gates in its order i, f, g, o; both biases), layer by
layer, the input projection of a few time steps in one product and the recurrence in place;
``tests/stages/speech/test_voice_lstm.py`` holds it to torch's embeddings.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

LAYERS, HIDDEN, MELS = 3, 256, 40
#: the converter child's time limit (it imports torch and reads a 17 MB checkpoint)
CONVERT_TIMEOUT_S = 120.0


def resemblyzer_checkpoint() -> Path | None:
    """Resemblyzer's ``pretrained.pt``, found without importing the package (which imports torch)."""
    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or not spec.origin:
        return None
    path = Path(spec.origin).parent / "pretrained.pt"
    return path if path.is_file() else None


def converted_weights(cache_dir: Path, checkpoint: Path | None = None) -> Path:
    """The ``.npz`` copy of the checkpoint's weights, converted (in a child process) if not cached yet."""
    from engine.trt_cache import file_sha256

    checkpoint = checkpoint or resemblyzer_checkpoint()
    if checkpoint is None:
        raise FileNotFoundError("Resemblyzer's pretrained.pt is not installed (the 'interviews' extra)")
    target = Path(cache_dir) / "models" / f"voice-encoder-{file_sha256(checkpoint)[:12]}.npz"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run([sys.executable, "-m", "stages.speech.voice_lstm", str(checkpoint), str(target)],
                              capture_output=True, text=True, timeout=CONVERT_TIMEOUT_S)
        if proc.returncode != 0 or not target.is_file():
            raise RuntimeError(f"converting the voice encoder's weights failed: {proc.stderr.strip()[-500:]}")
    return target


class NumpyVoiceEncoder:
    """``encoder(mels)``: (B, T, 40) float32 mel frames -> (B, 256) unit embeddings, as Resemblyzer's.

    Layer by layer: the input projection of ``CHUNK`` time steps at a time in one product (bounded
    memory: B x CHUNK x 1024 floats), then per step only ``h @ W_hh`` and the gates, in place."""

    CHUNK = 32

    def __init__(self, weights: Path) -> None:
        with np.load(weights) as w:
            self.layers = []
            # PyTorch's gate rows are i, f, g, o; reordered to i, f, o, g so the three sigmoid gates
            # are one contiguous block (one expit pass per step instead of two)
            order = np.concatenate([np.arange(0, 2 * HIDDEN), np.arange(3 * HIDDEN, 4 * HIDDEN),
                                    np.arange(2 * HIDDEN, 3 * HIDDEN)])
            for k in range(LAYERS):
                w_ih = np.ascontiguousarray(w[f"lstm.weight_ih_l{k}"][order].T, np.float32)
                w_hh = np.ascontiguousarray(w[f"lstm.weight_hh_l{k}"][order].T, np.float32)
                bias = (w[f"lstm.bias_ih_l{k}"] + w[f"lstm.bias_hh_l{k}"])[order].astype(np.float32)
                self.layers.append((w_ih, w_hh, bias))
            self.linear_w = np.ascontiguousarray(w["linear.weight"].T, np.float32)
            self.linear_b = w["linear.bias"].astype(np.float32)

    def __call__(self, mels: np.ndarray) -> np.ndarray:
        x = np.asarray(mels, np.float32)
        if x.ndim != 3 or x.shape[2] != MELS:
            raise ValueError(f"expected (batch, frames, {MELS}) mel frames, got {x.shape}")
        seq = np.ascontiguousarray(x.transpose(1, 0, 2))  # time-major (T, B, in)
        steps, b = seq.shape[0], seq.shape[1]
        from scipy.special import expit

        gates = np.empty((b, 4 * HIDDEN), np.float32)
        sig, g = gates[:, : 3 * HIDDEN], gates[:, 3 * HIDDEN :]
        i, f, o = gates[:, :HIDDEN], gates[:, HIDDEN : 2 * HIDDEN], gates[:, 2 * HIDDEN : 3 * HIDDEN]
        for k, (w_ih, w_hh, bias) in enumerate(self.layers):
            last = k == LAYERS - 1
            out = None if last else np.empty((steps, b, HIDDEN), np.float32)
            h = np.zeros((b, HIDDEN), np.float32)
            c = np.zeros((b, HIDDEN), np.float32)
            for t0 in range(0, steps, self.CHUNK):
                chunk = seq[t0:t0 + self.CHUNK]
                pre = (chunk.reshape(-1, chunk.shape[2]) @ w_ih).reshape(chunk.shape[0], b, 4 * HIDDEN)
                pre += bias
                for j in range(chunk.shape[0]):
                    np.matmul(h, w_hh, out=gates)
                    gates += pre[j]
                    expit(sig, out=sig)  # i, f, o
                    np.tanh(g, out=g)
                    c *= f
                    np.multiply(i, g, out=g)
                    c += g
                    np.tanh(c, out=h)
                    h *= o
                    if out is not None:
                        out[t0 + j] = h
            if out is not None:
                seq = out
        raw = np.maximum(h @ self.linear_w + self.linear_b, 0.0)
        norm = np.linalg.norm(raw, axis=1, keepdims=True)
        return (raw / np.where(norm > 0, norm, 1.0)).astype(np.float32)


def convert(checkpoint: Path, target: Path) -> None:
    """Resemblyzer's checkpoint -> ``.npz`` of the LSTM's and the linear layer's tensors (needs torch)."""
    import torch

    state = torch.load(checkpoint, map_location="cpu")["model_state"]
    arrays = {k: v.detach().cpu().numpy().astype(np.float32) for k, v in state.items()
              if k.startswith(("lstm.", "linear."))}
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".npz")
    os.close(fd)
    try:
        np.savez(tmp, **arrays)
        os.replace(tmp, target)  # concurrent converters publish identical bytes
    finally:
        Path(tmp).unlink(missing_ok=True)


if __name__ == "__main__":
    convert(Path(sys.argv[1]), Path(sys.argv[2]))
