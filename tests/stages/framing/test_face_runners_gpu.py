"""The torch face runner on CUDA (fp32 and fp16) vs onnxruntime on the CPU (marker ``gpu``; skipped
without a CUDA device). The TensorRT runner too, where NVIDIA's tensorrt wheel is installed.

Boxes must match onnxruntime's at IoU >= 0.9 on real frames of the test media: cuDNN may use TF32
for fp32 convolutions and fp16 rounds the weights, so not bit-for-bit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.gpu

torch = pytest.importorskip("torch")
try:
    _CUDA = bool(torch.cuda.is_available())
except Exception:  # a broken driver install
    _CUDA = False
if not _CUDA:
    pytest.skip("no CUDA device (or a CPU build of torch)", allow_module_level=True)

from engine.config import Settings  # noqa: E402
from stages.framing.face_detector import CenterFaceDetector, centerface_model_path  # noqa: E402
from stages.framing.face_runners import TorchRunner  # noqa: E402
from stages.framing.face_tensorrt import TensorRTRunner  # noqa: E402
from tests.stages.framing.face_media import matched_ious, media_frames  # noqa: E402


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(cache_dir=tmp_path_factory.mktemp("cache"), threads=2)


@pytest.fixture(scope="module")
def model_path(settings: Settings) -> Path:
    return centerface_model_path(settings)


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    return media_frames(per_file=4)


@pytest.fixture(scope="module")
def reference(model_path: Path, frames: np.ndarray) -> list:
    found = CenterFaceDetector(model_path, threads=2).detect(frames)
    assert [len(f) for f in found] == [1] * 4 + [2] * 4
    return found


@pytest.mark.parametrize("fp16", [False, True], ids=["fp32", "fp16"])
def test_torch_cuda_matches_onnxruntime_cpu(model_path: Path, frames: np.ndarray, reference: list,
                                            fp16: bool) -> None:
    runner = TorchRunner(model_path, device="cuda", fp16=fp16)
    assert runner.name == ("torch-cuda-fp16" if fp16 else "torch-cuda")
    found = CenterFaceDetector(runner=runner).detect(frames)
    ious = matched_ious(found, reference)
    assert min(ious) >= 0.9, ious


def test_tensorrt_matches_onnxruntime_cpu(model_path: Path, settings: Settings, frames: np.ndarray,
                                          reference: list) -> None:
    trt = pytest.importorskip("tensorrt")
    if not hasattr(trt, "Builder"):
        pytest.skip("tensorrt is the PyPI stub, not NVIDIA's wheel")
    runner = TensorRTRunner(model_path, settings.cache_dir)
    ious = matched_ious(CenterFaceDetector(runner=runner).detect(frames), reference)
    assert min(ious) >= 0.9, ious
