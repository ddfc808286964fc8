"""Typed values that flow between stages.

Analysis values (MediaInfo, Transcript, moments, face samples, crop paths) are plain
frozen dataclasses that round-trip through JSON, so the pipeline can cache them per job
and a retried job does not redo finished stages. Times are seconds on the *source*
timeline unless a name says ``clip``-relative.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np


@dataclass(frozen=True, slots=True)
class MediaInfo:
    """What probing learned about a source. Sizes are *display* sizes (after rotation)."""

    path: str
    container: str
    duration: float
    width: int
    height: int
    coded_width: int
    coded_height: int
    rotation: int  # degrees counter-clockwise to apply to decoded frames to get them upright
    fps: float  # average frame rate (the output rate)
    fps_num: int
    fps_den: int
    is_vfr: bool
    video_codec: str
    has_audio: bool
    audio_codec: str | None = None
    audio_sample_rate: int | None = None
    audio_channels: int | None = None
    start_time: float = 0.0  # container start offset, subtracted from stream timestamps


@dataclass(frozen=True, slots=True)
class AudioAnalysis:
    audio: AnalysisAudio | None  # None when the source has no audio stream
    features: AudioFeatures


#: punctuation that ends a sentence (captions break groups there; moments split sentences there)
SENTENCE_END = (".", "?", "!")


@dataclass(frozen=True, slots=True)
class Word:
    start: float
    end: float
    text: str
    probability: float = 1.0
    speaker: str | None = None


@dataclass(frozen=True, slots=True)
class Transcript:
    words: tuple[Word, ...]
    language: str = "en"
    #: seconds of audio that were analysed (the trimmed span)
    audio_duration: float = 0.0
    #: how sure the model was of ``language`` when it detected it (language ``auto`` with a
    #: multilingual model); None when it was not detected (asked for, or an English-only model)
    language_probability: float | None = None

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)

    def words_between(self, start: float, end: float) -> tuple[Word, ...]:
        """Words whose midpoint lies inside [start, end)."""
        return tuple(w for w in self.words if start <= (w.start + w.end) / 2 < end)


@dataclass(frozen=True, slots=True)
class SpeakerTurn:
    """One speaker talking from ``start`` to ``end`` (first word start to last word end)."""

    start: float
    end: float
    speaker: str


@dataclass(frozen=True, slots=True)
class Diarization:
    """Who spoke each word. ``word_speakers`` is aligned with the transcript's words.

    ``available`` is False when no speaker model could run (then every word is unlabelled
    and ``note`` says why); ``quality`` is the clustering's silhouette (0 when one speaker).
    """

    available: bool
    method: str
    speakers: tuple[str, ...] = ()
    turns: tuple[SpeakerTurn, ...] = ()
    word_speakers: tuple[str, ...] = ()
    quality: float = 0.0
    note: str = ""


@dataclass(frozen=True, slots=True)
class HostDecision:
    """Which speaker (if any) is the AI host / interviewer whose turns a clip may drop."""

    interview: bool
    host: str | None
    confidence: float  # 0-1, how sure the host is the host (0 when there is none)
    synthetic: float  # 0-1, how synthetic the host's voice sounds
    features: dict[str, dict[str, float]]  # per speaker: share, questions, turn_s, pitch_st, ...
    reason: str = ""


@dataclass(frozen=True, slots=True)
class AnalysisAudio:
    """The trimmed source audio as 16 kHz mono float32, stored as .npy under the job workdir."""

    path: str
    start: float  # source time of sample 0
    sample_rate: int
    duration: float


@dataclass(frozen=True, slots=True)
class AudioFeatures:
    """Speech energy over the analysed span: RMS in dBFS every ``hop`` seconds from ``start``."""

    start: float
    hop: float
    rms_db: tuple[float, ...]

    def speech_level(self, t0: float | None = None, t1: float | None = None) -> float:
        """Loudness of the speech in [t0, t1) (75th percentile of dB), ignoring pauses."""
        if not self.rms_db:
            return -90.0
        i0 = 0 if t0 is None else max(0, int((t0 - self.start) / self.hop))
        i1 = len(self.rms_db) if t1 is None else min(len(self.rms_db), int((t1 - self.start) / self.hop))
        seg = self.rms_db[i0 : max(i1, i0 + 1)]
        return float(np.percentile(seg, 75)) if seg else -90.0


@dataclass(frozen=True, slots=True)
class ClipMetadata:
    title: str
    viral_hook: str
    key_insight: str
    dominant_emotion: str
    hashtags: tuple[str, ...]
    viral_score: float


@dataclass(frozen=True, slots=True)
class Moment:
    """One chosen clip window, with the evidence for its score."""

    start: float
    end: float
    score: float  # 0-10
    reasons: dict[str, float]
    metadata: ClipMetadata
    provider: str = "local"

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class MomentSelection:
    moments: tuple[Moment, ...]
    requested: int
    notes: tuple[str, ...] = ()
    #: the genre the moments were chosen for (as asked, or detected when the job said "auto")
    genre: str = ""


@dataclass(frozen=True, slots=True)
class FaceBox:
    """A detected face in source display pixels."""

    x1: float
    y1: float
    x2: float
    y2: float
    score: float
    #: mouth-region motion energy in this frame (mean |luma change| since the previous frame
    #: in the lower face, less the upper face's as head-motion compensation); None = not measured
    motion: float | None = None

    @property
    def cx(self) -> float:
        return (self.x1 + self.x2) / 2

    @property
    def cy(self) -> float:
        return (self.y1 + self.y2) / 2

    @property
    def area(self) -> float:
        return max(0.0, self.x2 - self.x1) * max(0.0, self.y2 - self.y1)


@dataclass(frozen=True, slots=True)
class FaceSample:
    """Faces found in the frame shown at source time ``t``."""

    t: float
    faces: tuple[FaceBox, ...]


@dataclass(frozen=True, slots=True)
class Shot:
    """One shot of a clip window: the source frames from one cut to the next (source seconds).

    ``start`` is the source time of the shot's first frame (the cut frame), ``end`` that of the
    next shot's first frame (or the window's end). ``layout`` is how the reframe stage shows it:
    "face" (a crop on a face), "split" (two stacked panels), "fit" (the whole frame over a
    blurred fill), "full" (a resize/pad geometry shows every frame whole); empty in the faces
    stage's result. ``panel``: a split shot's window size (source px).
    """

    start: float
    end: float
    layout: str = ""
    panel: tuple[int, int] = (0, 0)
    #: the cut's strength (the detector's score at ``start``; 0 for the window's first shot)
    score: float = 0.0


@dataclass(frozen=True, slots=True)
class FaceScan:
    """The faces stage's result: face samples over the clip window and the window's shots.

    It iterates, indexes and counts like its ``samples`` (the tuple the stage returned before
    shots existed), so code that only needs the samples can take either.
    """

    samples: tuple[FaceSample, ...]
    shots: tuple[Shot, ...] = ()

    def __iter__(self):
        return iter(self.samples)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i):
        return self.samples[i]

    @property
    def cuts(self) -> tuple[float, ...]:
        """Source times of the cut frames (every shot's start but the first)."""
        return tuple(s.start for s in self.shots[1:])


def shot_index(shots: tuple[Shot, ...] | list[Shot], t: float) -> int:
    """The index of the shot that the source frame at time ``t`` belongs to (0 without shots)."""
    k = 0
    for i, s in enumerate(shots):
        if s.start <= t + 1e-6:
            k = i
        else:
            break
    return k


GeometryMode = Literal["resize", "crop", "pad", "split"]


@dataclass(frozen=True, slots=True)
class OutputGeometry:
    """How a source frame becomes an output frame.

    ``crop``: a window ``crop_w`` x ``crop_h`` of the source slides horizontally and is
    scaled to ``out_w`` x ``out_h``. ``pad``: the whole source is fitted inside the output
    over a blurred fill. ``resize``: same aspect, straight scale. ``split`` (the 9:16
    two-speaker layout): two windows ``crop_w`` x ``crop_h`` (the crop path's ``x, y`` and
    ``x2, y2``) are scaled to the top and bottom halves, ``out_w`` x ``out_h / 2`` each.
    """

    src_w: int
    src_h: int
    out_w: int
    out_h: int
    mode: GeometryMode
    crop_w: int
    crop_h: int


@dataclass(frozen=True, slots=True)
class SpeakerLink:
    """A diarized speaker matched to a face track of one clip (active-speaker framing).

    ``confidence`` is the correlation (0-1) of the track's mouth motion with the speaker's
    speech; ``face_x`` the track's median face centre (source px), to say which face it is.
    """

    speaker: str
    track: int
    confidence: float
    face_x: float


@dataclass(frozen=True, slots=True)
class CropPath:
    """Left edge of the crop window per output frame (source pixels), plus the subject's track."""

    fps: float
    start: float  # source time of output frame 0
    x: tuple[float, ...]  # crop left edge per output frame
    y: tuple[float, ...]  # crop top edge per output frame
    #: "face" (one subject), "center", "none", "speakers" (follows the active speaker),
    #: "split" (two panels: ``x2``/``y2`` are the bottom panel's window)
    subject: str = "none"
    x2: tuple[float, ...] = ()
    y2: tuple[float, ...] = ()
    #: split layout: the panel window's size in source px (width, height)
    panel: tuple[int, int] = (0, 0)
    #: speakers linked to face tracks (empty when the camera follows one subject)
    links: tuple[SpeakerLink, ...] = ()
    #: why the framing is what it is (e.g. split fell back to follow)
    note: str = ""
    #: the window's shots with the layout each got (source times); empty = one shot, laid out by
    #: ``subject``. The render shows a source frame by the layout of the shot it belongs to.
    shots: tuple[Shot, ...] = ()

    def shot_at(self, t: float) -> Shot | None:
        """The shot the source frame at time ``t`` belongs to, or None without shots."""
        if not self.shots:
            return None
        return self.shots[shot_index(self.shots, t)]

    def at_frame(self, i: int) -> tuple[float, float]:
        if not self.x:
            return 0.0, 0.0
        i = min(max(i, 0), len(self.x) - 1)
        return self.x[i], self.y[i]

    def at_frame2(self, i: int) -> tuple[float, float]:
        """The bottom panel's window (split layout)."""
        if not self.x2:
            return 0.0, 0.0
        i = min(max(i, 0), len(self.x2) - 1)
        return self.x2[i], self.y2[i]


@dataclass(frozen=True, slots=True)
class ClipPlan:
    """One clip as the analysis decided it: all a worker needs, with the job's plan, to make it.

    ``segments`` are the kept source spans when speech was spliced out (else empty, and the clip
    plays ``moment.start``-``moment.end``). ``words`` are the caption words on the clip's own
    timeline when spliced, else on the source timeline between ``caption_start`` and
    ``caption_end``; ``speaker_words`` are the window's speaker-labelled words (active-speaker
    framing), empty without diarization.
    """

    index: int
    moment: Moment
    segments: tuple[tuple[float, float], ...]
    words: tuple[Word, ...]
    caption_start: float
    caption_end: float
    speaker_words: tuple[Word, ...] = ()

    @property
    def spliced(self) -> bool:
        return bool(self.segments)


@dataclass(frozen=True, slots=True)
class JobPlan:
    """What the analysis phase ends in: the job's clips, and what finalizing needs to describe them."""

    job_id: str
    media: MediaInfo
    options: dict[str, Any]  # ProcessOptions.to_json()
    span: tuple[float, float]
    geometry: OutputGeometry
    fps: float
    clips: tuple[ClipPlan, ...]
    selection: MomentSelection  # the moments kept (a spliced moment with nothing left is dropped)
    transcript: Transcript  # speaker-labelled
    speakers: dict[str, Any] | None = None  # the manifest's interview analysis
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ClipResult:
    """What one finished clip unit left: its files (names in its work folder) and its facts."""

    index: int
    duration: float  # as rendered
    files: tuple[str, ...]
    framing: dict[str, Any] = field(default_factory=dict)
    segments: tuple[tuple[float, float], ...] = ()
    #: the rendered framing as the manifest's cropPath keyframes (``{"t", "x", "y", "w", "h"}``,
    #: clip seconds and source px; stages.output.croppath)
    crop_path: tuple[dict[str, Any], ...] = ()


@dataclass(slots=True)
class FrameBatch:
    """A bounded batch of frames between render stages (DESIGN.md section 3).

    ``format == "rgb24"``: ``planes`` is one array ``(N, H, W, 3) uint8``.
    ``format == "yuv420p"``: ``planes`` is ``(Y (N,H,W), U (N,H/2,W/2), V (N,H/2,W/2))``.
    ``format == "nv12"`` (the CUDA backend, CuPy arrays): ``planes`` is ``(Y (N,H,W), UV (N,H/2,W))``,
    U and V interleaved as NVDEC hands them out (:mod:`kernels.nv12`).
    Code that handles a batch takes its array module from the array (NumPy or CuPy).
    A CPU decoder may hand over ``planes`` as per-frame sequences (N views of its own frame
    buffers) instead of stacked arrays, so that nothing is copied before the crop; consumers
    index ``planes[p][i]``, which works for both.
    """

    format: Literal["rgb24", "yuv420p", "nv12"]
    planes: tuple[Any, ...]
    pts: np.ndarray  # source time of each frame, seconds, float64
    index: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # output frame numbers
    #: for "yuv420p": the contiguous I420 frames (N, H*3/2, W) that ``planes`` are views of,
    #: when the batch was built that way (the encoder then takes each frame without a copy)
    packed: Any = None
    #: encoder-ready frames (e.g. PyAV VideoFrames) whose own buffers ``planes`` are views of:
    #: the framing writes straight into them and the encoder takes them without a copy
    frames: Any = None

    def __len__(self) -> int:
        return int(self.pts.shape[0])


# -- JSON round-trip for cached analysis -------------------------------------------------

_JSON_TYPES: dict[str, type] = {
    t.__name__: t
    for t in (
        MediaInfo,
        Word,
        Transcript,
        SpeakerTurn,
        Diarization,
        HostDecision,
        AnalysisAudio,
        AudioFeatures,
        AudioAnalysis,
        ClipMetadata,
        Moment,
        MomentSelection,
        FaceBox,
        FaceSample,
        Shot,
        FaceScan,
        OutputGeometry,
        SpeakerLink,
        CropPath,
        ClipPlan,
        JobPlan,
        ClipResult,
    )
}


def to_jsonable(value: Any) -> Any:
    """Encode analysis dataclasses (nested, in tuples/lists/dicts) as tagged JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {"__type__": type(value).__name__}
        for f in dataclasses.fields(value):
            out[f.name] = to_jsonable(getattr(value, f.name))
        return out
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value


def from_jsonable(value: Any) -> Any:
    """Inverse of :func:`to_jsonable`; lists become tuples inside dataclasses."""
    if isinstance(value, dict):
        tag = value.get("__type__")
        if tag is not None:
            cls = _JSON_TYPES[tag]
            kwargs = {}
            for f in dataclasses.fields(cls):
                if f.name in value:
                    v = from_jsonable(value[f.name])
                    kwargs[f.name] = tuple(v) if isinstance(v, list) else v
            return cls(**kwargs)
        return {k: from_jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_jsonable(v) for v in value]
    return value
