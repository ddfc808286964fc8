"""Where each output frame's pixels come from: the render's per-frame layout, for both backends.

A :class:`FrameLayout` says, for output frame ``k`` (showing the source frame at ``pts``), which
source windows are scaled into which bands of output rows, or that the whole frame is fitted over a
blurred fill of itself, and whether the split layout's seam is drawn. It is decided once, here, from
the geometry and the crop path (its shots' layouts), and drawn by one of two painters:

- :func:`draw_i420` on the CPU: OpenCV on I420 planes (:mod:`kernels.resize`);
- :func:`draw_nv12` for any array module: the xp kernels on NV12 (:mod:`kernels.xp_resize`), CuPy on
  the GPU and NumPy in the tests, bit-exact with OpenCV (``tests/kernels/test_xp_kernels.py``).

So both renders frame a clip identically by construction; only the pixel arithmetic differs by backend.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.types import CropPath, OutputGeometry
from kernels import xp_resize
from kernels.resize import crop_resize, darken_luma, fit_over_blur, fit_rect

SEAM_ROWS = 4  # a dark line between the split layout's panels (luma rows, even)


@dataclass(frozen=True, slots=True)
class Window:
    """A source window (luma px, even) scaled into output rows [row0, row0 + rows) at full width."""

    x: int
    top: int
    crop_w: int
    crop_h: int
    row0: int
    rows: int


@dataclass(frozen=True, slots=True)
class FrameLayout:
    windows: tuple[Window, ...] = ()
    #: the whole source frame fitted into this output rect over its blurred, darkened fill
    fit: tuple[int, int, int, int] | None = None
    #: the split layout's seam: luma rows around this output row set to black (16)
    seam_at: int | None = None


def _even(v: float) -> int:
    return int(round(v / 2)) * 2  # chroma-aligned


def _window(xy: tuple[float, float], crop_w: int, crop_h: int, row0: int, rows: int) -> Window:
    return Window(_even(xy[0]), _even(xy[1]), crop_w, crop_h, row0, rows)


def _split(path: CropPath, k: int, crop_w: int, crop_h: int, out_h: int) -> FrameLayout:
    ph = out_h // 2
    return FrameLayout(
        windows=(_window(path.at_frame(k), crop_w, crop_h, 0, ph), _window(path.at_frame2(k), crop_w, crop_h, ph, ph)),
        seam_at=ph,
    )


def frame_layout(geo: OutputGeometry, path: CropPath, k: int, pts: float) -> FrameLayout:
    """The layout of output frame ``k``; ``pts`` (the source time it shows) picks its shot."""
    ow, oh = geo.out_w, geo.out_h
    if geo.mode == "split":
        return _split(path, k, geo.crop_w, geo.crop_h, oh)
    if geo.mode == "pad":
        return FrameLayout(fit=fit_rect(geo.src_w, geo.src_h, ow, oh))
    if geo.mode == "crop":
        shot = path.shot_at(pts) if path.shots else None
        if shot is not None and shot.layout == "fit":
            return FrameLayout(fit=fit_rect(geo.src_w, geo.src_h, ow, oh))
        if shot is not None and shot.layout == "split":
            return _split(path, k, shot.panel[0], shot.panel[1], oh)
        return FrameLayout(windows=(_window(path.at_frame(k), geo.crop_w, geo.crop_h, 0, oh),))
    return FrameLayout(windows=(Window(0, 0, geo.crop_w, geo.crop_h, 0, oh),))  # resize: the whole frame


def layouts_vary(geo: OutputGeometry, path: CropPath) -> bool:
    """Whether frames of this clip can differ in layout kind (a crop whose shots are fit/split)."""
    return geo.mode == "crop" and any(s.layout in ("fit", "split") for s in path.shots)


def draw_i420(layout: FrameLayout, src: tuple[Any, Any, Any], dst: tuple[Any, Any, Any], ow: int, oh: int) -> None:
    """Paint one I420 output frame (Y, U, V) from a source frame's planes, OpenCV on the CPU."""
    y, u, v = src
    if layout.fit is not None:
        rect = layout.fit
        fit_over_blur(y, ow, oh, rect, dst=dst[0])
        darken_luma(dst[0], rect)
        half = (rect[0] // 2, rect[1] // 2, rect[2] // 2, rect[3] // 2)
        fit_over_blur(u, ow // 2, oh // 2, half, dst=dst[1])
        fit_over_blur(v, ow // 2, oh // 2, half, dst=dst[2])
    for w in layout.windows:
        r0, c0 = w.row0, w.row0 // 2
        crop_resize(y, w.x, w.top, w.crop_w, w.crop_h, ow, w.rows, dst=dst[0][r0 : r0 + w.rows])
        for plane, out in ((u, dst[1]), (v, dst[2])):
            crop_resize(plane, w.x // 2, w.top // 2, w.crop_w // 2, w.crop_h // 2, ow // 2, w.rows // 2,
                        dst=out[c0 : c0 + w.rows // 2])
    if layout.seam_at is not None:
        dst[0][layout.seam_at - SEAM_ROWS // 2 : layout.seam_at + SEAM_ROWS // 2] = 16


def draw_nv12(layout: FrameLayout, y: Any, uv: Any, dst_y: Any, dst_uv: Any) -> None:
    """Paint one NV12 output frame (Y (H, W), UV (H/2, W)) with the array-module kernels."""
    oh, ow = int(dst_y.shape[0]), int(dst_y.shape[1])
    if layout.fit is not None:
        xp_resize.fit_nv12(y, uv, ow, oh, layout.fit, dst_y=dst_y, dst_uv=dst_uv)
    for w in layout.windows:
        r0, c0 = w.row0, w.row0 // 2
        xp_resize.crop_resize_nv12(y, uv, w.x, w.top, w.crop_w, w.crop_h, ow, w.rows,
                                   dst_y=dst_y[r0 : r0 + w.rows], dst_uv=dst_uv[c0 : c0 + w.rows // 2])
    if layout.seam_at is not None:
        dst_y[layout.seam_at - SEAM_ROWS // 2 : layout.seam_at + SEAM_ROWS // 2] = 16
