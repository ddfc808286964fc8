"""croppath: the manifest's ``cropPath``, the render's framing as a few keyframes. Pure, no I/O.

The render reads, for output frame ``k`` (clip time ``k / fps``, after any splicing), the source
window at the crop path's ``x[k], y[k]`` rounded to even pixels (4:2:0 chroma alignment, as
:func:`stages.output.render.reframe_batch` does) with the geometry's window size. This module
turns that per-frame track into keyframes ``{"t", "x", "y", "w", "h"}`` (integers, source
pixels; ``t`` in clip seconds) such that interpolating linearly in ``t`` between two neighbours,
at each output frame's time, gives the rendered window within :data:`TOLERANCE_PX` (holds and
cuts come out exactly: a hold is two keyframes with the same window, a cut two keyframes one
frame apart). The first keyframe is frame 0, the last the clip's last frame.

Split layout: ``x, y, w, h`` is the top pane's window (scaled into the output's top half) and
``"bottom": {"x", "y", "w", "h"}`` the bottom pane's (into the bottom half); both are kept
within the tolerance by the same keyframes. Pad and resize geometries show the whole source
frame: one keyframe of the full frame. A crop path with per-shot layouts (``CropPath.shots``)
gives every keyframe its own ``w``/``h``: a "fit" shot's window is the whole source frame (fitted
over a blurred fill), a "split" shot's the two panes; a cut is two keyframes one frame apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from engine.types import CropPath, OutputGeometry

#: the most a linearly interpolated window is off the rendered one, per coordinate, source px
#: (half a pixel of simplification, plus what rounding ``t`` to the microsecond moves a cut or a pan)
TOLERANCE_PX = 1.0
_SIMPLIFY_PX = 0.5


def _even(v: float) -> int:
    """The window origin the render uses (``reframe_batch``: chroma-aligned)."""
    return int(round(v / 2)) * 2


def rendered_windows(path: CropPath, geometry: OutputGeometry, frames: int) -> np.ndarray:
    """Per output frame, the source window origins the render uses: (frames, 2) or, split, (frames, 4)."""
    n = max(1, frames)
    if geometry.mode not in ("crop", "split"):
        return np.zeros((n, 2), dtype=np.int64)
    max_x, max_y = max(0, geometry.src_w - geometry.crop_w), max(0, geometry.src_h - geometry.crop_h)

    def origins(at: Any) -> list[tuple[int, int]]:
        return [(min(max(_even(x), 0), max_x), min(max(_even(y), 0), max_y)) for x, y in map(at, range(n))]

    cols = origins(path.at_frame)
    if geometry.mode == "split":
        return np.array([(*a, *b) for a, b in zip(cols, origins(path.at_frame2), strict=True)], dtype=np.int64)
    return np.array(cols, dtype=np.int64)


def keyframe_indices(values: np.ndarray, tol: float = _SIMPLIFY_PX) -> list[int]:
    """Frames to keep so that linear interpolation between them is within ``tol`` of every row.

    Douglas-Peucker on the frame index, with the error measured per coordinate (the largest of
    any column): a hold costs two keyframes, a cut two keyframes one frame apart.
    """
    n = len(values)
    if n <= 2:
        return list(range(n))
    v = values.astype(np.float64)
    keep = {0, n - 1}
    stack = [(0, n - 1)]
    while stack:
        a, b = stack.pop()
        if b - a < 2:
            continue
        k = np.arange(a + 1, b)[:, None]
        line = v[a] + (v[b] - v[a]) * (k - a) / (b - a)
        err = np.abs(v[a + 1 : b] - line).max(axis=1)
        i = int(err.argmax())
        if err[i] > tol:
            m = a + 1 + i
            keep.add(m)
            stack.extend(((a, m), (m, b)))
    return sorted(keep)


def frame_source_times(path: CropPath, frames: int, fps: float,
                       segments: Sequence[tuple[float, float]] = ()) -> np.ndarray:
    """The source time each output frame shows (the render's clock: segment by segment when spliced)."""
    n = max(1, frames)
    if not segments:
        return path.start + np.arange(n) / fps
    times = [a + j / fps for a, b in segments for j in range(max(1, round((b - a) * fps)))]
    times += [times[-1]] * (n - len(times))
    return np.array(times[:n])


def shot_windows(path: CropPath, geometry: OutputGeometry, frames: int, fps: float,
                 segments: Sequence[tuple[float, float]] = ()) -> np.ndarray:
    """Per output frame of a crop geometry with per-shot layouts, the rendered windows:
    ``(x, y, w, h, bx, by, bw, bh)``, the bottom pane's zero except in split shots; a fit
    shot's window is the whole source frame."""
    n = max(1, frames)
    times = frame_source_times(path, n, fps, segments)
    rows = np.zeros((n, 8), dtype=np.int64)
    for k in range(n):
        shot = path.shot_at(float(times[k]) + 0.5 / fps)
        layout = shot.layout if shot is not None else "face"
        if layout == "fit":
            rows[k, :4] = (0, 0, geometry.src_w, geometry.src_h)
            continue
        w, h = shot.panel if layout == "split" and shot is not None else (geometry.crop_w, geometry.crop_h)
        max_x, max_y = max(0, geometry.src_w - w), max(0, geometry.src_h - h)
        x, y = path.at_frame(k)
        rows[k, :4] = (min(max(_even(x), 0), max_x), min(max(_even(y), 0), max_y), w, h)
        if layout == "split":
            bx, by = path.at_frame2(k)
            rows[k, 4:] = (min(max(_even(bx), 0), max_x), min(max(_even(by), 0), max_y), w, h)
    return rows


def crop_keyframes(path: CropPath, geometry: OutputGeometry, frames: int, fps: float,
                   segments: Sequence[tuple[float, float]] = ()) -> list[dict[str, Any]]:
    """The clip's cropPath: keyframes of the rendered source window (see the module docstring).

    ``geometry`` is the one the render used (``render_geometry``: split panes' size for a split
    path), ``frames`` and ``fps`` the rendered clip's frame count and output rate. A crop path
    whose shots differ in layout (fit shots: the whole source, split shots: two panes) gives each
    keyframe its own ``w``, ``h`` (and ``bottom`` in split shots); ``segments`` (a spliced
    clip's) say which source frame each output frame shows.
    """
    if geometry.mode == "crop" and any(s.layout in ("fit", "split") for s in path.shots):
        rows = shot_windows(path, geometry, frames, fps, segments)
        out = []
        for k in keyframe_indices(rows):
            r = [int(c) for c in rows[k]]
            kf: dict[str, Any] = {"t": round(k / fps, 6), "x": r[0], "y": r[1], "w": r[2], "h": r[3]}
            if r[6] > 0:
                kf["bottom"] = {"x": r[4], "y": r[5], "w": r[6], "h": r[7]}
            out.append(kf)
        return out
    windows = rendered_windows(path, geometry, frames)
    if geometry.mode in ("crop", "split"):
        w, h = geometry.crop_w, geometry.crop_h
        indices = keyframe_indices(windows)
    else:  # the whole source frame, fitted (pad) or scaled (resize)
        w, h = geometry.src_w, geometry.src_h
        indices = [0]
    out = []
    for k in indices:
        row = [int(c) for c in windows[k]]
        kf: dict[str, Any] = {"t": round(k / fps, 6), "x": row[0], "y": row[1], "w": w, "h": h}
        if geometry.mode == "split":
            kf["bottom"] = {"x": row[2], "y": row[3], "w": w, "h": h}
        out.append(kf)
    return out
