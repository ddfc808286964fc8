"""NV12 <-> I420 plane handling for any array module (NumPy here, CuPy on the GPU).

NVDEC (PyNvVideoCodec) hands out NV12: a Y plane (H, W) followed by one interleaved UV
plane (H/2, W) holding U0 V0 U1 V1 ..., both in a single buffer of (H*3/2, pitch) bytes
where the row pitch may be larger than the width. The CPU path (PyAV) and the existing
kernels work on I420: separate Y (H, W), U and V (H/2, W/2) planes.

Splitting returns views (no copy) unless ``copy=True``; U and V views of an interleaved
plane are strided (every other byte), so kernels that want contiguous planes ask for a
copy. Joining writes into ``out`` when given, so a pooled output buffer needs no allocation.
Every function takes its array module from its input via :func:`kernels.xp.array_module`.
"""

from __future__ import annotations

from typing import Any

from kernels.xp import array_module


def _check_size(height: int, width: int) -> None:
    if height <= 0 or width <= 0:
        raise ValueError(f"NV12 frame size must be positive, got {width}x{height}")
    if height % 2 or width % 2:
        raise ValueError(f"NV12/I420 (4:2:0) needs an even width and height, got {width}x{height}")


def _check_u8(arr: Any, what: str) -> None:
    if str(arr.dtype) != "uint8":
        raise ValueError(f"{what} must be uint8, got {arr.dtype}")


def split_nv12_buffer(buf: Any, width: int, height: int | None = None) -> tuple[Any, Any]:
    """Views (Y (H, W), UV (H/2, W)) of one NV12 buffer laid out as (H*3/2, pitch), pitch >= W.

    ``height`` defaults to ``rows * 2 / 3``; when given, the buffer may have extra rows
    (surfaces padded to a multiple of 16) and the UV plane must start at row ``height``.
    """
    _check_u8(buf, "NV12 buffer")
    if buf.ndim != 2:
        raise ValueError(f"NV12 buffer must be 2-D (H*3/2, pitch), got shape {tuple(buf.shape)}")
    rows, pitch = (int(s) for s in buf.shape)
    if height is None:
        if rows % 3:
            raise ValueError(f"NV12 buffer rows ({rows}) are not H*3/2 for an even H")
        height = rows * 2 // 3
    _check_size(height, width)
    if pitch < width:
        raise ValueError(f"NV12 row pitch ({pitch}) is smaller than the width ({width})")
    if rows < height * 3 // 2:
        raise ValueError(f"NV12 buffer has {rows} rows, a {width}x{height} frame needs {height * 3 // 2}")
    return buf[:height, :width], buf[height : height + height // 2, :width]


def uv_views(uv: Any) -> tuple[Any, Any]:
    """Strided U and V views (H/2, W/2) of an interleaved UV plane (H/2, W) or (H/2, W/2, 2)."""
    _check_u8(uv, "UV plane")
    if uv.ndim == 3:
        if uv.shape[2] != 2:
            raise ValueError(f"UV plane of shape {tuple(uv.shape)} is not (H/2, W/2, 2)")
        return uv[:, :, 0], uv[:, :, 1]
    if uv.ndim != 2 or uv.shape[1] % 2:
        raise ValueError(f"interleaved UV plane must be (H/2, W) with an even W, got {tuple(uv.shape)}")
    return uv[:, 0::2], uv[:, 1::2]


def data_ptr(arr: Any) -> int:
    """The address of an array's first element (NumPy or any ``__cuda_array_interface__`` array)."""
    iface = getattr(arr, "__cuda_array_interface__", None) or arr.__array_interface__
    return int(iface["data"][0])


def channels_view(uv: Any) -> Any:
    """(..., H/2, W) interleaved UV as a (..., H/2, W/2, 2) view; never a copy (kernels write through it)."""
    if uv.shape[-1] % 2:
        raise ValueError(f"interleaved UV plane must have an even width, got shape {tuple(uv.shape)}")
    if uv.strides[-1] != 1:
        raise ValueError("interleaved UV plane must have unit column stride to view it as 2 channels")
    out = uv.reshape(tuple(uv.shape[:-1]) + (uv.shape[-1] // 2, 2))
    if uv.size and data_ptr(out) != data_ptr(uv):  # an array module that copied instead of viewing
        raise ValueError("interleaved UV plane cannot be viewed as 2 channels without a copy")
    return out


def uv_channels(uv: Any) -> Any:
    """An interleaved UV plane (H/2, W) as a (H/2, W/2, 2) view (for 2-channel kernels)."""
    if uv.ndim == 3 and uv.shape[2] == 2:
        return uv
    if uv.ndim != 2 or uv.shape[1] % 2:
        raise ValueError(f"interleaved UV plane must be (H/2, W) with an even W, got {tuple(uv.shape)}")
    return channels_view(uv)


def nv12_to_i420(y: Any, uv: Any, copy: bool = True) -> tuple[Any, Any, Any]:
    """(Y, U, V) I420 planes of an NV12 frame given as Y (H, W) and UV (H/2, W).

    With ``copy`` (the default) the three planes are fresh C-contiguous arrays; without it
    they are views into the inputs (U/V strided).
    """
    _check_u8(y, "Y plane")
    if y.ndim != 2:
        raise ValueError(f"Y plane must be 2-D, got shape {tuple(y.shape)}")
    h, w = (int(s) for s in y.shape)
    _check_size(h, w)
    if tuple(uv.shape[:2]) != (h // 2, w) and tuple(uv.shape) != (h // 2, w // 2, 2):
        raise ValueError(f"UV plane of shape {tuple(uv.shape)} does not match a {w}x{h} Y plane")
    u, v = uv_views(uv)
    if not copy:
        return y, u, v
    xp = array_module(y)
    return xp.ascontiguousarray(y), xp.ascontiguousarray(u), xp.ascontiguousarray(v)


def nv12_buffer_to_i420(buf: Any, width: int, height: int | None = None, copy: bool = True) -> tuple[Any, Any, Any]:
    """(Y, U, V) I420 planes of a single pitched NV12 buffer (see :func:`split_nv12_buffer`)."""
    y, uv = split_nv12_buffer(buf, width, height)
    return nv12_to_i420(y, uv, copy=copy)


def interleave_uv(u: Any, v: Any, out: Any = None) -> Any:
    """The interleaved UV plane (H/2, W) of U and V planes (H/2, W/2); written into ``out`` if given."""
    _check_u8(u, "U plane")
    _check_u8(v, "V plane")
    if u.ndim != 2 or tuple(u.shape) != tuple(v.shape):
        raise ValueError(f"U and V planes must be 2-D and the same shape, got {tuple(u.shape)}, {tuple(v.shape)}")
    h2, w2 = (int(s) for s in u.shape)
    xp = array_module(u)
    if out is None:
        out = xp.empty((h2, w2 * 2), dtype=xp.uint8)
    elif tuple(out.shape) not in ((h2, w2 * 2), (h2, w2, 2)):
        raise ValueError(f"out of shape {tuple(out.shape)} cannot hold a ({h2}, {w2 * 2}) UV plane")
    ou, ov = uv_views(out)
    ou[...] = u
    ov[...] = v
    return out


def i420_to_nv12(y: Any, u: Any, v: Any, out: Any = None) -> Any:
    """One NV12 buffer (H*3/2, W) (or ``out`` (H*3/2, pitch >= W), filled) from I420 planes."""
    _check_u8(y, "Y plane")
    if y.ndim != 2:
        raise ValueError(f"Y plane must be 2-D, got shape {tuple(y.shape)}")
    h, w = (int(s) for s in y.shape)
    _check_size(h, w)
    if tuple(u.shape) != (h // 2, w // 2):
        raise ValueError(f"U/V planes of shape {tuple(u.shape)} do not match a {w}x{h} Y plane")
    xp = array_module(y)
    if out is None:
        out = xp.empty((h * 3 // 2, w), dtype=xp.uint8)
    oy, ouv = split_nv12_buffer(out, w, h)
    oy[...] = y
    interleave_uv(u, v, out=ouv)
    return out


def i420_buffer(y: Any, u: Any, v: Any) -> Any:
    """One packed I420 buffer (H*3/2, W): Y rows, then U, then V (as cv2's COLOR_YUV2BGR_I420 reads it)."""
    xp = array_module(y)
    h, w = (int(s) for s in y.shape)
    _check_size(h, w)
    out = xp.empty((h * 3 // 2, w), dtype=xp.uint8)
    out[:h] = y
    flat, n = out.reshape(-1), h * w
    flat[n : n + n // 4].reshape(h // 2, w // 2)[...] = u
    flat[n + n // 4 :].reshape(h // 2, w // 2)[...] = v
    return out
