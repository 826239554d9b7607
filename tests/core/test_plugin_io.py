"""Third-party sources, sinks, commands and backends that misbehave (the hostile tester's second
round): each ends in one line naming the plugin, or in correct output, and none takes over what
srpipe or another plugin owns."""

import json
import os
import sys
import threading
from fractions import Fraction

import numpy as np
import pytest
from test_faults import assert_one_line_error, listing

from srpipe.errors import SrpipeError
from srpipe.frames import PLANE_FORMATS, Frame
from srpipe.testing import make_test_video

from conftest import REPO, run_srpipe
from media import upscale_plugin_frames, video_info
from plugin_helpers import fake_plugin

# hostile:MODE, a source of four 64x48 frames (declared) at 25 fps that breaks the contract as MODE
# says (closefails: its close raises; closefails-fail: its items too); picture:, one such frame as
# a picture (kind "image"); outputs *.refuse that no plugin takes, and *.failabort, written by a
# sink whose abort fails.
SOURCES = '''
from fractions import Fraction

import numpy as np

from srpipe import hookimpl
from srpipe.errors import SrpipeError
from srpipe.frames import PLANE_FORMATS, Frame
from srpipe.media import Sink, Source


class Hostile(Source):
    is_file = False
    frame_rate = Fraction(25)
    time_base = Fraction(1, 25)

    def __init__(self, location):
        self.location = location
        self.mode = location.partition(":")[2]
        self.width, self.height = 64, 48
        self.frame_count = 4
        if self.mode in ("undeclared", "grows"):
            self.width = self.height = None

    def frame(self, index, width=64, height=48):
        fmt = PLANE_FORMATS["yuv420p"]
        chroma = np.full(fmt.chroma_size(width, height)[::-1], 128, np.uint8)
        luma = np.full((height, width), 16 + 40 * index, np.uint8)
        return Frame((luma, chroma, chroma.copy()), fmt, False, pts=index, time_base=self.time_base)

    def items(self):
        for index in range(4):
            if self.mode == "talky":
                print(f"DEBUG: reading frame {index}")
            if self.mode == "packet" and index == 1:
                yield "not a packet"
            if self.mode.endswith("fail") and index == 2:
                raise SrpipeError(f"{self.location} fails at frame 3")
            width, height = {"huge": (2000, 2000), "small": (32, 24), "undeclared": (200, 150),
                             "shrinks": (64, 48) if index < 2 else (32, 24),
                             "grows": (64, 48) if index < 2 else (80, 60)}.get(self.mode, (64, 48))
            yield self.frame(index, width, height)

    def close(self):
        if self.mode.startswith("closefails"):
            raise RuntimeError("close exploded")


class Picture(Hostile):
    """One picture: a plugin's image, which srpipe's image writer does not take."""

    kind, default_suffix = "image", ".png"

    def items(self):
        yield self.frame(0)


class AbortFails(Sink):
    def __init__(self, location):
        self.location = location

    def write_frame(self, frame):
        pass

    def finish(self):
        pass

    def abort(self):
        raise RuntimeError("abort failed too")


@hookimpl
def open_source(location, options):
    if location.startswith("junk:"):
        return "not a source"
    if location.startswith("picture:"):
        return Picture(location)
    return Hostile(location) if location.startswith("hostile:") else None


@hookimpl
def open_sink(location, source, options):
    if location.endswith(".refuse"):
        return "not a sink"
    return AbortFails(location) if location.endswith(".failabort") else None
'''


@pytest.fixture(scope="module")
def sources_site(tmp_path_factory):
    return fake_plugin(tmp_path_factory.mktemp("site"), "hostile_sources", SOURCES)


def upscale_hostile(site, *args):
    return run_srpipe("upscale", *args, "-m", "bicubic", env={"PYTHONPATH": str(site)})


# 1. Timestamps that have no unit, are no whole numbers, or units that are no fractions -----------


def frames_timed(pts, time_base):
    fmt = PLANE_FORMATS["yuv420p"]
    for index, stamp in enumerate(pts):
        luma = np.full((16, 16), 16 + 30 * index, np.uint8)
        yield Frame((luma, np.full((8, 8), 128, np.uint8), np.full((8, 8), 128, np.uint8)), fmt, False, stamp,
                    time_base)


@pytest.mark.parametrize("pts, time_base, attributes, needle", [
    # every frame came out at 0: the frames' pts without a unit, and the source giving none either
    ([0, 1, 2], None, {"time_base": None, "frame_rate": Fraction(25)},
     "gave a frame with timestamp 0 in time_base None; a timestamp is a whole number of time_base units"),
    # re-spaced to twice the stated length
    ([0, 0.5, 1.0], Fraction(1, 25), {"time_base": Fraction(1, 25), "frame_rate": Fraction(25)},
     "gave a frame with timestamp 0.5 in time_base Fraction(1, 25); a timestamp is a whole number"),
    ([0, Fraction(1, 2), 1], Fraction(1, 25), {"time_base": Fraction(1, 25), "frame_rate": Fraction(25)},
     "gave a frame with timestamp Fraction(1, 2)"),
    # "unexpected AttributeError: 'float' object has no attribute 'numerator'"
    ([0, 1, 2], Fraction(1, 25), {"time_base": Fraction(1, 25), "frame_rate": 29.97},
     "gave as its frame_rate 29.97, not a positive fractions.Fraction"),
    ([0, 1, 2], 0.04, {"time_base": None, "frame_rate": Fraction(25)},
     "gave a frame with time_base 0.04, not a positive fractions.Fraction"),
    ([0, 1, 2], Fraction(1, 25), {"time_base": 0.04, "frame_rate": Fraction(25)},
     "gave as its time_base 0.04, not a positive fractions.Fraction"),
])
def test_timestamps_without_a_unit_or_not_whole_are_refused_naming_the_plugin(tmp_path, pts, time_base, attributes,
                                                                              needle):
    with pytest.raises(SrpipeError) as caught:
        upscale_plugin_frames(frames_timed(pts, time_base), tmp_path / "out.mkv", **attributes)
    message = str(caught.value)
    assert message.startswith("source Listed (listed://frames) of plugin 'listed' (unknown version) ")
    assert needle in message and message.endswith("the plugin that reads it is broken"), message
    assert listing(tmp_path) == []


def test_whole_timestamps_in_the_frames_or_the_sources_time_base_are_taken(tmp_path):
    """NumPy's integers are whole numbers, an int a frame rate, and a frame's time_base may be left
    to the source's."""
    result = upscale_plugin_frames(frames_timed([np.int64(0), np.int64(2), np.int64(3)], None),
                                   tmp_path / "out.mkv", time_base=Fraction(1, 10), frame_rate=10)
    assert result.stats.frames_out == 3
    assert video_info(tmp_path / "out.mkv")["times"] == [Fraction(0), Fraction(2, 10), Fraction(3, 10)]


# 2. Frames larger than the source declared, or than --max-pixels --------------------------------


@pytest.mark.parametrize("mode, limit, needle", [
    # declared 64x48, gave 2000x2000: it ran, at 2 GB, past --max-pixels and the memory plan
    ("huge", 100_000, "declared 64x48 frames but gave a 2000x2000 one; the plugin that reads it is broken"),
    ("huge", None, "declared 64x48 frames but gave a 2000x2000 one"),
    ("small", None, "declared 64x48 frames but gave a 32x24 one"),  # the first frame: the size declared
    ("undeclared", 20_000, "has 200x150 frames (30000 pixels), over the limit of 20000 pixels"),
])
def test_frames_larger_than_declared_or_the_limit_are_refused_before_upscaling(sources_site, tmp_path, mode, limit,
                                                                                needle):
    limited = ["--max-pixels", limit] if limit else []
    done = upscale_hostile(sources_site, f"hostile:{mode}", "-o", tmp_path / "out.mkv", *limited)
    assert_one_line_error(done, f"source Hostile (hostile:{mode}) of plugin 'hostile_sources' (1.0) ", needle)
    assert listing(tmp_path) == []


def test_a_frame_of_srpipes_own_reader_over_the_limit_is_told_by_the_files_name():
    """srpipe's reader declares its header's size, and a later frame may be larger: the refusal named
    srpipe's own class, 'source PyAVSource (clip.mp4)', as if a plugin were at fault."""
    from srpipe.media import Source
    from srpipe.pipeline import check_frame

    class Reader(Source):  # opened by no plugin, as srpipe's own
        location = "clip.mp4"

        def items(self):
            return iter(())

    planes = [np.zeros((480, 640), np.uint8), np.zeros((240, 320), np.uint8), np.zeros((240, 320), np.uint8)]
    with pytest.raises(SrpipeError, match=r"^clip\.mp4 has 640x480 frames"):
        check_frame(Frame(tuple(planes), PLANE_FORMATS["yuv420p"], False), None, Reader(), 100_000)


@pytest.mark.parametrize("luma", [[[0] * 8] * 6, np.zeros(48, np.uint8)])
def test_a_frame_whose_luma_is_no_picture_is_refused_naming_the_source(luma):
    """It ended in "unexpected AttributeError: 'list' object has no attribute 'shape'"."""
    from srpipe.media import Source
    from srpipe.pipeline import check_frame

    class Listing(Source):
        location = "listing:"

        def items(self):
            return iter(())

    chroma = np.zeros((3, 4), np.uint8)
    with pytest.raises(SrpipeError, match=r"^source Listing \(listing:\) gave a yuv420p frame whose plane 0 is "):
        check_frame(Frame((luma, chroma, chroma), PLANE_FORMATS["yuv420p"], False), None, Listing(), 100_000)


# 3. Commands: no plugin takes over one that another added first ---------------------------------

TAKING_COMMANDS = """
import click

from srpipe import hookimpl


@click.command(name="upscale")
@click.argument("args", nargs=-1)
def impostor(args):
    click.echo("impostor upscale")


@click.command(name="espcn")
def fake_training():
    click.echo("impostor training")


@click.command(name="mine")
def mine():
    click.echo("a command of its own")


@hookimpl
def register_commands(cli):
    cli.commands["upscale"] = impostor
    cli.commands["train"].commands["espcn"] = fake_training
    del cli.commands["plugins"]
    cli.add_command(mine)
"""


def test_no_plugin_takes_over_a_command_however_it_writes_it(tmp_path):
    """Writing into cli.commands replaced srpipe's own upscale (and train espcn) without a word;
    only cli.add_command was guarded."""
    site = fake_plugin(tmp_path / "site", "taking_commands", TAKING_COMMANDS)
    env = {"PYTHONPATH": str(site)}
    for command, own in ((["upscale", "--help"], b"Upscale a video"), (["train", "espcn", "--help"], b"--epochs"),
                         (["plugins"], b"taking_commands"), (["mine"], b"a command of its own")):
        done = run_srpipe(*command, env=env)
        assert done.returncode == 0 and own in done.stdout and b"impostor" not in done.stdout, done.stderr.decode()
        assert done.stderr.decode().splitlines() == [
            "Warning: plugin 'taking_commands' failed in register_commands and is skipped: ValueError: commands "
            "'train espcn', 'upscale', 'plugins' are already added by another plugin"]


# 4. A model's upscale or a source's items that prints, or changes the working folder ------------

RESTLESS_MODELS = """
import os
import sys
import threading

from srpipe import hookimpl
from srpipe.models import ModelSpec


class Nearest:
    scale = 2

    def __init__(self, mode):
        self.mode = mode

    def upscale(self, luma, *, bit_depth, full_range):
        if self.mode == "talky":
            print("DEBUG: upscaling", luma.shape)
            sys.stdout.writelines(["DEBUG: lines\\n"])
        else:
            os.chdir(os.environ["SRPIPE_TEST_ELSEWHERE"])
        return luma.repeat(2, axis=1).repeat(2, axis=2)


@hookimpl
def register_models(register):
    for mode in ("talky", "wanderer"):
        register(ModelSpec(name=mode, scales=(2,), description="", load=lambda mode=mode, **kw: Nearest(mode),
                           uses_gpu=False))
"""


@pytest.fixture(scope="module")
def restless_site(tmp_path_factory):
    site = fake_plugin(tmp_path_factory.mktemp("site"), "hostile_sources", SOURCES)
    return fake_plugin(site, "restless_models", RESTLESS_MODELS)


def test_prints_in_upscale_and_items_stay_out_of_the_video_on_standard_output(restless_site, tmp_path):
    """The file of -o - began with "DEBUG: upscaling (8, 48, 64)", and played as nothing."""
    done = run_srpipe("upscale", "hostile:talky", "-m", "talky", "-o", "-", "--format", "matroska",
                      env={"PYTHONPATH": str(restless_site)})
    assert done.returncode == 0, done.stderr.decode()
    (tmp_path / "piped.mkv").write_bytes(done.stdout)
    assert len(video_info(tmp_path / "piped.mkv")["times"]) == 4
    stderr = done.stderr.decode()
    assert "DEBUG: upscaling (" in stderr and "DEBUG: reading frame 3" in stderr and "DEBUG: lines" in stderr


def test_prints_in_upscale_stay_out_of_the_json_of_a_run_into_a_file(restless_site, tmp_path):
    """--json began with "DEBUG: upscaling (8, 48, 64)" where the output was a file."""
    done = run_srpipe("upscale", "hostile:talky", "-m", "talky", "-o", tmp_path / "out.mkv", "--json",
                      env={"PYTHONPATH": str(restless_site)})
    assert done.returncode == 0, done.stderr.decode()
    assert json.loads(done.stdout)["frames"] == 4
    assert "DEBUG: upscaling (" in done.stderr.decode()


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_prints_in_upscale_stay_out_of_the_json_of_a_batch(restless_site, tmp_path, jobs):
    """In this process (one job) or in the workers, which share its standard output."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in "ab":
        make_test_video(inputs / f"{name}.mp4", frames=2, audio=False)
    done = run_srpipe("batch", inputs, tmp_path / "out", "-m", "talky", "--jobs", jobs, "--json", "-q",
                      env={"PYTHONPATH": str(restless_site)})
    assert done.returncode == 0, done.stderr.decode()
    assert json.loads(done.stdout)["done"] == 2
    assert "DEBUG: upscaling (" in done.stderr.decode()


def test_standard_output_is_put_back_when_plugin_code_in_threads_ends_in_any_order():
    """Each put back what it found: where the one that began first ended first, the other left
    the diversion in place for good, and later JSON went to standard error."""
    from srpipe.plugin_guard import plugin_code

    real = sys.stdout
    first_in, second_in, checked, first_out = (threading.Event() for _ in range(4))

    def first():
        with plugin_code("first"):
            first_in.set()
            checked.wait(10)
        first_out.set()

    def second():
        first_in.wait(10)
        with plugin_code("second"):
            second_in.set()
            first_out.wait(10)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    second_in.wait(10)
    assert sys.stdout is not real  # diverted while they run
    checked.set()
    for thread in threads:
        thread.join(10)
    assert sys.stdout is real


def test_an_upscale_that_changes_the_working_folder_leaves_the_output_where_it_was_named(restless_site, tmp_path):
    """The output went to the folder the model moved to, while the summary said "-> out.mp4"."""
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    work.mkdir()
    elsewhere.mkdir()
    make_test_video(work / "clip.mp4", frames=3)
    # this srpipe, not an installed one: from another folder, python -m finds srpipe on the path alone
    path = os.pathsep.join([str(restless_site), str(REPO)])
    done = run_srpipe("upscale", "clip.mp4", "-m", "wanderer", "-o", "out.mp4", cwd=work,
                      env={"PYTHONPATH": path, "SRPIPE_TEST_ELSEWHERE": str(elsewhere)})
    assert done.returncode == 0, done.stderr.decode()
    assert listing(work) == ["clip.mp4", "out.mp4"] and listing(elsewhere) == []
    assert len(video_info(work / "out.mp4")["times"]) == 3
    assert done.stderr.decode().splitlines()[0] == ("Warning: a plugin upscaling clip.mp4 changed the working folder; "
                                                    "srpipe put it back")


# 5. Backends that cannot prepare a network, or give the wrong shape -----------------------------

BACKENDS = """
import numpy as np

from srpipe import hookimpl
from srpipe.backends import Backend


def fails(network, device):
    raise RuntimeError("engine init failed: libfoo.so missing")


def wrong_shape(network, device):
    return lambda x: np.zeros((1, 1, 1, 1), np.float32)


@hookimpl
def register_backends(register):
    register(Backend(name="broken-top", devices=("cpu",), priority=1000, is_available=lambda: True, prepare=fails))
    register(Backend(name="wrong-shape", devices=("cpu",), priority=0, is_available=lambda: True,
                     prepare=wrong_shape))
    register(Backend(name="absent", devices=("cpu",), priority=500, is_available=lambda: False, prepare=fails))
"""


def test_auto_passes_a_backend_that_cannot_prepare_and_a_named_one_stays_an_error(tmp_path):
    """A plugin's backend of the highest priority whose prepare fails broke every espcn run under
    --backend auto, with no fallback."""
    site = fake_plugin(tmp_path / "site", "hostile_backends", BACKENDS)
    clip = make_test_video(tmp_path / "clip.mp4", frames=2, audio=False)
    failed = ("backend broken-top (plugin hostile_backends) could not prepare the network: RuntimeError: engine init "
              "failed: libfoo.so missing")
    done = run_srpipe("upscale", clip, "-m", "espcn", "--device", "cpu", "--json", env={"PYTHONPATH": str(site)})
    assert done.returncode == 0, done.stderr.decode()
    assert json.loads(done.stdout)["backend"] not in ("broken-top", "absent")
    assert done.stderr.decode().splitlines() == [f"Warning: {failed}; --backend auto takes the next backend"]
    done = run_srpipe("upscale", clip, "-m", "espcn", "--device", "cpu", "--backend", "broken-top", "-y",
                      env={"PYTHONPATH": str(site)})
    assert_one_line_error(done, f"{failed}; use another --backend")


def test_a_backend_that_gives_the_wrong_shape_is_named(tmp_path):
    """It said "unexpected ValueError: non-broadcastable output operand ...", naming nothing."""
    site = fake_plugin(tmp_path / "site", "hostile_backends", BACKENDS)
    clip = make_test_video(tmp_path / "clip.mp4", frames=2, audio=False)
    done = run_srpipe("upscale", clip, "-m", "espcn", "--device", "cpu", "--backend", "wrong-shape",
                      env={"PYTHONPATH": str(site)})
    assert_one_line_error(done, "backend wrong-shape (plugin hostile_backends) gave (1, 1, 1, 1) for an input of (",
                          "; use another --backend")
    assert listing(tmp_path) == ["clip.mp4", "site"]


def test_no_refusal_suggests_a_backend_that_could_not_prepare(tmp_path):
    """A named backend that is not available is refused with the one auto would take: never one
    that failed in this process (a live session, which loads its models again, keeps the registry)."""
    import types

    from srpipe.backends import load_upscaler
    from srpipe.plugins import collect_backends, collect_models
    from srpipe.testing import make_plugin_manager

    plugin = types.ModuleType("hostile_backends")
    exec(BACKENDS, plugin.__dict__)
    pm = make_plugin_manager()
    pm.register(plugin, name="hostile_backends")
    backends = collect_backends(pm)
    spec = collect_models(pm).get("espcn")
    with pytest.warns(UserWarning, match="backend broken-top .* could not prepare the network"):
        upscaler = load_upscaler(spec, backends, scale=2, device="cpu", weights=None)
    assert upscaler.backend != "broken-top"
    with pytest.raises(SrpipeError, match="^absent is not available here; use --backend ") as caught:
        backends.select("absent", "cpu")
    assert "broken-top" not in str(caught.value)


# 6. Errors that name the plugin ----------------------------------------------------------------


def test_a_plugins_junk_is_told_with_the_plugins_name(sources_site, tmp_path):
    clip = make_test_video(tmp_path / "clip.mp4", frames=2)
    # it said "unexpected AttributeError: 'str' object has no attribute 'stream'"
    assert_one_line_error(upscale_hostile(sources_site, "hostile:packet", "-o", tmp_path / "out.mkv"),
                          "source Hostile (hostile:packet) of plugin 'hostile_sources' (1.0) gave a str beside its "
                          "frames, where only packets of its passthrough streams go; the plugin that reads it is "
                          "broken")
    # it said "a plugin opened ..." without saying which
    for args, what in ((["junk:x", "-o", tmp_path / "out.mkv"], "opened junk:x as a str, not a srpipe.media.Source"),
                       ([clip, "-o", tmp_path / "out.refuse"],
                        f"opened {tmp_path / 'out.refuse'} as a str, not a srpipe.media.Sink")):
        assert_one_line_error(upscale_hostile(sources_site, *args),
                              f"plugin 'hostile_sources' (1.0) {what}; run without it "
                              "(SRPIPE_DISABLE_PLUGINS=hostile_sources) and report it to its authors")
    assert listing(tmp_path) == ["clip.mp4"]
    # it said "sink AbortFails could not remove ..."
    done = upscale_hostile(sources_site, "hostile:fail", "-o", tmp_path / "out.failabort")
    assert done.returncode == 1
    assert done.stderr.decode().splitlines() == [
        f"Warning: sink AbortFails ({tmp_path / 'out.failabort'}) of plugin 'hostile_sources' (1.0) could not remove "
        "what it had written: RuntimeError: abort failed too",
        "Error: hostile:fail fails at frame 3"]


# 7. A size change of a plugin's source is told in its sizes ------------------------------------


@pytest.mark.parametrize("mode, sizes", [("shrinks", "from 64x48 to 32x24"),
                                         ("grows", "upscaled from 128x96 to 160x120")])  # declares no size
def test_a_size_change_from_a_plugins_source_is_told_in_its_sizes(sources_site, tmp_path, mode, sizes):
    """It said "from 128x96 to 64x48" (the upscaled sizes, as the input's) and told the user to run
    an ffmpeg command on a source that is no file. (No ffmpeg program runs here.)"""
    done = upscale_hostile(sources_site, f"hostile:{mode}", "-o", tmp_path / "out.mkv")
    assert_one_line_error(done, f"hostile:{mode} changes frame size mid-stream, {sizes} at 0.080 s; "
                                "a video file holds one size")
    assert "ffmpeg" not in done.stderr.decode()
    assert listing(tmp_path) == []


def test_where_every_backend_fails_to_prepare_the_error_tells_the_last_failure():
    """It ended in "no inference backend is available here for cpu", the reason lost."""
    from srpipe.backends import BackendFailed, load_upscaler
    from srpipe.models import ModelSpec
    from srpipe.plugins import collect_backends
    from srpipe.testing import make_plugin_manager

    def load(backend, **kw):
        raise BackendFailed(backend, RuntimeError("out of memory"))

    backends = collect_backends(make_plugin_manager())
    spec = ModelSpec(name="greedy", scales=(2,), description="", load=load, accepts_backend=True)
    with pytest.warns(UserWarning, match="could not prepare the network"):
        with pytest.raises(SrpipeError, match=r"^backend \S+ \(plugin \S+\) could not prepare the network: "
                                              r"RuntimeError: out of memory, and no other backend is available "
                                              r"here for cpu$"):
            load_upscaler(spec, backends, scale=2, device="cpu", weights=None)


def test_opening_takes_frozen_sources_and_wrappers_and_makes_a_system_exit_the_plugins():
    """A frozen dataclass for a source ended in "FrozenInstanceError: cannot assign to field
    '_srpipe_plugin'"; a pluggy wrapper on open_source was called alone and saw None; a
    SystemExit in open_source ended srpipe without a word."""
    import dataclasses

    from srpipe import hookimpl
    from srpipe.media import Source, SourceOptions, open_source, opened_by
    from srpipe.plugin_guard import PluginExit
    from srpipe.testing import make_plugin_manager

    @dataclasses.dataclass(frozen=True)
    class Frozen(Source):
        location: str = ""

        def items(self):
            return iter(())

    class Opens:
        @hookimpl
        def open_source(self, location, options):
            if location == "exit:":
                raise SystemExit(2)
            return Frozen(location) if location.startswith("frozen:") else None

    class Wraps:
        seen = []

        @hookimpl(wrapper=True)
        def open_source(self, location, options):
            opened = yield
            self.seen.append(opened)
            return opened

    pm = make_plugin_manager()
    pm.register(Opens(), name="opens")
    pm.register(Wraps(), name="wraps")
    source = open_source(pm, "frozen:x", SourceOptions())
    assert isinstance(source, Frozen) and opened_by(source) == "plugin 'opens' (unknown version)"
    assert Wraps.seen == [source]
    with pytest.raises(PluginExit):
        open_source(pm, "exit:", SourceOptions())


# 8. A plugin's picture, and a source whose close fails -------------------------------------------


def test_a_plugins_picture_is_written_as_a_video_and_an_image_name_is_refused_pointing_there(sources_site, tmp_path):
    """Every output was refused: a video's name for being no image's (.png...), and an image's
    for coming from a plugin, whose error said to write it as a video (.mkv)."""
    for name in ("out.mkv", "out.mp4"):
        done = upscale_hostile(sources_site, "picture:", "-o", tmp_path / name)
        assert done.returncode == 0, done.stderr.decode()
        written = video_info(tmp_path / name)
        assert (written["width"], written["height"], len(written["luma"])) == (128, 96, 1)
    streamed = upscale_hostile(sources_site, "picture:", "-o", "-", "--format", "matroska")
    assert streamed.returncode == 0 and streamed.stdout.startswith(b"\x1a\x45\xdf\xa3"), streamed.stderr.decode()
    assert_one_line_error(upscale_hostile(sources_site, "picture:", "-o", tmp_path / "out.png"),
                          "picture: is an image from a plugin; srpipe's image writer takes only images it read itself: "
                          "write it as a video (.mkv)")
    assert listing(tmp_path) == ["out.mkv", "out.mp4"]


def test_a_source_whose_close_fails_is_warned_of_and_its_finished_output_kept(sources_site, tmp_path):
    """The run failed (exit 1, "unexpected RuntimeError ... close exploded"), printing no --json,
    and left the complete output in place."""
    done = upscale_hostile(sources_site, "hostile:closefails", "-o", tmp_path / "out.mkv", "--json")
    assert done.returncode == 0, done.stderr.decode()
    assert done.stderr.decode().splitlines() == [
        "Warning: source Hostile (hostile:closefails) of plugin 'hostile_sources' (1.0) could not close: "
        "RuntimeError: close exploded"]
    assert json.loads(done.stdout)["frames"] == 4
    assert len(video_info(tmp_path / "out.mkv")["luma"]) == 4
    # a run that fails tells its own error, not the close's
    failed = upscale_hostile(sources_site, "hostile:closefails-fail", "-o", tmp_path / "failed.mkv")
    assert_one_line_error(failed, "Error: hostile:closefails-fail fails at frame 3")
    assert "could not close: RuntimeError: close exploded" in failed.stderr.decode()
    assert listing(tmp_path) == ["out.mkv"]


def test_a_network_output_no_sink_plugin_takes_is_told_as_given(sources_site, tmp_path):
    """With a plugin's open_sink installed, it said "output rtmp:/example.org/live ...": one slash."""
    clip = make_test_video(tmp_path / "clip.mp4", frames=2)
    assert_one_line_error(upscale_hostile(sources_site, clip, "-o", "rtmp://example.org/live"),
                          "Error: output rtmp://example.org/live is a network address; srpipe writes files")
    assert listing(tmp_path) == ["clip.mp4"]


BROKEN_MODEL = '''
from srpipe import hookimpl
from srpipe.errors import NonFiniteOutput
from srpipe.models import ModelSpec


class Broken:
    scale = 2

    def upscale(self, luma, *, bit_depth, full_range):
        raise NonFiniteOutput("the network gave NaN")


@hookimpl
def register_models(register):
    register(ModelSpec(name="bad-nan", scales=(2,), description="", load=lambda **kw: Broken(), uses_gpu=False))
'''


def test_a_model_that_gives_nan_is_told_as_the_guide_quotes_it(tmp_path):
    """The message had a comma the guide's quote has not ("(--weights), or use another model")."""
    site = fake_plugin(tmp_path / "site", "broken_model", BROKEN_MODEL)
    clip = make_test_video(tmp_path / "clip.mp4", frames=2)
    done = run_srpipe("upscale", clip, "-m", "bad-nan", "-o", tmp_path / "out.mp4", env={"PYTHONPATH": str(site)})
    assert_one_line_error(done, "Error: model 'bad-nan' is broken: the network gave NaN; check its weights (--weights) "
                                "or use another model")
    assert "Error: model 'M' is broken: <message>; check its weights (--weights) or use another model" in \
        (REPO / "docs" / "plugins.md").read_text()
    assert listing(tmp_path) == ["clip.mp4", "site"]
