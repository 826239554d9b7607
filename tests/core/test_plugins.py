"""Plugins: the template installs through its entry point; broken plugins are named and skipped."""

import json
import os
import re
import shutil
import subprocess
import sys
from fractions import Fraction

import pytest
from test_faults import assert_one_line_error

from srpipe import hookspecs
from srpipe.errors import SrpipeError
from srpipe.media import SinkOptions
from srpipe.plugins import DEFAULT_PLUGINS, make_plugin_manager
from srpipe.testing import make_test_video

from conftest import REPO, run_srpipe
from media import video_info
from plugin_helpers import EXITING_PLUGIN, exiting_plugin, fake_plugin

TEMPLATE = REPO / "samples" / "srpipe-nearest"


@pytest.fixture(scope="module")
def nearest_site(tmp_path_factory):
    """The template plugin installed by pip into its own folder (no index, no deps)."""
    site = tmp_path_factory.mktemp("site")
    build = tmp_path_factory.mktemp("build")
    # built from a copy: pip builds a folder in place, and test workers would share its build/
    source = shutil.copytree(TEMPLATE, build / "srpipe-nearest", ignore=shutil.ignore_patterns("build", "*.egg-info"))
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps",
         "--no-build-isolation", "--target", str(site), str(source)],
        check=True, capture_output=True, cwd=build,
    )
    return site


def models_with(site, **env):
    done = run_srpipe("models", "list", "--json", env={"PYTHONPATH": str(site), **env})
    assert done.returncode == 0, done.stderr.decode()
    return {m["name"]: m for m in json.loads(done.stdout)}, done.stderr.decode()


def test_installed_template_is_listed_and_used(nearest_site, tmp_path):
    models, _ = models_with(nearest_site)
    assert models["nearest"]["plugin"] == "nearest" and models["nearest"]["scales"] == [2, 3, 4, 8]
    clip = make_test_video(tmp_path / "in.mp4", frames=4)
    done = run_srpipe("upscale", clip, "--model", "nearest", "--scale", "4", env={"PYTHONPATH": str(nearest_site)})
    assert done.returncode == 0, done.stderr.decode()
    info = video_info(tmp_path / "in_x4.mp4")
    assert (info["width"], info["height"], len(info["times"])) == (256, 192, 4)
    plugins = run_srpipe("plugins", "--json", env={"PYTHONPATH": str(nearest_site)})
    row = next(p for p in json.loads(plugins.stdout) if p["name"] == "nearest")
    assert row == {"name": "nearest", "version": "0.1.0", "hooks": ["register_models"], "builtin": False}


def test_load_and_disable_switches(nearest_site):
    assert "nearest" not in models_with(nearest_site, SRPIPE_LOAD_PLUGINS="")[0]
    assert "nearest" in models_with(nearest_site, SRPIPE_LOAD_PLUGINS="nearest")[0]
    assert "nearest" not in models_with(nearest_site, SRPIPE_DISABLE_PLUGINS="nearest")[0]
    models, _ = models_with(nearest_site, SRPIPE_DISABLE_PLUGINS="srpipe.default_plugins.classic")
    assert "nearest" in models and not {"bicubic", "lanczos"} & set(models)


def test_trace_switch_prints_hook_calls(nearest_site):
    _, stderr = models_with(nearest_site, SRPIPE_TRACE_HOOKS="1")
    assert "register_models" in stderr


@pytest.mark.parametrize("source, reason", [
    ("raise ImportError('needs libfoo')\n", "ImportError: needs libfoo"),
    ("import sys\nsys.exit(3)\n", "SystemExit: 3"),  # it ended every command, silently, with status 3
])
def test_plugin_that_fails_to_import_is_named_and_skipped(tmp_path, source, reason):
    site = fake_plugin(tmp_path / "site", "broken_import", source)
    models, stderr = models_with(site)
    assert f"Warning: plugin 'broken_import' could not be loaded and is skipped: {reason}" in stderr
    assert "bicubic" in models


@pytest.mark.parametrize("body, reason", [
    ("    raise RuntimeError('boom')\n", "and is skipped: RuntimeError: boom"),
    ("    register('not a model')\n",
     "for one entry, which is skipped: TypeError: register() takes a srpipe.models.ModelSpec"),
    ("    register(ModelSpec(name=123, scales=(2,), description='x', load=None))\n",
     "for one entry, which is skipped: ValueError: model name 123 is not a name"),
    ("    register(ModelSpec(name='two words', scales=(2,), description='x', load=None))\n",
     "for one entry, which is skipped: ValueError: model name 'two words' is not a name"),
    ("    register(ModelSpec(name='-s', scales=(2,), description='x', load=None))\n",
     "for one entry, which is skipped: ValueError: model name '-s' is not a name"),
    # True is an int to Python: the model was listed and loaded as 'xTrue'
    ("    register(ModelSpec(name='flag', scales=(True,), description='x', load=None))\n",
     "and is skipped: ValueError: model 'flag': scales must be positive integers"),
])
def test_plugin_that_raises_or_returns_junk_is_skipped(tmp_path, body, reason):
    source = ("from srpipe import hookimpl\nfrom srpipe.models import ModelSpec\n\n@hookimpl\n"
              f"def register_models(register):\n{body}")
    site = fake_plugin(tmp_path / "site", "bad_hook", source)
    models, stderr = models_with(site)
    assert f"plugin 'bad_hook' failed in register_models {reason}" in stderr
    assert {"bicubic", "lanczos"} <= set(models)


LISTED_PLUGIN = """
from srpipe import hookimpl
from srpipe.backends import Backend
from srpipe.models import ModelSpec


@hookimpl
def register_models(register):
    register(ModelSpec(name="listed-box", scales=(2, 3, 4), default_scale=3, description="box blur r1",
                       load=None, uses_gpu=False))


@hookimpl
def register_backends(register):
    register(Backend(name="listed-engine", devices=("cpu",), priority=7, is_available=lambda: False, prepare=None,
                     description="an engine"))
"""


def test_the_text_listings_show_the_default_scale_and_the_backends_priority(tmp_path):
    """The guide promised both; "x2,3,4" left out the default, and no column gave the priority."""
    env = {"PYTHONPATH": str(fake_plugin(tmp_path / "site", "listed", LISTED_PLUGIN))}
    models = run_srpipe("models", "list", env=env).stdout.decode().splitlines()
    assert re.split(r"  +", models[0]) == ["name", "kind", "scales (*default)", "plugin", "description"]
    assert [re.split(r"  +", line) for line in models if line.startswith("listed-box ")] == [
        ["listed-box", "upscaler", "x2,3*,4", "listed", "box blur r1"]]
    assert any(re.split(r"  +", line)[:3] == ["espcn-x3", "upscaler", "x3"] for line in models)  # one scale: no mark
    backends = run_srpipe("models", "backends", env=env).stdout.decode().splitlines()
    assert re.split(r"  +", backends[0]) == ["name", "devices", "priority", "available", "plugin", "description"]
    assert [re.split(r"  +", line) for line in backends if line.startswith("listed-engine ")] == [
        ["listed-engine", "cpu", "7", "no", "listed", "an engine"]]
    # the columns line up under the header
    assert [line.index("  listed  ") + 2 for line in models if line.startswith("listed-box ")] == [
        models[0].index("plugin")]

BROKEN_BACKENDS = """
from srpipe import hookimpl
from srpipe.backends import Backend


def missing_library():
    import libthatdoesnotexist


def failing_prepare(network, device):
    raise RuntimeError("no such engine here")


@hookimpl
def register_backends(register):
    register(Backend(name="raises", devices=("cpu",), priority=1000, is_available=missing_library, prepare=None))
    register(Backend(name="wordy", devices=("cpu",), priority="high", is_available=lambda: True, prepare=None))
    register(Backend(name="failing", devices=("cpu",), priority=0, is_available=lambda: True, prepare=failing_prepare))
"""


def test_a_broken_backend_is_named_and_skipped_and_the_others_run(tmp_path):
    site = fake_plugin(tmp_path / "site", "broken_backends", BROKEN_BACKENDS)
    env = {"PYTHONPATH": str(site)}
    done = run_srpipe("models", "backends", "--json", env=env)
    assert done.returncode == 0, done.stderr.decode()
    rows = {row["name"]: row for row in json.loads(done.stdout)}
    assert rows["raises"]["available"] is False and "wordy" not in rows
    stderr = done.stderr.decode()
    assert "backend 'raises' of plugin 'broken_backends' could not tell whether it is available and is skipped: " \
           "ModuleNotFoundError: No module named 'libthatdoesnotexist'" in stderr
    assert "ValueError: backend 'wordy' has priority 'high'; give a number" in stderr
    assert run_srpipe("--version", env=env).returncode == 0

    clip = make_test_video(tmp_path / "in.mp4", frames=2)
    done = run_srpipe("upscale", clip, "-m", "espcn", "-q", env=env)  # auto passes over it
    assert done.returncode == 0, done.stderr.decode()
    done = run_srpipe("upscale", clip, "-m", "espcn", "--backend", "failing", "-y", "-q", env=env)
    assert done.returncode == 1
    assert done.stderr.decode().splitlines()[-1] == ("Error: backend failing (plugin broken_backends) could not "
                                                     "prepare the network: RuntimeError: no such engine here; use "
                                                     "another --backend")


# Lists the entry points as srpipe finds them, and whether it read every distribution's metadata to do so.
_ENTRY_POINTS = """
import json, sys
from srpipe.plugins import installed_entry_points
found = installed_entry_points()
print(json.dumps({"found": sorted(map(list, found)), "scanned": "importlib.metadata" in sys.modules}))
"""


def test_entry_points_are_kept_and_read_again_when_an_install_changes_them(tmp_path):
    site = fake_plugin(tmp_path / "site", "first", "")
    env = {**os.environ, "PYTHONPATH": str(site), "SRPIPE_CACHE_DIR": str(tmp_path / "cache")}

    def entry_points():
        done = subprocess.run([sys.executable, "-c", _ENTRY_POINTS], capture_output=True, text=True, env=env,
                              cwd=tmp_path, check=True)
        result = json.loads(done.stdout)
        return result["found"], result["scanned"]

    assert entry_points() == ([["first", "first", "1.0"]], True)
    assert entry_points() == ([["first", "first", "1.0"]], False)  # kept: no metadata read
    fake_plugin(site, "second", "")  # installed beside it
    assert entry_points() == ([["first", "first", "1.0"], ["second", "second", "1.0"]], True)
    (site / "first-1.0.dist-info" / "entry_points.txt").write_text("[srpipe]\nrenamed = first:hookimpl\n")
    assert entry_points()[0][0] == ["renamed", "first:hookimpl", "1.0"]  # rewritten in place
    shutil.rmtree(site / "second-1.0.dist-info")  # uninstalled
    assert entry_points() == ([["renamed", "first:hookimpl", "1.0"]], True)

    kept = tmp_path / "cache" / "plugins" / "entry-points.json"
    (setup, entry), = json.loads(kept.read_text()).items()
    damaged_rows = json.dumps({setup: {**entry, "entry_points": [["renamed", 1]]}})
    for damaged in ("{not json", "[]", "[" * 100_000, damaged_rows):
        kept.write_text(damaged)
        assert entry_points() == ([["renamed", "first:hookimpl", "1.0"]], True)
        assert entry_points()[1] is False  # written again whole

    # a newer distribution of the same name earlier on the path, without entry points, hides it
    shadow = tmp_path / "shadow"
    (shadow / "first-2.0.dist-info").mkdir(parents=True)
    (shadow / "first-2.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: first\nVersion: 2.0\n")
    env["PYTHONPATH"] = os.pathsep.join([str(shadow), str(site)])
    assert entry_points() == ([], True)

    env["SRPIPE_CACHE_DIR"] = "/proc/no-cache-here"  # unwritable: every run scans, none fails
    assert entry_points() == ([], True)
    assert entry_points() == ([], True)


def test_the_cache_keeps_entry_points_per_python_path(tmp_path):
    """Two setups (virtual environments, or python -m from two folders) each keep theirs."""
    sites = [fake_plugin(tmp_path / name, name, "") for name in ("one", "two")]
    cache = tmp_path / "cache"

    def scanned(site):
        env = {**os.environ, "PYTHONPATH": str(site), "SRPIPE_CACHE_DIR": str(cache)}
        done = subprocess.run([sys.executable, "-c", _ENTRY_POINTS], capture_output=True, text=True, env=env,
                              cwd=tmp_path, check=True)
        return json.loads(done.stdout)["scanned"]

    assert [scanned(site) for site in sites] == [True, True]
    assert [scanned(site) for site in sites * 2] == [False] * 4


NESTED_PLUGIN = """
from srpipe import hookimpl


class Plugin:
    class Inner:
        @staticmethod
        @hookimpl
        def register_models(register):
            raise RuntimeError("inner ran")
"""


def test_an_entry_point_naming_an_attribute_loads_that_object(tmp_path):
    site = fake_plugin(tmp_path / "site", "nested", NESTED_PLUGIN)
    entry_points = site / "nested-1.0.dist-info" / "entry_points.txt"
    entry_points.write_text("[srpipe]\nnested = nested : Plugin.Inner [extra]\n")
    _, stderr = models_with(site)
    assert "plugin 'nested' failed in register_models and is skipped: RuntimeError: inner ran" in stderr


def test_builtins_are_registered_like_third_party_plugins():
    pm = make_plugin_manager()
    names = {name for name, _ in pm.list_name_plugin()}
    assert set(DEFAULT_PLUGINS) <= names


def test_every_hook_is_documented_and_tested():
    guide = (REPO / "docs" / "plugins.md").read_text()
    tests = "".join(p.read_text() for p in (REPO / "tests").rglob("test_*.py"))
    hooks = [name for name in dir(hookspecs) if hasattr(getattr(hookspecs, name), "srpipe_spec")]
    assert hooks == ["open_sink", "open_source", "register_backends", "register_commands", "register_models",
                     "register_networks"]
    for hook in hooks:
        assert f"`{hook}(" in guide, f"{hook} is not in docs/plugins.md, the plugin guide"
        assert hook in tests.replace("test_every_hook", ""), f"no test uses {hook}"


PATTERN_PLUGIN = '''
import click
import numpy as np
from fractions import Fraction
from srpipe import hookimpl
from srpipe.frames import PLANE_FORMATS, Frame
from srpipe.errors import SrpipeError
from srpipe.media import Sink, Source


class PatternSource(Source):
    is_file = False

    def __init__(self, location):
        self.location = location
        self.width, self.height = (int(v) for v in location.split(":")[1].split("x"))
        self.frame_count = 3

    def items(self):
        for index in range(3):
            if index == 2 and self.location.endswith(":fail"):
                raise SrpipeError(f"{self.location} fails at frame 3")
            y = np.full((self.height, self.width), 16 + 60 * index, np.uint8)
            chroma = np.full((self.height // 2, self.width // 2), 128, np.uint8)
            yield Frame((y, chroma, chroma), PLANE_FORMATS["yuv420p"], False, pts=index, time_base=Fraction(1, 10))


class CountingSink(Sink):
    def __init__(self, location):
        self.location = location
        self.sizes = []

    def write_frame(self, frame):
        self.sizes.append((frame.width, frame.height, int(frame.planes[0].mean())))

    def finish(self):
        print("counted", self.sizes)

    def abort(self):
        pass


class SinkFailingToAbort(CountingSink):
    def abort(self):
        raise RuntimeError("abort failed too")


@hookimpl
def open_source(location, options):
    return PatternSource(location) if location.startswith("pattern:") else None


@hookimpl
def open_sink(location, source, options):
    return {"count:": CountingSink, "count-abort-fails:": SinkFailingToAbort}.get(location, lambda _: None)(location)


@hookimpl
def register_commands(cli):
    @cli.command()
    def hello():
        """Say hello."""
        click.echo("hello from a plugin")
'''


def test_plugin_sources_sinks_and_commands(tmp_path):
    site = fake_plugin(tmp_path / "site", "pattern_plugin", PATTERN_PLUGIN)
    env = {"PYTHONPATH": str(site)}
    assert run_srpipe("hello", env=env).stdout == b"hello from a plugin\n"
    done = run_srpipe("upscale", "pattern:8x6", "-o", "count:", "-q", env=env)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == b"counted [(16, 12, 16), (16, 12, 76), (16, 12, 136)]\n"
    done = run_srpipe("upscale", "pattern:8x6", "-o", tmp_path / "p.mp4", "-q", env=env)
    assert done.returncode == 0, done.stderr.decode()
    assert video_info(tmp_path / "p.mp4")["times"] == [Fraction(0), Fraction(1, 10), Fraction(2, 10)]
    # the error that came first is the one told, whatever the sink's cleanup then does
    done = run_srpipe("upscale", "pattern:8x6:fail", "-o", "count-abort-fails:", "-q", env=env)
    assert done.returncode == 1
    assert done.stderr.decode().splitlines() == [
        "Warning: sink SinkFailingToAbort (count-abort-fails:) of plugin 'pattern_plugin' (1.0) could not remove "
        "what it had written: RuntimeError: abort failed too",
        "Error: pattern:8x6:fail fails at frame 3"]


def test_a_model_taking_a_backend_may_leave_the_backend_trait_out(tmp_path):
    """``backend`` is one of the optional UpscalerTraits: its absence must not fail a run whose output is written."""

    from srpipe import hookimpl
    from srpipe.models import ModelSpec
    from srpipe.upscaling import upscale

    class Repeat:
        scale = 2

        def upscale(self, luma, *, bit_depth, full_range):
            return luma.repeat(2, axis=1).repeat(2, axis=2)

    class Plugin:
        @hookimpl
        def register_models(self, register):
            register(ModelSpec(name="traitless", scales=(2,), description="", load=lambda **kw: Repeat(),
                               accepts_backend=True, uses_gpu=False))

    pm = make_plugin_manager()
    pm.register(Plugin())
    result = upscale(str(make_test_video(tmp_path / "in.mp4", frames=2, audio=False)), str(tmp_path / "out.mkv"),
                     model="traitless", device="cpu", pm=pm)
    assert result.backend is None and result.stats.frames_out == 2


def test_a_model_that_accepts_exact_is_told_whether_exact_was_asked_for(tmp_path):
    """``accepts_exact``: ``load`` gets ``exact=`` (``--exact`` or not); a model without it gets no such keyword."""

    from srpipe import hookimpl
    from srpipe.models import ModelSpec
    from srpipe.upscaling import upscale

    calls = []

    class Repeat:
        scale = 2

        def upscale(self, luma, *, bit_depth, full_range):
            return luma.repeat(2, axis=1).repeat(2, axis=2)

    def load(**options):
        calls.append(options)
        return Repeat()

    class Plugin:
        @hookimpl
        def register_models(self, register):
            register(ModelSpec(name="two-ways", scales=(2,), description="", load=load, accepts_exact=True,
                               uses_gpu=False))
            register(ModelSpec(name="one-way", scales=(2,), description="", load=load, uses_gpu=False))

    pm = make_plugin_manager()
    pm.register(Plugin())
    clip = str(make_test_video(tmp_path / "in.mp4", frames=2, audio=False))
    for model, exact in (("two-ways", True), ("two-ways", False), ("one-way", True)):
        upscale(clip, str(tmp_path / f"{model}-{exact}.mkv"), model=model, device="cpu", exact=exact, pm=pm)
    assert [call.get("exact") for call in calls] == [True, False, None]
    assert "exact" not in calls[2]


def test_plugin_whose_commands_fail_or_take_a_used_name_is_named_and_skipped(tmp_path):
    site = fake_plugin(tmp_path / "site", "bad_commands", "from srpipe import hookimpl\n\n"
                       "@hookimpl\ndef register_commands(cli):\n    raise RuntimeError('boom')\n")
    fake_plugin(site, "taken_name", "import click\nfrom srpipe import hookimpl\n\n"
                "@hookimpl\ndef register_commands(cli):\n"
                "    cli.add_command(click.Command('upscale', callback=lambda: click.echo('impostor')))\n")
    done = run_srpipe("upscale", "--help", env={"PYTHONPATH": str(site)})
    assert done.returncode == 0 and b"Upscale a video" in done.stdout, done.stderr.decode()
    stderr = done.stderr.decode()
    assert "Warning: plugin 'bad_commands' failed in register_commands and is skipped: RuntimeError: boom" in stderr
    assert ("Warning: plugin 'taken_name' failed in register_commands and is skipped: "
            "ValueError: command 'upscale' is already added by another plugin") in stderr


def test_a_default_scale_outside_the_models_scales_is_refused():
    from srpipe.models import ModelSpec

    with pytest.raises(ValueError, match="default_scale 5 is not one of its scales"):
        ModelSpec(name="odd", scales=(2, 3), description="", load=print, default_scale=5)
    with pytest.raises(ValueError, match="default_scale True is not one of its scales"):  # True == 1
        ModelSpec(name="odd", scales=(1, 2), description="", load=print, default_scale=True)
    assert ModelSpec(name="fine", scales=(2, 3), description="", load=print, default_scale=3).default_scale == 3


@pytest.mark.parametrize("pairs", [((20,),), (("20", "mid"),), ((True, "mid"),), [(20, "mid")], ((20, None),)])
def test_coarse_quantizer_models_must_be_qp_and_name_pairs(pairs):
    from srpipe.models import ModelSpec

    with pytest.raises(ValueError, match="coarse_quantizer_models must be"):
        ModelSpec(name="odd", scales=(2,), description="", load=print, coarse_quantizer_models=pairs)


class _Repeat:
    def __init__(self, scale):
        self.scale = scale

    def upscale(self, luma, *, bit_depth, full_range):
        return luma.repeat(self.scale, axis=1).repeat(self.scale, axis=2)


def _sloppy_plugin(model: str, upscaler, scales=(2,)):
    """A plugin manager with srpipe's plugins and one more, 'sloppy', whose model ``model`` loads ``upscaler``."""
    from srpipe import hookimpl
    from srpipe.models import ModelSpec

    class Plugin:
        @hookimpl
        def register_models(self, register):
            register(ModelSpec(name=model, scales=scales, description="", load=lambda **kw: upscaler, uses_gpu=False))

    pm = make_plugin_manager()
    pm.register(Plugin(), name="sloppy")
    return pm


def test_an_upscaler_of_another_scale_than_asked_is_refused_before_writing(tmp_path):
    from srpipe.upscaling import upscale

    pm = _sloppy_plugin("always-x2", _Repeat(2), scales=(2, 3))
    clip = make_test_video(tmp_path / "in.mp4", frames=2, audio=False)
    with pytest.raises(SrpipeError, match="model 'always-x2' of plugin 'sloppy' was asked for x3 but loaded an x2"):
        upscale(str(clip), str(tmp_path / "out.mkv"), model="always-x2", scale=3, device="cpu", pm=pm)
    assert not (tmp_path / "out.mkv").exists()


def assert_refused_before_writing(tmp_path, upscaler, model: str, match: str):
    """An upscale with the plugin whose ``model`` loads ``upscaler`` fails with ``match``, no output written."""
    from srpipe.upscaling import upscale

    pm = _sloppy_plugin(model, upscaler)
    clip = make_test_video(tmp_path / "in.mp4", frames=3, audio=False)
    with pytest.raises(SrpipeError, match=match):
        upscale(str(clip), str(tmp_path / "out.mkv"), model=model, scale=2, device="cpu", pm=pm)
    assert not (tmp_path / "out.mkv").exists()


@pytest.mark.parametrize("scale", ["np.int64(2)", "True"])
def test_an_upscaler_whose_scale_is_no_python_int_is_refused_before_writing(tmp_path, scale):
    """NumPy's int passed as an integer and failed --json after the output was written ('Object of
    type int64 is not JSON serializable', exit 1, naming no plugin); a bool was 'an xTrue upscaler'."""
    import numpy as np

    upscaler = _Repeat(2)
    upscaler.scale = np.int64(2) if scale == "np.int64(2)" else True
    assert_refused_before_writing(tmp_path, upscaler, "odd-scale", f"model 'odd-scale' of plugin 'sloppy' loaded a "
                                  f"_Repeat, which has no integer 'scale' .* \\(its scale: {re.escape(scale)}, of type")


@pytest.mark.parametrize("trait, value, least", [("crop_alignment", 0, 1), ("crop_alignment", None, 1),
                                                  ("crop_alignment", 1.5, 1), ("receptive_radius", -1, 0),
                                                  ("receptive_radius", "7", 0), ("receptive_radius", True, 0),
                                                  ("receptive_radius", 10**9, 0), ("crop_alignment", 1025, 1)])
def test_an_upscaler_with_a_nonsense_reuse_trait_is_refused_before_writing(tmp_path, trait, value, least):
    """Tile reuse would divide by a crop alignment of 0 on the second frame: refused at load (a
    receptive radius of None is the default, no reuse; a crop alignment of None is not). A radius
    of 10**9 asked for exabytes: 'unexpected MemoryError'."""
    upscaler = _Repeat(2)
    upscaler.receptive_radius = 3
    setattr(upscaler, trait, value)
    assert_refused_before_writing(tmp_path, upscaler, "odd-traits", rf"^model 'odd-traits' of plugin 'sloppy' declares "
                                  rf"{trait} {value!r}, which is not a whole number from {least} to 1024; report it")


@pytest.mark.parametrize("trait, value, told", [
    ("macs_per_lr_pixel", "160000", "macs_per_lr_pixel '160000', which is not a whole number of at least 1"),
    ("macs_per_lr_pixel", -1, "macs_per_lr_pixel -1, which is not a whole number of at least 1"),
    ("macs_per_lr_pixel", True, "macs_per_lr_pixel True, which is not a whole number of at least 1"),
    ("self_ensemble", "no", "self_ensemble 'no', which is not True or False"),
])
def test_an_upscaler_whose_cost_or_views_trait_is_nonsense_is_refused_before_writing(tmp_path, trait, value, told):
    """They set how many views of a picture run: a string of MACs built a 576 MB string before an
    'unexpected TypeError', -1 or True ran every view of any picture, 'no' ran them."""
    import cv2
    import numpy as np

    from srpipe.upscaling import upscale

    upscaler = _Repeat(2)
    setattr(upscaler, trait, value)
    pm = _sloppy_plugin("odd-cost", upscaler)
    cv2.imwrite(str(tmp_path / "in.png"), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(SrpipeError) as refused:
        upscale(str(tmp_path / "in.png"), str(tmp_path / "out.png"), model="odd-cost", scale=2, device="cpu", pm=pm)
    assert str(refused.value) == (f"model 'odd-cost' of plugin 'sloppy' declares {told}; report it to the plugin's "
                                  "authors")
    assert not (tmp_path / "out.png").exists()


@pytest.mark.parametrize("trait, value, told", [
    ("working_bytes_per_output_pixel", "8", "working_bytes_per_output_pixel '8'"),
    ("working_bytes_per_output_pixel", -1, "working_bytes_per_output_pixel -1"),
    ("working_bytes", lambda frames, width, height: "lots", "working_bytes(1, 1920, 1080) 'lots'"),
    ("working_bytes", lambda frames, width, height: None, "working_bytes(1, 1920, 1080) None"),
])
def test_an_upscaler_with_a_nonsense_memory_trait_is_refused_before_writing(tmp_path, trait, value, told):
    """The memory plan failed with 'unexpected TypeError', naming no plugin."""
    from srpipe.upscaling import upscale

    upscaler = _Repeat(2)
    setattr(upscaler, trait, value)
    pm = _sloppy_plugin("odd-memory", upscaler)
    clip = make_test_video(tmp_path / "in.mp4", frames=3, audio=False)
    with pytest.raises(SrpipeError) as refused:
        upscale(str(clip), str(tmp_path / "out.mkv"), model="odd-memory", scale=2, device="cpu", pm=pm)
    assert str(refused.value) == (f"model 'odd-memory' of plugin 'sloppy' declares {told}, which is not a number of "
                                  "bytes; report it to the plugin's authors")
    assert not (tmp_path / "out.mkv").exists()


def test_a_url_output_reaches_the_sink_plugins_and_plugin_images_get_a_clear_error(tmp_path):
    import numpy as np

    from srpipe import hookimpl
    from srpipe.frames import PLANE_FORMATS, Frame
    from srpipe.media import Sink, Source
    from srpipe.upscaling import upscale

    class Grey(Source):
        kind, is_file, frame_count = "image", False, 1

        def __init__(self, location):
            self.location = location

        def items(self):
            yield Frame((np.full((4, 6), 100, np.uint8),), PLANE_FORMATS["gray"], True)

    written = []

    class Remote(Sink):
        def __init__(self, location):
            self.location = location

        def write_frame(self, frame):
            written.append((self.location, frame.width, frame.height))

        def finish(self):
            pass

        def abort(self):
            pass

    class Plugin:
        @hookimpl
        def open_source(self, location, options):
            return Grey(location) if location.startswith("grey:") else None

        @hookimpl
        def open_sink(self, location, source, options):
            return Remote(location) if location.startswith("rtmp://") else None

    pm = make_plugin_manager()
    pm.register(Plugin())
    upscale("grey:1", "rtmp://example.org/live/key", model="bicubic", device="cpu", pm=pm)
    assert written == [("rtmp://example.org/live/key", 12, 8)]
    with pytest.raises(SrpipeError, match="is an image from a plugin; srpipe's image writer takes only images"):
        upscale("grey:1", str(tmp_path / "out.png"), model="bicubic", device="cpu", pm=pm)
    assert not (tmp_path / "out.png").exists()


def _with_stand_in(**stand_in):
    """A plugin manager with the model "vid" (x2, x3) whose ``ModelSpec`` field ``stand_in``
    names the model that stands in for it, registered at x2 only."""
    from srpipe import hookimpl
    from srpipe.models import ModelSpec

    (field, name), = stand_in.items()

    class Plugin:
        @hookimpl
        def register_models(self, register):
            register(ModelSpec(name="vid", scales=(2, 3), description="", load=lambda scale, **kw: _Repeat(scale),
                               uses_gpu=False, accepts_weights=True, **{field: name}))
            register(ModelSpec(name=name, scales=(2,), description="", load=lambda scale, **kw: _Repeat(scale),
                               uses_gpu=False))

    pm = make_plugin_manager()
    pm.register(Plugin())
    return pm


def test_an_image_model_stands_in_on_still_images_only(tmp_path):
    """``ModelSpec.image_model``: on an image the stand-in runs where it has the scale and no
    --weights are given; on video, at other scales or with --weights, the model itself."""
    from srpipe.testing import make_test_image
    from srpipe.upscaling import upscale

    pm = _with_stand_in(image_model="pic")
    image = make_test_image(tmp_path / "in.png", width=8, height=6)
    clip = make_test_video(tmp_path / "in.mp4", frames=2, audio=False)
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"checkpoint")
    assert upscale(str(image), str(tmp_path / "a.png"), model="vid", pm=pm).model == "pic"
    assert upscale(str(clip), str(tmp_path / "a.mkv"), model="vid", pm=pm).model == "vid"
    assert upscale(str(image), str(tmp_path / "b.png"), model="vid", scale=3, pm=pm).model == "vid"
    assert upscale(str(image), str(tmp_path / "c.png"), model="vid", weights=str(weights), scale=2,
                   pm=pm).model == "vid"


def test_a_near_lossless_model_stands_in_on_near_lossless_video_only(tmp_path):
    """``ModelSpec.near_lossless_model``: on a lossless or near-lossless video file (FFV1 here)
    the stand-in runs where it has the scale and no --weights are given (tests/core/test_near_lossless.py:
    what counts as near lossless)."""
    from srpipe.testing import make_test_image
    from srpipe.upscaling import upscale

    pm = _with_stand_in(near_lossless_model="clean")
    lossless = make_test_video(tmp_path / "ffv1.mkv", frames=2, audio=False, codec="ffv1")
    compressed = make_test_video(tmp_path / "crf23.mp4", frames=2, audio=False,
                                 codec_options={"crf": "23", "preset": "ultrafast"})
    image = make_test_image(tmp_path / "in.png", width=8, height=6)
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"checkpoint")
    assert upscale(str(lossless), str(tmp_path / "a.mkv"), model="vid", pm=pm).model == "clean"
    assert upscale(str(compressed), str(tmp_path / "b.mkv"), model="vid", pm=pm).model == "vid"
    assert upscale(str(image), str(tmp_path / "c.png"), model="vid", pm=pm).model == "vid"  # not a video
    assert upscale(str(lossless), str(tmp_path / "d.mkv"), model="vid", scale=3, pm=pm).model == "vid"  # no x3
    assert upscale(str(lossless), str(tmp_path / "e.mkv"), model="vid", weights=str(weights), scale=2,
                   pm=pm).model == "vid"


def test_coarse_quantizer_models_stand_in_by_the_files_quantizer(tmp_path):
    """``ModelSpec.coarse_quantizer_models``: on H.264 coded at a mean quantizer of at least a
    pair's QP the model of the highest such QP runs, where it has the scale and no --weights are
    given; where the quantizer is not known (another codec, standard input) the model itself, and
    on lossless video its near-lossless stand-in."""
    from srpipe import hookimpl
    from srpipe.models import ModelSpec
    from srpipe.upscaling import upscale
    from srpipe.video import mean_quantizer

    class Plugin:
        @hookimpl
        def register_models(self, register):
            def load(scale, **kw):
                return _Repeat(scale)

            register(ModelSpec(name="vid", scales=(2, 3), description="", load=load, uses_gpu=False,
                               accepts_weights=True, near_lossless_model="clean",
                               coarse_quantizer_models=((35, "low"), (20, "mid"))))
            for name in ("mid", "low", "clean"):
                register(ModelSpec(name=name, scales=(2,), description="", load=load, uses_gpu=False))

    pm = make_plugin_manager()
    pm.register(Plugin())

    def encoded(qp, **options):
        return make_test_video(tmp_path / f"qp{qp}.mp4", frames=3, audio=False,
                               codec_options={"qp": str(qp), "preset": "ultrafast"}, **options)

    fine, middling, coarse = encoded(12), encoded(27), encoded(45)
    assert mean_quantizer(str(fine), 1 << 24) < 20 <= mean_quantizer(str(middling), 1 << 24) < 35 <= \
        mean_quantizer(str(coarse), 1 << 24)
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"checkpoint")

    def ran(path, **options):
        return upscale(str(path), str(tmp_path / "out.mkv"), model="vid", pm=pm,
                       sink_options=SinkOptions(overwrite=True), **options).model

    assert [ran(path) for path in (fine, middling, coarse)] == ["vid", "mid", "low"]
    assert ran(coarse, scale=3) == "vid"  # the stand-ins have no x3
    assert ran(coarse, weights=str(weights), scale=2) == "vid"
    assert ran(make_test_video(tmp_path / "mpeg4.mp4", frames=3, audio=False, codec="mpeg4")) == "vid"
    assert ran(make_test_video(tmp_path / "ffv1.mkv", frames=3, audio=False, codec="ffv1")) == "clean"


def test_the_quantizer_is_asked_only_where_a_coarse_stand_in_could_run():
    """``ModelRegistry.for_quantizer``: the quantizer (a second read of the file) is not asked at a
    scale no stand-in has, with --weights, or for a model without them; a quantizer at a pair's
    QP picks its model."""
    from srpipe.models import ModelRegistry, ModelSpec

    models = ModelRegistry()
    vid = ModelSpec(name="vid", scales=(2, 3), description="", load=print, coarse_quantizer_models=((20, "mid"),))
    plain = ModelSpec(name="plain", scales=(2,), description="", load=print)
    mid = ModelSpec(name="mid", scales=(2,), description="", load=print)
    for spec in (vid, plain, mid):
        models.register(spec, "test")
    asked = []

    def quantizer(value):
        return lambda: asked.append(value) or value

    assert models.for_quantizer(vid, 3, None, quantizer(40)) is vid
    assert models.for_quantizer(vid, 2, "w.pt", quantizer(40)) is vid
    assert models.for_quantizer(plain, 2, None, quantizer(40)) is plain
    assert asked == []
    assert models.for_quantizer(vid, 2, None, quantizer(20)).name == "mid"
    assert models.for_quantizer(vid, 2, None, quantizer(19.9)) is vid
    assert models.for_quantizer(vid, 2, None, quantizer(None)) is vid
    assert asked == [20, 19.9, None]


def test_a_near_lossless_stand_in_comes_before_a_coarse_one(tmp_path):
    """H.264 at QP 5 is near lossless and also at least a coarse pair's QP of 0: the near-lossless
    stand-in runs."""
    from srpipe import hookimpl
    from srpipe.models import ModelSpec
    from srpipe.upscaling import upscale

    class Plugin:
        @hookimpl
        def register_models(self, register):
            def load(scale, **kw):
                return _Repeat(scale)

            register(ModelSpec(name="vid", scales=(2,), description="", load=load, uses_gpu=False,
                               near_lossless_model="clean", coarse_quantizer_models=((0, "low"),)))
            for name in ("low", "clean"):
                register(ModelSpec(name=name, scales=(2,), description="", load=load, uses_gpu=False))

    pm = make_plugin_manager()
    pm.register(Plugin())
    fine = make_test_video(tmp_path / "qp5.mp4", frames=3, audio=False,
                           codec_options={"qp": "5", "preset": "ultrafast"})
    assert upscale(str(fine), str(tmp_path / "out.mkv"), model="vid", pm=pm).model == "clean"


def test_a_batch_worker_keeps_a_model_and_its_image_stand_in(tmp_path):
    from srpipe import hookimpl
    from srpipe.models import ModelSpec
    from srpipe.testing import make_test_image
    from srpipe.upscaling import upscale

    loads = []

    def load(scale, **kw):
        loads.append(scale)
        return _Repeat(scale)

    class Plugin:
        @hookimpl
        def register_models(self, register):
            register(ModelSpec(name="vid2", scales=(2,), description="", load=load, uses_gpu=False, image_model="pic2"))
            register(ModelSpec(name="pic2", scales=(2,), description="", load=load, uses_gpu=False))

    pm = make_plugin_manager()
    pm.register(Plugin())
    image = make_test_image(tmp_path / "in.png", width=8, height=6)
    clip = make_test_video(tmp_path / "in.mp4", frames=2, audio=False)
    for i, path in enumerate([image, clip, image, clip]):
        upscale(str(path), str(tmp_path / f"out{i}{path.suffix}"), model="vid2", pm=pm, keep_model=True)
    assert len(loads) == 2


def _entry_point(site, dist, name, module):
    """A second distribution ``dist`` in ``site`` whose srpipe entry point ``name`` loads ``module``."""
    info = site / f"{dist}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[srpipe]\n{name} = {module}\n")


def test_an_entry_point_that_takes_a_loaded_plugins_name_is_named_and_skipped(tmp_path):
    site = fake_plugin(tmp_path / "site", "first", "")
    (site / "second.py").write_text("")
    _entry_point(site, "second_dist", "first", "second")  # another distribution's "first"
    (site / "fake_classic.py").write_text("")
    _entry_point(site, "classic_dist", "srpipe.default_plugins.classic", "fake_classic")
    done = run_srpipe("plugins", env={"PYTHONPATH": str(site)})
    assert done.returncode == 0
    stderr = done.stderr.decode()
    # whichever of the two comes first is kept
    assert re.search(r"plugin 'first' \((first|second)\) has the name of a plugin already loaded "
                     r"\((?!\1)(first|second)\) and is skipped", stderr), stderr
    assert "plugin 'srpipe.default_plugins.classic' (fake_classic) has the name of a plugin already loaded " \
           "(srpipe.default_plugins.classic) and is skipped" in stderr
    assert "9.9" not in done.stdout.decode()


def test_two_entry_points_of_one_module_load_it_once_and_the_second_is_told_in_a_line(tmp_path):
    """The second was told with pluggy's whole registry, some 2,100 characters on every command."""
    site = fake_plugin(tmp_path / "site", "dup_module", "")
    _entry_point(site, "dup_dist", "dupb", "dup_module")  # another distribution's name for the same module
    done = run_srpipe("plugins", env={"PYTHONPATH": str(site)})
    assert done.returncode == 0
    warnings = done.stderr.decode().splitlines()
    assert len(warnings) == 1 and re.fullmatch(
        r"Warning: plugin '(dup_module|dupb)' \(dup_module\) is already loaded as plugin '(?!\1)(dup_module|dupb)' "
        r"and is skipped; ask its author to drop one of the two entry points", warnings[0]), warnings


TWO_HOOKS = """
from srpipe import hookimpl
from srpipe.models import ModelSpec


@hookimpl
def register_models(register):
    register(ModelSpec(name="one", scales=(2,), description="x", load=None))


@hookimpl(specname="register_models")
def more_models(register):
    register(ModelSpec(name="two", scales=(2,), description="x", load=None))
"""


def test_a_plugin_with_two_implementations_of_a_hook_is_called_once_each(tmp_path):
    models, stderr = models_with(fake_plugin(tmp_path / "site", "two_hooks", TWO_HOOKS))
    assert {"one", "two"} <= set(models)
    assert "already registered" not in stderr


PRINTING_PLUGIN = '''
from srpipe import hookimpl
from srpipe.models import ModelSpec

print("debug: imported")


class Nearest:
    scale = 2

    def upscale(self, luma, *, bit_depth, full_range):
        return luma.repeat(2, axis=1).repeat(2, axis=2)


def load(**kw):
    print("debug: loaded")
    return Nearest()


@hookimpl
def register_models(register):
    print("debug: registering")
    register(ModelSpec(name="printer", scales=(2,), description="prints as it loads", load=load))
'''


def test_a_plugins_prints_go_to_standard_error_not_into_the_video_or_json(tmp_path):
    """Standard output carries the video of -o - and the JSON: a plugin's stray debug print made
    a piped video unreadable and --json no JSON, while srpipe exited 0."""
    site = fake_plugin(tmp_path / "site", "printer_plugin", PRINTING_PLUGIN)
    clip = make_test_video(tmp_path / "clip.mp4", frames=3)
    env = {"PYTHONPATH": str(site)}
    done = run_srpipe("upscale", clip, "-m", "printer", "-o", "-", "--format", "matroska", env=env)
    assert done.returncode == 0, done.stderr.decode()
    (tmp_path / "piped.mkv").write_bytes(done.stdout)
    assert len(video_info(tmp_path / "piped.mkv")["times"]) == 3
    assert all(f"debug: {what}" in done.stderr.decode() for what in ("imported", "registering", "loaded"))
    listed = run_srpipe("models", "list", "--json", env=env)
    assert "printer" in {model["name"] for model in json.loads(listed.stdout)}


WANDERING_PLUGIN = '''
import os
import signal

from srpipe import hookimpl
from srpipe.models import ModelSpec


class Nearest:
    scale = 2

    def upscale(self, luma, *, bit_depth, full_range):
        return luma.repeat(2, axis=1).repeat(2, axis=2)


def load(**kw):
    os.chdir("/")
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    return Nearest()


@hookimpl
def register_models(register):
    register(ModelSpec(name="wanderer", scales=(2,), description="moves and deafens", load=load))
'''


def test_a_model_that_changes_the_working_folder_or_signal_handlers_is_put_right(tmp_path):
    """A model's load that changed folder sent a relative -o elsewhere (exit 0, the file not where
    asked); one that ignored SIGTERM made the run unstoppable by it."""
    site = fake_plugin(tmp_path / "site", "wandering_plugin", WANDERING_PLUGIN)
    (tmp_path / "work").mkdir()
    make_test_video(tmp_path / "work" / "clip.mp4", frames=3)
    done = run_srpipe("upscale", "clip.mp4", "-m", "wanderer", "-o", "out.mp4", cwd=tmp_path / "work",
                      env={"PYTHONPATH": str(site)})
    assert done.returncode == 0, done.stderr.decode()
    assert len(video_info(tmp_path / "work" / "out.mp4")["times"]) == 3
    warnings = [line for line in done.stderr.decode().splitlines() if line.startswith("Warning:")]
    assert warnings == ["Warning: model 'wanderer' changed the working folder; srpipe put it back",
                        "Warning: model 'wanderer' changed how SIGTERM is handled; srpipe put it back"]


UNRULY_PLUGIN = '''
import os

from srpipe import hookimpl
from srpipe.models import ModelSpec


class Unruly:
    scale = 2

    def upscale(self, luma, *, bit_depth, full_range):
        print("debug: upscaling")
        os.chdir("/")
        return luma.repeat(2, axis=1).repeat(2, axis=2)


@hookimpl
def register_models(register):
    register(ModelSpec(name="unruly", scales=(2,), description="prints and wanders", load=lambda **kw: Unruly()))
'''


def test_eval_and_bench_keep_a_models_prints_and_wanderings_out_of_their_work(tmp_path):
    """upscale put back the folder a model's upscale changed and kept its prints out of the JSON;
    eval and bench did not: the next picture was looked for in / ('cannot read imgs/b.png'), and
    --json began with the print."""
    import cv2
    import numpy as np

    site = fake_plugin(tmp_path / "site", "unruly_plugin", UNRULY_PLUGIN)
    (tmp_path / "work" / "imgs").mkdir(parents=True)
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(tmp_path / "work" / "imgs" / name), np.full((16, 16, 3), 90, np.uint8))
    make_test_video(tmp_path / "work" / "clip.mp4", frames=3)
    env = {"PYTHONPATH": str(site)}
    for command in (["eval", "-m", "unruly", "--data", "imgs", "--json"],
                    ["eval", "-m", "unruly", "--video", "clip.mp4", "--crfs", "23", "--json"],
                    ["bench", "clip.mp4", "-m", "unruly", "--repeats", "1", "--no-startup", "--json"]):
        done = run_srpipe(*command, cwd=tmp_path / "work", env=env)
        assert done.returncode == 0, done.stderr.decode()
        assert json.loads(done.stdout) and "debug: upscaling" in done.stderr.decode()
        assert "changed the working folder; srpipe put it back" in done.stderr.decode()


FAILING_PLUGIN = '''
from srpipe import hookimpl
from srpipe.models import ModelSpec


class Failing:
    scale = 2

    def upscale(self, luma, *, bit_depth, full_range):
        return {}["missing"]


@hookimpl
def register_models(register):
    register(ModelSpec(name="failing", scales=(2,), description="raises", load=lambda **kw: Failing()))
'''


@pytest.mark.parametrize("command", ["upscale", "batch"])
def test_an_unexpected_error_in_a_plugins_code_names_the_plugin(tmp_path, command):
    """It said 'unexpected KeyError: 'missing'', as if srpipe were at fault, with nothing to say
    whose code failed or what the user could do."""
    site = fake_plugin(tmp_path / "site", "failing_plugin", FAILING_PLUGIN)
    (tmp_path / "in").mkdir()
    clip = make_test_video(tmp_path / "in" / "clip.mp4", frames=2)
    arguments = [clip, "-o", tmp_path / "out.mp4"] if command == "upscale" else [tmp_path / "in", tmp_path / "out"]
    done = run_srpipe(command, *arguments, "-m", "failing", env={"PYTHONPATH": str(site)})
    assert done.returncode == 1
    error = [line for line in done.stderr.decode().splitlines() if "KeyError" in line]
    assert len(error) == 1 and "KeyError in plugin 'failing_plugin' (1.0): 'missing'; report it to the plugin's " \
        "authors, or run without it: SRPIPE_DISABLE_PLUGINS=failing_plugin" in error[0], done.stderr.decode()
    assert not (tmp_path / "out.mp4").exists()


def test_srpipes_own_stop_in_a_plugins_registration_stops_and_is_not_the_plugins_failure(recwarn):
    """A batch's Ctrl-C sends its workers SIGTERM, whose handler raises Stop where the worker is:
    in a plugin's registration, it was told as the plugin's failure ("plugin 'srpipe.default_plugins.espcn'
    failed in register_backends and is skipped: Stop: 143") and the worker went on."""
    import types

    from srpipe import hookimpl, plugins
    from srpipe.plugin_guard import Stop

    @hookimpl
    def register_backends(register):
        raise Stop(143)

    stopped = types.ModuleType("stopped_plugin")
    stopped.register_backends = register_backends
    manager = plugins.PluginManager()
    manager.add_hookspecs(hookspecs)
    manager.register(stopped, name="stopped")
    with pytest.raises(Stop):
        plugins.call_per_plugin(manager, "register_backends", lambda name: {"register": lambda item: None})
    assert not [w for w in recwarn if "failed in register_backends" in str(w.message)]

def test_an_error_outside_plugins_code_is_not_put_on_a_plugin(monkeypatch):
    import types

    from srpipe import plugins

    def module(name: str) -> types.ModuleType:
        made = types.ModuleType(name)
        exec("def fail():\n    raise KeyError('missing')\n", made.__dict__)
        return made

    manager = plugins.PluginManager()
    manager.register(module("someones_plugin.models"), name="someones")
    manager.versions["someones"] = "2.1"
    monkeypatch.setattr(plugins, "get_plugin_manager", lambda: manager)
    for raising, expected in [
        (module("someones_plugin.deep").fail, "KeyError in plugin 'someones' (2.1): 'missing'; report it to the "
                                              "plugin's authors, or run without it: SRPIPE_DISABLE_PLUGINS=someones"),
        (module("elsewhere").fail, "KeyError: 'missing'"),
    ]:
        try:
            raising()
        except KeyError as exc:
            assert plugins.failure_text(exc) == expected
    try:  # raised by srpipe's own code while handling the plugin's error: still the plugin's
        try:
            module("someones_plugin").fail()
        except KeyError as exc:
            raise ValueError("wrapped") from exc
    except ValueError as exc:
        assert plugins.failure_text(exc).startswith("ValueError in plugin 'someones' (2.1): wrapped;")


def test_an_error_is_put_on_the_plugin_of_the_most_specific_module(monkeypatch):
    """Two distributions sharing a namespace package (acme.sr_a, acme.sr_b): an error in acme.sr_b
    was put on the plugin of acme.sr_a, and the user told to disable the innocent one."""
    import types

    from srpipe import plugins

    def module(name: str) -> types.ModuleType:
        made = types.ModuleType(name)
        exec("def fail():\n    raise ValueError('bug')\n", made.__dict__)
        return made

    manager = plugins.PluginManager()
    for name, plugin_module, version in [("acmea", "acme.sr_a", "1.0.0"), ("acmeb", "acme.sr_b", "2.5.0")]:
        manager.register(module(plugin_module), name=name)
        manager.versions[name] = version
    monkeypatch.setattr(plugins, "get_plugin_manager", lambda: manager)
    for raising, expected in [
        ("acme.sr_b", "ValueError in plugin 'acmeb' (2.5.0): bug; report it to the plugin's authors, or run "
                      "without it: SRPIPE_DISABLE_PLUGINS=acmeb"),
        ("acme.sr_b.network", "ValueError in plugin 'acmeb' (2.5.0): bug;"),
        ("acme.sr_a", "ValueError in plugin 'acmea' (1.0.0): bug;"),
        ("acme.common", "ValueError: bug"),  # a module of the package both share: neither's
    ]:
        with pytest.raises(ValueError) as raised:
            module(raising).fail()
        assert plugins.failure_text(raised.value).startswith(expected)


@pytest.mark.parametrize("where, code", [("load", 0), ("upscale", 3), ("items", 3), ("argparse", 2),
                                         ("for_stream", 3), ("working_bytes", 0), ("write_frame", 3), ("finish", 3)])
def test_a_plugins_system_exit_is_an_error_of_the_plugin(tmp_path, where, code):
    """It ended srpipe without a word: status 0 and no output for sys.exit(0), its own status
    (3) with no message even under --debug, and a ported script's argparse a usage message not
    srpipe's and status 2, that of usage errors."""
    site = exiting_plugin(tmp_path / "site", where, code)
    source = "exits:" if where == "items" else make_test_video(tmp_path / "clip.mp4", frames=6, audio=False)
    output = tmp_path / ("out.exits" if where in ("write_frame", "finish") else "out.mp4")
    done = run_srpipe("upscale", source, "-m", "exits", "-o", output, env={"PYTHONPATH": str(site)})
    assert done.returncode == 1, done.stderr.decode()
    assert done.stderr.decode().splitlines()[-1] == (
        f"Error: unexpected SystemExit in plugin 'exiting_plugin' (1.0): {code}; report it to the plugin's authors, "
        "or run without it: SRPIPE_DISABLE_PLUGINS=exiting_plugin (rerun with --debug for the traceback)")
    assert not [path.name for path in tmp_path.iterdir() if "out" in path.name]  # nor a partial one
    debugged = run_srpipe("upscale", source, "-m", "exits", "-o", output, "--debug", env={"PYTHONPATH": str(site)})
    assert debugged.returncode == 1 and b"Traceback" in debugged.stderr and b"SystemExit" in debugged.stderr


def test_a_sinks_system_exit_in_abort_is_told_and_the_error_before_it_ends_the_run(tmp_path):
    site = exiting_plugin(tmp_path / "site", "abort", 3)
    clip = make_test_video(tmp_path / "clip.mp4", frames=6, audio=False)
    done = run_srpipe("upscale", clip, "-m", "exits", "-o", tmp_path / "out.exits", env={"PYTHONPATH": str(site)})
    lines = done.stderr.decode().splitlines()
    assert done.returncode == 1, lines
    assert f"Warning: sink Dropping ({tmp_path / 'out.exits'}) of plugin 'exiting_plugin' (1.0) could not remove " \
           "what it had written: SystemExit: 3" in lines
    assert lines[-1].startswith("Error: unexpected OSError in plugin 'exiting_plugin' (1.0): the disk went away;")


@pytest.mark.parametrize("where", ["load", "for_stream", "upscale"])
def test_a_plugins_system_exit_ends_live_with_an_error_of_the_plugin(tmp_path, where):
    site = exiting_plugin(tmp_path / "site", where, 3)
    clip = make_test_video(tmp_path / "clip.mp4", frames=6, audio=False)
    done = run_srpipe("live", "--source", clip, "--no-window", "-m", "exits", env={"PYTHONPATH": str(site)})
    assert done.returncode == 1, done.stderr.decode()
    assert done.stderr.decode().splitlines()[-1].startswith(
        "Error: unexpected SystemExit in plugin 'exiting_plugin' (1.0): 3; report it to the plugin's authors")


def test_a_plugins_keyboard_interrupt_still_means_ctrl_c(tmp_path):
    site = fake_plugin(tmp_path / "site", "interrupting_plugin", EXITING_PLUGIN.replace(
        "sys.exit(CODE)", "raise KeyboardInterrupt") + "WHERE, ONCE = 'upscale', None\n")
    clip = make_test_video(tmp_path / "clip.mp4", frames=6, audio=False)
    done = run_srpipe("upscale", clip, "-m", "exits", "-o", tmp_path / "out.mp4", env={"PYTHONPATH": str(site)})
    assert done.returncode == 130 and done.stderr.decode().splitlines()[-1] == "Interrupted."
    assert not (tmp_path / "out.mp4").exists()


class _Reusing:
    """Nearest neighbour into memory it keeps and returns call after call: one buffer, two in
    turn, a slice of one, or a torch tensor's .numpy()."""

    scale = 2

    def __init__(self, how):
        self.how, self.calls, self.buffers = how, 0, {}

    def upscale(self, luma, *, bit_depth, full_range):
        import numpy as np

        out = luma.repeat(2, axis=1).repeat(2, axis=2)
        self.calls += 1
        if self.how == "torch":
            import torch

            tensor = self.buffers.setdefault(out.shape, torch.empty(out.shape, dtype=torch.uint8))
            tensor.copy_(torch.from_numpy(out))
            return tensor.numpy()
        if self.how == "slice":  # of a buffer for up to 8 frames
            buffer = self.buffers.setdefault(out.shape[1:], np.empty((8, *out.shape[1:]), out.dtype))
            buffer[:len(out)] = out
            return buffer[:len(out)]
        buffer = self.buffers.setdefault((self.calls % 2 if self.how == "alternating" else 0, out.shape),
                                         np.empty_like(out))
        buffer[...] = out
        return buffer


@pytest.mark.parametrize("how", ["kept", "alternating", "slice", "torch"])
def test_an_upscaler_that_returns_memory_it_writes_again_gives_each_frame_its_own_picture(tmp_path, how):
    """Frames waiting in queues, or kept by a sink, were written over by the next batch: 10 of
    12 frames were another's picture, without a word."""
    import numpy as np

    from srpipe import hookimpl
    from srpipe.media import Sink
    from srpipe.models import ModelSpec
    from srpipe.upscaling import upscale

    class Keeping(Sink):  # as the npz example of docs/plugins.md keeps the planes it is given
        def __init__(self, location):
            self.location, self.luma = location, []

        def write_frame(self, frame):
            self.luma.append(frame.planes[0])

        def finish(self):
            pass

        def abort(self):
            pass

    sinks = []

    class Plugin:
        @hookimpl
        def register_models(self, register):
            register(ModelSpec(name="reusing", scales=(2,), description="", load=lambda **kw: _Reusing(how),
                               uses_gpu=False))

        @hookimpl
        def open_sink(self, location, source, options):
            sinks.append(Keeping(location))
            return sinks[-1]

    pm = make_plugin_manager()
    pm.register(Plugin(), name="reusing")
    clip = make_test_video(tmp_path / "in.mp4", frames=12, audio=False)
    upscale(str(clip), str(tmp_path / "out.keep"), model="reusing", batch_size=3, device="cpu", pm=pm)
    expected = [luma.repeat(2, axis=0).repeat(2, axis=1) for luma in video_info(clip)["luma"]]
    assert [np.array_equal(got, want) for got, want in zip(sinks[0].luma, expected, strict=True)] == [True] * 12


@pytest.mark.parametrize("model, backend, full_range", [
    ("bicubic", None, False), ("lanczos", None, True), ("bicubic", "torch", False), ("espcn", "openvino-bf16", False),
    ("espcn", "torch", False), ("espcn", "openvino", False)])
def test_the_built_in_upscalers_outputs_are_used_as_they_are_given(model, backend, full_range):
    """The check of what an upscaler gives copies only what srpipe does not hold alone: the
    built-ins' own arrays go through untouched (the classic torch path's tensor memory was
    copied again on every batch)."""
    import numpy as np

    from srpipe.default_plugins.classic.upscaler import ClassicUpscaler
    from srpipe.default_plugins.espcn.openvino_backend import has_native_bf16
    from srpipe.default_plugins.espcn.upscaler import ESPCNUpscaler
    from srpipe.pipeline import checked_upscale

    if backend == "openvino-bf16" and not has_native_bf16():
        backend = "openvino"
    if model == "espcn":
        from srpipe.default_plugins.espcn import TORCH
        from srpipe.default_plugins.espcn.openvino_backend import OPENVINO, OPENVINO_BF16
        from srpipe.default_plugins.espcn.shipped import shipped_weights

        backends = {"torch": TORCH, "openvino": OPENVINO, "openvino-bf16": OPENVINO_BF16}
        inner = ESPCNUpscaler(shipped_weights(2), backend=backends[backend])
    else:
        inner = ClassicUpscaler(model, 2, "cpu", backend=backend)
    given = []

    class Watched:
        scale = 2

        def upscale(self, luma, *, bit_depth, full_range):
            big = inner.upscale(luma, bit_depth=bit_depth, full_range=full_range)
            given.append(big.__array_interface__["data"][0])  # where its samples lie, not the array
            return big

    luma = np.random.default_rng(0).integers(16, 235, (2, 24, 32), dtype=np.uint8)
    big = checked_upscale(Watched(), luma, 2, 8, full_range, "model 'm'")
    assert big.__array_interface__["data"][0] == given[0]


@pytest.mark.parametrize("where", ["upscale", "for_stream", "working_bytes"])
def test_a_plugins_system_exit_in_eval_is_an_error_of_the_plugin(tmp_path, where):
    """eval --data called the model's upscale and for_stream unguarded, and load_upscaler its
    working_bytes: exit 3 with nothing said."""
    import cv2
    import numpy as np

    site = exiting_plugin(tmp_path / "site", where, 3)
    (tmp_path / "img").mkdir()
    cv2.imwrite(str(tmp_path / "img" / "a.png"), np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8))
    done = run_srpipe("eval", "-m", "exits", "--data", tmp_path / "img", env={"PYTHONPATH": str(site)})
    assert done.returncode == 1, done.stderr.decode()
    assert done.stderr.decode().splitlines()[-1].startswith(
        "Error: unexpected SystemExit in plugin 'exiting_plugin' (1.0): 3; report it to the plugin's authors")


def test_a_signal_handlers_system_exit_in_a_plugins_code_still_ends_the_program():
    """A host program's (or Ray's worker's) SIGTERM handler raises SystemExit wherever the signal
    lands, mostly in a model's or a sink's code: made a plugin's error, the run failed and the
    process went on to its next job instead of ending."""
    import os
    import signal
    import time

    from srpipe.plugin_guard import PluginExit, exits_as_errors

    def host_handler(signum, frame):
        sys.exit(143)

    previous = signal.signal(signal.SIGUSR1, host_handler)
    try:
        with pytest.raises(SystemExit) as ended:
            with exits_as_errors():  # as around a model's upscale
                os.kill(os.getpid(), signal.SIGUSR1)
                time.sleep(5)
        assert type(ended.value) is SystemExit and ended.value.code == 143
    finally:
        signal.signal(signal.SIGUSR1, previous)
    with pytest.raises(PluginExit):  # the plugin's own, with the handler still set elsewhere
        with exits_as_errors():
            sys.exit(143)


def test_a_batch_workers_stop_while_a_plugin_loads_is_no_fault_of_the_plugin():
    """Ctrl-C on a batch: a worker told to stop (its SIGTERM handler raises Stop) as it loaded the
    plugins warned that the plugin being imported 'could not be loaded'. A plugin's own exit is."""
    from srpipe.plugin_guard import Stop
    from srpipe.plugins import PluginManager, _register

    pm = PluginManager()

    def stopped():
        raise Stop(143)

    with pytest.raises(Stop):
        _register(pm, "stopped", "stopped", stopped)

    def exiting():
        raise SystemExit(3)

    with pytest.warns(UserWarning, match="plugin 'exiting' could not be loaded and is skipped: SystemExit: 3"):
        assert _register(pm, "exiting", "exiting", exiting) is False


# A model whose for_stream gives what STREAMS says: None, or an upscaler of another scale
WRONG_STREAM_PLUGIN = '''
import os

from srpipe import hookimpl
from srpipe.models import ModelSpec


class Repeat:
    def __init__(self, scale):
        self.scale = scale

    def upscale(self, luma, *, bit_depth, full_range):
        return luma.repeat(self.scale, axis=1).repeat(self.scale, axis=2)

    def for_stream(self):
        return None if os.environ["STREAMS"] == "none" else Repeat(3)


@hookimpl
def register_models(register):
    register(ModelSpec(name="wrong-stream", scales=(2,), description="", load=lambda **kw: Repeat(2), uses_gpu=False))
'''


@pytest.mark.parametrize("gives, told", [("none", "None"), ("x3", "a Repeat of scale 3")])
def test_a_for_stream_that_gives_no_upscaler_of_the_scale_is_told_naming_model_and_plugin(tmp_path, gives, told):
    """It said "Repeat.for_stream() gave a NoneType of scale None ...", naming neither."""
    site = fake_plugin(tmp_path / "site", "wrong_stream", WRONG_STREAM_PLUGIN)
    clip = make_test_video(tmp_path / "clip.mp4", frames=3, audio=False)
    env = {"PYTHONPATH": str(site), "STREAMS": gives}
    for command in (["upscale", clip, "-o", tmp_path / "out.mp4"], ["live", "--source", clip, "--no-window"]):
        done = run_srpipe(*command, "-m", "wrong-stream", env=env)
        assert_one_line_error(done, f"Error: the for_stream() of model 'wrong-stream' of plugin 'wrong_stream' gave "
                                    f"{told}, not an x2 upscaler; report it to the plugin's authors")
    assert not (tmp_path / "out.mp4").exists()
