"""Sprite blending into I420 frames: accuracy vs a float reference, clipping, batches."""

from __future__ import annotations

import numpy as np
import pytest

from kernels.composite import Sprite, blend_sprite_batch, blend_sprite_i420, sprite_from_rgba


def _random_sprite(rng: np.random.Generator, h: int, w: int, x: int, y: int) -> Sprite:
    rgba = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
    rgba[: h // 4, :, 3] = 0  # some fully transparent and fully opaque areas too
    rgba[-(h // 4) :, :, 3] = 255
    return sprite_from_rgba(rgba, x, y)


def _frame(rng: np.random.Generator, h: int, w: int, n: int | None = None):
    shape = (h, w) if n is None else (n, h, w)
    cshape = (h // 2, w // 2) if n is None else (n, h // 2, w // 2)
    return (
        rng.integers(16, 236, shape, dtype=np.uint8),
        rng.integers(16, 241, cshape, dtype=np.uint8),
        rng.integers(16, 241, cshape, dtype=np.uint8),
    )


def _reference(plane: np.ndarray, sp: np.ndarray, a: np.ndarray, x: int, y: int) -> np.ndarray:
    """Float blend through a padded canvas, so clipping needs no index arithmetic."""
    H, W = plane.shape
    h, w = sp.shape
    pad = max(h, w) + abs(x) + abs(y) + H + W
    big = np.pad(plane.astype(np.float64), pad)
    reg = big[pad + y : pad + y + h, pad + x : pad + x + w]
    af = a.astype(np.float64) / 255.0
    reg[...] = reg * (1 - af) + sp.astype(np.float64) * af
    return np.rint(big[pad : pad + H, pad : pad + W]).astype(np.int64)


@pytest.mark.parametrize(
    ("x", "y"),
    [(20, 30), (-40, -22), (100, 70), (-200, 10), (0, 0), (118, 78), (400, 400)],
)
def test_blend_matches_float_reference_and_clips(x: int, y: int) -> None:
    rng = np.random.default_rng(abs(x) + abs(y))
    s = _random_sprite(rng, 48, 64, x, y)
    Y, U, V = _frame(rng, 80, 120)
    exp_y = _reference(Y, s.y_plane, s.a, x, y)
    exp_u = _reference(U, s.u, s.a2, x // 2, y // 2)
    exp_v = _reference(V, s.v, s.a2, x // 2, y // 2)
    blend_sprite_i420(Y, U, V, s)
    for got, exp in ((Y, exp_y), (U, exp_u), (V, exp_v)):
        assert got.dtype == np.uint8
        assert np.abs(got.astype(np.int64) - exp).max() <= 2


def test_alpha_extremes_keep_or_replace() -> None:
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[:2, :, :] = (255, 255, 255, 255)  # opaque white top half, transparent bottom half
    s = sprite_from_rgba(rgba, 2, 2)
    Y = np.full((8, 8), 100, np.uint8)
    U = np.full((4, 4), 90, np.uint8)
    V = U.copy()
    blend_sprite_i420(Y, U, V, s)
    assert np.all(Y[2:4, 2:6] == 235) and np.all(Y[4:6, 2:6] == 100)
    assert np.all(Y[:2] == 100) and np.all(Y[:, :2] == 100)
    assert np.all(U[1, 1:3] == 128) and np.all(U[2, 1:3] == 90)


def test_sprite_fully_outside_changes_nothing() -> None:
    rng = np.random.default_rng(3)
    s = _random_sprite(rng, 8, 8, -20, 100)
    Y, U, V = _frame(rng, 16, 16)
    before = (Y.copy(), U.copy(), V.copy())
    blend_sprite_i420(Y, U, V, s)
    assert all(np.array_equal(a, b) for a, b in zip(before, (Y, U, V), strict=True))


def test_batch_equals_per_frame() -> None:
    rng = np.random.default_rng(4)
    s = _random_sprite(rng, 20, 30, -6, 10)
    Yb, Ub, Vb = _frame(rng, 40, 60, n=3)
    Ys, Us, Vs = Yb.copy(), Ub.copy(), Vb.copy()
    blend_sprite_batch(Yb, Ub, Vb, s)
    for i in range(3):
        blend_sprite_i420(Ys[i], Us[i], Vs[i], s)
    assert np.array_equal(Yb, Ys) and np.array_equal(Ub, Us) and np.array_equal(Vb, Vs)
    with pytest.raises(ValueError):
        blend_sprite_batch(Yb[0], Ub[0], Vb[0], s)


def test_integer_division_by_255_is_exactly_rounded() -> None:
    v = np.arange(0, 255 * 255 + 1, dtype=np.int64)
    t = v + 128
    assert np.array_equal((t + (t >> 8)) >> 8, np.floor(v / 255 + 0.5).astype(np.int64))


def test_sprite_validates_geometry() -> None:
    z = np.zeros((4, 4), np.uint8)
    h = np.zeros((2, 2), np.uint8)
    with pytest.raises(ValueError):
        Sprite(1, 0, z, h, h, z, h)
    with pytest.raises(ValueError):
        Sprite(0, 0, z, z, h, z, h)
