"""Output geometry, face tracking and the tripod-camera crop planner (pure functions)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.types import FaceBox, FaceSample, OutputGeometry
from stages.framing import (
    DEFAULT_TRIPOD,
    choose_subject,
    max_speed_px_per_frame,
    output_geometry,
    plan_crop_path,
    track_faces,
)
from tests.stages.framing.oracle import face_center_in_output

FPS = 30.0


def box(
    cx: float, cy: float = 330.0, w: float = 92.0, h: float = 112.0, score: float = 0.9
) -> FaceBox:
    return FaceBox(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, score)


def samples_of(
    fn: Callable[[float], float],
    seconds: float,
    rate: float = 4.0,
    noise: float = 0.0,
    seed: int = 0,
) -> list[FaceSample]:
    rng = np.random.default_rng(seed)
    out = []
    for t in np.arange(0.0, seconds, 1.0 / rate):
        jitter = rng.uniform(-noise, noise, 2) if noise else (0.0, 0.0)
        out.append(FaceSample(float(t), (box(fn(float(t)) + jitter[0], 330.0 + jitter[1]),)))
    return out


def output_positions(path, geometry: OutputGeometry, fn: Callable[[float], float]) -> np.ndarray:
    times = path.start + np.arange(len(path.x)) / path.fps
    return np.array(
        [face_center_in_output(path, geometry, t, fn(t)) / geometry.out_w for t in times]
    )


def assert_path_invariants(
    path, geometry: OutputGeometry, fps: float, start: float, end: float
) -> None:
    assert len(path.x) == len(path.y) == round((end - start) * fps)
    x = np.asarray(path.x)
    assert np.all(x >= 0.0) and np.all(x <= geometry.src_w - geometry.crop_w)
    assert np.all(np.asarray(path.y) == 0.0)
    if len(x) > 1:
        assert np.abs(np.diff(x)).max() <= max_speed_px_per_frame(geometry, fps) + 1e-9


# -- geometry -------------------------------------------------------------------------------

GEOMETRY_TABLE = {
    (1920, 1080): {
        "9:16": (1080, 1920, "crop", 608, 1080),
        "1:1": (1080, 1080, "crop", 1080, 1080),
        "4:5": (1080, 1350, "crop", 864, 1080),
        "16:9": (1920, 1080, "resize", 1920, 1080),
    },
    (1280, 720): {
        "9:16": (720, 1280, "crop", 406, 720),
        "1:1": (720, 720, "crop", 720, 720),
        "4:5": (720, 900, "crop", 576, 720),
        "16:9": (1280, 720, "resize", 1280, 720),
    },
    (720, 1280): {
        "9:16": (720, 1280, "resize", 720, 1280),
        "1:1": (720, 720, "pad", 720, 1280),
        "4:5": (720, 900, "pad", 720, 1280),
        "16:9": (1280, 720, "pad", 720, 1280),
    },
    (1080, 1080): {
        "9:16": (1080, 1920, "crop", 608, 1080),
        "1:1": (1080, 1080, "resize", 1080, 1080),
        "4:5": (1080, 1350, "crop", 864, 1080),
        "16:9": (1920, 1080, "pad", 1080, 1080),
    },
    (3840, 2160): {
        "9:16": (1080, 1920, "crop", 1216, 2160),
        "1:1": (1080, 1080, "crop", 2160, 2160),
        "4:5": (1080, 1350, "crop", 1728, 2160),
        "16:9": (1920, 1080, "resize", 3840, 2160),
    },
}


@pytest.mark.parametrize(
    ("src", "aspect", "want"),
    [(src, ar, want) for src, row in GEOMETRY_TABLE.items() for ar, want in row.items()],
)
def test_output_geometry_table(src: tuple[int, int], aspect: str, want: tuple) -> None:
    g = output_geometry(src[0], src[1], aspect)
    assert (g.out_w, g.out_h, g.mode, g.crop_w, g.crop_h) == want
    assert (g.src_w, g.src_h) == src
    assert g.crop_w % 2 == 0 and g.crop_h % 2 == 0


def test_geometry_near_aspect_is_resize_and_odd_sizes_crop_even() -> None:
    assert output_geometry(1278, 720, "16:9").mode == "resize"  # within 1 %
    g = output_geometry(1281, 721, "9:16")
    assert g.mode == "crop" and g.crop_h == 720 and g.crop_w == 406
    with pytest.raises(ValueError):
        output_geometry(1280, 720, "2:1")


# -- tracking and subject choice ----------------------------------------------------------


def test_tracks_survive_short_gaps_and_keep_faces_apart() -> None:
    samples = []
    for i in range(20):
        t = i * 0.25
        faces = [box(300 + 10 * i), box(950, 300, 70, 86)]
        if i in (5, 6, 12):  # the left face is missed for a few samples
            faces = faces[1:]
        samples.append(FaceSample(t, tuple(faces)))
    tracks = track_faces(samples)
    assert len(tracks) == 2
    left = min(tracks, key=lambda tr: tr.detections[0][1].cx)
    assert len(left.detections) == 17 and all(b.cx < 600 for _, b in left.detections)
    assert all(b.cx == 950 for _, b in max(tracks, key=lambda tr: tr.last.cx).detections)


def test_subject_is_the_larger_longer_face_and_speaking_seam() -> None:
    samples = [
        FaceSample(i * 0.25, (box(300, w=120, h=140), box(950, w=70, h=86))) for i in range(20)
    ]
    tracks = track_faces(samples)
    subject = choose_subject(tracks, 5.0)
    assert subject is not None and subject.last.cx == 300
    small = next(tr for tr in tracks if tr.last.cx == 950)
    chosen = choose_subject(tracks, 5.0, speaking_scores={small.id: 1.0})
    assert chosen is not None and chosen.id == small.id
    # a single stray detection is not a subject
    assert choose_subject(track_faces([FaceSample(1.0, (box(500),))]), 5.0) is None


# -- the tripod planner --------------------------------------------------------------------


def test_moving_face_stays_in_middle_of_output() -> None:
    g = output_geometry(1280, 720, "9:16")
    for fn in (
        lambda t: 640 - 1280 / 3 * math.cos(2 * math.pi * t / 12),  # eased, like the test media
        lambda t: float(np.interp(t, [0, 6, 12], [1280 / 6, 1280 * 5 / 6, 1280 / 6])),  # linear
    ):
        path = plan_crop_path(samples_of(fn, 12.0, noise=2.0), g, FPS, 0.0, 12.0)
        assert path.subject == "face"
        assert_path_invariants(path, g, FPS, 0.0, 12.0)
        pos = output_positions(path, g, fn)
        assert np.mean((pos >= 0.2) & (pos <= 0.8)) >= 0.95
        assert np.all((pos > 0.05) & (pos < 0.95))  # the face is never cut off
        moving = np.abs(np.diff(path.x)) > 0
        assert 0.1 < moving.mean() < 0.9  # it holds still between moves (a tripod, not a follow)


def test_static_noisy_face_gives_a_perfectly_still_path() -> None:
    g = output_geometry(1280, 720, "9:16")
    samples = samples_of(lambda t: 900.0, 10.0, noise=2.0, seed=3)
    path = plan_crop_path(samples, g, 25.0, 0.0, 10.0)
    x = np.asarray(path.x)
    assert np.all(np.diff(x) == 0.0)  # still from the very first frame
    assert abs(x[0] + g.crop_w / 2 - 900.0) <= 3.0  # centred on the face


def test_small_shift_does_not_move_but_a_walk_does_with_an_eased_move() -> None:
    g = output_geometry(1280, 720, "9:16")
    nudge = plan_crop_path(samples_of(lambda t: 500.0 if t < 3 else 560.0, 8.0), g, FPS, 0.0, 8.0)
    assert len(set(nudge.x)) == 1

    def walk(t: float) -> float:
        return float(np.interp(t, [3.0, 4.0], [400.0, 800.0]))

    path = plan_crop_path(samples_of(walk, 10.0), g, FPS, 0.0, 10.0)
    assert_path_invariants(path, g, FPS, 0.0, 10.0)
    x = np.asarray(path.x)
    assert x[0] == 400 - g.crop_w / 2
    # re-centred; a little lead room may remain from the walk's momentum
    assert abs(x[-1] + g.crop_w / 2 - 800) <= 0.05 * g.crop_w
    dx = np.diff(x)
    moving = np.nonzero(dx)[0]
    assert np.all(dx >= 0)  # one move, one direction
    assert moving[-1] - moving[0] + 1 == len(moving)  # contiguous: exactly one move
    first, last, peak = dx[moving[0]], dx[moving[-1]], dx.max()
    assert first < 0.2 * peak and last < 0.2 * peak  # ease-in and ease-out
    assert moving[0] / FPS >= 3.0  # it did not move before the walk began


def test_no_face_is_centred_and_resize_pad_are_fixed() -> None:
    g = output_geometry(1280, 720, "9:16")
    empty = [FaceSample(i * 0.25, ()) for i in range(20)]
    path = plan_crop_path(empty, g, FPS, 2.0, 7.0)
    assert path.subject == "center" and len(path.x) == 150
    assert set(path.x) == {(1280 - 406) / 2}
    for ar, src in (("16:9", (1280, 720)), ("1:1", (720, 1280))):
        geo = output_geometry(*src, ar)
        fixed = plan_crop_path(samples_of(lambda t: 300.0, 4.0), geo, 25.0, 1.0, 3.0)
        assert fixed.x == fixed.y == (0.0,) * 50


def test_two_faces_sticks_to_the_larger_without_oscillating() -> None:
    g = output_geometry(1280, 720, "9:16")
    samples = []
    for i in range(40):
        faces = []
        if i % 3:  # the big face is missed in a third of the samples
            faces.append(box(330, 370, 100, 122))
        faces.append(box(960, 330, 71, 86))
        samples.append(FaceSample(i * 0.25, tuple(faces)))
    path = plan_crop_path(samples, g, FPS, 0.0, 10.0)
    assert len(set(path.x)) == 1
    assert abs(path.x[0] + g.crop_w / 2 - 330) <= 1.0


def test_face_at_the_frame_edge_is_clamped() -> None:
    g = output_geometry(1920, 1080, "9:16")
    path = plan_crop_path(samples_of(lambda t: 1900.0, 3.0), g, FPS, 0.0, 3.0)
    assert set(path.x) == {1920 - g.crop_w}
    assert face_center_in_output(path, g, 1.0, 1900.0) > 0.9 * g.out_w


def test_face_center_in_output_for_pad_and_resize() -> None:
    pad = output_geometry(720, 1280, "1:1")  # 720x1280 fitted into 720x720: scale 0.5625
    path = plan_crop_path([], pad, FPS, 0.0, 1.0)
    assert face_center_in_output(path, pad, 0.5, 360.0) == pytest.approx(360.0)
    assert face_center_in_output(path, pad, 0.5, 0.0) == pytest.approx((720 - 720 * 0.5625) / 2)
    resize = output_geometry(1920, 1080, "16:9")
    assert face_center_in_output(path, resize, 0.0, 960.0) == pytest.approx(960.0)


def test_speed_bound_value() -> None:
    g = output_geometry(1280, 720, "9:16")
    bound = max_speed_px_per_frame(g, 30.0)
    assert bound == pytest.approx(1.5 * DEFAULT_TRIPOD.cruise_speed * 406 / 30.0)
    assert max_speed_px_per_frame(output_geometry(1280, 720, "16:9"), 30.0) == 0.0


# -- properties -------------------------------------------------------------------------------

_face = st.builds(
    lambda cx, cy, w, score: FaceBox(cx - w / 2, cy - w * 0.6, cx + w / 2, cy + w * 0.6, score),
    st.floats(-50, 2000),
    st.floats(0, 1100),
    st.floats(8, 400),
    st.floats(0.5, 1.0),
)


@st.composite
def scenario(draw: st.DrawFn) -> tuple:
    src = draw(
        st.sampled_from([(1280, 720), (1920, 1080), (1080, 1080), (720, 1280), (3840, 2160)])
    )
    geometry = output_geometry(
        src[0], src[1], draw(st.sampled_from(["9:16", "1:1", "4:5", "16:9"]))
    )
    fps = draw(st.sampled_from([23.976, 25.0, 30.0, 60.0]))
    start = draw(st.floats(0, 100))
    end = start + draw(st.floats(0, 20))
    n = draw(st.integers(0, 60))
    t = start - draw(st.floats(0, 2))
    samples = []
    for _ in range(n):
        t += draw(st.sampled_from([0.25, 0.25, 0.25, 0.5, 1.7, 4.0]))  # gaps of several sizes
        faces = draw(st.lists(_face, max_size=3))
        samples.append(FaceSample(t, tuple(faces)))
    return geometry, fps, start, end, samples


@settings(max_examples=300, deadline=None)
@given(scenario())
def test_path_properties_on_random_samples(case: tuple) -> None:
    geometry, fps, start, end, samples = case
    path = plan_crop_path(samples, geometry, fps, start, end)
    assert path.fps == fps and path.start == start
    if geometry.mode == "crop":
        assert_path_invariants(path, geometry, fps, start, end)
    else:
        assert len(path.x) == round((end - start) * fps) and set(path.x) <= {0.0}


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0.0, 1.0), st.booleans()), min_size=2, max_size=80),
    st.sampled_from([(1280, 720), (1920, 1080)]),
)
def test_jumping_single_face_stays_bounded(steps: list, src: tuple[int, int]) -> None:
    # One face that walks, jumps and disappears: the hard case for the speed bound.
    geometry = output_geometry(src[0], src[1], "9:16")
    samples = [
        FaceSample(i * 0.25, (box(pos * src[0], 300),) if seen else ())
        for i, (pos, seen) in enumerate(steps)
    ]
    end = len(steps) * 0.25
    path = plan_crop_path(samples, geometry, 30.0, 0.0, end)
    assert_path_invariants(path, geometry, 30.0, 0.0, end)
