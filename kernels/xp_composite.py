"""Caption-sprite blending into NV12 frames (Y + interleaved UV), for any array module, in place.

The same uint16 math as :func:`kernels.composite.blend_sprite_i420`:
``out = ((v + 128) + ((v + 128) >> 8)) >> 8`` with ``v = dst * (255 - a) + sprite * a``, the sprite's
``a`` on luma and its 2x2-subsampled ``a2`` on both chroma channels. So blending into NV12 is
bit-identical to blending into I420 and interleaving (``tests/kernels/test_xp_kernels.py`` checks it).

Per sprite and array module the products are precomputed once (``Sprite.prepared``) and the chroma
ones interleaved into one (h/2, w/2, 2) array, so a frame costs one pass over the Y rectangle and one
over the UV rectangle (both channels at once). Batches of N frames broadcast over the leading axis.

On CuPy the five element-wise steps are fused into one ``ElementwiseKernel`` launch per plane (the
same integer formula in 32-bit unsigned math; no intermediate exceeds 65,407, so it is bit-identical
to the uint16 steps); ``fused=False`` keeps the plain xp path. The fused kernel only runs on a GPU:
``tests/kernels/test_xp_kernels_gpu.py`` (marker ``gpu``) checks it against NumPy exactly.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

from kernels.composite import Sprite
from kernels.nv12 import channels_view
from kernels.xp import array_module

_nv12_prepared: weakref.WeakKeyDictionary[Sprite, dict[str, tuple[Any, ...]]] = weakref.WeakKeyDictionary()


def prepared_nv12(sprite: Sprite, xp: Any) -> tuple[Any, Any, Any, Any]:
    """(y*a, 255-a) (h, w) and (uv*a2 (h/2, w/2, 2), 255-a2 (h/2, w/2, 1)) as uint16 arrays of ``xp``, cached."""
    per = _nv12_prepared.setdefault(sprite, {})
    got = per.get(xp.__name__)
    if got is None:
        py, ia, pu, pv, ia2 = sprite.prepared(xp)
        got = (py, ia, xp.stack([pu, pv], axis=-1), ia2[..., None])
        per[xp.__name__] = got
    return got


_fused_kernel: Any = None

_FUSED_BODY = "unsigned int v = (unsigned int)d * ia + pm + 128u; d = (unsigned char)((v + (v >> 8)) >> 8);"


def _fused(xp: Any) -> Any:
    """The CuPy ElementwiseKernel ``d = blend(d, pm, ia)`` (built once, on first GPU use)."""
    global _fused_kernel
    if _fused_kernel is None:
        _fused_kernel = xp.ElementwiseKernel("uint16 pm, uint16 ia", "uint8 d", _FUSED_BODY, "clipora_blend_u8")
    return _fused_kernel


def _blend_region(
    dst: Any, premul: Any, inv_a: Any, x: int, y: int, xp: Any, channels: bool, fused: bool = False
) -> None:
    """Blend a (h, w[, C]) premultiplied sprite at (x, y) into ``dst`` (..., H, W[, C]), clipped."""
    if channels:
        H, W = dst.shape[-3], dst.shape[-2]
        h, w = premul.shape[0], premul.shape[1]
    else:
        H, W = dst.shape[-2:]
        h, w = premul.shape
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + w, W), min(y + h, H)
    if x1 <= x0 or y1 <= y0:
        return
    sx, sy = x0 - x, y0 - y
    if channels:
        region = dst[..., y0:y1, x0:x1, :]
    else:
        region = dst[..., y0:y1, x0:x1]
    pm = premul[sy : sy + (y1 - y0), sx : sx + (x1 - x0)]
    ia = inv_a[sy : sy + (y1 - y0), sx : sx + (x1 - x0)]
    if fused:
        _fused(xp)(pm, ia, region)  # in place: ``region`` is both read and written
        return
    acc = xp.multiply(region, ia, dtype=xp.uint16)
    acc += pm
    acc += 128
    acc += acc >> 8
    acc >>= 8
    region[...] = acc


def _uv_view(uv: Any, y_ndim: int) -> Any:
    """(..., H/2, W) interleaved UV (or already (..., H/2, W/2, 2)) as a (..., H/2, W/2, 2) view."""
    if uv.ndim == y_ndim + 1:
        return uv
    return channels_view(uv)


def blend_sprite_nv12(y: Any, uv: Any, sprite: Sprite, fused: bool | None = None) -> None:
    """Blend ``sprite`` into one NV12 frame in place: Y (H, W), interleaved UV (H/2, W) uint8.

    Also takes batches: Y (N, H, W), UV (N, H/2, W). Parts outside the frame are clipped.
    ``fused`` (default: on for CuPy, off for NumPy) selects the one-launch GPU kernel.
    """
    if y.ndim not in (2, 3):
        raise ValueError(f"expected a (H, W) or (N, H, W) Y plane, got shape {tuple(y.shape)}")
    uvc = _uv_view(uv, y.ndim)
    H, W = y.shape[-2:]
    if tuple(uvc.shape[-3:]) != (H // 2, W // 2, 2) or uvc.shape[:-3] != y.shape[:-2]:
        raise ValueError(f"UV plane of shape {tuple(uv.shape)} does not match a Y plane of shape {tuple(y.shape)}")
    xp = array_module(y)
    if fused is None:
        fused = xp is not np
    elif fused and xp is np:
        raise ValueError("the fused blend kernel needs CuPy arrays")
    py, ia, puv, ia2 = prepared_nv12(sprite, xp)
    _blend_region(y, py, ia, sprite.x, sprite.y, xp, channels=False, fused=fused)
    _blend_region(uvc, puv, ia2, sprite.x // 2, sprite.y // 2, xp, channels=True, fused=fused)
