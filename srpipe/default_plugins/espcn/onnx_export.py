"""ESPCN networks as ONNX models: the per-tile part (``convolved``), shaped for ONNX Runtime's CPU kernels."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict

import numpy as np

EXPORT_FORMAT = "srpipe-onnx/1"  # part of the digest: change it when the exported graph changes


def network_digest(network) -> str:
    """SHA-256 of the export format, the network's config and its weights."""
    digest = hashlib.sha256(EXPORT_FORMAT.encode())
    digest.update(json.dumps(asdict(network.config), sort_keys=True).encode())
    for name, tensor in network.state_dict().items():
        digest.update(f"{name}{tuple(tensor.shape)}{tensor.dtype}".encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def export_convolved(network) -> bytes:
    """``network.convolved`` as a serialised ONNX model: input ``x``, float32 (N, C, H, W)
    with any N, H and W; output ``y``, (N, C, H*scale, W*scale).

    The torch.export-based exporter (the default since torch 2.9; the TorchScript one is
    deprecated) gives the plain graph: Conv, PRelu, ..., Conv, DepthToSpace."""
    import onnx
    import torch

    from srpipe.default_plugins.espcn.network import Convolved

    dim = torch.export.Dim
    program = torch.onnx.export(
        Convolved(network).eval(), (torch.zeros(2, network.input_channels, 32, 32),), dynamo=True,
        verbose=False, input_names=["x"], output_names=["y"],
        dynamic_shapes={"x": {0: dim("batch"), 2: dim("height"), 3: dim("width")}},
    )
    model = program.model_proto
    prelu_as_batchnorm(model.graph)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def prelu_as_batchnorm(graph) -> None:
    """Rewrite each per-channel ``PRelu(y, a)`` as ``y + (1 - a) * Relu(-y)``, the two
    products as BatchNormalization nodes (scale only).

    ONNX Runtime keeps a whole Conv chain in its blocked NCHWc layout only through ops it
    has NCHWc forms of: it turns these BatchNormalizations into depthwise 1x1 convolutions,
    fuses the Relu into the first and the Add into the second. A PRelu has no such form:
    each costs a reorder out of NCHWc and back and a slow broadcast kernel, which made the
    network much slower than with this rewrite (docs/design-notes.md)."""
    from onnx import numpy_helper

    initializers = {tensor.name: tensor for tensor in graph.initializer}
    nodes, slopes = [], set()
    for node in graph.node:
        slope = initializers.get(node.input[1]) if node.op_type == "PRelu" else None
        if slope is None or int(np.prod(slope.dims)) < 2:
            nodes.append(node)
            continue
        slopes.add(slope.name)
        nodes += _prelu_nodes(graph, node, numpy_helper.to_array(slope).astype(np.float32).reshape(-1))
    del graph.node[:]
    graph.node.extend(nodes)
    for name in slopes:
        graph.initializer.remove(initializers[name])


def _prelu_nodes(graph, node, a: np.ndarray) -> list:
    """The nodes computing ``node``'s PRelu with per-channel slopes ``a``; their constants
    are added to ``graph``."""
    from onnx import helper, numpy_helper

    y, out, name = node.input[0], node.output[0], node.name or node.output[0]

    def constant(suffix, values):
        graph.initializer.append(numpy_helper.from_array(np.asarray(values, np.float32), f"{name}_{suffix}"))
        return f"{name}_{suffix}"

    zero, one = constant("zero", np.zeros_like(a)), constant("one", np.ones_like(a))

    def scaled(x, scale, result):
        return helper.make_node("BatchNormalization", [x, scale, zero, zero, one], [result], epsilon=0.0)

    return [
        scaled(y, constant("minus_one", -np.ones_like(a)), f"{name}_negated"),
        helper.make_node("Relu", [f"{name}_negated"], [f"{name}_negative_part"]),
        scaled(f"{name}_negative_part", constant("one_minus_slope", 1 - a), f"{name}_correction"),
        helper.make_node("Add", [y, f"{name}_correction"], [out]),
    ]
