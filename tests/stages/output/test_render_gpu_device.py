"""The CUDA render on a device (marker ``gpu``; skipped cleanly without one): NVDEC frames against
PyAV's, and a whole clip through the cuda backend against the cpu backend.

- NVDEC (PyNvVideoCodec) on 8-bit H.264 must give PyAV's frames bit-exactly (both decode the same
  bitstream to the same 8-bit planes; NVDEC's NV12 holds the same samples interleaved).
- A clip through ``RenderStage`` on the cuda backend (CuPy kernels, GPU caption blend, one host
  copy, libx264) vs the cpu backend: the painted pictures within 1 level (the area and Gaussian
  kernels may round differently on the GPU: ``tests/kernels/test_xp_kernels_gpu.py``), the encoded
  files >= 40 dB PSNR on every frame.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

pytestmark = pytest.mark.gpu

cp = pytest.importorskip("cupy")
try:
    _DEVICES = cp.cuda.runtime.getDeviceCount()
except Exception:  # no driver / no device
    _DEVICES = 0
if _DEVICES < 1:
    pytest.skip("no CUDA device", allow_module_level=True)

from engine.backends import select_backend  # noqa: E402
from engine.config import Settings  # noqa: E402
from engine.stage import StageContext  # noqa: E402
from stages.media import probe_media  # noqa: E402
from stages.media.gpu_decode import nvdec_frames, uploaded_frames  # noqa: E402
from stages.output import RenderStage  # noqa: E402
from stages.output.render import CpuPainter  # noqa: E402
from stages.output.render_gpu import GpuPainter  # noqa: E402
from tests.stages.output.test_render_gpu import CASES, _painted, _psnr, _request  # noqa: E402

MEDIA = Path(__file__).resolve().parents[2] / "media"


def _ctx(tmp_path: Path, backend: str) -> StageContext:
    settings = Settings.from_env(environ={}, backend=backend, cache_dir=tmp_path / "cache")
    return StageContext("gpu", tmp_path, settings, select_backend(backend))


def test_nvdec_frames_are_bit_exact_with_pyav():
    nvc = pytest.importorskip("PyNvVideoCodec")
    media = probe_media(MEDIA / "face_moving.mp4")
    got = list(nvdec_frames(media, 1.0, 3.0, nvc=nvc, xp=cp))
    ref = list(uploaded_frames(media, 1.0, 3.0, xp=np))
    assert len(got) == len(ref) > 40
    for (tg, (yg, uvg)), (tr, (yr, uvr)) in zip(got, ref, strict=True):
        assert tg == pytest.approx(tr, abs=1e-6)
        np.testing.assert_array_equal(cp.asnumpy(yg), yr)
        np.testing.assert_array_equal(cp.asnumpy(uvg), uvr)


@pytest.mark.parametrize(("aspect", "captions", "shots"), CASES)
def test_the_gpu_paints_the_cpu_pictures(tmp_path, aspect, captions, shots):
    ctx = _ctx(tmp_path, "cuda")
    media = probe_media(MEDIA / "face_moving.mp4")
    req = _request(media, 2.0, 5.0, aspect, tmp_path / "x.mp4", captions, shots)
    gpu = GpuPainter.for_source(media, ctx.backend)
    a, b = _painted(CpuPainter(), req, ctx), _painted(gpu, req, ctx)
    assert len(a) == len(b) == 75
    worst = max(int(np.abs(fa.astype(np.int16) - fb).max()) for fa, fb in zip(a, b, strict=True))
    assert worst <= 1, f"max difference {worst} levels"


def test_a_clip_through_the_cuda_backend_matches_the_cpu_backend(tmp_path):
    media = probe_media(MEDIA / "face_moving.mp4")
    out = {}
    for backend in ("cpu", "cuda"):
        (tmp_path / backend).mkdir()
        ctx = _ctx(tmp_path / backend, backend)
        path = tmp_path / f"{backend}.mp4"
        result = RenderStage().process(_request(media, 2.0, 5.0, "9:16", path, True), ctx)
        assert result.frames == 75
        with av.open(str(path)) as c:
            out[backend] = [f.to_ndarray(format="yuv420p") for f in c.decode(c.streams.video[0])]
    worst = min(_psnr(a, b) for a, b in zip(out["cpu"], out["cuda"], strict=True))
    assert worst >= 40.0, f"worst frame PSNR {worst:.1f} dB"
