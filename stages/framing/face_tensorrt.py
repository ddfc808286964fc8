"""face_tensorrt: the TensorRT face runner and the helpers that build and cache its plan.

:func:`detection_profile` is the optimisation profile for detection inputs,
:func:`build_tensorrt_plan` builds a serialized engine from the CenterFace ONNX (TensorRT 10 API),
:func:`tensorrt_plan` keeps it in :mod:`engine.trt_cache`, and :class:`TensorRTRunner` runs it.
tensorrt and cupy (the CUDA backend's array module, for the device buffers and the stream) are
imported only when a runner is built; torch is not needed.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.errors import PermanentError
from stages.framing.face_runners import DETECTION_OUTPUTS, INPUT_NAME, Outputs

if TYPE_CHECKING:  # pragma: no cover - typing only
    from engine.backends import GpuDevice
    from engine.trt_cache import EngineKey

log = logging.getLogger("clipora.faces")


#: where NVIDIA's Python API is found: ``tensorrt`` (the tensorrt / tensorrt-cu12 front end, which
#: re-exports tensorrt_bindings), else ``tensorrt_bindings`` itself (tensorrt-cu12-bindings installed
#: alone, with tensorrt-cu12-libs, as Dockerfile.cuda does)
TENSORRT_MODULES = ("tensorrt", "tensorrt_bindings")


def _import_tensorrt() -> Any:
    errors: list[str] = []
    for name in TENSORRT_MODULES:
        try:
            trt = importlib.import_module(name)
        except (ImportError, OSError) as exc:  # OSError: libnvinfer not loadable
            errors.append(f"{name}: {type(exc).__name__}: {exc}")
            continue
        if hasattr(trt, "Builder"):
            return trt
        errors.append(f"{name} imports but has no Builder (the PyPI stub, not NVIDIA's wheel)")
    raise ImportError(f"the TensorRT face runner needs NVIDIA's tensorrt wheel: {'; '.join(errors)}")


def _import_cupy() -> Any:
    """CuPy, the CUDA backend's array module (engine.backends): the runner's buffers and stream."""
    try:
        import cupy
    except (ImportError, OSError) as exc:  # OSError: a CUDA library it loads is missing
        raise ImportError(f"the TensorRT face runner needs CuPy (cupy-cuda12x) for its device buffers: "
                          f"{type(exc).__name__}: {exc}") from exc
    return cupy


def detection_profile(
    input_name: str = INPUT_NAME, max_batch: int = 8, long_side: int = 640, opt_hw: tuple[int, int] = (352, 640)
) -> Any:
    """The optimisation profile (engine.trt_cache.ShapeProfile) for detection inputs: batch 1 to
    ``max_batch``, height and width from 32 up to the largest side
    :func:`face_detector.detection_size` gives for ``long_side`` (either orientation), tuned for
    ``opt_hw`` (16:9 landscape at 640).
    """
    from engine.trt_cache import ShapeProfile

    side = max(32, int(round(long_side / 32)) * 32)
    oh, ow = min(opt_hw[0], side), min(opt_hw[1], side)
    return ShapeProfile(input_name, (1, 3, 32, 32), (max_batch, 3, oh, ow), (max_batch, 3, side, side))


def build_tensorrt_plan(trt: Any, onnx_path: Path, key: EngineKey, workspace_bytes: int = 1 << 30) -> bytes:
    """Build a serialized engine for ``key`` (its profiles and precision) from the ONNX file.

    TensorRT 10 API: Builder -> network (explicit batch is the only mode) -> OnnxParser ->
    builder config with one optimisation profile per ShapeProfile -> build_serialized_network.
    ``fp16`` sets BuilderFlag.FP16, which TensorRT 11 removed: there a PermanentError (an FP16 ONNX
    would be needed, see engine.trt_cache).
    """
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(onnx_path).read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise PermanentError(f"TensorRT could not parse {Path(onnx_path).name}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
    if key.precision == "fp16":
        if not hasattr(trt.BuilderFlag, "FP16"):
            raise PermanentError(f"TensorRT {trt.__version__} has no FP16 builder flag (needs an FP16 ONNX)")
        config.set_flag(trt.BuilderFlag.FP16)
    for shape in key.profiles:
        profile = builder.create_optimization_profile()
        profile.set_shape(shape.input_name, shape.min, shape.opt, shape.max)
        config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError("TensorRT build_serialized_network failed (see the TensorRT log above)")
    return bytes(serialized)


def tensorrt_plan(
    trt: Any,
    onnx_path: Path,
    cache_dir: Path,
    gpu_name: str,
    compute_capability: tuple[int, int],
    profile: Any,
    fp16: bool = False,
    builder: Callable[[Any, Path, EngineKey], bytes] = build_tensorrt_plan,
) -> tuple[bytes, EngineKey, Any]:
    """(plan bytes, its key, the EngineCache): the cached plan for this TensorRT/GPU/ONNX/profile/
    precision, or a fresh build stored in the cache."""
    from engine.trt_cache import EngineCache, engine_key

    key = engine_key(Path(onnx_path), tensorrt_version=str(trt.__version__), gpu_name=gpu_name,
                     compute_capability=compute_capability, profiles=[profile],
                     precision="fp16" if fp16 else "fp32")
    cache = EngineCache(Path(cache_dir))
    plan = cache.get_or_build(key, lambda k: builder(trt, Path(onnx_path), k))
    return plan, key, cache


class TensorRTRunner:
    """A TensorRT engine of the CenterFace ONNX, its plan cached in ``cache_dir/tensorrt``.

    Written against the TensorRT 10 Python API (Builder, OnnxParser, one dynamic optimisation
    profile for ``input.1``, build_serialized_network, Runtime.deserialize_cuda_engine,
    set_input_shape / set_tensor_address / execute_async_v3), with CuPy, the CUDA backend's array
    module, on the device side: the I/O buffers are cupy arrays (``arr.data.ptr`` is each tensor
    address), the engine runs on the runner's own ``cupy.cuda.Stream`` (``stream.ptr``), the
    float32 NCHW blob is copied host -> device on that stream and the three outputs device -> host
    after it is synchronized, as float32 NumPy. torch is not used, so this works with the CPU torch
    of the CUDA image (Dockerfile.cuda).

    TensorRT is not installed on any machine this was developed or tested on, so this class has
    NOT been run with TensorRT or on a GPU: only the plan cache wiring and the buffer/stream calls
    are tested, with stand-in ``tensorrt`` and ``cupy`` modules. Building it without tensorrt or
    without cupy raises ImportError (without a CUDA device, RuntimeError), and
    :func:`stages.framing.face_select.make_face_detector` then falls back to the next runner (torch
    CUDA, then onnxruntime CPU) with a warning.

    Batches larger than the profile's max batch are run in chunks; a blob outside the profile's
    height/width range is a RuntimeError.
    """

    def __init__(
        self,
        model_path: Path,
        cache_dir: Path,
        device: GpuDevice | None = None,
        fp16: bool = False,
        max_batch: int = 8,
        long_side: int = 640,
        output_names: Sequence[str] = DETECTION_OUTPUTS,
    ) -> None:
        trt = _import_tensorrt()
        cp = _import_cupy()
        self._trt, self._cp = trt, cp
        if device is None:
            from engine.backends import probe_device

            device, detail = probe_device(cp)
            if device is None:
                raise RuntimeError(f"the TensorRT face runner needs a CUDA device: {detail}")
        gpu_name, cc = device.name, (int(device.compute_capability[0]), int(device.compute_capability[1]))
        self.profile = detection_profile(INPUT_NAME, max_batch, long_side)
        plan, key, cache = tensorrt_plan(trt, model_path, cache_dir, gpu_name, cc, self.profile, fp16)
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        engine = self._runtime.deserialize_cuda_engine(plan)
        if engine is None:  # right key, but this runtime refuses it: rebuild once
            log.warning("cached TensorRT plan for %s does not deserialize; rebuilding", gpu_name)
            cache.invalidate(key)
            plan, key, cache = tensorrt_plan(trt, model_path, cache_dir, gpu_name, cc, self.profile, fp16)
            engine = self._runtime.deserialize_cuda_engine(plan)
            if engine is None:
                raise RuntimeError("TensorRT could not deserialize the engine it just built")
        self.engine = engine
        self.context = engine.create_execution_context()
        if self.context is None:
            raise RuntimeError("TensorRT could not create an execution context")
        self.output_names = tuple(output_names)
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        # every output needs a buffer, wanted or not (the landmarks are computed regardless)
        self._all_outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        missing = [n for n in self.output_names if n not in self._all_outputs]
        if missing:
            raise PermanentError(f"TensorRT engine has no output(s) {missing}")
        self._dtypes = {n: self._numpy_dtype(engine.get_tensor_dtype(n)) for n in names}
        self._stream = cp.cuda.Stream(non_blocking=True)
        self.max_batch = max_batch
        self.name = "tensorrt" + ("-fp16" if fp16 else "")

    def _numpy_dtype(self, dtype: Any) -> np.dtype[Any]:
        """The dtype (NumPy's, which cupy takes) of a TensorRT tensor type."""
        trt = self._trt
        table: dict[Any, np.dtype[Any]] = {trt.float32: np.dtype(np.float32), trt.float16: np.dtype(np.float16)}
        if dtype not in table:
            raise PermanentError(f"TensorRT engine tensor type {dtype} is not supported")
        return table[dtype]

    def run(self, blob: np.ndarray) -> Outputs:
        parts = [self._run_chunk(blob[i : i + self.max_batch]) for i in range(0, len(blob), self.max_batch)]
        heatmap, scale, offset = (np.concatenate([p[k] for p in parts]) for k in range(3))
        return heatmap, scale, offset

    def _run_chunk(self, chunk: np.ndarray) -> Outputs:
        cp, stream = self._cp, self._stream
        _, _, h, w = chunk.shape
        lo, hi = self.profile.min, self.profile.max
        if not (lo[2] <= h <= hi[2] and lo[3] <= w <= hi[3]):
            raise RuntimeError(f"detection input {w}x{h} is outside the TensorRT profile "
                               f"{lo[3]}x{lo[2]} to {hi[3]}x{hi[2]}")
        host = np.ascontiguousarray(chunk, dtype=self._dtypes[INPUT_NAME])
        with stream:  # the copies, allocations and the engine all on this stream
            x = cp.asarray(host)  # host -> device, on the current stream
            if not self.context.set_input_shape(INPUT_NAME, tuple(x.shape)):
                raise RuntimeError(f"TensorRT refused the input shape {tuple(x.shape)}")
            self.context.set_tensor_address(INPUT_NAME, x.data.ptr)
            outs: dict[str, Any] = {}
            for name in self._all_outputs:
                shape = tuple(int(d) for d in self.context.get_tensor_shape(name))
                outs[name] = cp.empty(shape, dtype=self._dtypes[name])
                self.context.set_tensor_address(name, outs[name].data.ptr)
            if not self.context.execute_async_v3(stream.ptr):
                raise RuntimeError("TensorRT execute_async_v3 failed")
            stream.synchronize()  # x, outs and host stay alive until here
            heatmap, scale, offset = (np.asarray(outs[n].get(), dtype=np.float32) for n in self.output_names)
        return heatmap, scale, offset
