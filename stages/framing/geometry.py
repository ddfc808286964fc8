"""geometry: how a source frame becomes the output frame (resize, crop, pad, split). Pure, no I/O."""

from __future__ import annotations

import math

from engine.options import OUTPUT_SIZES
from engine.types import CropPath, OutputGeometry
from kernels.resize import fit_rect

_ASPECT_TOLERANCE = 0.01


def even_px(v: float) -> int:
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
        crop_w = min(even_px(crop_h * target), src_w - (src_w % 2))
        return OutputGeometry(src_w, src_h, out_w, out_h, "crop", crop_w, crop_h)
    return OutputGeometry(src_w, src_h, out_w, out_h, "pad", src_w, src_h)


def is_split_aspect(geometry: OutputGeometry) -> bool:
    """Split is made for 9:16 outputs (each panel 9:8) cropped from a wider source."""
    return geometry.mode == "crop" and abs(geometry.out_w / geometry.out_h - 9 / 16) < 0.01


def render_geometry(geometry: OutputGeometry, path: CropPath) -> OutputGeometry:
    """The geometry the render uses for ``path``: a split path's panels, else ``geometry``."""
    if path.subject != "split":
        return geometry
    return OutputGeometry(geometry.src_w, geometry.src_h, geometry.out_w, geometry.out_h, "split", *path.panel)


def fit_shots(geometry: OutputGeometry, path: CropPath) -> tuple[tuple[tuple[float, float], ...], int]:
    """The source-time spans of ``path``'s "fit" shots the render shows whole over a blurred fill (a crop
    geometry's; none otherwise), and the fitted picture's bottom edge in output rows (0 without any)."""
    if geometry.mode != "crop":
        return (), 0
    spans = tuple((s.start, s.end) for s in path.shots if s.layout == "fit" and s.end > s.start)
    if not spans:
        return (), 0
    _, y, _, h = fit_rect(geometry.src_w, geometry.src_h, geometry.out_w, geometry.out_h)
    return spans, y + h
