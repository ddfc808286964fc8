"""face_tracks: face detections linked into tracks over time, and the clip's one subject. Pure, no I/O."""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.types import FaceBox, FaceSample

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
    cuts: Sequence[float] = (),
) -> list[FaceTrack]:
    """Link detections into tracks by greedy IoU / centre-distance association.

    ``cuts`` (source times of cut frames): no track spans one; every track open at a cut ends
    there and fragments on the two sides of a cut are never stitched.

    A track survives ``max_gap`` seconds of missed detections; ``max_dist`` is the largest
    centre move between linked detections, in face sizes (less for closer samples).
    Afterwards, fragments of one face split by a longer gap (up to ``stitch_gap`` s, e.g.
    a head turn) are joined when the later one starts where the earlier one ended.
    """
    open_tracks: list[list[tuple[float, FaceBox]]] = []
    closed: list[list[tuple[float, FaceBox]]] = []
    cut_times = sorted(cuts)

    def shot_of(t: float) -> int:
        return bisect.bisect_right(cut_times, t + 1e-6)

    for sample in sorted(samples, key=lambda s: s.t):
        alive: list[list[tuple[float, FaceBox]]] = []
        shot = shot_of(sample.t)
        for tr in open_tracks:
            ended = sample.t - tr[-1][0] > max_gap or shot_of(tr[-1][0]) != shot
            (closed if ended else alive).append(tr)
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
    return [FaceTrack(i, tuple(tr)) for i, tr in enumerate(_stitch(fragments, stitch_gap, shot_of))]


def _stitch(
    fragments: list[list[tuple[float, FaceBox]]], stitch_gap: float, shot_of=lambda t: 0
) -> list[list[tuple[float, FaceBox]]]:
    merged: list[list[tuple[float, FaceBox]]] = []
    for frag in fragments:
        best, best_cost = None, math.inf
        for tr in merged:
            gap = frag[0][0] - tr[-1][0]
            if gap <= 0 or gap > stitch_gap or shot_of(tr[-1][0]) != shot_of(frag[0][0]):
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
