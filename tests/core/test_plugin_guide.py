"""docs/plugins.md's examples, run: each ```python block whose first line is ``# example: NAME``
is written out as the module NAME, registered with a fresh plugin manager and used as srpipe
uses a plugin (a model upscales a clip, a command runs, a source feeds the pipeline...)."""

import importlib
import inspect
import json
import re
import sys
from fractions import Fraction

import av
import numpy as np
import pytest
from click.testing import CliRunner

import srpipe.plugins
from srpipe.errors import SrpipeError
from srpipe.plugins import collect_backends, collect_models
from srpipe.testing import make_plugin_manager, make_test_video
from srpipe.upscaling import upscale

from conftest import REPO
from media import video_info

GUIDE = REPO / "docs" / "plugins.md"
EXAMPLE = re.compile(r"^```python\n(# example: (?P<name>\w+)\n.*?)^```$", re.MULTILINE | re.DOTALL)


def examples() -> dict[str, str]:
    return {found["name"]: found[1] for found in EXAMPLE.finditer(GUIDE.read_text())}


def test_every_example_in_the_guide_is_run_here():
    run_here = {"srpipe_repeat", "srpipe_try", "srpipe_gradient", "srpipe_npz", "srpipe_torch_eager", "srpipe_tiny_sr",
                "test_srpipe_repeat"}
    assert set(examples()) == run_here
    for name, code in examples().items():
        compile(code, f"docs/plugins.md:{name}", "exec")


@pytest.fixture(scope="module")
def example_folder(tmp_path_factory):
    """The examples as modules, importable by their names."""
    folder = tmp_path_factory.mktemp("examples")
    for name, code in examples().items():
        (folder / f"{name}.py").write_text(code)
    sys.path.insert(0, str(folder))
    yield folder
    sys.path.remove(str(folder))
    for name in examples():
        sys.modules.pop(name, None)


@pytest.fixture
def plugin(example_folder):
    """``plugin(NAME)``: the example module and a fresh manager with it registered."""

    def load(name: str):
        module = importlib.import_module(name)
        pm = make_plugin_manager()
        pm.register(module)
        return module, pm

    return load


@pytest.fixture
def process_wide(monkeypatch):
    """``process_wide(pm)`` makes ``pm`` the manager that ``srpipe.plugins.get_plugin_manager()``
    returns, and so the one srpipe's commands and checkpoints use, until the test ends."""

    def use(pm):
        srpipe.plugins.get_plugin_manager.cache_clear()
        monkeypatch.setattr(srpipe.plugins, "make_plugin_manager", lambda: pm)

    yield use
    srpipe.plugins.get_plugin_manager.cache_clear()


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_test_video(tmp_path_factory.mktemp("clip") / "in.mp4", frames=4)  # 64x48, with audio


def frame_sizes(path) -> list[tuple[int, int]]:
    with av.open(str(path)) as container:
        return [(frame.width, frame.height) for frame in container.decode(video=0)]


def test_model_example_upscales_a_clip(plugin, tmp_path):
    example, pm = plugin("srpipe_repeat")
    spec = collect_models(pm).get("repeat")
    assert (spec.plugin, spec.scales, spec.default_scale, spec.uses_gpu) == ("srpipe_repeat", (2, 3, 4), 2, False)
    clip = make_test_video(tmp_path / "in.mkv", frames=3, pix_fmt="yuv420p10le", codec="ffv1", audio=False)
    result = upscale(str(clip), model="repeat", scale=3, pm=pm)
    assert (result.output, result.device, result.stats.frames_out) == (str(tmp_path / "in_x3.mkv"), "cpu", 3)
    assert frame_sizes(result.output) == [(192, 144)] * 3
    # a backend it named was never shown (only a model with accepts_backend reports one)
    assert result.backend is None and getattr(example.RepeatUpscaler, "backend", None) is None


def test_command_example_runs_in_the_cli(plugin, process_wide):
    _, pm = plugin("srpipe_try")
    process_wide(pm)
    from srpipe.cli import build_cli

    cli, runner = build_cli(), CliRunner()
    done = runner.invoke(cli, ["try", "lanczos", "-s", "3", "--size", "64x48"])
    assert done.exit_code == 0, done.output
    assert re.fullmatch(r"lanczos x3: [\d.]+ ms for one 64x48 frame\n", done.output)
    for args, message in ((["try", "lanczos", "-s", "5"],
                           "model 'lanczos' does not support --scale 5; it supports 2, 3, 4: for more than x4, "
                           "upscale its output again"),
                          (["try", "lanczos", "--size", "big"], "--size big is not WIDTHxHEIGHT; write it as 640x360")):
        done = runner.invoke(cli, args)
        assert (done.exit_code, done.output) == (1, f"Error: {message}\n")
    done = runner.invoke(cli, ["--debug", "try", "lanczos", "--size", "big"])
    assert isinstance(done.exception, SrpipeError)  # raised, for the traceback
    listed = json.loads(runner.invoke(cli, ["plugins", "--json"]).stdout)
    assert {"name": "srpipe_try", "version": "unknown", "hooks": ["register_commands"], "builtin": False} in listed


def test_source_example_feeds_the_pipeline(plugin, tmp_path):
    _, pm = plugin("srpipe_gradient")
    result = upscale("gradient:32x24?frames=5", str(tmp_path / "ramp.mkv"), model="bicubic", pm=pm)
    assert result.stats.frames_out == 5
    info = video_info(tmp_path / "ramp.mkv")
    assert (info["width"], info["height"]) == (64, 48)
    assert info["times"] == [Fraction(i, 25) for i in range(5)]
    with pytest.raises(SrpipeError, match="is a stream; name the output with -o"):
        upscale("gradient:32x24", pm=pm)
    with pytest.raises(SrpipeError, match=re.escape("gradient:big is not gradient:WIDTHxHEIGHT[?frames=N]")):
        upscale("gradient:big", str(tmp_path / "no.mkv"), pm=pm)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ramp.mkv"]


def test_sink_example_writes_the_output(plugin, clip, tmp_path):
    _, pm = plugin("srpipe_npz")
    upscale(str(clip), str(tmp_path / "out.npz"), pm=pm)
    with np.load(tmp_path / "out.npz") as data:
        assert data["luma"].shape == (4, 96, 128) and data["luma"].dtype == np.uint8
        assert (np.diff(data["pts"]) > 0).all()
    with pytest.raises(SrpipeError, match="already exists; pass --overwrite"):  # checked before the sink opens
        upscale(str(clip), str(tmp_path / "out.npz"), pm=pm)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.npz"]


def test_backend_example_is_chosen_with_backend(plugin, process_wide, clip, tmp_path):
    _, pm = plugin("srpipe_torch_eager")
    backends = collect_backends(pm)
    assert backends.find("torch-eager").plugin == "srpipe_torch_eager"
    assert backends.select("auto", "cpu").name != "torch-eager"
    process_wide(pm)
    from srpipe.cli import build_cli

    done = CliRunner().invoke(build_cli(), ["upscale", str(clip), "-o", str(tmp_path / "out.mkv"), "-m", "espcn-x2",
                                            "--backend", "torch-eager", "--device", "cpu", "--json"])
    assert done.exit_code == 0, done.output
    summary = json.loads(done.stdout)
    assert (summary["backend"], summary["scale"], summary["frames"]) == ("torch-eager", 2, 4)
    assert frame_sizes(tmp_path / "out.mkv") == [(128, 96)] * 4


def test_network_example_saves_and_loads_a_checkpoint(plugin, process_wide, clip, tmp_path):
    import torch

    from srpipe.nn.checkpoint import load_checkpoint, make_checkpoint, network_from_checkpoint, save_checkpoint

    module, pm = plugin("srpipe_tiny_sr")
    process_wide(pm)  # checkpoints find architectures through the process-wide manager
    TinySR, TinySRConfig = module.network_classes()
    network = TinySR(TinySRConfig(scale=3, features=4))
    save_checkpoint(make_checkpoint(network, {"epochs": 0}), tmp_path / "tiny.pt")
    checkpoint = load_checkpoint(tmp_path / "tiny.pt")
    assert (checkpoint["arch"], checkpoint["config"]) == ("tiny-sr", {"scale": 3, "features": 4})
    again = network_from_checkpoint(checkpoint, "tiny.pt")
    assert type(again) is TinySR and again.config == network.config
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), network.state_dict().values()))

    result = upscale(str(clip), str(tmp_path / "out.mkv"), model="tiny-sr", weights=str(tmp_path / "tiny.pt"),
                     device="cpu", pm=pm)
    assert result.scale == 3 and frame_sizes(result.output) == [(192, 144)] * 4
    with pytest.raises(SrpipeError, match="tiny-sr ships no weights"):
        upscale(str(clip), str(tmp_path / "none.mkv"), model="tiny-sr", device="cpu", pm=pm)
    with pytest.raises(SrpipeError, match="tiny.pt is an x3 model but --scale 2 was asked for"):
        upscale(str(clip), str(tmp_path / "x2.mkv"), model="tiny-sr", scale=2, weights=str(tmp_path / "tiny.pt"),
                device="cpu", pm=pm)


def test_testing_example_passes(example_folder, tmp_path):
    tests = importlib.import_module("test_srpipe_repeat")
    ran = []
    for name, function in vars(tests).items():
        if name.startswith("test_") and callable(function):
            wants = inspect.signature(function).parameters
            (tmp_path / name).mkdir()
            function(**({"tmp_path": tmp_path / name} if "tmp_path" in wants else {}))
            ran.append(name)
    assert ran == ["test_repeats_each_pixel", "test_is_registered", "test_upscales_a_clip"]
