"""face_runners: what runs the CenterFace network on a preprocessed blob.

:class:`stages.framing.face_detector.CenterFaceDetector` does the pre-processing (resize to the
detection size, the float32 NCHW RGB 0-255 blob) and the post-processing (decode, NMS, boxes in
source pixels); a *runner* sits in between and maps the blob to the network's (heatmap, scale,
offset) outputs as float32 NumPy arrays. Three runners:

- :class:`OnnxRuntimeRunner`: onnxruntime on the CPU (the CPU backend, and the last fallback);
- :class:`TorchRunner`: the ONNX graph rebuilt as a ``torch.nn.Module``
  (:func:`stages.framing.onnx_torch.onnx_to_torch`), on ``cuda`` for the CUDA backend (``cpu``
  works too and is what CI tests against onnxruntime);
- :class:`stages.framing.face_tensorrt.TensorRTRunner`: a TensorRT 10 engine built from the ONNX,
  cached on disk through :mod:`engine.trt_cache`.

Which one a backend gets is :mod:`stages.framing.face_select`. torch, onnx and tensorrt are
imported only when a runner needing them is built, so a CPU process that never builds one pays
nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from stages.framing.onnx_torch import _import_torch, onnx_to_torch

INPUT_NAME = "input.1"
#: heatmap, scale (log h, log w), offset (dy, dx), landmarks; all at 1/4 input resolution
OUTPUT_NAMES = ("537", "538", "539", "540")
#: what the detector uses: heatmap, scale, offset (the landmarks are not needed)
DETECTION_OUTPUTS = OUTPUT_NAMES[:3]

Outputs = tuple[np.ndarray, np.ndarray, np.ndarray]


class FaceRunner(Protocol):
    """Maps an (N, 3, H, W) float32 blob to float32 (heatmap, scale, offset) NumPy arrays."""

    #: which runner this is, as logged: "onnxruntime-cpu", "torch-cuda", "torch-cpu", "tensorrt"...
    name: str

    def run(self, blob: np.ndarray) -> Outputs: ...


# -- onnxruntime ----------------------------------------------------------------------------------


#: frames per onnxruntime call on the CPU. The time per frame does not depend on it (measured on 2 cores,
#: 640x352: 14.3 / 13.9 / 14.3 / 15.3 ms per frame at 1 / 2 / 4 / 8), but the arena holds the largest
#: call's activations for the session's life: tens of MB at 1-2 against ~300 MB at 8 (BENCHMARKS.md 4)
ORT_CPU_BATCH = 1


class OnnxRuntimeRunner:
    """onnxruntime, sequential, ``threads`` intra-op threads (the CPU backend's runner); a batch is
    run ``max_batch`` frames at a time (:data:`ORT_CPU_BATCH`)."""

    def __init__(
        self,
        model_path: Path,
        threads: int = 2,
        providers: Sequence[str] = ("CPUExecutionProvider",),
        output_names: Sequence[str] = DETECTION_OUTPUTS,
        max_batch: int = ORT_CPU_BATCH,
        allow_spinning: bool = False,
    ) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, int(threads))
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        # idle intra-op threads sleep instead of spinning: a spinning thread burns the core that the
        # stage's decoder threads need between calls (BENCHMARKS.md 3)
        opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if allow_spinning else "0")
        self.session = ort.InferenceSession(str(model_path), sess_options=opts, providers=list(providers))
        self.output_names = list(output_names)
        self.name = "onnxruntime-cpu" if list(providers) == ["CPUExecutionProvider"] else "onnxruntime"
        self.max_batch = max(1, int(max_batch))

    def run(self, blob: np.ndarray) -> Outputs:
        if len(blob) <= self.max_batch:
            heatmap, scale, offset = self.session.run(self.output_names, {INPUT_NAME: blob})
            return heatmap, scale, offset
        parts = [self.session.run(self.output_names, {INPUT_NAME: blob[i : i + self.max_batch]})
                 for i in range(0, len(blob), self.max_batch)]
        heatmap, scale, offset = (np.concatenate([p[k] for p in parts]) for k in range(3))
        return heatmap, scale, offset


# -- torch ----------------------------------------------------------------------------------------


class TorchRunner:
    """The ONNX graph as a torch module (:func:`onnx_to_torch`) on ``device``, under inference_mode.

    ``fp16`` (CUDA only) halves the weights and the input; outputs come back as float32 NumPy.
    """

    def __init__(
        self,
        model: Any,
        device: str = "cuda",
        fp16: bool = False,
        output_names: Sequence[str] = DETECTION_OUTPUTS,
    ) -> None:
        torch = _import_torch()
        self._torch = torch
        self.device = torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"torch {torch.__version__} has no CUDA device (CPU build or no driver)")
        if fp16 and self.device.type != "cuda":
            raise ValueError("the fp16 torch runner needs a CUDA device")
        self.dtype = torch.float16 if fp16 else torch.float32
        module = onnx_to_torch(model, list(output_names)).to(self.device)
        self.module = module.half() if fp16 else module
        self.name = f"torch-{self.device.type}" + ("-fp16" if fp16 else "")

    def run(self, blob: np.ndarray) -> Outputs:
        torch = self._torch
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(blob, dtype=np.float32)).to(self.device, self.dtype)
            heatmap, scale, offset = (t.float().cpu().numpy() for t in self.module(x))
        return heatmap, scale, offset
