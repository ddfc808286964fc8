"""The speech stages read the analysis audio from disk in pieces (performance issue: memory flat in
source length): the same values as with the whole track in memory, and memory bounded by the
piece, not the source.

The references are the whole-array computations measured in the same run: Resemblyzer's own
``wav_to_mel_spectrogram`` of the volume-normalised track, and ``speaker_features`` over the
track as one array.
"""

from __future__ import annotations

import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from engine.types import SpeakerTurn, Word
from stages.media import AudioFile
from stages.speech.host import pitch_track, speaker_features
from tests.stages.speech.test_host_memory import voice

RATE = 16_000


def _save(tmp_path: Path, x: np.ndarray, name: str = "audio_16k.npy") -> AudioFile:
    path = tmp_path / name
    np.save(path, x)
    return AudioFile(path)


def test_audio_file_reads_what_np_load_holds(tmp_path):
    x = voice(7.3)
    f = _save(tmp_path, x)
    assert len(f) == len(x) and f.dtype == np.float32
    for lo, hi in ((0, 10), (1000, 54321), (len(x) - 5, len(x) + 100), (-50, 20), (500, 400)):
        assert np.array_equal(f.read(lo, hi), x[max(0, lo):max(0, min(hi, len(x)))][: max(0, hi - max(0, lo))])
    assert np.array_equal(f[123:4567], x[123:4567])
    span = f.span(1000, 9000)
    assert len(span) == 8000 and np.array_equal(span[10:20], x[1010:1020]) and np.array_equal(span[:], x[1000:9000])
    assert np.array_equal(np.concatenate([p for _, p in f.pieces(1000)]), x)
    assert f.mean_square() == pytest.approx(float(np.mean(x.astype(np.float64) ** 2)), rel=1e-12)


@pytest.mark.parametrize("seconds", [0.01, 3.0, 75.0])
def test_mel_in_pieces_is_resemblyzers_whole_track_mel(tmp_path, seconds):
    from resemblyzer import audio as raudio

    from stages.speech.diarize import mel_frames

    x = voice(seconds) * 0.05  # quiet: the volume normalisation raises it
    reference = raudio.wav_to_mel_spectrogram(raudio.normalize_volume(x, -30, increase_only=True))
    f = _save(tmp_path, x)
    for piece in (1, 333, 6000):
        for source in (x, f):
            got = mel_frames(source, RATE, piece=piece)
            assert got.shape == reference.shape
            np.testing.assert_allclose(got, reference, rtol=2e-4, atol=1e-6 * float(reference.max()))


def test_mel_memory_is_bounded_by_the_piece_not_the_source(tmp_path):
    """20 minutes from disk: stated bound 60 MiB of allocations at any moment (the result itself
    is 18 MiB; the whole-track computation holds the 73 MiB track and a ~190 MiB spectrum)."""
    from stages.speech.diarize import mel_frames

    f = _save(tmp_path, voice(20 * 60.0, seed=3))
    mel_frames(voice(1.0), RATE)  # the filterbank is built once and cached
    tracemalloc.start()
    mel = mel_frames(f, RATE)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert mel.shape == (1 + len(f) // 160, 40)
    print(f"\ndiarizer mel, 20 min from disk: peak traced allocations {peak / 2**20:.1f} MiB")
    assert peak / 2**20 < 60, peak / 2**20


def _talk(seconds: float) -> tuple[np.ndarray, list[Word], list[SpeakerTurn]]:
    x = voice(seconds, seed=5)
    words, turns = [], []
    t, turn = 0.0, 0
    while t < seconds - 1:
        speaker = "S1" if turn % 2 == 0 else "S2"
        length = 25.0 if speaker == "S1" else 4.0
        end = min(seconds, t + length)
        turns.append(SpeakerTurn(t, end, speaker))
        w = t
        while w + 0.4 < end:
            words.append(Word(round(w, 3), round(w + 0.3, 3), "well?" if speaker == "S2" else "yes", 0.9, speaker))
            w += 0.45
        t, turn = end, turn + 1
    return x, words, turns


def test_speaker_features_from_disk_are_the_whole_arrays(tmp_path):
    x, words, turns = _talk(150.0)
    f = _save(tmp_path, x)
    assert speaker_features(words, turns, f, 0.0) == speaker_features(words, turns, x, 0.0)
    # and a source that starts later (origin) reads the same ranges
    assert speaker_features(words, turns, f, -2.0) == speaker_features(words, turns, x, -2.0)


def test_speaker_features_on_threads_are_the_same(tmp_path):
    """The host stage analyses turns on its threads: short turns one task each, a long one (25 s, more
    than one pitch chunk) spread in chunks; the features are those of one thread, exactly."""
    x, words, turns = _talk(150.0)
    f = _save(tmp_path, x)
    alone = speaker_features(words, turns, f, 0.0)
    with ThreadPoolExecutor(2) as pool:
        assert speaker_features(words, turns, f, 0.0, pool=pool) == alone
        assert speaker_features(words, turns, x, 0.0, pool=pool) == alone
    with ThreadPoolExecutor(2) as pool:  # and chunk by chunk, one long input
        assert np.array_equal(pitch_track(x, pool=pool), pitch_track(x))


def test_one_long_turn_is_read_in_pieces(tmp_path):
    """A 20-minute monologue is one turn: stated bound 150 MiB of allocations beyond nothing held
    (the array path needs the turn itself, 73 MiB, plus a float64 copy for its levels, 146 MiB)."""
    x = voice(20 * 60.0, seed=8)
    f = _save(tmp_path, x)
    words = [Word(float(i), i + 0.5, "so", 0.9, "S1") for i in range(0, 1199)]
    turns = [SpeakerTurn(0.0, 1200.0, "S1"), SpeakerTurn(1200.0, 1200.0, "S2")]
    del x
    tracemalloc.start()
    feats = speaker_features(words, turns, f, 0.0)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert feats["S1"]["pitch_st"] > 0
    with ThreadPoolExecutor(2) as pool:  # as the stage runs it: two chunks at a time, the same bound
        tracemalloc.start()
        assert speaker_features(words, turns, f, 0.0, pool=pool) == feats
        _, threaded = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    print(f"... on two threads: {threaded / 2**20:.1f} MiB")
    assert threaded / 2**20 < 150, threaded / 2**20
    print(f"\nhost features, one 20 min turn from disk: peak traced allocations {peak / 2**20:.1f} MiB")
    assert peak / 2**20 < 150, peak / 2**20


def test_mel_on_demand_serves_the_windows_of_the_whole_spectrogram(tmp_path):
    """The diarizer never holds the whole spectrogram (16 KB per second, 230 MB for 4 h): windows
    read in order from :class:`Mel` are the whole spectrogram's frames, and so is the energy."""
    from stages.speech.diarize import HOP_FRAMES, WINDOW_FRAMES, Mel, mel_frames

    x = voice(50.0, seed=2) * 0.05
    f = _save(tmp_path, x)
    whole = mel_frames(x, RATE)
    mel = Mel(f, RATE, piece=700)
    windows = [(a, a + WINDOW_FRAMES) for a in range(0, len(whole) - WINDOW_FRAMES, HOP_FRAMES)]
    windows.insert(5, (windows[5][0], windows[5][0] + 60))  # a short window among them
    for a, b in windows:
        np.testing.assert_allclose(mel.frames(a, b), whole[a:b], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(mel.energy(), whole.sum(axis=1), rtol=1e-5)


def test_words_are_labelled_from_the_windows_that_overlap_them_only():
    """label_words finds each word's windows by bisection; the labels are those of weighing every
    window (zero weight where a window misses the word), as it did before."""
    from stages.speech.diarize import WINDOW_FRAMES, label_words

    rng = np.random.default_rng(4)
    starts = np.sort(rng.uniform(0, 300, 900))
    lengths = np.where(rng.random(900) < 0.2, rng.uniform(0.5, 1.6, 900), WINDOW_FRAMES * 0.01)
    spans = np.stack([starts, starts + lengths], axis=1)
    emb = rng.standard_normal((900, 256)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    cents = emb[rng.choice(900, 3, replace=False)]
    words = [Word(float(t), float(t) + 0.3, "w", 0.9) for t in np.sort(rng.uniform(-2, 302, 700))]

    def every_window(w: Word) -> int:
        ov = np.clip(np.minimum(spans[:, 1], w.end) - np.maximum(spans[:, 0], w.start), 0.0, None)
        if ov.sum() <= 0:
            return -1
        half = np.maximum((spans[:, 1] - spans[:, 0]) / 2, 1e-3)
        centred = np.clip(1.0 - np.abs((w.start + w.end) / 2 - spans.mean(axis=1)) / half, 0.05, 1.0)
        return int(np.argmax(cents @ (emb * (ov * centred ** 2)[:, None]).sum(0)))

    got = label_words(words, spans, emb, cents)
    brute = [every_window(w) for w in words]
    assert [g for g, b in zip(got, brute, strict=True) if b != -1] == [b for b in brute if b != -1]
