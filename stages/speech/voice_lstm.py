"""Resemblyzer's voice encoder (GE2E: a 3-layer LSTM over 40 mel bands, then a linear layer, ReLU and
L2 normalisation) run in NumPy, so a worker never imports torch for it.

torch is ~190 MB of resident libraries for a 1.4 M-parameter model (measured: BENCHMARKS.md section 4).
The weights are Resemblyzer's own ``pretrained.pt``, converted once to ``.npz`` by a child process
that imports torch (``python -m stages.speech.voice_lstm SRC DST``) and cached in
``Settings.cache_dir/models`` under the checkpoint's sha256; the worker then only reads the ``.npz``.

Two forward passes on the same ``.npz``: :class:`OnnxVoiceEncoder` (the one a worker uses) puts the three
layers in an ONNX graph of ``LSTM`` operators, built in memory, and runs it in onnxruntime (its LSTM
kernel: 1.4-2x faster than the NumPy loop on 2 cores, BENCHMARKS.md section 3); :class:`NumpyVoiceEncoder`
is PyTorch's ``nn.LSTM`` (gates in its order i, f, g, o; both biases) in NumPy, layer by layer, the input
projection of a few time steps in one product and the recurrence in place (the fallback where
onnxruntime cannot build the graph). ``tests/stages/speech/test_voice_lstm.py`` holds both to torch's
embeddings.
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


class OnnxVoiceEncoder:
    """``encoder(mels)``: (B, T, 40) float32 mel frames -> (B, 256) unit embeddings, as Resemblyzer's: the
    LSTM layers as onnxruntime ``LSTM`` operators on ``threads`` intra-op threads (idle ones sleep, no
    memory arena kept between calls: a batch of 256 windows needs ~40 MB per layer), the linear layer,
    ReLU and the L2 norm in NumPy."""

    def __init__(self, weights: Path, threads: int = 1) -> None:
        import onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper

        # PyTorch's gate rows are i, f, g, o; ONNX's LSTM wants i, o, f, c (c = PyTorch's g)
        order = np.concatenate([np.arange(0, HIDDEN), np.arange(3 * HIDDEN, 4 * HIDDEN),
                                np.arange(HIDDEN, 2 * HIDDEN), np.arange(2 * HIDDEN, 3 * HIDDEN)])
        nodes, tensors = [], [numpy_helper.from_array(np.array([0], np.int64), "axis0"),
                              numpy_helper.from_array(np.array([1], np.int64), "axis1")]
        with np.load(weights) as w:
            source = "mels"
            for k in range(LAYERS):
                ih = w[f"lstm.weight_ih_l{k}"][order][None].astype(np.float32)
                hh = w[f"lstm.weight_hh_l{k}"][order][None].astype(np.float32)
                bias = np.concatenate([w[f"lstm.bias_ih_l{k}"][order], w[f"lstm.bias_hh_l{k}"][order]])[None]
                tensors += [numpy_helper.from_array(ih, f"W{k}"), numpy_helper.from_array(hh, f"R{k}"),
                            numpy_helper.from_array(bias.astype(np.float32), f"B{k}")]
                # outputs Y (T, 1, B, H) for the next layer and Y_h (1, B, H): the last step's state
                nodes.append(helper.make_node("LSTM", [source, f"W{k}", f"R{k}", f"B{k}"], [f"Y{k}", f"H{k}"],
                                              hidden_size=HIDDEN))
                nodes.append(helper.make_node("Squeeze", [f"Y{k}", "axis1"], [f"X{k}"]))
                source = f"X{k}"
            self.linear_w = np.ascontiguousarray(w["linear.weight"].T, np.float32)
            self.linear_b = w["linear.bias"].astype(np.float32)
        nodes.append(helper.make_node("Squeeze", [f"H{LAYERS - 1}", "axis0"], ["hidden"]))
        graph = helper.make_graph(
            nodes, "ge2e_lstm", [helper.make_tensor_value_info("mels", TensorProto.FLOAT, ["T", "B", MELS])],
            [helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["B", HIDDEN])], tensors)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8  # (onnxruntime reads IR 8 models of opset 17 across its versions)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, int(threads))
        opts.inter_op_num_threads = 1
        opts.enable_cpu_mem_arena = False
        opts.log_severity_level = 3
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(model.SerializeToString(), sess_options=opts,
                                            providers=["CPUExecutionProvider"])

    def __call__(self, mels: np.ndarray) -> np.ndarray:
        x = np.asarray(mels, np.float32)
        if x.ndim != 3 or x.shape[2] != MELS:
            raise ValueError(f"expected (batch, frames, {MELS}) mel frames, got {x.shape}")
        if x.shape[0] == 0:
            return np.zeros((0, HIDDEN), np.float32)
        (h,) = self.session.run(["hidden"], {"mels": np.ascontiguousarray(x.transpose(1, 0, 2))})
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
