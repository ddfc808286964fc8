"""reframe: the clip's face-aware crop path and the reframe stage. Pure, no I/O.

Single subject: the tripod camera of :mod:`stages.framing.tripod` on the track chosen by
:mod:`stages.framing.tracks`; output geometry lives in :mod:`stages.framing.geometry`.

Guarantees of :func:`plan_crop_path` in crop mode (``p`` = :class:`TripodParams`):

- every x lies in ``[0, src_w - crop_w]``; exactly ``round((end - start) * fps)`` frames;
- per-frame speed ``|x[i+1] - x[i]| <= max_speed_px_per_frame(geometry, fps, p)``
  ``= 1.5 * p.cruise_speed * crop_w / fps`` (smoothstep peaks at 1.5x a move's mean speed,
  a move's mean speed is at most ``cruise_speed * crop_w`` px/s, and moves never overlap);
- the camera is placed on the subject's first (median-filtered) detection and only moves
  when a detection lies more than ``safe_zone / 2 * crop_w`` from the window centre for
  ``>= 2`` consecutive samples (~``confirm_s``): a static face with detection noise below
  that margin (81 px for a 1280x720 source cropped to 9:16) gives ``dx == 0`` on every
  frame, from the first frame on.

With two or more faces and speaker-labelled words, :func:`plan_crop_path` follows the active
speaker instead (speakers linked to faces by mouth motion, :func:`link_speakers`; changes
at turns, held >= 1 s, cut when far / eased pan when near, :func:`plan_speaker_path`), or
for ``layout="split"`` on 9:16 plans two stacked panels (:func:`plan_split_path`). With one
face, one speaker or no links it is exactly the single-subject tripod (:mod:`stages.framing.tripod`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.stage import Resources, Stage, StageContext
from engine.types import CropPath, FaceSample, OutputGeometry, Word
from stages.framing.geometry import is_split_aspect
from stages.framing.speakers import SpeakerParams, link_speakers, plan_speaker_path, plan_split_path
from stages.framing.tracks import choose_subject, track_faces
from stages.framing.tripod import DEFAULT_TRIPOD, TripodParams, track_x


def plan_crop_path(
    samples: Sequence[FaceSample],
    geometry: OutputGeometry,
    fps: float,
    start: float,
    end: float,
    *,
    speaking_scores: dict[int, float] | None = None,
    params: TripodParams = DEFAULT_TRIPOD,
    words: Sequence[Word] = (),
    layout: str = "follow",
    speaker_params: SpeakerParams | None = None,
) -> CropPath:
    """The crop window's left edge for every output frame in [start, end) at ``fps``.

    With ``words`` labelled by two or more speakers and two or more faces whose mouths move
    with them, the camera follows the active speaker (:func:`plan_speaker_path`); with
    ``layout="split"`` on a 9:16 crop and both faces on screen, two panels are planned
    (:func:`plan_split_path`). Otherwise one subject is followed for the whole clip.
    """
    n = max(0, int(round((end - start) * fps)))
    zeros = (0.0,) * n
    if geometry.mode != "crop":
        return CropPath(fps=fps, start=start, x=zeros, y=zeros, subject="none")
    tracks = track_faces(samples)
    sp = speaker_params or SpeakerParams()
    note = ""
    if len(tracks) >= 2 and words:
        links = link_speakers(tracks, samples, words, start, end, sp)
        if layout == "split":
            if not is_split_aspect(geometry):
                note = "split needs a 9:16 output; following the active speaker instead"
            else:
                split = plan_split_path(tracks, samples, links, geometry, fps, start, end, params)
                if split is not None:
                    return split
                note = "split needs two faces on screen for most of the clip; following the active speaker"
        path = plan_speaker_path(tracks, links, words, geometry, fps, start, end, params, sp)
        if path is not None:
            return path if not note else _with_note(path, note)
    centre = float(round((geometry.src_w - geometry.crop_w) / 2.0))
    subject = choose_subject(tracks, end - start, speaking_scores)
    if subject is None:
        return CropPath(fps=fps, start=start, x=(centre,) * n, y=zeros, subject="center", note=note)
    tf = start + np.arange(n, dtype=np.float64) / fps
    x = track_x(subject.detections, geometry, tf, params)
    return CropPath(fps=fps, start=start, x=tuple(x.tolist()), y=zeros, subject="face", note=note)


def _with_note(path: CropPath, note: str) -> CropPath:
    return CropPath(path.fps, path.start, path.x, path.y, path.subject, path.x2, path.y2, path.panel,
                    path.links, note)


@dataclass(frozen=True)
class ReframeRequest:
    faces: tuple[FaceSample, ...]
    geometry: OutputGeometry
    fps: float
    start: float
    end: float
    #: the window's words with their speakers (active-speaker framing); empty = one subject
    words: tuple[Word, ...] = ()
    layout: str = "follow"


class ReframeStage(Stage[ReframeRequest, CropPath]):
    """Plans the clip's camera: one crop position per output frame."""

    name = "reframe"
    resources = Resources(cpus=1.0)

    def process(self, inputs: ReframeRequest, ctx: StageContext) -> CropPath:
        path = plan_crop_path(inputs.faces, inputs.geometry, inputs.fps, inputs.start, inputs.end,
                              words=inputs.words, layout=inputs.layout)
        ctx.progress(1.0, f"camera follows {path.subject}")
        return path
