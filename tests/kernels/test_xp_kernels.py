"""The array-module kernels (kernels.xp_resize, kernels.xp_composite) run with NumPy against the
OpenCV/NumPy reference the CPU render uses (kernels.resize, kernels.composite).

Measured with cv2 5.0.0: every kernel bit-exact (max 0, mean 0) on every case here, and sprite
blending into NV12 bit-identical to blending into I420. The resize tests assert the issue's bound
(max 1 level) plus a mean of at most 0.001, so an OpenCV upgrade that shifts rounding on a few pixels
still passes while a real regression (a wrong table, a shifted pixel grid) does not.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from kernels import resize as ref
from kernels import xp_resize as xr
from kernels.composite import Sprite, blend_sprite_i420, sprite_from_rgba
from kernels.nv12 import i420_to_nv12, interleave_uv, split_nv12_buffer, uv_channels
from kernels.xp_composite import blend_sprite_nv12


def _image(rng: np.random.Generator, h: int, w: int, c: int | None = None) -> np.ndarray:
    """Smooth structure plus 30 % salt noise: edges, flats and worst-case pixels."""
    shape = (h // 8 + 1, w // 8 + 1) + ((c,) if c else ())
    base = cv2.resize(rng.integers(0, 256, shape, dtype=np.uint8), (w, h), interpolation=cv2.INTER_CUBIC)
    noise = rng.integers(0, 256, base.shape, dtype=np.uint8)
    return np.where(rng.random(base.shape) < 0.3, noise, base).astype(np.uint8)


def _diff(a: np.ndarray, b: np.ndarray) -> tuple[int, float]:
    assert a.shape == b.shape and a.dtype == b.dtype == np.uint8
    e = np.abs(a.astype(np.int16) - b.astype(np.int16))
    return int(e.max()), float(e.mean())


# (source w, h, crop w, h, output w, h): the render's crop mode (9:16 window of a 16:9 source,
# scaled up), a crop of a 720p source to 1080p output, and full-frame shrinks (area) and grows.
CROPS = [
    (1920, 1080, 608, 1080, 1080, 1920),
    (1280, 720, 404, 720, 720, 1280),
    (1280, 720, 404, 720, 1080, 1920),
    (1920, 1080, 1920, 1080, 720, 404),
    (1280, 720, 1280, 720, 720, 404),
    (1920, 1080, 1920, 1080, 1080, 606),
    (1920, 1080, 1920, 1080, 1080, 1920),
    (1920, 1080, 608, 1080, 1080, 960),  # one panel of the split layout
]


@pytest.mark.parametrize("sw,sh,cw,ch,ow,oh", CROPS)
def test_crop_resize_luma_matches_opencv(sw: int, sh: int, cw: int, ch: int, ow: int, oh: int) -> None:
    rng = np.random.default_rng(sw + cw + ow)
    y = _image(rng, sh, sw)
    x = (sw - cw) // 3 // 2 * 2
    want = ref.crop_resize(y, x, 0, cw, ch, ow, oh)
    dst = np.empty((oh, ow), np.uint8)
    got = xr.crop_resize(y, x, 0, cw, ch, ow, oh, dst=dst)
    assert got is dst
    mx, mean = _diff(want, got)
    assert mx <= 1 and mean <= 0.001, (mx, mean)


@pytest.mark.parametrize("sw,sh,cw,ch,ow,oh", CROPS[:4])
def test_crop_resize_nv12_matches_per_plane_reference(sw: int, sh: int, cw: int, ch: int, ow: int, oh: int) -> None:
    """Interleaved UV resized in one 2-channel pass == U and V resized apart (as render.py does), interleaved."""
    rng = np.random.default_rng(sw * 7 + ow)
    y, u, v = _image(rng, sh, sw), _image(rng, sh // 2, sw // 2), _image(rng, sh // 2, sw // 2)
    ybuf, uv = split_nv12_buffer(i420_to_nv12(y, u, v), sw)
    x = (sw - cw) // 2 // 2 * 2
    want_y = ref.crop_resize(y, x, 0, cw, ch, ow, oh)
    want_uv = interleave_uv(
        ref.crop_resize(u, x // 2, 0, cw // 2, ch // 2, ow // 2, oh // 2),
        ref.crop_resize(v, x // 2, 0, cw // 2, ch // 2, ow // 2, oh // 2),
    )
    got_y, got_uv = xr.crop_resize_nv12(ybuf, uv, x, 0, cw, ch, ow, oh)
    assert got_uv.shape == (oh // 2, ow)
    for want, got in ((want_y, got_y), (want_uv, got_uv)):
        mx, mean = _diff(want, got)
        assert mx <= 1 and mean <= 0.001, (mx, mean)


def test_crop_window_clamped_and_identity() -> None:
    rng = np.random.default_rng(5)
    y = _image(rng, 72, 128)
    for x, top in ((-10, -4), (500, 300), (30, 8)):
        mx, _ = _diff(ref.crop_resize(y, x, top, 40, 72, 90, 160), xr.crop_resize(y, x, top, 40, 72, 90, 160))
        assert mx <= 1
    same = xr.crop_resize(y, 6, 0, 40, 72, 40, 72)
    assert np.array_equal(same, y[:, 6:46]) and not np.shares_memory(same, y)
    # a window larger than the plane is clamped to it
    assert np.array_equal(xr.crop_resize(y, 0, 0, 999, 999, 128, 72), y)


@pytest.mark.parametrize("src,dst", [(608, 1080), (720, 1280), (1080, 1920), (1920, 1080), (1280, 720), (5, 3)])
def test_tables_are_normalised(src: int, dst: int) -> None:
    idx, w = xr.linear_table(src, dst)
    assert idx.min() >= 0 and idx.max() < src
    assert np.abs(w.sum(axis=1) - 2048).max() <= 1
    if dst < src:
        idx, w = xr.area_table(src, dst)
        assert idx.min() >= 0 and idx.max() < src
        assert np.allclose(w.sum(axis=1), 1.0, atol=1e-5)
    with pytest.raises(ValueError):
        xr.area_table(3, 5)


@pytest.mark.parametrize("sw,sh,ow,oh", [(1920, 1080, 1080, 1920), (1280, 720, 720, 1280)])
def test_fit_over_blur_matches_opencv(sw: int, sh: int, ow: int, oh: int) -> None:
    """The fitted source and the blurred fill both within 1 level (bit-exact with cv2 5.0)."""
    rng = np.random.default_rng(sw + ow)
    rect = ref.fit_rect(sw, sh, ow, oh)
    for k, c in ((1, None), (2, 2)):  # luma, then interleaved chroma as 2 channels
        plane = _image(rng, sh // k, sw // k, c)
        r = tuple(val // k for val in rect)
        want = ref.fit_over_blur(plane, ow // k, oh // k, r)
        got = xr.fit_over_blur(plane, ow // k, oh // k, r)
        fill = np.ones(want.shape[:2], bool)
        rx, ry, rw, rh = r
        fill[ry : ry + rh, rx : rx + rw] = False
        mx, mean = _diff(want[~fill], got[~fill])
        assert mx <= 1 and mean <= 0.001, ("rect", mx, mean)
        mx, mean = _diff(want[fill], got[fill])
        assert mx <= 1 and mean <= 0.001, ("fill", mx, mean)


def test_gaussian_blur_and_area_small() -> None:
    rng = np.random.default_rng(8)
    plane = _image(rng, 1080, 1920)
    small_ref = cv2.resize(plane, (67, 120), interpolation=cv2.INTER_AREA)
    small = xr.resize_area(plane, 67, 120)
    assert _diff(small_ref, small)[0] <= 1
    for sigma in (1.0, 45 / 24, 67 / 24, 3.7):
        mx, mean = _diff(cv2.GaussianBlur(small_ref, (0, 0), sigmaX=sigma), xr.gaussian_blur(small_ref, sigma))
        assert mx <= 1 and mean <= 0.001, (sigma, mx, mean)
    k = xr.gaussian_kernel_u8(67 / 24)
    assert k.sum() == 256 and len(k) == 19 and np.array_equal(k, k[::-1])


@pytest.mark.parametrize("w,h,f", [(1920, 1080, 2), (1282, 722, 2), (1280, 720, 4), (640, 360, 3)])
def test_area_integer_factors(w: int, h: int, f: int) -> None:
    """OpenCV's integer-factor fast path (2x2 rounds ties up, the rest ties to even)."""
    rng = np.random.default_rng(w + f)
    for c in (None, 2, 3):
        p = rng.integers(0, 256, (h, w) + ((c,) if c else ()), dtype=np.uint8)
        want = cv2.resize(p, (w // f, h // f), interpolation=cv2.INTER_AREA)
        mx, mean = _diff(want, xr.resize_area(p, w // f, h // f))
        assert mx <= 1 and mean <= 0.001, (c, mx, mean)


def test_random_sizes_match_opencv() -> None:
    rng = np.random.default_rng(13)
    for t in range(40):
        w, h = (int(v) for v in rng.integers(2, 200, 2))
        ow, oh = (int(v) for v in rng.integers(2, 260, 2))
        c = (None, 2, 3)[t % 3]
        p = rng.integers(0, 256, (h, w) + ((c,) if c else ()), dtype=np.uint8)
        interp = cv2.INTER_AREA if (ow < w and oh < h) else cv2.INTER_LINEAR
        want = cv2.resize(p, (ow, oh), interpolation=interp).reshape((oh, ow) + p.shape[2:])
        mx, mean = _diff(want, xr.resize(p, ow, oh))
        assert mx <= 1 and mean <= 0.001, ((w, h, ow, oh, c), mx, mean)


def test_fit_nv12_matches_render_fit() -> None:
    """fit_nv12 == render.py's pad path (fit_over_blur + darken_luma on Y, fit_over_blur on U and V)."""
    rng = np.random.default_rng(9)
    sw, sh, ow, oh = 1280, 720, 720, 1280
    y, u, v = _image(rng, sh, sw), _image(rng, sh // 2, sw // 2), _image(rng, sh // 2, sw // 2)
    rect = ref.fit_rect(sw, sh, ow, oh)
    half = tuple(val // 2 for val in rect)
    want_y = ref.fit_over_blur(y, ow, oh, rect)
    ref.darken_luma(want_y, rect)
    want_uv = interleave_uv(ref.fit_over_blur(u, ow // 2, oh // 2, half), ref.fit_over_blur(v, ow // 2, oh // 2, half))
    ybuf, uv = split_nv12_buffer(i420_to_nv12(y, u, v), sw)
    dst_y, dst_uv = np.empty((oh, ow), np.uint8), np.empty((oh // 2, ow), np.uint8)
    got_y, got_uv = xr.fit_nv12(ybuf, uv, ow, oh, rect, dst_y=dst_y, dst_uv=dst_uv)
    assert got_y is dst_y and got_uv is dst_uv
    for want, got in ((want_y, got_y), (want_uv, got_uv)):
        mx, mean = _diff(want, got)
        assert mx <= 1 and mean <= 0.001, (mx, mean)


def test_darken_luma_exact() -> None:
    rng = np.random.default_rng(10)
    plane = _image(rng, 128, 72)
    rect = (8, 40, 56, 32)
    a, b = plane.copy(), plane.copy()
    ref.darken_luma(a, rect)
    xr.darken_luma(b, rect)
    assert np.array_equal(a, b) and not np.array_equal(a, plane)


def _sprite(rng: np.random.Generator, h: int, w: int, x: int, y: int) -> Sprite:
    rgba = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
    rgba[: h // 4, :, 3] = 0
    rgba[-(h // 4) :, :, 3] = 255
    return sprite_from_rgba(rgba, x, y)


@pytest.mark.parametrize("x,y", [(100, 1500), (-40, -10), (1000, 1880), (0, 0), (2000, 0)])
def test_blend_nv12_bit_identical_to_i420(x: int, y: int) -> None:
    rng = np.random.default_rng(abs(x) + abs(y))
    H, W = 1920, 1080
    fy = rng.integers(16, 236, (H, W), dtype=np.uint8)
    fu = rng.integers(16, 241, (H // 2, W // 2), dtype=np.uint8)
    fv = rng.integers(16, 241, (H // 2, W // 2), dtype=np.uint8)
    sprite = _sprite(rng, 120, 800, x, y)
    nv12 = i420_to_nv12(fy, fu, fv)
    ny, nuv = split_nv12_buffer(nv12, W)
    blend_sprite_i420(fy, fu, fv, sprite)
    blend_sprite_nv12(ny, nuv, sprite)
    assert np.array_equal(nv12, i420_to_nv12(fy, fu, fv))


def test_blend_nv12_batch_and_channel_view() -> None:
    rng = np.random.default_rng(11)
    n, H, W = 3, 64, 96
    fy = rng.integers(0, 256, (n, H, W), dtype=np.uint8)
    fu = rng.integers(0, 256, (n, H // 2, W // 2), dtype=np.uint8)
    fv = rng.integers(0, 256, (n, H // 2, W // 2), dtype=np.uint8)
    sprite = _sprite(rng, 16, 40, 10, 20)
    uv = np.stack([interleave_uv(fu[i], fv[i]) for i in range(n)])
    one_y, one_uv = fy[1].copy(), uv_channels(uv[1].copy()).copy()  # frame 1 before blending
    ny = fy.copy()
    blend_sprite_nv12(ny, uv, sprite)
    for i in range(n):
        blend_sprite_i420(fy[i], fu[i], fv[i], sprite)
        assert np.array_equal(uv[i], interleave_uv(fu[i], fv[i])) and np.array_equal(ny[i], fy[i])
    # a (H/2, W/2, 2) channel view takes the same path
    f1y, f1u, f1v = one_y.copy(), one_uv[..., 0].copy(), one_uv[..., 1].copy()
    blend_sprite_nv12(one_y, one_uv, sprite)
    blend_sprite_i420(f1y, f1u, f1v, sprite)
    assert np.array_equal(one_y, f1y)
    assert np.array_equal(one_uv[..., 0], f1u) and np.array_equal(one_uv[..., 1], f1v)
    with pytest.raises(ValueError, match="does not match"):
        blend_sprite_nv12(np.zeros((H, W), np.uint8), np.zeros((H // 2, W + 2), np.uint8), sprite)


def test_fused_blend_needs_cupy() -> None:
    rng = np.random.default_rng(12)
    sprite = _sprite(rng, 8, 8, 0, 0)
    with pytest.raises(ValueError, match="CuPy"):
        blend_sprite_nv12(np.zeros((16, 16), np.uint8), np.zeros((8, 16), np.uint8), sprite, fused=True)


class _ShimXp:
    """NumPy under another name: drives the non-NumPy branches (tables moved once per module and size)."""

    __name__ = "shimxp"

    def __getattr__(self, name: str):
        return getattr(np, name)


def test_non_numpy_module_path_uses_cached_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    shim = _ShimXp()
    monkeypatch.setattr(xr, "array_module", lambda arr: shim)
    moved: list[tuple] = []
    real_on = xr._on

    def spy(xp, key, tables):
        out = real_on(xp, key, tables)
        moved.append(key)
        return out

    monkeypatch.setattr(xr, "_on", spy)
    rng = np.random.default_rng(14)
    y = _image(rng, 720, 1280)
    want = ref.crop_resize(y, 400, 0, 404, 720, 720, 1280)
    for _ in range(2):
        assert _diff(want, xr.crop_resize(y, 400, 0, 404, 720, 720, 1280))[0] == 0
    want_fit = ref.fit_over_blur(y, 720, 1280, ref.fit_rect(1280, 720, 720, 1280))
    assert _diff(want_fit, xr.fit_over_blur(y, 720, 1280, ref.fit_rect(1280, 720, 720, 1280)))[0] <= 1
    assert ("lin", 404, 720) in moved and any(k[0] == "gauss" for k in moved)
    cached = [k for k in xr._device_tables if k[0] == "shimxp"]
    assert ("shimxp", "lin", 404, 720) in cached and len(cached) == len(set(moved))
