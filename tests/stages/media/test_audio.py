"""The audio stage writes the 16 kHz analysis track to disk as it decodes (performance issue: memory
flat in source length): the same samples and energy curve as decoding into memory, and a long
source never held whole."""

from __future__ import annotations

import subprocess
import tracemalloc
from pathlib import Path

import av
import numpy as np
import pytest

from engine.backends import select_backend
from engine.config import Settings
from engine.stage import StageContext
from stages.media import AudioFile, AudioRequest, AudioStage, probe_media
from stages.media.audio import decode_mono_16k, rms_db

MEDIA = Path(__file__).resolve().parents[2] / "media"


def _ctx(tmp_path: Path) -> StageContext:
    return StageContext("t", tmp_path, Settings.from_env(environ={}, threads=2, cache_dir=tmp_path / "cache"),
                        select_backend("cpu"))


@pytest.mark.parametrize("name, start, end", [("speech_topics.mp4", 0.0, None), ("sync_vfr.mkv", 1.3, 4.1),
                                              ("speech_topics.mp4", 10.0, 20.0)])
def test_the_track_on_disk_is_the_track_decoded_into_memory(tmp_path, name, start, end):
    media = probe_media(MEDIA / name)
    end = media.duration if end is None else end
    analysis = AudioStage().process(AudioRequest(media, start, end), _ctx(tmp_path))
    assert analysis.audio is not None
    on_disk = np.load(analysis.audio.path)
    in_memory = decode_mono_16k(media, start, end)
    assert on_disk.dtype == np.float32 and np.array_equal(on_disk, in_memory)
    assert analysis.audio.duration == pytest.approx(len(in_memory) / 16_000)
    n = 800  # the energy curve as computed on the whole array at once
    whole = in_memory[: len(in_memory) // n * n].reshape(-1, n).astype(np.float64)
    expected = np.round(20 * np.log10(np.maximum(np.sqrt(np.mean(whole ** 2, axis=1)), 1e-5)), 2).astype(np.float32)
    assert np.array_equal(np.array(analysis.features.rms_db, np.float32), expected)
    assert np.array_equal(rms_db(AudioFile(analysis.audio.path), piece_hops=7), expected)


def per_frame_reference(media, start: float, end: float) -> np.ndarray:
    """The decoder as it was: every AAC frame resampled and placed on its own (the reference for values)."""
    out = np.zeros(max(0, int(round((end - start) * 16_000))), np.float32)
    resampler = av.AudioResampler(format="flt", layout="mono", rate=16_000)
    pos = None

    def place(rf, t):
        nonlocal pos
        data = rf.to_ndarray().reshape(-1)
        if pos is None:
            pos = int(round((t - start) * 16_000))
        lo = max(pos, 0)
        hi = min(pos + data.size, out.size)
        if hi > lo:
            out[lo:hi] = data[lo - pos:hi - pos]
        pos += data.size

    with av.open(str(media.path)) as container:
        stream = container.streams.audio[0]
        if start > 0.5:
            container.seek(int((start + media.start_time) / stream.time_base), stream=stream)
        for frame in container.decode(stream):
            if frame.pts is None:
                continue
            t = float(frame.pts * frame.time_base) - media.start_time
            if t >= end:
                break
            for rf in resampler.resample(frame):
                place(rf, t)
        for rf in resampler.resample(None):
            place(rf, start)
    return out


@pytest.mark.parametrize("name, start, end", [("speech_topics.mp4", 0.0, None), ("speech_topics.mp4", 23.45, 51.0),
                                              ("speech_topics.mp4", 0.3, 0.9), ("sync_vfr.mkv", 1.3, 4.1),
                                              ("sync_vfr.mkv", 0.0, None)])
def test_second_long_resampled_frames_hold_the_samples_frame_by_frame_decoding_gives(name, start, end):
    """The decoder lets libav gather a second of samples per resampled frame (one Python step per second
    instead of per 21 ms AAC frame: 1.42 -> 0.73 CPU s for 10 minutes); the samples stay the same."""
    media = probe_media(MEDIA / name)
    end = media.duration if end is None else end
    assert np.array_equal(decode_mono_16k(media, start, end), per_frame_reference(media, start, end))


def test_a_long_source_is_never_held_whole(tmp_path):
    """20 minutes of audio: stated bound 40 MiB of allocations at any moment (the track alone is
    73 MiB, and the energy curve on the whole array made two float64 copies of it, 293 MiB)."""
    source = tmp_path / "long.mp4"  # a 64x64 picture at 1 fps: the audio is what counts here
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=c=gray:s=64x64:r=1:d=1200",
                    "-f", "lavfi", "-i", "sine=frequency=220:sample_rate=16000:duration=1200",
                    "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-b:a", "32k", "-shortest",
                    str(source)], check=True)
    media = probe_media(source)
    tracemalloc.start()
    analysis = AudioStage().process(AudioRequest(media, 0.0, media.duration), _ctx(tmp_path))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert analysis.audio is not None and analysis.audio.duration == pytest.approx(1200, abs=0.5)
    print(f"\naudio stage, 20 min source: peak traced allocations {peak / 2**20:.1f} MiB")
    assert peak / 2**20 < 40, peak / 2**20
