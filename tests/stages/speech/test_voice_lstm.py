"""Resemblyzer's voice encoder in onnxruntime and in NumPy against Resemblyzer's own torch module, on real
speech windows, and the worker that uses it never importing torch."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from stages.media.audio import decode_mono_16k
from stages.media.probe import probe_media
from stages.speech.voice_encoder import load_voice_encoder, mel_frames
from stages.speech.voice_lstm import (
    NumpyVoiceEncoder,
    OnnxVoiceEncoder,
    converted_weights,
    resemblyzer_checkpoint,
)

TALK = Path(__file__).resolve().parents[2] / "media" / "speech_topics.mp4"
ROOT = Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.skipif(resemblyzer_checkpoint() is None, reason="the 'interviews' extra is not installed")


@pytest.fixture(scope="module")
def windows():
    x = decode_mono_16k(probe_media(TALK), 0.0, 30.0).astype(np.float32)
    mel = mel_frames(x, 16_000)
    full = np.stack([mel[a:a + 160] for a in range(0, len(mel) - 160, 80)][:24])
    short = np.stack([mel[a:a + 70] for a in range(0, 700, 100)])  # a short region's windows
    return full, short


@pytest.mark.parametrize("kind", ["onnxruntime", "numpy"])
def test_our_embeddings_are_torchs(windows, tmp_path, kind):
    torch = pytest.importorskip("torch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from resemblyzer import VoiceEncoder
    module = VoiceEncoder("cpu", verbose=False)
    weights = converted_weights(tmp_path)
    ours = OnnxVoiceEncoder(weights, threads=2) if kind == "onnxruntime" else NumpyVoiceEncoder(weights)
    for mels in windows:
        with torch.inference_mode():
            want = module(torch.from_numpy(mels)).numpy()
        got = ours(mels)
        assert got.shape == want.shape and got.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, rtol=1e-5)
        # measured: < 2e-6 (float32 products in another order); embeddings are compared by cosine
        assert float(np.abs(got - want).max()) < 1e-4
        assert float(np.min(np.sum(got * want, axis=1))) > 0.9999


def test_the_weights_are_converted_once_and_cached(tmp_path):
    first = converted_weights(tmp_path)
    stamp = first.stat().st_mtime_ns
    assert converted_weights(tmp_path) == first and first.stat().st_mtime_ns == stamp
    assert first.parent == tmp_path / "models" and first.suffix == ".npz"


def test_the_worker_side_never_imports_torch(tmp_path):
    code = ("import sys, numpy as np; from stages.speech.voice_encoder import load_voice_encoder; "
            f"enc, why = load_voice_encoder({str(tmp_path)!r}); "
            "assert enc is not None, why; enc(np.zeros((2, 160, 40), np.float32)); "
            "print(type(enc).__name__, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["OnnxVoiceEncoder", "False"]


def test_onnxruntime_and_numpy_agree_and_onnxruntime_failing_falls_back_to_numpy(windows, tmp_path, monkeypatch):
    import stages.speech.voice_lstm as vl

    weights = converted_weights(tmp_path)
    full, short = windows
    for mels in (full, short, full[:1]):
        a, b = OnnxVoiceEncoder(weights)(mels), NumpyVoiceEncoder(weights)(mels)
        assert a.shape == b.shape == (len(mels), 256) and float(np.abs(a - b).max()) < 1e-4
    assert OnnxVoiceEncoder(weights)(np.zeros((0, 160, 40), np.float32)).shape == (0, 256)
    with pytest.raises(ValueError):
        OnnxVoiceEncoder(weights)(np.zeros((2, 160, 13), np.float32))

    def broken(*args, **kwargs):
        raise RuntimeError("no LSTM kernel in this onnxruntime")

    monkeypatch.setattr(vl, "OnnxVoiceEncoder", broken)
    enc, why = load_voice_encoder(tmp_path)
    assert why == "" and type(enc).__name__ == "NumpyVoiceEncoder"


def test_a_failed_conversion_falls_back_to_torch(tmp_path, monkeypatch):
    import stages.speech.voice_lstm as vl

    def broken(cache_dir, checkpoint=None):
        raise RuntimeError("converting the voice encoder's weights failed: no torch in the child")

    monkeypatch.setattr(vl, "converted_weights", broken)
    enc, why = load_voice_encoder(tmp_path)
    assert why == "" and type(enc).__name__ == "TorchVoiceEncoder"
    assert enc(np.zeros((1, 160, 40), np.float32)).shape == (1, 256)
