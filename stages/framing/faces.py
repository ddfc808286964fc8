"""faces: the face-detection stages over sampled frames of a clip window, and mouth motion.

:class:`FaceDetectStage` samples frames, runs the detector (:mod:`stages.framing.face_detector`,
its runner chosen for the backend by :func:`stages.framing.face_select.make_face_detector`) and
feeds the cut detector; :class:`FaceSurveyStage` takes a few looks for the genre guess.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from engine.errors import ClipporaError, JobCancelled
from engine.stage import Resources, Stage, StageContext
from engine.types import FaceBox, FaceSample, FaceScan, MediaInfo
from stages.framing.face_detector import BATCH_FRAMES, CenterFaceDetector
from stages.framing.face_select import make_face_detector
from stages.framing.shots import CutDetector
from stages.media import iter_video_frames, upright_i420, upright_rgb

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
    # the detector and the cut signatures do not need the deblocking filter's last few levels
    for t, frame in iter_video_frames(media, max(0.0, start - 1.5 / max(media.fps, 1.0)), end, deblock=False):
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
        self.last_sizes: dict[int, int] = {}

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
        plan = self._detector.size_plan()  # the CPU's input size per frame (full looks and fast ones)

        def flush() -> None:
            assert self._detector is not None
            found = self._detector.detect(np.stack(frames), self.threshold, plan)
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
        self.last_sizes = dict(plan.counts) if plan is not None else {}  # frames per detector input size
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
