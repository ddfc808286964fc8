"""NV12 <-> I420 plane handling: exact round trips, pitched buffers, cv2's own NV12/I420 readers, errors."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from kernels.nv12 import (
    channels_view,
    data_ptr,
    i420_buffer,
    i420_to_nv12,
    interleave_uv,
    nv12_buffer_to_i420,
    nv12_to_i420,
    split_nv12_buffer,
    uv_channels,
    uv_views,
)


def _i420(rng: np.random.Generator, h: int, w: int):
    return (
        rng.integers(0, 256, (h, w), dtype=np.uint8),
        rng.integers(0, 256, (h // 2, w // 2), dtype=np.uint8),
        rng.integers(0, 256, (h // 2, w // 2), dtype=np.uint8),
    )


@pytest.mark.parametrize("h,w", [(2, 2), (6, 10), (720, 1280), (1080, 1920)])
def test_round_trip_exact(h: int, w: int) -> None:
    rng = np.random.default_rng(h * w)
    y, u, v = _i420(rng, h, w)
    buf = i420_to_nv12(y, u, v)
    assert buf.shape == (h * 3 // 2, w)
    # the interleaved layout NVDEC writes: U0 V0 U1 V1 ...
    assert np.array_equal(buf[h:, 0::2], u) and np.array_equal(buf[h:, 1::2], v)
    y2, u2, v2 = nv12_buffer_to_i420(buf, w)
    for a, b in ((y, y2), (u, u2), (v, v2)):
        assert np.array_equal(a, b) and b.flags.c_contiguous
    assert np.array_equal(i420_to_nv12(y2, u2, v2), buf)


def test_pitched_buffer_and_padded_rows() -> None:
    rng = np.random.default_rng(1)
    h, w, pitch = 720, 1280, 1536
    y, u, v = _i420(rng, h, w)
    buf = np.full((h * 3 // 2 + 8, pitch), 77, np.uint8)  # surface rows padded too
    i420_to_nv12(y, u, v, out=buf[:, :])
    assert (buf[:, w:] == 77).all() and (buf[h * 3 // 2 :] == 77).all()  # padding untouched
    yv, uvv = split_nv12_buffer(buf, w, h)
    assert np.shares_memory(yv, buf) and np.shares_memory(uvv, buf)  # views, no copy
    y2, u2, v2 = nv12_to_i420(yv, uvv, copy=False)
    assert np.shares_memory(u2, buf)
    assert np.array_equal(y2, y) and np.array_equal(u2, u) and np.array_equal(v2, v)
    y3, u3, v3 = nv12_buffer_to_i420(buf[: h * 3 // 2], w)  # height inferred from the rows
    assert np.array_equal(y3, y) and np.array_equal(u3, u) and np.array_equal(v3, v)


def test_against_cv2_nv12_and_i420_readers() -> None:
    """cv2 decodes our NV12 buffer and our I420 buffer of the same frame to the same BGR image."""
    rng = np.random.default_rng(2)
    h, w = 360, 640
    y, u, v = _i420(rng, h, w)
    nv12 = i420_to_nv12(y, u, v)
    i420 = i420_buffer(y, u, v)
    bgr_nv12 = cv2.cvtColor(nv12, cv2.COLOR_YUV2BGR_NV12)
    bgr_i420 = cv2.cvtColor(i420, cv2.COLOR_YUV2BGR_I420)
    assert np.array_equal(bgr_nv12, bgr_i420)
    # and cv2's own I420 -> NV12 packing is what we read back
    back = nv12_buffer_to_i420(nv12, w)
    assert np.array_equal(i420_buffer(*back), i420)


def test_i420_buffer_height_not_multiple_of_4() -> None:
    rng = np.random.default_rng(3)
    y, u, v = _i420(rng, 6, 8)
    buf = i420_buffer(y, u, v)
    assert np.array_equal(
        cv2.cvtColor(buf, cv2.COLOR_YUV2BGR_I420), cv2.cvtColor(i420_to_nv12(y, u, v), cv2.COLOR_YUV2BGR_NV12)
    )


def test_uv_helpers() -> None:
    uv = np.arange(24, dtype=np.uint8).reshape(3, 8)
    u, v = uv_views(uv)
    assert u.tolist()[0] == [0, 2, 4, 6] and v.tolist()[0] == [1, 3, 5, 7]
    c = uv_channels(uv)
    assert c.shape == (3, 4, 2) and np.shares_memory(c, uv) and np.array_equal(c[..., 0], u)
    assert uv_views(c)[1].tolist() == v.tolist()
    out = np.zeros((3, 4, 2), np.uint8)
    interleave_uv(np.ascontiguousarray(u), np.ascontiguousarray(v), out=out)
    assert np.array_equal(out.reshape(3, 8), uv)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: split_nv12_buffer(np.zeros((16, 16), np.uint8), 16), "H\\*3/2"),
        (lambda: split_nv12_buffer(np.zeros((9, 16), np.uint8), 15), "even"),
        (lambda: split_nv12_buffer(np.zeros((9, 16), np.uint8), 18), "pitch"),
        (lambda: split_nv12_buffer(np.zeros((9, 16), np.uint8), 16, height=8), "rows"),
        (lambda: split_nv12_buffer(np.zeros((9, 16), np.uint16), 16), "uint8"),
        (lambda: split_nv12_buffer(np.zeros((9, 16, 1), np.uint8), 16), "2-D"),
        (lambda: nv12_to_i420(np.zeros((6, 8), np.uint8), np.zeros((3, 6), np.uint8)), "does not match"),
        (lambda: nv12_to_i420(np.zeros((5, 8), np.uint8), np.zeros((2, 8), np.uint8)), "even"),
        (lambda: uv_views(np.zeros((3, 7), np.uint8)), "even W"),
        (lambda: interleave_uv(np.zeros((3, 4), np.uint8), np.zeros((3, 5), np.uint8)), "same shape"),
        (
            lambda: interleave_uv(
                np.zeros((3, 4), np.uint8), np.zeros((3, 4), np.uint8), out=np.zeros((3, 7), np.uint8)
            ),
            "cannot hold",
        ),
        (
            lambda: i420_to_nv12(np.zeros((6, 8), np.uint8), np.zeros((3, 3), np.uint8), np.zeros((3, 3), np.uint8)),
            "do not match",
        ),
    ],
)
def test_errors(call, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()


def test_channels_view_is_a_view_with_leading_dims() -> None:
    buf = np.zeros((4, 9, 2048), np.uint8)[:, 6:, :1920]  # a batch of pitched UV planes
    view = channels_view(buf)
    assert view.shape == (4, 3, 960, 2) and np.shares_memory(view, buf)
    view[1, 2, 5, 1] = 9
    assert buf[1, 2, 11] == 9 and data_ptr(view) == data_ptr(buf)
    with pytest.raises(ValueError, match="unit column stride"):
        channels_view(np.zeros((3, 16), np.uint8)[:, ::2])
    with pytest.raises(ValueError, match="even width"):
        channels_view(np.zeros((3, 15), np.uint8))
