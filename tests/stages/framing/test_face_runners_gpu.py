"""The face runners on a CUDA device vs onnxruntime on the CPU (marker ``gpu``; skipped without a
CUDA device): the torch runner (fp32 and fp16) where torch has CUDA, and the TensorRT runner where
NVIDIA's tensorrt wheel is installed and CuPy finds a device (its buffers and stream are CuPy's, so
it needs no CUDA torch: the CUDA image's torch is the CPU build).

Boxes must match onnxruntime's at IoU >= 0.9 on real frames of the test media: cuDNN may use TF32
for fp32 convolutions and fp16 rounds the weights, so not bit-for-bit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.backends import probe_device

pytestmark = pytest.mark.gpu


def _torch_cuda() -> str:
    """"" where torch has a CUDA device, else why not."""
    try:
        import torch
    except ImportError as exc:
        return f"torch does not import: {exc}"
    try:
        return "" if torch.cuda.is_available() else "torch has no CUDA device (or is the CPU build)"
    except Exception as exc:  # a broken driver install
        return f"torch CUDA does not answer: {type(exc).__name__}: {exc}"


def _cupy_device() -> str:
    """"" where CuPy finds a CUDA device, else why not."""
    try:
        import cupy
    except (ImportError, OSError) as exc:
        return f"CuPy does not import: {exc}"
    device, detail = probe_device(cupy)
    return "" if device is not None else detail


NO_TORCH_CUDA, NO_CUPY_DEVICE = _torch_cuda(), _cupy_device()
if NO_TORCH_CUDA and NO_CUPY_DEVICE:
    pytest.skip(f"no CUDA device ({NO_TORCH_CUDA}; {NO_CUPY_DEVICE})", allow_module_level=True)

from engine.config import Settings  # noqa: E402
from stages.framing.face_detector import CenterFaceDetector  # noqa: E402
from stages.framing.face_runners import TorchRunner  # noqa: E402
from stages.framing.face_tensorrt import TensorRTRunner, _import_tensorrt  # noqa: E402
from tests.stages.framing.face_media import matched_ious, media_frames  # noqa: E402


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    return media_frames(per_file=4)


@pytest.fixture(scope="module")
def reference(model_path: Path, frames: np.ndarray) -> list:
    found = CenterFaceDetector(model_path, threads=2).detect(frames)
    assert [len(f) for f in found] == [1] * 4 + [2] * 4
    return found


@pytest.mark.skipif(bool(NO_TORCH_CUDA), reason=NO_TORCH_CUDA or "torch has CUDA")
@pytest.mark.parametrize("fp16", [False, True], ids=["fp32", "fp16"])
def test_torch_cuda_matches_onnxruntime_cpu(model_path: Path, frames: np.ndarray, reference: list,
                                            fp16: bool) -> None:
    runner = TorchRunner(model_path, device="cuda", fp16=fp16)
    assert runner.name == ("torch-cuda-fp16" if fp16 else "torch-cuda")
    found = CenterFaceDetector(runner=runner).detect(frames)
    ious = matched_ious(found, reference)
    assert min(ious) >= 0.9, ious


@pytest.mark.skipif(bool(NO_CUPY_DEVICE), reason=NO_CUPY_DEVICE or "CuPy has a device")
def test_tensorrt_matches_onnxruntime_cpu(model_path: Path, settings: Settings, frames: np.ndarray,
                                          reference: list) -> None:
    try:  # tensorrt, else tensorrt_bindings; the PyPI stub (no Builder) is refused there too
        _import_tensorrt()
    except ImportError as exc:
        pytest.skip(f"no usable TensorRT: {exc}")
    runner = TensorRTRunner(model_path, settings.cache_dir)
    assert runner.name == "tensorrt"
    ious = matched_ious(CenterFaceDetector(runner=runner).detect(frames), reference)
    assert min(ious) >= 0.9, ious
