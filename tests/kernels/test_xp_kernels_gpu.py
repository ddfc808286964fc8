"""The array-module kernels on CuPy vs the same functions on NumPy (marker ``gpu``; skipped without a device).

Integer paths (bilinear, NV12 plane handling, darkening, sprite blending, fused and not) must be
bit-identical; float paths (area, the Gaussian of the blurred fill) within 1 level (FMA contraction
and reduction order may round differently on the GPU).
"""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.gpu

cp = pytest.importorskip("cupy")
try:
    _DEVICES = cp.cuda.runtime.getDeviceCount()
except Exception:  # no driver / no device: CUDARuntimeError and friends
    _DEVICES = 0
if _DEVICES < 1:
    pytest.skip("no CUDA device", allow_module_level=True)

from kernels import resize as ref  # noqa: E402
from kernels import xp_resize as xr  # noqa: E402
from kernels.composite import sprite_from_rgba  # noqa: E402
from kernels.nv12 import i420_to_nv12, nv12_buffer_to_i420, split_nv12_buffer  # noqa: E402
from kernels.xp import array_module  # noqa: E402
from kernels.xp_composite import blend_sprite_nv12  # noqa: E402


def _frame(rng: np.random.Generator, h: int, w: int):
    return (
        rng.integers(0, 256, (h, w), dtype=np.uint8),
        rng.integers(0, 256, (h // 2, w // 2), dtype=np.uint8),
        rng.integers(0, 256, (h // 2, w // 2), dtype=np.uint8),
    )


def _maxdiff(a, b) -> int:
    a = cp.asnumpy(a) if isinstance(a, cp.ndarray) else a
    b = cp.asnumpy(b) if isinstance(b, cp.ndarray) else b
    assert a.shape == b.shape and a.dtype == b.dtype
    return int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max())


def test_array_module_is_cupy() -> None:
    assert array_module(cp.zeros(2)) is cp


def test_nv12_planes_on_gpu_pitched() -> None:
    rng = np.random.default_rng(0)
    h, w, pitch = 1080, 1920, 2048
    y, u, v = _frame(rng, h, w)
    buf = cp.zeros((h * 3 // 2, pitch), cp.uint8)
    i420_to_nv12(cp.asarray(y), cp.asarray(u), cp.asarray(v), out=buf)
    assert np.array_equal(cp.asnumpy(buf[:, :w]), i420_to_nv12(y, u, v))
    gy, gu, gv = nv12_buffer_to_i420(buf, w)
    assert isinstance(gu, cp.ndarray)
    for a, b in ((gy, y), (gu, u), (gv, v)):
        assert np.array_equal(cp.asnumpy(a), b)


@pytest.mark.parametrize(
    "sw,sh,cw,ch,ow,oh",
    [(1920, 1080, 608, 1080, 1080, 1920), (1280, 720, 404, 720, 720, 1280), (1920, 1080, 1920, 1080, 720, 404)],
)
def test_crop_resize_nv12_cupy_vs_numpy(sw: int, sh: int, cw: int, ch: int, ow: int, oh: int) -> None:
    rng = np.random.default_rng(sw + ow)
    buf = i420_to_nv12(*_frame(rng, sh, sw))
    y, uv = split_nv12_buffer(buf, sw)
    gy, guv = split_nv12_buffer(cp.asarray(buf), sw)
    x = (sw - cw) // 2 // 2 * 2
    want_y, want_uv = xr.crop_resize_nv12(y, uv, x, 0, cw, ch, ow, oh)
    got_y, got_uv = xr.crop_resize_nv12(gy, guv, x, 0, cw, ch, ow, oh)
    assert isinstance(got_y, cp.ndarray) and isinstance(got_uv, cp.ndarray)
    tol = 1 if (ow < cw and oh < ch) else 0  # area is float math; bilinear is integer
    assert _maxdiff(want_y, got_y) <= tol and _maxdiff(want_uv, got_uv) <= tol
    # and still within 1 level of the OpenCV reference
    assert _maxdiff(ref.crop_resize(buf[:sh], x, 0, cw, ch, ow, oh), got_y) <= 1


@pytest.mark.parametrize("sw,sh,ow,oh", [(1920, 1080, 1080, 1920), (1280, 720, 720, 1280)])
def test_fit_nv12_cupy_vs_numpy(sw: int, sh: int, ow: int, oh: int) -> None:
    rng = np.random.default_rng(sw)
    buf = i420_to_nv12(*_frame(rng, sh, sw))
    rect = ref.fit_rect(sw, sh, ow, oh)
    want_y, want_uv = xr.fit_nv12(*split_nv12_buffer(buf, sw), ow, oh, rect)
    got_y, got_uv = xr.fit_nv12(*split_nv12_buffer(cp.asarray(buf), sw), ow, oh, rect)
    assert _maxdiff(want_y, got_y) <= 1 and _maxdiff(want_uv, got_uv) <= 1


@pytest.mark.parametrize("fused", [True, False])
def test_blend_nv12_cupy_bit_identical(fused: bool) -> None:
    rng = np.random.default_rng(3)
    n, H, W = 4, 1920, 1080
    rgba = rng.integers(0, 256, (120, 800, 4), dtype=np.uint8)
    rgba[:30, :, 3], rgba[-30:, :, 3] = 0, 255
    sprite = sprite_from_rgba(rgba, 140, 1780)  # clipped at the bottom
    ys = rng.integers(0, 256, (n, H, W), dtype=np.uint8)
    uvs = rng.integers(0, 256, (n, H // 2, W), dtype=np.uint8)
    gy, guv = cp.asarray(ys), cp.asarray(uvs)
    blend_sprite_nv12(ys, uvs, sprite)
    blend_sprite_nv12(gy, guv, sprite, fused=fused)
    assert np.array_equal(cp.asnumpy(gy), ys) and np.array_equal(cp.asnumpy(guv), uvs)


def test_darken_luma_cupy_exact() -> None:
    rng = np.random.default_rng(4)
    plane = rng.integers(0, 256, (1920, 1080), dtype=np.uint8)
    rect = (0, 656, 1080, 606)
    g = cp.asarray(plane)
    xr.darken_luma(plane, rect)
    xr.darken_luma(g, rect)
    assert np.array_equal(cp.asnumpy(g), plane)
