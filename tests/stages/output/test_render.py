"""render: sizes per aspect ratio, constant frame rate, audio in sync, captions burned in."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from engine.types import CropPath, Word
from stages.captions import build_caption_track
from stages.framing import output_geometry
from stages.media import probe_media
from stages.output import RenderRequest, RenderStage, output_rate


def centre_path(media, geo, start, end) -> CropPath:
    n = round((end - start) * float(output_rate(media)))
    x = (geo.src_w - geo.crop_w) / 2
    return CropPath(float(output_rate(media)), start, (x,) * n, (0.0,) * n)


def render(ctx, media_path: Path, start: float, end: float, aspect: str, out: Path, captions=None):
    media = probe_media(media_path)
    geo = output_geometry(media.width, media.height, aspect)
    req = RenderRequest(media, start, end, geo, centre_path(media, geo, start, end), captions, out)
    return media, geo, RenderStage().process(req, ctx)


def video_frames(path: Path):
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        for f in c.decode(s):
            yield float(f.pts * s.time_base), f


def flash_times(path: Path) -> list[float]:
    times, prev = [], False
    for t, f in video_frames(path):
        bright = f.to_ndarray(format="gray").mean() > 128
        if bright and not prev:
            times.append(t)
        prev = bright
    return times


def beep_times(path: Path) -> tuple[list[float], int]:
    with av.open(str(path)) as c:
        s = c.streams.audio[0]
        rate = s.rate
        chunks = [f.to_ndarray().mean(axis=0) for f in c.decode(s)]
    pcm = np.concatenate(chunks)
    hop = rate // 1000  # 1 ms envelope
    env = np.abs(pcm[: pcm.size // hop * hop]).reshape(-1, hop).max(axis=1)
    on = env > 0.1
    starts = np.flatnonzero(on & ~np.concatenate([[False], on[:-1]]))
    merged: list[float] = []
    for i in starts:
        if not merged or i / 1000 - merged[-1] > 0.2:
            merged.append(i / 1000)
    return merged, pcm.size


@pytest.mark.parametrize(
    ("aspect", "size"), [("9:16", (720, 1280)), ("1:1", (720, 720)), ("4:5", (720, 900)), ("16:9", (1280, 720))]
)
def test_output_size_per_aspect_ratio(ctx, media_dir, tmp_path, aspect, size):
    out = tmp_path / "clip.mp4"
    media, geo, result = render(ctx, media_dir / "face_static.mp4", 2.0, 4.0, aspect, out)
    with av.open(str(out)) as c:
        v = c.streams.video[0]
        assert (v.codec_context.width, v.codec_context.height) == size
        assert v.codec_context.pix_fmt == "yuv420p" and v.codec_context.name == "h264"
        assert c.streams.audio and c.streams.audio[0].codec_context.name == "aac"
        assert float(v.average_rate) == pytest.approx(25.0)
    assert result.frames == 50
    # faststart: the moov atom comes before the media data
    head = out.read_bytes()[:4096]
    assert head.find(b"moov") != -1 and (head.find(b"mdat") == -1 or head.find(b"moov") < head.find(b"mdat"))


@pytest.mark.parametrize("name", ["sync_cfr.mp4", "sync_vfr.mkv"])
def test_audio_and_video_stay_in_sync(ctx, media_dir, truth, tmp_path, name):
    start, end = 0.5, 7.6
    out = tmp_path / "sync.mp4"
    media, _, result = render(ctx, media_dir / name, start, end, "9:16", out)
    # the rate the generator made (for VFR, its fastest segment), not what probe concluded
    video = truth[name]["video"]
    fps = float(video["fps"] or max(seg["fps"] for seg in truth[name]["segments"]))
    assert float(output_rate(media)) == pytest.approx(fps)
    assert result.frames == round((end - start) * fps)
    expected = [t - start for t in truth[name]["flash_times"] if start <= t < end]
    flashes = flash_times(out)
    beeps, n_samples = beep_times(out)
    assert len(flashes) == len(expected) == len(beeps), (flashes, beeps, expected)
    for f, b, e in zip(flashes, beeps, expected, strict=True):
        assert abs(f - e) <= 1.0 / fps + 1e-3, (f, e)
        assert abs(b - e) <= 1.0 / fps, (b, e)
        assert abs(f - b) <= 1.0 / fps, (f, b)
    # constant frame rate output, video and audio of the same length
    with av.open(str(out)) as c:
        v = c.streams.video[0]
        assert float(v.average_rate) == pytest.approx(fps, rel=0.01)  # read back from the mp4: an estimate
        pts = [p.pts for p in c.demux(v) if p.pts is not None]
    assert np.all(np.diff(sorted(pts)) == np.diff(sorted(pts))[0])
    assert abs(n_samples / 48000 - result.frames / fps) <= 1.0 / fps


def test_silent_source_gives_a_video_without_audio(ctx, media_dir, tmp_path):
    out = tmp_path / "mute.mp4"
    render(ctx, media_dir / "no_audio.mp4", 1.0, 3.0, "9:16", out)
    with av.open(str(out)) as c:
        assert not c.streams.audio and len(c.streams.video) == 1


def test_rotated_source_renders_upright(ctx, media_dir, tmp_path):
    out = tmp_path / "rot.mp4"
    render(ctx, media_dir / "rotated_phone.mp4", 1.0, 2.0, "9:16", out)
    _, frame = next(iter(video_frames(out)))
    rgb = frame.to_ndarray(format="rgb24")
    assert rgb.shape == (1280, 720, 3)
    top = rgb[:40].reshape(-1, 3).mean(0)
    assert top[0] > 150 and top[1] < 90, top


def test_burned_in_caption_is_visible_in_the_band(ctx, media_dir, tmp_path):
    words = [Word(2.2, 2.6, "HELLO"), Word(2.7, 3.2, "WORLD")]
    media = probe_media(media_dir / "face_static.mp4")
    geo = output_geometry(media.width, media.height, "9:16")
    track = build_caption_track(words, "mozi", geo.out_w, geo.out_h, 2.0, 4.0)
    plain, captioned = tmp_path / "plain.mp4", tmp_path / "cap.mp4"
    render(ctx, media_dir / "face_static.mp4", 2.0, 4.0, "9:16", plain)
    render(ctx, media_dir / "face_static.mp4", 2.0, 4.0, "9:16", captioned, captions=track)
    y0, y1 = track.band

    def frame_at(path, t):
        return next(f.to_ndarray(format="gray").astype(int) for ft, f in video_frames(path) if ft >= t)

    a, b = frame_at(plain, 0.5), frame_at(captioned, 0.5)
    band_diff = np.abs(a[y0:y1] - b[y0:y1]).mean()
    outside = np.abs(a[: y0 - 20] - b[: y0 - 20]).mean()
    assert band_diff > 10 * max(outside, 0.5), (band_diff, outside)
    # before the first word nothing is drawn
    a0, b0 = frame_at(plain, 0.0), frame_at(captioned, 0.0)
    assert np.abs(a0 - b0).mean() < 1.0
