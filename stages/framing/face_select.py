"""face_select: which face-detector runner a backend gets (:func:`make_face_detector`).

CPU backend: onnxruntime. CUDA backend: the plan's detector (TensorRT, torch CUDA or onnxruntime
CPU), each falling back to the next in :data:`RUNNER_ORDER` when it cannot be built (logged).
The builders are looked up in :data:`RUNNER_BUILDERS` at call time, so tests replace entries.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.config import Settings
from stages.framing.face_detector import BATCH_FRAMES, CenterFaceDetector, centerface_model_path
from stages.framing.face_runners import FaceRunner, OnnxRuntimeRunner, TorchRunner
from stages.framing.face_tensorrt import TensorRTRunner

if TYPE_CHECKING:  # pragma: no cover - typing only
    from engine.backends import Backend, CudaPlan

_log = logging.getLogger("clipora.faces")

#: Builds a runner: (dynamic ONNX path, settings, the CUDA plan or None) -> FaceRunner. Raises
#: (ImportError, RuntimeError, ...) when it cannot be built here; tests replace entries.
RunnerBuilder = Callable[[Path, Settings, "CudaPlan | None"], FaceRunner]


def _build_tensorrt(model_path: Path, settings: Settings, plan: CudaPlan | None) -> FaceRunner:
    return TensorRTRunner(model_path, Path(settings.cache_dir), device=plan.device if plan else None,
                          max_batch=BATCH_FRAMES, long_side=max(640, settings.face_detect_size))


def _build_torch_cuda(model_path: Path, settings: Settings, plan: CudaPlan | None) -> FaceRunner:
    return TorchRunner(model_path, device="cuda")


#: a window is scanned in at most this many lanes side by side on the CPU (:func:`cpu_face_lanes`)
MAX_LANES = 4


def runs_frame_by_frame(runner_name: str) -> bool:
    """Whether the runner calls the network a frame at a time on the CPU (onnxruntime's CPU provider):
    its scans then run in lanes (:func:`cpu_face_lanes`) and may look at a smaller size between full
    looks; the GPU runners batch frames at one size."""
    return runner_name == "onnxruntime-cpu"


def cpu_face_lanes(cpu_threads: int) -> int:
    """Lanes of a CPU scan (:mod:`stages.framing.faces`) on ``cpu_threads`` cores: one per core (at most
    :data:`MAX_LANES`), each its own one-thread decoder and its own call of the network, whose
    onnxruntime session then gets ``cpu_threads // lanes`` intra-op threads. Measured on 2 cores
    (CenterFace, 720p): two one-thread calls at once 9-10 ms a frame at 480 against 11-13 ms for one
    two-thread call, in ~20 % fewer CPU seconds; a one-thread decoder takes ~0.7x the CPU seconds of
    libavcodec's frame threads."""
    return max(1, min(MAX_LANES, int(cpu_threads)))


def _build_onnxruntime_cpu(model_path: Path, settings: Settings, plan: CudaPlan | None) -> FaceRunner:
    # the faces stage runs a lane per core side by side (cpu_face_lanes), each call on its share of the cores
    threads = max(1, settings.cpu_threads // cpu_face_lanes(settings.cpu_threads))
    return OnnxRuntimeRunner(model_path, threads=threads)


RUNNER_BUILDERS: dict[str, RunnerBuilder] = {
    "tensorrt": _build_tensorrt,
    "torch-cuda": _build_torch_cuda,
    "onnxruntime-cpu": _build_onnxruntime_cpu,
}
#: the fallback order: a runner that cannot be built falls back to the next one
RUNNER_ORDER = ("tensorrt", "torch-cuda", "onnxruntime-cpu")


def runner_chain(backend: Backend) -> tuple[tuple[str, ...], str]:
    """The runners to try for ``backend``, in order, and why the first one."""
    plan = backend.plan
    if plan is None:
        why = "CPU backend" if not backend.is_gpu else f"{backend.name} backend without a CUDA plan"
        return ("onnxruntime-cpu",), why
    wanted = plan.detector
    if wanted not in RUNNER_ORDER:
        _log.warning("the CUDA plan names an unknown face detector %r; using onnxruntime-cpu", wanted)
        return ("onnxruntime-cpu",), f"unknown plan detector {wanted!r}"
    why = f"the CUDA plan's detector on {plan.device.name}"
    notes = [f for f in plan.fallbacks if "faces on" in f]
    if notes:
        why += f" ({'; '.join(notes)})"
    return RUNNER_ORDER[RUNNER_ORDER.index(wanted):], why


def make_face_detector(
    settings: Settings,
    backend: Backend,
    *,
    log: logging.Logger | logging.LoggerAdapter[Any] | None = None,
    det_long_side: int | None = None,
    model_path: Path | None = None,
) -> CenterFaceDetector:
    """The detector for ``backend``: CPU -> onnxruntime; a CUDA plan -> its ``detector``
    ("tensorrt", "torch-cuda", "onnxruntime-cpu"). A runner that fails to build falls back to the
    next in :data:`RUNNER_ORDER` with a WARNING naming the failure; the runner taken is logged
    (INFO) with the reason. When the last one fails too, its error is raised.
    """
    logger: logging.Logger | logging.LoggerAdapter[Any] = log if log is not None else _log
    path = model_path if model_path is not None else centerface_model_path(settings)
    chain, why = runner_chain(backend)
    failed: list[str] = []
    for i, name in enumerate(chain):
        try:
            runner = RUNNER_BUILDERS[name](path, settings, backend.plan)
        except Exception as exc:
            if i + 1 == len(chain):
                if failed:
                    logger.error("face detector: every runner failed (%s; %s: %s: %s)",
                                 "; ".join(failed), name, type(exc).__name__, exc)
                raise
            failed.append(f"{name}: {type(exc).__name__}: {exc}")
            logger.warning("face detector %s could not be built (%s: %s); falling back to %s",
                           name, type(exc).__name__, exc, chain[i + 1])
            continue
        if failed:
            why += f"; after fallback from {', '.join(f.split(':', 1)[0] for f in failed)}"
        logger.info("face detector: %s (%s)", runner.name, why)
        side = settings.face_detect_size if det_long_side is None else det_long_side
        fast = settings.face_detect_fast_size
        # a size per frame needs a runner that runs frame by frame anyway (the CPU's); GPU runners batch
        use_fast = runs_frame_by_frame(runner.name) and 32 <= fast < side
        return CenterFaceDetector(det_long_side=side, runner=runner, fast_long_side=fast if use_fast else None)
    raise AssertionError("unreachable: the runner chain is never empty")  # pragma: no cover
