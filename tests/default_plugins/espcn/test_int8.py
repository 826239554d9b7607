"""The openvino-int8 backend: picked only on CPUs with int8 dot products and never under
--exact, its shipped graph read only when it matches its record, other weights run by the
backend auto would otherwise pick (and reported so), and its output close to float32's."""

import shutil
import warnings

import numpy as np
import pytest
import torch

from srpipe import cache
from srpipe.backends import load_upscaler
from srpipe.default_plugins.espcn import openvino_backend
from srpipe.default_plugins.espcn.network import ESPCN, ESPCNConfig
from srpipe.default_plugins.espcn.openvino_backend import OPENVINO, OPENVINO_INT8, has_native_bf16, int8_paths
from srpipe.default_plugins.espcn.shipped import WEIGHTS_DIR, default_weights, fast_weights
from srpipe.default_plugins.espcn.upscaler import ESPCNUpscaler
from srpipe.errors import SrpipeError
from srpipe.nn.checkpoint import make_checkpoint, save_checkpoint
from srpipe.plugins import collect_backends, collect_models, get_plugin_manager

FALLBACK = "openvino-bf16" if has_native_bf16() else "openvino"  # what auto picks without int8
SHIPPED = default_weights(2)  # the video weights (-m espcn-x2): they have an int8 graph


@pytest.fixture
def cpu(monkeypatch):
    """Set the CPU flags the backend reads."""
    def flags(*names):
        monkeypatch.setattr(openvino_backend, "cpu_flags", lambda: frozenset(names))
    return flags


@pytest.fixture(scope="module")
def backends():
    return collect_backends(get_plugin_manager())


def test_auto_picks_int8_only_where_the_cpu_runs_it_fast(cpu, backends):
    for flag in ("avx2", "avx512_vnni", "avx_vnni", "amx_int8"):  # AVX2: Zen 3 and Intel since Haswell
        cpu("sse4_2", "avx", flag)
        assert backends.select("auto", "cpu").name == "openvino-int8"
    cpu("sse4_2", "avx")  # an older x86 CPU; bfloat16 is OpenVINO's to say
    assert backends.select("auto", "cpu").name == FALLBACK
    with pytest.raises(SrpipeError, match=r"^openvino-int8 is not available here \(it needs OpenVINO and a CPU with "
                                          rf"AVX2, AVX512_VNNI, AVX_VNNI or AMX_INT8\); use --backend {FALLBACK}$"):
        backends.select("openvino-int8", "cpu")


def test_exact_never_gives_int8(cpu, backends):
    cpu("avx512_vnni", "amx_int8")
    assert backends.select("auto", "cpu", exact=True).name == FALLBACK  # what auto picked before int8
    with pytest.raises(SrpipeError, match="^--backend openvino-int8 is not exact; leave out --exact or pick another "
                                          "backend$"):
        backends.select("openvino-int8", "cpu", exact=True)
    spec = collect_models(get_plugin_manager()).get("espcn")
    assert load_upscaler(spec, backends, scale=2, device="cpu", weights=None, exact=True).backend == FALLBACK
    assert load_upscaler(spec, backends, scale=2, device="cpu", weights=None).backend == "openvino-int8"


def _copy_shipped(folder):
    """The x2 checkpoint and its int8 graph and record, copied into ``folder``."""
    folder.mkdir()
    for path in (SHIPPED, *int8_paths(WEIGHTS_DIR, SHIPPED.stem)):
        shutil.copy(path, folder)
    return folder / SHIPPED.name


def test_a_graph_that_does_not_match_its_record_is_not_read(tmp_path, monkeypatch):
    checkpoint = _copy_shipped(tmp_path / "weights")
    monkeypatch.setattr("srpipe.default_plugins.espcn.shipped.WEIGHTS_DIR", tmp_path / "weights")
    key = cache.file_digest(checkpoint)
    assert ESPCNUpscaler(checkpoint, backend=OPENVINO_INT8).backend == "openvino-int8"
    _, binary, _ = int8_paths(tmp_path / "weights", SHIPPED.stem)
    weights = bytearray(binary.read_bytes())
    weights[len(weights) // 2] ^= 0x40  # a weight changed: OpenVINO would read it without a word
    binary.write_bytes(bytes(weights))
    with pytest.warns(UserWarning, match=r"^espcn_video_x2\.int8\.xml or espcn_video_x2\.int8\.bin in .* does not "
                                         r"match its record espcn_video_x2\.int8\.json; the int8 graph is not used"):
        assert openvino_backend.shipped_int8(key) is None
    with pytest.warns(UserWarning, match="does not match its record"):
        upscaler = ESPCNUpscaler(checkpoint, backend=OPENVINO_INT8)  # prepared again: the cached one is not used
    assert upscaler.backend == FALLBACK
    assert openvino_backend.shipped_int8("0" * 64) is None  # a record names one checkpoint only


def _unshipped(path):
    torch.manual_seed(0)
    network = ESPCN(ESPCNConfig(scale=2, features=(8, 4, 8), kernels=(5, 1, 3, 3)))
    save_checkpoint(make_checkpoint(network), path)
    return path


def test_weights_without_an_int8_graph_run_as_auto_would_otherwise_and_say_so(tmp_path, cpu, backends):
    cpu("avx512_vnni")
    weights = _unshipped(tmp_path / "mine.pt")
    spec = collect_models(get_plugin_manager()).get("espcn")
    first = load_upscaler(spec, backends, scale=None, device="cpu", weights=str(weights))
    assert first.network is not None and first.backend == FALLBACK
    again = load_upscaler(spec, backends, scale=None, device="cpu", weights=str(weights))
    assert again.network is None and again.backend == FALLBACK  # from the fallback's cache, without torch
    luma = np.random.default_rng(0).integers(16, 236, (1, 20, 24), dtype=np.uint8)
    plain = ESPCNUpscaler(weights, backend=backends.get(FALLBACK))
    assert np.array_equal(again.upscale(luma, bit_depth=8, full_range=False),
                          plain.upscale(luma, bit_depth=8, full_range=False))


def _drawing(height=90, width=120):
    """Edges, text-like strokes, a gradient and noise: 8-bit limited-range luma."""
    import cv2

    rng = np.random.default_rng(1)
    y = np.tile(np.linspace(30, 200, width), (height, 1))
    y += rng.normal(0, 6, y.shape)
    y = np.clip(y, 16, 235).astype(np.uint8)
    cv2.rectangle(y, (10, 10), (50, 40), 230, -1)
    cv2.circle(y, (80, 55), 22, 20, 2, cv2.LINE_AA)
    cv2.putText(y, "int8 ok", (5, 80), cv2.FONT_HERSHEY_SIMPLEX, 0.5, 16, 1, cv2.LINE_AA)
    return y[None]


@pytest.mark.parametrize("checkpoint", [SHIPPED, fast_weights(2)], ids=["video", "fast"])
def test_int8_output_is_close_to_float32_and_tiles_stay_exact(checkpoint):
    luma = _drawing()
    float32 = ESPCNUpscaler(checkpoint, backend=OPENVINO).upscale(luma, bit_depth=8, full_range=False).astype(float)
    upscaler = ESPCNUpscaler(checkpoint, backend=OPENVINO_INT8)
    assert upscaler.backend == "openvino-int8"
    int8 = upscaler.upscale(luma, bit_depth=8, full_range=False)
    differ = np.abs(int8 - float32)
    # Measured with the shipped graph: 0.24 code values on average, 1% of samples more than 2 apart
    # (up to 16 on the hardest edges, where the histogram ranges clip). The network's residual is
    # worth 2.2 on average here, so a graph that lost it (or garbage) is far outside.
    assert differ.mean() < 0.5 and (differ > 2).mean() < 0.03
    bicubic = ESPCNUpscaler(checkpoint, backend=OPENVINO).upsampled(luma[:, None].astype(np.float32))[:, 0]
    assert np.abs(np.rint(bicubic) - float32).mean() > 1.5
    upscaler.tile = 17  # per-tensor static quantization: a pixel's result does not depend on the tile
    assert np.array_equal(upscaler.upscale(luma, bit_depth=8, full_range=False), int8)


def test_frames_of_a_few_pixels_run_in_int8():
    """OpenVINO 2026.4 crashed (SIGSEGV) on int8 inputs of 4 pixels or fewer: they are extended."""
    upscaler = ESPCNUpscaler(SHIPPED, backend=OPENVINO_INT8)
    float32 = ESPCNUpscaler(SHIPPED, backend=OPENVINO)
    for h, w in ((1, 1), (1, 2), (2, 2), (1, 4), (4, 1), (3, 3)):
        luma = np.full((2, h, w), 120, np.uint8)
        luma[:, 0, 0] = 60
        got = upscaler.upscale(luma, bit_depth=8, full_range=False).astype(int)
        assert got.shape == (2, 2 * h, 2 * w)
        assert np.abs(got - float32.upscale(luma, bit_depth=8, full_range=False)).max() <= 12


def test_the_shipped_record_names_the_shipped_checkpoint():
    import json

    _, _, record = int8_paths(WEIGHTS_DIR, SHIPPED.stem)
    kept = json.loads(record.read_text())
    assert kept["checkpoint_sha256"] == cache.file_digest(SHIPPED)
    assert kept["gate"]["against"]["openvino"]["passed"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert openvino_backend.shipped_int8(kept["checkpoint_sha256"]) is not None
