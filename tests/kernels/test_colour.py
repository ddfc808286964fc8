"""BT.709 limited-range conversions: reference values, round trips, alpha-weighted chroma."""

from __future__ import annotations

import numpy as np
import pytest

from kernels.colour import rgb_to_yuv420, rgba_to_yuva420, yuv420_to_rgb


def _solid(rgb: tuple[int, int, int], h: int = 4, w: int = 6) -> np.ndarray:
    return np.broadcast_to(np.array(rgb, np.uint8), (h, w, 3)).copy()


@pytest.mark.parametrize(
    ("rgb", "yuv"),
    [
        ((0, 0, 0), (16, 128, 128)),
        ((255, 255, 255), (235, 128, 128)),
        ((255, 0, 0), (63, 102, 240)),  # BT.709 red
        ((0, 255, 0), (173, 42, 26)),
        ((0, 0, 255), (32, 240, 118)),
    ],
)
def test_reference_values(rgb: tuple[int, int, int], yuv: tuple[int, int, int]) -> None:
    y, u, v = rgb_to_yuv420(_solid(rgb))
    assert y.shape == (4, 6) and u.shape == v.shape == (2, 3)
    got = (int(y[0, 0]), int(u[0, 0]), int(v[0, 0]))
    assert all(abs(a - b) <= 1 for a, b in zip(got, yuv, strict=True)), got


def test_round_trip_on_2x2_blocks_is_close() -> None:
    rng = np.random.default_rng(1)
    blocks = rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)
    rgb = np.repeat(np.repeat(blocks, 2, axis=0), 2, axis=1)  # chroma is exact per block
    back = yuv420_to_rgb(*rgb_to_yuv420(rgb))
    err = np.abs(back.astype(int) - rgb.astype(int))
    assert err.max() <= 3
    assert err.mean() < 1.0


def test_round_trip_smooth_image() -> None:
    yy, xx = np.mgrid[0:64, 0:96]
    rgb = np.stack([xx * 2, yy * 3, 255 - xx * 2], axis=-1).clip(0, 255).astype(np.uint8)
    back = yuv420_to_rgb(*rgb_to_yuv420(rgb))
    assert np.abs(back.astype(int) - rgb.astype(int)).max() <= 6


def test_odd_sizes_pad_to_even() -> None:
    y, u, v = rgb_to_yuv420(_solid((10, 200, 30), 5, 7))
    assert y.shape == (6, 8) and u.shape == (3, 4)
    assert np.all(y == y[0, 0]) and np.all(u == u[0, 0])
    ya, ua, va, a, a2 = rgba_to_yuva420(np.full((3, 5, 4), 255, np.uint8))
    assert ya.shape == a.shape == (4, 6) and ua.shape == a2.shape == (2, 3)
    assert a[3, 0] == 0 and a[0, 5] == 0  # padding is transparent


def test_rgba_chroma_is_alpha_weighted() -> None:
    rgba = np.zeros((2, 2, 4), np.uint8)  # transparent black around one opaque red pixel
    rgba[0, 0] = (255, 0, 0, 255)
    y, u, v, a, a2 = rgba_to_yuva420(rgba)
    assert (int(u[0, 0]), int(v[0, 0])) == (102, 240)  # pure red's chroma, no black bleed
    assert int(a2[0, 0]) == 64 and int(a[0, 0]) == 255 and int(a[1, 1]) == 0
    assert int(y[0, 0]) == 63
    _, u0, v0, _, a20 = rgba_to_yuva420(np.zeros((2, 2, 4), np.uint8))
    assert (int(u0[0, 0]), int(v0[0, 0]), int(a20[0, 0])) == (128, 128, 0)
