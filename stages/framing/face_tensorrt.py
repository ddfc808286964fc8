"""face_tensorrt: the TensorRT face runner and the helpers that build and cache its plan.

:func:`detection_profile` is the optimisation profile for detection inputs,
:func:`build_tensorrt_plan` builds a serialized engine from the CenterFace ONNX (TensorRT 10 API),
:func:`tensorrt_plan` keeps it in :mod:`engine.trt_cache`, and :class:`TensorRTRunner` runs it.
tensorrt (and torch, for the CUDA buffers) are imported only when a runner is built.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.errors import PermanentError
from stages.framing.face_runners import DETECTION_OUTPUTS, INPUT_NAME, Outputs
from stages.framing.onnx_torch import _import_torch

if TYPE_CHECKING:  # pragma: no cover - typing only
    from engine.backends import GpuDevice
    from engine.trt_cache import EngineKey

log = logging.getLogger("clipora.faces")


def _import_tensorrt() -> Any:
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise ImportError(f"the TensorRT face runner needs NVIDIA's tensorrt wheel: {exc}") from exc
    if not hasattr(trt, "Builder"):
        raise ImportError("tensorrt imports but has no Builder (the PyPI stub, not NVIDIA's wheel)")
    return trt


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
    set_input_shape / set_tensor_address / execute_async_v3 on torch's current CUDA stream, with
    torch CUDA tensors as the I/O buffers). TensorRT is not installed on any machine this was
    developed or tested on, so this class has NOT been run: only the plan cache wiring is tested
    (with a fake ``tensorrt`` module). Building it without tensorrt raises ImportError, and
    :func:`stages.framing.face_select.make_face_detector` then falls back to the torch runner.

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
        torch = _import_torch()
        if not torch.cuda.is_available():
            raise RuntimeError("the TensorRT face runner needs torch with CUDA for its buffers")
        self._trt, self._torch = trt, torch
        if device is not None:
            gpu_name, cc = device.name, device.compute_capability
        else:
            gpu_name, cc = torch.cuda.get_device_name(0), tuple(torch.cuda.get_device_capability(0))
        self.profile = detection_profile(INPUT_NAME, max_batch, long_side)
        plan, key, cache = tensorrt_plan(trt, model_path, cache_dir, gpu_name, (int(cc[0]), int(cc[1])),
                                         self.profile, fp16)
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        engine = self._runtime.deserialize_cuda_engine(plan)
        if engine is None:  # right key, but this runtime refuses it: rebuild once
            log.warning("cached TensorRT plan for %s does not deserialize; rebuilding", gpu_name)
            cache.invalidate(key)
            plan, key, cache = tensorrt_plan(trt, model_path, cache_dir, gpu_name, (int(cc[0]), int(cc[1])),
                                             self.profile, fp16)
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
        self._dtypes = {n: self._torch_dtype(engine.get_tensor_dtype(n)) for n in names}
        self.max_batch = max_batch
        self.name = "tensorrt" + ("-fp16" if fp16 else "")

    def _torch_dtype(self, dtype: Any) -> Any:
        trt, torch = self._trt, self._torch
        table = {trt.float32: torch.float32, trt.float16: torch.float16}
        if dtype not in table:
            raise PermanentError(f"TensorRT engine tensor type {dtype} is not supported")
        return table[dtype]

    def run(self, blob: np.ndarray) -> Outputs:
        parts = [self._run_chunk(blob[i : i + self.max_batch]) for i in range(0, len(blob), self.max_batch)]
        heatmap, scale, offset = (np.concatenate([p[k] for p in parts]) for k in range(3))
        return heatmap, scale, offset

    def _run_chunk(self, chunk: np.ndarray) -> Outputs:
        torch = self._torch
        _, _, h, w = chunk.shape
        lo, hi = self.profile.min, self.profile.max
        if not (lo[2] <= h <= hi[2] and lo[3] <= w <= hi[3]):
            raise RuntimeError(f"detection input {w}x{h} is outside the TensorRT profile "
                               f"{lo[3]}x{lo[2]} to {hi[3]}x{hi[2]}")
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(chunk)).to("cuda", self._dtypes[INPUT_NAME])
            if not self.context.set_input_shape(INPUT_NAME, tuple(x.shape)):
                raise RuntimeError(f"TensorRT refused the input shape {tuple(x.shape)}")
            self.context.set_tensor_address(INPUT_NAME, x.data_ptr())
            outs: dict[str, Any] = {}
            for name in self._all_outputs:
                shape = tuple(self.context.get_tensor_shape(name))
                outs[name] = torch.empty(shape, dtype=self._dtypes[name], device="cuda")
                self.context.set_tensor_address(name, outs[name].data_ptr())
            stream = torch.cuda.current_stream()
            if not self.context.execute_async_v3(stream.cuda_stream):
                raise RuntimeError("TensorRT execute_async_v3 failed")
            stream.synchronize()
            heatmap, scale, offset = (outs[n].float().cpu().numpy() for n in self.output_names)
        return heatmap, scale, offset
