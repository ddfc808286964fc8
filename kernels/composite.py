"""Alpha-blend pre-converted YUVA 4:2:0 caption sprites into I420 frames, in place.

A sprite is rasterised and colour-converted once (``kernels.colour.rgba_to_yuva420``); per
frame the only work is ``out = (frame * (255 - a) + sprite * a) / 255`` on the sprite's
rectangle, in uint16 integer math. The products ``sprite * a`` and ``255 - a`` are
precomputed once per sprite and array module, which roughly halves the per-frame passes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kernels.xp import array_module


@dataclass(eq=False)
class Sprite:
    """A YUVA 4:2:0 image placed at (x, y) (top-left, output pixels, both even).

    ``y``/``a``: (h, w) uint8; ``u``/``v``/``a2``: (h/2, w/2) uint8; BT.709 limited range,
    straight (not premultiplied) alpha.
    """

    x: int
    y: int
    y_plane: Any
    u: Any
    v: Any
    a: Any
    a2: Any
    _prepared: dict[str, tuple[Any, ...]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.x % 2 or self.y % 2:
            raise ValueError(f"sprite position must be even, got ({self.x}, {self.y})")
        h, w = self.y_plane.shape
        if h % 2 or w % 2 or self.a.shape != (h, w):
            raise ValueError(f"sprite planes must be even-sized and match, got {h}x{w}")
        for p in (self.u, self.v, self.a2):
            if p.shape != (h // 2, w // 2):
                raise ValueError("sprite chroma/alpha2 planes must be half size")

    @property
    def w(self) -> int:
        return int(self.y_plane.shape[1])

    @property
    def h(self) -> int:
        return int(self.y_plane.shape[0])

    def prepared(self, xp: Any) -> tuple[Any, ...]:
        """(y*a, 255-a, u*a2, v*a2, 255-a2) as uint16 arrays of module ``xp``, cached."""
        key = xp.__name__
        got = self._prepared.get(key)
        if got is None:
            a = xp.asarray(self.a).astype(xp.uint16)
            a2 = xp.asarray(self.a2).astype(xp.uint16)
            got = (
                xp.asarray(self.y_plane).astype(xp.uint16) * a,
                (255 - a).astype(xp.uint16),
                xp.asarray(self.u).astype(xp.uint16) * a2,
                xp.asarray(self.v).astype(xp.uint16) * a2,
                (255 - a2).astype(xp.uint16),
            )
            self._prepared[key] = got
        return got


def _blend_plane(dst: Any, premul: Any, inv_a: Any, x: int, y: int, xp: Any) -> None:
    """Blend one plane; ``dst`` is (..., H, W); the sprite's (h, w) plane goes at (x, y)."""
    H, W = dst.shape[-2:]
    h, w = premul.shape
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + w, W), min(y + h, H)
    if x1 <= x0 or y1 <= y0:
        return
    sx, sy = x0 - x, y0 - y
    region = dst[..., y0:y1, x0:x1]
    pm = premul[sy : sy + (y1 - y0), sx : sx + (x1 - x0)]
    ia = inv_a[sy : sy + (y1 - y0), sx : sx + (x1 - x0)]
    # v = dst*(255-a) + s*a <= 65025; +128 and the (v >> 8) correction stay below 65535,
    # and ((v + 128) + ((v + 128) >> 8)) >> 8 == round(v / 255) for every v in range.
    acc = xp.multiply(region, ia, dtype=xp.uint16)
    acc += pm
    acc += 128
    acc += acc >> 8
    acc >>= 8
    region[...] = acc


def blend_sprite_i420(y: Any, u: Any, v: Any, sprite: Sprite) -> None:
    """Blend ``sprite`` into one I420 frame in place: Y (H, W), U/V (H/2, W/2) uint8.

    Parts of the sprite outside the frame are clipped.
    """
    _blend_all(y, u, v, sprite)


def blend_sprite_batch(y: Any, u: Any, v: Any, sprite: Sprite) -> None:
    """Blend the same ``sprite`` into N frames in place: Y (N, H, W), U/V (N, H/2, W/2)."""
    if y.ndim != 3:
        raise ValueError(f"expected (N, H, W) planes, got shape {y.shape}")
    if array_module(y) is np:
        # On the CPU a frame at a time keeps the uint16 temporaries in cache (~3x faster
        # than one broadcast pass over N frames); on the GPU one launch per plane is better.
        for i in range(y.shape[0]):
            _blend_all(y[i], u[i], v[i], sprite)
        return
    _blend_all(y, u, v, sprite)


def _blend_all(y: Any, u: Any, v: Any, sprite: Sprite) -> None:
    xp = array_module(y)
    py, ia, pu, pv, ia2 = sprite.prepared(xp)
    _blend_plane(y, py, ia, sprite.x, sprite.y, xp)
    _blend_plane(u, pu, ia2, sprite.x // 2, sprite.y // 2, xp)
    _blend_plane(v, pv, ia2, sprite.x // 2, sprite.y // 2, xp)


def sprite_from_rgba(rgba: np.ndarray, x: int, y: int) -> Sprite:
    """Convert a straight-alpha RGBA image to a :class:`Sprite` at (x, y) (both even)."""
    from kernels.colour import rgba_to_yuva420

    yp, up, vp, ap, a2 = rgba_to_yuva420(rgba)
    return Sprite(x=x, y=y, y_plane=yp, u=up, v=vp, a=ap, a2=a2)
