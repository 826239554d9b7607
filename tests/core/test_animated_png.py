"""Animated PNG (APNG): upscaled as the animation it is, as a GIF is, not as its first frame."""

from fractions import Fraction

import av
import numpy as np

from srpipe.media import is_image_file, png_animation

from conftest import run_srpipe


def make_apng(path, frames: int = 6, plays: int = 3, alpha: bool = True, rate: int = 10):
    """An animated PNG of moving bars, its left half opaque and its right half at alpha 40."""
    with av.open(str(path), "w", format="apng", options={"plays": str(plays)}) as container:
        stream = container.add_stream("apng", rate=rate)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "rgba" if alpha else "rgb24"
        for index in range(frames):
            picture = np.zeros((48, 64, 4), np.uint8)
            picture[:, (np.arange(64) + 4 * index) % 16 < 8, :3] = (200, 60, 20)
            picture[..., 3] = 255
            picture[:, 32:, 3] = 40
            frame = av.VideoFrame.from_ndarray(picture if alpha else np.ascontiguousarray(picture[..., :3]),
                                               format="rgba" if alpha else "rgb24")
            frame.pts, frame.time_base = index, Fraction(1, rate)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def frames_of(path):
    with av.open(str(path)) as container:
        assert container.format.name == "apng"
        return [(frame.to_ndarray(), float(frame.time)) for frame in container.decode(video=0)]


def test_an_animated_png_is_upscaled_as_an_animation_beside_it(tmp_path):
    """It was taken for a picture: its first frame was upscaled, the rest dropped with a warning."""
    source = make_apng(tmp_path / "sticker.png")
    assert png_animation(str(source)) == (6, 3) and not is_image_file(str(source))
    done = run_srpipe("upscale", source, "-m", "bicubic")
    assert done.returncode == 0 and "Warning" not in done.stderr.decode(), done.stderr.decode()
    frames = frames_of(tmp_path / "sticker_x2.png")
    assert [time for _, time in frames] == [time for _, time in frames_of(source)]
    picture = frames[2][0]
    assert picture.shape == (96, 128, 4)  # its transparency kept
    assert (picture[:, :60, 3] == 255).all() and (picture[:, 68:, 3] == 40).all()
    assert png_animation(str(tmp_path / "sticker_x2.png")) == (6, 3)  # plays as often as the input


def test_an_animated_png_named_apng_keeps_its_name(tmp_path):
    source = make_apng(tmp_path / "sticker.apng")
    done = run_srpipe("upscale", source, "-m", "bicubic", "-q")
    assert done.returncode == 0, done.stderr.decode()
    assert len(frames_of(tmp_path / "sticker_x2.apng")) == 6


def test_a_video_made_an_animated_png_loops_and_a_png_name_for_it_is_refused_with_the_way(tmp_path):
    make_apng(tmp_path / "still_frames.png", alpha=False)
    run_srpipe("upscale", tmp_path / "still_frames.png", "-m", "bicubic", "-o", tmp_path / "clip.mkv")
    done = run_srpipe("upscale", tmp_path / "clip.mkv", "-m", "bicubic", "-o", tmp_path / "out.png")
    assert done.returncode == 1 and ".gif or .apng for an animation" in done.stderr.decode()
    done = run_srpipe("upscale", tmp_path / "clip.mkv", "-m", "bicubic", "-o", tmp_path / "out.apng")
    assert done.returncode == 0, done.stderr.decode()
    assert len(frames_of(tmp_path / "out.apng")) == 6 and png_animation(str(tmp_path / "out.apng"))[1] == 0


def test_a_batch_writes_an_animated_png_as_one(tmp_path):
    (tmp_path / "in").mkdir()
    make_apng(tmp_path / "in" / "sticker.png")
    done = run_srpipe("batch", tmp_path / "in", tmp_path / "out", "-m", "bicubic", "-q")
    assert done.returncode == 0, done.stderr.decode()
    assert len(frames_of(tmp_path / "out" / "sticker.png")) == 6


def test_an_animated_png_of_one_frame_is_a_picture(tmp_path):
    source = make_apng(tmp_path / "one.png", frames=1)
    assert is_image_file(str(source))


def test_an_animated_pngs_last_frame_is_shown_as_long_as_in_the_input(tmp_path):
    """It was shown as long as the one before it (100, 200, 300, 400 ms came out 100, 200, 300, 300)."""
    from PIL import Image

    pictures = [Image.fromarray(np.full((24, 32, 3), 60 * index, np.uint8)) for index in range(4)]
    pictures[0].save(tmp_path / "a.png", save_all=True, append_images=pictures[1:], duration=[100, 200, 300, 400])
    done = run_srpipe("upscale", tmp_path / "a.png", "-o", tmp_path / "out.png", "-q")
    assert done.returncode == 0, done.stderr.decode()
    with Image.open(tmp_path / "out.png") as written:
        shown = []
        for index in range(written.n_frames):
            written.seek(index)
            shown.append(written.info["duration"])
    assert shown == [100, 200, 300, 400]
