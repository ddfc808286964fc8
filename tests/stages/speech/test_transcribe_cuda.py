"""Transcription on the cuda backend: Whisper float16 on CUDA with faster-whisper's batched pipeline
where CTranslate2 has CUDA, else the CPU model, said in the log, never silently.

This machine's CTranslate2 has no CUDA, which is itself one of the faults: the real library answers
0 devices, and asked for device="cuda" anyway it raises. The working path is exercised by loading the
"CUDA" model on the CPU (int8) so the batched pipeline runs for real; its words are judged against the
plain pipeline's on the same audio in the same run.
"""

from __future__ import annotations

import difflib
import logging
from pathlib import Path

import faster_whisper
import numpy as np

from engine.backends import Backend, CudaPlan, GpuDevice
from engine.config import Settings
from engine.stage import StageContext
from engine.types import AnalysisAudio
from stages.media.audio import decode_mono_16k
from stages.media.probe import probe_media
from stages.speech import TranscribeRequest, TranscribeStage
from tests.judges import check

TALK = Path(__file__).resolve().parents[2] / "media" / "speech_topics.mp4"
CUDA = Backend("cuda", np, CudaPlan(GpuDevice("NVIDIA H200", (9, 0), 141 << 30), "nvdec", "torch-cuda", "x264-cpu"))


def _ctx(tmp_path: Path) -> StageContext:
    settings = Settings.from_env(environ={}, threads=2, cache_dir=tmp_path / "cache")
    return StageContext("t", tmp_path, settings, CUDA)


def test_no_cuda_in_ctranslate2_means_the_cpu_model_and_a_warning(tmp_path, caplog):
    import ctranslate2

    assert ctranslate2.get_cuda_device_count() == 0  # this machine: a CPU build, no GPU
    stage = TranscribeStage()
    with caplog.at_level(logging.WARNING, logger="clipora"):
        stage.setup(_ctx(tmp_path))
    assert stage._model.model.device == "cpu"
    assert "transcribe on the CPU although the backend is cuda" in caplog.text
    assert "finds no CUDA device" in caplog.text


def test_a_cuda_model_that_fails_to_load_falls_back_to_the_cpu(tmp_path, caplog, monkeypatch):
    import ctranslate2

    monkeypatch.setattr(ctranslate2, "get_cuda_device_count", lambda: 1)  # says yes; the load then fails
    stage = TranscribeStage()
    with caplog.at_level(logging.WARNING, logger="clipora"):
        stage.setup(_ctx(tmp_path))
    assert stage._model.model.device == "cpu"
    assert "Whisper on CUDA failed" in caplog.text


def test_the_cuda_path_runs_the_batched_pipeline_with_word_times(tmp_path, monkeypatch, caplog):
    import ctranslate2

    real = faster_whisper.WhisperModel
    asked: list[tuple[str, str]] = []

    def on_cpu(model, device="cpu", compute_type="int8", **kw):
        asked.append((device, compute_type))
        return real(model, device="cpu", compute_type="int8", **kw)  # the "GPU" model, run here

    monkeypatch.setattr(ctranslate2, "get_cuda_device_count", lambda: 1)
    monkeypatch.setattr(faster_whisper, "WhisperModel", on_cpu)
    media = probe_media(TALK)
    samples = decode_mono_16k(media, 0.0, 40.0)
    np.save(tmp_path / "a.npy", samples)
    audio = AnalysisAudio(str(tmp_path / "a.npy"), 0.0, 16000, len(samples) / 16000)
    ctx = _ctx(tmp_path)
    gpu = TranscribeStage()
    with caplog.at_level(logging.INFO, logger="clipora"):
        gpu.setup(ctx)
    assert asked[0] == ("cuda", "float16")
    assert gpu._batched is not None and "transcribe on CUDA: float16, batched (16 segments" in caplog.text
    got = gpu.process(TranscribeRequest(audio, language="en"), ctx)

    monkeypatch.setattr(faster_whisper, "WhisperModel", real)
    plain = TranscribeStage()  # the sequential pipeline on the CPU
    cpu_ctx = StageContext("t", tmp_path, ctx.settings, Backend("cpu", np))  # auto: sequential on the CPU
    plain.setup(cpu_ctx)
    ref = plain.process(TranscribeRequest(audio, language="en"), cpu_ctx)

    a = [w.text.lower().strip(".,?!") for w in ref.words]
    b = [w.text.lower().strip(".,?!") for w in got.words]
    assert len(a) > 50
    blocks = difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_matching_blocks()
    same = sum(m.size for m in blocks)
    # the same model, batched over VAD segments instead of sequential windows: a few words differ
    # at segment joins; bounded well below what it measures
    check("asr: batched pipeline words vs sequential, same model", same / len(a), 0.85)
    assert plain._batched is None
    assert all(w.end > w.start for w in got.words)  # word timestamps kept
    starts = [w.start for w in got.words]
    assert starts == sorted(starts)
    # the words both heard are at the same times (within a short word's length)
    pairs = [(ref.words[m.a + i], got.words[m.b + i]) for m in blocks for i in range(m.size)]
    off = np.median([abs(r.start - g.start) for r, g in pairs])
    check("asr: batched pipeline word start offset, median s", float(off), 0.2, at_least=False)


def test_whisper_batch_auto_batches_on_the_gpu_only():
    from stages.speech.transcribe import GPU_BATCH, batch_size

    assert batch_size(-1, on_gpu=False) == 0 and batch_size(-1, on_gpu=True) == GPU_BATCH
    assert batch_size(0, on_gpu=True) == 0 and batch_size(8, on_gpu=False) == 8
