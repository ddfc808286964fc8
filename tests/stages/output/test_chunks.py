"""Chunked rendering: a clip cut into time chunks encoded side by side, joined into one stream.

The chunked render must be the same clip as the one-piece render, frame for frame: same frame
count and timestamps, every frame the picture of the same source instant (a frame shifted across
the join would match its neighbour better), a keyframe where each later chunk begins, audio of
the same length, and a stream that decodes without a single error. Planning, the keyframe scan,
the decoder's seek and every failure path (parameter sets that differ, a chunk that fails, a
cancel) are tested on their own.
"""

from __future__ import annotations

import dataclasses
import subprocess
import threading
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from engine.errors import JobCancelled
from engine.stage import StageContext
from engine.types import CropPath, Word
from stages.captions import build_caption_track
from stages.framing import output_geometry
from stages.media import keyframe_times, on_screen_frames, probe_media
from stages.output import RenderRequest, RenderStage, output_rate
from stages.output import chunks as chunks_mod
from stages.output import render as render_mod
from stages.output.chunks import Chunk, chunk_count, chunk_threads, plan_chunks

RATE = Fraction(25)


# -- planning ---------------------------------------------------------------------------------


def test_short_clips_stay_in_one_piece_and_long_ones_split_in_the_middle():
    assert plan_chunks([(10.0, 100)], RATE, 2) == [Chunk(0, ((10.0, 100),))]  # 4 s < 2 x 3 s
    two = plan_chunks([(10.0, 500)], RATE, 2)
    assert [c.first for c in two] == [0, 250] and [c.frames for c in two] == [250, 250]
    assert two[1].parts == ((20.0, 250),)  # frame 250 of a window from 10 s shows 20 s
    assert [c.frames for c in plan_chunks([(0.0, 500)], RATE, 4)] == [125, 125, 125, 125]
    assert len(plan_chunks([(0.0, 200)], RATE, 4)) == 2  # no chunk under 3 s


def test_a_cut_moves_to_a_nearby_keyframe_or_a_splice():
    # a keyframe at 19.2 s: the next chunk starts one frame after it (its decode window, which
    # begins a frame early, then starts at the keyframe itself)
    near = plan_chunks([(10.0, 500)], RATE, 2, keyframes=[12.0, 19.2])
    assert near[1].first == round(9.2 * 25) + 1
    assert near[1].parts[0][0] - 1 / 25 == pytest.approx(19.2)
    # too far from the middle (more than a fifth of a chunk): the middle
    assert plan_chunks([(10.0, 500)], RATE, 2, keyframes=[14.0])[1].first == 250
    # a spliced clip prefers its own cut
    spliced = plan_chunks([(5.0, 240), (40.0, 260)], RATE, 2)
    assert [c.first for c in spliced] == [0, 240] and spliced[1].parts == ((40.0, 260),)
    # cuts inside a segment keep the parts contiguous on the source clock
    split = plan_chunks([(5.0, 100), (40.0, 400)], RATE, 2)
    assert split[0].parts == ((5.0, 100), (40.0, 150)) and split[1].parts == ((46.0, 250),)


def test_chunk_count_and_threads():
    assert chunk_count(0, 1) == 1 and chunk_count(0, 2) == 2 and chunk_count(0, 16) == 4
    assert chunk_count(3, 2) == 3
    assert chunk_threads(2, 1) == 0  # one piece: the codecs' own threading
    assert chunk_threads(2, 2) == 1 and chunk_threads(16, 4) == 4


def test_keyframes_and_the_seek_to_the_frame_on_screen(media_dir):
    media = probe_media(media_dir / "speech_topics.mp4")
    assert keyframe_times(media, 0.0, 40.0) == pytest.approx([0.0, 10.0, 20.0, 30.0, 40.0])
    assert keyframe_times(media, 10.5, 25.0) == pytest.approx([20.0])
    # the frame on screen at 10.0 is the keyframe there; between frames, the one before
    assert next(iter(on_screen_frames(media, 10.0, 11.0)))[0] == pytest.approx(10.0)
    assert next(iter(on_screen_frames(media, 10.02, 11.0)))[0] == pytest.approx(10.0)
    # starting on a keyframe, the decoder starts there, not a GOP (10 s) earlier
    decoded = []
    real = av.container.InputContainer.decode

    def counting(self, *args, **kwargs):
        for frame in real(self, *args, **kwargs):
            decoded.append(frame.pts)
            yield frame

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(av.container.InputContainer, "decode", counting)
        got = list(on_screen_frames(media, 10.0, 11.0))
    assert len(got) == 25 and len(decoded) <= 27


# -- the joined stream --------------------------------------------------------------------------


def _ctx(ctx: StageContext, chunks: int) -> StageContext:
    return dataclasses.replace(ctx, settings=dataclasses.replace(ctx.settings, render_chunks=chunks))


def _request(media, start, end, out: Path, captions=None, segments=()):
    geo = output_geometry(media.width, media.height, "9:16")
    rate = float(output_rate(media))
    n = sum(round((b - a) * rate) for a, b in segments) if segments else round((end - start) * rate)
    x = (geo.src_w - geo.crop_w) / 2
    return RenderRequest(media, start, end, geo, CropPath(rate, start, (x,) * n, (0.0,) * n), captions, out,
                         segments=tuple(segments))


def _decoded(path: Path) -> tuple[list[int], list[bool], list[np.ndarray], float]:
    pts, keys, grey = [], [], []
    with av.open(str(path)) as c:
        for f in c.decode(c.streams.video[0]):
            pts.append(f.pts)
            keys.append(f.key_frame)
            grey.append(f.to_ndarray(format="gray").astype(np.float32))
        audio = c.streams.audio[0]
        seconds = float(sum(f.samples for f in c.decode(audio)) / audio.rate)
    return pts, keys, grey, seconds


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a - b) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


def _clean_decode(path: Path) -> None:
    got = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "null", "-"],
                         capture_output=True, text=True, check=True)
    assert got.stderr == ""


def _same_clip(one: Path, chunked: Path, first_frames: list[int]) -> None:
    p1, k1, g1, s1 = _decoded(one)
    p2, k2, g2, s2 = _decoded(chunked)
    assert p2 == p1 and s2 == pytest.approx(s1, abs=0.001)
    # x264's own keyframes (scene cuts) and one where each later chunk begins
    assert [i for i, k in enumerate(k2) if k] == sorted({i for i, k in enumerate(k1) if k} | set(first_frames))
    for i in range(len(g1)):
        here = _psnr(g2[i], g1[i])
        assert here >= 35.0, (i, here)
        for j in (i - 1, i + 1):  # the picture of the same instant, not a neighbour's
            if 0 <= j < len(g1) and np.abs(g1[j] - g1[i]).mean() > 1.0:
                assert here > _psnr(g2[i], g1[j]), (i, j)
    _clean_decode(chunked)


def test_a_chunked_clip_is_the_one_piece_clip_frame_for_frame(ctx, media_dir, tmp_path):
    media = probe_media(media_dir / "face_moving.mp4")  # keyframes at 0 and 10 s
    geo = output_geometry(media.width, media.height, "9:16")
    words = [Word(1.2, 1.8, "MOVING"), Word(4.6, 5.2, "ACROSS"), Word(5.3, 6.0, "THE JOIN")]
    tracks = [build_caption_track(words, "beasty", geo.out_w, geo.out_h, 1.0, 9.0) for _ in range(2)]
    one, two = tmp_path / "one.mp4", tmp_path / "two.mp4"
    stage = RenderStage()
    stage.process(_request(media, 1.0, 9.0, one, tracks[0]), _ctx(ctx, 1))
    before = threading.active_count()
    result = stage.process(_request(media, 1.0, 9.0, two, tracks[1]), _ctx(ctx, 2))
    assert result.frames == 200
    _same_clip(one, two, [0, 100])
    assert threading.active_count() <= before  # every chunk's threads are gone


def test_a_spliced_clip_joins_its_chunks_at_its_own_cut(ctx, media_dir, tmp_path):
    media = probe_media(media_dir / "face_moving.mp4")
    segments = [(1.0, 4.6), (6.0, 10.0)]  # 90 + 100 frames
    one, two = tmp_path / "one.mp4", tmp_path / "two.mp4"
    RenderStage().process(_request(media, 1.0, 10.0, one, segments=segments), _ctx(ctx, 1))
    RenderStage().process(_request(media, 1.0, 10.0, two, segments=segments), _ctx(ctx, 2))
    _same_clip(one, two, [0, 90])


def test_differing_parameter_sets_render_in_one_piece(ctx, media_dir, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(render_mod, "open_chunk_encoder", lambda *a, **k: None)
    media = probe_media(media_dir / "face_moving.mp4")
    out = tmp_path / "clip.mp4"
    with caplog.at_level("WARNING"):
        assert RenderStage().process(_request(media, 1.0, 9.0, out), _ctx(ctx, 2)).frames == 200
    assert "one piece" in caplog.text
    _, keys, _, _ = _decoded(out)
    assert [i for i, k in enumerate(keys) if k] == [0]


def test_a_failing_chunk_fails_the_render_and_leaves_no_file(ctx, media_dir, tmp_path, monkeypatch):
    real = chunks_mod.ChunkEncoder._run

    def broken(self):
        self._batches = lambda: iter([object()])  # not a batch: the chunk's encoding raises TypeError
        real(self)

    monkeypatch.setattr(chunks_mod.ChunkEncoder, "_run", broken)
    media = probe_media(media_dir / "face_moving.mp4")
    out = tmp_path / "clip.mp4"
    with pytest.raises(TypeError):
        RenderStage().process(_request(media, 1.0, 9.0, out), _ctx(ctx, 2))
    assert list(tmp_path.glob("clip*")) == []


def test_a_cancel_stops_every_chunk(ctx, media_dir, tmp_path):
    media = probe_media(media_dir / "face_moving.mp4")
    out = tmp_path / "clip.mp4"
    cancel = threading.Event()
    seen: list[float] = []

    def report(_stage: str, fraction: float, _message: str) -> None:
        seen.append(fraction)
        if fraction > 0.2:
            cancel.set()

    run = dataclasses.replace(_ctx(ctx, 2), report=report, cancel_event=cancel)
    before = threading.active_count()
    with pytest.raises(JobCancelled):
        RenderStage().process(_request(media, 1.0, 9.0, out), run)
    assert seen and not out.exists()
    assert threading.active_count() <= before


def test_a_batch_holds_a_few_megabytes_of_frames_however_large_they_are(media_dir):
    """Frames in flight are a few batches per chunk: their size follows the frame size (render memory at
    1080p fell from 945 to 660 MiB with it, BENCHMARKS section 4), never under 2 nor over batch_frames."""

    def media(w: int, h: int):
        return dataclasses.replace(probe_media(media_dir / "speech_topics.mp4"), width=w, height=h)

    def size(w: int, h: int, aspect: str, chunks: int = 2, most: int = 16, out: tuple[int, int] | None = None) -> int:
        geo = output_geometry(w, h, aspect)
        if out is not None:
            geo = dataclasses.replace(geo, out_w=out[0], out_h=out[1])
        return render_mod.batch_size(most, chunks, media(w, h), geo)

    assert size(1280, 720, "9:16") == 4  # 1.38 MB frames
    assert size(1920, 1080, "9:16") == 2  # 3.1 MB frames, source and output
    assert size(3840, 2160, "9:16") == 2  # at least 2
    assert size(640, 360, "9:16") == 4  # framed into 720x1280: the larger frame counts
    small = (360, 640)
    assert size(640, 360, "9:16", out=small) == 8  # small frames: batch_frames shared by the chunks
    assert size(640, 360, "9:16", chunks=1, out=small) == 16
    assert size(640, 360, "9:16", chunks=1, most=3, out=small) == 3
