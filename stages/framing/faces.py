"""faces: the face-detection stages over sampled frames of a clip window, and mouth motion.

:class:`FaceDetectStage` samples frames, runs the detector (:mod:`stages.framing.face_detector`,
its runner chosen for the backend by :func:`stages.framing.face_select.make_face_detector`) and
feeds the cut detector; :class:`FaceSurveyStage` takes a few looks for the genre guess.
"""

from __future__ import annotations

import math
import threading
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from engine.errors import ClipporaError, JobCancelled
from engine.stage import Resources, Stage, StageContext
from engine.types import FaceBox, FaceSample, FaceScan, MediaInfo
from stages.framing.face_detector import BATCH_FRAMES, CenterFaceDetector, SizePlan
from stages.framing.face_select import cpu_face_lanes, make_face_detector, runs_frame_by_frame
from stages.framing.shots import DEFAULT_CUTS, CutDetector, pair_score
from stages.media import iter_video_frames, keyframe_times, read_ahead, upright_i420, upright_rgb

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
#: a sample whose frame signature differs from the previous sample's by this content score gets a full
#: look (a cut's least score; steady real talking heads score 1.4-4.1 from frame to frame)
CHANGE_SCORE = DEFAULT_CUTS.min_score
#: samples decoded ahead of the detector (each holds an RGB frame and two decoded frames: ~7 MB at 720p)
READ_AHEAD = 2


def sample_frames_and_cuts(media: MediaInfo, start: float, end: float, fps: float, cuts: CutDetector,
                           first: float | None = None, seek: float | None = None, threads: int = 0,
                           tail: dict[str, np.ndarray] | None = None):
    """:func:`stages.media.sample_frames_with_previous`'s samples ``(t, rgb, luma, previous_luma, changed)``,
    while every decoded frame of [start, end) also goes to ``cuts`` (one signature per frame); ``changed``:
    the sample's signature differs from the previous sample's by a cut's content score at least
    (:data:`CHANGE_SCORE`: a possible cut in between, or a fast change of the picture).
    ``first``: the first sample's time (default ``start``: a lane of a window keeps the window's grid);
    ``seek`` and ``threads`` as in :func:`stages.media.iter_video_frames`. ``tail["luma"]``: the luma
    of the last frame decoded before ``end``, once the samples are exhausted.
    """
    step = 1.0 / fps
    next_t = start if first is None else first
    prev: Any = None
    last_sig: np.ndarray | None = None  # the previous sample's signature
    # the detector and the cut signatures do not need the deblocking filter's last few levels
    for t, frame in iter_video_frames(media, max(0.0, start - 1.5 / max(media.fps, 1.0)), end,
                                      threads=threads, seek=seek, deblock=False):
        if t >= start - _EPS:
            cuts.add(t, *upright_i420(frame, 0))  # as decoded: a difference does not care which way is up
            if t + _EPS >= next_t:
                luma = upright_i420(frame, media.rotation)[0]
                before = upright_i420(prev, media.rotation)[0] if prev is not None else None
                sig = cuts.sigs[-1] if cuts.sigs else None
                changed = last_sig is not None and sig is not None and pair_score(last_sig, sig) >= CHANGE_SCORE
                last_sig = sig
                yield t, upright_rgb(frame, media.rotation), luma, before, changed
                next_t = max(next_t + step, t + step * 0.5)
        prev = frame
    if tail is not None and prev is not None:
        tail["luma"] = upright_i420(prev, media.rotation)[0]


#: each lane covers at least this many seconds of the window; a shorter window is one lane
MIN_LANE_S = 4.0
#: an inner lane bound moves to a keyframe at most this fraction of a lane from its nominal place
KEYFRAME_SLACK = 0.1


def lane_bounds(media: MediaInfo, start: float, end: float, lanes: int) -> list[float]:
    """``n + 1`` bounds of the lanes of [start, end) (``n`` <= ``lanes``, each lane ``MIN_LANE_S`` or more):
    each inner bound at the keyframe nearest its nominal place within ``KEYFRAME_SLACK`` of a lane (a lane
    that starts on a keyframe decodes nothing twice), else at the nominal place (that lane's decoder starts
    at the keyframe before it)."""
    n = max(1, min(int(lanes), int((end - start) // MIN_LANE_S)))
    if n == 1:
        return [start, end]
    size = (end - start) / n
    keys = keyframe_times(media, start + size * (1 - KEYFRAME_SLACK), end - size * (1 - KEYFRAME_SLACK))
    bounds = [start]
    for k in range(1, n):
        nominal = start + k * size
        near = [t for t in keys if abs(t - nominal) <= size * KEYFRAME_SLACK and t > bounds[-1] + MIN_LANE_S / 2]
        bounds.append(min(near, key=lambda t: abs(t - nominal)) if near else nominal)
    return [*bounds, end]


@dataclass
class _Lane:
    """One lane's scan: its samples, the luma of its first sample (and whether that sample had the frame
    before it) and the luma of its last decoded frame, its cut signatures and its size plan."""

    samples: list[FaceSample]
    cuts: CutDetector
    plan: SizePlan | None
    first_luma: np.ndarray | None = None
    first_had_previous: bool = True
    last_luma: np.ndarray | None = None


class FaceDetectStage(Stage[FaceDetectRequest, FaceScan]):
    """Samples frames at ``Settings.face_sample_fps`` over [start, end) and finds faces; every
    decoded frame also feeds the cut detector (:mod:`stages.framing.shots`): the result holds
    the window's shots beside the samples.

    On the CPU runner a window is cut into lanes (:func:`~stages.framing.face_select.cpu_face_lanes`,
    :func:`lane_bounds`) scanned side by side, each with its own decoder and size plan; the lanes'
    samples and cut signatures are joined in time order, so the shots are found over the whole window
    as in one piece. Otherwise (a GPU runner, or a window too short for two lanes) one lane, decoded in
    a thread of its own a few samples ahead of the detector.
    """

    name = "faces"
    resources = Resources(cpus=2.0)
    batch_size = BATCH_FRAMES

    def __init__(self, threshold: float = 0.5) -> None:
        self.threshold = threshold
        self._detector: CenterFaceDetector | None = None
        self._lanes = 1
        self.last_cut_cost_s = 0.0
        self.last_sizes: dict[int, int] = {}
        self.last_lanes = 0

    def setup(self, ctx: StageContext) -> None:
        if self._detector is None:
            self._detector = make_face_detector(ctx.settings, ctx.backend, log=ctx.log)
            frame_by_frame = runs_frame_by_frame(self._detector.runner_name)
            self._lanes = cpu_face_lanes(ctx.settings.cpu_threads) if frame_by_frame else 1

    def teardown(self) -> None:
        self._detector = None

    def process(self, inputs: FaceDetectRequest, ctx: StageContext) -> FaceScan:
        if self._detector is None:
            raise RuntimeError("the faces stage was not set up")
        detector = self._detector
        span = max(inputs.end - inputs.start, 1e-9)
        fps = ctx.settings.face_sample_fps
        step = 1.0 / fps
        ctx.check_cancelled()
        bounds = (lane_bounds(inputs.media, inputs.start, inputs.end, self._lanes) if self._lanes > 1
                  else [inputs.start, inputs.end])
        lanes = [_Lane([], CutDetector(), detector.size_plan()) for _ in bounds[:-1]]
        expected = max(1, int(span * fps))
        # the lanes together hold one batch's frames (the CPU runner looks at a frame at a time anyway)
        batch = max(1, BATCH_FRAMES // len(lanes))
        lock = threading.Lock()
        stop = threading.Event()  # a lane failed or the job was cancelled: the others end too

        def scan(k: int) -> None:
            lane, a, b = lanes[k], bounds[k], bounds[k + 1]
            first = inputs.start + math.ceil((a - inputs.start) / step - 1e-6) * step  # the window's grid
            times: list[float] = []
            frames: list[np.ndarray] = []
            lumas: list[tuple[np.ndarray, np.ndarray | None]] = []
            changes: list[bool] = []

            def flush() -> None:
                found = detector.detect(np.stack(frames), self.threshold, lane.plan, changes)
                for t, faces, (luma, prev) in zip(times, found, lumas, strict=True):
                    faces = [replace(f, motion=mouth_motion(luma, prev, f)) for f in faces]
                    lane.samples.append(FaceSample(t=t, faces=tuple(faces)))
                with lock:
                    done = sum(len(x.samples) for x in lanes)
                    ctx.progress(min(1.0, done / expected), f"faces: {done} frames sampled")
                times.clear()
                frames.clear()
                lumas.clear()
                changes.clear()
                if stop.is_set():
                    raise JobCancelled("stopped with the other lanes")
                ctx.check_cancelled()

            tail: dict[str, np.ndarray] = {}
            sampled = sample_frames_and_cuts(inputs.media, a, b, fps, lane.cuts, first=first,
                                             seek=a if k else None, threads=1 if len(lanes) > 1 else 0,
                                             tail=tail)
            if len(lanes) == 1:
                # decoding (and the cut signatures) in a thread of its own, a few samples ahead of the
                # detector: the decoder's work overlaps the network's instead of alternating with it
                sampled = read_ahead(sampled, depth=READ_AHEAD, name="clipora-faces-decode")
            try:
                for t, rgb, luma, prev, changed in sampled:
                    if lane.first_luma is None:
                        lane.first_luma, lane.first_had_previous = luma, prev is not None
                    if frames and rgb.shape != frames[0].shape:
                        flush()  # a batch must share one size
                    times.append(t)
                    frames.append(rgb)
                    lumas.append((luma, prev))
                    changes.append(changed)
                    if len(frames) >= batch:
                        flush()
                if frames:
                    flush()
            except BaseException:
                stop.set()
                raise
            lane.last_luma = tail.get("luma")

        if len(lanes) == 1:
            scan(0)
        else:
            with ThreadPoolExecutor(len(lanes), thread_name_prefix="clipora-faces") as pool:
                futures = [pool.submit(scan, k) for k in range(len(lanes))]
                wait(futures, return_when=FIRST_EXCEPTION)
                stop.set()  # (a no-op once every lane is done)
                for f in futures:  # the first lane's own error, not another lane's "stopped"
                    if f.exception() is not None and not isinstance(f.exception(), JobCancelled):
                        raise f.exception()  # type: ignore[misc]
                for f in futures:
                    f.result()
        samples = _joined(lanes)
        cuts = CutDetector()
        for lane in lanes:
            cuts.merge(lane.cuts)
        shots = cuts.shots(inputs.start, inputs.end)
        self.last_cut_cost_s = cuts.cost_s + sum(x.cuts.cost_s for x in lanes)  # what the cuts cost
        self.last_sizes = {}  # frames per detector input size
        for lane in lanes:
            for side, count in (lane.plan.counts.items() if lane.plan is not None else ()):
                self.last_sizes[side] = self.last_sizes.get(side, 0) + count
        self.last_lanes = len(lanes)
        ctx.progress(1.0, f"faces: {len(samples)} frames sampled, {len(shots)} shots")
        return FaceScan(tuple(samples), shots)


def _joined(lanes: list[_Lane]) -> list[FaceSample]:
    """The lanes' samples in time order; a lane's first sample that had no frame before it (its lane
    started on a keyframe) gets its mouth motion from the last frame of the lane before."""
    out: list[FaceSample] = []
    for k, lane in enumerate(lanes):
        samples = lane.samples
        before = lanes[k - 1].last_luma if k else None
        if samples and not lane.first_had_previous and before is not None and lane.first_luma is not None:
            luma = lane.first_luma
            first = samples[0]
            samples = [replace(first, faces=tuple(replace(f, motion=mouth_motion(luma, before, f))
                                                  for f in first.faces)), *samples[1:]]
        out += samples
    return out


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
