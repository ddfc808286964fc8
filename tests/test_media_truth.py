"""Guard that the committed files in tests/media still match tests/media/truth.json.

Other tests take their expectations from truth.json; if someone regenerates the media with a
different script or tool version, these checks say which file drifted and how.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest

MEDIA = Path(__file__).parent / "media"
TRUTH: dict[str, Any] = json.loads((MEDIA / "truth.json").read_text())["files"]
VALID = sorted(name for name, t in TRUTH.items() if not t.get("invalid"))
INVALID = sorted(name for name, t in TRUTH.items() if t.get("invalid"))

pytestmark = pytest.mark.skipif(
    shutil.which("ffprobe") is None or shutil.which("ffmpeg") is None,
    reason="ffmpeg/ffprobe not installed")


def ffprobe(path: Path, *args: str) -> dict[str, Any]:
    out = subprocess.run(["ffprobe", "-v", "error", "-of", "json", *args, str(path)],
                         capture_output=True, text=True, check=True, timeout=60)
    return json.loads(out.stdout)


def streams_of(name: str) -> tuple[dict[str, Any], dict[str, Any] | None, dict[str, Any] | None]:
    info = ffprobe(MEDIA / name, "-show_format", "-show_streams")
    by_type: dict[str, list[dict[str, Any]]] = {}
    for s in info["streams"]:
        by_type.setdefault(s["codec_type"], []).append(s)
    assert all(len(v) == 1 for v in by_type.values()), by_type.keys()
    video = by_type.get("video", [None])[0]
    audio = by_type.get("audio", [None])[0]
    return info["format"], video, audio


def test_every_listed_file_exists_and_the_set_stays_small() -> None:
    assert len(TRUTH) == 11
    total = 0
    for name in TRUTH:
        path = MEDIA / name
        assert path.is_file(), name
        total += path.stat().st_size
    assert total < 6 * 1024 * 1024


@pytest.mark.parametrize("name", VALID)
def test_streams_match_truth(name: str) -> None:
    truth = TRUTH[name]
    fmt, video, audio = streams_of(name)
    assert float(fmt["duration"]) == pytest.approx(truth["duration"], abs=0.05)
    want_v = truth["video"]
    if want_v is None:
        assert video is None
    else:
        assert video is not None
        assert video["codec_name"] == want_v["codec"]
        assert (video["width"], video["height"]) == (want_v["width"], want_v["height"])
        assert video["pix_fmt"] == want_v["pix_fmt"]
        if want_v["fps"] is not None:
            assert Fraction(video["avg_frame_rate"]) == want_v["fps"]
            assert int(video["nb_frames"]) == round(truth["duration"] * want_v["fps"])
        rotations = [sd["rotation"] for sd in video.get("side_data_list", [])
                     if "rotation" in sd]
        assert rotations == ([] if want_v["rotation"] is None else [want_v["rotation"]])
    want_a = truth["audio"]
    if want_a is None:
        assert audio is None
    else:
        assert audio is not None
        assert audio["codec_name"] == want_a["codec"]
        assert int(audio["sample_rate"]) == want_a["sample_rate"]
        assert audio["channels"] == want_a["channels"]


@pytest.mark.parametrize("name", INVALID)
def test_bad_inputs_are_rejected_by_ffprobe(name: str) -> None:
    result = subprocess.run(["ffprobe", "-v", "error", str(MEDIA / name)],
                            capture_output=True, timeout=60)
    assert result.returncode != 0


def test_truncated_is_a_prefix_of_a_valid_file() -> None:
    data = (MEDIA / "truncated.mp4").read_bytes()
    assert len(data) == 2048
    assert (MEDIA / "face_static.mp4").read_bytes().startswith(data)


def test_speech_sentences_are_ordered_and_split_into_two_topics() -> None:
    truth = TRUTH["speech_topics.mp4"]
    sentences = truth["sentences"]
    assert 60 <= truth["duration"] <= 75
    ends = [0.0] + [s["end"] for s in sentences]
    for prev_end, s in zip(ends, sentences, strict=False):
        assert prev_end + 0.39 <= s["start"] < s["end"] <= truth["duration"]
    assert {s["voice"] for s in sentences} == {"en-us+m3", "en-gb+f3"}
    topics = [s["topic"] for s in sentences]
    first_hiring = topics.index("hiring")
    assert set(topics[:first_hiring]) == {"gardening"}
    assert set(topics[first_hiring:]) == {"hiring"}
    assert [t["topic"] for t in truth["topics"]] == ["gardening", "hiring"]


@pytest.mark.parametrize("name", [n for n in VALID if "face" in TRUTH[n]])
def test_face_tracks_cover_every_frame_inside_the_picture(name: str) -> None:
    truth = TRUTH[name]
    track = truth["face"]["track"]
    w, h = truth["face"]["box_size"]
    assert len(track) == round(truth["duration"] * 25)
    for i, (t, cx, cy) in enumerate(track):
        assert t == pytest.approx(i / 25)
        assert w / 2 <= cx <= truth["video"]["width"] - w / 2
        assert h / 2 <= cy <= truth["video"]["height"] - h / 2


def bright_frame_times(name: str) -> list[float]:
    # ffprobe's lavfi input decodes each frame and reports its mean luma with its pts.
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-f", "lavfi", "-i",
         f"movie={MEDIA / name},signalstats", "-show_entries",
         "frame=pts_time:frame_tags=lavfi.signalstats.YAVG", "-of", "json"],
        capture_output=True, text=True, check=True, timeout=60)
    frames = json.loads(out.stdout)["frames"]
    return [float(f["pts_time"]) for f in frames
            if float(f["tags"]["lavfi.signalstats.YAVG"]) > 128]


def beep_onsets(name: str) -> list[float]:
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(MEDIA / name), "-map", "0:a",
                          "-f", "s16le", "-ac", "1", "-ar", "48000", "-"],
                         capture_output=True, check=True, timeout=60).stdout
    loud = np.nonzero(np.abs(np.frombuffer(raw, np.int16)) > 3000)[0]
    starts = loud[np.concatenate([[True], np.diff(loud) > 4800])]
    return [float(s) / 48000 for s in starts]


@pytest.mark.parametrize("name", ["sync_cfr.mp4", "sync_vfr.mkv"])
def test_flashes_and_beeps_land_on_the_stated_times(name: str) -> None:
    truth = TRUTH[name]
    assert bright_frame_times(name) == pytest.approx(truth["flash_times"], abs=0.002)
    assert beep_onsets(name) == pytest.approx(truth["beep_times"], abs=0.003)


def test_vfr_file_really_has_variable_frame_durations() -> None:
    info = ffprobe(MEDIA / "sync_vfr.mkv", "-select_streams", "v",
                   "-show_entries", "packet=pts_time")
    pts = sorted(float(p["pts_time"]) for p in info["packets"])
    assert len(pts) == TRUTH["sync_vfr.mkv"]["frame_count"]
    gaps = np.round(np.diff(pts), 3)
    assert set(gaps.tolist()) == {0.033, 0.034, 0.083, 0.084}
