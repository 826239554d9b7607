"""The OpenVINO backends: an ESPCN network's convolutions converted by OpenVINO and run on the CPU.

``openvino`` computes in float32 (within float32 rounding of torch). ``openvino-bf16`` lets
OpenVINO compute in bfloat16 on CPUs with native bfloat16 instructions (AVX512_BF16 or AMX),
faster than float32 (docs/design-notes.md), with the input kept to about 16 significant bits
(:func:`split_input`); what that costs in quality is measured in docs/backends.md. Each prepared
function holds one OpenVINO infer request: call it from one thread at a time.
The conversion (``openvino.convert_model`` on the torch module, dynamic batch, height and
width) needs torch and no ONNX exporter; its result is kept in ``$SRPIPE_CACHE_DIR/openvino``
(default ``~/.cache/srpipe/openvino``), named by the checkpoint's SHA-256, the precision and
OpenVINO's version, so later runs of the same weights read it and never import torch. It is
read only as :func:`srpipe.cache.read_recorded` checks it: files that are not what this srpipe
wrote are converted again.

``openvino-int8`` runs the int8 graph shipped for a checkpoint (made by NNCF and accepted by the
quality gate of :mod:`srpipe.default_plugins.espcn.quantize`) on CPUs with integer vector
instructions that run int8 convolutions fast (AVX2, AVX512_VNNI, AVX_VNNI or AMX_INT8); ``auto``
picks it there. It is not exact (``Backend.exact``): ``--exact`` leaves it out. For a checkpoint
without a shipped graph (a user's ``--weights``) it runs what ``auto`` would otherwise have
picked, and says so (:func:`_fallback`).

OpenVINO's telemetry is kept off (:func:`import_openvino`): srpipe makes no network connections.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import re
import sys
import tempfile
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from srpipe import cache, hookimpl
from srpipe.backends import Backend

if TYPE_CHECKING:  # NumPy is loaded where arrays are made: registering the backends is for --help too
    import numpy as np


def import_openvino():
    """``openvino``, with its telemetry package hidden so that its converter uses its own
    no-op stand-in. Otherwise each conversion reports itself to Google Analytics from three
    processes forked from srpipe's threads; a fork can deadlock there and then hold srpipe
    at exit (seen with ``srpipe bench``), and the reports write files under ``~/intel``.

    Its model converter (``openvino.tools.ovc``), which ``import openvino`` loads when it can,
    is left out: it takes twice as long to import as the runtime, and only a conversion from
    torch needs it (:func:`_converted` imports it then)."""
    sys.modules.setdefault("openvino_telemetry", None)  # None: ``import`` raises ImportError
    if "openvino" not in sys.modules and "openvino.tools.ovc" not in sys.modules:
        sys.modules["openvino.tools.ovc"] = None
        try:
            import openvino
        finally:
            del sys.modules["openvino.tools.ovc"]
    import openvino

    return openvino


_CORE_LOCK = threading.Lock()


def core():
    """The process's one OpenVINO ``Core``. Each Core's CPU plugin sets the thread's alternate
    signal stack and, when the Core goes, puts back the one it found: Cores that end in another
    order than they began left the main thread's pointing at freed memory, where the next Ctrl-C
    crashed the process (SIGSEGV) instead of stopping it. Made under a lock, so that two threads
    asking first do not make two."""
    with _CORE_LOCK:
        return _made_core()


@functools.cache
def _made_core():
    return import_openvino().Core()


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
    return "BF16" in core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


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


def bfloat16_rounded(x: np.ndarray) -> np.ndarray:
    """float32 ``x`` rounded to the nearest bfloat16 (ties to even), as float32: bfloat16 is
    the upper half of a float32's bits."""
    import numpy as np

    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    return ((bits + (0x7FFF + ((bits >> 16) & 1))) & 0xFFFF0000).view(np.float32)


def split(x: np.ndarray) -> np.ndarray:
    """(N, C, H, W) float32 -> (N, 2C, H, W): the bfloat16-rounded x, then x minus that."""
    import numpy as np

    high = bfloat16_rounded(x)
    return np.concatenate([high, x - high], axis=1)


def _converted(network):
    """``network.convolved`` as an OpenVINO model with dynamic batch, height and width."""
    import warnings

    import torch

    from srpipe.default_plugins.espcn.network import Convolved

    import_openvino()
    from openvino.tools.ovc import convert_model

    channels = network.input_channels
    with warnings.catch_warnings():  # the tracer's notes on the traced module are not the user's concern
        warnings.simplefilter("ignore")
        return convert_model(Convolved(network).eval(), example_input=torch.zeros(1, channels, 32, 32),
                             input=[(-1, channels, -1, -1)])


# Changes when what srpipe converts changes (Convolved, split_input), so older graphs are not reused.
CACHE_FORMAT = "srpipe1"


def _cached_name(key: str, precision: str) -> str:
    """The cached graph's name in the cache folder ``openvino``, without its suffix (.xml, .bin)."""
    version = re.sub(r"[^0-9A-Za-z.]+", "_", import_openvino().__version__)
    return f"{key}-{precision}-{CACHE_FORMAT}-{version}"


def _keep(model, name: str) -> None:
    """Keep ``model`` as ``name``.xml and its .bin, each with its record. Full-precision
    weights: OpenVINO would halve them by default."""
    with tempfile.TemporaryDirectory() as temp:
        saved = Path(temp, "model.xml")
        import_openvino().save_model(model, str(saved), compress_to_fp16=False)
        cache.write_recorded("openvino", f"{name}.bin", saved.with_suffix(".bin").read_bytes())
        cache.write_recorded("openvino", f"{name}.xml", saved.read_bytes())


def _runner(model, precision: str):
    """A function equal to ``network.convolved`` on CPU float32 arrays: ``model`` compiled for
    the CPU, computing in ``precision`` ("f32" or "bf16"), with this process's share of the
    cores where it has one (batch workers), else OpenVINO's default. Threads are not pinned:
    OpenVINO pins each process's threads from the first core, so two 1-thread batch workers
    would share one core.

    In bfloat16 the input goes in split (:func:`split_input`): rounding the input itself to
    bfloat16 (within 1/512), which the network's sharpening amplifies, was most of the error,
    up to 3.5 8-bit code values on 10-bit video; split, at most 0.5 (two 10-bit values)."""
    from srpipe.device import compute_threads

    config = {"INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY", "ENABLE_CPU_PINNING": False}
    if compute_threads():
        config["INFERENCE_NUM_THREADS"] = compute_threads()
    request = core().compile_model(model, "CPU", config).create_infer_request()
    bf16 = precision == "bf16"

    def convolved(x: np.ndarray) -> np.ndarray:
        return request.infer({0: split(x) if bf16 else x})[0]

    return convolved


def _prepare(precision: str):
    def prepare(network, device: str, key: str | None = None):
        """Convert ``network`` (its input split in bfloat16) and keep the conversion under
        ``key``, so that later runs start without torch (:func:`load_prepared`)."""
        model = _converted(split_input(network) if precision == "bf16" else network)
        if key:
            try:
                _keep(model, _cached_name(key, precision))
            except Exception:  # no room to save it in (OpenVINO raises RuntimeError): this run still works
                pass
        return _runner(model, precision)

    return prepare


def _load_prepared(precision: str):
    def load_prepared(key: str, device: str):
        """The network that :func:`prepare` kept under ``key``, or None (then it converts it again)."""
        name, what = _cached_name(key, precision), f"OpenVINO network for checkpoint {key[:16]} ({precision})"
        graph = cache.read_recorded("openvino", f"{name}.xml", what)
        weights = cache.read_recorded("openvino", f"{name}.bin", what) if graph is not None else None
        if weights is None:
            return None
        try:
            model = core().read_model(graph, weights)
        except RuntimeError:  # what this srpipe wrote, yet OpenVINO cannot read it: converted again
            return None
        return _runner(model, precision)

    return load_prepared


# int8 --------------------------------------------------------------------------------------------

#: Linux's names (/proc/cpuinfo) of the instructions that make int8 convolutions fast: the dot
#: products of VNNI and AMX, and AVX2's multiply-adds, with which OpenVINO ran the fast network's
#: int8 graph faster than float32, within the quality gate (docs/backends.md). Without them (an
#: older CPU, or not x86) int8 is not used.
INT8_FLAGS = frozenset({"avx2", "avx512_vnni", "avx_vnni", "amx_int8"})
#: What the int8 graph's float parts (the first and last convolutions, the pixel shuffle) compute
#: in: float32, as the gate measured it (bfloat16, the default on AMX CPUs, would round the input).
INT8_PRECISION = "f32"


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags as Linux lists them; none elsewhere (then int8 is not used)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as info:
            for line in info:
                if line.startswith("flags"):
                    return frozenset(line.partition(":")[2].split())
    except OSError:
        pass
    return frozenset()


def has_fast_int8() -> bool:
    """Whether this CPU has instructions that run int8 convolutions fast (INT8_FLAGS) and
    OpenVINO can be imported."""
    return bool(INT8_FLAGS & cpu_flags()) and is_available()


def int8_paths(folder: Path, stem: str) -> tuple[Path, Path, Path]:
    """The int8 graph (.xml, .bin) made from the checkpoint ``stem``.pt, and its record (.json)."""
    return tuple(Path(folder, f"{stem}.int8.{suffix}") for suffix in ("xml", "bin", "json"))


def shipped_int8(key: str, folder: Path | None = None):
    """The OpenVINO model of the int8 graph shipped (in ``folder``, default the shipped weights')
    for the checkpoint whose SHA-256 is ``key``, or None. A graph is read only where its record
    names ``key`` and both files match the record's SHA-256 (a warning names one that does not)."""
    from srpipe.default_plugins.espcn.shipped import WEIGHTS_DIR

    folder = Path(folder or WEIGHTS_DIR)
    for record_path in sorted(folder.glob("*.int8.json")):
        try:
            record = json.loads(record_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(record, dict) or record.get("checkpoint_sha256") != key:
            continue
        xml, binary, _ = int8_paths(folder, record_path.name[:-len(".int8.json")])
        try:
            graph, weights = xml.read_bytes(), binary.read_bytes()
        except OSError:
            return None
        if (hashlib.sha256(graph).hexdigest(), hashlib.sha256(weights).hexdigest()) != (
                record.get("xml_sha256"), record.get("bin_sha256")):
            warnings.warn(f"{xml.name} or {binary.name} in {folder} does not match its record {record_path.name}; "
                          "the int8 graph is not used (reinstall srpipe)", stacklevel=2)
            return None
        try:
            return core().read_model(graph, weights)
        except RuntimeError:  # an older OpenVINO that cannot read it: the fallback runs
            return None
    return None


def _int8_runner(model):
    """:func:`_runner` for an int8 graph. OpenVINO 2026.4's CPU plugin crashes (SIGSEGV) running
    one on an input of 4 pixels or fewer (1x1 to 2x2, 1x4, 4x1): only a frame that small gives
    such a piece, and it goes in edge-extended to 3x3, its own pixels cropped from the output."""
    import numpy as np

    convolved = _runner(model, INT8_PRECISION)

    def int8_convolved(x: np.ndarray) -> np.ndarray:
        h, w = x.shape[-2:]
        if h * w > 4:
            return convolved(x)
        y = convolved(np.pad(x, ((0, 0), (0, 0), (0, max(3 - h, 0)), (0, max(3 - w, 0))), mode="edge"))
        scale = y.shape[-1] // max(w, 3)
        return np.ascontiguousarray(y[:, :, :h * scale, :w * scale])

    return int8_convolved


def _fallback() -> Backend:
    """What ``auto`` picks where int8 is not: bfloat16 where native, else float32."""
    return OPENVINO_BF16 if has_native_bf16() else OPENVINO


def _named(convolved, backend: Backend):
    """``convolved`` marked as run by ``backend`` (``Backend``: the upscaler reports that one)."""
    convolved.backend = backend.name
    return convolved


def _prepare_int8(network, device: str, key: str | None = None):
    """The shipped int8 graph of the checkpoint ``key``; without one, the fallback's network."""
    model = shipped_int8(key) if key else None
    if model is None:
        fallback = _fallback()
        return _named(fallback.prepare(network, device, key=key), fallback)
    return _named(_int8_runner(model), OPENVINO_INT8)


def _load_prepared_int8(key: str, device: str):
    """The shipped int8 graph of the checkpoint ``key``, else what the fallback kept for it: no
    torch either way."""
    model = shipped_int8(key)
    if model is None:
        fallback = _fallback()
        convolved = fallback.load_prepared(key, device)
        return _named(convolved, fallback) if convolved is not None else None
    return _named(_int8_runner(model), OPENVINO_INT8)


# Tiles of 640 LR pixels: OpenVINO fuses each convolution with its PReLU, so small tiles gain
# nothing, and they ran as fast as whole frames in less memory (docs/design-notes.md).
OPENVINO = Backend(
    name="openvino",
    devices=("cpu",),
    priority=20,
    is_available=is_available,
    prepare=_prepare("f32"),
    load_prepared=_load_prepared("f32"),
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
    load_prepared=_load_prepared("bf16"),
    description="OpenVINO on the CPU, bfloat16 (CPUs with AVX512_BF16 or AMX)",
    install_hint="it needs OpenVINO and a CPU with AVX512_BF16 or AMX",
    tile=640,
)


# Above bfloat16: faster where the gate accepted a graph (docs/backends.md).
OPENVINO_INT8 = Backend(
    name="openvino-int8",
    devices=("cpu",),
    priority=40,
    is_available=has_fast_int8,
    prepare=_prepare_int8,
    load_prepared=_load_prepared_int8,
    description="OpenVINO on the CPU, int8 graphs shipped for srpipe's networks (CPUs with AVX2, VNNI or AMX); "
                "other weights run as auto would otherwise pick",
    install_hint="it needs OpenVINO and a CPU with AVX2, AVX512_VNNI, AVX_VNNI or AMX_INT8",
    tile=640,
    exact=False,
)


@hookimpl
def register_backends(register):
    register(OPENVINO)
    register(OPENVINO_BF16)
    register(OPENVINO_INT8)
