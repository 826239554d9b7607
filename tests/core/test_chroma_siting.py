"""Video chroma keeps its siting when upscaled: H.264 (as MPEG-2, HEVC, VP9 and AV1 by default)
puts each 4:2:0 chroma sample on the first luma sample of its pair horizontally and between the
two rows vertically. Resized as a picture of its own, the chroma came out half an output pixel to
one side of the luma at x2. MJPEG centres its chroma, and it stays centred."""

import shutil
import subprocess

import av
import cv2
import numpy as np
import pytest

from srpipe import resize
from srpipe.frames import CHROMA_LOCATIONS, PLANE_FORMATS
from srpipe.media import SinkOptions
from srpipe.resize import resize_chroma
from srpipe.testing import make_test_video
from srpipe.upscaling import upscale
from srpipe.video import chroma_location

from media import sited_cubic

WIDTH, HEIGHT = 64, 32  # chroma 32 x 16


def chroma_steps() -> np.ndarray:
    """A chroma plane stepping from 40 to 220 between columns 15 and 16 and between rows 7 and 8."""
    plane = np.full((HEIGHT // 2, WIDTH // 2), 40, np.uint8)
    plane[:, 16:] = 130
    plane[8:, :] += 90
    return plane


def crossing(profile: np.ndarray, level: float) -> float:
    """Where a rising profile first passes ``level``, between samples by linear interpolation."""
    above = int(np.argmax(profile >= level))
    low, high = float(profile[above - 1]), float(profile[above])
    return above - 1 + (level - low) / (high - low)


def edges(cb: np.ndarray) -> tuple[float, float]:
    """The horizontal step's and the vertical step's position in an upscaled chroma plane, in its samples."""
    row, column = cb[4].astype(float), cb[:, 8].astype(float)  # away from the other step
    return crossing(row, (row[0] + row[-1]) / 2), crossing(column, (column[0] + column[-1]) / 2)


def encoded_clip(path, codec="libx264", full_range=False, location=None):
    """Three frames of the steps: x264 at QP 0, x265 lossless and FFV1 code them losslessly, MJPEG at
    its finest; ``location``: the chroma location the stream's headers give (H.264, HEVC)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=25)
        stream.width, stream.height = WIDTH, HEIGHT
        stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        stream.options = {"libx264": {"qp": "0"}, "mjpeg": {"qmin": "1", "qmax": "1"},
                          "libx265": {"x265-params": "lossless=1:log-level=error"}}.get(codec, {})
        if location is not None:
            stream.options = {**stream.options, "chroma_sample_location": location}
        if full_range:
            stream.codec_context.color_range = 2  # JPEG range
        for _ in range(3):
            frame = av.VideoFrame(WIDTH, HEIGHT, stream.pix_fmt)
            frame.color_range = stream.codec_context.color_range
            for plane, value in zip(frame.planes, (np.full((HEIGHT, WIDTH), 128, np.uint8), chroma_steps(),
                                                    np.full((HEIGHT // 2, WIDTH // 2), 128, np.uint8))):
                np.frombuffer(plane, np.uint8).reshape(plane.height, -1)[:, : value.shape[1]] = value
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def upscaled_cb(clip, out):
    upscale(str(clip), str(out), model="bicubic", scale=2, sink_options=SinkOptions(codec="ffv1"))
    with av.open(str(out)) as container:
        frame = next(container.decode(video=0))
        plane = frame.planes[1]
        return np.frombuffer(plane, np.uint8).reshape(plane.height, -1)[:, : plane.width]


@pytest.mark.parametrize("codec, full_range", [("libx264", False), ("ffv1", True)])
def test_video_chroma_stays_on_its_luma(tmp_path, codec, full_range):
    """The horizontal step lies between input chroma samples 15 and 16, which sit on luma samples
    30 and 32: at luma 31, which x2 puts at output luma 62.5, and output chroma sample m sits on
    output luma 2m: 31.25 (a symmetric kernel puts a step's middle halfway between its samples).
    Vertically the chroma rows lie between luma rows, so the step stays where a centred resize
    puts it: 15.5. Resized as a picture of its own, the horizontal step came out at 31.5. Full
    range (a phone's H.264 may be) sites its chroma as limited range does."""
    clip = encoded_clip(tmp_path / "in.mkv", codec, full_range)
    across, down = edges(upscaled_cb(clip, tmp_path / "out.mkv"))
    assert across == pytest.approx(31.25, abs=0.05)
    assert down == pytest.approx(15.5, abs=0.05)


@pytest.mark.parametrize("codec", ["libx264", "libx265"])
@pytest.mark.parametrize("location, down", [("topleft", 15.25), ("bottomleft", 15.75), ("left", 15.5)])
def test_chroma_a_stream_says_lies_on_a_row_stays_on_it(tmp_path, codec, location, down):
    """UHD and HDR video often puts each chroma row on the first luma row of its pair ("topleft",
    as the stream's headers say). The vertical step then lies between input chroma rows 7 and 8 on
    luma rows 14 and 16, at luma 15, which x2 puts at output luma 30.5, and output chroma row m sits
    on output luma 2m: 15.25 (on the second row, "bottomleft": 15.75). It was resized as "left",
    a quarter of an output chroma row off."""
    clip = encoded_clip(tmp_path / "in.mkv", codec, location=location)
    with av.open(str(clip)) as container:
        assert chroma_location(container.streams.video[0]) == location
    across, measured = edges(upscaled_cb(clip, tmp_path / "out.mkv"))
    assert across == pytest.approx(31.25, abs=0.05)
    assert measured == pytest.approx(down, abs=0.05)


@pytest.mark.parametrize("location", CHROMA_LOCATIONS)
def test_the_chroma_location_an_h264_stream_gives_is_read(tmp_path, location):
    clip = encoded_clip(tmp_path / "in.mp4", location=location)
    with av.open(str(clip)) as container:
        assert chroma_location(container.streams.video[0]) == location


def test_the_chroma_location_an_av1_stream_gives_is_read_whatever_decodes_it(tmp_path, monkeypatch):
    """AV1 is decoded by libdav1d, whose name is not the codec's."""
    monkeypatch.setenv("SVT_LOG", "1")  # SVT-AV1's banner: errors only
    clip = make_test_video(tmp_path / "in.mkv", codec="libsvtav1", width=WIDTH * 2, height=HEIGHT * 2, frames=2,
                           audio=False, codec_options={"chroma_sample_location": "topleft", "preset": "12"})
    with av.open(str(clip)) as container:
        assert container.streams.video[0].codec_context.name != "av1"
        assert chroma_location(container.streams.video[0]) == "topleft"


@pytest.mark.parametrize("name, said", [("ffv1", "left"), ("mjpeg", "center"), ("libx264", "left")])
def test_a_stream_that_says_nothing_has_its_codecs_chroma_location(tmp_path, name, said):
    clip = encoded_clip(tmp_path / "in.avi", name, full_range=name == "mjpeg")
    with av.open(str(clip)) as container:
        assert chroma_location(container.streams.video[0]) == said


def test_mjpeg_chroma_stays_centred(tmp_path):
    """MJPEG (a webcam's) centres each chroma sample on its 2x2 luma block, and keeps it there."""
    clip = encoded_clip(tmp_path / "in.avi", "mjpeg", full_range=True)
    across, down = edges(upscaled_cb(clip, tmp_path / "out.mkv"))
    assert across == pytest.approx(31.5, abs=0.05)
    assert down == pytest.approx(15.5, abs=0.05)


@pytest.mark.parametrize("full_range, size", [(False, (WIDTH, HEIGHT)), (True, (WIDTH, 4))])
def test_rows_not_subsampled_are_not_moved_whatever_the_stream_says(full_range, size):
    """4:2:2 chroma is as tall as the luma: "topleft" is "left" there."""
    fmt = PLANE_FORMATS["yuv422p"]
    plane = np.random.default_rng(2).integers(16, 240, fmt.chroma_size(*size)[::-1]).astype(np.uint8)
    out = [resize_chroma([plane, plane], size, (2 * size[0], 2 * size[1]), fmt, full_range, siting)[0]
           for siting in ("left", "topleft", "bottomleft")]
    assert np.array_equal(out[0], out[1]) and np.array_equal(out[0], out[2])


@pytest.mark.parametrize("name", ["yuv420p10le", "yuv422p"])
@pytest.mark.parametrize("full_range", [False, True])
def test_other_depths_and_subsamplings_keep_their_siting(name, full_range):
    fmt = PLANE_FORMATS[name]
    steps = chroma_steps().astype(fmt.dtype) << (fmt.bit_depth - 8)
    if fmt.chroma_shift == (1, 0):  # 4:2:2: chroma as tall as the luma
        steps = np.repeat(steps, 2, axis=0)
    cb = resize_chroma([steps, steps], (WIDTH, HEIGHT), (2 * WIDTH, 2 * HEIGHT), fmt, full_range)[0]
    across, _ = edges(cb >> (fmt.bit_depth - 8))
    assert cb.dtype == fmt.dtype and cb.shape == fmt.chroma_size(2 * WIDTH, 2 * HEIGHT)[::-1]
    assert across == pytest.approx(31.25, abs=0.05)


@pytest.mark.parametrize("siting", ["left", "topleft", "bottom"])
@pytest.mark.parametrize("full_range, size", [(False, (WIDTH, HEIGHT)), (True, (WIDTH, HEIGHT)), (False, (WIDTH, 8)),
                                              (True, (WIDTH, 8))])
def test_full_range_and_tiny_planes_are_sited_too(full_range, size, siting):
    """Those go through OpenCV (swscale clips full-range overshoot between its passes, and shortens
    its kernel on planes under 6 samples), then Keys' kernel moves them: within 2 of the exact
    kernel sited as the stream says, on chroma-like (smooth) content, as FFmpeg's scale is."""
    fmt = PLANE_FORMATS["yuv420p"]
    shape = fmt.chroma_size(*size)[::-1]
    coarse = np.random.default_rng(1).random((4, 8))
    plane = np.round(20 + 215 * cv2.resize(coarse, shape[::-1], interpolation=cv2.INTER_LINEAR)).astype(np.uint8)
    out = resize_chroma([plane, plane], size, (2 * size[0], 2 * size[1]), fmt, full_range, siting)[0]
    assert np.abs(out.astype(int) - sited_cubic(plane, 2 * shape[1], 2 * shape[0], siting)).max() <= 2


@pytest.mark.parametrize("shape, size", [((4, 30), (9, 61)), ((30, 3), (8, 61)), ((40, 5), (11, 20))])
def test_a_tiny_plane_is_sited_in_bands_as_it_is_whole(monkeypatch, shape, size):
    """OpenCV's remap takes sides under 32767: longer planes (a strip) go in bands, to the same output."""
    plane = np.random.default_rng(2).integers(16, 241, shape).astype(np.uint8)
    whole = resize._sited_cubic(plane, *size, 0, 128, 255)
    monkeypatch.setattr(resize, "REMAP_BAND", 7)
    assert np.array_equal(resize._sited_cubic(plane, *size, 0, 128, 255), whole)


def test_a_strip_longer_than_opencv_takes_is_upscaled(tmp_path):
    clip = make_test_video(tmp_path / "strip.mkv", width=8, height=34000, frames=1, codec="ffv1", audio=False)
    upscale(str(clip), str(tmp_path / "out.mkv"), scale=2, sink_options=SinkOptions(codec="ffv1"))
    with av.open(str(tmp_path / "out.mkv")) as out:
        assert (out.streams.video[0].width, out.streams.video[0].height) == (16, 68000)


@pytest.mark.skipif(shutil.which("ffprobe") is None,
                    reason="needs the ffprobe program to read a stream's chroma location (PyAV does not report it)")
@pytest.mark.parametrize("codec, full_range, location, said", [
    ("mjpeg", True, None, "center"), ("libx264", False, None, "left"), ("ffv1", True, None, "left"),
    ("libx264", False, "topleft", "topleft"), ("libx265", False, "bottom", "bottom")])
def test_the_output_says_where_its_chroma_lies(tmp_path, codec, full_range, location, said):
    """Centred chroma in H.264, whose players take it for sited on the left unless told; and where a
    stream's headers say, the output says the same."""
    clip = encoded_clip(tmp_path / ("in.mkv" if location else "in.avi"), codec, full_range, location)
    upscale(str(clip), str(tmp_path / "out.mp4"), model="bicubic", scale=2, sink_options=SinkOptions())
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=chroma_location", "-of", "csv=p=0",
                            str(tmp_path / "out.mp4")], capture_output=True, text=True, check=True)
    assert probe.stdout.strip() == said
