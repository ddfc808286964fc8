"""probe: what is accepted, what is rejected and why, rotation and frame-rate facts."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from engine.errors import InvalidMedia
from stages.media import frame_at, probe_media


def test_a_normal_mp4(media_dir):
    m = probe_media(media_dir / "speech_topics.mp4")
    assert (m.width, m.height, m.fps, m.rotation, m.is_vfr) == (1280, 720, 25.0, 0, False)
    assert m.has_audio and m.audio_codec == "aac"
    assert m.duration == pytest.approx(69.36, abs=0.05)


def test_no_audio_is_accepted(media_dir):
    m = probe_media(media_dir / "no_audio.mp4")
    assert not m.has_audio and m.audio_codec is None
    assert (m.width, m.height) == (960, 540)


def test_rotated_phone_video_is_upright(media_dir, truth):
    m = probe_media(media_dir / "rotated_phone.mp4")
    assert (m.coded_width, m.coded_height) == (1280, 720)
    assert (m.width, m.height) == (720, 1280)
    frame = frame_at(m, 1.0)
    assert frame is not None and frame.shape == (1280, 720, 3)
    top, bottom = frame[:60].reshape(-1, 3).mean(0), frame[-60:].reshape(-1, 3).mean(0)
    assert top[0] > 150 and top[1] < 90 and top[2] < 90, top  # the red bar is on top
    assert not (bottom[0] > 150 and bottom[1] < 90), bottom


def test_variable_frame_rate_is_detected(media_dir):
    vfr = probe_media(media_dir / "sync_vfr.mkv")
    cfr = probe_media(media_dir / "sync_cfr.mp4")
    assert vfr.is_vfr and not cfr.is_vfr
    assert vfr.fps > 0 and vfr.container.startswith("matroska")


def expected_rate(truth: dict, name: str) -> float:
    """The rate the generator made: the stream's own, or for VFR the fastest of its segments."""
    video = truth[name]["video"]
    return float(video["fps"] or max(seg["fps"] for seg in truth[name]["segments"]))


@pytest.mark.parametrize("name", ["sync_vfr.mkv", "sync_cfr.mp4", "speech_topics.mp4"])
def test_frame_rate_comes_from_the_frames_not_the_container_average(media_dir, truth, name):
    # sync_vfr.mkv has frames at 30 and 12 fps, and its container average_rate says 60/1
    m = probe_media(media_dir / name)
    assert m.fps == pytest.approx(expected_rate(truth, name), rel=1e-5)
    assert m.fps_num / m.fps_den == pytest.approx(m.fps)


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("not_a_video.mp4", "not a readable video"),
        ("truncated.mp4", ""),
        ("audio_only.m4a", "no video stream"),
    ],
)
def test_bad_inputs_are_rejected_with_a_reason(media_dir, name, words):
    with pytest.raises(InvalidMedia) as info:
        probe_media(media_dir / name)
    assert words in str(info.value)
    assert str(media_dir) not in str(info.value)  # never leak server paths


def test_missing_and_empty_files(tmp_path: Path):
    with pytest.raises(InvalidMedia, match="not found"):
        probe_media(tmp_path / "nope.mp4")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(InvalidMedia, match="empty"):
        probe_media(empty)


def test_other_containers_are_refused(tmp_path: Path):
    avi = tmp_path / "clip.avi"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=s=160x120:d=1", "-c:v", "mpeg4", str(avi)],
        check=True,
    )
    with pytest.raises(InvalidMedia, match="MP4, MOV, MKV or WEBM"):
        probe_media(avi)


def test_webm_is_accepted(tmp_path: Path):
    webm = tmp_path / "clip.webm"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=s=160x120:d=1:r=10", "-c:v", "libvpx",
         "-b:v", "200k", str(webm)],
        check=True,
    )
    m = probe_media(webm)
    assert m.container.startswith("matroska") and m.duration == pytest.approx(1.0, abs=0.15)


def test_zero_duration_is_refused(tmp_path: Path):
    # a container with a video stream header but no frames
    empty = tmp_path / "noframes.mkv"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=s=160x120:d=1", "-frames:v", "0",
         "-c:v", "libx264", str(empty)],
        check=True,
    )
    with pytest.raises(InvalidMedia, match="could not be decoded|zero duration|not a readable video"):
        probe_media(empty)


def test_derived_rates_are_the_fastest_real_rate_capped_and_snapped():
    from fractions import Fraction

    from stages.media.probe import _frame_rate, _is_vfr

    def times(*segments):
        out, t = [], 0.0
        for fps, n in segments:
            for _ in range(n):
                out.append(round(t, 3))  # a 1 ms time base, as Matroska has
                t += 1 / fps
        return out

    vfr = times((30, 60), (12, 24), (30, 36))
    assert _is_vfr(vfr) and _frame_rate(Fraction(60), vfr, True) == 30
    fast = times((120, 120))
    assert _frame_rate(Fraction(0), fast, _is_vfr(fast)) == 60  # capped
    ntsc = [i * 1001 / 30000 for i in range(100)]
    assert _frame_rate(Fraction(30000, 1001), ntsc, False) == Fraction(30000, 1001)
    assert _frame_rate(Fraction(60), ntsc, False) == Fraction(30000, 1001)  # header disagrees with the frames
