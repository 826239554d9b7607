"""Sizes that do not enlarge are refused before decoding or loading a model, every size that
passes enlarges in every pixel format, and -s takes plain decimal numbers only (issue #27)."""

import json
import os
import subprocess
import sys

import click
import cv2
import pytest

from srpipe.cli import options
from srpipe.errors import SrpipeError
from srpipe.frames import PLANE_FORMATS
from srpipe.sizing import SizePlan
from srpipe.testing import make_test_image, make_test_video

from media import video_info

FORMATS = [None, *(PLANE_FORMATS[f] for f in ("yuv420p", "yuv422p", "yuv444p"))]


@pytest.mark.parametrize("plan, message", [
    (SizePlan(scale=1.01), "adds less than a pixel to each side; give -s 1.0157 or more"),  # 64.6 x 48.5
    (SizePlan(scale=1.0001), "give -s 1.0157 or more"),
    (SizePlan(width=256, height=2), "the height would shrink"),
    (SizePlan(width=200, height=47), "the height would shrink"),
    (SizePlan(height=40), "the width and height would shrink"),  # the width keeps the aspect ratio
    (SizePlan(width=64), "it is the input's own size"),
    (SizePlan(width=64, height=48), "it is the input's own size"),
])
def test_sizes_that_do_not_enlarge_a_64x48_input_are_refused(plan, message):
    with pytest.raises(SrpipeError, match=f"is not larger than the input \\(64x48\\): .*{message}"):
        plan.model_scale((2, 3, 4), "m", 64, 48)  # from the header, before decoding
    for fmt in FORMATS:  # and at the first frame, for a stream that no header sized
        with pytest.raises(SrpipeError, match="is not larger than the input"):
            plan.size(64, 48, fmt)


@pytest.mark.parametrize("plan, size", [
    (SizePlan(scale=1.0157), (66, 48)),              # the least factor the error names: 65.005 -> even 66
    (SizePlan(scale=1.02), (66, 48)),
    (SizePlan(width=65), (65, 48)),                  # 48.75 -> the nearest even height, 48
    (SizePlan(width=200, height=48), (200, 48)),     # one side kept: stretched sideways
])
def test_sizes_that_enlarge_a_64x48_input_pass(plan, size):
    assert plan.model_scale((2, 3, 4), "m", 64, 48) in (2, 3, 4)
    assert plan.size(64, 48, PLANE_FORMATS["yuv420p"]) == size


def test_every_size_that_passes_enlarges_in_every_format():
    """What the header check lets through cannot be rounded back to the input's size, or below
    it, by the rounding to the chroma subsampling of any pixel format."""
    plans = [SizePlan(scale=s) for s in (1.0001, 1.01, 1.02, 1.04, 1.07, 1.1, 1.5)]
    plans += [SizePlan(width=w) for w in (9, 20, 31)] + [SizePlan(height=h) for h in (9, 20, 31)]
    passed = 0
    for width in range(1, 33):
        for height in range(1, 33):
            for plan in plans:
                try:
                    plan.check_enlarges(width, height)
                except SrpipeError:
                    continue
                passed += 1
                for fmt in FORMATS:
                    out_width, out_height = plan.size(width, height, fmt)
                    assert out_width >= width and out_height >= height, (plan, width, height, fmt)
                    assert (out_width, out_height) != (width, height), (plan, width, height, fmt)
    assert passed > 5000  # most of them: the refusals are the edge


def test_a_stream_whose_frames_change_size_is_checked_again():
    plan = SizePlan(width=100)
    assert plan.size(64, 48, None) == (100, 75)
    with pytest.raises(SrpipeError, match=r"the width and height would shrink"):
        plan.size(128, 96, None)


@pytest.fixture
def clip(tmp_path):
    return make_test_video(tmp_path / "clip.mp4", frames=3)  # 64x48 yuv420p


REFUSING_PLUGIN = '''
from srpipe import hookimpl
from srpipe.errors import SrpipeError
from srpipe.models import ModelSpec


def load(**kwargs):
    raise SrpipeError("the model was loaded")


@hookimpl
def register_models(register):
    register(ModelSpec(name="refuses-to-load", scales=(2, 3, 4), description="fails to load", load=load))
'''


@pytest.mark.parametrize("args, message", [
    (["-s", "1.01"], "--scale 1.01 is not larger than the input (64x48): it adds less than a pixel"),
    (["--width", "256", "--height", "2"], "--width 256 --height 2 is not larger than the input (64x48)"),
])
def test_upscale_refuses_before_the_model_loads_and_writes_nothing(tmp_path, clip, args, message):
    from plugin_helpers import fake_plugin

    site = fake_plugin(tmp_path / "site", "refusing_plugin", REFUSING_PLUGIN)
    for model in ("bicubic", "refuses-to-load"):
        out = tmp_path / f"{model}.mp4"
        command = [sys.executable, "-m", "srpipe", "upscale", str(clip), "-m", model, *args, "-o", str(out)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=300,
                              env={**os.environ, "PYTHONPATH": os.pathsep.join([str(site), *sys.path])})
        assert done.returncode == 1 and message in done.stderr, done.stderr
        assert done.stderr.count("\n") == 1 and "loaded" not in done.stderr
        assert not out.exists()


def test_batch_fails_the_files_a_size_does_not_enlarge_and_does_the_others(cli_run, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    make_test_video(folder / "wide.mp4", frames=3)              # 64x48: --height 40 would shrink it
    make_test_image(folder / "small.png", width=40, height=30)  # 100x40 enlarges it
    result = cli_run("batch", folder, tmp_path / "out", "--width", "100", "--height", "40", "--json")
    assert result.exit_code == 1
    files = {row["input"]: row for row in json.loads(result.stdout)["files"]}
    assert files["wide.mp4"]["status"] == "failed"
    assert "--width 100 --height 40 is not larger than the input (64x48)" in files["wide.mp4"]["error"]
    assert files["small.png"]["status"] == "done"
    assert cv2.imread(str(tmp_path / "out" / "small.png")).shape == (40, 100, 3)
    assert not (tmp_path / "out" / "wide.mp4").exists()


@pytest.mark.parametrize("text, value", [("2", 2), ("2.0", 2), ("2.", 2), ("1.5", 1.5), ("3.25", 3.25),
                                         (" 1.50000 ", 1.5), ("64", 64), (2, 2), (1.5, 1.5)])
def test_scale_takes_plain_decimal_numbers(text, value):
    got = options.SCALE.convert(text, None, None)
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize("text, message", [
    ("1_5", "is not a number"),      # Python's Fraction and int read it as 15
    ("1e308", "is not a number"),
    ("1e3", "is not a number"),
    ("inf", "is not a number"),
    ("nan", "is not a number"),
    ("+2", "is not a number"),
    ("0x10", "is not a number"),
    ("3/2", "is not a number"),
    ("１.5", "is not a number"),      # full-width digits, which \d and float() take
    ("٢", "is not a number"),
    ("1" * 5000, "is not a number"),  # more digits than Python converts to an int
    ("-2", "does not enlarge"),
    ("0", "does not enlarge"),
    ("1", "does not enlarge; srpipe upscales by factors above 1"),
    ("64.0001", "is above 64"),
    ("100", "is above 64"),
    ("1" + "0" * 308, "is above 64"),
    ("1.23456", "more than four decimals"),
])
def test_scale_refuses_what_is_no_plain_factor(text, message):
    with pytest.raises(click.BadParameter, match=message):
        options.SCALE.convert(text, None, None)


@pytest.mark.parametrize("text", ["1_5", "1e308", "100", "1" + "0" * 308])
def test_nonsense_scales_are_usage_errors_shown_as_typed(cli_run, clip, text):
    result = cli_run("upscale", clip, "-s", text)
    assert result.exit_code == 2, result.output
    error = result.stderr.splitlines()[-1]
    assert error.startswith("Error: Invalid value for '-s' / '--scale'") and text in error
    assert len(error) < 120 + len(text)  # the value as typed, not a 309-digit expansion of 1e308
    assert not any(p.name != clip.name for p in clip.parent.iterdir())


def test_the_least_factor_the_error_names_enlarges(cli_run, clip, tmp_path):
    refused = cli_run("upscale", clip, "-s", "1.0156", "-o", tmp_path / "a.mp4")
    assert refused.exit_code == 1 and "give -s 1.0157 or more" in refused.stderr
    done = cli_run("upscale", clip, "-s", "1.0157", "-o", tmp_path / "b.mp4")
    assert done.exit_code == 0, done.output
    info = video_info(tmp_path / "b.mp4")
    assert (info["width"], info["height"]) == (66, 48)
