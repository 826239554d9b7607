"""Plugins: the template installs through its entry point; broken plugins are named and skipped."""

import json
from fractions import Fraction
import subprocess
import sys
from pathlib import Path

import pytest

from srpipe import hookspecs
from srpipe.plugins import DEFAULT_PLUGINS, make_plugin_manager
from srpipe.testing import make_test_video

from conftest import REPO, run_srpipe
from media import video_info

TEMPLATE = REPO / "samples" / "srpipe-nearest"


@pytest.fixture(scope="module")
def nearest_site(tmp_path_factory):
    """The template plugin installed by pip into its own folder (no index, no deps)."""
    site = tmp_path_factory.mktemp("site")
    build = tmp_path_factory.mktemp("build")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps",
         "--no-build-isolation", "--target", str(site), str(TEMPLATE)],
        check=True, capture_output=True, cwd=build,
    )
    return site


def fake_plugin(site: Path, name: str, source: str) -> Path:
    """A minimal installed distribution whose entry point is the module ``name``."""
    site.mkdir(exist_ok=True)
    (site / f"{name}.py").write_text(source)
    dist = site / f"{name}-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[srpipe]\n{name} = {name}\n")
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


def test_plugin_that_fails_to_import_is_named_and_skipped(tmp_path):
    site = fake_plugin(tmp_path / "site", "broken_import", "raise ImportError('needs libfoo')\n")
    models, stderr = models_with(site)
    assert "Warning: plugin 'broken_import' could not be loaded and is skipped: ImportError: needs libfoo" in stderr
    assert "bicubic" in models


@pytest.mark.parametrize("body, reason", [
    ("    raise RuntimeError('boom')\n", "and is skipped: RuntimeError: boom"),
    ("    register('not a model')\n", "for one entry, which is skipped: TypeError: register() takes a srpipe.models.ModelSpec"),
])
def test_plugin_that_raises_or_returns_junk_is_skipped(tmp_path, body, reason):
    source = f"from srpipe import hookimpl\n\n@hookimpl\ndef register_models(register):\n{body}"
    site = fake_plugin(tmp_path / "site", "bad_hook", source)
    models, stderr = models_with(site)
    assert f"plugin 'bad_hook' failed in register_models {reason}" in stderr
    assert {"bicubic", "lanczos"} <= set(models)


def test_builtins_are_registered_like_third_party_plugins():
    pm = make_plugin_manager()
    names = {name for name, _ in pm.list_name_plugin()}
    assert set(DEFAULT_PLUGINS) <= names


def test_every_hook_is_documented_and_tested():
    guide = REPO / "docs" / "plugins.md"  # the plugin guide; until it exists, the README's former reference
    reference = (guide if guide.exists() else REPO / "docs" / "plugins-reference-old.md").read_text()
    tests = "".join(p.read_text() for p in (REPO / "tests").rglob("test_*.py"))
    hooks = [name for name in dir(hookspecs) if hasattr(getattr(hookspecs, name), "srpipe_spec")]
    assert hooks == ["open_sink", "open_source", "register_backends", "register_commands", "register_models",
                     "register_networks"]
    for hook in hooks:
        assert f"`{hook}(" in reference, f"{hook} is not in the hook reference"
        assert hook in tests.replace("test_every_hook", ""), f"no test uses {hook}"


PATTERN_PLUGIN = '''
import click
import numpy as np
from fractions import Fraction
from srpipe import hookimpl
from srpipe.frames import PLANE_FORMATS, Frame
from srpipe.media import Sink, Source


class PatternSource(Source):
    is_file = False

    def __init__(self, location):
        self.location = location
        self.width, self.height = (int(v) for v in location.split(":")[1].split("x"))
        self.frame_count = 3

    def items(self):
        for index in range(3):
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


@hookimpl
def open_source(location, options):
    return PatternSource(location) if location.startswith("pattern:") else None


@hookimpl
def open_sink(location, source, options):
    return CountingSink(location) if location == "count:" else None


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
