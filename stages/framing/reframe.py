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
from dataclasses import dataclass, replace

import numpy as np

from engine.stage import Resources, Stage, StageContext
from engine.types import CropPath, FaceSample, OutputGeometry, Shot, SpeakerLink, Word
from stages.framing.geometry import is_split_aspect
from stages.framing.speakers import (
    SpeakerParams,
    link_solo_speaker,
    link_speakers,
    plan_speaker_path,
    plan_split_path,
)
from stages.framing.tracks import FaceTrack, choose_subject, track_faces
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
    shots: Sequence[Shot] = (),
) -> CropPath:
    """The crop window's left edge for every output frame in [start, end) at ``fps``.

    With ``words`` labelled by two or more speakers and two or more faces whose mouths move
    with them, the camera follows the active speaker (:func:`plan_speaker_path`); with
    ``layout="split"`` on a 9:16 crop and both faces on screen, two panels are planned
    (:func:`plan_split_path`). Otherwise one subject is followed for the whole clip.

    With ``shots`` (the faces stage's, :mod:`stages.framing.shots`) each shot is planned on its
    own (:func:`plan_shots`): a cut is a cut in the path, and a shot may be shown whole ("fit").
    """
    if shots:
        return plan_shots(samples, geometry, fps, start, end, shots, speaking_scores=speaking_scores,
                          params=params, words=words, layout=layout, speaker_params=speaker_params)
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


# -- per shot ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShotParams:
    """When a shot has a reliable face, and when two faces cannot share one crop."""

    #: the subject is seen in at least this share of the shot's face samples ...
    min_presence: float = 0.4
    #: ... and its median face height is at least this share of the source height (smaller:
    #: a wide or crowd shot, shown whole)
    min_face_h: float = 0.07
    #: a second face counts as a speaker of the shot when its presence x size is this share of
    #: the subject's
    second_face: float = 0.5


DEFAULT_SHOTS = ShotParams()


def _face_h(tr: FaceTrack) -> float:
    return float(np.median([b.y2 - b.y1 for _, b in tr.detections]))


def _reliable(tracks: Sequence[FaceTrack], n_samples: int, geometry: OutputGeometry, p: ShotParams
              ) -> list[FaceTrack]:
    """The shot's faces that can carry a crop: seen often enough and big enough, best first."""
    need = max(1, min(2, n_samples), int(np.ceil(p.min_presence * n_samples)))
    ok = [tr for tr in tracks if len(tr.detections) >= need and _face_h(tr) >= p.min_face_h * geometry.src_h]
    return sorted(ok, key=lambda tr: -len(tr.detections) * _face_h(tr))


def _too_far_apart(faces: Sequence[FaceTrack], geometry: OutputGeometry, p: ShotParams) -> bool:
    """Two comparable faces whose boxes do not fit in one crop window together (9:16 only)."""
    if len(faces) < 2 or not is_split_aspect(geometry):
        return False
    a, b = faces[0], faces[1]
    if len(b.detections) * _face_h(b) < p.second_face * len(a.detections) * _face_h(a):
        return False
    left = min(float(np.median([d.x1 for _, d in tr.detections])) for tr in (a, b))
    right = max(float(np.median([d.x2 for _, d in tr.detections])) for tr in (a, b))
    return right - left > geometry.crop_w


def plan_shots(
    samples: Sequence[FaceSample],
    geometry: OutputGeometry,
    fps: float,
    start: float,
    end: float,
    shots: Sequence[Shot],
    *,
    speaking_scores: dict[int, float] | None = None,
    params: TripodParams = DEFAULT_TRIPOD,
    words: Sequence[Word] = (),
    layout: str = "follow",
    speaker_params: SpeakerParams | None = None,
    shot_params: ShotParams = DEFAULT_SHOTS,
) -> CropPath:
    """The clip's camera shot by shot: each shot planned on its own samples and face tracks.

    Face tracks never span a cut (:func:`track_faces` with the cuts); output frame ``k`` belongs
    to the shot of the source frame it shows (the one on screen at ``start + (k + 0.5) / fps``),
    so the path jumps on the cut frame and never pans across a cut; the tripod's confirmation,
    the speaker links and the split decision restart in every shot. Each shot's layout:

    - ``split``: ``layout="split"`` on 9:16 and two faces on screen for most of the shot;
    - ``face``: the active speaker (two linked faces; or the one person talking in the shot, linked
      by whose mouth moves, :func:`link_solo_speaker`, even when two faces are far apart) or the
      tripod on the shot's subject;
    - ``fit`` (crop geometries): no reliable face (:class:`ShotParams`: graphics, slides,
      B-roll, wide crowd shots), or on 9:16 two comparable faces too far apart for one crop
      with no speaker to follow and no split; the render shows the whole frame over a blurred fill;
    - ``full``: a resize or pad geometry (every frame is shown whole anyway).
    """
    n = max(0, int(round((end - start) * fps)))
    tf = start + np.arange(n, dtype=np.float64) / fps
    starts = np.array([s.start for s in shots], dtype=np.float64)
    of_frame = np.clip(np.searchsorted(starts, tf + 0.5 / fps + 1e-6, side="right") - 1, 0, len(shots) - 1)
    zeros = (0.0,) * n
    if geometry.mode != "crop":
        kept = tuple(replace(s, layout="full") for k, s in enumerate(shots) if np.any(of_frame == k))
        return CropPath(fps=fps, start=start, x=zeros, y=zeros, subject="none", shots=kept)
    sp = speaker_params or SpeakerParams()
    tracks = track_faces(samples, cuts=[s.start for s in shots[1:]])
    centre = float(round((geometry.src_w - geometry.crop_w) / 2.0))
    x, y = np.full(n, centre), np.zeros(n)
    x2, y2 = np.zeros(n), np.zeros(n)
    out_shots: list[Shot] = []
    subjects: list[str] = []
    links: list[SpeakerLink] = []
    notes: list[str] = []
    for k, shot in enumerate(shots):
        sel = np.nonzero(of_frame == k)[0]
        if not len(sel):
            continue
        a = float(tf[sel[0]])
        b = a + len(sel) / fps
        lo = shot.start if k > 0 else -np.inf
        hi = shots[k + 1].start if k + 1 < len(shots) else np.inf
        sh_samples = [s for s in samples if lo <= s.t + 1e-6 < hi]
        sh_tracks = [tr for tr in tracks if lo <= tr.start + 1e-6 < hi]
        faces = _reliable(sh_tracks, len(sh_samples), geometry, shot_params)
        got: CropPath | None = None
        kind = "face"
        solo: FaceTrack | None = None
        if faces and len(sh_tracks) >= 2 and words:
            sh_links = link_speakers(sh_tracks, sh_samples, words, a, b, sp)
            if layout == "split" and is_split_aspect(geometry):
                got = plan_split_path(sh_tracks, sh_samples, sh_links, geometry, fps, a, b, params, words=words)
                kind = "split" if got is not None else kind
            if got is None:
                got = plan_speaker_path(sh_tracks, sh_links, words, geometry, fps, a, b, params, sp)
            if got is not None:
                links.extend(got.links)
            elif not sh_links:
                # one person talks in this shot (a wide shot during a turn): follow the face whose
                # mouth moves, even where two faces are too far apart for one crop
                one = link_solo_speaker(sh_tracks, sh_samples, words, a, b, sp)
                solo = next((tr for tr in sh_tracks if one and tr.id == one[0].track), None)
                links.extend(one if solo is not None else ())
        if got is None and solo is not None:
            got = CropPath(fps=fps, start=a, x=tuple(track_x(solo.detections, geometry, tf[sel], params)),
                           y=(0.0,) * len(sel), subject="speakers")
        if got is None and faces and not _too_far_apart(faces, geometry, shot_params):
            subject = choose_subject(faces, b - a, speaking_scores, min_detections=1)
            if subject is not None:
                tfs = tf[sel]
                got = CropPath(fps=fps, start=a, x=tuple(track_x(subject.detections, geometry, tfs, params)),
                               y=(0.0,) * len(sel), subject="face")
        if got is None:
            kind = "fit"
            x[sel] = 0.0
            subjects.append("fit")
            if faces:
                notes.append(f"shot at {a - start:.2f} s: two faces too far apart for one crop; shown whole")
            out_shots.append(Shot(shot.start, shot.end, "fit", score=shot.score))
            continue
        m = min(len(sel), len(got.x))
        x[sel[:m]] = got.x[:m]
        y[sel[:m]] = got.y[:m]
        if kind == "split":
            x2[sel[:m]] = got.x2[:m]
            y2[sel[:m]] = got.y2[:m]
        subjects.append(got.subject)
        out_shots.append(Shot(shot.start, shot.end, kind, got.panel if kind == "split" else (0, 0), shot.score))
    kinds = {s.layout for s in out_shots}
    panels = {s.panel for s in out_shots}
    subject = subjects[0] if len(set(subjects)) == 1 else "shots"
    any_split = "split" in kinds
    panel = panels.pop() if kinds == {"split"} and len(panels) == 1 else (0, 0)
    if subject == "split" and panel == (0, 0):
        subject = "shots"  # split shots with different panel sizes: the render lays out each shot
    return CropPath(fps=fps, start=start, x=tuple(x.tolist()), y=tuple(y.tolist()), subject=subject,
                    x2=tuple(x2.tolist()) if any_split else (), y2=tuple(y2.tolist()) if any_split else (),
                    panel=panel, links=tuple(links), note="; ".join(notes), shots=tuple(out_shots))


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
    #: the window's shots (the faces stage's ``FaceScan.shots``); empty = plan it as one shot
    shots: tuple[Shot, ...] = ()


class ReframeStage(Stage[ReframeRequest, CropPath]):
    """Plans the clip's camera: one crop position per output frame."""

    name = "reframe"
    resources = Resources(cpus=1.0)

    def process(self, inputs: ReframeRequest, ctx: StageContext) -> CropPath:
        path = plan_crop_path(inputs.faces, inputs.geometry, inputs.fps, inputs.start, inputs.end,
                              words=inputs.words, layout=inputs.layout, shots=inputs.shots)
        laid = f", {len(path.shots)} shots ({', '.join(s.layout for s in path.shots)})" if path.shots else ""
        ctx.progress(1.0, f"camera follows {path.subject}{laid}")
        return path
