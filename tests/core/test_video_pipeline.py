"""Real clips through the real pipeline: nothing lost, everything carried over."""

import io
import json
import shutil
import subprocess
import threading
import time
import warnings
from fractions import Fraction

import av
import cv2
import numpy as np
import pytest
from av.sidedata.sidedata import Type as SideDataType

from srpipe.deinterlace import Deinterlacer
from srpipe.media import SinkOptions, SourceOptions
from srpipe.testing import make_interlaced_clip, make_plugin_manager, make_test_image, make_test_video, test_pattern
from srpipe.upscaling import upscale
from srpipe.video import side_data_of

from conftest import run_srpipe
from media import packets, remux, video_info


@pytest.fixture(scope="module")
def pm():
    return make_plugin_manager()


def _encode_blank_frames(container, stream, count=3):
    """``count`` blank frames of ``stream``'s size and format, encoded and muxed, then the encoder's rest."""
    for i in range(count):
        frame = av.VideoFrame(stream.width, stream.height, stream.pix_fmt)
        frame.pts = i
        container.mux(stream.encode(frame))
    container.mux(stream.encode())


def test_frames_times_audio_and_tags_survive(tmp_path, pm):
    clip = make_test_video(tmp_path / "in.mp4", frames=15, color_range=1)
    result = upscale(str(clip), model="bicubic", scale=2, pm=pm)
    assert result.output == str(tmp_path / "in_x2.mp4")
    before, after = video_info(clip), video_info(result.output)
    assert len(after["times"]) == len(before["times"]) == 15
    assert after["times"] == before["times"]
    assert (after["width"], after["height"]) == (128, 96)
    assert after["types"] == before["types"] == ["video", "audio"]
    assert after["pix_fmt"] == "yuv420p"
    assert after["colour"] == before["colour"]
    assert after["title"] == "srpipe test clip"
    assert packets(result.output, "audio") == packets(clip, "audio")
    assert len(packets(clip, "audio")) > 10


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".webm", ".gif", ".apng"])
def test_every_frame_is_shown_as_long_as_in_the_input_the_last_one_too(tmp_path, suffix):
    """An animated PNG's last frame was shown as long as the one before: FFmpeg's writer times it so."""
    from PIL import Image

    pictures = [Image.fromarray(np.full((24, 32, 3), 60 * index, np.uint8)) for index in range(4)]
    pictures[0].save(tmp_path / "a.gif", save_all=True, append_images=pictures[1:], duration=[100, 200, 300, 900])
    done = run_srpipe("upscale", tmp_path / "a.gif", "-o", tmp_path / f"out{suffix}", "-q")
    assert done.returncode == 0, done.stderr.decode()
    assert video_info(tmp_path / f"out{suffix}")["times"] == [0, Fraction(1, 10), Fraction(3, 10), Fraction(6, 10)]
    with av.open(str(tmp_path / f"out{suffix}")) as container:
        packets = list(container.demux(video=0))
        last = max((packet for packet in packets if packet.pts is not None), key=lambda packet: packet.pts)
        assert last.duration * last.time_base == Fraction(9, 10)  # a muxer left alone gives it 0.1 s


@pytest.mark.parametrize(("loop", "plays"), [(None, 1), (0, 0), (2, 3)])
def test_a_gif_plays_as_often_as_its_input_as_a_gif_or_an_animated_png(tmp_path, loop, plays):
    """Every GIF came out looping for ever: FFmpeg's reader passes over the NETSCAPE2.0 block that
    says how often (a GIF without one plays once; its count is of the plays after the first)."""
    from PIL import Image

    from srpipe.media import png_animation

    pictures = [Image.fromarray(np.full((24, 32, 3), 60 * index, np.uint8)) for index in range(3)]
    looping = {} if loop is None else {"loop": loop}
    pictures[0].save(tmp_path / "in.gif", save_all=True, append_images=pictures[1:], duration=100, **looping)
    for output in ("out.gif", "out.apng"):
        done = run_srpipe("upscale", tmp_path / "in.gif", "-o", tmp_path / output, "-q")
        assert done.returncode == 0, done.stderr.decode()
    with Image.open(tmp_path / "out.gif") as written:
        assert written.info.get("loop") == loop
    assert png_animation(str(tmp_path / "out.apng")) == (3, plays)
    done = run_srpipe("upscale", tmp_path / "out.apng", "-o", tmp_path / "again.gif", "-q")  # and back
    assert done.returncode == 0, done.stderr.decode()
    with Image.open(tmp_path / "again.gif") as written:
        assert written.info.get("loop") == loop


def test_the_play_count_of_a_gif_larger_than_pillow_opens_is_read(tmp_path):
    """Pillow refuses a canvas past its bomb limit ('unexpected DecompressionBombError' for a GIF
    that --max-pixels was raised for); srpipe checks sizes itself."""
    from PIL import Image

    from srpipe.video import animation_plays

    pictures = [Image.new("P", (2, 2), index) for index in range(2)]
    pictures[0].save(tmp_path / "in.gif", save_all=True, append_images=pictures[1:], duration=100, loop=2)
    data = bytearray((tmp_path / "in.gif").read_bytes())
    data[6:10] = (20000).to_bytes(2, "little") * 2  # its logical screen: 20000x20000
    (tmp_path / "in.gif").write_bytes(bytes(data))
    assert animation_plays(str(tmp_path / "in.gif"), "gif") == 3


def test_a_gif_becomes_a_gif_in_colour_with_its_transparency(tmp_path):
    """256 colours chosen for each frame (srpipe.palette): not the grey or the 3-3-2 bits of colour
    FFmpeg's GIF encoder would be given, and the transparent background stays transparent."""
    from PIL import Image, ImageDraw

    pictures = []
    for index in range(5):
        picture = Image.new("RGBA", (80, 60), (0, 0, 0, 0))
        draw = ImageDraw.Draw(picture)
        draw.ellipse((5 + 5 * index, 10, 35 + 5 * index, 40), fill=(220, 40, 40, 255))
        for x in range(40, 80):  # a gradient, which 3-3-2 bits would band
            draw.line((x, 5, x, 55), fill=(30, 60 + 4 * (x - 40), 200, 255))
        pictures.append(picture)
    pictures[0].save(tmp_path / "in.gif", save_all=True, append_images=pictures[1:], duration=100, disposal=2,
                     transparency=0)
    done = run_srpipe("upscale", tmp_path / "in.gif", "-o", tmp_path / "out.gif", "-q")
    assert done.returncode == 0 and "Warning" not in done.stderr.decode(), done.stderr.decode()
    with av.open(str(tmp_path / "out.gif")) as container:
        frames = [frame.to_ndarray(format="rgba").astype(int) for frame in container.decode(video=0)]
    assert len(frames) == 5 and frames[0].shape == (120, 160, 4)
    for index, frame in enumerate(frames):
        wanted = np.asarray(pictures[index].resize((160, 120), Image.NEAREST)).astype(int)
        inside = cv2.erode((wanted[..., 3] > 0).astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
        outside = cv2.dilate((wanted[..., 3] > 0).astype(np.uint8), np.ones((7, 7), np.uint8)) == 0
        assert (frame[outside, 3] == 0).all() and (frame[inside, 3] == 255).all()
        assert np.abs(frame[inside, :3] - wanted[inside, :3]).mean() < 4  # the colours, not grey or banded


def test_variable_frame_rate_keeps_every_timestamp(tmp_path, pm):
    pts = [0, 40, 80, 200, 210, 400, 433, 500, 640, 700, 800, 1001]
    clip = make_test_video(tmp_path / "vfr.mkv", pts=pts, time_base=Fraction(1, 1000), frames=len(pts))
    result = upscale(str(clip), model="lanczos", scale=3, pm=pm)
    assert video_info(result.output)["times"] == [Fraction(p, 1000) for p in pts]
    assert packets(result.output, "audio") == packets(clip, "audio")


@pytest.mark.parametrize("pix_fmt", ["yuv420p10le", "yuv422p", "yuv444p", "yuv422p10le"])
def test_pixel_format_and_depth_are_kept(tmp_path, pm, pix_fmt):
    clip = make_test_video(tmp_path / "in.mkv", pix_fmt=pix_fmt, frames=4, audio=False)
    result = upscale(str(clip), scale=2, pm=pm)
    info = video_info(result.output)
    assert info["pix_fmt"] == pix_fmt
    assert len(info["times"]) == 4
    if pix_fmt.endswith("10le"):
        assert info["luma"][0].dtype == np.uint16 and info["luma"][0].max() > 255


def test_pix_fmt_option_converts_10_bit_to_8_bit(tmp_path, pm):
    clip = make_test_video(tmp_path / "in.mkv", pix_fmt="yuv420p10le", frames=3, audio=False)
    result = upscale(str(clip), scale=2, sink_options=SinkOptions(pix_fmt="yuv420p"), pm=pm)
    assert video_info(result.output)["pix_fmt"] == "yuv420p"


def test_odd_sizes(tmp_path, pm):
    clip = make_test_video(tmp_path / "odd.mkv", codec="ffv1", width=41, height=31, frames=3)
    result = upscale(str(clip), scale=2, pm=pm)
    info = video_info(result.output)
    assert (info["width"], info["height"]) == (82, 62)
    odd = upscale(str(clip), scale=3, pm=pm, sink_options=SinkOptions(codec="ffv1", crf=None))
    assert (video_info(odd.output)["width"], video_info(odd.output)["height"]) == (123, 93)


def test_subtitles_rotation_and_metadata_are_copied(tmp_path, pm):
    clip = make_test_video(tmp_path / "in.mkv", subtitles=True, rotation=90, frames=5)
    result = upscale(str(clip), scale=2, pm=pm)
    info = video_info(result.output)
    assert info["types"] == ["video", "audio", "subtitle"]
    assert info["rotation"] == 90
    assert packets(result.output, "subtitle") == packets(clip, "subtitle")


@pytest.mark.parametrize("rotation", [90, -90, 180])
def test_a_turned_picture_is_turned_where_the_output_cannot_say_so(tmp_path, pm, rotation):
    """GIF, MPEG-TS, AVI, FLV keep no display matrix: a phone's portrait clip came out lying on its
    side, silently; it is turned as FFmpeg's command turns it, and the outputs that keep the matrix
    keep it."""
    clip = make_test_video(tmp_path / "in.mkv", codec="ffv1", width=64, height=48, frames=3, audio=False,
                           rotation=rotation)
    options = SinkOptions(codec="ffv1", crf=None)
    kept = upscale(str(clip), str(tmp_path / "kept.mkv"), scale=2, pm=pm, sink_options=options)
    turned = upscale(str(clip), str(tmp_path / "turned.avi"), scale=2, pm=pm, sink_options=options)
    assert video_info(kept.output)["rotation"] % 360 == rotation % 360 and not video_info(turned.output)["rotation"]
    shown = [np.rot90(luma, rotation // 90) for luma in video_info(kept.output)["luma"]]  # as players show it
    assert all(np.array_equal(a, b) for a, b in zip(video_info(turned.output)["luma"], shown, strict=True))
    done = run_srpipe("upscale", clip, "-o", tmp_path / "out.gif", "-q")
    assert done.returncode == 0, done.stderr.decode()
    assert (video_info(tmp_path / "out.gif")["width"], video_info(tmp_path / "out.gif")["height"]) == \
        ((128, 96) if rotation == 180 else (96, 128))


def test_a_camera_jpeg_video_with_exif_is_upscaled_as_shown(tmp_path, pm):
    """A camera's MJPEG frames carry EXIF, which FFmpeg 8 attaches to each frame as side data of a
    type PyAV 18's table lacks: reading any side data of such a frame raised ("31 is not a valid
    Type") and the upscale stopped. Now the frame's display matrix, from the EXIF orientation, is
    read; orientation 2 (mirrored) needs the whole matrix, not only its angle."""
    from PIL import Image

    picture = np.full((48, 64, 3), 40, np.uint8)
    picture[:, :32] = 220  # bright left half
    exif = Image.Exif()
    exif[0x0112] = 2  # orientation: mirrored left to right
    jpeg = io.BytesIO()
    Image.fromarray(picture).save(jpeg, "JPEG", exif=exif.tobytes(), quality=95)
    clip = tmp_path / "camera.avi"
    with av.open(str(clip), "w") as container:
        stream = container.add_stream("mjpeg", rate=5)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuvj420p"
        for index in range(3):
            packet = av.Packet(jpeg.getvalue())
            packet.stream, packet.pts, packet.dts = stream, index, index
            container.mux(packet)
    with av.open(str(clip)) as container:
        assert any(data.type == SideDataType.DISPLAYMATRIX for data in side_data_of(next(container.decode(video=0))))
    result = upscale(str(clip), str(tmp_path / "out.avi"), scale=2, pm=pm)
    lumas = video_info(result.output)["luma"]
    assert len(lumas) == 3 and lumas[0].shape == (96, 128)
    assert all(luma[:, :56].mean() < 80 < 180 < luma[:, 72:].mean() for luma in lumas)  # shown mirrored


def test_turn_filters_are_ffmpegs_autorotate():
    from srpipe.video import turn_filters

    one, w = 1 << 16, 1 << 30
    assert turn_filters((0, one, 0, -one, 0, 0, 0, 0, w)) == [("transpose", "clock")]  # shown turned right
    assert turn_filters((0, -one, 0, one, 0, 0, 0, 0, w)) == [("transpose", "cclock")]
    assert turn_filters((0, one, 0, one, 0, 0, 0, 0, w)) == [("transpose", "cclock_flip")]  # turned and mirrored
    assert turn_filters((-one, 0, 0, 0, one, 0, 0, 0, w)) == [("hflip", None)]  # mirrored
    assert turn_filters((one, 0, 0, 0, one, 0, 0, 0, w)) == []
    assert turn_filters((one, 0, -one, 0, 0, 0, 0, w, w)) == []  # degenerate (a hostile file's): as stored
    assert turn_filters((46341, 46341, 0, -46341, 46341, 0, 0, 0, w)) is None  # 45 degrees


def test_full_range_input_stays_full_range(tmp_path, pm):
    clip = make_test_video(tmp_path / "full.mp4", color_range=2, frames=3, audio=False)
    result = upscale(str(clip), scale=2, pm=pm)
    assert video_info(result.output)["colour"][0] == 2


def test_threaded_output_equals_threadless_bit_for_bit(tmp_path, pm):
    clip = make_test_video(tmp_path / "in.mp4", frames=20)
    threaded = upscale(str(clip), str(tmp_path / "a.mp4"), batch_size=3, pm=pm)
    reference = upscale(str(clip), str(tmp_path / "b.mp4"), batch_size=3, threaded=False, pm=pm)
    assert threaded.stats.frames_out == reference.stats.frames_out == 20
    assert packets(tmp_path / "a.mp4", "video") == packets(tmp_path / "b.mp4", "video")
    assert packets(tmp_path / "a.mp4", "audio") == packets(tmp_path / "b.mp4", "audio")


def test_the_chroma_of_a_batch_is_resized_while_the_model_runs_on_the_next(tmp_path, monkeypatch):
    """A model that waits (a GPU's, without the GIL) is not kept waiting for the chroma: the first
    batch's chroma is resized only once the model has started on the second batch, which in one
    thread could not happen. A picture, one frame, keeps both in one thread."""
    import srpipe.pipeline
    from srpipe import hookimpl
    from srpipe.models import ModelSpec

    second_batch = threading.Event()
    calls = []

    class Model:
        scale = 2

        def upscale(self, luma, *, bit_depth, full_range):
            calls.append(threading.current_thread().name)
            if len(calls) == 2:
                second_batch.set()
            return luma.repeat(2, axis=1).repeat(2, axis=2)

    class Plugin:
        @hookimpl
        def register_models(self, register):
            register(ModelSpec(name="waits", scales=(2,), description="a model", load=lambda **kw: Model()))

    waited, chroma_threads = [], []
    resize_chroma = srpipe.pipeline.resize_chroma

    def chroma_after_the_next_batch_started(*args, **kwargs):
        if not waited:
            waited.append(second_batch.wait(timeout=10))
        chroma_threads.append(threading.current_thread().name)
        return resize_chroma(*args, **kwargs)

    monkeypatch.setattr(srpipe.pipeline, "resize_chroma", chroma_after_the_next_batch_started)
    pm = make_plugin_manager()
    pm.register(Plugin())
    clip = make_test_video(tmp_path / "in.mp4", frames=6)
    result = upscale(str(clip), str(tmp_path / "out.mp4"), model="waits", batch_size=2, pm=pm)
    assert result.stats.frames_out == 6
    assert waited == [True]
    assert calls == ["srpipe-upscale"] * 3
    assert set(chroma_threads) == {"srpipe-colour"}

    picture = make_test_image(tmp_path / "in.png", width=32, height=24)
    chroma_threads.clear()
    upscale(str(picture), str(tmp_path / "out.png"), model="waits", pm=pm)
    assert calls[3:] == chroma_threads == ["srpipe-upscale"]


def test_sound_without_video_neither_piles_up_behind_a_batch_nor_between_threads():
    """A long stretch of sound packets with no video (a gap, the sound after the last frame) is
    held in bounds: a batch still filling goes as it is once HELD_ITEMS packets wait behind it,
    and a thread hands on at most ``others`` packets its consumer is not done with."""
    from srpipe.frames import PLANE_FORMATS, Frame
    from srpipe.pipeline import HELD_ITEMS, UpscaledLuma, in_thread, upscale_stream

    class Model:
        scale = 2

        def upscale(self, luma, *, bit_depth, full_range):
            return luma.repeat(2, axis=1).repeat(2, axis=2)

    def frame(pts):
        y = np.zeros((4, 4), np.uint8)
        return Frame((y,), PLANE_FORMATS["gray"], False, pts, Fraction(1, 25))

    items = [frame(0), *range(HELD_ITEMS + 40), frame(1)]
    out = list(upscale_stream(iter(items), Model(), batch_size=8))
    assert [len(item.frames) if isinstance(item, UpscaledLuma) else item for item in out] == [
        1, *range(HELD_ITEMS + 40), 1]  # the first frame went alone, before the packets it held

    made, stop, workers = [], threading.Event(), []

    def packets():
        for number in range(1000):
            made.append(number)
            yield number

    handed = in_thread(packets(), 1, "test", stop, workers, counts=lambda item: False, others=16)
    assert next(handed) == 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(made) < 17:
        time.sleep(0.01)
    time.sleep(0.2)  # time for more, were there no bound
    assert len(made) == 17  # 16 handed over (the one the consumer holds among them), the 17th waiting
    assert list(handed) == list(range(1, 1000))
    stop.set()
    workers[0].join(5)


def test_luma_is_the_upscaled_input_luma(tmp_path, pm):
    """Lossless in and out: the output luma is exactly the model's upscale of the input luma."""
    from srpipe.default_plugins.classic.upscaler import ClassicUpscaler

    clip = make_test_video(tmp_path / "in.mkv", codec="ffv1", frames=3, audio=False)
    result = upscale(str(clip), scale=2, pm=pm, sink_options=SinkOptions(codec="ffv1", crf=None))
    source, output = video_info(clip)["luma"], video_info(result.output)["luma"]
    expected = ClassicUpscaler("bicubic", 2).upscale(np.stack(source), bit_depth=8, full_range=False)
    assert np.array_equal(np.stack(output), expected)


def test_hardware_encoder_is_used_only_where_it_opens(tmp_path):
    from srpipe.video import HARDWARE_ENCODER, default_codec, encoder_options, encoder_works

    assert encoder_works("libx264") and not encoder_works("no_such_encoder")
    expected = HARDWARE_ENCODER if encoder_works(HARDWARE_ENCODER) else "libx264"
    assert default_codec("mp4", hardware=True) == expected
    assert default_codec("mp4") == "libx264" and default_codec("webm", hardware=True) == "libvpx-vp9"
    clip = make_test_video(tmp_path / "clip.mp4", frames=3)
    upscale(str(clip), str(tmp_path / "out.mp4"), sink_options=SinkOptions(hardware_encoder=True))
    with av.open(str(tmp_path / "out.mp4")) as container:
        first = next(p for p in container.demux(video=0) if p.size)
        assert (b"x264 - core" in bytes(first)) == (expected == "libx264")  # x264 signs its stream
    assert encoder_options("h264_nvenc", 18, "veryfast", {}) == {"rc": "vbr", "cq": "18"}
    assert encoder_options("h264_nvenc", 18, None, {}, gpu=1) == {"gpu": "1", "rc": "vbr", "cq": "18"}  # cuda:1
    assert encoder_options("hevc_nvenc", None, None, {"gpu": "0"}, gpu=1) == {"gpu": "0"}  # the user's own
    assert encoder_options("libx264", 18, None, {}, gpu=1) == {"crf": "18"}
    assert encoder_options("libx264", 18, "veryfast", {"crf": "30"}) == {"crf": "30", "preset": "veryfast"}
    assert encoder_options("libvpx-vp9", 18, "veryfast", {}) == {"crf": "18"}


@pytest.mark.parametrize("codec, pix_fmt, suffix", [("png", "rgb24", "mov"), ("libx264rgb", "bgr24", "mkv"),
                                                    ("qtrle", "rgb24", "mov")])
def test_rgb_video_keeps_its_colours(tmp_path, pm, codec, pix_fmt, suffix):
    """RGB-coded video (PNG or QuickTime Animation from editors, screen recordings, x264's RGB) is
    upscaled in Y'CbCr: the output is tagged with the matrix it was converted with, so that a
    player shows the colours it had, not its Y'CbCr planes taken for green, blue and red."""
    patches = np.array([[255, 0, 0], [0, 200, 0], [30, 60, 220], [240, 240, 240]], np.uint8)  # RGB
    clip = tmp_path / f"rgb.{suffix}"
    with av.open(str(clip), "w") as container:
        stream = container.add_stream(codec, rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 16, pix_fmt
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(np.repeat(np.repeat(patches[None], 16, 0), 16, 1), format="rgb24")
            frame = frame.reformat(format=pix_fmt)
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    outputs = ((tmp_path / "out.mp4", SinkOptions(), 6), (tmp_path / "out.mkv", SinkOptions(codec="ffv1"), 6),
               (tmp_path / "out-rgb.mkv", SinkOptions(codec="ffv1", pix_fmt="bgr0"), 0))
    for out, options, matrix in outputs:
        upscale(str(clip), str(out), scale=2, pm=pm, sink_options=options)
        with av.open(str(out)) as container:
            assert container.streams.video[0].codec_context.colorspace == matrix  # BT.601 (SMPTE 170M), or RGB
            frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
        assert len(frames) == 3
        for index, colour in enumerate(patches):  # the middle of each patch, as a player converts it
            shown = frames[-1][16, 32 * index + 16].astype(int)
            assert np.abs(shown - colour).max() <= 12, (out.name, colour, shown)


def _clip_with_chapters_flags_and_wide_pixels(path):
    """A Matroska clip stored 64x48 and shown 4:3 wider (DV, DVD), with two chapters and two audio
    tracks, the second the default one."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=10)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        video.codec_context.sample_aspect_ratio = Fraction(4, 3)
        tracks = [container.add_stream("aac", rate=48000) for _ in range(2)]
        tracks[1].disposition = av.stream.Disposition.default
        container.set_chapters([{"id": i + 1, "start": 250 * i, "end": 250 * (i + 1), "time_base": Fraction(1, 1000),
                                 "metadata": {"title": title}} for i, title in enumerate(("Intro", "Main"))])
        for i in range(5):
            frame = av.VideoFrame(64, 48, "yuv420p")
            frame.pts = i
            container.mux(video.encode(frame))
        for track in tracks:
            for i in range(3):
                sound = av.AudioFrame(format="fltp", layout="mono", samples=1024)
                sound.sample_rate, sound.pts = 48000, 1024 * i
                for plane in sound.planes:
                    plane.update(bytes(plane.buffer_size))
                container.mux(track.encode(sound))
            container.mux(track.encode())
        container.mux(video.encode())
    return path


def test_chapters_track_flags_and_the_pixels_shape_are_kept(tmp_path, pm):
    clip = _clip_with_chapters_flags_and_wide_pixels(tmp_path / "dv.mkv")
    for out, size in ((tmp_path / "out.mkv", {}), (tmp_path / "out.mp4", {}), (tmp_path / "wide.mkv",
                                                                              {"width": 256, "height": 96})):
        upscale(str(clip), str(out), pm=pm, **(size or {"scale": 2}))
        with av.open(str(out)) as container:
            assert [chapter["metadata"]["title"] for chapter in container.chapters()] == ["Intro", "Main"]
            video = container.streams.video[0]
            width, height = video.codec_context.width, video.codec_context.height
            # shown as wide as the input: 64 * 4/3 by 48, a 16:9 picture, whatever size it is stored at
            assert Fraction(width) * video.sample_aspect_ratio / height == Fraction(16, 9), out.name
            if out.suffix == ".mkv":
                assert [bool(track.disposition & av.stream.Disposition.default)
                        for track in container.streams.audio] == [False, True]


def test_a_pixels_shape_the_output_cannot_carry_is_told(tmp_path, pm):
    """Matroska takes it from the codec: VP9 and FFV1 carry none, and the picture would show squeezed."""
    clip = _clip_with_chapters_flags_and_wide_pixels(tmp_path / "dv.mkv")
    for out, codec, told in ((tmp_path / "out.webm", None, "vp9"), (tmp_path / "out.mkv", "ffv1", "ffv1"),
                             (tmp_path / "kept.mkv", None, None)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            upscale(str(clip), str(out), pm=pm, sink_options=SinkOptions(codec=codec))
        said = [str(warning.message) for warning in caught if "square" in str(warning.message)]
        writer = "WebM" if out.suffix == ".webm" else "Matroska"
        assert said == ([f"the upscale of {clip} is shown with square pixels, not its own 4:3: {writer} takes the "
                         f"pixels' shape from the codec, which {told} does not carry (write .mp4 or .mov, or .mkv with "
                         "--codec libx264, to keep it)"] if told else []), out.name


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg program to make a timecode track")
def test_a_timecode_is_kept_by_the_upscaled_stream_and_the_rest_is_written(tmp_path):
    """MOV's writer takes its timecode track from the video stream's tag: the track itself is not
    copied (muxers take a data track and then refuse the header), and nothing is lost."""
    clip = tmp_path / "camera.mov"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=64x48:r=10:d=0.5", "-c:v", "libx264",
                    "-timecode", "01:02:03:04", str(clip)], check=True)
    done = run_srpipe("upscale", clip, "-q")
    assert done.returncode == 0, done.stderr.decode()
    assert done.stderr.decode() == ""
    info = video_info(tmp_path / "camera_x2.mov")
    assert info["types"] == ["video", "data"] and len(info["times"]) == 5
    with av.open(str(clip)) as container:
        timecode = container.streams.video[0].metadata["timecode"]  # 01:02:03:4: a digit a frame at 10 fps
    with av.open(str(tmp_path / "camera_x2.mov")) as container:
        assert [stream.metadata.get("timecode") for stream in container.streams] == [timecode] * 2


def test_a_format_the_encoder_lacks_is_written_as_the_nearest_it_takes_and_said(tmp_path):
    """12-bit 4:4:4 (ProRes 4444, FFV1) into x264, which takes 10-bit 4:4:4 at most: not the first
    format in its list (full-range 8-bit 4:2:0), and a warning that says what was lost."""
    clip = make_test_video(tmp_path / "deep.mkv", codec="ffv1", pix_fmt="yuv444p12le", frames=3, audio=False)
    done = run_srpipe("upscale", clip, "-o", tmp_path / "out.mp4", "-q")
    assert done.returncode == 0, done.stderr.decode()
    assert done.stderr.decode().splitlines() == [
        "Warning: encoder libx264 cannot write yuv444p12le; the output is yuv444p10le, with less detail in depth or "
        "colour: use --codec ffv1 (.mkv) to keep it all"]
    info = video_info(tmp_path / "out.mp4")
    assert info["pix_fmt"] == "yuv444p10le" and len(info["times"]) == 3


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg program to make phone-style MP4s")
def test_phone_mp4_extras_cover_art_and_mov_text(tmp_path):
    """A cover picture is kept in an MP4, and in Matroska as an attachment, and left out of other
    outputs with a warning (FFmpeg's MOV writer drops it); MP4's own subtitles (mov_text), which
    Matroska cannot hold, are refused there with the way that works."""
    subtitles = tmp_path / "s.srt"
    subtitles.write_text("1\n00:00:00,000 --> 00:00:00,400\nhello\n")
    make_test_image(tmp_path / "cover.png", width=32, height=32)
    clip, covered = tmp_path / "phone.mp4", tmp_path / "covered.mp4"
    source = ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=64x48:r=10:d=0.5"]
    subprocess.run([*source, "-i", str(subtitles), "-c:v", "libx264", "-c:s", "mov_text", str(clip)], check=True)
    subprocess.run([*source, "-i", str(tmp_path / "cover.png"), "-map", "0", "-map", "1", "-c:v:0", "libx264",
                    "-c:v:1", "mjpeg", "-disposition:v:1", "attached_pic", str(covered)], check=True)
    done = run_srpipe("upscale", covered, "-q")
    assert done.returncode == 0 and done.stderr.decode() == "", done.stderr.decode()
    assert len(video_info(tmp_path / "covered_x2.mp4")["times"]) == 5
    pictures = []
    for path in (covered, tmp_path / "covered_x2.mp4"):
        with av.open(str(path)) as container:
            cover = container.streams.video[1]
            assert cover.disposition & av.stream.Disposition.attached_pic
            pictures.append([bytes(packet) for packet in container.demux(cover) if packet.size])
    assert pictures[0] == pictures[1] and len(pictures[0]) == 1
    done = run_srpipe("upscale", covered, "-o", tmp_path / "covered.mkv", "-q")
    assert done.returncode == 0 and done.stderr.decode() == "", done.stderr.decode()
    with av.open(str(tmp_path / "covered.mkv")) as container:  # Matroska's demuxer gives it as a stream again
        (cover,) = [s for s in container.streams.video if s.disposition & av.stream.Disposition.attached_pic]
        assert [bytes(packet) for packet in container.demux(cover) if packet.size] == pictures[0]
        assert (cover.metadata["filename"], cover.metadata["mimetype"]) == ("cover.jpg", "image/jpeg")
    done = run_srpipe("upscale", covered, "-o", tmp_path / "covered.mov", "-q")
    assert done.returncode == 0 and done.stderr.decode().splitlines() == [
        f"Warning: the cover picture (stream #1) of {covered} is not copied: of the outputs, MP4 (.mp4) keeps one, "
        "and Matroska (.mkv) a JPEG or PNG one"]
    done = run_srpipe("upscale", clip, "-o", tmp_path / "out.mkv")
    assert done.returncode == 1 and done.stderr.decode() == (
        f"Error: the output container cannot hold the subtitle stream #1 (mov_text) of {clip}: 'matroska' format "
        "does not support 'mov_text' codec; write a .mp4 file, as the input is\n")
    done = run_srpipe("upscale", clip, "-o", tmp_path / "out.ts")  # not a .mkv, which cannot hold them either
    assert done.returncode == 1 and done.stderr.decode().endswith("; write a .mp4 file, as the input is\n")
    done = run_srpipe("upscale", clip, "-q")  # which it is
    assert done.returncode == 0 and video_info(tmp_path / "phone_x2.mp4")["types"] == ["video", "subtitle"]


def test_a_phones_own_metadata_is_kept_in_mp4_and_mov(tmp_path, pm):
    """Phones write where and how a clip was shot as QuickTime metadata keys."""
    keys = {"com.apple.quicktime.model": "iPhone 15", "com.apple.quicktime.location.ISO6709": "+48.8584+002.2945/",
            "com.android.capture.fps": "240.000000"}
    clip = tmp_path / "phone.mov"
    with av.open(str(clip), "w", options={"movflags": "use_metadata_tags"}) as container:
        container.metadata.update({**keys, "title": "a day out"})
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        _encode_blank_frames(container, stream)
    for name in ("out.mp4", "out.m4v", "out.mov", "out.mkv"):
        upscale(str(clip), str(tmp_path / name), scale=2, pm=pm)
        with av.open(str(tmp_path / name)) as container:
            kept = {key.lower(): value for key, value in container.metadata.items()}
        assert {key.lower(): value for key, value in keys.items()}.items() <= kept.items(), name
        # in QuickTime metadata, players look for the title under Apple's name
        assert kept["title" if name.endswith(".mkv") else "com.apple.quicktime.title"] == "a day out"
    # and back from Matroska, which keeps tag names in capitals: as Apple spells them
    upscale(str(tmp_path / "out.mkv"), str(tmp_path / "again.mov"), pm=pm)
    with av.open(str(tmp_path / "again.mov")) as container:
        assert {**keys, "com.apple.quicktime.title": "a day out"}.items() <= dict(container.metadata).items()


def _tagged_clip(path, tags):
    """Three frames of a video stream with its own ``tags``, marked default."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.metadata.update(tags)
        stream.disposition = av.stream.Disposition.default
        _encode_blank_frames(container, stream)
    return path


@pytest.mark.parametrize("suffix, tags", [
    (".mkv", {"language": "jpn", "title": "Main camera", "BPS": "999", "NUMBER_OF_FRAMES-eng": "3",
              "_STATISTICS_WRITING_APP": "mkvmerge", "ENCODER": "Lavc58 libx264", "ALPHA_MODE": "1"}),
    (".mp4", {"language": "jpn", "handler_name": "Camera 1", "vendor_id": "appl"}),
])
@pytest.mark.parametrize("output, kept", [(".mkv", {"language", "title", "handler_name"}),
                                          (".mp4", {"language", "handler_name"})])  # MP4 has no track title
def test_the_upscaled_stream_keeps_its_own_tags_and_default_flag(tmp_path, pm, suffix, tags, output, kept):
    """The upscaled stream came out with no language, title or handler name, and in Matroska not
    marked default, where FFmpeg's command keeps them; the statistics mkvmerge writes, and the
    encoder's name, would be wrong for the new encoding and are left out."""
    clip = _tagged_clip(tmp_path / f"in{suffix}", tags)
    upscale(str(clip), str(tmp_path / f"out{output}"), scale=2, pm=pm)
    with av.open(str(tmp_path / f"out{output}")) as container:
        stream = container.streams.video[0]
        got = {key.lower(): value for key, value in stream.metadata.items()}
        assert stream.disposition & av.stream.Disposition.default
    assert {key: value for key, value in tags.items() if key in kept}.items() <= got.items()
    assert not {"bps", "number_of_frames-eng", "_statistics_writing_app", "alpha_mode"} & got.keys()
    assert got.get("vendor_id") != "appl" and "lavc58" not in got.get("encoder", "").lower()  # the new encoder's own


@pytest.mark.parametrize("output", ["out.mov", "out.mkv"])
def test_a_cameras_timecode_is_kept_without_a_word(tmp_path, pm, output, recwarn):
    """A camera's MOV carries its timecode as a tag of the video stream and as a track of its
    own: the tag was lost with the stream's other tags, and the track was said not copied."""
    clip = _tagged_clip(tmp_path / "camera.mov", {"timecode": "10:00:00:05"})
    with av.open(str(clip)) as container:
        assert [stream.type for stream in container.streams] == ["video", "data"]
        timecode = container.streams.video[0].metadata["timecode"]
    upscale(str(clip), str(tmp_path / output), scale=2, pm=pm)
    with av.open(str(tmp_path / output)) as container:
        assert {key.lower(): value for key, value in container.streams.video[0].metadata.items()}["timecode"] == \
            timecode
    assert not [str(w.message) for w in recwarn if "not copied" in str(w.message)]


def _field_pictures(count, width=64, height=48):
    """RGB pictures a field apart: test_pattern moves 3 pixels and a checker square a picture."""
    return [test_pattern(width, height, index) for index in range(count)]


def _luma(rgb):
    return av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p").to_ndarray()[:rgb.shape[0]]


def _psnr_to_first_fields(path, pictures, top_first=False):
    """Mean luma PSNR of an x2 upscale at ``path`` against each frame's first field's picture,
    upscaled bicubically: what the camera saw at that frame's time. The clip's frames hold the
    pictures woven bottom field first; ``top_first``: the top field is taken as the first."""
    with av.open(str(path)) as container:
        frames = [frame.to_ndarray(format="gray").astype(float) for frame in container.decode(video=0)]
    scores = []
    for index, luma in enumerate(frames):
        truth = cv2.resize(_luma(pictures[2 * index + top_first]), None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
        scores.append(10 * np.log10(255 ** 2 / np.mean((luma - truth) ** 2)))
    return float(np.mean(scores))


def test_interlaced_video_is_deinterlaced_one_frame_per_frame(tmp_path):
    pictures = _field_pictures(12)
    clip = make_interlaced_clip(tmp_path / "tv.mp4", pictures)
    done = run_srpipe("upscale", clip, "--crf", "0", "--json")
    assert done.returncode == 0, done.stderr.decode()
    assert json.loads(done.stdout)["frames_deinterlaced"] == 6
    kept = run_srpipe("upscale", clip, "--crf", "0", "--deinterlace", "off", "-o", tmp_path / "fields.mp4", "-q")
    assert kept.returncode == 0 and kept.stderr == b"", kept.stderr.decode()
    deinterlaced, fields = tmp_path / "tv_x2.mp4", tmp_path / "fields.mp4"
    assert video_info(deinterlaced)["times"] == video_info(clip)["times"]  # same frames, same times
    # the two fields upscaled as one picture comb wherever they differ; deinterlaced, the
    # frame is the first field's picture
    assert _psnr_to_first_fields(deinterlaced, pictures) > _psnr_to_first_fields(fields, pictures) + 6
    with av.open(str(deinterlaced)) as container:
        assert not any(frame.interlaced_frame for frame in container.decode(video=0))
    summary = run_srpipe("upscale", clip, "-y").stderr.decode()
    assert "6 frames deinterlaced ->" in summary


def test_deinterlace_all_takes_interlaced_frames_that_are_not_marked(tmp_path):
    pictures = _field_pictures(12)
    clip = make_interlaced_clip(tmp_path / "badly.mp4", pictures, flagged=False)
    for mode in ("auto", "all"):
        done = run_srpipe("upscale", clip, "--crf", "0", "--deinterlace", mode, "-o", tmp_path / f"{mode}.mp4",
                          "--json")
        assert done.returncode == 0, done.stderr.decode()
        assert json.loads(done.stdout)["frames_deinterlaced"] == (6 if mode == "all" else 0)
    # a frame that does not say which field comes first is taken as top field first, as FFmpeg does
    assert _psnr_to_first_fields(tmp_path / "all.mp4", pictures, top_first=True) > \
        _psnr_to_first_fields(tmp_path / "auto.mp4", pictures, top_first=True) + 6


def test_progressive_video_is_not_touched_by_deinterlacing(tmp_path, pm):
    clip = make_test_video(tmp_path / "p.mp4", frames=5)
    outputs = []
    for mode in ("auto", "all", "off"):
        result = upscale(str(clip), str(tmp_path / f"{mode}.mp4"), scale=2, pm=pm,
                         source_options=SourceOptions(deinterlace=mode), sink_options=SinkOptions(crf=0))
        assert result.stats.frames_deinterlaced == (5 if mode == "all" else 0)
        with av.open(result.output) as container:
            outputs.append([frame.to_ndarray() for frame in container.decode(video=0)])
    assert all(np.array_equal(a, b) for a, b in zip(outputs[0], outputs[2]))
    # bwdif leaves a progressive picture as it is only where it can tell: "all" changes it
    assert not all(np.array_equal(a, b) for a, b in zip(outputs[1], outputs[2]))


def test_deinterlacer_keeps_every_frame_and_timestamp_across_a_size_change():
    frames = []
    for index, (width, height) in enumerate([(64, 48)] * 3 + [(32, 24)] * 2):
        frame = av.VideoFrame.from_ndarray(np.full((height * 3 // 2, width), 16 * index, np.uint8), format="yuv420p")
        frame.pts, frame.time_base = 1000 * index, Fraction(1, 25000)
        frames.append(frame)
    deinterlacer = Deinterlacer(every_frame=True)
    out = [ready for frame in frames for ready in deinterlacer.frames(frame)] + deinterlacer.flush()
    assert [(f.pts, f.width, f.time_base) for f in out] == [(f.pts, f.width, f.time_base) for f in frames]
    assert [int(f.to_ndarray()[0, 0]) for f in out] == [16 * index for index in range(5)]  # flat pictures: as they were


def _hdr10_clip(path):
    """10-bit HEVC whose frames carry HDR10 metadata (BT.2020 primaries, a 1000-nit display,
    MaxCLL 1000, MaxFALL 400), as HDR cameras and streaming masters do."""
    hdr = ("hdr10=1:master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1):"
           "max-cll=1000,400:log-level=error")
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx265", rate=10, options={"x265-params": hdr})
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p10le"
        stream.codec_context.color_primaries, stream.codec_context.color_trc = 9, 16  # BT.2020, PQ
        stream.codec_context.colorspace = 9
        _encode_blank_frames(container, stream)
    return path


def _hdr10_of(path) -> dict:
    from av.sidedata.sidedata import Type

    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        return {data.type: bytes(data) for data in side_data_of(frame)
                if data.type in (Type.MASTERING_DISPLAY_METADATA, Type.CONTENT_LIGHT_LEVEL)}


def test_hdr10_metadata_is_kept_by_x265_and_said_lost_elsewhere(tmp_path):
    clip = _hdr10_clip(tmp_path / "hdr.mkv")
    assert len(_hdr10_of(clip)) == 2
    done = run_srpipe("upscale", clip, "-o", tmp_path / "out.mkv", "--codec", "libx265", "-q")
    assert done.returncode == 0 and done.stderr == b"", done.stderr.decode()
    assert _hdr10_of(tmp_path / "out.mkv") == _hdr10_of(clip)  # the same display and light levels
    assert video_info(tmp_path / "out.mkv")["pix_fmt"] == "yuv420p10le"
    done = run_srpipe("upscale", clip, "-o", tmp_path / "out.mp4", "-q")  # x264, which cannot write them
    assert done.returncode == 0
    assert done.stderr.decode().splitlines() == [
        f"Warning: the HDR10 metadata of {clip} (its mastering display and light level) is not written by "
        "libx264: use --codec libx265 to keep it"]


def test_colour_tags_reach_encoders_that_read_them_from_each_frame(tmp_path):
    """ProRes, and APNG's cICP and cHRM chunks, take the primaries and transfer from the frames:
    HDR came out as 'unknown' (shown as SDR), and a GIF's warning advised x265, which GIF cannot hold."""
    clip = _hdr10_clip(tmp_path / "hdr.mkv")
    done = run_srpipe("upscale", clip, "-o", tmp_path / "out.mov", "--codec", "prores_ks", "-q")
    assert done.returncode == 0, done.stderr.decode()
    with av.open(str(tmp_path / "out.mov")) as container:  # ProRes's own frame header, which players read
        frame = next(container.decode(video=0))
        assert (frame.color_primaries, frame.color_trc) == (9, 16)  # BT.2020, PQ
    done = run_srpipe("upscale", clip, "-o", tmp_path / "out.apng", "-q")
    assert done.returncode == 0, done.stderr.decode()
    assert "use --codec libx265 in an .mp4 or .mkv to keep it" in done.stderr.decode()
    data = (tmp_path / "out.apng").read_bytes()
    assert data[data.index(b"cICP") + 4:][:2] == bytes([9, 16])  # BT.2020, PQ
    assert b"cHRM" in data


def test_frames_too_small_for_fields_pass_the_deinterlacer_as_they_are():
    frames = []
    for index, side in enumerate([8, 8, 6, 6]):  # 6: chroma planes of 3, too few rows for bwdif
        frame = av.VideoFrame.from_ndarray(np.full((side * 3 // 2, side), 10 * index, np.uint8), format="yuv420p")
        frame.pts, frame.time_base = index, Fraction(1, 25)
        frames.append(frame)
    deinterlacer = Deinterlacer(every_frame=True)
    out = [ready for frame in frames for ready in deinterlacer.frames(frame)] + deinterlacer.flush()
    assert [(f.pts, f.width) for f in out] == [(0, 8), (1, 8), (2, 6), (3, 6)]
    assert deinterlacer.count == 2


def make_covered_clip(clip, cover_size=(64, 48), cover_default=False):
    """A one-frame picture of ``cover_size`` ahead of a 10-frame 64x48 default video (a cover whose
    flag a remux lost)."""
    with av.open(str(clip), "w") as out:
        cover = out.add_stream("mjpeg", rate=1)
        cover.width, cover.height, cover.pix_fmt = *cover_size, "yuvj420p"
        video = out.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        cover.disposition = av.stream.Disposition.default if cover_default else av.stream.Disposition(0)
        video.disposition = av.stream.Disposition.default
        picture = av.VideoFrame.from_ndarray(np.full((cover_size[1], cover_size[0], 3), 128, np.uint8),
                                             format="rgb24")
        out.mux([*cover.encode(picture.reformat(format="yuvj420p")), *cover.encode(None)])
        for i in range(10):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 20 * i, np.uint8), format="rgb24")
            frame = frame.reformat(format="yuv420p")
            frame.pts = i
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
    return clip


def test_the_default_video_stream_is_upscaled_not_the_first(tmp_path):
    """The video is upscaled, as FFmpeg's own command picks it, and the picture is copied."""
    clip = make_covered_clip(tmp_path / "covered.mkv")
    done = run_srpipe("upscale", clip, "-o", tmp_path / "out.mkv", "-q")
    assert done.returncode == 0, done.stderr.decode()
    with av.open(str(tmp_path / "out.mkv")) as result:
        streams = [(s.codec_context.name, s.codec_context.width) for s in result.streams.video]
        upscaled = result.streams.video[0]
        assert sum(1 for _ in result.decode(upscaled)) == 10
        assert upscaled.disposition & av.stream.Disposition.default  # what a player shows
    assert streams == [("h264", 128), ("mjpeg", 64)]


def test_of_two_videos_alike_the_first_is_upscaled_and_shown(tmp_path):
    """Both default and of one size (two camera angles): the first, as FFmpeg's command takes it."""
    clips = [make_test_video(tmp_path / f"{name}.mp4", frames=frames, audio=False)
             for name, frames in (("a", 12), ("b", 8))]
    both = tmp_path / "both.mkv"
    with av.open(str(clips[0])) as a, av.open(str(clips[1])) as b, av.open(str(both), "w") as out:
        streams = [out.add_stream_from_template(source.streams.video[0]) for source in (a, b)]
        for source, stream in zip((a, b), streams):
            stream.disposition = av.stream.Disposition.default
            for packet in source.demux(video=0):
                if packet.dts is not None:
                    packet.stream = stream
                    out.mux(packet)
    done = run_srpipe("upscale", both, "-o", tmp_path / "out.mkv", "-q")
    assert done.returncode == 0, done.stderr.decode()
    assert done.stderr.decode() == (f"Warning: the video stream #1 of {both} is copied as it is, not upscaled: srpipe "
                                    "upscales one video stream, #0\n")  # where it went silently
    with av.open(str(tmp_path / "out.mkv")) as result:
        upscaled = result.streams.video[0]
        assert upscaled.codec_context.width == 128 and upscaled.disposition & av.stream.Disposition.default
        assert sum(1 for _ in result.decode(upscaled)) == 12


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_a_second_video_stream_is_copied_whole(tmp_path, suffix):
    """Matroska gives the first packets of a stream with B-frames no decoding time, its first
    keyframe among them: they are copied too, not left out (the copy would not decode)."""
    first = make_test_video(tmp_path / "a.mp4", frames=20, audio=False)
    second = make_test_video(tmp_path / "b.mp4", frames=20, audio=False,
                             codec_options={"bf": "3", "g": "20", "x264-params": "b-adapt=0"})
    both = tmp_path / "both.mkv"
    with av.open(str(first)) as a, av.open(str(second)) as b, av.open(str(both), "w") as out:
        streams = [out.add_stream_from_template(source.streams.video[0]) for source in (a, b)]
        streams[0].disposition, streams[1].disposition = av.stream.Disposition.default, av.stream.Disposition(0)
        for source, stream in zip((a, b), streams):
            for packet in source.demux(video=0):
                if packet.dts is not None:
                    packet.stream = stream
                    out.mux(packet)
    with av.open(str(both)) as container:
        assert container.streams.best("video").index == 0
        assert any(packet.dts is None for packet in container.demux(video=1) if packet.size)
    done = run_srpipe("upscale", both, "-o", tmp_path / f"out{suffix}", "-q")
    assert done.returncode == 0, done.stderr.decode()
    with av.open(str(tmp_path / f"out{suffix}")) as container:
        copied = container.streams.video[1]
        assert copied.codec_context.width == 64
        assert [frame.pts * copied.time_base for frame in container.decode(copied)] == \
            [Fraction(i, 25) for i in range(20)]


@pytest.mark.parametrize("output", [["out.gif"], ["out.mov", "--codec", "png"]])  # a palette; RGB (PNG takes no Y'CbCr)
@pytest.mark.parametrize("matrix", [1, 6])  # BT.709 (HD, phones), BT.601 (SD)
def test_rgb_outputs_have_the_colours_of_their_video(tmp_path, matrix, output):
    """Their RGB converted from Y'CbCr by the source's own matrix, not FFmpeg's default BT.601."""
    colours = [(220, 40, 40), (40, 200, 60), (30, 60, 220), (230, 200, 40)]
    picture = np.repeat(np.array(colours, np.uint8)[None].repeat(16, axis=1), 32, axis=0)  # bars 16 wide
    clip = tmp_path / "bars.mp4"
    with av.open(str(clip), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 32, "yuv444p"
        stream.options = {"qp": "0", "preset": "ultrafast"}
        stream.codec_context.colorspace = stream.codec_context.color_primaries = stream.codec_context.color_trc = matrix
        for index in range(3):
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24").reformat(
                format="yuv444p", dst_colorspace=matrix if matrix == 1 else 5)
            frame.pts = index
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    done = run_srpipe("upscale", clip, "-o", tmp_path / output[0], *output[1:], "-m", "bicubic")
    assert done.returncode == 0 and "Warning" not in done.stderr.decode(), done.stderr.decode()
    with av.open(str(tmp_path / output[0])) as container:
        shown = next(container.decode(video=0)).to_ndarray(format="rgb24").astype(int)
    middles = shown[32, [16 + 32 * i for i in range(4)]]
    assert np.abs(middles - np.array(colours)).max() <= 4, middles


@pytest.mark.parametrize(("pix_fmt", "written"), [("yuv420p", "rgb24"), ("yuv420p10le", "rgb48be")])
def test_an_rgb_only_encoder_writes_rgb_deep_enough_not_grey_or_a_palette(tmp_path, pix_fmt, written):
    """PNG takes 256 colours and grey too, but neither holds a picture in colour."""
    clip = make_test_video(tmp_path / "clip.mkv", frames=2, audio=False, pix_fmt=pix_fmt)
    done = run_srpipe("upscale", clip, "-o", tmp_path / "out.mov", "--codec", "png", "-m", "bicubic")
    assert done.returncode == 0 and "Warning" not in done.stderr.decode(), done.stderr.decode()
    with av.open(str(tmp_path / "out.mov")) as container:
        assert container.streams.video[0].codec_context.pix_fmt == written


def test_eval_reads_the_video_upscale_reads(tmp_path):
    from srpipe.default_plugins.espcn.video_eval import luma_frames

    frames = list(luma_frames(make_covered_clip(tmp_path / "covered.mkv")))
    assert len(frames) == 10 and frames[0].shape == (48, 64)


def test_h264_with_b_frames_in_avi_keeps_its_even_timing(tmp_path):
    """AVI holds no presentation times: its frames are timed as FFmpeg's command times them
    (their decoding times), not by times the demuxer made up in decoding order and the decoder
    shuffled (frames 1, 4, 3, 5, 2... apart)."""
    avi = make_test_video(tmp_path / "clip.avi", frames=30, audio=False,
                          codec_options={"bf": "3", "g": "30", "x264-params": "b-adapt=0"})
    done = run_srpipe("upscale", avi, "-o", tmp_path / "out.mp4")
    assert done.returncode == 0 and "Warning" not in done.stderr.decode(), done.stderr.decode()
    times = video_info(tmp_path / "out.mp4")["times"]
    assert len(times) == 30 and set(np.diff(times)) == {Fraction(1, 25)}


@pytest.mark.parametrize("output, codec", [("out.webm", "opus"), ("out.ts", "aac"), ("out.mpg", "mp2")])
def test_sound_the_output_cannot_hold_is_encoded_again(tmp_path, output, codec):
    """AAC into WebM, PCM into MPEG-TS: refused ('write a .mp4'), where FFmpeg's command encodes
    the sound again in the container's own codec; its time and length are kept."""
    clip = make_test_video(tmp_path / "in.mp4", frames=25)  # 1 s of AAC
    if output == "out.ts":
        pcm = tmp_path / "in.mov"
        with av.open(str(clip)) as source, av.open(str(clip)) as again, av.open(str(pcm), "w") as out:
            video = out.add_stream_from_template(source.streams.video[0])
            sound = out.add_stream("pcm_s16le", rate=source.streams.audio[0].rate)
            for packet in source.demux(video=0):
                if packet.dts is not None:
                    packet.stream = video
                    out.mux(packet)
            for frame in again.decode(audio=0):
                out.mux(sound.encode(frame))
            out.mux(sound.encode(None))
        clip = pcm
    done = run_srpipe("upscale", clip, "-o", tmp_path / output, "-q")
    assert done.returncode == 0, done.stderr.decode()
    assert "cannot go into" in done.stderr.decode() and "it is encoded again as" in done.stderr.decode()
    with av.open(str(tmp_path / output)) as result:
        sound = result.streams.audio[0]
        assert sound.codec_context.name == codec
        decoded = list(result.decode(sound))
    with av.open(str(tmp_path / output)) as result:  # MPEG-PS starts both half a second in
        first_picture = next(result.decode(video=0))
    seconds = sum(frame.samples for frame in decoded) / decoded[0].sample_rate
    assert abs(seconds - 1) < 0.1
    assert abs(float(decoded[0].pts * decoded[0].time_base - first_picture.pts * first_picture.time_base)) < 0.1


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg program to write AC-3 and PCM in Matroska")
@pytest.mark.parametrize("sound, output, channels", [
    (["-c:a", "pcm_s16le"], "out.flv", 1),  # PCM in Matroska names no layout: FLV's writer aborted (SIGABRT)
    (["-c:a", "pcm_s16le"], "out.ts", 1),  # ... and AAC refused '1 channels', told as libx264's refusal
    (["-af", "aformat=channel_layouts=5.1(side)", "-c:a", "ac3"], "out.webm", 6),  # libopus: 5.1 as Vorbis lays it
    (["-af", "aformat=channel_layouts=5.1(side)", "-c:a", "ac3"], "out.flv", 2),  # FLV holds two: mixed down
])
def test_sound_of_any_layout_is_encoded_again(tmp_path, sound, output, channels):
    clip = tmp_path / "in.mkv"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=25:duration=1", "-f",
                    "lavfi", "-i", "sine=sample_rate=48000:duration=1", *sound, "-c:v", "ffv1", str(clip)], check=True)
    done = run_srpipe("upscale", clip, "-o", tmp_path / output, "-q")
    assert done.returncode == 0, done.stderr.decode()
    assert ("mixed down to stereo" in done.stderr.decode()) == (channels == 2)
    with av.open(str(tmp_path / output)) as result:
        decoded = list(result.decode(audio=0))
    assert decoded[0].layout.nb_channels == channels
    assert abs(sum(frame.samples for frame in decoded) / decoded[0].sample_rate - 1) < 0.1


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg program to write FLAC, DTS, TrueHD")
@pytest.mark.parametrize("codec, output, kept", [
    ("flac", "out.mov", "aac"),  # MOV's writer took FLAC, then refused its header: 'only supported in MP4'
    ("truehd", "out.mp4", "aac"),  # ... 'experimental'
    ("truehd", "out.ts", "aac"),  # MPEG-TS's: 'cannot write ...: Invalid argument; check free space'
    ("dca", "out.ts", "dca"),  # DTS (FFmpeg names its coder dca), which MPEG-TS carries, was encoded again
])
def test_which_sound_a_writer_takes_is_known_before_its_header(tmp_path, codec, output, kept):
    clip = tmp_path / "in.mkv"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=25:duration=1", "-f",
                    "lavfi", "-i", "sine=sample_rate=48000:duration=1", "-c:a", codec, "-strict", "-2", "-c:v", "ffv1",
                    str(clip)], check=True)
    done = run_srpipe("upscale", clip, "-o", tmp_path / output, "-q")
    assert done.returncode == 0, done.stderr.decode()
    with av.open(str(tmp_path / output)) as result:
        assert result.streams.audio[0].codec_context.name == kept


def test_an_animation_leaves_sound_out_with_a_warning(tmp_path):
    """A phone clip with sound to a GIF was refused: GIF holds no sound."""
    clip = make_test_video(tmp_path / "in.mp4", frames=5)
    done = run_srpipe("upscale", clip, "-o", tmp_path / "out.gif", "-q")
    assert done.returncode == 0 and done.stderr.decode() == (
        f"Warning: GIF holds no sound: the audio stream #1 of {clip} is left out\n")
    assert video_info(tmp_path / "out.gif")["types"] == ["video"]


def _frame_rate_and_count(path):
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return stream.average_rate, sum(1 for _ in container.decode(stream))


@pytest.mark.parametrize("source, codec, output", [
    ("in.mp4", "mpeg2video", "out.mpg"),  # a DVD's: refused "12800/1 fps" (the time base taken for the rate)
    ("in.mp4", "mpeg1video", "out.mpg"),
    ("in.ts", "mpeg4", "out.mkv"),  # MPEG-4 Part 2 refused MPEG-TS's 1/90000
    ("vfr.mp4", "mpeg4", "out.avi"),  # ... and a variable rate's mean, 1/rate with a denominator over 16 bits
    ("in.mp4", None, "out.avi"),  # a tick a frame: 600 ticks a second, empty frames between
])
def test_encoders_and_containers_that_count_in_frames_get_a_frame_time_base(tmp_path, source, codec, output):
    variable = {"pts": [0, 3000, 6089, 9000, 12100, 15000, 18089, 21000, 24100, 27001],
                "time_base": Fraction(1, 90000)} if source == "vfr.mp4" else {}
    clip = make_test_video(tmp_path / source, frames=10, audio=False, **variable)
    done = run_srpipe("upscale", clip, "-o", tmp_path / output, *(("--codec", codec) if codec else ()), "-q")
    assert done.returncode == 0, done.stderr.decode()
    rate, count = _frame_rate_and_count(tmp_path / output)
    assert count == 10 and (variable or rate == 25)


def test_a_variable_frame_rate_into_avi_keeps_its_times(tmp_path):
    """AVI counts in frames: at the mean rate a burst (a phone's) fell behind its sound, frames
    pushed a tick on each; at the rate of the quickest frames each keeps its time."""
    pts = [0, 1, 2, 3, 4, 8, 12, 16, 20, 24]  # 30 fps, then 7.5: the mean about 12
    clip = make_test_video(tmp_path / "vfr.mp4", frames=10, audio=False, pts=[1000 * t for t in pts],
                           time_base=Fraction(1, 30000))
    # MPEG-4 Part 2 (no B-frames: AVI, which stores no presentation times, then gives each its own)
    done = run_srpipe("upscale", clip, "-o", tmp_path / "out.avi", "--codec", "mpeg4", "-q")
    assert done.returncode == 0, done.stderr.decode()
    assert video_info(tmp_path / "out.avi")["times"] == [Fraction(t, 30) for t in pts]


def test_a_one_frame_picture_track_larger_than_the_video_is_not_upscaled(tmp_path):
    """Both default, the picture the larger (a cover that lost its flag in an MP4, which counts frames)."""
    clip = make_covered_clip(tmp_path / "covered.mp4", cover_size=(128, 128), cover_default=True)
    done = run_srpipe("upscale", clip, "-o", tmp_path / "out.mkv", "-q")
    assert done.returncode == 0, done.stderr.decode()
    with av.open(str(tmp_path / "out.mkv")) as result:
        upscaled = result.streams.video[0]
        assert upscaled.codec_context.width == 128 and sum(1 for _ in result.decode(upscaled)) == 10


AUD = b"\x00\x00\x00\x01\x09"  # an H.264 access unit delimiter: each frame's first NAL unit, with x264's aud=1


def _caption_sei(cc_data: bytes) -> bytes:
    """An H.264 SEI NAL unit of A/53 closed captions (ATSC's user data in ITU-T T.35), as broadcast
    H.264 carries them: ``cc_data``, triplets of a marker and two bytes of CEA-608."""
    payload = b"\xb5\x00\x31GA94\x03" + bytes([0x40 | len(cc_data) // 3, 0xFF]) + cc_data + b"\xff"
    body, zeros = bytearray(), 0
    for byte in bytes([4, len(payload)]) + payload + b"\x80":  # payload type 4, its size, the data, the stop bit
        if zeros >= 2 and byte <= 3:  # emulation prevention
            body.append(3)
            zeros = 0
        body.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return b"\x00\x00\x00\x01\x06" + bytes(body)


def captioned_broadcast(path, frames: int = 12, matrix: int | None = None) -> list[bytes]:
    """An MPEG-TS of H.264 whose every frame carries a different caption pair, tagged with the colour
    ``matrix`` (FFmpeg's number); returns each frame's cc_data."""
    raw = io.BytesIO()
    with av.open(raw, "w", format="h264") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.options = {"preset": "ultrafast", "bf": "0", "x264-params": "aud=1"}
        if matrix is not None:
            stream.codec_context.colorspace = matrix
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(test_pattern(64, 48, index), format="rgb24").reformat(format="yuv420p")
            frame.pts = index
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    units = raw.getvalue().split(AUD)
    captions = [bytes([0xFC, 0xC1 + index, 0x80 | index]) for index in range(len(units) - 1)]
    captioned = units[0] + b"".join(AUD + unit[:1] + _caption_sei(cc) + unit[1:]  # after the delimiter's own byte
                                    for unit, cc in zip(units[1:], captions))
    with av.open(io.BytesIO(captioned), format="h264") as source, av.open(str(path), "w", format="mpegts") as out:
        stream = out.add_stream_from_template(source.streams.video[0])
        stream.time_base = Fraction(1, 25)
        for index, packet in enumerate(p for p in source.demux(video=0) if p.size):
            packet.stream, packet.time_base, packet.pts, packet.dts = stream, Fraction(1, 25), index, index
            out.mux(packet)
    return captions


def frame_captions(path) -> list[bytes]:
    with av.open(str(path)) as container:
        return [bytes(frame.side_data[SideDataType.A53_CC]) for frame in container.decode(video=0)
                if SideDataType.A53_CC in frame.side_data]


def test_closed_captions_are_kept_and_an_encoder_that_cannot_carry_them_is_told(tmp_path):
    """Captions in the video stream (A/53, as broadcast H.264 and MPEG-2 carry them) were dropped
    without a word: the frames given to the encoder were new ones, without the decoder's side data."""
    clip = tmp_path / "broadcast.ts"
    captions = captioned_broadcast(clip)
    assert frame_captions(clip) == captions
    for model in ("bicubic", "espcn"):
        done = run_srpipe("upscale", clip, "-m", model, "-o", tmp_path / f"{model}.mp4")
        assert done.returncode == 0 and b"Warning" not in done.stderr, done.stderr.decode()
        assert frame_captions(tmp_path / f"{model}.mp4") == captions
        with av.open(str(tmp_path / f"{model}.mp4")) as container:  # its own frame types, not the source's (no B)
            assert any(frame.pict_type == av.video.frame.PictureType.B for frame in container.decode(video=0))
    done = run_srpipe("upscale", clip, "-m", "bicubic", "-o", tmp_path / "out.webm")
    assert done.returncode == 0, done.stderr.decode()
    assert (f"Warning: the closed captions (CEA-608/708) of {clip} are dropped: libvpx-vp9 cannot carry them; use "
            "--codec libx264 (.mp4, .mkv) or mpeg2video (.ts) to keep them") in done.stderr.decode()
    assert frame_captions(tmp_path / "out.webm") == []
    ictcp = tmp_path / "hdr.ts"  # a matrix swscale refuses to convert from: the captions' frame is made all the same
    assert captioned_broadcast(ictcp, matrix=14) == captions
    done = run_srpipe("upscale", ictcp, "-m", "bicubic", "-o", tmp_path / "hdr.mp4")
    assert done.returncode == 0, done.stderr.decode()
    assert frame_captions(tmp_path / "hdr.mp4") == captions


def test_16_bit_rgb_keeps_its_depth(tmp_path):
    """A 16-bit RGB master (an FFV1 or ProRes from a VFX or archive workflow) was taken in 10 bits:
    steps of 7 in 65535 came out as one value, with no word."""
    clip = tmp_path / "master.mkv"
    with av.open(str(clip), "w") as out:
        stream = out.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "gbrp16le"
        steps = np.repeat(30000 + 7 * np.arange(4, dtype=np.uint16), 16)[None].repeat(48, axis=0)
        rgb = np.stack([steps, np.full_like(steps, 20000), np.full_like(steps, 10000)], axis=-1)
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb48le").reformat(format="gbrp16le")
        frame.pts = 0
        out.mux(stream.encode(frame))
        out.mux(stream.encode())
    done = run_srpipe("upscale", clip, "-m", "bicubic", "--codec", "ffv1", "-o", tmp_path / "out.mkv")
    assert done.returncode == 0 and b"Warning" not in done.stderr, done.stderr.decode()
    with av.open(str(tmp_path / "out.mkv")) as container:
        frame = next(container.decode(video=0))
        assert frame.format.name == "yuv444p16le"
        red = frame.reformat(format="rgb48le").to_ndarray()[48, 8::32, 0].astype(int)
    # each step kept (ffmpeg's scale gives the same values: Y'CbCr and back moves them a few units)
    assert np.all(np.abs(np.diff(red) - 7) <= 1) and np.all(np.abs(red - (30000 + 7 * np.arange(4))) <= 8), red


def test_a_font_attachment_goes_where_attachments_go_and_is_told_elsewhere(tmp_path):
    """Matroska keeps a font for its subtitles; MP4's writer refused the whole file for it."""
    clip = make_test_video(tmp_path / "in.mkv", frames=3, audio=False)
    anime = tmp_path / "anime.mkv"
    with av.open(str(clip)) as source, av.open(str(anime), "w") as out:
        video = out.add_stream_from_template(source.streams.video[0])
        out.add_attachment("font.ttf", "application/x-truetype-font", b"\x00\x01\x00\x00 a font")
        for packet in source.demux(video=0):
            if packet.dts is not None:
                packet.stream = video
                out.mux(packet)
    done = run_srpipe("upscale", anime, "-o", tmp_path / "out.mkv", "-q")
    assert done.returncode == 0 and done.stderr.decode() == "", done.stderr.decode()
    with av.open(str(tmp_path / "out.mkv")) as container:
        (font,) = container.streams.attachments
        assert (font.name, font.mimetype, bytes(font.data)) == ("font.ttf", "application/x-truetype-font",
                                                                b"\x00\x01\x00\x00 a font")
    done = run_srpipe("upscale", anime, "-o", tmp_path / "out.mp4", "-q")
    assert done.returncode == 0 and done.stderr.decode() == (
        f"Warning: the attachment #1 (font.ttf) of {anime} is not copied: of the outputs, only Matroska (.mkv) holds "
        "attachments\n")
    assert len(video_info(tmp_path / "out.mp4")["times"]) == 3


@pytest.mark.parametrize(("size", "tags"), [
    ((720, 576), (1, 6, 5, 2)),  # a PAL DVD: BT.601, 625-line primaries
    ((640, 480), (1, 6, 6, 2)),  # NTSC: 525-line primaries
    ((320, 180), (1, 2, 2, 2)),  # still SD at x2: shown as before, untagged
])
def test_untagged_sd_video_upscaled_to_hd_is_tagged_as_it_was_shown(tmp_path, size, tags):
    """Players show untagged SD as BT.601 and HD as BT.709: without tags the upscale's colours would shift."""
    clip = make_test_video(tmp_path / "sd.mkv", width=size[0], height=size[1], frames=2, audio=False)
    assert video_info(clip)["colour"][1:] == (2, 2, 2)
    upscale(str(clip), str(tmp_path / "hd.mkv"), scale=2)
    assert video_info(tmp_path / "hd.mkv")["colour"] == tags


def test_tagged_and_hd_video_keep_their_own_colour_tags(tmp_path):
    hd = make_test_video(tmp_path / "hd.mkv", width=1280, height=720, frames=1, audio=False)
    upscale(str(hd), str(tmp_path / "uhd.mkv"), scale=2)
    assert video_info(tmp_path / "uhd.mkv")["colour"] == (1, 2, 2, 2)  # shown as BT.709 before and after
    with av.open(str(tmp_path / "tagged.mkv"), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 720, 576, "yuv420p"
        stream.codec_context.colorspace = stream.codec_context.color_primaries = stream.codec_context.color_trc = 1
        container.mux(stream.encode(av.VideoFrame.from_ndarray(test_pattern(720, 576, 0), format="rgb24")
                                    .reformat(format="yuv420p")))
        container.mux(stream.encode(None))
    upscale(str(tmp_path / "tagged.mkv"), str(tmp_path / "tagged_x2.mkv"), scale=2)
    assert video_info(tmp_path / "tagged_x2.mkv")["colour"] == (1, 1, 1, 1)


@pytest.mark.parametrize(("suffix", "told"), [
    (".mkv", []),
    (".mov", ["the audio stream #1 of {clip} loses its flags (comment, forced): MOV does not hold them (write a .mkv "
              "file, as the input is, to keep them)"]),
    (".m4v", ["the audio stream #1 of {clip} loses its flags (comment, forced): M4V does not hold them (write a .mkv "
              "file, as the input is, to keep them)"]),
    (".ts", ["the 2 chapters of {clip} are not kept: MPEG-TS holds none (write a .mkv file, as the input is, to keep "
             "them)", "the audio stream #1 of {clip} loses its flags (comment, forced): MPEG-TS does not hold them "
             "(write a .mkv file, as the input is, to keep them)"]),
])
def test_chapters_and_flags_an_output_cannot_hold_are_told(tmp_path, suffix, told):
    """A director's commentary or forced subtitles shown as an ordinary track would be missed."""
    plain = make_test_video(tmp_path / "plain.mkv", frames=20, audio=True)
    clip = remux(plain, tmp_path / "clip.mkv", chapters=[(0, 0.4, "One"), (0.4, 0.8, "Two")],
                 flags=av.stream.Disposition.comment | av.stream.Disposition.forced)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        upscale(str(clip), str(tmp_path / f"out{suffix}"))
    said = [str(warning.message) for warning in caught if "not kept" in str(warning.message) or
            "flags" in str(warning.message)]
    assert said == [line.format(clip=clip) for line in told]


def test_raw_motion_jpeg_is_a_video_though_it_begins_as_a_picture(tmp_path):
    """A camera's .mjpeg: JPEGs back to back, taken for one picture (its first) by its first bytes."""
    clip = make_test_video(tmp_path / "cam.mjpeg", codec="mjpeg", pix_fmt="yuvj420p", frames=3, audio=False,
                           title=None, codec_options={})
    assert clip.read_bytes()[:3] == b"\xff\xd8\xff"
    upscale(str(clip), str(tmp_path / "out.mkv"), scale=2)
    assert len(video_info(tmp_path / "out.mkv")["times"]) == 3
