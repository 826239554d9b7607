"""What a command imports: start-up time is most of a short clip's, so classical models never
load torch, OpenVINO or the plotting libraries, --help, listings and every error a user can
make not even NumPy or PyAV, and a neural model run a second time starts without torch."""

import json
import os
import subprocess
import sys

import pytest

from srpipe.testing import make_test_image, make_test_video

HEAVY = ("torch", "torchvision", "openvino", "openvino.tools.ovc", "matplotlib", "sklearn", "scipy", "einops",
         "onnxruntime", "ray")

# Runs the CLI in a fresh interpreter and writes its exit code and the heavy modules it loaded.
_PROBE = """
import json, sys
from srpipe.cli import main
report, argv, heavy = sys.argv[1], sys.argv[2:], {heavy!r}
try:
    main(argv)
except SystemExit as exc:
    code = exc.code
with open(report, "w") as file:
    json.dump({{"code": code, "loaded": sorted(m for m in heavy if m in sys.modules),
               "cv2": "cv2" in sys.modules, "compiler": "torch._dynamo" in sys.modules,
               "media_libraries": sorted(m for m in ("numpy", "av") if m in sys.modules)}}, file)
""".format(heavy=HEAVY)


def probe(tmp_path, *args, env=None):
    report = tmp_path / "report.json"
    done = subprocess.run([sys.executable, "-c", _PROBE, str(report), *map(str, args)], capture_output=True,
                          env={**os.environ, **(env or {})}, timeout=300)
    assert report.exists(), done.stderr.decode()
    return json.loads(report.read_text()), done.stderr.decode()


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_test_video(tmp_path_factory.mktemp("clip") / "tiny.mp4", width=64, height=64, frames=3)


@pytest.mark.parametrize("model", ["bicubic", "lanczos"])
def test_a_classical_upscale_loads_nothing_heavy(tmp_path, clip, model):
    result, stderr = probe(tmp_path, "upscale", clip, "-m", model, "-o", tmp_path / "out.mp4", "-q")
    assert result["code"] in (0, None), stderr
    assert result["loaded"] == [] and not result["cv2"]  # video chroma goes through swscale too
    assert (tmp_path / "out.mp4").stat().st_size > 0


def test_a_still_image_loads_no_pyav(tmp_path):
    """Images are read, resized and written by OpenCV: PyAV's libraries would only cost each
    file of a shell loop their loading time."""
    image = make_test_image(tmp_path / "in.png", width=32, height=24)
    result, stderr = probe(tmp_path, "upscale", image, "-o", tmp_path / "out.png", "-q")
    assert result["code"] in (0, None), stderr
    assert result["loaded"] == [] and result["media_libraries"] == ["numpy"]
    assert (tmp_path / "out.png").stat().st_size > 0


@pytest.mark.parametrize("args", [
    ["--help"],
    ["upscale", "--help"],
    ["models", "list"],
    ["plugins"],
])
def test_help_and_listings_load_neither_models_nor_media_libraries(tmp_path, args):
    result, stderr = probe(tmp_path, *args)
    assert result["code"] in (0, None), stderr
    assert result["loaded"] == [] and not result["cv2"] and result["media_libraries"] == []


@pytest.mark.parametrize("case", ["output exists", "output is a folder", "missing input", "unknown model", "bad scale"])
def test_errors_come_before_any_model_loads(tmp_path, clip, case):
    (tmp_path / "exists.mp4").write_bytes(b"keep me")
    args = {
        "output exists": [clip, "-o", tmp_path / "exists.mp4"],
        "output is a folder": [clip, "-o", tmp_path],
        "missing input": [tmp_path / "missing.mp4"],
        "unknown model": [clip, "-m", "nosuch"],
        "bad scale": [clip, "-s", "7"],
    }[case]
    result, stderr = probe(tmp_path, "upscale", "-m", "espcn", *args)
    assert result["code"] == 1 and stderr.startswith("Error: ") and stderr.count("\n") == 1, stderr
    assert result["loaded"] == [] and result["media_libraries"] == []
    assert (tmp_path / "exists.mp4").read_bytes() == b"keep me"


@pytest.mark.parametrize("case", ["missing input folder", "output is a file"])
def test_batch_path_errors_load_no_media_libraries(tmp_path, case):
    (tmp_path / "in").mkdir()
    (tmp_path / "file").write_bytes(b"keep me")
    folders = {"missing input folder": [tmp_path / "nodir", tmp_path / "out"],
               "output is a file": [tmp_path / "in", tmp_path / "file"]}[case]
    result, stderr = probe(tmp_path, "batch", *folders)
    assert result["code"] == 1 and stderr.startswith("Error: ") and stderr.count("\n") == 1, stderr
    assert result["loaded"] == [] and result["media_libraries"] == []
    assert (tmp_path / "file").read_bytes() == b"keep me"


def test_a_neural_model_seen_before_starts_without_torch(tmp_path, clip):
    env = {"SRPIPE_CACHE_DIR": str(tmp_path / "cache")}
    outputs = []
    for run in ("first", "second"):
        out = tmp_path / f"{run}.mp4"
        result, stderr = probe(tmp_path, "upscale", clip, "-m", "espcn", "-o", out, "-q", env=env)
        assert result["code"] in (0, None), stderr
        outputs.append((result, out.read_bytes()))
    (first, first_bytes), (second, second_bytes) = outputs
    assert "torch" in first["loaded"]  # converted once from the checkpoint
    assert second["loaded"] == ["openvino"]  # then read from the cache, without OpenVINO's converter
    assert first_bytes == second_bytes


@pytest.mark.parametrize("preset", [None, "28"])
def test_openblas_threads_sleep_unless_the_user_says_otherwise(preset):
    """NumPy's and OpenCV's OpenBLAS threads spin for about 2**28 cycles after they start and
    after each job, time x264 needs on a small machine: the CLI sets their timeout before NumPy
    loads, and keeps a value the user set."""
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    if preset:
        env["OPENBLAS_THREAD_TIMEOUT"] = preset
    # what the variable holds at the moment NumPy (and with it OpenBLAS) starts to load
    code = """
import os, sys
class Watch:
    def find_spec(self, name, path=None, target=None):
        if name == "numpy":
            print(os.environ.get("OPENBLAS_THREAD_TIMEOUT"))
import_watch = Watch()
sys.meta_path.insert(0, import_watch)
import srpipe.cli
import numpy  # as a command that needs it loads it, later
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().strip() == (preset or "4")


@pytest.mark.parametrize("model", ["espcn", "espcn-clean"])
def test_a_torch_run_does_not_load_torchs_compiler(tmp_path, clip, model):
    """torch._dynamo takes seconds to import: loading and running a network never needs it."""
    result, stderr = probe(tmp_path, "upscale", clip, "-m", model, "--backend", "torch", "-o", tmp_path / "o.mp4", "-q")
    assert result["code"] in (0, None), stderr
    assert "torch" in result["loaded"] and not result["compiler"]


def test_the_openvino_cache_is_checked_before_use(tmp_path, monkeypatch):
    """A later run reads the converted network; a card that disagrees with it, a damaged graph
    or an unwritable cache only cost a new conversion, never a wrong or failed run."""
    import json as json_

    import numpy as np

    from srpipe.default_plugins.espcn.openvino_backend import OPENVINO
    from srpipe.default_plugins.espcn.shipped import shipped_weights
    from srpipe.default_plugins.espcn.upscaler import ESPCNUpscaler

    monkeypatch.setenv("SRPIPE_CACHE_DIR", str(tmp_path / "cache"))
    luma = (np.random.default_rng(0).random((2, 40, 50)) * 255).astype(np.uint8)

    def run():
        upscaler = ESPCNUpscaler(shipped_weights(2), backend=OPENVINO)
        return upscaler, upscaler.upscale(luma, bit_depth=8, full_range=False)

    first, want = run()
    assert first.network is not None  # converted from the checkpoint
    cached, got = run()
    assert cached.network is None and np.array_equal(got, want)  # read from the cache

    [card] = (tmp_path / "cache" / "networks").iterdir()
    card.write_text(json_.dumps({**json_.loads(card.read_text()), "config": {
        **json_.loads(card.read_text())["config"], "scale": 3}}))
    again, got = run()
    assert again.network is not None and np.array_equal(got, want)

    [graph] = (tmp_path / "cache" / "openvino").glob("*.xml")
    graph.write_text("<net>")
    again, got = run()
    assert again.network is not None and np.array_equal(got, want)

    monkeypatch.setenv("SRPIPE_CACHE_DIR", "/proc/no-cache-here")
    again, got = run()
    assert again.network is not None and np.array_equal(got, want)
