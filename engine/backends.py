"""Compute backend selection (DESIGN.md section 3).

The CPU backend (NumPy/OpenCV kernels, PyAV decode/encode, onnxruntime) is the default and
is what CI tests. The CUDA backend (NVDEC, TensorRT, CuPy, NVENC) keeps frames on the GPU;
``auto`` picks it only where all of its parts import and a device answers.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from engine.errors import BackendUnavailable

BACKEND_NAMES = ("auto", "cpu", "cuda")

#: modules the CUDA path needs; all must import for ``cuda`` to be offered
_CUDA_MODULES = ("cupy", "PyNvVideoCodec", "tensorrt")


@dataclass(frozen=True)
class Backend:
    name: str
    xp: ModuleType  # the array module frames live in (numpy or cupy)

    @property
    def is_gpu(self) -> bool:
        return self.name == "cuda"


def cuda_unavailable_reason() -> str | None:
    """Why the CUDA backend cannot run here, or None when it can."""
    missing = [m for m in _CUDA_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        return f"missing modules: {', '.join(missing)} (install clipora[gpu])"
    try:
        import cupy  # type: ignore[import-not-found]

        if cupy.cuda.runtime.getDeviceCount() < 1:
            return "no CUDA device found"
    except Exception as exc:  # any driver/runtime failure means "not here"
        return f"CUDA runtime not usable: {type(exc).__name__}"
    return "the CUDA stages are not part of this build yet"


def select_backend(name: str) -> Backend:
    """Resolve ``auto|cpu|cuda`` to a concrete backend, or raise BackendUnavailable."""
    if name not in BACKEND_NAMES:
        raise BackendUnavailable(
            f"unknown backend '{name}', expected one of: {', '.join(BACKEND_NAMES)}"
        )
    if name == "cpu":
        return Backend("cpu", np)
    reason = cuda_unavailable_reason()
    if reason is None:  # pragma: no cover - needs a GPU
        import cupy

        return Backend("cuda", cupy)
    if name == "cuda":
        raise BackendUnavailable(f"cuda backend unavailable: {reason}")
    return Backend("cpu", np)
