"""Video with an alpha channel (yuva formats): the alpha is upscaled beside the colour planes
and written where the encoder takes it, else dropped with a warning that says how to keep it."""

from fractions import Fraction

import av
import cv2
import numpy as np
import pytest

from srpipe.frames import PLANE_FORMATS
from srpipe.video import frame_from_av, plane_view

from conftest import run_srpipe


def make_alpha_clip(path, pix_fmt, frames=4, width=48, height=32, codec="ffv1", options=None):
    """A clip whose alpha is a soft disc that moves, and whose colour is a ramp (``options``: the encoder's)."""
    depth = int(pix_fmt[-4:-2]) if pix_fmt.endswith("le") else 8
    dtype, top = (np.uint16 if depth > 8 else np.uint8), (1 << depth) - 1
    y, x = np.mgrid[0:height, 0:width]
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=10)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.time_base = Fraction(1, 10)
        stream.options = options or {}
        for i in range(frames):
            frame = av.VideoFrame(width, height, pix_fmt)
            disc = np.clip(1.5 - np.hypot(x - 12 - 6 * (i % 6), y - 16) / 6, 0, 1)
            for index, plane in enumerate(frame.planes):
                view = plane_view(plane, np.dtype(dtype))
                h, w = view.shape
                if index == 3:
                    view[...] = np.round(disc * top)
                else:
                    view[...] = (np.linspace(16, 235, w)[None, :] * (top / 255)).astype(dtype)
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def decoded(path, decoder=None):
    """The frames of a clip, through FFmpeg's usual decoder or the one named."""
    with av.open(str(path)) as container:
        if decoder is None:
            return [frame_from_av(f) for f in container.decode(video=0)]
        stream = container.streams.video[0]
        context = av.CodecContext.create(decoder, "r")
        context.extradata = stream.codec_context.extradata
        return [frame_from_av(f) for packet in container.demux(stream) for f in context.decode(packet)]


@pytest.mark.parametrize("pix_fmt", ["yuva420p", "yuva444p10le"])
def test_alpha_is_upscaled_and_kept_by_an_encoder_that_takes_it(cli_run, tmp_path, pix_fmt):
    clip = make_alpha_clip(tmp_path / "alpha.mkv", pix_fmt)
    out = tmp_path / "big.mkv"
    result = cli_run("upscale", clip, "-o", out, "--codec", "ffv1", "-m", "lanczos")
    assert result.exit_code == 0, result.output
    assert "Warning" not in result.stderr
    with av.open(str(out)) as container:
        assert container.streams.video[0].codec_context.pix_fmt == pix_fmt
    before, after = decoded(clip), decoded(out)
    assert len(after) == len(before) == 4
    top = PLANE_FORMATS[pix_fmt.replace("yuva", "yuv")].max_value
    for small, big in zip(before, after):
        assert big.alpha.shape == (64, 96)
        expected = np.clip(cv2.resize(small.alpha, (96, 64), interpolation=cv2.INTER_CUBIC), 0, top)
        assert np.abs(big.alpha.astype(int) - expected).max() <= 1
        assert big.alpha.max() <= top and big.alpha.max() > top * 0.9  # opaque stays opaque


def test_alpha_an_encoder_cannot_write_is_dropped_with_a_warning(tmp_path):
    clip = make_alpha_clip(tmp_path / "alpha.mkv", "yuva420p")
    out = tmp_path / "big.mp4"
    done = run_srpipe("upscale", clip, "-o", out)
    assert done.returncode == 0, done.stderr.decode()
    warning = [line for line in done.stderr.decode().splitlines() if line.startswith("Warning:")]
    assert len(warning) == 1
    assert "alpha channel" in warning[0] and "libx264" in warning[0] and "--codec ffv1" in warning[0]
    after = decoded(out)
    assert len(after) == 4 and all(frame.alpha is None for frame in after)


def test_vp9_alpha_is_read_and_written(tmp_path):
    """WebM keeps VP9's alpha beside the picture, where FFmpeg's own VP9 decoder does not look:
    srpipe reads it with libvpx's decoder, and VP9, .webm's default encoder, writes it back."""
    clip = make_alpha_clip(tmp_path / "alpha.webm", "yuva420p", codec="libvpx-vp9")
    assert all(frame.alpha is None for frame in decoded(clip))  # what the usual decoder gives
    out = tmp_path / "big.webm"
    done = run_srpipe("upscale", clip, "-o", out)
    assert done.returncode == 0 and "Warning" not in done.stderr.decode(), done.stderr.decode()
    before, after = decoded(clip, "libvpx-vp9"), decoded(out, "libvpx-vp9")
    assert len(after) == len(before) == 4
    for small, big in zip(before, after):
        assert big.alpha.shape == (64, 96)
        expected = cv2.resize(small.alpha, (96, 64), interpolation=cv2.INTER_CUBIC)
        assert np.abs(big.alpha.astype(int) - expected).mean() < 3  # VP9 is lossy, alpha too


def test_vp9_alpha_is_kept_by_a_batch_that_runs_files_in_chunks(tmp_path):
    """The parts of a chunked file (NUT) drop the alpha WebM keeps beside the picture: every frame
    came out opaque. Such a file runs whole."""
    (tmp_path / "in").mkdir()
    make_alpha_clip(tmp_path / "in" / "alpha.webm", "yuva420p", frames=40, codec="libvpx-vp9", options={"g": "10"})
    done = run_srpipe("batch", tmp_path / "in", tmp_path / "out", "--jobs", "2", "--chunk-seconds", "1", "-q")
    assert done.returncode == 0 and "Warning" not in done.stderr.decode(), done.stderr.decode()
    after = decoded(tmp_path / "out" / "alpha.webm", "libvpx-vp9")
    assert len(after) == 40 and all(frame.alpha is not None for frame in after)


def make_rgba_clip(path, opaque: bool, frames=3, width=40, height=30):
    """A PNG-coded clip (RGBA, as screen recordings and GIF-like sources decode): a colour ramp
    whose top-left quarter is transparent unless ``opaque``."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("png", rate=10)
        stream.width, stream.height, stream.pix_fmt = width, height, "rgba"
        for i in range(frames):
            rgba = np.zeros((height, width, 4), np.uint8)
            rgba[..., 0] = np.linspace(0, 255, width)[None, :]
            rgba[..., 1] = 40 * i
            rgba[..., 3] = 255
            if not opaque:
                rgba[: height // 2, : width // 2, 3] = 0
            frame = av.VideoFrame.from_ndarray(rgba, format="rgba")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def warnings_of(done):
    return [line for line in done.stderr.decode().splitlines() if line.startswith("Warning:")]


def test_rgba_video_keeps_its_alpha_and_only_real_transparency_is_reported(tmp_path):
    transparent = make_rgba_clip(tmp_path / "see-through.mov", opaque=False)
    kept = tmp_path / "kept.mkv"
    done = run_srpipe("upscale", transparent, "-o", kept, "--codec", "ffv1")
    assert done.returncode == 0 and not warnings_of(done), done.stderr.decode()
    frames = decoded(kept)
    assert len(frames) == 3 and frames[0].format.name == "yuv444p"
    assert frames[0].alpha[:28, :38].max() <= 5 and frames[0].alpha[34:, 42:].min() >= 250

    dropped = run_srpipe("upscale", transparent, "-o", tmp_path / "flat.mp4")
    assert dropped.returncode == 0 and len(warnings_of(dropped)) == 1 and "alpha" in warnings_of(dropped)[0]

    webm = tmp_path / "kept.webm"  # what the warning advises too: VP9 keeps alpha as 4:2:0, all it takes
    done = run_srpipe("upscale", transparent, "-o", webm)
    assert done.returncode == 0 and not warnings_of(done), done.stderr.decode()
    frames = decoded(webm, "libvpx-vp9")
    assert len(frames) == 3 and frames[0].format.name == "yuv420p"
    assert frames[0].alpha[:28, :38].max() <= 8 and frames[0].alpha[34:, 42:].min() >= 245  # VP9 is lossy

    opaque = make_rgba_clip(tmp_path / "opaque.mov", opaque=True)
    done = run_srpipe("upscale", opaque, "-o", tmp_path / "opaque.mp4")
    assert done.returncode == 0 and not warnings_of(done), done.stderr.decode()
    assert len(decoded(tmp_path / "opaque.mp4")) == 3


@pytest.mark.parametrize("pix_fmt, samples", [("yuv444p", 3), ("yuva444p", 4), ("ya8", 4), ("bgra", 4), ("gray", 3)])
def test_the_memory_plan_counts_the_alpha_plane(tmp_path, pix_fmt, samples):
    """Frames with alpha (Y'CbCrA, grey with alpha, RGBA) hold a fourth full-size plane: the
    batch that fits in memory is smaller."""
    from srpipe.media import SourceOptions
    from srpipe.memory import GIB, fit_batch_size
    from srpipe.testing import make_test_video
    from srpipe.video import PyAVSource

    class Model:
        working_bytes_per_output_pixel = 0  # the queued frames alone

    clip = make_test_video(tmp_path / "clip.mkv", pix_fmt=pix_fmt, codec="ffv1", frames=2, audio=False)
    with PyAVSource(str(clip), SourceOptions()) as source, pytest.warns(UserWarning, match="lowered from 64"):
        assert source.samples_per_pixel == samples
        batch = fit_batch_size(1920, 1080, 4, 64, source.bytes_per_sample, Model(), available=2 * GIB,
                               samples_per_pixel=source.samples_per_pixel)
    # 2 queues x (1 + 16) pixels a pixel of input x 3 or 4 one-byte samples, and the batch whose chroma is
    # resized while the model works on the next (3 or 4 samples in, 16 of upscaled luma), in 80% of 2 GiB
    assert batch == {3: 6, 4: 5}[samples]


def test_vp9_keeps_10_bit_alpha_in_8_bits_and_says_so(tmp_path):
    clip = make_alpha_clip(tmp_path / "deep.mkv", "yuva444p10le")
    done = run_srpipe("upscale", clip, "-o", tmp_path / "deep.webm")
    assert done.returncode == 0, done.stderr.decode()
    assert warnings_of(done) == ["Warning: libvpx-vp9 keeps the alpha channel only in 8 bits; the 10-bit input is "
                                 "written as yuva420p: use --codec ffv1 (.mkv) to keep its depth"]
    frames = decoded(tmp_path / "deep.webm", "libvpx-vp9")
    assert len(frames) == 4 and frames[0].alpha is not None and frames[0].alpha.max() > 240


def test_an_encoder_without_the_inputs_alpha_format_keeps_the_alpha_in_the_nearest_it_has(tmp_path):
    """ProRes 4444 decodes as 12-bit with alpha, which prores_ks does not take: the output lost its
    alpha, and the warning said to use another codec, where prores_ks writes it as 10-bit."""
    clip = make_alpha_clip(tmp_path / "deep.mkv", "yuva444p12le")
    done = run_srpipe("upscale", clip, "--codec", "prores_ks", "-o", tmp_path / "out.mov")
    assert done.returncode == 0, done.stderr.decode()
    assert warnings_of(done) == ["Warning: prores_ks keeps the alpha channel only in 10 bits; the 12-bit input is "
                                 "written as yuva444p10le: use --codec ffv1 (.mkv) to keep its depth"]
    frames = decoded(tmp_path / "out.mov")
    source = decoded(clip)
    assert len(frames) == 4 and frames[0].alpha is not None
    scaled = cv2.resize(source[1].alpha.astype(np.float32), frames[1].alpha.shape[::-1], interpolation=cv2.INTER_CUBIC)
    assert np.abs(frames[1].alpha.astype(np.float32) - scaled).mean() < 0.02 * 4095  # the disc, where it was


def test_an_encoder_that_lists_alpha_it_cannot_write_drops_the_alpha_with_a_warning(tmp_path):
    """libx265 lists formats with alpha that PyAV's x265 refuses ("does not support alpha layer
    encoding"): a transparent clip into it stopped the run where it should be written without."""
    clip = make_alpha_clip(tmp_path / "alpha.mkv", "yuva444p")
    done = run_srpipe("upscale", clip, "--codec", "libx265", "-o", tmp_path / "out.mp4")
    assert done.returncode == 0, done.stderr.decode()
    assert warnings_of(done) == [f"Warning: the alpha channel of {clip} is dropped: libx265 cannot write it as "
                                 "yuv444p; use --codec ffv1 (.mkv), libvpx-vp9 (.webm) or prores_ks (.mov) to keep it"]
    assert len(decoded(tmp_path / "out.mp4")) == 4


def test_subsampled_colour_under_transparency_takes_the_nearest_visible_colour():
    """In 4:2:0 a chroma sample is hidden where all four luma pixels it covers are: those take the
    nearest visible sample's value, the others (half-covered included) keep theirs."""
    from srpipe.resize import fill_hidden_colour

    alpha = np.zeros((8, 12), np.uint8)
    alpha[2:6, 3:9] = 255  # visible: luma columns 3-8, so chroma columns 1 (half), 2, 3, 4 (half)
    luma = np.full((8, 12), 16, np.uint8)
    luma[2:6, 3:9] = 200
    cb = np.full((4, 6), 16, np.uint8)
    cb[1:3, 1:5] = np.arange(100, 104)
    y, cb_filled, cr_filled = fill_hidden_colour((luma, cb, cb.copy()), alpha, (1, 1))
    assert (y == 200).all()
    assert np.array_equal(cb_filled[1:3, 1:5], cb[1:3, 1:5])
    assert np.array_equal(cb_filled[0], [100, 100, 101, 102, 103, 103])
    assert np.array_equal(cb_filled[:, 0], [100, 100, 100, 100]) and np.array_equal(cb_filled, cr_filled)
    opaque = fill_hidden_colour((luma, cb, cb), np.full((8, 12), 255, np.uint8), (1, 1))
    assert all(a is b for a, b in zip(opaque, (luma, cb, cb)))  # nothing to fill: no copies


def test_a_transparent_gif_named_by_default_says_an_animation_keeps_its_alpha(tmp_path):
    """A GIF's default output is .mp4, whose x264 drops the transparency: the warning named only
    other video codecs, not an animation's output, which keeps it."""
    from PIL import Image

    frames = [Image.new("RGBA", (40, 30), (200, 0, 0, 255)) for _ in range(2)]
    for frame in frames:
        frame.paste((0, 0, 0, 0), (0, 0, 40, 15))  # the top half transparent
    frames[0].save(tmp_path / "tr.gif", save_all=True, append_images=frames[1:], duration=100, disposal=2)
    done = run_srpipe("upscale", tmp_path / "tr.gif", "-q")
    assert done.returncode == 0, done.stderr.decode()
    assert warnings_of(done) == [f"Warning: the alpha channel of {tmp_path / 'tr.gif'} is dropped: libx264 cannot "
                                 "write it as yuv444p; use -o NAME.apng (or .gif, whose pixels are each transparent "
                                 "or not), --codec ffv1 (.mkv), libvpx-vp9 (.webm) or prores_ks (.mov) to keep it"]
    assert (tmp_path / "tr_x2.mp4").exists()
    kept = run_srpipe("upscale", tmp_path / "tr.gif", "-o", tmp_path / "tr.apng", "-q")
    assert kept.returncode == 0 and warnings_of(kept) == [], kept.stderr.decode()
