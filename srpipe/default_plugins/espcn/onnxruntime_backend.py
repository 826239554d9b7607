"""The ONNX Runtime backend: an ESPCN network's convolutions exported once to ONNX, run on the CPU.

The export (``network.convolved``, dynamic batch, height and width) is cached under
``$SRPIPE_CACHE_DIR/onnx`` (default ``~/.cache/srpipe/onnx``), named by the SHA-256 of the
network's config and weights, so only the first load of a checkpoint pays for it (a few
seconds). Tiling and the residual bicubic stay in the upscaler, shared with torch.
"""

from __future__ import annotations

from srpipe import hookimpl
from srpipe.backends import Backend
from srpipe.cache import cache_dir, write_atomically


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
    spinning was slower (docs/speed.md)."""
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

    path = cache_dir("onnx") / f"{network_digest(network)}.onnx"
    try:
        runner = session(str(path))
    except Exception:  # not cached yet, or damaged: export it
        model = export_convolved(network)
        try:
            write_atomically(path, model)
        except OSError:  # a read-only cache: the model runs from memory
            pass
        runner = session(model)

    def convolved(x):
        return runner.run(None, {"x": x})[0]

    return convolved


# Below torch: on a 2-core AVX-512 Xeon (x2, 192-pixel tiles,
# torch with srpipe's glibc malloc setting) this ran at 0.91-1.08 times torch's speed (network
# alone 5.7 vs 6.3 fps at 640x360, 1.4 vs 1.3-1.5 fps at 720p; end to end 0.96-0.97 times),
# and 6.4 against 7.2 fps on a 2-core AMD EPYC (Zen 4).
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
