"""Fractional scales (-s 1.5) and target sizes (--width/--height): exact dimensions, chroma
that follows, odd sizes by the existing rules, and the resize kernel held to its definition."""

import json

import cv2
import numpy as np
import pytest

from srpipe.errors import SrpipeError
from srpipe.frames import PLANE_FORMATS
from srpipe.resize import shrink_plane
from srpipe.sizing import SizePlan
from srpipe.testing import damage_video, make_test_image, make_test_video

from conftest import run_srpipe
from media import sited_cubic, video_info

YUV420, YUV422, YUV444 = (PLANE_FORMATS[f] for f in ("yuv420p", "yuv422p", "yuv444p"))


@pytest.mark.parametrize("plan, fmt, size", [
    (SizePlan(scale=1.5), YUV420, (96, 72)),             # 64x48 x1.5
    (SizePlan(scale=3.5), YUV420, (224, 168)),
    (SizePlan(width=200), YUV420, (200, 150)),
    (SizePlan(height=100), YUV420, (134, 100)),           # 133.3 -> the nearest even width
    (SizePlan(height=100), YUV444, (133, 100)),           # no subsampling: the nearest width
    (SizePlan(width=201, height=91), YUV420, (201, 91)),  # given: kept, even if odd
])
def test_sizes_of_a_64x48_input(plan, fmt, size):
    assert plan.size(64, 48, fmt) == size


def test_computed_sides_round_to_the_chroma_subsampling():
    assert SizePlan(scale=1.5).size(641, 359, YUV420) == (962, 538)  # 961.5 x 538.5
    assert SizePlan(scale=1.5).size(641, 359, YUV422) == (962, 539)  # 4:2:2: only widths halve
    assert SizePlan(scale=1.5).size(641, 359, YUV444) == (962, 539)  # halves round up
    assert SizePlan(scale=1.5).size(641, 359, None) == (962, 539)    # grey, images
    # a --pix-fmt that subsamples more than the input: its rounding (4:2:0 from a 4:2:2 or 4:4:4 master)
    assert SizePlan(scale=1.5, pix_fmt="yuv420p").size(641, 359, YUV444) == (962, 538)
    assert SizePlan(width=832, pix_fmt="yuv420p").size(640, 361, YUV422) == (832, 470)  # 469.3
    assert SizePlan(scale=1.5, pix_fmt="yuv444p").size(641, 359, YUV420) == (962, 538)  # never finer than the input


def test_a_computed_size_fits_the_pix_fmt_asked_for(cli_run, tmp_path):
    clip = make_test_video(tmp_path / "master.mkv", width=640, height=361, frames=2, codec="ffv1", pix_fmt="yuv422p",
                           audio=False)
    done = cli_run("upscale", clip, "--width", "832", "--pix-fmt", "yuv420p", "-o", tmp_path / "out.mp4")
    assert done.exit_code == 0, done.output
    info = video_info(tmp_path / "out.mp4")
    assert (info["width"], info["height"], info["pix_fmt"]) == (832, 470, "yuv420p")


@pytest.mark.parametrize("plan, scales, size, model_scale", [
    (SizePlan(scale=1.5), (2, 3, 4), None, 2),
    (SizePlan(scale=2.5), (2, 3, 4), None, 3),
    (SizePlan(scale=3.5), (2, 3, 4), None, 4),
    (SizePlan(scale=1.5), (4,), None, 4),
    (SizePlan(width=1920), (2, 3, 4), (640, 360), 3),
    (SizePlan(width=1280, height=720), (2, 3, 4), (640, 360), 2),
    (SizePlan(width=1281, height=360), (2, 3, 4), (640, 360), 3),
])
def test_the_model_runs_at_the_next_scale_it_has(plan, scales, size, model_scale):
    assert plan.model_scale(scales, "m", *(size or (None, None))) == model_scale


@pytest.mark.parametrize("make, message", [
    (lambda: SizePlan(scale=4.5).model_scale((2, 3, 4), "m"), "goes up to x4"),
    (lambda: SizePlan(width=500).model_scale((2, 3, 4), "m", 100, 100), "goes up to x4"),
    (lambda: SizePlan(width=64, height=40).model_scale((2, 3, 4), "m", 64, 48), "not larger than the input"),
    (lambda: SizePlan(scale=0.5), "does not enlarge"),
    (lambda: SizePlan(scale=1.5, width=100), "not both"),
    (lambda: SizePlan(width=100).model_scale((2,), "m"), "use --scale instead"),
])
def test_impossible_sizes_are_refused(make, message):
    with pytest.raises(SrpipeError, match=message):
        make()


def keys(x, a=-0.75):
    x = np.abs(x)
    return np.where(x <= 1, (a + 2) * x**3 - (a + 3) * x**2 + 1,
                    np.where(x < 2, a * x**3 - 5 * a * x**2 + 8 * a * x - 4 * a, 0))


def antialiased_keys(n_in, n_out):
    """The (n_out, n_in) matrix of Keys' cubic widened by the ratio: what shrink_plane computes."""
    ratio = n_out / n_in
    centres = (np.arange(n_out) + 0.5) / ratio - 0.5
    weights = keys((np.arange(n_in)[None, :] - centres[:, None]) * min(ratio, 1))
    return weights / weights.sum(1, keepdims=True)


@pytest.mark.parametrize("size", [(120, 90), (100, 75), (150, 113)])
def test_shrinking_follows_the_antialiased_kernel(size):
    plane = np.zeros((120, 160), np.uint8)  # hard 0/255 edges: where a clipped intermediate shows
    plane[:, 80:] = 255
    plane[40:60, :] = 255
    plane[::7, ::5] = 0
    width, height = size
    exact = np.clip(antialiased_keys(120, height) @ plane.astype(float) @ antialiased_keys(160, width).T, 0, 255)
    full = shrink_plane(plane, width, height, 255, full_range=True)
    assert full.shape == (height, width) and full.dtype == np.uint8
    assert np.abs(full - exact)[4:-4, 4:-4].max() <= 1  # inside: no edge handling in the reference
    deep = shrink_plane(plane.astype(np.uint16) * 257, width, height, 65535, full_range=True)
    assert np.abs(deep / 257 - exact)[4:-4, 4:-4].max() <= 1
    limited = shrink_plane(np.clip(plane, 16, 235), width, height, 255)  # limited range: at its own depth
    exact = np.clip(antialiased_keys(120, height) @ np.clip(plane, 16, 235) @ antialiased_keys(160, width).T, 0, 255)
    assert np.abs(limited - exact)[4:-4, 4:-4].max() < 2.5  # swscale's fixed point, as at whole scales


@pytest.fixture
def clip(tmp_path):
    return make_test_video(tmp_path / "clip.mp4", frames=4)  # 64x48 yuv420p


@pytest.mark.parametrize("args, name, size", [
    (["-s", "1.5"], "clip_x1.5.mp4", (96, 72)),
    (["-s", "2.5", "-m", "lanczos"], "clip_x2.5.mp4", (160, 120)),
    (["--width", "200"], "clip_w200.mp4", (200, 150)),
    (["--height", "100"], "clip_h100.mp4", (134, 100)),
    (["--width", "200", "--height", "90"], "clip_200x90.mp4", (200, 90)),
])
def test_upscale_to_fractional_scales_and_target_sizes(cli_run, clip, args, name, size):
    result = cli_run("upscale", clip, *args, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    info = video_info(clip.parent / name)
    assert (info["width"], info["height"]) == size == (summary["width"], summary["height"])
    assert len(info["times"]) == 4 and info["times"] == video_info(clip)["times"]
    assert info["pix_fmt"] == "yuv420p"


@pytest.mark.parametrize("args, shown", [
    (["--width", "72"], (72, 96)),  # shown 48x64: 72 wide enlarges it (stored, it would shrink 64)
    (["--height", "128"], (96, 128)),
    (["--width", "96", "--height", "100"], (96, 100)),
    (["-s", "1.5"], (72, 96)),
])
def test_target_sizes_size_a_turned_video_as_it_is_shown(cli_run, tmp_path, args, shown):
    """A phone's portrait video is stored on its side with a quarter turn to show it: --width
    sized the stored picture, so the output showed at the wrong size, and a width that enlarges
    the picture as shown was refused as shrinking it."""
    clip = make_test_video(tmp_path / "phone.mp4", width=64, height=48, frames=3, rotation=90)
    result = cli_run("upscale", clip, *args, "-o", tmp_path / "out.mp4", "--json")
    assert result.exit_code == 0, result.output
    info = video_info(tmp_path / "out.mp4")
    assert info["rotation"] in (90, -90) and (info["height"], info["width"]) == shown
    summary = json.loads(result.stdout)
    assert (summary["width"], summary["height"]) == shown


def test_a_turned_video_on_standard_input_is_sized_as_stored_and_said_so(tmp_path):
    """A stream cannot be read twice for its first frame's turn: sized as stored, without a word,
    the output showed at another width than asked."""
    clip = make_test_video(tmp_path / "phone.mkv", width=64, height=48, frames=3, rotation=90)
    done = run_srpipe("upscale", "-", "--width", "96", "-o", tmp_path / "out.mkv", input=clip.read_bytes())
    assert done.returncode == 0, done.stderr.decode()
    assert "Warning: standard input is shown turned a quarter, and was sized as stored (96x72, shown the other " \
           "way round)" in done.stderr.decode()
    info = video_info(tmp_path / "out.mkv")
    assert (info["width"], info["height"]) == (96, 72) and info["rotation"] in (90, -90)


def test_a_size_that_shrinks_a_turned_video_as_shown_is_refused_in_those_terms(cli_run, tmp_path):
    clip = make_test_video(tmp_path / "phone.mp4", width=64, height=48, frames=3, rotation=90)
    result = cli_run("upscale", clip, "--height", "60", "-o", tmp_path / "out.mp4")
    assert result.exit_code == 1
    assert "--height 60 is not larger than the input (48x64 as shown): the width and height would shrink" \
        in result.stderr
    assert not (tmp_path / "out.mp4").exists()


def test_a_target_size_on_a_clip_whose_first_frame_is_damaged_is_told_as_damage(tmp_path):
    """Whether the picture is shown turned is read from the first frame: a damaged one made
    --width end in an unexpected error, where -s 2 says it is damaged and what to do."""
    clip = make_test_video(tmp_path / "clip.mp4", frames=8, codec_options={"preset": "ultrafast", "g": "2"})
    clip = damage_video(clip, tmp_path / "bad.mp4", frames=(1,))
    done = run_srpipe("upscale", clip, "--width", "96", "-o", tmp_path / "out.mp4")
    error = done.stderr.decode().splitlines()[-1]
    assert done.returncode == 1 and "is damaged" in error and "unexpected" not in error, done.stderr.decode()
    done = run_srpipe("upscale", clip, "--width", "96", "--on-decode-error", "skip", "-o", tmp_path / "out.mp4")
    assert done.returncode == 0, done.stderr.decode()
    assert video_info(tmp_path / "out.mp4")["width"] == 96


def test_chroma_follows_the_output_size(cli_run, clip, tmp_path):
    """Lossless output: the chroma planes are the input's resized straight to the output's chroma
    size, keeping their siting (tests/core/test_chroma_siting.py)."""
    out = tmp_path / "out.mkv"
    result = cli_run("upscale", clip, "-s", "1.5", "-o", out, "--codec", "ffv1")
    assert result.exit_code == 0, result.output
    import av

    from srpipe.video import frame_from_av

    with av.open(str(clip)) as source, av.open(str(out)) as target:
        for before, after in zip(source.decode(video=0), target.decode(video=0)):
            before, after = frame_from_av(before), frame_from_av(after)
            assert after.planes[0].shape == (72, 96) and after.planes[1].shape == (36, 48)
            for plane_in, plane_out in zip(before.planes[1:], after.planes[1:]):
                # swscale, which resizes limited-range chroma, rounds within 2 of the exact kernel
                assert np.abs(plane_out.astype(int) - sited_cubic(plane_in, 48, 36)).max() <= 2
            luma = cv2.resize(before.planes[0], (96, 72), interpolation=cv2.INTER_CUBIC)
            assert np.abs(after.planes[0].astype(int) - luma).mean() < 3  # the same picture


def test_odd_target_sizes_follow_the_rules_of_odd_sizes(cli_run, clip, tmp_path):
    refused = cli_run("upscale", clip, "--width", "201", "--height", "91", "-o", tmp_path / "a.mp4")
    assert refused.exit_code == 1 and "--pix-fmt yuv444p or --codec ffv1" in refused.stderr
    assert not (tmp_path / "a.mp4").exists()
    for extra, out in ((["--pix-fmt", "yuv444p"], "b.mp4"), (["--codec", "ffv1"], "c.mkv")):
        done = cli_run("upscale", clip, "--width", "201", "--height", "91", "-o", tmp_path / out, *extra)
        assert done.exit_code == 0, done.output
        info = video_info(tmp_path / out)
        assert (info["width"], info["height"]) == (201, 91)


def test_images_take_any_size(cli_run, tmp_path):
    image = make_test_image(tmp_path / "photo.png", width=41, height=31)
    result = cli_run("upscale", image, "-s", "1.5", "-m", "lanczos")
    assert result.exit_code == 0, result.output
    assert cv2.imread(str(tmp_path / "photo_x1.5.png")).shape == (47, 62, 3)  # 61.5 x 46.5: halves up, odd kept
    assert cli_run("upscale", image, "--height", "101").exit_code == 0
    assert cv2.imread(str(tmp_path / "photo_h101.png")).shape == (101, 134, 3)


def test_whole_scales_and_sizes_that_are_whole_scales_give_the_same_file(cli_run, clip, tmp_path):
    """--width 128 on a 64x48 clip is x2 exactly: nothing is resized, the output is -s 2's."""
    for args, out in ((["-s", "2"], "a.mkv"), (["--width", "128"], "b.mkv"), (["-s", "2.0"], "c.mkv")):
        assert cli_run("upscale", clip, *args, "-o", tmp_path / out, "--codec", "ffv1").exit_code == 0
    luma = [video_info(tmp_path / name)["luma"] for name in ("a.mkv", "b.mkv", "c.mkv")]
    assert all(np.array_equal(x, y) for x, y in zip(luma[0], luma[1]))
    assert all(np.array_equal(x, y) for x, y in zip(luma[0], luma[2]))


def test_bad_size_requests_are_one_line_errors(cli_run, clip):
    for args, message in ((["-s", "5.5"], "goes up to x4"), (["--width", "32"], "not larger than the input")):
        result = cli_run("upscale", clip, *args)
        assert result.exit_code == 1 and message in result.stderr, result.output
        assert result.stderr.count("\n") == 1


def test_batch_takes_sizes_too(cli_run, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    make_test_video(folder / "a.mp4", frames=3)
    make_test_image(folder / "b.png", width=40, height=30)
    result = cli_run("batch", folder, tmp_path / "out", "--width", "100", "-q")
    assert result.exit_code == 0, result.output
    info = video_info(tmp_path / "out" / "a.mp4")
    assert (info["width"], info["height"]) == (100, 76)  # 75 -> the nearest even height
    assert cv2.imread(str(tmp_path / "out" / "b.png")).shape == (75, 100, 3)
