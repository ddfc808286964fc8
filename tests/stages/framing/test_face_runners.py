"""Face-detector runners: the ONNX->torch builder vs onnxruntime, and runner selection/fallback.

Everything here runs on the CPU (torch's CPU build); the CUDA comparison is test_face_runners_gpu.py.
The torch runner is compared with onnxruntime on the same blobs from real frames of the committed
test media (face_static.mp4, two_faces.mp4; 1280x720 -> a 640x352 detection input).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import types
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from engine.backends import Backend, CudaPlan, GpuDevice
from engine.config import Settings
from engine.errors import PermanentError
from engine.stage import StageContext
from stages.framing import face_select
from stages.framing.face_detector import BATCH_FRAMES, CenterFaceDetector, make_blob
from stages.framing.face_runners import DETECTION_OUTPUTS, INPUT_NAME, OnnxRuntimeRunner, TorchRunner
from stages.framing.face_select import make_face_detector
from stages.framing.face_tensorrt import TensorRTRunner, detection_profile, tensorrt_plan
from stages.framing.faces import FaceDetectStage
from stages.framing.onnx_torch import onnx_to_torch
from tests.stages.framing.face_media import matched_ious, media_frames

# Measured on this project's locked versions (torch 2.13 CPU, onnxruntime 1.32) over 6 frames of
# face_static.mp4 + two_faces.mp4 at 640x352: max |torch - onnxruntime| was 1.1e-6 (heatmap),
# 6.5e-5 (log-scale) and 1.9e-5 (offset); the tolerances below leave ~10x room for other CPUs.
ATOL = {"heatmap": 1e-5, "scale": 5e-4, "offset": 5e-4}

GPU = GpuDevice("Fake GPU", (9, 0), 80 << 30)


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    return media_frames(per_file=3)


@pytest.fixture(scope="module")
def ort_runner(model_path: Path) -> OnnxRuntimeRunner:
    return OnnxRuntimeRunner(model_path, threads=2)


@pytest.fixture(scope="module")
def torch_runner(model_path: Path) -> TorchRunner:
    return TorchRunner(model_path, device="cpu")


def plan(detector: str, fallbacks: tuple[str, ...] = ()) -> CudaPlan:
    return CudaPlan(GPU, "nvdec", detector, "x264-cpu", fallbacks)


# -- the torch runner vs onnxruntime on real frames --------------------------------------------------


def test_onnxruntime_runs_a_batch_in_pieces_with_the_same_outputs(frames: np.ndarray, model_path: Path) -> None:
    """A batch of 6 one frame per call (the arena then holds one frame's activations, not 6): same outputs."""
    blob, _ = make_blob(frames, 640)
    whole = OnnxRuntimeRunner(model_path, threads=2, max_batch=len(blob)).run(blob)
    pieces = OnnxRuntimeRunner(model_path, threads=2)
    assert pieces.max_batch == 1
    for a, b in zip(pieces.run(blob), whole, strict=True):
        assert a.shape == b.shape and a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)


def test_torch_runner_raw_outputs_match_onnxruntime(
    frames: np.ndarray, ort_runner: OnnxRuntimeRunner, torch_runner: TorchRunner
) -> None:
    blob, det_size = make_blob(frames, 640)
    assert det_size == (640, 352) and blob.shape == (6, 3, 352, 640)
    want = ort_runner.run(blob)
    got = torch_runner.run(blob)
    for name, a, b in zip(("heatmap", "scale", "offset"), got, want, strict=True):
        assert a.dtype == np.float32 and a.shape == b.shape
        assert a.shape[2:] == (88, 160)
        err = float(np.abs(a - b).max())
        assert err <= ATOL[name], f"{name}: max |torch - onnxruntime| = {err:.3g}"


def test_torch_runner_detections_identical(
    frames: np.ndarray, ort_runner: OnnxRuntimeRunner, torch_runner: TorchRunner
) -> None:
    reference = CenterFaceDetector(runner=ort_runner).detect(frames)
    found = CenterFaceDetector(runner=torch_runner).detect(frames)
    assert [len(f) for f in reference] == [1, 1, 1, 2, 2, 2]  # face_static: one, two_faces: two
    ious = matched_ious(found, reference)
    assert min(ious) >= 0.99, ious
    for got, want in zip(found, reference, strict=True):
        assert [round(f.score, 4) for f in got] == [round(f.score, 4) for f in want]


def test_default_constructor_is_onnxruntime(model_path: Path) -> None:
    assert CenterFaceDetector(model_path, threads=2).runner_name == "onnxruntime-cpu"
    with pytest.raises(ValueError):
        CenterFaceDetector()


def test_torch_runner_fp16_needs_cuda(model_path: Path) -> None:
    with pytest.raises(ValueError, match="CUDA"):
        TorchRunner(model_path, device="cpu", fp16=True)


# -- the ONNX -> torch builder on small graphs -------------------------------------------------------


def _const(name: str, value: np.ndarray) -> TensorProto:
    return numpy_helper.from_array(np.asarray(value, dtype=np.float32), name)


def _model(nodes: list[Any], inits: list[TensorProto], outputs: list[str], shape: list[int]) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 9)], ir_version=4)


def test_builder_honours_every_attribute_against_onnxruntime() -> None:
    """Attribute values CenterFace does not use (asymmetric pads, dilations, groups, output_padding,
    epsilon, broadcasting Add), checked against onnxruntime."""
    import onnxruntime as ort

    rng = np.random.default_rng(0)
    r = lambda *s: np.asarray(rng.standard_normal(size=s), dtype=np.float32)  # noqa: E731
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], strides=[2, 1], pads=[1, 0, 2, 1],
                         dilations=[1, 2], group=2, kernel_shape=[3, 3]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("ConvTranspose", ["r1", "wt", "bt"], ["t1"], strides=[2, 2], pads=[1, 1, 1, 1],
                         output_padding=[1, 0], kernel_shape=[2, 3]),
        helper.make_node("BatchNormalization", ["t1", "g", "beta", "mean", "var"], ["n1"], epsilon=0.1,
                         momentum=0.9),
        helper.make_node("Add", ["n1", "k"], ["a1"]),
        helper.make_node("Sigmoid", ["a1"], ["s1"]),
        helper.make_node("ConvTranspose", ["s1", "wt2"], ["t2"], strides=[1, 2], dilations=[2, 2], group=3,
                         output_padding=[0, 1]),
        helper.make_node("Conv", ["t2", "w3"], ["c3"], auto_pad="VALID"),
    ]
    inits = [
        _const("w1", r(6, 2, 3, 3)), _const("b1", r(6)),
        _const("wt", r(6, 3, 2, 3)), _const("bt", r(3)),
        _const("g", r(3)), _const("beta", r(3)), _const("mean", r(3)), _const("var", np.abs(r(3)) + 0.5),
        _const("k", r(3, 1, 1)), _const("wt2", r(3, 1, 3, 3)), _const("w3", r(2, 3, 1, 2)),
    ]
    model = _model(nodes, inits, ["c3", "c1"], [2, 4, 9, 11])
    x = r(2, 4, 9, 11) * 3
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    with torch.inference_mode():
        got = [t.numpy() for t in onnx_to_torch(model)(torch.from_numpy(x))]
    for a, b in zip(got, want, strict=True):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_unsupported_op_names_the_op() -> None:
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"]),
             helper.make_node("MaxPool", ["c"], ["p"], kernel_shape=[2, 2], name="pool1")]
    model = _model(nodes, [_const("w", np.ones((2, 3, 1, 1)))], ["p"], [1, 3, 8, 8])
    with pytest.raises(PermanentError, match=r"MaxPool.*pool1"):
        onnx_to_torch(model)
    # an op only an unwanted output needs is not built
    assert onnx_to_torch(model, outputs=["c"]).output_names == ("c",)


@pytest.mark.parametrize(
    ("op", "attrs", "named"),
    [
        ("Conv", {"auto_pad": "SAME_UPPER"}, "auto_pad=SAME_UPPER"),
        ("Conv", {"kernel_shape": [3, 3]}, "kernel_shape"),
        ("ConvTranspose", {"output_shape": [8, 8]}, "output_shape"),
        ("ConvTranspose", {"pads": [0, 0, 1, 1]}, "pads"),
        ("ConvTranspose", {"strides": [2, 2], "output_padding": [2, 0]}, "output_padding"),
        ("Add", {"broadcast": 1}, "broadcast"),
    ],
)
def test_unsupported_attribute_names_it(op: str, attrs: dict[str, Any], named: str) -> None:
    inputs, inits = (["x", "w"], [_const("w", np.ones((3, 3, 1, 1)))]) if op != "Add" else (["x", "x"], [])
    model = _model([helper.make_node(op, inputs, ["y"], **attrs)], inits, ["y"], [1, 3, 8, 8])
    with pytest.raises(PermanentError, match=named):
        onnx_to_torch(model)


def test_importing_the_package_imports_no_torch_tensorrt_or_cupy(tmp_path: Path) -> None:
    # an importable cupy (CuPy is not installed here), so importing it would show
    (tmp_path / "cupy").mkdir()
    (tmp_path / "cupy" / "__init__.py").write_text("")
    code = ("import sys, stages.framing; "
            "print(sorted(m for m in ('torch', 'tensorrt', 'tensorrt_bindings', 'onnx', 'cupy') if m in sys.modules))")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[3], env=env)
    assert out.stdout.strip() == "[]"


# -- selection and fallback --------------------------------------------------------------------------


def _messages(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == level]


def _cpu_torch(model_path: Path, settings: Settings, plan: CudaPlan | None) -> TorchRunner:
    return TorchRunner(model_path, device="cpu")


def test_cpu_backend_uses_onnxruntime(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="clipora.faces"):
        det = make_face_detector(settings, Backend("cpu", np))
    assert det.runner_name == "onnxruntime-cpu"
    assert _messages(caplog, logging.INFO) == ["face detector: onnxruntime-cpu (CPU backend)"]
    assert not _messages(caplog, logging.WARNING)


def test_plan_tensorrt_without_tensorrt_falls_back_to_torch(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # `import tensorrt` raises ImportError
    monkeypatch.setitem(sys.modules, "tensorrt_bindings", None)  # and so does the bindings-only layout
    monkeypatch.setitem(face_select.RUNNER_BUILDERS, "torch-cuda", _cpu_torch)
    with caplog.at_level(logging.INFO, logger="clipora.faces"):
        det = make_face_detector(settings, Backend("cuda", np, plan("tensorrt")))
    assert det.runner_name == "torch-cpu"
    assert det.fast_long_side is None  # a batching runner keeps one input size (no SizePlan)
    (warning,) = _messages(caplog, logging.WARNING)
    assert "tensorrt could not be built (ImportError" in warning and "falling back to torch-cuda" in warning
    (info,) = _messages(caplog, logging.INFO)
    assert info.startswith("face detector: torch-cpu (the CUDA plan's detector on Fake GPU")
    assert "after fallback from tensorrt" in info


def test_plan_tensorrt_stub_module_is_refused(settings: Settings, monkeypatch: pytest.MonkeyPatch,
                                              model_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", SimpleNamespace(__version__="0.0.1"))  # the PyPI stub
    monkeypatch.setitem(sys.modules, "tensorrt_bindings", None)
    with pytest.raises(ImportError, match="stub"):
        TensorRTRunner(model_path, settings.cache_dir)


def test_plan_torch_cuda_without_cuda_falls_back_to_onnxruntime(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    note = "no TensorRT (tensorrt does not import): faces on torch CUDA"
    with caplog.at_level(logging.INFO, logger="clipora.faces"):
        det = make_face_detector(settings, Backend("cuda", np, plan("torch-cuda", (note,))))
    assert det.runner_name == "onnxruntime-cpu"
    (warning,) = _messages(caplog, logging.WARNING)
    assert "torch-cuda could not be built (RuntimeError" in warning and "no CUDA device" in warning
    (info,) = _messages(caplog, logging.INFO)
    assert note in info and "after fallback from torch-cuda" in info


def test_every_failure_falls_through_in_order(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []

    def failing(name: str, exc: Exception) -> Any:
        def build(*_: Any) -> Any:
            calls.append(name)
            raise exc
        return build

    monkeypatch.setitem(face_select.RUNNER_BUILDERS, "tensorrt",
                        failing("tensorrt", RuntimeError("engine build failed")))
    monkeypatch.setitem(face_select.RUNNER_BUILDERS, "torch-cuda", failing("torch-cuda", ImportError("no torch")))
    with caplog.at_level(logging.INFO, logger="clipora.faces"):
        det = make_face_detector(settings, Backend("cuda", np, plan("tensorrt")))
    assert calls == ["tensorrt", "torch-cuda"] and det.runner_name == "onnxruntime-cpu"
    assert _messages(caplog, logging.WARNING) == [
        "face detector tensorrt could not be built (RuntimeError: engine build failed); falling back to torch-cuda",
        "face detector torch-cuda could not be built (ImportError: no torch); falling back to onnxruntime-cpu",
    ]
    # the last one failing too is an error, raised
    monkeypatch.setitem(face_select.RUNNER_BUILDERS, "onnxruntime-cpu", failing("ort", OSError("no model")))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="clipora.faces"), pytest.raises(OSError, match="no model"):
        make_face_detector(settings, Backend("cuda", np, plan("torch-cuda")))
    (error,) = _messages(caplog, logging.ERROR)
    assert "torch-cuda: ImportError: no torch" in error and "OSError: no model" in error


def test_plan_onnxruntime_cpu_and_the_stage(settings: Settings, tmp_path: Path,
                                            caplog: pytest.LogCaptureFixture) -> None:
    backend = Backend("cuda", np, plan("onnxruntime-cpu"))
    ctx = StageContext("j1", tmp_path, settings, backend).for_stage("faces")
    stage = FaceDetectStage()
    with caplog.at_level(logging.INFO):
        stage.setup(ctx)
    assert stage._detector is not None and stage._detector.runner_name == "onnxruntime-cpu"
    assert not _messages(caplog, logging.WARNING)
    assert any(m.startswith("face detector: onnxruntime-cpu (the CUDA plan") for m in _messages(caplog, logging.INFO))


# -- the TensorRT runner, on stand-in tensorrt and cupy modules (neither is installed here) -------------


class _DeviceArray:
    """A cupy.ndarray stand-in in host memory; ``data.ptr`` is the address TensorRT is given."""

    def __init__(self, cp: Any, a: np.ndarray) -> None:
        self._cp, self.a = cp, a
        self.shape, self.dtype = a.shape, a.dtype
        self.data = SimpleNamespace(ptr=int(a.ctypes.data))
        cp.allocations[self.data.ptr] = self

    def get(self) -> np.ndarray:
        stream = self._cp.current_stream()
        assert stream is not None and not stream.pending, "device -> host copy before the stream was synchronized"
        self._cp.d2h.append(stream)
        return self.a.copy()


def _fake_cupy(device_count: int = 1) -> types.ModuleType:
    """Just enough of CuPy for TensorRTRunner: asarray/empty/get, Stream (ptr, synchronize, `with`)
    and the runtime calls engine.backends probes the device with. Records which stream each copy ran on."""
    cp = types.ModuleType("cupy")
    cp.allocations, cp.streams, cp.h2d, cp.d2h, cp.entered = {}, [], [], [], []  # type: ignore[attr-defined]

    class Stream:
        def __init__(self, null: bool = False, non_blocking: bool = False) -> None:
            self.ptr = 0x5000 + len(cp.streams)
            self.non_blocking, self.pending, self.syncs = non_blocking, 0, 0
            cp.streams.append(self)

        def __enter__(self) -> Stream:
            cp.entered.append(self)
            return self

        def __exit__(self, *exc: Any) -> None:
            cp.entered.pop()

        def synchronize(self) -> None:
            self.pending, self.syncs = 0, self.syncs + 1

    def asarray(a: np.ndarray) -> _DeviceArray:
        cp.h2d.append(cp.current_stream())
        return _DeviceArray(cp, np.array(a, copy=True))

    def empty(shape: tuple[int, ...], dtype: Any) -> _DeviceArray:
        return _DeviceArray(cp, np.full(shape, np.nan, dtype=dtype))

    cp.asarray, cp.empty = asarray, empty  # type: ignore[attr-defined]
    cp.current_stream = lambda: cp.entered[-1] if cp.entered else None  # type: ignore[attr-defined]
    runtime = SimpleNamespace(
        getDeviceCount=lambda: device_count,
        getDeviceProperties=lambda i: {"name": b"NVIDIA H200", "major": 9, "minor": 0, "totalGlobalMem": 141 << 30})
    cp.cuda = SimpleNamespace(Stream=Stream, runtime=runtime)  # type: ignore[attr-defined]
    return cp


#: what the stand-in engine computes from the input x, per output (at 1/4 resolution, as CenterFace)
_FAKE_OUTPUTS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "537": lambda x: x[:, :1, ::4, ::4],
    "538": lambda x: x[:, 1:3, ::4, ::4] * 2,
    "539": lambda x: -x[:, :2, ::4, ::4],
    "540": lambda x: np.zeros((x.shape[0], 10, x.shape[2] // 4, x.shape[3] // 4), x.dtype),
}


class _FakeTrt:
    """Just enough of the TensorRT 10 builder and runtime API to see what build_tensorrt_plan and
    TensorRTRunner ask for. The engine reads its input from, and writes its outputs to, the
    stand-in cupy arrays at the addresses it was given, on the stream it was given."""

    __version__ = "10.9.0.34"

    def __init__(self, cupy: Any = None, io_dtype: str = "float32", refuse: int = 0,
                 outputs: tuple[str, ...] = ("537", "538", "539", "540"),
                 execute_ok: bool = True) -> None:
        self.builds: list[dict[str, Any]] = []
        self.deserialized: list[bytes] = []
        self.contexts: list[Any] = []
        fake = self

        class Builder:
            def __init__(self, logger: Any) -> None:
                self.record: dict[str, Any] = {"flags": [], "profiles": []}

            def create_network(self, flags: int) -> str:
                self.record["network_flags"] = flags
                return "network"

            def create_builder_config(self) -> Any:
                rec = self.record
                return SimpleNamespace(set_memory_pool_limit=lambda pool, n: rec.update(workspace=n),
                                       set_flag=rec["flags"].append,
                                       add_optimization_profile=rec["profiles"].append)

            def create_optimization_profile(self) -> Any:
                shapes: list[Any] = []
                return SimpleNamespace(shapes=shapes, set_shape=lambda *a: shapes.append(a))

            def build_serialized_network(self, network: Any, config: Any) -> bytes:
                fake.builds.append(self.record)
                return b"plan:" + b",".join(f.encode() for f in self.record["flags"])

        class Context:
            def __init__(self) -> None:
                self.shapes: list[tuple[int, ...]] = []
                self.addresses: dict[str, int] = {}
                self.executed: list[int] = []

            def set_input_shape(self, name: str, shape: tuple[int, ...]) -> bool:
                assert name == INPUT_NAME
                self.shapes.append(shape)
                return shape[0] <= 8  # the profile's max batch

            def get_tensor_shape(self, name: str) -> tuple[int, ...]:
                n, _, h, w = self.shapes[-1]
                return _FAKE_OUTPUTS[name](np.zeros((n, 3, h, w), np.float32)).shape

            def set_tensor_address(self, name: str, ptr: int) -> None:
                self.addresses[name] = ptr

            def execute_async_v3(self, stream_handle: int) -> bool:
                self.executed.append(stream_handle)
                (stream,) = [s for s in cupy.streams if s.ptr == stream_handle]
                x = cupy.allocations[self.addresses[INPUT_NAME]].a
                assert x.shape == self.shapes[-1] and x.dtype == np.dtype(io_dtype)
                for name in outputs:
                    out = cupy.allocations[self.addresses[name]].a
                    out[...] = _FAKE_OUTPUTS[name](x)
                stream.pending += 1
                return execute_ok

        names = (INPUT_NAME, *outputs)

        class Engine:
            num_io_tensors = len(names)
            get_tensor_name = staticmethod(names.__getitem__)
            get_tensor_mode = staticmethod(lambda n: "input" if n == INPUT_NAME else "output")
            get_tensor_dtype = staticmethod(lambda n: io_dtype)

            def create_execution_context(self) -> Context:
                fake.contexts.append(Context())
                return fake.contexts[-1]

        class Runtime:
            def __init__(self, logger: Any) -> None:
                self.refuse = refuse

            def deserialize_cuda_engine(self, plan: bytes) -> Engine | None:
                assert plan.startswith(b"plan:")
                fake.deserialized.append(plan)
                if self.refuse:
                    self.refuse -= 1
                    return None
                return Engine()

        self.Builder, self.Runtime = Builder, Runtime
        self.Logger = type("Logger", (), {"WARNING": 2, "__init__": lambda self, level: None})
        self.OnnxParser = type("OnnxParser", (), {"__init__": lambda self, net, logger: None,
                                                  "parse": lambda self, data: data[:1] != b"",
                                                  "num_errors": 0})
        self.MemoryPoolType = SimpleNamespace(WORKSPACE="workspace")
        self.BuilderFlag = SimpleNamespace(FP16="FP16")
        self.TensorIOMode = SimpleNamespace(INPUT="input", OUTPUT="output")
        self.float32, self.float16 = "float32", "float16"


def test_tensorrt_plan_is_built_once_per_key(model_path: Path, tmp_path: Path) -> None:
    trt = _FakeTrt()
    profile = detection_profile()
    assert (profile.input_name, profile.min, profile.opt, profile.max) == (
        "input.1", (1, 3, 32, 32), (8, 3, 352, 640), (8, 3, 640, 640))
    plan32, key32, _ = tensorrt_plan(trt, model_path, tmp_path, "Fake GPU", (9, 0), profile)
    again, _, _ = tensorrt_plan(trt, model_path, tmp_path, "Fake GPU", (9, 0), profile)
    assert plan32 == again == b"plan:" and len(trt.builds) == 1  # the second came from the cache
    (build,) = trt.builds
    assert build["network_flags"] == 0 and build["workspace"] == 1 << 30
    ((shape,),) = [p.shapes for p in build["profiles"]]
    assert shape == ("input.1", (1, 3, 32, 32), (8, 3, 352, 640), (8, 3, 640, 640))
    plan16, key16, cache = tensorrt_plan(trt, model_path, tmp_path, "Fake GPU", (9, 0), profile, fp16=True)
    assert plan16 == b"plan:FP16" and len(trt.builds) == 2 and key16.precision == "fp16"
    assert key16.tensorrt_version == "10.9.0.34" and key16.compute_capability == (9, 0)
    assert cache.load(key16) == plan16 and cache.load(key32) is None  # the older plan was pruned


def test_gpu_backend_without_plan_and_unknown_detector(settings: Settings,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="clipora.faces"):
        assert make_face_detector(settings, Backend("cuda", np)).runner_name == "onnxruntime-cpu"
        assert make_face_detector(settings, Backend("cuda", np, plan("openvino"))).runner_name == "onnxruntime-cpu"
    assert _messages(caplog, logging.INFO) == [
        "face detector: onnxruntime-cpu (cuda backend without a CUDA plan)",
        "face detector: onnxruntime-cpu (unknown plan detector 'openvino')",
    ]
    (warning,) = _messages(caplog, logging.WARNING)
    assert "unknown face detector 'openvino'" in warning


StandIns = Callable[..., tuple[_FakeTrt, Any]]


@pytest.fixture
def stand_ins(monkeypatch: pytest.MonkeyPatch) -> StandIns:
    """Installs a stand-in cupy and tensorrt as the modules `import` finds; returns them."""
    def install(cupy: Any = None, **trt_options: Any) -> tuple[_FakeTrt, Any]:
        cp = cupy if cupy is not None else _fake_cupy()
        trt = _FakeTrt(cupy=cp, **trt_options)
        monkeypatch.setitem(sys.modules, "tensorrt", trt)
        monkeypatch.setitem(sys.modules, "cupy", cp)
        return trt, cp
    return install


def _plan_keys(cache_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(m.read_text())["key"] for m in sorted((cache_dir / "tensorrt").glob("*.json"))]


def test_tensorrt_runner_on_cupy_buffers_and_stream(stand_ins: StandIns, model_path: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # no torch needed (the CUDA image's is the CPU build)
    trt, cp = stand_ins()
    runner = TensorRTRunner(model_path, tmp_path, device=GPU)
    assert runner.name == "tensorrt" and runner.max_batch == 8
    assert len(trt.builds) == 1 and trt.deserialized == [b"plan:"]
    (key,) = _plan_keys(tmp_path)
    assert key["gpu_name"] == "Fake GPU" and key["compute_capability"] == [9, 0] and key["precision"] == "fp32"
    (stream,) = cp.streams  # one stream, the runner's own
    assert stream.non_blocking
    blob = np.random.default_rng(1).standard_normal((10, 3, 64, 96)).astype(np.float32)
    heatmap, scale, offset = runner.run(blob)
    for got, name in zip((heatmap, scale, offset), DETECTION_OUTPUTS, strict=True):
        assert type(got) is np.ndarray and got.dtype == np.float32
        np.testing.assert_array_equal(got, _FAKE_OUTPUTS[name](blob))  # what the engine wrote at the addresses
    assert heatmap.shape == (10, 1, 16, 24) and scale.shape == offset.shape == (10, 2, 16, 24)
    (ctx,) = trt.contexts
    assert ctx.shapes == [(8, 3, 64, 96), (2, 3, 64, 96)]  # chunked at the profile's max batch
    assert set(ctx.addresses) == {INPUT_NAME, "537", "538", "539", "540"}  # the landmarks get a buffer too
    assert ctx.executed == [stream.ptr, stream.ptr] and stream.syncs == 2
    # host -> device once per chunk, device -> host of the three outputs per chunk, all on that stream
    # (the stand-in's get() fails if the stream was not synchronized after the engine ran)
    assert cp.h2d == [stream] * 2 and cp.d2h == [stream] * 6
    # a second runner: the plan from the cache, a stream of its own
    TensorRTRunner(model_path, tmp_path, device=GPU)
    assert len(trt.builds) == 1 and len(trt.deserialized) == 2 and len(cp.streams) == 2


def test_tensorrt_runner_fp16_io_gives_float32(stand_ins: StandIns, model_path: Path, tmp_path: Path) -> None:
    trt, cp = stand_ins(io_dtype="float16")
    runner = TensorRTRunner(model_path, tmp_path, device=GPU, fp16=True, max_batch=4)
    assert runner.name == "tensorrt-fp16" and trt.builds[0]["flags"] == ["FP16"]
    assert [k["precision"] for k in _plan_keys(tmp_path)] == ["fp16"]
    blob = np.random.default_rng(2).standard_normal((5, 3, 32, 64))  # float64: cast to the engine's input type
    outs = runner.run(blob)
    half = blob.astype(np.float16)
    for got, name in zip(outs, DETECTION_OUTPUTS, strict=True):
        assert got.dtype == np.float32 and got.shape[0] == 5
        np.testing.assert_array_equal(got, _FAKE_OUTPUTS[name](half).astype(np.float32))
    assert trt.contexts[0].shapes == [(4, 3, 32, 64), (1, 3, 32, 64)]


def test_tensorrt_runner_probes_the_device_with_cupy(stand_ins: StandIns, model_path: Path, tmp_path: Path) -> None:
    stand_ins()
    TensorRTRunner(model_path, tmp_path)  # no GpuDevice given: CuPy's device 0
    (key,) = _plan_keys(tmp_path)
    assert key["gpu_name"] == "NVIDIA H200" and key["compute_capability"] == [9, 0]
    assert key["tensorrt_version"] == "10.9.0.34"
    stand_ins(cupy=_fake_cupy(device_count=0))
    with pytest.raises(RuntimeError, match="needs a CUDA device: no CUDA device found"):
        TensorRTRunner(model_path, tmp_path)


def test_tensorrt_runner_rebuilds_a_refused_plan_once(stand_ins: StandIns, model_path: Path, tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    trt, _ = stand_ins(refuse=1)
    with caplog.at_level(logging.WARNING, logger="clipora.faces"):
        runner = TensorRTRunner(model_path, tmp_path, device=GPU)
    assert len(trt.builds) == 2 and len(trt.deserialized) == 2 and runner.context is trt.contexts[0]
    (warning,) = _messages(caplog, logging.WARNING)
    assert "cached TensorRT plan for Fake GPU does not deserialize; rebuilding" == warning
    trt, _ = stand_ins(refuse=2)  # the cached plan refused, and the rebuilt one too
    with pytest.raises(RuntimeError, match="could not deserialize the engine it just built"):
        TensorRTRunner(model_path, tmp_path, device=GPU)
    assert len(trt.builds) == 1 and len(trt.deserialized) == 2


def test_tensorrt_runner_errors(stand_ins: StandIns, model_path: Path, tmp_path: Path) -> None:
    stand_ins(outputs=("537", "538"))
    with pytest.raises(PermanentError, match=r"no output\(s\) \['539'\]"):
        TensorRTRunner(model_path, tmp_path, device=GPU)
    stand_ins(io_dtype="int8")
    with pytest.raises(PermanentError, match="tensor type int8 is not supported"):
        TensorRTRunner(model_path, tmp_path, device=GPU)
    trt, _ = stand_ins()
    runner = TensorRTRunner(model_path, tmp_path, device=GPU)
    for h, w in ((32, 672), (16, 64)):
        with pytest.raises(RuntimeError, match=f"input {w}x{h} is outside the TensorRT profile 32x32 to 640x640"):
            runner.run(np.zeros((1, 3, h, w), np.float32))
    runner.max_batch = 9  # a chunk over the profile's batch: TensorRT refuses the shape
    with pytest.raises(RuntimeError, match=r"refused the input shape \(9, 3, 32, 32\)"):
        runner.run(np.zeros((9, 3, 32, 32), np.float32))
    assert not trt.contexts[0].executed
    stand_ins(execute_ok=False)
    with pytest.raises(RuntimeError, match="execute_async_v3 failed"):
        TensorRTRunner(model_path, tmp_path, device=GPU).run(np.zeros((1, 3, 32, 32), np.float32))


def test_plan_tensorrt_without_cupy_falls_back_to_torch(
    settings: Settings, model_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", _FakeTrt())
    monkeypatch.setitem(sys.modules, "cupy", None)  # `import cupy` raises ImportError
    with pytest.raises(ImportError, match=r"needs CuPy \(cupy-cuda12x\) for its device buffers"):
        TensorRTRunner(model_path, settings.cache_dir)
    monkeypatch.setitem(face_select.RUNNER_BUILDERS, "torch-cuda", _cpu_torch)
    with caplog.at_level(logging.INFO, logger="clipora.faces"):
        det = make_face_detector(settings, Backend("cuda", np, plan("tensorrt")))
    assert det.runner_name == "torch-cpu"
    (warning,) = _messages(caplog, logging.WARNING)
    assert "tensorrt could not be built (ImportError: the TensorRT face runner needs CuPy" in warning
    assert "falling back to torch-cuda" in warning


def test_plan_tensorrt_with_tensorrt_and_cupy_is_taken(
    settings: Settings, stand_ins: StandIns, caplog: pytest.LogCaptureFixture
) -> None:
    trt, cp = stand_ins()
    with caplog.at_level(logging.INFO, logger="clipora.faces"):
        det = make_face_detector(settings, Backend("cuda", np, plan("tensorrt")))
    assert det.runner_name == "tensorrt" and det.runner.max_batch == BATCH_FRAMES
    assert not _messages(caplog, logging.WARNING)
    assert _messages(caplog, logging.INFO) == ["face detector: tensorrt (the CUDA plan's detector on Fake GPU)"]
    assert len(cp.streams) == 1 and len(trt.contexts) == 1


def test_tensorrt_bindings_alone_are_used(stand_ins: StandIns, model_path: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """tensorrt-cu12-bindings + -libs without the tensorrt front end (Dockerfile.cuda): the API is
    tensorrt_bindings."""
    trt, _ = stand_ins()
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    monkeypatch.setitem(sys.modules, "tensorrt_bindings", trt)
    runner = TensorRTRunner(model_path, tmp_path, device=GPU)
    assert runner.name == "tensorrt" and len(trt.builds) == 1 and len(trt.contexts) == 1
    monkeypatch.setitem(sys.modules, "tensorrt_bindings", None)
    with pytest.raises(ImportError, match=r"tensorrt: ModuleNotFoundError.*; tensorrt_bindings: ModuleNotFoundError"):
        TensorRTRunner(model_path, tmp_path, device=GPU)
