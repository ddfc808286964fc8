"""tripod: the single-subject crop planner ("tripod camera"). Pure, no I/O.

The planner behaves like an operator on a tripod: the crop window holds still while the
subject's face stays inside a central safe zone, and only when the face has left that
zone for a few consecutive samples does it make one eased move to re-centre it. Because
the whole clip's samples are known in advance, a confirmed move is started back at the
moment the face crossed the safe-zone edge and aimed at where the face will be when the
move ends, so a confirmation delay never leaves the face stranded at the border.

The guarantees this gives :func:`stages.framing.reframe.plan_crop_path` are listed in that module.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.types import FaceBox, OutputGeometry

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


def ease_smoothstep(s: np.ndarray) -> np.ndarray:
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


def track_x(detections: Sequence[tuple[float, FaceBox]], geometry: OutputGeometry, tf: np.ndarray,
             params: TripodParams) -> np.ndarray:
    """The tripod camera on one face's detections, evaluated at output times ``tf``."""
    ts = np.array([t for t, _ in detections], dtype=np.float64)
    cs = _median3(np.array([b.cx for _, b in detections], dtype=np.float64))
    x0, moves = _plan_moves(_Signal(ts, cs, params.hold_gap), geometry, params)
    x = np.full(len(tf), x0, dtype=np.float64)
    for t0, t1, a, b in moves:
        sel = tf >= t0
        x[sel] = a + (b - a) * ease_smoothstep((tf[sel] - t0) / (t1 - t0))
    return np.clip(x, 0.0, float(geometry.src_w - geometry.crop_w))
