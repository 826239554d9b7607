"""Inference backends: ONNX Runtime and OpenVINO against torch on real frames, the export
cache, --backend on the command line, and how auto chooses."""

import json

import av
import numpy as np
import onnx
import pytest
import torch

from srpipe import hookimpl
from srpipe.backends import Backend, BackendRegistry, numpy_io
from srpipe.default_plugins.espcn import TORCH, TORCH_FP16
from srpipe.default_plugins.espcn.network import ESPCN, ESPCNConfig
from srpipe.default_plugins.espcn.onnxruntime_backend import ONNXRUNTIME
from srpipe.default_plugins.espcn.openvino_backend import (
    OPENVINO,
    OPENVINO_BF16,
    has_fast_int8,
    has_native_bf16,
)
from srpipe.default_plugins.espcn.shipped import shipped_weights
from srpipe.default_plugins.espcn.upscaler import ESPCNUpscaler
from srpipe.errors import SrpipeError
from srpipe.media import SinkOptions
from srpipe.nn.checkpoint import make_checkpoint
from srpipe.testing import make_plugin_manager, make_test_video
from srpipe.upscaling import upscale
from srpipe.video import frame_from_av

from conftest import REPO, run_srpipe
from media import video_info

DISABLE_ORT = {"SRPIPE_DISABLE_PLUGINS": "srpipe.default_plugins.espcn.onnxruntime_backend"}
# the fastest installed (-m espcn at x2 has an int8 graph, so it runs on openvino-int8 too)
AUTO_ON_CPU = "openvino-int8" if has_fast_int8() else "openvino-bf16" if has_native_bf16() else "openvino"
needs_bf16 = pytest.mark.skipif(not has_native_bf16(), reason="this CPU has no bfloat16 instructions")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One export cache for the module, so each network is exported once."""
    folder = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SRPIPE_CACHE_DIR", str(folder))
        yield folder


@pytest.fixture(scope="module")
def frames():
    """Two 720p luma planes of the bundled clip."""
    with av.open(str(REPO / "samples" / "bigbuckbunny.mp4")) as container:
        planes = [frame_from_av(f).planes[0] for i, f in enumerate(container.decode(video=0)) if i in (60, 100)]
    return np.stack(planes)


@pytest.fixture(scope="module")
def torch_upscales():
    """torch's upscales by (scale, bit depth, full range, crop), each computed once for the module:
    the reference that every backend's test compares with."""
    upscalers, done = {}, {}

    def upscaled(part, scale, bit_depth, full_range, crop):
        key = scale, bit_depth, full_range, crop
        if key not in done:
            if scale not in upscalers:
                upscalers[scale] = ESPCNUpscaler(shipped_weights(scale), backend=TORCH)
            done[key] = upscalers[scale].upscale(part, bit_depth=bit_depth, full_range=full_range)
        return done[key]

    return upscaled


def _upscaled_pairs(frames, scale, backend, torch_upscales, count=None, ranges=(False, True)):
    """(reference, backend's) upscales of crops of ``frames`` (the first ``count`` of them) at 8 and
    10 bits, in limited and full range (``ranges``: full_range values)."""
    other = ESPCNUpscaler(shipped_weights(scale), backend=backend)
    ten_bit = (frames.astype(np.uint16) << 2) | (np.roll(frames, 1, axis=2) & 3)
    crops = [(slice(100, 433), slice(200, 657)),  # 333x457: not a multiple of the 192-pixel tile
             (slice(300, 401), slice(500, 650))]  # 101x150: smaller than a tile
    for luma, bit_depth in ((frames, 8), (ten_bit, 10)):
        for full_range in ranges:
            for crop, (rows, cols) in enumerate(crops):
                part = np.ascontiguousarray(luma[:, rows, cols])
                want = torch_upscales(part, scale, bit_depth, full_range, crop).astype(np.int64)[:count]
                got = other.upscale(part[:count], bit_depth=bit_depth, full_range=full_range).astype(np.int64)
                assert got.shape == want.shape == (len(part[:count]), part.shape[1] * scale, part.shape[2] * scale)
                yield bit_depth, want, got


@pytest.mark.parametrize("backend", [ONNXRUNTIME, OPENVINO], ids=lambda b: b.name)
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_float32_backends_match_torch_on_real_frames(cache, frames, torch_upscales, scale, backend):
    # Measured over x2/x3/x4, 8/10-bit, full/limited range, 720p frames and these crops:
    # at most 1 code value apart, on at most 4.2e-6 of the samples (OpenVINO: none differ).
    for _, want, got in _upscaled_pairs(frames, scale, backend, torch_upscales):
        differ = np.abs(got - want)
        assert differ.max() <= 1 and (differ > 0).mean() <= 1e-4


@pytest.mark.parametrize("backend", [pytest.param(OPENVINO_BF16, marks=needs_bf16), TORCH_FP16], ids=lambda b: b.name)
@pytest.mark.parametrize("scale", [2, 4])
def test_reduced_precision_stays_within_one_8_bit_code_value_of_torch(frames, torch_upscales, scale, backend):
    # Measured on these crops (float16 emulated on the CPU, as CUDA computes it): 8-bit,
    # 0.2-0.5% of the samples 1 apart, none further; 10-bit, 1-2.3% 1 apart, up to 2e-6 of
    # them 2 apart (half an 8-bit value), none further. bfloat16 without the split input:
    # up to 14 10-bit values apart. One frame in limited range (full range is scaled at the
    # boundary, as the float32 test checks): float16 emulated on the CPU is slow.
    for bit_depth, want, got in _upscaled_pairs(frames, scale, backend, torch_upscales, count=1, ranges=(False,)):
        differ = np.abs(got - want)
        if bit_depth == 8:
            assert differ.max() <= 1 and (differ > 0).mean() <= 0.01
        else:
            assert differ.max() <= 2 and (differ > 0).mean() <= 0.04 and (differ > 1).mean() <= 1e-5


@pytest.mark.parametrize("backend", [ONNXRUNTIME, OPENVINO, pytest.param(OPENVINO_BF16, marks=needs_bf16)],
                         ids=lambda b: b.name)
def test_tiles_give_the_untiled_output(cache, backend):
    tiled = ESPCNUpscaler(shipped_weights(3), backend=backend, tile=48)
    whole = ESPCNUpscaler(shipped_weights(3), backend=backend, tile=10_000)
    assert tiled.backend == backend.name
    x = np.random.default_rng(0).random((2, 1, 131, 157), dtype=np.float32)
    if backend is OPENVINO_BF16:  # AMX's bfloat16 kernels sum in an order that follows the tile's shape
        differ = np.abs(tiled.run_tiled(x) - whole.run_tiled(x)) * 255
        assert differ.max() <= 1 and (differ > 0).mean() <= 0.01
    else:
        assert np.array_equal(tiled.run_tiled(x), whole.run_tiled(x))


@pytest.mark.parametrize("config", [
    dict(scale=3, features=(8, 4, 8), kernels=(5, 1, 3, 3), activation="prelu", residual=True),
    dict(scale=2, features=(8,), kernels=(3, 3), activation="tanh", shuffle="einops"),
    dict(scale=4, features=(8,), kernels=(3, 3), activation="relu", padding_mode="reflect"),
    dict(scale=2, features=(8, 8), kernels=(3, 3, 3), activation="prelu", residual=True, unshuffle=2),  # odd sizes
])
@pytest.mark.parametrize("backend", [ONNXRUNTIME, OPENVINO], ids=lambda b: b.name)
def test_every_espcn_variant_converts(cache, config, backend):
    torch.manual_seed(0)
    net = ESPCN(ESPCNConfig(**config))
    for p in net.parameters():  # trained-looking weights, PReLU slopes above 1 and below 0 included
        p.data.normal_(0, 0.5)
    ckpt = make_checkpoint(net)
    x = np.random.default_rng(0).random((2, 1, 53, 71), dtype=np.float32)
    want = ESPCNUpscaler(ckpt, backend=TORCH).run_tiled(x)
    got = ESPCNUpscaler(ckpt, backend=backend).run_tiled(x)
    assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()  # float32 rounding only (measured 2e-6)


def test_the_export_is_cached_and_a_damaged_one_redone(tmp_path, monkeypatch):
    import srpipe.default_plugins.espcn.onnx_export as onnx_export

    monkeypatch.setenv("SRPIPE_CACHE_DIR", str(tmp_path))
    ckpt = make_checkpoint(ESPCN(ESPCNConfig(scale=2, features=(8,), kernels=(3, 3), activation="prelu")))
    x = np.random.default_rng(0).random((1, 1, 20, 30), dtype=np.float32)
    first = ESPCNUpscaler(ckpt, backend=ONNXRUNTIME).run_tiled(x)
    [cached] = (tmp_path / "onnx").iterdir()
    assert cached.name == f"{onnx_export.network_digest(ESPCNUpscaler(ckpt).network)}.onnx"
    assert [n.op_type for n in onnx.load(cached).graph.node].count("PRelu") == 0  # rewritten for NCHWc

    export = onnx_export.export_convolved
    monkeypatch.setattr(onnx_export, "export_convolved", lambda network: pytest.fail("exported again"))
    assert np.array_equal(ESPCNUpscaler(ckpt, backend=ONNXRUNTIME).run_tiled(x), first)

    cached.write_bytes(b"not a model")
    monkeypatch.setattr(onnx_export, "export_convolved", export)
    assert np.array_equal(ESPCNUpscaler(ckpt, backend=ONNXRUNTIME).run_tiled(x), first)
    onnx.checker.check_model(onnx.load(cached))
    assert sorted(p.name for p in (tmp_path / "onnx").iterdir()) == [cached.name]  # no temporary files left


def _upscale(clip, *args, env=None):
    done = run_srpipe("upscale", clip, "-m", "espcn", "--json", "-q", "--overwrite", *args, env=env)
    assert done.returncode == 0, done.stderr.decode()
    return json.loads(done.stdout)


def test_backend_on_the_command_line(cache, cli_run, tmp_path):
    """In this process (the module's export cache); the real processes are the tests below."""
    clip = make_test_video(tmp_path / "clip.mp4", frames=3)

    def backend(*args):
        done = cli_run("upscale", clip, "--json", "-q", "--overwrite", *args)
        assert done.exit_code == 0, done.stderr
        return json.loads(done.stdout)["backend"]

    assert backend("-m", "espcn", "--backend", "onnxruntime") == "onnxruntime"
    info = video_info(tmp_path / "clip_x2.mp4")
    assert (info["width"], info["height"], len(info["times"])) == (128, 96, 3)
    assert backend("-m", "espcn", "--backend", "torch") == "torch"
    assert backend("-m", "espcn", "--backend", "openvino") == "openvino"
    assert backend("-m", "espcn") == AUTO_ON_CPU
    assert backend("-m", "bicubic", "--backend", "onnxruntime") is None  # not a neural model


def test_openvino_runs_without_telemetry(tmp_path):
    """OpenVINO's converter would report itself from forked processes (which could hang srpipe
    at exit) and write its client id under ~/intel; srpipe keeps it quiet."""
    clip = make_test_video(tmp_path / "clip.mp4", frames=2, audio=False)
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home), "CI": "", "TF_BUILD": "", "JENKINS_URL": ""}  # what would switch it off anyway
    assert _upscale(clip, "--backend", "openvino", env=env)["backend"] == "openvino"
    assert list(home.iterdir()) == []


def test_unknown_or_missing_backend_is_a_one_line_error(tmp_path):
    clip = make_test_video(tmp_path / "clip.mp4", frames=2, audio=False)
    done = run_srpipe("upscale", clip, "-m", "espcn", "--backend", "tensorrt")
    assert done.returncode == 1
    assert done.stderr.decode().splitlines() == [
        "Error: unknown backend 'tensorrt'; available: auto, openvino-int8, openvino-bf16, openvino, torch, "
        "onnxruntime, torch-fp16, torch-compile"]
    done = run_srpipe("upscale", clip, "-m", "espcn", "--backend", "onnxruntime", env=DISABLE_ORT)
    assert done.stderr.decode().splitlines() == [
        "Error: unknown backend 'onnxruntime'; available: auto, openvino-int8, openvino-bf16, openvino, torch, "
        "torch-fp16, torch-compile"]
    done = run_srpipe("upscale", clip, "-m", "espcn", "--backend", "torch-fp16", "--device", "cpu")
    assert done.stderr.decode().splitlines() == [
        f"Error: backend torch-fp16 runs on cuda, not cpu; use --backend {AUTO_ON_CPU}"]
    fake = tmp_path / "site" / "onnxruntime"  # shadows the installed one
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('no onnxruntime here')\n")
    env = {"PYTHONPATH": str(tmp_path / "site")}
    done = run_srpipe("upscale", clip, "-m", "espcn", "--backend", "onnxruntime", env=env)
    assert done.returncode == 1
    assert done.stderr.decode().splitlines() == [
        f"Error: onnxruntime is not available here (pip install 'srpipe[onnx]'); use --backend {AUTO_ON_CPU}"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "site"]  # the failed runs left nothing
    assert _upscale(clip, env=env)["backend"] == AUTO_ON_CPU  # auto without it
    (tmp_path / "site" / "openvino").mkdir()
    (tmp_path / "site" / "openvino" / "__init__.py").write_text("raise ImportError('no openvino here')\n")
    assert _upscale(clip, env=env)["backend"] == "torch"  # nor OpenVINO
    done = run_srpipe("upscale", clip, "-m", "espcn", "--backend", "openvino-bf16", "--overwrite", env=env)
    assert done.stderr.decode().splitlines() == ["Error: openvino-bf16 is not available here "
                                                 "(it needs OpenVINO and a CPU with AVX512_BF16 or AMX); "
                                                 "use --backend torch"]


def _backend(name, devices=("cpu",), priority=0, available=True, prepare=lambda network, device: network.convolved):
    return Backend(name, devices, priority, lambda: available, prepare)


def test_auto_is_the_available_backend_of_highest_priority_for_the_device():
    registry = BackendRegistry()
    registry.register(_backend("torch", ("cpu", "cuda")), plugin="a")
    registry.register(_backend("fast", priority=10), plugin="b")
    registry.register(_backend("fastest", priority=20, available=False), plugin="c")
    assert registry.select("auto", "cpu").name == "fast"
    assert registry.select("auto", "cuda:1").name == "torch"
    assert registry.select("fast", "cpu").plugin == "b"
    with pytest.raises(SrpipeError, match="^backend fast runs on cpu, not cuda; use --backend torch$"):
        registry.select("fast", "cuda")
    with pytest.raises(SrpipeError, match="^fastest is not available here; use --backend fast$"):
        registry.select("fastest", "cpu")
    with pytest.raises(ValueError, match="already registered"):
        registry.register(_backend("fast"), plugin="d")
    with pytest.raises(SrpipeError, match="no inference backend is available here for cpu"):
        BackendRegistry().select("auto", "cpu")


def test_a_plugin_registers_a_backend_with_the_register_backends_hook(cli_run, tmp_path):
    rows = json.loads(cli_run("models", "backends", "--json").stdout)
    assert [(r["name"], r["devices"], r["priority"], r["available"]) for r in rows] == [
        ("openvino-int8", ["cpu"], 40, has_fast_int8()), ("openvino-bf16", ["cpu"], 30, has_native_bf16()),
        ("openvino", ["cpu"], 20, True),
        ("torch", ["cpu", "cuda"], 10, True), ("onnxruntime", ["cpu"], 5, True), ("torch-fp16", ["cuda"], 5, True),
        ("torch-compile", ["cuda"], 1, True)]
    hooks = {p["name"]: p["hooks"] for p in json.loads(cli_run("plugins", "--json").stdout)}
    assert hooks["srpipe.default_plugins.espcn.onnxruntime_backend"] == ["register_backends"]

    calls = []

    def prepare(network, device):
        calls.append(device)
        return numpy_io(network.convolved)  # numpy arrays on the CPU

    class FasterPlugin:
        @hookimpl
        def register_backends(self, register):
            register(_backend("faster", priority=40, prepare=prepare))

    pm = make_plugin_manager()
    pm.register(FasterPlugin())
    clip = make_test_video(tmp_path / "clip.mp4", frames=2, audio=False)
    assert upscale(str(clip), model="espcn", device="cpu", pm=pm).backend == "faster"  # auto
    assert upscale(str(clip), model="espcn", device="cpu", backend="torch", pm=pm, sink_options=SinkOptions(
        overwrite=True)).backend == "torch"
    assert calls == ["cpu"]


def test_eval_scores_the_same_on_every_float32_backend(cache, cli_run, tmp_path):
    import cv2

    from srpipe.testing import test_pattern

    for index in range(2):
        cv2.imwrite(str(tmp_path / f"{index}.png"), cv2.GaussianBlur(test_pattern(96, 72, index), (3, 3), 0.8))
    scores = {}
    for backend in ("torch", "onnxruntime", "openvino"):
        done = cli_run("eval", "-m", "espcn-x2", "--data", tmp_path, "--backend", backend, "--json")
        assert done.exit_code == 0, done.stderr
        scores[backend] = json.loads(done.stdout)["mean"]["psnr"]
    assert scores["onnxruntime"] == pytest.approx(scores["torch"], abs=0.01)
    assert scores["openvino"] == pytest.approx(scores["torch"], abs=0.01)


def test_live_and_bench_take_a_backend(cache, cli_run, tmp_path):
    clip = make_test_video(tmp_path / "clip.mp4", frames=4, audio=False)
    done = cli_run("live", "--source", clip, "--no-window", "-m", "espcn", "--backend", "onnxruntime")
    assert done.exit_code == 0, done.stderr
    # --no-startup: the whole commands on a tiny clip take no backend
    done = cli_run("bench", clip, "-m", "bicubic", "-m", "espcn", "--backend", "torch", "--backend", "onnxruntime",
                   "--batch-size", "2", "--repeats", "1", "--no-startup", "--json")
    assert done.exit_code == 0, done.stderr
    report = json.loads(done.stdout)
    rows = [(r["stage"], r["model"], r.get("backend")) for r in report["results"] if r["model"] != "bicubic"]
    assert rows[1:6] == [("upscale", "espcn", "torch"), ("upscale", "espcn", "onnxruntime"), ("encode", None, None),
                         ("end-to-end", "espcn", "torch"), ("end-to-end", "espcn", "onnxruntime")]
    assert report["matmul_gflops"] > 0
    assert all(r["pct_of_matmul"] > 0 for r in report["results"] if r["stage"] == "upscale" and r["model"] == "espcn")


def test_bfloat16_rounding_in_numpy_is_torchs():
    from srpipe.default_plugins.espcn.openvino_backend import bfloat16_rounded

    rng = np.random.default_rng(0)
    x = np.concatenate([rng.standard_normal(100_000).astype(np.float32) * 10.0 ** rng.integers(-8, 8, 100_000),
                        np.array([0.0, -0.0, 1.0, 1 + 2**-8, 1 + 3 * 2**-8, -(1 + 2**-8), 3.4e38, 1e-40],
                                 np.float32)])  # ties to even both ways, overflow, a subnormal
    want = torch.from_numpy(x).to(torch.bfloat16).float().numpy()
    assert np.array_equal(bfloat16_rounded(x).view(np.uint32), want.view(np.uint32))


_CTRL_C_AFTER_OPENVINO = """
import os, signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal: a background job's is ignored
from srpipe.media import SinkOptions
from srpipe.upscaling import upscale
for exact in (False, True):  # the fast network in int8 (or its fallback) and the video weights: several networks
    upscale(sys.argv[1], sys.argv[2], model="espcn", scale=2, device="cpu", threaded=False, exact=exact,
            sink_options=SinkOptions(codec="ffv1", crf=None, preset=None, overwrite=True))
try:
    os.kill(os.getpid(), signal.SIGINT)
except KeyboardInterrupt:
    print("interrupted")
"""


def test_ctrl_c_after_openvino_networks_stops_python_cleanly(tmp_path):
    """Each OpenVINO Core sets the thread's alternate signal stack and puts the one it found back
    when it goes: Cores ending out of order left it on freed memory, and the next Ctrl-C on that
    thread (srpipe eval runs upscales on the main thread) crashed the process with SIGSEGV."""
    import subprocess
    import sys

    pytest.importorskip("openvino")
    clip = make_test_video(tmp_path / "lossless.mp4", frames=3, width=96, height=64, audio=False,
                           codec_options={"crf": "0", "preset": "ultrafast"})
    done = subprocess.run([sys.executable, "-c", _CTRL_C_AFTER_OPENVINO, str(clip), str(tmp_path / "up.mkv")],
                          capture_output=True, text=True, timeout=300)
    assert (done.returncode, done.stdout.strip()) == (0, "interrupted"), done.stderr[-2000:]
