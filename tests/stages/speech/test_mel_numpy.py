"""The voice encoder's mel spectrogram in NumPy against librosa's (what Resemblyzer uses), on real speech.

librosa stays installed (Resemblyzer depends on it) but is no longer called: its first call JIT-compiles
with numba (~7 s at worker start, ~177 MB resident for the worker's life)."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from stages.media.audio import decode_mono_16k
from stages.media.probe import probe_media
from stages.speech.voice_encoder import MEL_BANDS, mel_filterbank, mel_power

TALK = Path(__file__).resolve().parents[2] / "media" / "speech_topics.mp4"


@pytest.fixture(scope="module")
def librosa():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pytest.importorskip("librosa")


def test_the_filterbank_is_librosas(librosa):
    ref = librosa.filters.mel(sr=16_000, n_fft=400, n_mels=40)
    np.testing.assert_allclose(mel_filterbank(), ref, rtol=1e-5, atol=1e-8)


def test_the_spectrogram_is_librosas_on_speech(librosa):
    x = decode_mono_16k(probe_media(TALK), 3.0, 13.0).astype(np.float32)
    ref = librosa.feature.melspectrogram(y=x, sr=16_000, n_fft=400, hop_length=160, n_mels=40, center=False).T
    got = mel_power(x)
    assert got.shape == ref.shape == (1 + (len(x) - 400) // 160, MEL_BANDS) and got.dtype == np.float32
    loud = ref > ref.max() * 1e-6
    # measured: 8e-6 relative at most (float32 FFTs in a different order)
    assert float(np.max(np.abs(got - ref)[loud] / ref[loud])) < 1e-4
    assert float(np.max(np.abs(got - ref))) < 1e-4 * float(ref.max())


def test_computing_mel_frames_does_not_import_librosa():
    code = ("import sys, numpy as np; from stages.speech.voice_encoder import Mel; "
            "Mel(np.random.default_rng(0).standard_normal(48000).astype(np.float32), 16000).compute(0, 200); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('librosa', 'numba')))")
    root = Path(__file__).resolve().parents[3]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
