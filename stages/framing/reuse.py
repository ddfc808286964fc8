"""faces, for a re-render: the clip's earlier face scan reused, faces found only where the window grew.

A re-rendered clip keeps most of its window (a trim, another preset, a corrected word). What the
faces stage found over the previous window is reused as it is; the stage runs only on the
stretches the new window adds before or after it, each reaching ``SEAM_S`` into the known part so
a cut right at the seam is seen, and the pieces are joined into one scan of the new window
(samples in time order, the shots rebuilt from every cut found).
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.stage import Resources, Stage, StageContext
from engine.types import FaceSample, FaceScan, MediaInfo, Shot
from stages.framing.faces import FaceDetectRequest, FaceDetectStage

#: how far a new piece reaches into the known window (a cut at the seam lies inside the piece)
SEAM_S = 0.5


@dataclass(frozen=True)
class FaceReuseRequest:
    media: MediaInfo
    start: float
    end: float
    #: the scan of the clip's previous window (its faces step's cached result), or None
    known: FaceScan | None
    known_start: float = 0.0
    known_end: float = 0.0


def _cuts(scan: FaceScan, lo: float, hi: float) -> list[tuple[float, float]]:
    return [(s.start, s.score) for s in scan.shots[1:] if lo <= s.start < hi]


def _shots(cuts: list[tuple[float, float]], start: float, end: float, frame: float) -> tuple[Shot, ...]:
    """The window's shots from its cuts (one within a frame of another counts once)."""
    kept: list[tuple[float, float]] = []
    for t, score in sorted(cuts):
        if start + frame / 2 < t < end - frame / 2 and (not kept or t - kept[-1][0] > frame * 1.5):
            kept.append((t, score))
    edges = [start, *(t for t, _ in kept), end]
    scores = [0.0, *(s for _, s in kept)]
    return tuple(Shot(a, b, score=sc) for a, b, sc in zip(edges[:-1], edges[1:], scores, strict=True))


class FaceReuseStage(Stage[FaceReuseRequest, FaceScan]):
    """The faces step of a re-render: ``known`` reused, the stage it wraps run on the new stretches."""

    name = "faces"

    def __init__(self, faces: FaceDetectStage) -> None:
        self.faces = faces
        self.resources: Resources = faces.resources

    def setup(self, ctx: StageContext) -> None:
        self.faces.setup(ctx)

    def process(self, inputs: FaceReuseRequest, ctx: StageContext) -> FaceScan:
        a, b = inputs.start, inputs.end
        known, k0, k1 = inputs.known, inputs.known_start, inputs.known_end
        if known is None or k1 <= a or k0 >= b or not known.samples:  # nothing in common: a new scan
            return self.faces.process(FaceDetectRequest(inputs.media, a, b), ctx)
        pieces = [(a, min(b, k0 + SEAM_S))] if a < k0 else []
        if b > k1:
            pieces.append((max(a, k1 - SEAM_S), b))
        total = sum(hi - lo for lo, hi in pieces) or 1.0
        done = 0.0
        found: list[tuple[float, float, FaceScan]] = []
        for lo, hi in pieces:
            piece_ctx = ctx.for_stage(self.name)
            piece_ctx.report = lambda _s, f, m, _d=done, _w=(hi - lo): ctx.progress((_d + f * _w) / total, m)
            found.append((lo, hi, _as_scan(self.faces.process(FaceDetectRequest(inputs.media, lo, hi), piece_ctx))))
            done += hi - lo
        samples: list[FaceSample] = [s for s in known.samples if max(a, k0) <= s.t < min(b, k1)]
        cuts = _cuts(known, a, b)
        for lo, hi, scan in found:
            outside = (lambda t, _lo=lo: t < k0) if lo < k0 else (lambda t, _lo=lo: t >= k1)
            samples += [s for s in scan.samples if outside(s.t)]
            cuts += _cuts(scan, lo, hi)
        samples.sort(key=lambda s: s.t)
        frame = 1.0 / max(inputs.media.fps, 1.0)
        reused = 1.0 - sum(hi - lo for lo, hi in pieces) / max(b - a, 1e-9)
        ctx.progress(1.0, f"faces: {len(samples)} frames ({max(0.0, reused):.0%} of the window reused)")
        return FaceScan(tuple(samples), _shots(cuts, a, b, frame))


def _as_scan(result: FaceScan | tuple[FaceSample, ...]) -> FaceScan:
    return result if isinstance(result, FaceScan) else FaceScan(tuple(result))
