"""Backend selection and every CUDA fallback, by fault injection (no GPU needed).

Fake modules stand in for CuPy, PyNvVideoCodec, TensorRT and torch and fail the way the real ones
do: ImportError when not installed, OSError when PyNvVideoCodec's import cannot load
libnvidia-encode.so.1, a CUDARuntimeError-like exception from cupy when there is no device or driver,
and an encoder creation error where the GPU has no NVENC (H100/H200).
"""

from __future__ import annotations

import logging
import types
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from engine import backends
from engine.backends import (
    CudaCapabilities,
    GpuDevice,
    nvdec_supports,
    probe_cuda,
    resolve_cuda,
    select_backend,
)
from engine.errors import BackendUnavailable


class CUDARuntimeError(RuntimeError):
    """Shaped like cupy_backends.cuda.api.runtime.CUDARuntimeError."""


def fake_cupy(count: int | Exception = 1, name: bytes = b"NVIDIA H200", cc: tuple[int, int] = (9, 0),
              memory: int = 141 * 2**30) -> types.ModuleType:
    mod = types.ModuleType("cupy")

    def get_device_count() -> int:
        if isinstance(count, Exception):
            raise count
        return count

    runtime = types.SimpleNamespace(
        getDeviceCount=get_device_count,
        getDeviceProperties=lambda i: {"name": name, "major": cc[0], "minor": cc[1], "totalGlobalMem": memory},
    )
    mod.cuda = types.SimpleNamespace(runtime=runtime)  # type: ignore[attr-defined]
    return mod


def fake_nvc(encoder_error: Exception | None = None) -> types.ModuleType:
    mod = types.ModuleType("PyNvVideoCodec")
    mod.SimpleDecoder = object  # type: ignore[attr-defined]
    mod.CreateDecoder = lambda *a, **k: object()  # type: ignore[attr-defined]

    def create_encoder(width: int, height: int, fmt: str, use_cpu: bool, **kw: Any) -> object:
        if encoder_error is not None:
            raise encoder_error
        return object()

    mod.CreateEncoder = create_encoder  # type: ignore[attr-defined]
    return mod


def fake_trt(real: bool = True) -> types.ModuleType:
    mod = types.ModuleType("tensorrt")
    mod.__version__ = "10.13.0"  # type: ignore[attr-defined]
    if real:
        mod.Builder = object  # type: ignore[attr-defined]
    return mod


def fake_torch(cuda: bool = True) -> types.ModuleType:
    mod = types.ModuleType("torch")
    mod.cuda = types.SimpleNamespace(is_available=lambda: cuda)  # type: ignore[attr-defined]
    return mod


MISSING = ImportError  # what `import x` raises for a package that is not installed


def install(monkeypatch: pytest.MonkeyPatch, **modules: types.ModuleType | Exception) -> None:
    """Make backends' imports see ``modules``: a module, or the exception its import raises."""
    table: dict[str, types.ModuleType | Exception] = {
        "cupy": ImportError("No module named 'cupy'"),
        "PyNvVideoCodec": ImportError("No module named 'PyNvVideoCodec'"),
        "tensorrt": ImportError("No module named 'tensorrt'"),
        "torch": ImportError("No module named 'torch'"),
    }
    table.update(modules)

    def fake_import(name: str) -> types.ModuleType:
        entry = table.get(name)
        if entry is None:
            raise ImportError(f"No module named {name!r}")
        if isinstance(entry, Exception):
            raise entry
        return entry

    monkeypatch.setattr(backends, "_import_module", fake_import)


def h200(monkeypatch: pytest.MonkeyPatch, **over: types.ModuleType | Exception) -> None:
    """The GPU test machine: H200 (cc 9.0, NVDEC without NVENC), cupy, PyNvVideoCodec, torch CUDA."""
    parts: dict[str, types.ModuleType | Exception] = {
        "cupy": fake_cupy(), "PyNvVideoCodec": fake_nvc(RuntimeError("NVENC not available")),
        "torch": fake_torch(True),
    }
    parts.update(over)
    install(monkeypatch, **parts)


@pytest.fixture(autouse=True)
def _fresh_probe() -> Any:
    backends.reset_probe_cache()
    yield
    backends.reset_probe_cache()


# -- CPU behaviour unchanged --------------------------------------------------------------------


def test_cpu_is_numpy_and_probes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(name: str) -> types.ModuleType:
        raise AssertionError("cpu must not probe CUDA")

    monkeypatch.setattr(backends, "_import_module", boom)
    b = select_backend("cpu")
    assert b.name == "cpu" and b.xp is np and not b.is_gpu and b.plan is None


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(BackendUnavailable, match="unknown backend 'metal'"):
        select_backend("metal")


def test_this_machine_auto_is_cpu() -> None:
    assert select_backend("auto").name == "cpu"  # the real probe, whatever this machine has


# -- no usable GPU ------------------------------------------------------------------------------


def test_no_cupy_cuda_names_every_missing_part(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch)
    with pytest.raises(BackendUnavailable) as err:
        select_backend("cuda")
    msg = str(err.value)
    assert msg.startswith("cuda backend unavailable: missing CuPy")
    assert "PyNvVideoCodec" in msg and "install clipora[gpu]" in msg


def test_no_cupy_auto_picks_cpu_and_logs_why(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    install(monkeypatch)
    with caplog.at_level(logging.INFO, logger="clipora.backends"):
        b = select_backend("auto")
    assert b.name == "cpu" and b.xp is np
    assert any("backend auto: using cpu" in r.message and "CuPy" in r.message for r in caplog.records)


@pytest.mark.parametrize("failure", [
    CUDARuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected"),
    CUDARuntimeError("cudaErrorInsufficientDriver: CUDA driver version is insufficient for CUDA runtime version"),
    0,
])
def test_cupy_without_a_device(monkeypatch: pytest.MonkeyPatch, failure: Exception | int) -> None:
    h200(monkeypatch, cupy=fake_cupy(count=failure))
    caps = probe_cuda()
    assert caps.cupy.ok and caps.device is None
    assert not caps.nvdec.ok and not caps.nvenc.ok  # no device: nothing on it was probed
    with pytest.raises(BackendUnavailable, match="a CUDA device") as err:
        select_backend("cuda", caps)
    if isinstance(failure, Exception):
        assert "CUDARuntimeError" in str(err.value)
    assert select_backend("auto", caps).name == "cpu"


def test_pynvvideocodec_import_failure_decodes_with_pyav_and_says_why(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    h200(monkeypatch, PyNvVideoCodec=OSError("libnvidia-encode.so.1: cannot open shared object file: "
                                              "No such file or directory"))
    caps = probe_cuda()
    assert caps.device is not None and not caps.pynvvideocodec.ok
    assert caps.missing() == []  # CuPy and a device: the GPU kernels, faces and ASR still run there
    with caplog.at_level(logging.WARNING, logger="clipora.backends"):
        b = select_backend("cuda", caps)
    assert b.name == "cuda" and b.plan is not None and b.plan.decode == "pyav"
    assert any("no NVDEC" in f and "libnvidia-encode.so.1" in f and "PyAV" in f for f in b.plan.fallbacks)
    assert "libnvidia-encode.so.1" in caplog.text  # logged, never silent


def test_nvdec_probe_failure_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    h200(monkeypatch)

    def no_nvdec(nvc: types.ModuleType, device: GpuDevice) -> backends.Part:
        raise RuntimeError("CUDA_ERROR_NO_DEVICE: decoder creation failed")

    caps = probe_cuda(nvdec_probe=no_nvdec)
    assert not caps.nvdec.ok and caps.pynvvideocodec.ok
    plan = resolve_cuda(caps)
    assert plan.decode == "pyav"
    assert any("decoder creation failed" in f for f in plan.fallbacks)


# -- a usable GPU: the per-part plan ------------------------------------------------------------


def test_h200_encodes_on_the_cpu_and_detects_on_torch(monkeypatch: pytest.MonkeyPatch,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    h200(monkeypatch)
    caps = probe_cuda()
    assert caps.device == GpuDevice("NVIDIA H200", (9, 0), 141 * 2**30)
    assert not caps.nvenc.ok and "no NVENC" in caps.nvenc.detail
    assert not caps.tensorrt.ok and caps.torch_cuda.ok
    with caplog.at_level(logging.WARNING, logger="clipora.backends"):
        plan = resolve_cuda(caps)
    assert (plan.decode, plan.detector, plan.encode) == ("nvdec", "torch-cuda", "x264-cpu")
    logged = " ".join(r.message for r in caplog.records)
    assert "no NVENC" in logged and "no TensorRT" in logged  # never silent


def test_nvenc_is_detected_by_creating_an_encoder(monkeypatch: pytest.MonkeyPatch) -> None:
    # an L4 (Ada, cc 8.9): the library's own encoder creation decides
    install(monkeypatch, cupy=fake_cupy(name=b"NVIDIA L4", cc=(8, 9), memory=24 * 2**30),
            PyNvVideoCodec=fake_nvc(), tensorrt=fake_trt(), torch=fake_torch(True))
    plan = resolve_cuda(probe_cuda())
    # NVENC is found and reported, but this build encodes with libx264 from the host copy
    assert (plan.decode, plan.detector, plan.encode) == ("nvdec", "tensorrt", "x264-cpu")
    assert len(plan.fallbacks) == 1 and "NVENC is here" in plan.fallbacks[0]

    install(monkeypatch, cupy=fake_cupy(name=b"NVIDIA L4", cc=(8, 9)),
            PyNvVideoCodec=fake_nvc(RuntimeError("NV_ENC_ERR_NO_ENCODE_DEVICE")), tensorrt=fake_trt())
    caps = probe_cuda()
    assert not caps.nvenc.ok and "NV_ENC_ERR_NO_ENCODE_DEVICE" in caps.nvenc.detail
    assert resolve_cuda(caps).encode == "x264-cpu"


def test_nvenc_probe_is_injectable(monkeypatch: pytest.MonkeyPatch) -> None:
    h200(monkeypatch, tensorrt=fake_trt())
    seen: list[str] = []

    def probe(nvc: types.ModuleType, device: GpuDevice) -> backends.Part:
        seen.append(device.name)
        return backends.Part(True, "fake")

    plan = resolve_cuda(probe_cuda(nvenc_probe=probe))
    assert seen == ["NVIDIA H200"] and plan.encode == "x264-cpu" and plan.detector == "tensorrt"
    assert any("NVENC is here (fake)" in f for f in plan.fallbacks)


def test_tensorrt_stub_or_missing_falls_back_to_torch_then_onnxruntime(monkeypatch: pytest.MonkeyPatch) -> None:
    h200(monkeypatch, tensorrt=fake_trt(real=False))
    caps = probe_cuda()
    assert not caps.tensorrt.ok and "stub" in caps.tensorrt.detail
    assert resolve_cuda(caps).detector == "torch-cuda"

    h200(monkeypatch, tensorrt=OSError("libnvinfer.so.10: cannot open shared object file"), torch=fake_torch(False))
    plan = resolve_cuda(probe_cuda())
    assert plan.detector == "onnxruntime-cpu"
    assert any("libnvinfer" in f and "onnxruntime CPU" in f for f in plan.fallbacks)

    h200(monkeypatch, torch=ImportError("No module named 'torch'"))
    assert resolve_cuda(probe_cuda()).detector == "onnxruntime-cpu"


def test_a_resolved_plan_selects_cuda_with_cupy_as_its_array_module(monkeypatch: pytest.MonkeyPatch,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    h200(monkeypatch)
    with caplog.at_level(logging.INFO, logger="clipora.backends"):
        b = select_backend("cuda")
    assert b.is_gpu and b.xp.__name__ == "cupy" and b.plan is not None
    assert b.plan.describe() == "decode nvdec, detector torch-cuda, encode x264-cpu on NVIDIA H200"
    assert "cuda backend: decode nvdec" in caplog.text
    assert select_backend("auto").name == "cuda"  # auto picks the GPU where it works
    assert backends.cuda_unavailable_reason() is None


def test_the_probe_runs_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    h200(monkeypatch)
    inner: Callable[[str], types.ModuleType] = backends._import_module

    def counting(name: str) -> types.ModuleType:
        calls.append(name)
        return inner(name)

    monkeypatch.setattr(backends, "_import_module", counting)
    for _ in range(3):
        select_backend("auto")
    assert calls.count("cupy") == 1


def test_a_probe_that_raises_does_not_take_selection_down(monkeypatch: pytest.MonkeyPatch) -> None:
    h200(monkeypatch)

    def broken(nvc: types.ModuleType, device: GpuDevice) -> backends.Part:
        raise ValueError("driver returned garbage")

    caps = probe_cuda(nvenc_probe=broken)
    assert not caps.nvenc.ok and "driver returned garbage" in caps.nvenc.detail
    assert resolve_cuda(caps).encode == "x264-cpu"


# -- NVDEC per source ---------------------------------------------------------------------------

HOPPER, AMPERE_GA100, AMPERE_GA10X, ADA, BLACKWELL, TURING = (9, 0), (8, 0), (8, 6), (8, 9), (12, 0), (7, 5)


@pytest.mark.parametrize(("codec", "bits", "cc", "ok"), [
    ("h264", 8, HOPPER, True),
    ("hevc", 8, HOPPER, True),
    ("hevc", 10, HOPPER, True),
    ("hevc", 12, HOPPER, False),     # conservative: not in the table
    ("av1", 8, HOPPER, False),       # Hopper NVDEC has no AV1
    ("av1", 10, HOPPER, False),
    ("av1", 8, AMPERE_GA100, False),
    ("av1", 8, TURING, False),
    ("av1", 8, AMPERE_GA10X, True),
    ("av1", 10, ADA, True),
    ("av1", 8, BLACKWELL, True),
    ("h264", 10, HOPPER, False),     # High10 is Blackwell only
    ("h264", 10, ADA, False),
    ("h264", 10, BLACKWELL, True),
    ("vp9", 8, HOPPER, True),
    ("vp9", 10, HOPPER, False),      # conservative: not in the table
    ("prores", 10, BLACKWELL, False),
    ("hevc", 16, BLACKWELL, False),
])
def test_nvdec_supports(codec: str, bits: int, cc: tuple[int, int], ok: bool) -> None:
    supported, why = nvdec_supports(codec, bits, cc)
    assert supported is ok, why
    assert why


def test_non_420_chroma_takes_pyav() -> None:
    ok, why = nvdec_supports("hevc", 8, ADA, chroma="444")
    assert not ok and "4:2:0" in why


def _plan(monkeypatch: pytest.MonkeyPatch, cc: tuple[int, int]) -> backends.CudaPlan:
    install(monkeypatch, cupy=fake_cupy(cc=cc), PyNvVideoCodec=fake_nvc(RuntimeError("no NVENC")),
            torch=fake_torch(True))
    caps: CudaCapabilities = probe_cuda()
    return resolve_cuda(caps)


def test_av1_on_hopper_decodes_with_pyav_and_says_so(monkeypatch: pytest.MonkeyPatch,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    plan = _plan(monkeypatch, HOPPER)
    with caplog.at_level(logging.WARNING, logger="clipora.backends"):
        assert plan.fallback_for_source("av1", 8) == "pyav"
    assert any("PyAV" in r.message and "no AV1" in r.message for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="clipora.backends"):
        assert plan.fallback_for_source("h264", 8) == "nvdec"
    assert not caplog.records


def test_ten_bit_sources(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    plan = _plan(monkeypatch, HOPPER)
    assert plan.fallback_for_source("hevc", 10) == "nvdec"
    with caplog.at_level(logging.WARNING, logger="clipora.backends"):
        assert plan.fallback_for_source("h264", 10) == "pyav"
    assert any("Blackwell" in r.message for r in caplog.records)
    assert _plan(monkeypatch, BLACKWELL).fallback_for_source("h264", 10) == "nvdec"


def test_without_a_usable_gpu_the_detector_libraries_are_not_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    install(monkeypatch)
    inner: Callable[[str], types.ModuleType] = backends._import_module

    def counting(name: str) -> types.ModuleType:
        calls.append(name)
        return inner(name)

    monkeypatch.setattr(backends, "_import_module", counting)
    caps = probe_cuda()
    assert calls == ["cupy", "PyNvVideoCodec"]  # no torch import on a CPU machine
    assert not caps.tensorrt.ok and "not probed" in caps.torch_cuda.detail


def test_the_cuda_images_tensorrt_bindings_count_as_tensorrt(monkeypatch: pytest.MonkeyPatch) -> None:
    # Dockerfile.cuda installs tensorrt-cu12-bindings + -libs: the module is `tensorrt_bindings`
    h200(monkeypatch, tensorrt_bindings=fake_trt())
    caps = probe_cuda()
    assert caps.tensorrt.ok and resolve_cuda(caps).detector == "tensorrt"
    h200(monkeypatch)  # neither: both reasons named
    caps = probe_cuda()
    assert not caps.tensorrt.ok and "tensorrt_bindings" in caps.tensorrt.detail


def test_a_pynvvideocodec_driver_check_failure_is_a_fallback_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    # PyNvVideoCodec's __init__ wraps a failed driver check in RuntimeError (a container started
    # without the `video` driver capability has no libnvidia-encode)
    h200(monkeypatch, PyNvVideoCodec=RuntimeError("Failed to load libnvidia-encode.so.1 ... troubleshooting"))
    caps = probe_cuda()
    assert not caps.pynvvideocodec.ok and "RuntimeError" in caps.pynvvideocodec.detail
    assert select_backend("cuda", caps).plan.decode == "pyav"
