"""The manifest's cropPath: few keyframes that rebuild the rendered window at every frame."""

from __future__ import annotations

import numpy as np
import pytest

from engine.types import CropPath, FaceBox, FaceSample, OutputGeometry
from stages.framing import output_geometry, plan_crop_path, render_geometry
from stages.output import crop_keyframes
from stages.output.croppath import TOLERANCE_PX, rendered_windows

FPS = 30000 / 1001
GEO = output_geometry(1280, 720, "9:16")  # crop 406 x 720 of a 1280 x 720 source


def interpolate(keyframes: list[dict], frames: int, fps: float, key: str | None = None) -> np.ndarray:
    """What an editor rebuilds: x, y linear in t between keyframes, at each frame's time k / fps."""
    rows = [kf[key] if key else kf for kf in keyframes]
    ts = [kf["t"] for kf in keyframes]
    t = np.arange(frames) / fps
    return np.stack([np.interp(t, ts, [r["x"] for r in rows]), np.interp(t, ts, [r["y"] for r in rows])], axis=1)


def path_of(x, y=None, **kw) -> CropPath:
    x = tuple(float(v) for v in x)
    return CropPath(FPS, 10.0, x, tuple(float(v) for v in (y if y is not None else [0.0] * len(x))), **kw)


def check_rebuilds(path: CropPath, geo: OutputGeometry, frames: int) -> list[dict]:
    kfs = crop_keyframes(path, geo, frames, FPS)
    want = rendered_windows(path, geo, frames)
    assert np.abs(interpolate(kfs, frames, FPS) - want[:, :2]).max() <= TOLERANCE_PX
    if geo.mode == "split":
        assert np.abs(interpolate(kfs, frames, FPS, "bottom") - want[:, 2:]).max() <= TOLERANCE_PX
    for kf in kfs:
        assert all(isinstance(kf[k], int) for k in ("x", "y", "w", "h"))
        assert 0 <= kf["x"] <= geo.src_w - kf["w"] and 0 <= kf["y"] <= geo.src_h - kf["h"]
        assert 0 <= kf["t"] < frames / FPS
    assert kfs[0]["t"] == 0 and kfs[-1]["t"] == pytest.approx((frames - 1) / FPS, abs=1e-6)
    assert [kf["t"] for kf in kfs] == sorted({kf["t"] for kf in kfs})
    return kfs


def test_a_still_camera_is_two_keyframes_of_the_window_the_render_used() -> None:
    kfs = check_rebuilds(path_of([437.3] * 300), GEO, 300)
    assert [(kf["x"], kf["y"], kf["w"], kf["h"]) for kf in kfs] == [(438, 0, GEO.crop_w, GEO.crop_h)] * 2


def test_a_cut_is_two_keyframes_one_frame_apart() -> None:
    kfs = check_rebuilds(path_of([100.0] * 150 + [700.0] * 150), GEO, 300)
    assert [kf["x"] for kf in kfs] == [100, 100, 700, 700]
    assert kfs[2]["t"] - kfs[1]["t"] == pytest.approx(1 / FPS, abs=1e-5)


def test_an_eased_pan_is_a_few_keyframes_within_a_pixel() -> None:
    u = np.clip((np.arange(600) - 200) / 45, 0, 1)
    x = 50 + 600 * u * u * (3 - 2 * u)  # a 1.5 s smoothstep move between two holds
    kfs = check_rebuilds(path_of(x), GEO, 600)
    assert len(kfs) <= 40


def test_the_path_the_planner_makes_for_a_moving_face() -> None:
    samples = []
    for i in range(91):  # a face walking right, sampled 10x a second over 9 s
        cx = 300 + 8 * i
        samples.append(FaceSample(10.0 + i / 10, (FaceBox(cx - 60, 200, cx + 60, 340, 0.9),)))
    path = plan_crop_path(samples, GEO, FPS, 10.0, 19.0)
    assert len(set(path.x)) > 10  # the camera moves
    frames = len(path.x)
    kfs = check_rebuilds(path, GEO, frames)
    assert len(kfs) < frames / 5


def test_split_keyframes_carry_both_panes() -> None:
    panel = (360, 320)
    path = path_of([200.0] * 100 + [260.0] * 100, [100.0] * 200, subject="split", panel=panel,
                   x2=tuple([800.0] * 200), y2=tuple([150.0 + i for i in range(200)]))
    geo = render_geometry(GEO, path)
    kfs = check_rebuilds(path, geo, 200)
    assert all(kf["bottom"].keys() == {"x", "y", "w", "h"} for kf in kfs)
    assert (kfs[0]["w"], kfs[0]["h"]) == panel and (kfs[0]["bottom"]["w"], kfs[0]["bottom"]["h"]) == panel
    assert kfs[0]["bottom"]["y"] == 150 and kfs[-1]["bottom"]["y"] == 348


def test_the_whole_source_when_nothing_is_cropped_and_windows_stay_in_the_source() -> None:
    pad = output_geometry(720, 1280, "16:9")
    assert pad.mode == "pad"
    assert crop_keyframes(path_of([0.0] * 50), pad, 50, FPS) == [{"t": 0.0, "x": 0, "y": 0, "w": 720, "h": 1280}]
    off = check_rebuilds(path_of([-7.0] * 10 + [5000.0] * 10), GEO, 20)
    assert {kf["x"] for kf in off} == {0, GEO.src_w - GEO.crop_w}
