"""The GPU check's own plumbing, on the CPU: its sources, its table, and that it degrades to "why not"
instead of numbers where a part is missing (the measurements themselves need a GPU machine)."""

from __future__ import annotations

import av
import pytest

from benchmarks import gpu_check
from stages.media import probe_media


def test_the_1080p_source_loops_seamlessly(tmp_path):
    src = gpu_check.make_1080p(tmp_path, 2.0)
    looped = gpu_check.looped(src, 3, tmp_path)
    media = probe_media(looped)
    assert (media.width, media.height, media.video_codec) == (1920, 1080, "h264")
    assert media.duration == pytest.approx(6.0, abs=0.05) and not media.is_vfr
    with av.open(str(looped)) as c:
        s = c.streams.video[0]
        ts = [float(f.pts * s.time_base) for f in c.decode(s)]
    assert len(ts) == 150
    steps = {round(b - a, 3) for a, b in zip(ts, ts[1:], strict=False)}
    assert steps == {0.04}  # no gap or overlap at the seams


def _data(results):
    return {"results": results, "started": "2026-12-02T00:00:00", "machine": {"cpu_count": 16, "processor": "x",
            "git_commit": "abc", "versions": {}}, "load_before": [0, 0, 0], "load_after": [0, 0, 0]}


def test_the_table_shows_numbers_and_says_why_where_there_are_none():
    text = gpu_check.table(_data({
        "environment": {"nvidia_smi": "GPU 0: NVIDIA H200", "plan": "decode nvdec, detector torch-cuda"},
        "gpu_tests": {"returncode": 0, "summary": "12 passed in 30.1s"},
        "decode": {"nvdec_1_fps": 812.5, "nvdec_7_fps_aggregate": 4100.0, "pyav_cpu_fps": 390.0},
        "kernels": {"error": "CUDADriverError: out of memory"},
        "faces": {"skipped": "not enough of the 480 s budget left (12 s)"},
        "end_to_end": {"not_run": "No module named 'ctranslate2'"},
    }))
    assert "| NVDEC decode, 7 decoders (fps, aggregate) | 4100.00 | >= 1500 |" in text
    assert "CUDADriverError: out of memory" in text
    assert "not enough of the 480 s budget left" in text
    assert "No module named 'ctranslate2'" in text
    assert "| 30 s clip render, cuda backend (fps) | not run |" in text


def test_without_a_gpu_every_section_records_why(monkeypatch, tmp_path):
    """This machine: no CuPy. The sections that need the GPU fail with their reason; nothing is invented."""
    check = gpu_check.Check()
    env = check.section("environment", gpu_check.environment)
    assert "unavailable" in env["plan"] and "CuPy" in env["plan"]
    src = gpu_check.make_1080p(tmp_path, 1.0)
    out = check.section("kernels", gpu_check.kernel_fps, src)
    assert "error" in out and "cupy" in out["error"].lower()
    assert not any(k.endswith("_fps") for k in out)
