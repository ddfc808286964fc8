"""Rendering per-shot layouts: hard cuts on the cut frame, a text card shown whole (fit) with its
captions in the fill band, and the manifest's shots."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from engine.backends import select_backend
from engine.stage import StageContext
from engine.types import Word
from kernels.resize import crop_resize, fit_rect
from stages.captions import FONTS_DIR, build_caption_track, fit_dy
from stages.framing import (
    FaceDetectRequest,
    FaceDetectStage,
    fit_shots,
    output_geometry,
    plan_crop_path,
    render_geometry,
)
from stages.media import iter_video_frames, probe_media, upright_i420
from stages.output import RenderRequest, RenderStage, crop_keyframes, framing_entry
from stages.output.poster import frame_to_output
from stages.speech import clip_spans
from tests.judges import check
from tests.stages.framing.shots_media import edited

GEO = output_geometry(1280, 720, "9:16")


@pytest.fixture(scope="module")
def clip(tmp_path_factory, settings):
    """The edited media's faces, crop path, and two renders (without and with captions)."""
    src, truth = edited(tmp_path_factory)
    work = tmp_path_factory.mktemp("render")
    ctx = StageContext("shots", work, settings, select_backend("cpu"))
    media = probe_media(src)
    stage = FaceDetectStage()
    stage.setup(ctx)
    scan = stage.process(FaceDetectRequest(media, 0.0, media.duration), ctx)
    stage.teardown()
    path = plan_crop_path(scan.samples, GEO, media.fps, 0.0, media.duration, shots=scan.shots)
    words = [Word(0.2 + 0.5 * i, 0.6 + 0.5 * i, f"word{i % 7}", speaker="A") for i in range(23)]
    track = build_caption_track(words, "beasty", GEO.out_w, GEO.out_h, 0.0, media.duration)
    geo = render_geometry(GEO, path)
    out = {}
    for name, captions in (("plain", None), ("captioned", track)):
        out[name] = work / f"{name}.mp4"
        result = RenderStage().process(RenderRequest(media, 0.0, media.duration, geo, path, captions, out[name]), ctx)
        assert result.frames == truth["frames"]
    return {"media": media, "truth": truth, "path": path, "geo": geo, "track": track, **out}


def decoded(path: Path, fmt: str) -> list[np.ndarray]:
    """Every output frame: its Y plane as coded (``fmt="y"``) or converted (e.g. rgb24)."""
    with av.open(str(path)) as c:
        return [upright_i420(f, 0)[0].copy() if fmt == "y" else f.to_ndarray(format=fmt)
                for f in c.decode(c.streams.video[0])]


def source_luma(media, frames: set[int]) -> dict[int, np.ndarray]:
    out = {}
    for t, f in iter_video_frames(media, 0.0, media.duration):
        k = round(t * media.fps)
        if k in frames:
            out[k] = upright_i420(f, 0)[0].copy()
    return out


def test_the_render_cuts_on_the_cut_frame(clip):
    """Frames just before and just after each cut between face shots show their own shot's window."""
    truth, path = clip["truth"], clip["path"]
    out = decoded(clip["plain"], "y")
    face_cuts = [c for k, c in enumerate(truth["cut_frames"], start=1)
                 if truth["shots"][k]["face"] and truth["shots"][k - 1]["face"]]
    assert face_cuts == [80]
    want = {c + d for c in face_cuts for d in (-2, -1, 0, 1)}
    src = source_luma(clip["media"], want)
    pans = 0
    for c in face_cuts:
        for k in sorted(want):
            own = int(round(path.x[k] / 2) * 2)
            other = int(round(path.x[k - 2 if k >= c else k + 2] / 2) * 2)  # the other shot's window
            ref = crop_resize(src[k], own, 0, GEO.crop_w, GEO.crop_h, GEO.out_w, GEO.out_h)
            wrong = crop_resize(src[k], other, 0, GEO.crop_w, GEO.crop_h, GEO.out_w, GEO.out_h)
            err = np.abs(out[k].astype(int) - ref).mean()
            assert err < 4.0, (k, err)  # the encoder's loss only
            assert np.abs(out[k].astype(int) - wrong).mean() > 4 * err
        pans += int(path.x[c - 1] != path.x[c - 2] or path.x[c + 1] != path.x[c])
    check("shots: rendered pans across a cut", pans, 0, at_least=False)


def test_the_text_card_is_shown_whole(clip):
    """The card's red left and blue right edge markers are both in the output, inside the fitted picture."""
    truth = clip["truth"]
    rx, ry, rw, rh = fit_rect(1280, 720, GEO.out_w, GEO.out_h)
    card = truth["shots"][2]
    out = decoded(clip["plain"], "rgb24")
    shown = 0
    frames = range(card["first"], card["last"] + 1)
    for k in frames:
        img = out[k].astype(int)
        mid = img[ry + rh // 4 : ry + 3 * rh // 4]
        left, right = mid[:, rx + 2 : rx + 14].mean(axis=(0, 1)), mid[:, rx + rw - 14 : rx + rw - 2].mean(axis=(0, 1))
        red = left[0] > 150 and left[1] < 90 and left[2] < 90
        blue = right[2] > 150 and right[0] < 90 and right[1] < 110
        shown += int(red and blue)
    check("shots: no-face shot frames shown whole (share)", shown / len(frames), 1.0)
    # the fill around the picture is the blurred, darkened frame: darker than the card
    img = out[card["first"] + 10].astype(int)
    assert img[: ry - 8].mean() < 0.8 * img[ry + 8 : ry + rh - 8].mean()
    # the frames on either side of the card's cuts are crops again (no fill band)
    for k in (card["first"] - 1, card["last"] + 1):
        assert out[k][: ry - 8].std() > 5  # picture content, not a flat blurred band
    # the poster of a frame in the card shot is framed like the render
    marked = np.full((720, 1280, 3), 200, np.uint8)
    marked[:, :40], marked[:, -40:] = (220, 30, 30), (30, 60, 220)
    poster = frame_to_output(marked, GEO, clip["path"], 180, 180 / 25)
    assert poster.shape == (1280, 720, 3)
    assert poster[ry + rh // 2, rx + 5, 0] > 150 and poster[ry + rh // 2, rx + rw - 5, 2] > 150
    cropped = frame_to_output(marked, GEO, clip["path"], 40, 40 / 25)  # a face shot: a crop, no markers
    grey = [abs(int(cropped[640, x, 0]) - int(cropped[640, x, 2])) < 30 for x in (5, 714)]
    assert any(grey)  # at most one edge of the frame is in a crop


def caption_rows(plain: np.ndarray, captioned: np.ndarray) -> np.ndarray:
    """Rows where the captioned render differs from the plain one by a caption's contrast."""
    diff = np.abs(plain.astype(int) - captioned.astype(int)) > 60
    return np.flatnonzero(diff.sum(axis=1) >= 4)


def test_captions_of_a_fit_shot_lie_in_the_fill_band(clip):
    truth = clip["truth"]
    _, ry, _, rh = fit_rect(1280, 720, GEO.out_w, GEO.out_h)
    plain, captioned = decoded(clip["plain"], "y"), decoded(clip["captioned"], "y")
    card = truth["shots"][2]
    fit_top = []
    for k in range(card["first"], card["last"] + 1, 5):
        rows = caption_rows(plain[k], captioned[k])
        if not len(rows):
            continue  # between two caption groups
        assert rows.min() >= ry + rh, (k, rows.min(), ry + rh)  # below the picture, in the fill band
        assert rows.max() < GEO.out_h
        fit_top.append(rows.min())
    assert len(fit_top) >= 8
    face_top = [caption_rows(plain[k], captioned[k]).min() for k in range(10, 70, 5)
                if len(caption_rows(plain[k], captioned[k]))]
    assert face_top and max(face_top) < min(fit_top)  # on face shots they stay where they always were
    assert min(face_top) < ry + rh  # ... which would cover the bottom of a fitted picture


def test_the_manifest_lists_the_shots_with_their_layouts(clip):
    truth, path, geo = clip["truth"], clip["path"], clip["geo"]
    entry = framing_entry(path, "auto", truth["duration"])
    assert entry["layout"] == "shots"
    assert entry["shots"] == [{"start": s["start"], "end": s["end"], "layout": lay}
                              for s, lay in zip(truth["shots"], ["face", "face", "fit", "face"], strict=True)]
    keyframes = crop_keyframes(path, geo, truth["frames"], 25.0)
    card = truth["shots"][2]
    at = {round(kf["t"] * 25): kf for kf in keyframes}
    assert (at[card["first"]]["w"], at[card["first"]]["h"]) == (1280, 720)  # the whole frame, fitted
    assert (at[card["first"] - 1]["w"], at[card["first"] - 1]["h"]) == (GEO.crop_w, GEO.crop_h)
    assert at[card["last"] + 1]["w"] == GEO.crop_w and 80 in at and 79 in at  # cuts: two keyframes a frame apart
    # the entry is what the API documents (GET /api/clips/{jobId}: Clip.framing)
    import jsonschema

    from http_gateway.openapi import build_document

    framing = build_document()["components"]["schemas"]["Clip"]["properties"]["framing"]
    jsonschema.validate(entry, framing)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**entry, "shots": [{"start": 0, "end": 1, "layout": "zoom"}]}, framing)
    # a spliced clip: the shot times are on the clip's own timeline
    spliced = framing_entry(path, "auto", truth["duration"], segments=[(0.0, 2.0), (7.0, 12.0)])
    assert [(s["start"], s["end"], s["layout"]) for s in spliced["shots"]] == [
        (0.0, 2.0, "face"), (2.0, 4.2, "fit"), (4.2, 7.0, "face")]


def test_a_clip_mixing_face_split_and_fit_shots_lays_out_each_frame_by_its_shot():
    """One batch, three shots: a crop, two stacked panels (the split shot's own panel size), the fit."""
    from engine.types import CropPath, FrameBatch, Shot
    from kernels.resize import fit_over_blur
    from stages.output.layout import SEAM_ROWS
    from stages.output.render import reframe_batch

    rng = np.random.default_rng(1)
    y = rng.integers(16, 235, (720, 1280), dtype=np.uint8)
    u = rng.integers(16, 240, (360, 640), dtype=np.uint8)
    v = rng.integers(16, 240, (360, 640), dtype=np.uint8)
    panel = (640, 568)
    shots = (Shot(0.0, 1.0, "face"), Shot(1.0, 2.0, "split", panel), Shot(2.0, 3.0, "fit"))
    path = CropPath(1.0, 0.0, x=(100.0, 40.0, 0.0), y=(0.0, 20.0, 0.0), subject="shots",
                    x2=(0.0, 600.0, 0.0), y2=(0.0, 100.0, 0.0), shots=shots)
    batch = FrameBatch("yuv420p", ([y] * 3, [u] * 3, [v] * 3), np.array([0.0, 1.0, 2.0]), np.arange(3))
    out = reframe_batch(batch, GEO, path).planes[0]
    np.testing.assert_array_equal(out[0], crop_resize(y, 100, 0, GEO.crop_w, GEO.crop_h, 720, 1280))
    top = crop_resize(y, 40, 20, *panel, 720, 640)
    bottom = crop_resize(y, 600, 100, *panel, 720, 640)
    keep = slice(0, 640 - SEAM_ROWS // 2)
    np.testing.assert_array_equal(out[1][keep], top[keep])
    np.testing.assert_array_equal(out[1][640 + SEAM_ROWS // 2:], bottom[SEAM_ROWS // 2:])
    rect = fit_rect(1280, 720, 720, 1280)
    fitted = fit_over_blur(y, 720, 1280, rect)
    rx, ry, rw, rh = rect
    np.testing.assert_array_equal(out[2][ry : ry + rh], fitted[ry : ry + rh])  # the whole frame, undimmed
    # the manifest's keyframes say the same: a crop, two panes, the whole frame
    kfs = crop_keyframes(path, GEO, 3, 1.0)
    assert [(kf["w"], kf["h"], "bottom" in kf) for kf in kfs] == [(GEO.crop_w, 720, False), (640, 568, True),
                                                                   (1280, 720, False)]
    assert kfs[1]["bottom"] == {"x": 600, "y": 100, "w": 640, "h": 568}


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")
def test_the_ass_puts_fit_shot_captions_where_the_render_burns_them(clip, tmp_path):
    """The captions step told the fit shots (compose: fit_shots + clip_spans) places the .ass events of the
    text card in the fill band: MarginV lowers by the render's dy (split at the card's cuts), and libass draws
    the text in the rows the burned-in sprites cover, on the card and off it."""
    media, truth, path, geo = clip["media"], clip["truth"], clip["path"], clip["geo"]
    spans, bottom = fit_shots(geo, path)
    assert spans and bottom == sum(fit_rect(1280, 720, GEO.out_w, GEO.out_h)[1::2])
    fit = tuple(clip_spans(spans, [(0.0, media.duration)], media.fps))
    words = [Word(0.2 + 0.5 * i, 0.6 + 0.5 * i, f"word{i % 7}", speaker="A") for i in range(23)]
    track = build_caption_track(words, "beasty", GEO.out_w, GEO.out_h, 0.0, media.duration,
                                fit_spans=fit, fit_bottom=bottom)
    band = clip["track"].band
    assert track.fit_offset == fit_dy(band[0], band[1] - band[0], bottom, GEO.out_h) > 0
    ass = tmp_path / "c.ass"
    track.write_ass(ass)
    events, before = _events(ass.read_text()), _events(clip["track"].ass_text())
    (a, b), = fit
    inside = [e for e in events if a <= (e[0] + e[1]) / 2 < b]
    assert inside and not any(e[0] < a < e[1] or e[0] < b < e[1] for e in events)  # split at the cuts
    for t0, t1, mv in events:  # the same events as without fit shots, lower by dy on the card
        was = [e[2] for e in before if e[0] <= (t0 + t1) / 2 < e[1]]
        assert was == [mv + track.fit_offset if a <= (t0 + t1) / 2 < b else mv], (t0, t1, mv, was)
    # libass vs the burned-in render: the same rows, on a face shot and on the card
    plain, captioned = decoded(clip["plain"], "y"), decoded(clip["captioned"], "y")
    card = truth["shots"][2]
    for k in (40, (card["first"] + card["last"]) // 2):
        t = k / media.fps
        if not any(e[0] <= t < e[1] for e in events):
            k += 5
            t = k / media.fps
        burned = caption_rows(plain[k], captioned[k])
        png = tmp_path / f"f{k}.png"
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                        f"color=c=gray:s={GEO.out_w}x{GEO.out_h}:d={media.duration:.2f}:r={media.fps:g}",
                        "-ss", f"{t:.3f}", "-vf", f"ass={ass}:fontsdir={FONTS_DIR}", "-frames:v", "1", str(png)],
                       check=True, timeout=60)
        img = np.asarray(Image.open(png).convert("L")).astype(int)
        drawn = np.flatnonzero((np.abs(img - 128) > 60).sum(axis=1) >= 4)
        assert len(burned) and len(drawn), k
        # the bottom edge (the last line's shadow; the top rows' contrast depends on the picture behind them)
        assert abs(int(drawn.max()) - int(burned.max())) <= 6, (k, drawn.min(), drawn.max(), burned.min(), burned.max())
        assert (drawn.min() >= bottom) == (k >= card["first"]) and burned.min() < drawn.max()


def _events(ass: str) -> list[tuple[float, float, int]]:
    """(start, end, MarginV) of each Dialogue line."""
    out = []
    for ln in ass.splitlines():
        if ln.startswith("Dialogue:"):
            _, t0, t1, _, _, _, _, mv, *_ = ln.split(",", 9)
            out.append((_secs(t0), _secs(t1), int(mv)))
    return out


def _secs(t: str) -> float:
    h, m, s = t.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)
