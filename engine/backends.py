"""Compute backend selection (DESIGN.md section 3).

The CPU backend (NumPy/OpenCV kernels, PyAV decode/encode, onnxruntime) is the default and
is what CI tests. The CUDA backend keeps frames on the GPU: NVDEC decode (PyNvVideoCodec),
face detection on TensorRT or torch CUDA, CuPy kernels and NVENC encode.

Every part of the CUDA path is probed separately (:func:`probe_cuda`) and resolved into a
:class:`CudaPlan` that says, per part, which path is taken and why, never silently:

- decode: ``nvdec``; per source ``pyav`` where NVDEC cannot take the codec/bit depth on this GPU
  (AV1 on Hopper, 10-bit H.264 before Blackwell, ...: :func:`nvdec_supports`); ``pyav`` for every
  source where PyNvVideoCodec is missing or its NVDEC does not answer (the frames are uploaded and
  the GPU kernels still paint them);
- detector: ``tensorrt``, else ``torch-cuda``, else ``onnxruntime-cpu``;
- encode: ``x264-cpu`` from one host copy per frame (H100/H200 have NVDEC engines but no NVENC; where
  the probe finds NVENC the plan says so, but this build has no NVENC sink yet).

The minimum for ``cuda`` is CuPy with a usable device. ``--backend cuda`` without it raises
BackendUnavailable naming every missing part; ``auto`` then picks the CPU and logs why.

What each part runs on the CUDA backend: the render (:mod:`stages.output.render_gpu`: NVDEC or
PyAV + upload, the array-module kernels, one host copy per frame, libx264), faces
(:mod:`stages.framing.detectors`: TensorRT, torch CUDA or onnxruntime CPU), transcription
(faster-whisper float16 on CUDA where CTranslate2 has it). NVENC is probed and reported but the
encode is libx264 from the host copy on every GPU in this build (no NVENC sink yet).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

from engine.errors import BackendUnavailable

log = logging.getLogger("clipora.backends")

BACKEND_NAMES = ("auto", "cpu", "cuda")

#: the import hook the probes use; tests replace it to fake modules that fail to import
_import_module: Callable[[str], ModuleType] = importlib.import_module


@dataclass(frozen=True)
class Backend:
    name: str
    xp: ModuleType  # the array module frames live in (numpy or cupy)
    plan: CudaPlan | None = field(default=None, compare=False)

    @property
    def is_gpu(self) -> bool:
        return self.name == "cuda"


# -- the probe ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Part:
    """One probed part: usable or not, and a sentence saying what was found."""

    ok: bool
    detail: str


@dataclass(frozen=True)
class GpuDevice:
    name: str
    compute_capability: tuple[int, int]
    total_memory: int  # bytes

    @property
    def has_nvenc(self) -> bool | None:
        """False where the chip is known to have no NVENC (H100/H200, A100), else None (ask it)."""
        if self.compute_capability in {(9, 0), (8, 0)}:
            return False
        return None


@dataclass(frozen=True)
class CudaCapabilities:
    cupy: Part
    device: GpuDevice | None
    device_detail: str
    pynvvideocodec: Part
    nvdec: Part
    nvenc: Part
    tensorrt: Part
    torch_cuda: Part
    #: the CuPy module the probe imported (the cuda backend's array module)
    xp: ModuleType | None = field(default=None, compare=False, repr=False)

    def missing(self) -> list[str]:
        """The parts of the minimum CUDA set (CuPy + a device) that are not here, and with them, since
        nothing of the GPU path runs then, what else is missing."""
        out: list[str] = []
        if not self.cupy.ok:
            out.append(f"CuPy ({self.cupy.detail})")
        elif self.device is None:
            out.append(f"a CUDA device ({self.device_detail})")
        if out and not self.pynvvideocodec.ok:
            out.append(f"PyNvVideoCodec ({self.pynvvideocodec.detail})")
        return out


def _import(name: str) -> tuple[ModuleType | None, str]:
    """Import ``name``; (module, "") or (None, why). OSError is what a missing .so raises; PyNvVideoCodec's
    ``__init__`` turns a failed driver check (no libnvidia-encode, a driver too old) into RuntimeError."""
    try:
        return _import_module(name), ""
    except (ImportError, OSError, RuntimeError) as exc:
        return None, f"{name} does not import: {type(exc).__name__}: {exc}"


def probe_device(cupy: ModuleType) -> tuple[GpuDevice | None, str]:
    # cupy.cuda.runtime.getDeviceCount / getDeviceProperties(i) -> dict with 'name' (bytes),
    # 'major', 'minor', 'totalGlobalMem' (the cudaDeviceProp fields, CuPy's runtime API).
    try:
        count = int(cupy.cuda.runtime.getDeviceCount())
    except Exception as exc:  # CUDARuntimeError: cudaErrorNoDevice, cudaErrorInsufficientDriver, ...
        return None, f"CUDA runtime not usable: {type(exc).__name__}: {exc}"
    if count < 1:
        return None, "no CUDA device found"
    try:
        props = cupy.cuda.runtime.getDeviceProperties(0)
    except Exception as exc:
        return None, f"device 0 does not answer: {type(exc).__name__}: {exc}"
    name = props.get("name", b"")
    name = name.decode(errors="replace") if isinstance(name, bytes) else str(name)
    device = GpuDevice(name=name.strip("\x00 "),
                       compute_capability=(int(props["major"]), int(props["minor"])),
                       total_memory=int(props.get("totalGlobalMem", 0)))
    return device, f"{count} device(s); device 0: {device.name}, compute capability " \
                   f"{device.compute_capability[0]}.{device.compute_capability[1]}, " \
                   f"{device.total_memory / 2**30:.0f} GiB"


def _default_nvdec_probe(nvc: ModuleType, device: GpuDevice) -> Part:
    # PyNvVideoCodec decodes through SimpleDecoder / ThreadedDecoder or the low-level
    # CreateDemuxer + CreateDecoder; a decoder needs a stream, so the per-source check is the
    # decode stage's (and nvdec_supports below). Here: the decode API is present.
    names = [n for n in ("SimpleDecoder", "CreateDecoder") if hasattr(nvc, n)]
    if not names:
        return Part(False, "PyNvVideoCodec has neither SimpleDecoder nor CreateDecoder")
    return Part(True, f"PyNvVideoCodec {', '.join(names)} on {device.name}")


def _default_nvenc_probe(nvc: ModuleType, device: GpuDevice) -> Part:
    # CreateEncoder(width, height, format, use_cpu_buffer, codec=...) (PyNvVideoCodec API
    # reference, "Encoder"); on a GPU without NVENC (H100/H200) creating one fails.
    if device.has_nvenc is False:
        return Part(False, f"{device.name} (compute capability 9.0/8.0 datacenter part) has no NVENC")
    try:
        encoder = nvc.CreateEncoder(256, 256, "NV12", True, codec="h264")
    except Exception as exc:
        return Part(False, f"CreateEncoder failed: {type(exc).__name__}: {exc}")
    del encoder
    return Part(True, f"NVENC h264 encoder created on {device.name}")


def probe_cuda(
    *,
    nvdec_probe: Callable[[ModuleType, GpuDevice], Part] = _default_nvdec_probe,
    nvenc_probe: Callable[[ModuleType, GpuDevice], Part] = _default_nvenc_probe,
) -> CudaCapabilities:
    """Probe every part of the CUDA path separately (no part's failure hides another's)."""
    cupy, why = _import("cupy")
    cupy_part = Part(cupy is not None, why or "cupy imports")
    device, device_detail = (None, "CuPy is missing") if cupy is None else probe_device(cupy)

    # Its import loads libnvidia-encode.so.1 even to decode: without it, OSError or RuntimeError.
    nvc, why = _import("PyNvVideoCodec")
    nvc_part = Part(nvc is not None, why or "PyNvVideoCodec imports")
    if nvc is None or device is None:
        cause = "PyNvVideoCodec is missing" if nvc is None else "no CUDA device"
        nvdec = Part(False, cause)
        nvenc = Part(False, cause)
    else:
        nvdec = _safe_probe(nvdec_probe, nvc, device)
        nvenc = _safe_probe(nvenc_probe, nvc, device)

    if device is None:
        # the detector only matters on a usable GPU; importing torch here would cost every
        # CPU process seconds for nothing
        skipped = Part(False, "not probed: no usable GPU")
        return CudaCapabilities(cupy_part, device, device_detail, nvc_part, nvdec, nvenc, skipped, skipped, cupy)

    trt, why = _import("tensorrt")
    if trt is None:
        # NVIDIA's tensorrt-cu12-bindings wheel alone installs `tensorrt_bindings` (the `tensorrt`
        # front end only re-exports it): the CUDA image installs the bindings and libs
        trt, why2 = _import("tensorrt_bindings")
        why = "" if trt is not None else f"{why}; {why2}"
    if trt is not None and not hasattr(trt, "Builder"):  # the PyPI stub sdist, not the real wheel
        trt, why = None, "tensorrt imports but has no Builder (the PyPI stub, not NVIDIA's wheel)"
    trt_part = Part(trt is not None,
                    why or f"TensorRT {getattr(trt, '__version__', '?')}")

    torch_part = _probe_torch_cuda()
    return CudaCapabilities(cupy_part, device, device_detail, nvc_part, nvdec, nvenc, trt_part, torch_part, cupy)


def _safe_probe(probe: Callable[[ModuleType, GpuDevice], Part], nvc: ModuleType, device: GpuDevice) -> Part:
    try:
        return probe(nvc, device)
    except Exception as exc:  # a probe must never take the selection down with it
        return Part(False, f"probe failed: {type(exc).__name__}: {exc}")


def _probe_torch_cuda() -> Part:
    torch, why = _import("torch")
    if torch is None:
        return Part(False, why)
    try:
        ok = bool(torch.cuda.is_available())
    except Exception as exc:
        return Part(False, f"torch.cuda not usable: {type(exc).__name__}: {exc}")
    return Part(ok, "torch CUDA available" if ok else "torch has no CUDA device (CPU build or no driver)")


# -- NVDEC per source -------------------------------------------------------------------------

# What NVDEC decodes, by GPU generation, from NVIDIA's "NVDEC Application Note", table "NVDEC
# Hardware Capabilities" (Video Codec SDK 13.0,
# https://docs.nvidia.com/video-technologies/video-codec-sdk/13.0/nvdec-application-note/):
#   - H.264 Baseline/Main/High (8-bit 4:2:0) on every generation; High10/High422 only on Blackwell;
#   - HEVC Main and Main 10 from Pascal (select 2nd-gen Maxwell parts); HEVC 4:2:2 only Blackwell;
#   - VP9 profile 0 (8-bit) from Pascal; VP8, MPEG-2, MPEG-4, VC-1 8-bit;
#   - AV1 Main profile (8/10-bit 4:2:0) only on GA10x (Ampere except GA100), Ada and Blackwell:
#     not on Turing, GA100 (8.0) or Hopper (9.0).
# Conservative where the table is not explicit (VP9 above 8 bits, anything above 10 bits): PyAV
# then, which only costs speed; a decoder that still refuses a stream is the decode stage's fallback.
# The kernels work on NV12/P016 4:2:0 only, so other chroma layouts also take PyAV.
_NVDEC_8BIT = {"h264", "hevc", "vp9", "vp8", "mpeg2video", "mpeg4", "vc1", "av1"}


def _is_blackwell(cc: tuple[int, int]) -> bool:
    return cc[0] >= 10


def _has_av1(cc: tuple[int, int]) -> bool:
    # GA10x: 8.6/8.7; Ada: 8.9; Blackwell: 10.x/12.x. Not 7.x, 8.0 (GA100), 9.0 (Hopper).
    return cc in {(8, 6), (8, 7), (8, 9)} or _is_blackwell(cc)


def nvdec_supports(codec: str, bit_depth: int, cc: tuple[int, int], chroma: str = "420") -> tuple[bool, str]:
    """Whether NVDEC on a GPU of compute capability ``cc`` decodes this stream, and why not."""
    codec = codec.lower()
    ccs = f"{cc[0]}.{cc[1]}"
    if chroma != "420":
        return False, f"chroma {chroma} is not 4:2:0 (the GPU kernels take 4:2:0 NV12/P016 only)"
    if codec not in _NVDEC_8BIT:
        return False, f"NVDEC has no {codec} decoder"
    if codec == "av1" and not _has_av1(cc):
        return False, f"NVDEC on compute capability {ccs} has no AV1 (Turing/GA100/Hopper)"
    if codec in {"hevc", "vp9"} and cc[0] < 6:
        return False, f"NVDEC on compute capability {ccs} (before Pascal) has no {codec}"
    if bit_depth <= 8:
        return True, f"NVDEC decodes 8-bit {codec}"
    if bit_depth > 10:  # 12-bit HEVC/VP9 is not in the table above: conservative
        return False, f"{bit_depth}-bit {codec} is not listed as NVDEC-decodable"
    if codec == "h264" and not _is_blackwell(cc):
        return False, f"10-bit H.264 (High10) decodes on Blackwell only, not compute capability {ccs}"
    if codec in {"hevc", "av1"} or (codec == "h264" and _is_blackwell(cc)):
        return True, f"NVDEC decodes {bit_depth}-bit {codec}"
    return False, f"{bit_depth}-bit {codec} is not listed as NVDEC-decodable"


# -- the plan ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CudaPlan:
    """Which path each part takes on this machine, and the fallbacks taken (logged)."""

    device: GpuDevice
    decode: str  # "nvdec" (per source, pyav where nvdec_supports says no)
    detector: str  # "tensorrt" | "torch-cuda" | "onnxruntime-cpu"
    encode: str  # "x264-cpu" (an "nvenc" sink is not part of this build; the probe still reports NVENC)
    fallbacks: tuple[str, ...] = ()

    def fallback_for_source(self, codec: str, bit_depth: int, chroma: str = "420") -> str:
        """``nvdec`` or ``pyav`` for one source; a fallback is logged with its reason."""
        ok, why = nvdec_supports(codec, bit_depth, self.device.compute_capability, chroma)
        if ok:
            return "nvdec"
        log.warning("decode falls back to PyAV for this source (GPU kernels still used): %s", why)
        return "pyav"

    def describe(self) -> str:
        return f"decode {self.decode}, detector {self.detector}, encode {self.encode} on {self.device.name}"


def resolve_cuda(caps: CudaCapabilities) -> CudaPlan:
    """The plan for ``caps``, or BackendUnavailable naming every missing part of the minimum."""
    missing = caps.missing()
    if missing:
        raise BackendUnavailable(
            "cuda backend unavailable: missing " + "; ".join(missing) + " (install clipora[gpu] "
            "on a machine with an NVIDIA GPU and driver, or use --backend cpu)")
    assert caps.device is not None
    fallbacks: list[str] = []
    if caps.nvdec.ok:
        decode = "nvdec"
    else:
        decode = "pyav"
        why = caps.pynvvideocodec.detail if not caps.pynvvideocodec.ok else caps.nvdec.detail
        fallbacks.append(f"no NVDEC ({why}): every source decoded by PyAV, frames uploaded to the GPU")
    if caps.tensorrt.ok:
        detector = "tensorrt"
    elif caps.torch_cuda.ok:
        detector = "torch-cuda"
        fallbacks.append(f"no TensorRT ({caps.tensorrt.detail}): faces on torch CUDA")
    else:
        detector = "onnxruntime-cpu"
        fallbacks.append(f"no TensorRT ({caps.tensorrt.detail}) and no torch CUDA "
                         f"({caps.torch_cuda.detail}): faces on onnxruntime CPU")
    # the render has no NVENC sink yet: every GPU encodes with libx264 from one host copy per frame
    encode = "x264-cpu"
    if caps.nvenc.ok:
        fallbacks.append(f"NVENC is here ({caps.nvenc.detail}) but this build has no NVENC encoder: frames "
                         "copied to the host once, libx264 encodes")
    else:
        fallbacks.append(f"no NVENC ({caps.nvenc.detail}): frames copied to the host once, libx264 encodes")
    plan = CudaPlan(caps.device, decode, detector, encode, tuple(fallbacks))
    for note in plan.fallbacks:
        _log_once(logging.WARNING, "cuda fallback: %s", note)
    return plan


# -- selection ----------------------------------------------------------------------------------

_probed: CudaCapabilities | None = None
_logged: set[str] = set()


def _cached_probe() -> CudaCapabilities:
    """The probe runs once per process (it imports CUDA libraries and opens an encoder)."""
    global _probed
    if _probed is None:
        _probed = probe_cuda()
    return _probed


def reset_probe_cache() -> None:
    global _probed
    _probed = None
    _logged.clear()


def _log_once(level: int, msg: str, *args: Any) -> None:
    text = msg % args
    if text not in _logged:
        _logged.add(text)
        log.log(level, text)


def cuda_unavailable_reason(caps: CudaCapabilities | None = None) -> str | None:
    """Why the CUDA backend cannot run here, or None when it can."""
    caps = _cached_probe() if caps is None else caps
    try:
        plan = resolve_cuda(caps)
    except BackendUnavailable as exc:
        return exc.message.removeprefix("cuda backend unavailable: ")
    _log_once(logging.INFO, "cuda backend: %s", plan.describe())
    return None


def select_backend(name: str, caps: CudaCapabilities | None = None) -> Backend:
    """Resolve ``auto|cpu|cuda`` to a concrete backend, or raise BackendUnavailable."""
    if name not in BACKEND_NAMES:
        raise BackendUnavailable(
            f"unknown backend '{name}', expected one of: {', '.join(BACKEND_NAMES)}"
        )
    if name == "cpu":
        return Backend("cpu", np)
    reason = cuda_unavailable_reason(caps)
    if reason is None:
        caps = caps or _cached_probe()
        assert caps.xp is not None
        return Backend("cuda", caps.xp, resolve_cuda(caps))
    if name == "cuda":
        raise BackendUnavailable(f"cuda backend unavailable: {reason}")
    _log_once(logging.INFO, "backend auto: using cpu (%s)", reason)
    return Backend("cpu", np)
