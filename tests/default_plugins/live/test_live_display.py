"""What the live window shows: the bicubic upscale beside the model's, converted to BGR in one go
where the halves can share chroma columns, and pixel for pixel what converting each half alone gives."""

from dataclasses import replace
from fractions import Fraction

import numpy as np
import pytest

from srpipe.default_plugins.live.display import BicubicLuma, beside_bicubic, matrix_for, to_bgr
from srpipe.frames import PLANE_FORMATS, Frame
from srpipe.pipeline import upscale_frames


class Sharpen:
    """A stand-in model whose luma differs from bicubic's: the bicubic luma, inverted."""

    def __init__(self, scale):
        self.scale = scale

    def upscale(self, luma, *, bit_depth, full_range):
        return ((1 << bit_depth) - 1) - BicubicLuma(self.scale).upscale(luma, bit_depth=bit_depth,
                                                                       full_range=full_range)


def random_frame(fmt_name: str, width: int, height: int, full_range: bool, seed: int = 0) -> Frame:
    fmt = PLANE_FORMATS[fmt_name]
    rng = np.random.default_rng(seed)
    sizes = [(width, height)] + ([fmt.chroma_size(width, height)] * 2 if fmt.chroma_shift is not None else [])
    planes = tuple(rng.integers(0, fmt.max_value + 1, (h, w)).astype(fmt.dtype) for w, h in sizes)
    return Frame(planes, fmt, full_range, 0, Fraction(1, 25))


def each_half_alone(frame: Frame, upscaled: Frame) -> np.ndarray:
    matrix = matrix_for(frame.height)
    reference = upscale_frames([frame], BicubicLuma(upscaled.height // frame.height), "bicubic")[0]
    return np.hstack([to_bgr(reference, matrix), to_bgr(upscaled, matrix)])


@pytest.mark.parametrize("fmt_name, width, height, scale, full_range", [
    ("yuv420p", 64, 48, 2, False),
    ("yuv420p", 64, 48, 2, True),
    ("yuv420p10le", 40, 30, 2, False),
    ("yuv422p", 50, 20, 3, False),
    ("yuv444p", 33, 21, 3, False),
    ("gray", 31, 17, 3, False),
    ("yuv420p", 33, 22, 3, False),  # an odd upscaled width: the halves go to BGR one by one
])
def test_both_halves_are_what_each_gives_alone(fmt_name, width, height, scale, full_range):
    frame = random_frame(fmt_name, width, height, full_range)
    upscaled = upscale_frames([frame], Sharpen(scale), "sharpen")[0]
    shown = beside_bicubic(frame, upscaled)
    assert shown.shape == (height * scale, 2 * width * scale, 3)
    np.testing.assert_array_equal(shown, each_half_alone(frame, upscaled))
    # the halves differ where the lumas do: the left is bicubic's, not the model's
    assert not np.array_equal(shown[:, :width * scale], shown[:, width * scale:])


@pytest.mark.parametrize("fmt_name", ["yuv420p", "yuv422p"])
def test_a_source_with_alpha_shows_its_colour(fmt_name):
    """The window draws no transparency: a frame with alpha shows what its colour planes give."""
    frame = random_frame(fmt_name, 40, 30, False)
    with_alpha = replace(frame, alpha=np.random.default_rng(1).integers(0, 256, (30, 40)).astype(np.uint8))
    upscaled = upscale_frames([with_alpha], Sharpen(2), "sharpen")[0]
    assert upscaled.alpha is not None
    np.testing.assert_array_equal(beside_bicubic(with_alpha, upscaled),
                                  each_half_alone(frame, replace(upscaled, alpha=None)))


@pytest.mark.parametrize("step", [("transpose", "clock"), ("transpose", "cclock"), ("transpose", "cclock_flip"),
                                  ("transpose", "clock_flip"), ("hflip", None), ("vflip", None)])
def test_each_half_is_turned_as_ffmpegs_own_filter_turns_it(step):
    import av

    from srpipe.default_plugins.live.display import turned_halves
    from srpipe.video import Turn

    half = np.random.default_rng(3).integers(0, 256, (6, 10, 3), dtype=np.uint8)
    by_ffmpeg = Turn([step])(av.VideoFrame.from_ndarray(half, format="bgr24")).to_ndarray()
    assert np.array_equal(turned_halves(np.hstack([half, half]), [step]), np.hstack([by_ffmpeg, by_ffmpeg]))
