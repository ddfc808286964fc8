"""BT.709 limited-range colour conversion between RGB(A) and planar YUV(A) 4:2:0.

The render encodes BT.709 limited range, so caption sprites are converted once, here, and
each frame only pays for the blend. Odd sizes are padded to even by repeating the last
row/column (or with transparent pixels for RGBA), because 4:2:0 chroma covers 2x2 blocks.
All functions take their array module from the input so a CuPy array stays on the GPU.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kernels.xp import array_module

# BT.709 luma weights; limited range puts Y in [16, 235] and Cb/Cr in [16, 240].
_KR, _KB = 0.2126, 0.0722
_KG = 1.0 - _KR - _KB
_Y_SCALE = 219.0 / 255.0
_C_SCALE = 224.0 / 255.0

_RGB_TO_YUV = np.array(
    [
        [_KR * _Y_SCALE, _KG * _Y_SCALE, _KB * _Y_SCALE],
        [
            -_KR / (2 * (1 - _KB)) * _C_SCALE,
            -_KG / (2 * (1 - _KB)) * _C_SCALE,
            0.5 * _C_SCALE,
        ],
        [
            0.5 * _C_SCALE,
            -_KG / (2 * (1 - _KR)) * _C_SCALE,
            -_KB / (2 * (1 - _KR)) * _C_SCALE,
        ],
    ],
    dtype=np.float32,
)
_YUV_OFFSET = np.array([16.0, 128.0, 128.0], dtype=np.float32)
_YUV_TO_RGB = np.linalg.inv(_RGB_TO_YUV.astype(np.float64)).astype(np.float32)


def _pad_even(img: Any, xp: Any, fill: int | None) -> Any:
    """Pad H and W up to even; ``fill=None`` repeats the edge, else pads with ``fill``."""
    h, w = img.shape[:2]
    ph, pw = h % 2, w % 2
    if not (ph or pw):
        return img
    pad = [(0, ph), (0, pw)] + [(0, 0)] * (img.ndim - 2)
    if fill is None:
        return xp.pad(img, pad, mode="edge")
    return xp.pad(img, pad, mode="constant", constant_values=fill)


def _to_u8(x: Any, xp: Any) -> Any:
    return xp.clip(xp.rint(x), 0, 255).astype(xp.uint8)


def _box2_sum(x: Any) -> Any:
    """Sum over 2x2 blocks of the first two axes (strided adds beat a reshaped reduce)."""
    return x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2]


def rgb_to_yuv420(rgb: Any) -> tuple[Any, Any, Any]:
    """(H, W, 3) uint8 RGB -> Y (H', W'), U, V (H'/2, W'/2) uint8; H', W' = H, W padded to even."""
    xp = array_module(rgb)
    rgb = _pad_even(rgb, xp, None)
    rgbf = rgb.astype(xp.float32)
    m = xp.asarray(_RGB_TO_YUV)
    y = rgbf @ m[0] + 16.0
    # chroma is linear in RGB, so average RGB over each 2x2 block first (4x less matrix work)
    c = (_box2_sum(rgbf) * 0.25) @ m[1:].T + 128.0
    return _to_u8(y, xp), _to_u8(c[..., 0], xp), _to_u8(c[..., 1], xp)


def yuv420_to_rgb(y: Any, u: Any, v: Any) -> Any:
    """Y (H, W), U, V (H/2, W/2) uint8 BT.709 limited range -> (H, W, 3) uint8 RGB."""
    xp = array_module(y)
    h, w = y.shape
    uu = xp.repeat(xp.repeat(u, 2, axis=0), 2, axis=1)[:h, :w]
    vv = xp.repeat(xp.repeat(v, 2, axis=0), 2, axis=1)[:h, :w]
    yuv = xp.stack([y, uu, vv], axis=-1).astype(xp.float32) - xp.asarray(_YUV_OFFSET)
    return _to_u8(yuv @ xp.asarray(_YUV_TO_RGB).T, xp)


def rgba_to_yuva420(rgba: Any) -> tuple[Any, Any, Any, Any, Any]:
    """(H, W, 4) uint8 straight-alpha RGBA -> (y, u, v, a, a2), all uint8, padded to even.

    ``y``/``a`` are full size; ``u``/``v``/``a2`` are 2x2-subsampled. Chroma is averaged
    weighted by alpha so the colour of transparent pixels (often black) does not bleed into
    the edges of glyphs; ``a2`` is the plain mean alpha of each block.
    """
    xp = array_module(rgba)
    rgba = _pad_even(rgba, xp, 0)
    if xp is np:
        return _rgba_to_yuva420_cpu(np.ascontiguousarray(rgba))
    m = xp.asarray(_RGB_TO_YUV)
    rgbf = rgba[..., :3].astype(xp.float32)
    a = rgba[..., 3].astype(xp.float32)
    y = rgbf @ m[0] + 16.0
    a_sum = _box2_sum(a)
    mean_rgb = _box2_sum(rgbf * a[..., None]) / xp.maximum(a_sum, 1e-6)[..., None]
    c = xp.where(a_sum[..., None] > 0, mean_rgb @ m[1:].T + 128.0, 128.0)
    return (
        _to_u8(y, xp),
        _to_u8(c[..., 0], xp),
        _to_u8(c[..., 1], xp),
        rgba[..., 3].copy(),
        _to_u8(a_sum / 4.0, xp),
    )


# colour matrix rows padded for RGBA input (alpha weight 0); Y also takes its +16 offset
_Y_ROW = np.array([[*_RGB_TO_YUV[0], 0.0, 16.0]], np.float32)
_C_ROWS = np.concatenate([_RGB_TO_YUV[1:], np.zeros((2, 1), np.float32)], axis=1)


def _rgba_to_yuva420_cpu(rgba: np.ndarray) -> tuple[np.ndarray, ...]:
    """The NumPy case of :func:`rgba_to_yuva420` with OpenCV kernels (same maths, fewer passes).

    Luma is one cv2.transform of the RGBA pixels to uint8 (rounded and saturated by OpenCV);
    chroma works on the 2x2 block means (INTER_AREA at exactly half size) of
    alpha-premultiplied RGB and of alpha, so the colour matrix runs on a quarter of the pixels.
    """
    import cv2

    h, w = rgba.shape[:2]
    y = cv2.transform(rgba, _Y_ROW)
    f = rgba.astype(np.float32)
    a_mean = cv2.resize(f[..., 3], (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    f *= f[..., 3:4]
    pm = cv2.resize(f, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    c = cv2.transform(pm, _C_ROWS) / np.maximum(a_mean, 1e-6)[..., None] + 128.0
    c[a_mean <= 0] = 128.0
    return y, _to_u8(c[..., 0], np), _to_u8(c[..., 1], np), rgba[..., 3].copy(), _to_u8(a_mean, np)
