"""Crop + resize of image planes, and the blurred-fill fit for sources narrower than the output.

Each function works on one plane of any channel count: (H, W) for a Y/U/V plane or
(H, W, C) for RGB, so the render path (YUV 4:2:0, one call per plane) and the poster path
(RGB) share the same geometry. NumPy/OpenCV reference; a CuPy twin keeps the signatures.
"""

from __future__ import annotations

import cv2
import numpy as np


def _interp(src_w: int, src_h: int, dst_w: int, dst_h: int) -> int:
    # Area averaging when shrinking avoids aliasing; bilinear is faster and fine when growing.
    return cv2.INTER_AREA if dst_w < src_w and dst_h < src_h else cv2.INTER_LINEAR


def crop_resize(
    plane: np.ndarray,
    x: int,
    y: int,
    crop_w: int,
    crop_h: int,
    out_w: int,
    out_h: int,
    dst: np.ndarray | None = None,
) -> np.ndarray:
    """Scale the window ``plane[y:y+crop_h, x:x+crop_w]`` to ``out_w`` x ``out_h``.

    The window is clamped inside the plane. ``dst``, when given, must be a contiguous
    array of the output shape and receives the result (no allocation per frame).
    """
    h, w = plane.shape[:2]
    crop_w, crop_h = min(crop_w, w), min(crop_h, h)
    x = int(min(max(0, x), w - crop_w))
    y = int(min(max(0, y), h - crop_h))
    window = plane[y : y + crop_h, x : x + crop_w]
    if window.shape[0] == out_h and window.shape[1] == out_w:
        if dst is None:
            return window.copy()
        dst[...] = window
        return dst
    interp = _interp(crop_w, crop_h, out_w, out_h)
    if dst is None:
        return cv2.resize(window, (out_w, out_h), interpolation=interp)
    cv2.resize(window, (out_w, out_h), dst=dst, interpolation=interp)
    return dst


def fit_rect(src_w: int, src_h: int, out_w: int, out_h: int, even: bool = True) -> tuple[int, int, int, int]:
    """Where the whole source lands inside the output when fitted: (x, y, w, h)."""
    scale = min(out_w / src_w, out_h / src_h)
    w, h = round(src_w * scale), round(src_h * scale)
    if even:
        w, h = w - (w % 2), h - (h % 2)
    x, y = (out_w - w) // 2, (out_h - h) // 2
    if even:
        x, y = x - (x % 2), y - (y % 2)
    return x, y, w, h


def fit_over_blur(
    plane: np.ndarray, out_w: int, out_h: int, rect: tuple[int, int, int, int], dst: np.ndarray | None = None,
    blur_scale: int = 16,
) -> np.ndarray:
    """The whole plane fitted into ``rect`` over a blurred, darkened cover-fill of itself.

    The fill is computed small (1/``blur_scale`` of the output) and scaled up, so the
    blur costs a fraction of one resize.
    """
    h, w = plane.shape[:2]
    if dst is None:
        dst = np.empty((out_h, out_w) + plane.shape[2:], dtype=plane.dtype)
    # cover: scale so the source fills the output, centre-crop the overflow
    cover = max(out_w / w, out_h / h)
    cw, ch = min(w, round(out_w / cover)), min(h, round(out_h / cover))
    cx, cy = (w - cw) // 2, (h - ch) // 2
    small_w, small_h = max(2, out_w // blur_scale), max(2, out_h // blur_scale)
    small = cv2.resize(plane[cy : cy + ch, cx : cx + cw], (small_w, small_h), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigmaX=max(1.0, small_w / 24))
    cv2.resize(small, (out_w, out_h), dst=dst, interpolation=cv2.INTER_LINEAR)
    rx, ry, rw, rh = rect
    cv2.resize(plane, (rw, rh), dst=dst[ry : ry + rh, rx : rx + rw], interpolation=_interp(w, h, rw, rh))
    return dst


def darken_luma(plane: np.ndarray, rect: tuple[int, int, int, int], factor: float = 0.6) -> None:
    """Dim the blurred fill around ``rect`` (luma only) so the subject stands out."""
    rx, ry, rw, rh = rect
    lut = np.clip(16 + (np.arange(256) - 16) * factor, 0, 255).astype(np.uint8)
    for sl in (np.s_[:ry, :], np.s_[ry + rh :, :], np.s_[ry : ry + rh, :rx], np.s_[ry : ry + rh, rx + rw :]):
        region = plane[sl]
        if region.size:
            cv2.LUT(region, lut, dst=region)
