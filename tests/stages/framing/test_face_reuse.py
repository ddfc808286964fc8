"""A re-render's faces step (stages.framing.reuse): the clip's earlier scan reused, the detector run
only on the stretches the new window adds (reaching a little into the known part, so a cut at the
seam is found), one scan of the new window out."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from engine.types import FaceBox, FaceSample, FaceScan, MediaInfo, Shot
from stages.framing.faces import FaceDetectRequest, FaceDetectStage
from stages.framing.reuse import SEAM_S, FaceReuseRequest, FaceReuseStage

FPS = 4.0  # face samples a second
MEDIA = MediaInfo("x.mp4", "mp4", 60.0, 1280, 720, 1280, 720, 0, 25.0, 25, 1, False, "h264", True)
CUTS = (12.0, 30.0)  # the source's true cuts


def scan_of(start: float, end: float) -> FaceScan:
    """What a full detector run finds over [start, end): a sample every 1/FPS s, and the true cuts."""
    n = int(round((end - start) * FPS))
    samples = tuple(FaceSample(start + k / FPS, (FaceBox(100 + k, 100, 200 + k, 220, 0.9),)) for k in range(n))
    edges = [start, *(c for c in CUTS if start < c < end), end]
    shots = tuple(Shot(a, b, score=0.0 if a == start else 0.8) for a, b in zip(edges, edges[1:], strict=False))
    return FaceScan(samples, shots)


@dataclass
class Detector(FaceDetectStage):
    asked: list[tuple[float, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__()

    def process(self, inputs: FaceDetectRequest, ctx) -> FaceScan:  # type: ignore[override]
        self.asked.append((inputs.start, inputs.end))
        return scan_of(inputs.start, inputs.end)


def run(ctx, start: float, end: float, known: FaceScan | None, k0: float, k1: float) -> tuple[FaceScan, Detector]:
    detector = Detector()
    return FaceReuseStage(detector).process(FaceReuseRequest(MEDIA, start, end, known, k0, k1), ctx), detector


def test_a_window_inside_the_known_one_runs_no_detection(ctx) -> None:
    known = scan_of(8.0, 34.0)
    got, detector = run(ctx, 10.0, 20.0, known, 8.0, 34.0)
    assert detector.asked == []
    assert [s.t for s in got.samples] == [s.t for s in known.samples if 10.0 <= s.t < 20.0]
    assert [(s.start, s.end) for s in got.shots] == [(10.0, 12.0), (12.0, 20.0)]


def test_a_grown_window_detects_only_what_it_adds_and_finds_a_cut_at_the_seam(ctx) -> None:
    known = scan_of(12.0, 26.0)  # starts on a cut: the known scan cannot know it is one
    got, detector = run(ctx, 5.0, 32.0, known, 12.0, 26.0)
    assert detector.asked == [(5.0, 12.0 + SEAM_S), (26.0 - SEAM_S, 32.0)]
    full = scan_of(5.0, 32.0)
    assert [s.t for s in got.samples] == pytest.approx([s.t for s in full.samples])
    assert len({s.t for s in got.samples}) == len(got.samples)  # the overlaps are not counted twice
    assert [(s.start, s.end) for s in got.shots] == [(5.0, 12.0), (12.0, 30.0), (30.0, 32.0)]
    assert got.cuts == CUTS


def test_nothing_in_common_is_a_new_scan(ctx) -> None:
    got, detector = run(ctx, 40.0, 50.0, scan_of(8.0, 20.0), 8.0, 20.0)
    assert detector.asked == [(40.0, 50.0)] and got.cuts == ()
    got, detector = run(ctx, 40.0, 50.0, None, 0.0, 0.0)
    assert detector.asked == [(40.0, 50.0)]
