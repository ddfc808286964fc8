"""The diarizer's two passes of windows: coarse windows side by side, fine ones only where the
voice may change; batched encoder calls; and, on long real audio, labels as good as before."""

from __future__ import annotations

import sys
from collections import Counter

import numpy as np
import pytest

import stages.speech.diarize  # noqa: F401  (the module; the package exports its diarize())
from engine.types import Word
from tests.judges import check

D = sys.modules["stages.speech.diarize"]
RATE = 16_000
W, FINE = D.WINDOW_FRAMES, D.HOP_FRAMES


def test_window_starts_cover_a_region_every_hop_and_end_on_it():
    assert D.window_starts(100, 220) == [100]  # shorter than a window: one window, [a, b)
    assert D.window_starts(0, 500, FINE) == [0, 40, 80, 120, 160, 200, 240, 280, 320, 340]
    assert D.window_starts(0, 500, D.COARSE_HOP_FRAMES) == [0, 160, 320, 340]
    assert D.region_windows([(0.0, 5.0), (6.0, 6.3), (7.0, 8.0)], 0.0, 10_000) == [
        *((s, s + W) for s in (0, 40, 80, 120, 160, 200, 240, 280, 320, 340)), (700, 800)]  # 0.3 s: dropped


def test_refinement_adds_the_fine_windows_between_disagreeing_neighbours_only():
    bounds = [(0, 800), (1000, 1100), (1200, 1700)]
    coarse = [w for a, b in bounds for w in D._windows_at(a, b, D.window_starts(a, b, D.COARSE_HOP_FRAMES))]
    assert [w[0] for w in coarse] == [0, 160, 320, 480, 640, 1000, 1200, 1360, 1520, 1540]
    n = len(coarse)
    same = np.zeros(n, int)
    assert D.refine_windows(bounds, same, np.zeros(n, bool)) == []  # one voice: nothing more
    labels = same.copy()
    labels[2:] = 1  # the voice changes between the windows at 160 and 320
    labels[5:] = 0  # ... and between regions, where no window reaches across: nothing there
    assert D.refine_windows(bounds, labels, np.zeros(n, bool)) == [(200, 360), (240, 400), (280, 440)]
    doubt = np.zeros(n, bool)
    doubt[8] = True  # the window at 1520: both its neighbours' gaps are filled
    assert [w[0] for w in D.refine_windows(bounds, same, doubt)] == [1400, 1440, 1480]
    # all in doubt: the coarse and the added windows are the fine grid's, exactly
    everything = D.refine_windows(bounds, same, np.ones(n, bool))
    fine = [w for a, b in bounds for w in D._windows_at(a, b, D.window_starts(a, b, FINE))]
    assert sorted(coarse + everything) == fine
    with pytest.raises(ValueError):
        D.refine_windows(bounds, same, doubt, coarse_hop=100)


class CountingEncoder:
    """A stand-in encoder: the mean of each window's frames, tiled to 256; calls recorded."""

    def __init__(self) -> None:
        self.batches: list[tuple[int, ...]] = []

    def __call__(self, mels):
        self.batches.append(tuple(mels.shape))
        return np.tile(mels.mean(axis=1), (1, 7))[:, :256]


def test_short_windows_are_batched_by_length_with_the_same_embeddings():
    rng = np.random.default_rng(3)
    mel = rng.random((5000, D.MEL_BANDS), dtype=np.float32)
    windows = [(a, a + W) for a in range(0, 4000, 40)] + [(a, a + 60 + a // 30 % 3) for a in range(0, 900, 30)]
    enc = CountingEncoder()
    got = D.embed_windows(enc, mel, windows, batch=64)
    want = np.stack([enc(mel[a:b][None])[0] for a, b in windows])
    np.testing.assert_allclose(got, want, rtol=1e-6)
    calls = enc.batches[:-len(windows)]
    assert len(calls) == 2 + 3  # 100 full windows in 64 + 36; 30 short ones of 3 lengths


def test_a_piece_of_mel_runs_only_as_far_as_the_windows_ahead_need():
    x = np.random.default_rng(1).standard_normal(RATE * 200).astype(np.float32) * 0.05
    mel = D.Mel(x, RATE)
    computed: list[int] = []
    compute = mel.compute
    mel.compute = lambda a, b: computed.append(b - a) or compute(a, b)  # type: ignore[method-assign]
    # sparse windows (as the refinement adds them): two near each other, then one far away
    D.embed_windows(CountingEncoder(), mel, [(1000, 1160), (1040, 1200), (15000, 15160)])
    assert computed == [200, 160]  # not a 60 s piece for each


# -- on real audio: long enough for the two passes --------------------------------------------


@pytest.fixture(scope="module")
def encoder():
    enc, why = D.load_voice_encoder()
    if enc is None:
        pytest.skip(why)
    return enc


def grids(x: np.ndarray, words: list[Word]) -> tuple[int, int]:
    """How many windows the fine grid and the coarse pass have over ``words``' regions."""
    mel = D.Mel(x, RATE)
    regions = D.split_at_silence(D.speech_regions(words), mel.energy(), 0.0)
    return (len(D.region_windows(regions, 0.0, len(mel))),
            len(D.region_windows(regions, 0.0, len(mel), D.COARSE_HOP_FRAMES)))


def counted(encoder):
    seen = []

    def call(mels):
        seen.append(int(mels.shape[0]))
        return encoder(mels)

    return call, seen


def test_a_long_two_voice_talk_is_labelled_as_well_from_far_fewer_windows(encoder, media_dir, truth):
    """The committed talk (two espeak voices) looped to 4.6 minutes, words from its truth sentences."""
    from stages.media import probe_media
    from stages.media.audio import decode_mono_16k

    info = truth["speech_topics.mp4"]
    media = probe_media(media_dir / "speech_topics.mp4")
    x = decode_mono_16k(media, 0.0, media.duration)
    period, loops = len(x) / RATE, 4
    words, voices = [], []
    for k in range(loops):
        for s in info["sentences"]:
            toks = s["text"].split()
            step = (s["end"] - s["start"]) / len(toks)
            for i, tok in enumerate(toks):
                t = k * period + s["start"] + i * step
                words.append(Word(t, t + 0.9 * step, tok))
                voices.append(s["voice"])
    x = np.tile(x, loops)
    call, seen = counted(encoder)
    d = D.diarize(call, x, RATE, 0.0, words)
    fine, coarse = grids(x, words)
    assert coarse >= D.MIN_COARSE_WINDOWS  # long enough: the two passes ran
    assert len(d.speakers) == 2
    pairs = Counter(zip(d.word_speakers, voices, strict=True))
    right = sum(max(c for (lab, _), c in pairs.items() if lab == s) for s in d.speakers) / len(words)
    # measured: 1.0 (fine grid 1.0)
    check("diarize: two-pass windows, espeak talk x4, words labelled right", right, 0.97)
    # measured: 0.53 of the fine grid's windows (0.4 s hop everywhere)
    check("diarize: two-pass windows embedded / fine grid's", sum(seen) / fine, 0.7, at_least=False)


class OneVoice:
    """A stand-in encoder that hears one voice in every window; counts the windows it embeds."""

    def __init__(self) -> None:
        self.windows = 0

    def __call__(self, mels):
        self.windows += int(mels.shape[0])
        return np.full((mels.shape[0], 256), 1 / 16, np.float32)  # unit length


@pytest.mark.parametrize("minutes", [1.0, 5.0])
def test_one_voice_costs_the_coarse_pass_only_and_a_short_source_the_fine_grid(minutes):
    x = np.random.default_rng(0).standard_normal(int(minutes * 60 * RATE)).astype(np.float32) * 0.05
    # sentences of 3.4 s with 0.6 s pauses, a word every 0.34 s
    words = [Word(t0 + i * 0.34, t0 + i * 0.34 + 0.3, "w") for t0 in np.arange(0.5, minutes * 60 - 4, 4.0)
             for i in range(10)]
    enc = OneVoice()
    d = D.diarize(enc, x, RATE, 0.0, words)
    assert d.speakers == ("S1",) and set(d.word_speakers) == {"S1"}
    fine, coarse = grids(x, words)
    if coarse >= D.MIN_COARSE_WINDOWS:
        assert enc.windows == coarse <= fine / 2  # the coarse pass, nothing refined
    else:
        assert enc.windows == fine  # too few windows to trust a voice count from the coarse ones
