"""Face-detector runners: the ONNX->torch builder vs onnxruntime, and runner selection/fallback.

Everything here runs on the CPU (torch's CPU build); the CUDA comparison is test_face_runners_gpu.py.
The torch runner is compared with onnxruntime on the same blobs from real frames of the committed
test media (face_static.mp4, two_faces.mp4; 1280x720 -> a 640x352 detection input).
"""

from __future__ import annotations

import logging
import subprocess
import sys
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
from stages.framing.face_detector import CenterFaceDetector, centerface_model_path, make_blob
from stages.framing.face_runners import OnnxRuntimeRunner, TorchRunner
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
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(cache_dir=tmp_path_factory.mktemp("cache"), threads=2)


@pytest.fixture(scope="module")
def model_path(settings: Settings) -> Path:
    return centerface_model_path(settings)


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


def test_importing_the_package_imports_no_torch_or_tensorrt() -> None:
    code = "import sys, stages.framing; print(sorted(m for m in ('torch', 'tensorrt', 'onnx') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[3])
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
    monkeypatch.setitem(face_select.RUNNER_BUILDERS, "torch-cuda", _cpu_torch)
    with caplog.at_level(logging.INFO, logger="clipora.faces"):
        det = make_face_detector(settings, Backend("cuda", np, plan("tensorrt")))
    assert det.runner_name == "torch-cpu"
    (warning,) = _messages(caplog, logging.WARNING)
    assert "tensorrt could not be built (ImportError" in warning and "falling back to torch-cuda" in warning
    (info,) = _messages(caplog, logging.INFO)
    assert info.startswith("face detector: torch-cpu (the CUDA plan's detector on Fake GPU")
    assert "after fallback from tensorrt" in info


def test_plan_tensorrt_stub_module_is_refused(settings: Settings, monkeypatch: pytest.MonkeyPatch,
                                              model_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", SimpleNamespace(__version__="0.0.1"))  # the PyPI stub
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


# -- the TensorRT plan, through engine.trt_cache (a fake tensorrt module: TensorRT is not installed) --


class _FakeTrt:
    """Just enough of the TensorRT 10 builder API to see what build_tensorrt_plan asks for."""

    __version__ = "10.9.0.34"

    def __init__(self) -> None:
        self.builds: list[dict[str, Any]] = []
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

        self.Builder = Builder
        self.Logger = type("Logger", (), {"WARNING": 2, "__init__": lambda self, level: None})
        self.OnnxParser = type("OnnxParser", (), {"__init__": lambda self, net, logger: None,
                                                  "parse": lambda self, data: data[:1] != b"",
                                                  "num_errors": 0})
        self.MemoryPoolType = SimpleNamespace(WORKSPACE="workspace")
        self.BuilderFlag = SimpleNamespace(FP16="FP16")


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
