"""The OpenVINO backends: an ESPCN network's convolutions converted by OpenVINO and run on the CPU.

``openvino`` computes in float32 (within float32 rounding of torch). ``openvino-bf16`` lets
OpenVINO compute in bfloat16 on CPUs with native bfloat16 instructions (AVX512_BF16 or AMX),
about 1.7 times the float32 rate, with the input kept to about 16 significant bits
(:func:`split_input`); what that costs in quality is measured in the README. Each prepared
function holds one OpenVINO infer request: call it from one thread at a time.
The conversion (``openvino.convert_model`` on the torch module, dynamic batch, height and
width) takes about a second per load and needs no ONNX exporter.

OpenVINO's telemetry is kept off (:func:`import_openvino`): srpipe makes no network connections.
"""

from __future__ import annotations

import copy
import sys

from srpipe import hookimpl
from srpipe.backends import Backend


def import_openvino():
    """``openvino``, with its telemetry package hidden so that its converter uses its own
    no-op stand-in. Otherwise each conversion reports itself to Google Analytics from three
    processes forked from srpipe's threads; a fork can deadlock there and then hold srpipe
    at exit (seen with ``srpipe bench``), and the reports write files under ``~/intel``."""
    sys.modules.setdefault("openvino_telemetry", None)  # None: ``import`` raises ImportError
    import openvino

    return openvino


def is_available() -> bool:
    """Whether OpenVINO can be imported."""
    try:
        import_openvino()
    except ImportError:
        return False
    return True


def has_native_bf16() -> bool:
    """Whether OpenVINO finds bfloat16 instructions on this CPU."""
    if not is_available():
        return False
    return "BF16" in import_openvino().Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def split_input(network):
    """A copy of ``network`` whose first convolution takes each input channel twice, as its
    bfloat16 value and the remainder (:func:`split`), with the same weights on both: the two
    add up to the input with about 16 significant bits (the remainder is rounded to bfloat16
    too), where bfloat16 alone keeps 8."""
    import torch

    doubled = copy.deepcopy(network)
    first = doubled.body[0]
    first.weight = torch.nn.Parameter(torch.cat([first.weight, first.weight], dim=1))
    first.in_channels *= 2
    return doubled


def split(x):
    """(N, C, H, W) float32 -> (N, 2C, H, W): the bfloat16-rounded x, then x minus that."""
    import torch

    high = x.to(torch.bfloat16).float()
    return torch.cat([high, x - high], dim=1)


def _compiled(network, precision: str):
    """``network.convolved`` converted and compiled for the CPU, computing in ``precision``
    ("f32" or "bf16"), with as many threads as torch uses (the batch engine sets that per worker).

    Threads are not pinned to cores: OpenVINO pins each process's threads from the first core,
    so two 1-thread batch workers shared one core (4.4 fps each, 8.9 unpinned; x2, 640x360, bf16)."""
    import torch

    from srpipe.nn.espcn import Convolved

    ov = import_openvino()

    channels = network.body[0].in_channels
    model = ov.convert_model(Convolved(network).eval(), example_input=torch.zeros(1, channels, 32, 32),
                             input=[(-1, channels, -1, -1)])
    config = {"INFERENCE_PRECISION_HINT": precision, "INFERENCE_NUM_THREADS": torch.get_num_threads(),
              "PERFORMANCE_HINT": "LATENCY", "ENABLE_CPU_PINNING": False}
    return ov.Core().compile_model(model, "CPU", config)


def _prepare(precision: str):
    def prepare(network, device: str):
        """A function equal to ``network.convolved`` on CPU float32 tensors, run by OpenVINO.

        In bfloat16 the input goes in split (:func:`split_input`): rounding the input itself to
        bfloat16 (within 1/512), which the network's sharpening amplifies, was most of the error,
        up to 3.5 8-bit code values on 10-bit video; split, at most 0.5 (two 10-bit values),
        3% slower (x2, 640x360)."""
        import warnings

        import torch

        bf16 = precision == "bf16"
        with warnings.catch_warnings():  # the tracer's notes on the traced module are not the user's concern
            warnings.simplefilter("ignore")
            request = _compiled(split_input(network) if bf16 else network, precision).create_infer_request()

        def convolved(x: torch.Tensor) -> torch.Tensor:
            x = split(x) if bf16 else x.contiguous()
            return torch.from_numpy(request.infer({0: x.numpy()})[0])

        return convolved

    return prepare


# Tiles of 640 LR pixels: OpenVINO fuses each convolution with its PReLU, so small tiles gain
# nothing; whole 640x360 frames ran 5% faster than 384-pixel tiles and 15% faster than 256,
# while at 720p 640-pixel tiles ran as fast as whole frames with 300 MiB less peak memory.
# Measured on a 2-core AMD EPYC (Zen 4), x2, four 640x360 frames: torch 4.6-6.7 fps, ONNX
# Runtime 6.4, openvino 9.2, openvino-bf16 16.7.
OPENVINO = Backend(
    name="openvino",
    devices=("cpu",),
    priority=20,
    is_available=is_available,
    prepare=_prepare("f32"),
    description="OpenVINO on the CPU, float32",
    install_hint="pip install openvino",
    tile=640,
)

OPENVINO_BF16 = Backend(
    name="openvino-bf16",
    devices=("cpu",),
    priority=30,
    is_available=has_native_bf16,
    prepare=_prepare("bf16"),
    description="OpenVINO on the CPU, bfloat16 (CPUs with AVX512_BF16 or AMX)",
    install_hint="it needs OpenVINO and a CPU with AVX512_BF16 or AMX",
    tile=640,
)


@hookimpl
def register_backends(register):
    register(OPENVINO)
    register(OPENVINO_BF16)
