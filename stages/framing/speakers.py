"""speaker_framing: the camera on whoever is talking, and the split layout. Pure, no I/O.

Speakers are linked to face tracks by mouth motion (:func:`link_speakers`; one speaker alone in a
shot by whose mouth moves while they talk, :func:`link_solo_speaker`); the camera
changes at turns, held >= 1 s, cut when far / eased pan when near (:func:`plan_speaker_path`);
``layout="split"`` on 9:16 plans two stacked panels (:func:`plan_split_path`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.types import CropPath, FaceSample, OutputGeometry, SpeakerLink, Word
from stages.framing.geometry import even_px
from stages.framing.tracks import FaceTrack
from stages.framing.tripod import DEFAULT_TRIPOD, TripodParams, ease_smoothstep, track_x

# -- active speakers -----------------------------------------------------------------------


@dataclass(frozen=True)
class SpeakerParams:
    """How the camera changes speakers (seconds unless said otherwise)."""

    #: the camera stays on a speaker at least this long (and a switch this close to the
    #: clip's end is not made)
    hold_s: float = 1.0
    #: turns shorter than this ("yeah", "right") do not move the camera
    min_turn_s: float = 0.8
    #: switch this long before the new speaker's first word, but never before the previous
    #: speaker's last word ends (so the change falls in the pause)
    lead_s: float = 0.3
    #: a change of more than this many crop widths is a cut; a smaller one an eased pan
    cut_at: float = 0.5
    #: the eased pan's duration
    pan_s: float = 0.6
    #: a speaker is linked to a face only when their correlation reaches this
    min_corr: float = 0.25
    #: speech activity extends this far around each word
    word_pad_s: float = 0.15
    #: a face must be seen in this share of the clip's samples to be a candidate
    min_presence: float = 0.3
    #: one speaker in a shot (:func:`link_solo_speaker`): their face's mouth moves at least this
    #: many times as much as any other face's while they talk ...
    solo_ratio: float = 3.0
    #: ... and at least this much (mean 3-sample running max of the mouth motion, 0-255 luma)
    solo_min: float = 0.1


def speech_turns(words: Sequence[Word], start: float, end: float) -> list[tuple[float, float, str]]:
    """Runs of consecutive same-speaker words inside [start, end): (first start, last end, speaker)."""
    turns: list[tuple[float, float, str]] = []
    for w in words:
        if w.speaker is None or not start <= (w.start + w.end) / 2 < end:
            continue
        if turns and turns[-1][2] == w.speaker:
            turns[-1] = (turns[-1][0], max(turns[-1][1], w.end), w.speaker)
        else:
            turns.append((w.start, w.end, w.speaker))
    return turns


def _activity(words: Sequence[Word], speaker: str, ts: np.ndarray, pad: float) -> np.ndarray:
    act = np.zeros(len(ts))
    for w in words:
        if w.speaker == speaker:
            act[(ts >= w.start - pad) & (ts <= w.end + pad)] = 1.0
    return act


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 4 or a.std() < 1e-9 or b.std() < 1e-9:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def _mouth(tr: FaceTrack) -> tuple[np.ndarray, np.ndarray]:
    """A track's detection times and mouth motion as a 3-sample running max (the pauses between
    syllables do not count as silence); detections without a motion measure are left out."""
    dets = [(t, b.motion) for t, b in tr.detections if b.motion is not None]
    ts = np.array([t for t, _ in dets], dtype=np.float64)
    motion = np.array([m for _, m in dets], dtype=np.float64)
    if len(motion):
        padded = np.concatenate([motion[:1], motion, motion[-1:]])
        motion = np.max(np.stack([padded[:-2], padded[1:-1], padded[2:]]), axis=0)
    return ts, motion


def link_speakers(tracks: Sequence[FaceTrack], samples: Sequence[FaceSample], words: Sequence[Word],
                  start: float, end: float, sp: SpeakerParams) -> tuple[SpeakerLink, ...]:
    """Match speakers to face tracks by how well each face's mouth motion follows their speech.

    Per candidate track (seen in >= ``min_presence`` of the samples) the mouth motion at its
    detections (a 3-sample running max, so the pauses between syllables do not count as
    silence) is correlated with each speaker's activity (1 while one of their words is
    spoken); pairs are taken greedily by correlation, one track per speaker, each at least
    ``min_corr``. Confidence = the correlation.
    """
    n_samples = sum(1 for s in samples if start <= s.t < end) or 1
    speakers = sorted({w.speaker for w in words if w.speaker is not None and start <= (w.start + w.end) / 2 < end})
    if len(speakers) < 2:
        return ()
    pairs: list[tuple[float, str, FaceTrack]] = []
    for tr in tracks:
        ts, motion = _mouth(tr)
        if len(tr.detections) < sp.min_presence * n_samples or len(ts) < 4:
            continue
        for spk in speakers:
            pairs.append((_corr(motion, _activity(words, spk, ts, sp.word_pad_s)), spk, tr))
    pairs.sort(key=lambda p: -p[0])
    links: list[SpeakerLink] = []
    used_s: set[str] = set()
    used_t: set[int] = set()
    for c, spk, tr in pairs:
        if c < sp.min_corr or spk in used_s or tr.id in used_t:
            continue
        used_s.add(spk)
        used_t.add(tr.id)
        face_x = float(np.median([b.cx for _, b in tr.detections]))
        links.append(SpeakerLink(spk, tr.id, round(min(1.0, c), 3), round(face_x, 1)))
    return tuple(sorted(links, key=lambda lk: lk.speaker))


def link_solo_speaker(tracks: Sequence[FaceTrack], samples: Sequence[FaceSample], words: Sequence[Word],
                      start: float, end: float, sp: SpeakerParams) -> tuple[SpeakerLink, ...]:
    """The one speaker of [start, end) (a shot where one person talks: a wide shot during a turn)
    linked to the face whose mouth moves while they talk; () unless exactly one speaker talks.

    With a single speaker there is no turn-taking to correlate with (the activity is one for most of
    the window), so the faces are compared instead: per candidate track (seen in >=
    ``min_presence`` of the samples, >= 4 motion measures) the mean of its mouth motion (3-sample
    running max) at the detections during the speaker's words. The best track is linked when that
    mean is at least ``solo_min`` and ``solo_ratio`` times every other candidate's (a listener's
    mouth is still); else nobody is (the speaker may be off screen). Confidence = 1 - runner-up / best.
    """
    n_samples = sum(1 for s in samples if start <= s.t < end) or 1
    speakers = sorted({w.speaker for w in words if w.speaker is not None and start <= (w.start + w.end) / 2 < end})
    if len(speakers) != 1:
        return ()
    spk = speakers[0]
    scored: list[tuple[float, FaceTrack]] = []
    for tr in tracks:
        ts, motion = _mouth(tr)
        if len(tr.detections) < sp.min_presence * n_samples or len(ts) < 4:
            continue
        on = _activity(words, spk, ts, sp.word_pad_s) > 0
        if on.sum() >= 2:
            scored.append((float(motion[on].mean()), tr))
    if not scored:
        return ()
    scored.sort(key=lambda p: -p[0])
    best, tr = scored[0]
    second = scored[1][0] if len(scored) > 1 else 0.0
    if best < sp.solo_min or best < sp.solo_ratio * second:
        return ()
    face_x = float(np.median([b.cx for _, b in tr.detections]))
    return (SpeakerLink(spk, tr.id, round(1.0 - second / best, 3), round(face_x, 1)),)


def subject_schedule(turns: Sequence[tuple[float, float, str]], links: Sequence[SpeakerLink], start: float,
                     end: float, sp: SpeakerParams) -> list[tuple[float, int]]:
    """When the camera takes which face track: [(from time, track id)], times increasing.

    Starts on the first linked speaker; changes only at a linked speaker's turn of at least
    ``min_turn_s``, ``lead_s`` before its first word (not before the previous turn ended),
    no sooner than ``hold_s`` after the last change and not within ``hold_s`` of the end.
    So it can never oscillate faster than once per ``hold_s``, and at most once per turn.
    """
    track_of = {lk.speaker: lk.track for lk in links}
    schedule: list[tuple[float, int]] = []
    prev_end = start
    for a, b, spk in turns:
        tr = track_of.get(spk)
        if tr is not None:
            if not schedule:
                schedule.append((start, tr))
            elif tr != schedule[-1][1] and b - a >= sp.min_turn_s:
                t = min(a, max(a - sp.lead_s, prev_end))
                t = max(t, schedule[-1][0] + sp.hold_s)
                if t < b - 0.5 * sp.min_turn_s and end - t >= sp.hold_s:
                    schedule.append((t, tr))
        prev_end = max(prev_end, b)
    return schedule


def plan_speaker_path(tracks: Sequence[FaceTrack], links: Sequence[SpeakerLink], words: Sequence[Word],
                      geometry: OutputGeometry, fps: float, start: float, end: float,
                      params: TripodParams = DEFAULT_TRIPOD, sp: SpeakerParams | None = None) -> CropPath | None:
    """The camera on whoever is talking, or None when fewer than two speakers are linked to faces.

    Between changes (see :func:`subject_schedule`) the tripod planner follows the current
    face. At a change the new face's framing is reached by a cut when it is more than
    ``cut_at`` crop widths away (two people apart: a pan across the gap would show nobody),
    else by a ``pan_s`` eased pan.
    """
    sp = sp or SpeakerParams()
    if len({lk.track for lk in links}) < 2:
        return None
    schedule = subject_schedule(speech_turns(words, start, end), links, start, end, sp)
    if not schedule:
        return None
    by_id = {tr.id: tr for tr in tracks}
    n = max(0, int(round((end - start) * fps)))
    tf = start + np.arange(n, dtype=np.float64) / fps
    x = np.zeros(n, dtype=np.float64)
    for k, (t0, tid) in enumerate(schedule):
        t1 = schedule[k + 1][0] if k + 1 < len(schedule) else math.inf
        sel = np.nonzero((tf >= t0) & (tf < t1))[0]
        if not len(sel):
            continue
        dets = by_id[tid].detections
        near = [d for d in dets if t0 - 0.5 <= d[0] < t1]
        if not near:  # not detected during its turn: hold its nearest detection
            near = [min(dets, key=lambda d: abs(d[0] - t0))]
        seg = track_x(near, geometry, tf[sel], params)
        i0 = int(sel[0])
        if i0 > 0 and abs(seg[0] - x[i0 - 1]) <= sp.cut_at * geometry.crop_w:
            ease = ease_smoothstep((tf[sel] - tf[i0]) / sp.pan_s)
            seg = x[i0 - 1] + (seg - x[i0 - 1]) * ease
        x[sel] = seg
    x = np.clip(x, 0.0, float(geometry.src_w - geometry.crop_w))
    return CropPath(fps=fps, start=start, x=tuple(x.tolist()), y=(0.0,) * n, subject="speakers",
                    links=tuple(links))


# -- the split layout (9:16: two speakers stacked) ------------------------------------------


def _presence(track: FaceTrack, samples: Sequence[FaceSample], start: float, end: float) -> float:
    n = sum(1 for s in samples if start <= s.t < end)
    return sum(1 for t, _ in track.detections if start <= t < end) / max(n, 1)


def plan_split_path(tracks: Sequence[FaceTrack], samples: Sequence[FaceSample], links: Sequence[SpeakerLink],
                    geometry: OutputGeometry, fps: float, start: float, end: float,
                    params: TripodParams = DEFAULT_TRIPOD, min_presence: float = 0.7,
                    bottom_face_at: float = 0.75, words: Sequence[Word] = ()) -> CropPath | None:
    """Two panels, the left face on top, each a tripod camera on its face; None unless two faces
    (the linked speakers', else the two most present; with ``words``, of three or more linked
    faces the two who talk longest in [start, end)) are on screen in >= ``min_presence`` of
    the samples.

    Panel windows are 9:8 like the panels; their height is about 2.4 face heights (head and
    shoulders), less when the faces are close so a panel shows little of the other face, at
    least 1.4 face heights and at most the source. The window's top is fixed per panel: the
    top face's centre at 45 % of its panel, the bottom face's at ``bottom_face_at`` (75 %) of
    its panel, so the bottom face sits below the caption band (centred at 70 % of a 9:16
    frame, i.e. 40 % of the bottom panel; the band never reaches the seam at 50 %).
    """
    linked = {lk.track for lk in links}
    talk: dict[int, float] = {}
    for lk in links:
        talk[lk.track] = sum(w.end - w.start for w in words
                             if w.speaker == lk.speaker and start <= (w.start + w.end) / 2 < end)
    cands = [tr for tr in tracks if _presence(tr, samples, start, end) >= min_presence]
    cands.sort(key=lambda tr: (-talk.get(tr.id, 0.0), tr.id not in linked, -_presence(tr, samples, start, end),
                               -float(np.median([b.y2 - b.y1 for _, b in tr.detections]))))
    if len(cands) < 2:
        return None
    pair = sorted(cands[:2], key=lambda tr: float(np.median([b.cx for _, b in tr.detections])))
    face_h = float(np.median([b.y2 - b.y1 for tr in pair for _, b in tr.detections]))
    cxs = [float(np.median([b.cx for _, b in tr.detections])) for tr in pair]
    panel_aspect = geometry.out_w / (geometry.out_h / 2)
    dist = abs(cxs[1] - cxs[0])
    ph = min(2.4 * face_h, dist / panel_aspect)
    ph = min(max(ph, 1.4 * face_h), geometry.src_h, geometry.src_w / panel_aspect)
    ph_i = even_px(ph) if even_px(ph) <= geometry.src_h else geometry.src_h - geometry.src_h % 2
    pw_i = min(even_px(ph_i * panel_aspect), geometry.src_w - geometry.src_w % 2)
    panel_geo = OutputGeometry(geometry.src_w, geometry.src_h, geometry.out_w, geometry.out_h // 2, "crop",
                               pw_i, ph_i)
    n = max(0, int(round((end - start) * fps)))
    tf = start + np.arange(n, dtype=np.float64) / fps
    xs, ys = [], []
    for tr, face_at in zip(pair, (0.45, bottom_face_at), strict=True):
        xs.append(track_x(tr.detections, panel_geo, tf, params))
        cy = float(np.median([b.cy for _, b in tr.detections]))
        top = float(min(max(round((cy - face_at * ph_i) / 2) * 2, 0), geometry.src_h - ph_i))
        ys.append(np.full(n, top))
    return CropPath(fps=fps, start=start, x=tuple(xs[0].tolist()), y=tuple(ys[0].tolist()), subject="split",
                    x2=tuple(xs[1].tolist()), y2=tuple(ys[1].tolist()), panel=(pw_i, ph_i), links=tuple(links))
