"""The ONNX Runtime backend: an ESPCN network's convolutions exported once to ONNX, run on the CPU.

The export (``network.convolved``, dynamic batch, height and width) is cached under
``$SRPIPE_CACHE_DIR/onnx`` (default ``~/.cache/srpipe/onnx``), named by the SHA-256 of the
network's config and weights, so only the first load of a checkpoint pays for it (a few
seconds). An export is read only as :func:`srpipe.cache.read_recorded` checks it: one that is
not what this srpipe wrote is exported again. Tiling and the residual bicubic stay in the upscaler, shared with torch.
"""

from __future__ import annotations

from srpipe import cache, hookimpl
from srpipe.backends import Backend


def is_available() -> bool:
    """Whether ONNX Runtime and the exporter's onnxscript can be imported."""
    try:
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        return False
    return True


def session(model: str | bytes):
    """A CPU session with this process's share of the cores where it has one
    (:func:`srpipe.device.compute_threads`), else ONNX Runtime's default.
    Threads sleep instead of spinning between runs: decode and encode share the cores, and
    spinning was slower (docs/design-notes.md)."""
    import onnxruntime as ort

    from srpipe.device import compute_threads

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = compute_threads() or 0  # 0: ONNX Runtime's default
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def prepare(network, device: str):
    """A function equal to ``network.convolved`` on CPU float32 arrays, run by ONNX Runtime."""
    from srpipe.default_plugins.espcn.onnx_export import export_convolved, network_digest

    digest = network_digest(network)
    kept = cache.read_recorded("onnx", f"{digest}.onnx", f"ONNX export of network {digest[:16]}")
    runner = None
    if kept is not None:
        try:
            runner = session(kept)
        except Exception:  # what this srpipe wrote, yet ONNX Runtime cannot read it: exported again
            pass
    if runner is None:
        model = export_convolved(network)
        cache.write_recorded("onnx", f"{digest}.onnx", model)  # where it can: else it runs from memory
        runner = session(model)

    def convolved(x):
        return runner.run(None, {"x": x})[0]

    return convolved


# Below torch: it did not beat torch on the CPUs measured (docs/design-notes.md).
# A backend that beats torch registers above 10.
ONNXRUNTIME = Backend(
    name="onnxruntime",
    devices=("cpu",),
    priority=5,
    is_available=is_available,
    prepare=prepare,
    description="ONNX Runtime on the CPU (the exported network is cached)",
    install_hint="pip install 'srpipe[onnx]'",
)


@hookimpl
def register_backends(register):
    register(ONNXRUNTIME)
