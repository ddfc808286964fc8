"""A whole job on the cuda backend's code paths, with NumPy standing in for CuPy (no GPU here).

The worker hands every stage a cuda Backend whose array module is NumPy and whose plan decodes with
PyAV (+ "upload"), detects faces on onnxruntime and encodes with libx264: so the render goes through
``GpuPainter`` (NV12, the array-module kernels, the host copy), faces through the runner selection,
transcription through the CUDA check (this CTranslate2 has no CUDA: the CPU model, with a warning).
The job must give the CPU job's clips: the same windows and framing, and pictures within libx264's
own run-to-run variation (>= 40 dB on every sampled frame).
"""

from __future__ import annotations

import logging
from pathlib import Path

import av
import numpy as np
import pytest

import engine.worker
from clipora.compose import StageSet, run_job
from engine.backends import Backend, CudaPlan, GpuDevice
from engine.options import ProcessOptions

pytestmark = pytest.mark.slow

FAKE_GPU = Backend("cuda", np, CudaPlan(GpuDevice("NVIDIA H200 (NumPy stand-in)", (9, 0), 141 << 30),
                                        "pyav", "onnxruntime-cpu", "x264-cpu"))
OPTS = {"num_clips": 1, "clip_length": "short", "caption_preset": "beasty"}


def _frames(path: Path, every: int = 10) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="yuv420p") for i, f in enumerate(c.decode(c.streams.video[0])) if i % every == 0]


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def test_a_job_on_the_cuda_code_paths_gives_the_cpu_jobs_clip(settings, media_dir, tmp_path, monkeypatch, caplog):
    stages = StageSet()
    src = media_dir / "speech_topics.mp4"
    cpu = run_job(src, tmp_path / "cpu", ProcessOptions.build(**OPTS), settings, stages=stages)

    monkeypatch.setattr(engine.worker, "select_backend", lambda name: FAKE_GPU)
    with caplog.at_level(logging.INFO, logger="clipora"):
        gpu = run_job(src, tmp_path / "gpu", ProcessOptions.build(**OPTS), settings, stages=StageSet())
    log = caplog.text
    assert "render on NVIDIA H200 (NumPy stand-in)" in log  # the GPU painter rendered it
    assert "transcribe on the CPU although the backend is cuda" in log  # said, not silent

    assert [(c["start"], c["end"]) for c in gpu["clips"]] == [(c["start"], c["end"]) for c in cpu["clips"]]
    assert [c["cropPath"] for c in gpu["clips"]] == [c["cropPath"] for c in cpu["clips"]]
    a, b = _frames(tmp_path / "cpu" / "clip_01.mp4"), _frames(tmp_path / "gpu" / "clip_01.mp4")
    assert len(a) == len(b) > 5
    worst = min(_psnr(x, y) for x, y in zip(a, b, strict=True))
    assert worst >= 40.0, f"worst sampled frame {worst:.1f} dB"
