"""reframe: output geometry and the face-aware crop path ("tripod camera"). Pure, no I/O.

The planner behaves like an operator on a tripod: the crop window holds still while the
subject's face stays inside a central safe zone, and only when the face has left that
zone for a few consecutive samples does it make one eased move to re-centre it. Because
the whole clip's samples are known in advance, a confirmed move is started back at the
moment the face crossed the safe-zone edge and aimed at where the face will be when the
move ends, so a confirmation delay never leaves the face stranded at the border.

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
face, one speaker or no links it is exactly the single-subject tripod above.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.options import OUTPUT_SIZES
from engine.stage import Stage, StageContext
from engine.types import CropPath, FaceBox, FaceSample, OutputGeometry, SpeakerLink, Word

# -- geometry ------------------------------------------------------------------------------

_ASPECT_TOLERANCE = 0.01


def _even(v: float) -> int:
    return max(2, int(math.floor(v / 2.0 + 0.5)) * 2)


def output_geometry(src_w: int, src_h: int, aspect_ratio: str) -> OutputGeometry:
    """How a ``src_w`` x ``src_h`` source becomes an ``aspect_ratio`` output frame."""
    if aspect_ratio not in OUTPUT_SIZES:
        raise ValueError(f"unknown aspect ratio {aspect_ratio!r}")
    large, small = OUTPUT_SIZES[aspect_ratio]
    out_w, out_h = large if min(src_w, src_h) >= 1080 else small
    target = out_w / out_h
    source = src_w / src_h
    if abs(source / target - 1.0) <= _ASPECT_TOLERANCE:
        return OutputGeometry(src_w, src_h, out_w, out_h, "resize", src_w, src_h)
    if source > target:
        # even sizes keep 4:2:0 chroma planes aligned with the luma crop
        crop_h = src_h - (src_h % 2)
        crop_w = min(_even(crop_h * target), src_w - (src_w % 2))
        return OutputGeometry(src_w, src_h, out_w, out_h, "crop", crop_w, crop_h)
    return OutputGeometry(src_w, src_h, out_w, out_h, "pad", src_w, src_h)


# -- tracking ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FaceTrack:
    """One face followed over time: detections as (source time, box), in time order."""

    id: int
    detections: tuple[tuple[float, FaceBox], ...]

    @property
    def start(self) -> float:
        return self.detections[0][0]

    @property
    def end(self) -> float:
        return self.detections[-1][0]

    @property
    def last(self) -> FaceBox:
        return self.detections[-1][1]


def iou(a: FaceBox, b: FaceBox) -> float:
    iw = min(a.x2, b.x2) - max(a.x1, b.x1)
    ih = min(a.y2, b.y2) - max(a.y1, b.y1)
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return inter / max(a.area + b.area - inter, 1e-9)


def _match_cost(prev: FaceBox, box: FaceBox, dt: float, max_dist: float) -> float | None:
    """Lower is better; None when the two boxes cannot be the same face.

    The reach grows with the time between the detections (a face moves about a face
    width in a quarter second when someone walks), capped at ``max_dist`` face sizes.
    """
    size = max(prev.x2 - prev.x1, prev.y2 - prev.y1, 1.0)
    dist = math.hypot(box.cx - prev.cx, box.cy - prev.cy) / size
    ratio = max(box.area, 1.0) / max(prev.area, 1.0)
    overlap = iou(prev, box)
    reach = min(max_dist, 1.0 + 3.0 * max(dt, 0.0))
    if overlap < 0.1 and dist > reach or not 0.25 <= ratio <= 4.0:
        return None
    return (1.0 - overlap) + dist


def track_faces(
    samples: Sequence[FaceSample],
    max_gap: float = 1.0,
    max_dist: float = 2.5,
    stitch_gap: float = 3.0,
) -> list[FaceTrack]:
    """Link detections into tracks by greedy IoU / centre-distance association.

    A track survives ``max_gap`` seconds of missed detections; ``max_dist`` is the largest
    centre move between linked detections, in face sizes (less for closer samples).
    Afterwards, fragments of one face split by a longer gap (up to ``stitch_gap`` s, e.g.
    a head turn) are joined when the later one starts where the earlier one ended.
    """
    open_tracks: list[list[tuple[float, FaceBox]]] = []
    closed: list[list[tuple[float, FaceBox]]] = []
    for sample in sorted(samples, key=lambda s: s.t):
        alive: list[list[tuple[float, FaceBox]]] = []
        for tr in open_tracks:
            (closed if sample.t - tr[-1][0] > max_gap else alive).append(tr)
        open_tracks = alive
        pairs = []
        for ti, tr in enumerate(open_tracks):
            for fi, box in enumerate(sample.faces):
                cost = _match_cost(tr[-1][1], box, sample.t - tr[-1][0], max_dist)
                if cost is not None:
                    pairs.append((cost, ti, fi))
        pairs.sort()
        used_t: set[int] = set()
        used_f: set[int] = set()
        for _, ti, fi in pairs:
            if ti in used_t or fi in used_f:
                continue
            used_t.add(ti)
            used_f.add(fi)
            open_tracks[ti].append((sample.t, sample.faces[fi]))
        for fi, box in enumerate(sample.faces):
            if fi not in used_f:
                open_tracks.append([(sample.t, box)])
    fragments = sorted(closed + open_tracks, key=lambda tr: tr[0][0])
    return [FaceTrack(i, tuple(tr)) for i, tr in enumerate(_stitch(fragments, stitch_gap))]


def _stitch(
    fragments: list[list[tuple[float, FaceBox]]], stitch_gap: float
) -> list[list[tuple[float, FaceBox]]]:
    merged: list[list[tuple[float, FaceBox]]] = []
    for frag in fragments:
        best, best_cost = None, math.inf
        for tr in merged:
            gap = frag[0][0] - tr[-1][0]
            if gap <= 0 or gap > stitch_gap:
                continue
            cost = _match_cost(tr[-1][1], frag[0][1], 0.0, 1.0)
            if cost is not None and cost < best_cost:
                best, best_cost = tr, cost
        if best is None:
            merged.append(list(frag))
        else:
            best.extend(frag)
    return merged


def choose_subject(
    tracks: Sequence[FaceTrack],
    duration: float,
    speaking_scores: dict[int, float] | None = None,
    min_detections: int = 2,
    bridge: float = 1.0,
) -> FaceTrack | None:
    """The clip's one subject: the track with the most presence x size.

    Presence is the time the track covers (gaps of up to ``bridge`` seconds, i.e. missed
    detections, count as present); size is its median face size. So a larger face wins
    over a smaller one seen as long, and detector dropouts do not hand the clip to
    someone else. ``speaking_scores`` (track id -> [0, 1]) is the seam for active-speaker
    detection: it multiplies a track's weight by ``1 + 2 * score``. The subject is chosen
    once for the whole clip, so the camera can never oscillate between two faces. Tracks
    with fewer than ``min_detections`` detections (stray false positives) are ignored.
    """
    best: FaceTrack | None = None
    best_weight = 0.0
    for tr in tracks:
        if len(tr.detections) < min_detections:
            continue
        ts = np.array([t for t, _ in tr.detections])
        steps = np.diff(ts)
        unit = float(np.median(steps)) if len(steps) else 0.0
        presence = float(np.minimum(steps, bridge).sum()) + min(unit, bridge)
        if duration > 0:
            presence = min(presence, duration)
        size = float(np.median([max(b.y2 - b.y1, b.x2 - b.x1) for _, b in tr.detections]))
        weight = presence * size
        if speaking_scores:
            weight *= 1.0 + 2.0 * float(speaking_scores.get(tr.id, 0.0))
        if weight > best_weight:
            best, best_weight = tr, weight
    return best


# -- the tripod planner --------------------------------------------------------------------


@dataclass(frozen=True)
class TripodParams:
    """Tuning of the tripod camera; fractions are of the crop width."""

    #: central fraction of the crop width the face may roam without moving the camera
    safe_zone: float = 0.4
    #: the face must stay outside the safe zone this long (and >= 2 samples) to move
    confirm_s: float = 0.5
    #: a move's mean speed is at most this many crop widths per second
    cruise_speed: float = 0.8
    #: shortest move, seconds (short hops are slow and gentle, not twitchy)
    min_move_s: float = 0.6
    #: re-centring moves shorter than this are not made
    min_move: float = 0.08
    #: lead the framing by this many seconds of the face's own motion ...
    lead_s: float = 0.3
    #: ... but by no more than this
    max_lead: float = 0.1
    #: detections further apart than this (s) are not interpolated across: hold instead
    hold_gap: float = 1.0


DEFAULT_TRIPOD = TripodParams()


def max_speed_px_per_frame(
    geometry: OutputGeometry, fps: float, params: TripodParams = DEFAULT_TRIPOD
) -> float:
    """The bound :func:`plan_crop_path` guarantees on ``|x[i+1] - x[i]|`` (source px)."""
    if geometry.mode != "crop":
        return 0.0
    # smoothstep's steepest slope is 1.5x its mean slope
    return 1.5 * params.cruise_speed * geometry.crop_w / fps


def _smoothstep(s: np.ndarray) -> np.ndarray:
    s = np.clip(s, 0.0, 1.0)
    return s * s * (3.0 - 2.0 * s)


class _Signal:
    """The subject's face centre x over time: linear between close detections, else held."""

    def __init__(self, ts: np.ndarray, cs: np.ndarray, hold_gap: float) -> None:
        self.ts, self.cs, self.hold_gap = ts, cs, hold_gap

    def at(self, t: float) -> float:
        ts, cs = self.ts, self.cs
        i = int(np.searchsorted(ts, t, side="right")) - 1
        if i < 0:
            return float(cs[0])
        if i >= len(ts) - 1:
            return float(cs[-1])
        gap = ts[i + 1] - ts[i]
        if gap > self.hold_gap:
            return float(cs[i])
        return float(cs[i] + (cs[i + 1] - cs[i]) * (t - ts[i]) / gap)


def _median3(v: np.ndarray) -> np.ndarray:
    """Remove single-sample outliers (a jittery box) while keeping steps and ramps."""
    if len(v) < 3:
        return v.copy()
    padded = np.concatenate([v[:1], v, v[-1:]])
    return np.median(np.stack([padded[:-2], padded[1:-1], padded[2:]]), axis=0)


Move = tuple[float, float, float, float]  # t0, t1, x_from, x_to


def _plan_moves(
    sig: _Signal, geometry: OutputGeometry, p: TripodParams
) -> tuple[float, list[Move]]:
    """Initial crop left edge and the camera moves, decided at the subject's detections."""
    crop_w = geometry.crop_w
    half, safe_half = crop_w / 2.0, p.safe_zone * crop_w / 2.0
    max_x = float(geometry.src_w - crop_w)
    cruise = p.cruise_speed * crop_w

    def clamp(x: float) -> float:
        return float(min(max(round(x), 0.0), max_x))

    ts, cs = sig.ts, sig.cs
    step = float(np.median(np.diff(ts))) if len(ts) > 1 else 0.25
    confirm_n = max(2, int(round(p.confirm_s / max(step, 1e-3))))
    cam = clamp(cs[0] - half)
    moves: list[Move] = []
    busy_until = -math.inf
    run, side, first_k = 0, 0, 0
    for k in range(len(ts)):
        if ts[k] < busy_until:
            run = 0
            continue
        off = cs[k] - (cam + half)
        s = 1 if off > safe_half else (-1 if off < -safe_half else 0)
        if s == 0:
            run = 0
            continue
        if run == 0 or s != side:
            side, run, first_k = s, 0, k
        run += 1
        # The clip's last sample cannot wait for confirmation; a face that is visibly
        # travelling out (not a one-sample blip) is confirmed one sample early there.
        at_end = k == len(ts) - 1 and first_k > 0 and run >= confirm_n - 1
        travelling = at_end and (cs[first_k] - cs[first_k - 1]) * side > 0.02 * crop_w
        if run < confirm_n and not travelling:
            continue
        run = 0
        # Offline planning: start the move when the face actually crossed the edge.
        t0 = float(ts[first_k])
        edge = cam + half + side * safe_half
        if first_k > 0 and ts[first_k - 1] >= busy_until and t0 - ts[first_k - 1] <= p.hold_gap:
            c_prev, c_out = cs[first_k - 1], cs[first_k]
            if (edge - c_prev) * side > 0:  # the previous sample was inside: interpolate
                frac = float(np.clip((edge - c_prev) / (c_out - c_prev), 0.0, 1.0))
                t0 = float(ts[first_k - 1] + frac * (t0 - ts[first_k - 1]))
        t0 = max(t0, busy_until)
        # Aim where the face will be when the move ends (a fixed point of duration/goal).
        goal, dur = cam, p.min_move_s
        for _ in range(12):
            t1 = t0 + dur
            w0 = max(t1 - 0.5, float(ts[first_k]))
            vel = (sig.at(t1) - sig.at(w0)) / (t1 - w0) if t1 - w0 >= 0.2 else 0.0
            lead = float(np.clip(vel * p.lead_s, -p.max_lead * crop_w, p.max_lead * crop_w))
            goal = clamp(sig.at(t1) + lead - half)
            dur = max(p.min_move_s, abs(goal - cam) / cruise)
        if abs(goal - cam) < p.min_move * crop_w:
            continue  # a small correction, or the frame edge blocks the move
        moves.append((t0, t0 + dur, cam, goal))
        cam, busy_until = goal, t0 + dur
    return clamp(cs[0] - half), moves


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
    x = _track_x(subject.detections, geometry, tf, params)
    return CropPath(fps=fps, start=start, x=tuple(x.tolist()), y=zeros, subject="face", note=note)


def _with_note(path: CropPath, note: str) -> CropPath:
    return CropPath(path.fps, path.start, path.x, path.y, path.subject, path.x2, path.y2, path.panel,
                    path.links, note)


def _track_x(detections: Sequence[tuple[float, FaceBox]], geometry: OutputGeometry, tf: np.ndarray,
             params: TripodParams) -> np.ndarray:
    """The tripod camera on one face's detections, evaluated at output times ``tf``."""
    ts = np.array([t for t, _ in detections], dtype=np.float64)
    cs = _median3(np.array([b.cx for _, b in detections], dtype=np.float64))
    x0, moves = _plan_moves(_Signal(ts, cs, params.hold_gap), geometry, params)
    x = np.full(len(tf), x0, dtype=np.float64)
    for t0, t1, a, b in moves:
        sel = tf >= t0
        x[sel] = a + (b - a) * _smoothstep((tf[sel] - t0) / (t1 - t0))
    return np.clip(x, 0.0, float(geometry.src_w - geometry.crop_w))


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
        dets = [(t, b.motion) for t, b in tr.detections if b.motion is not None]
        if len(tr.detections) < sp.min_presence * n_samples or len(dets) < 4:
            continue
        ts = np.array([t for t, _ in dets])
        motion = np.array([m for _, m in dets], dtype=np.float64)
        padded = np.concatenate([motion[:1], motion, motion[-1:]])
        motion = np.max(np.stack([padded[:-2], padded[1:-1], padded[2:]]), axis=0)
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
        seg = _track_x(near, geometry, tf[sel], params)
        i0 = int(sel[0])
        if i0 > 0 and abs(seg[0] - x[i0 - 1]) <= sp.cut_at * geometry.crop_w:
            ease = _smoothstep((tf[sel] - tf[i0]) / sp.pan_s)
            seg = x[i0 - 1] + (seg - x[i0 - 1]) * ease
        x[sel] = seg
    x = np.clip(x, 0.0, float(geometry.src_w - geometry.crop_w))
    return CropPath(fps=fps, start=start, x=tuple(x.tolist()), y=(0.0,) * n, subject="speakers",
                    links=tuple(links))


# -- the split layout (9:16: two speakers stacked) ------------------------------------------


def is_split_aspect(geometry: OutputGeometry) -> bool:
    """Split is made for 9:16 outputs (each panel 9:8) cropped from a wider source."""
    return geometry.mode == "crop" and abs(geometry.out_w / geometry.out_h - 9 / 16) < 0.01


def _presence(track: FaceTrack, samples: Sequence[FaceSample], start: float, end: float) -> float:
    n = sum(1 for s in samples if start <= s.t < end)
    return sum(1 for t, _ in track.detections if start <= t < end) / max(n, 1)


def plan_split_path(tracks: Sequence[FaceTrack], samples: Sequence[FaceSample], links: Sequence[SpeakerLink],
                    geometry: OutputGeometry, fps: float, start: float, end: float,
                    params: TripodParams = DEFAULT_TRIPOD, min_presence: float = 0.7,
                    bottom_face_at: float = 0.75) -> CropPath | None:
    """Two panels, the left face on top, each a tripod camera on its face; None unless two faces
    (the linked speakers', else the two most present) are on screen in >= ``min_presence`` of
    the samples.

    Panel windows are 9:8 like the panels; their height is about 2.4 face heights (head and
    shoulders), less when the faces are close so a panel shows little of the other face, at
    least 1.4 face heights and at most the source. The window's top is fixed per panel: the
    top face's centre at 45 % of its panel, the bottom face's at ``bottom_face_at`` (75 %) of
    its panel, so the bottom face sits below the caption band (centred at 70 % of a 9:16
    frame, i.e. 40 % of the bottom panel; the band never reaches the seam at 50 %).
    """
    linked = {lk.track for lk in links}
    cands = [tr for tr in tracks if _presence(tr, samples, start, end) >= min_presence]
    cands.sort(key=lambda tr: (tr.id not in linked, -_presence(tr, samples, start, end),
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
    ph_i = _even(ph) if _even(ph) <= geometry.src_h else geometry.src_h - geometry.src_h % 2
    pw_i = min(_even(ph_i * panel_aspect), geometry.src_w - geometry.src_w % 2)
    panel_geo = OutputGeometry(geometry.src_w, geometry.src_h, geometry.out_w, geometry.out_h // 2, "crop",
                               pw_i, ph_i)
    n = max(0, int(round((end - start) * fps)))
    tf = start + np.arange(n, dtype=np.float64) / fps
    xs, ys = [], []
    for tr, face_at in zip(pair, (0.45, bottom_face_at), strict=True):
        xs.append(_track_x(tr.detections, panel_geo, tf, params))
        cy = float(np.median([b.cy for _, b in tr.detections]))
        top = float(min(max(round((cy - face_at * ph_i) / 2) * 2, 0), geometry.src_h - ph_i))
        ys.append(np.full(n, top))
    return CropPath(fps=fps, start=start, x=tuple(xs[0].tolist()), y=tuple(ys[0].tolist()), subject="split",
                    x2=tuple(xs[1].tolist()), y2=tuple(ys[1].tolist()), panel=(pw_i, ph_i), links=tuple(links))


def render_geometry(geometry: OutputGeometry, path: CropPath) -> OutputGeometry:
    """The geometry the render uses for ``path``: a split path's panels, else ``geometry``."""
    if path.subject != "split":
        return geometry
    return OutputGeometry(geometry.src_w, geometry.src_h, geometry.out_w, geometry.out_h, "split", *path.panel)


def face_center_in_output(
    path: CropPath, geometry: OutputGeometry, t: float, face_cx: float
) -> float:
    """Where a face centred at source x ``face_cx`` lands in the output frame at time ``t``."""
    if geometry.mode == "resize":
        return face_cx * geometry.out_w / geometry.src_w
    if geometry.mode == "pad":
        scale = min(geometry.out_w / geometry.src_w, geometry.out_h / geometry.src_h)
        return (geometry.out_w - geometry.src_w * scale) / 2.0 + face_cx * scale
    x, _ = path.at_frame(int(round((t - path.start) * path.fps)))
    return (face_cx - x) * geometry.out_w / geometry.crop_w


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

    def process(self, inputs: ReframeRequest, ctx: StageContext) -> CropPath:
        path = plan_crop_path(inputs.faces, inputs.geometry, inputs.fps, inputs.start, inputs.end,
                              words=inputs.words, layout=inputs.layout)
        ctx.progress(1.0, f"camera follows {path.subject}")
        return path
