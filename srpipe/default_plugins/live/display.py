"""What the window shows: the bicubic upscale beside the model's, as BGR, with text drawn on it.

Frames stay Y'CbCr through the upscalers (:func:`srpipe.pipeline.upscale_frames`);
they become BGR only here, through FFmpeg's swscale with the frame's range and
the BT.601 matrix, or BT.709 for sources of 720 lines and more (what players
assume for untagged video).
"""

from __future__ import annotations

from dataclasses import replace

import av
import cv2
import numpy as np
from av.video.reformatter import ColorRange, Colorspace

from srpipe.errors import SrpipeError
from srpipe.frames import Frame
from srpipe.pipeline import upscale_frames
from srpipe.resize import resize_plane
from srpipe.video import frame_to_av, plane_view

HD_LINES = 720
TEXT_COLOUR = (255, 255, 255)
BOX_COLOUR = (0, 0, 0)
FONT = cv2.FONT_HERSHEY_SIMPLEX


class BicubicLuma:
    """The reference upscaler: bicubic luma (the chroma is bicubic anyway)."""

    def __init__(self, scale: int):
        self.scale = scale

    def upscale(self, luma: np.ndarray, *, bit_depth: int, full_range: bool) -> np.ndarray:
        _, height, width = luma.shape
        size = (width * self.scale, height * self.scale)
        return np.stack([resize_plane(plane, *size, (1 << bit_depth) - 1) for plane in luma])


def matrix_for(source_height: int) -> Colorspace:
    return Colorspace.ITU709 if source_height >= HD_LINES else Colorspace.ITU601


def to_bgr(frame: Frame, matrix: Colorspace) -> np.ndarray:
    """A BGR image of a Y'CbCr frame."""
    video_frame = frame_to_av(replace(frame, captions=None))  # shown, not encoded
    source_range = ColorRange.JPEG if frame.full_range else ColorRange.MPEG
    bgr = video_frame.reformat(
        format="bgr24", src_colorspace=matrix, src_color_range=source_range, dst_color_range=ColorRange.JPEG
    )
    return bgr.to_ndarray()


def side_by_side(frame: Frame, upscaler, model_name: str) -> np.ndarray:
    """The bicubic upscale (left) and the model's (right) of one frame, as one BGR image."""
    return beside_bicubic(frame, upscale_frames([frame], upscaler, model_name)[0])


def beside_bicubic(frame: Frame, upscaled: Frame) -> np.ndarray:
    """The bicubic upscale of ``frame`` (left) beside ``upscaled``, a model's (right), as one BGR image.

    The halves differ only in their luma: a model's chroma is bicubic too
    (:func:`srpipe.pipeline.upscale_frames`). So only the left luma is computed, and both halves
    go to BGR as one frame, in one conversion: the same pixels as converting their colour planes
    apart (an alpha plane is not drawn), at a sixth of the cost, which the live preview's loop
    pays for every frame it shows. Where the halves cannot share chroma columns (an odd width
    with halved chroma), each goes alone."""
    matrix = matrix_for(frame.height)
    scale = upscaled.height // frame.height
    fmt = upscaled.format
    if fmt.chroma_shift is not None and upscaled.width % (1 << fmt.chroma_shift[0]):
        reference = upscale_frames([frame], BicubicLuma(scale), "bicubic")[0]
        return np.hstack([to_bgr(reference, matrix), to_bgr(upscaled, matrix)])
    left_luma = BicubicLuma(scale).upscale(frame.planes[0][None], bit_depth=fmt.bit_depth,
                                           full_range=frame.full_range)[0]
    try:
        both = av.VideoFrame(2 * upscaled.width, upscaled.height, fmt.name)
    except (av.FFmpegError, ValueError) as exc:  # over FFmpeg's picture size limit
        raise SrpipeError(f"a {2 * upscaled.width}x{upscaled.height} preview is more than can be shown; upscale "
                          "this input with 'srpipe upscale'") from exc
    for index, plane in enumerate(both.planes):
        view = plane_view(plane, fmt.dtype)
        half = view.shape[1] // 2
        view[:, :half] = left_luma if index == 0 else upscaled.planes[index]
        view[:, half:] = upscaled.planes[index]
    source_range = ColorRange.JPEG if upscaled.full_range else ColorRange.MPEG
    return both.reformat(format="bgr24", src_colorspace=matrix, src_color_range=source_range,
                         dst_color_range=ColorRange.JPEG).to_ndarray()


def draw_text(image: np.ndarray, lines: list[str], x: int, at_bottom: bool = False) -> None:
    """Write ``lines`` on a dark box at column ``x``, at the top or the bottom of ``image``."""
    font_scale = min(1.0, max(0.35, image.shape[0] / HD_LINES))
    thickness = 1 if font_scale < 0.8 else 2
    sizes = [cv2.getTextSize(line, FONT, font_scale, thickness) for line in lines]
    line_height = max(h + base for (_, h), base in sizes) + 4
    width = max(w for (w, _), _ in sizes) + 8
    height = line_height * len(lines) + 4
    y = image.shape[0] - height if at_bottom else 0
    cv2.rectangle(image, (x, y), (x + width, y + height), BOX_COLOUR, thickness=-1)
    for index, line in enumerate(lines):
        baseline_y = y + line_height * (index + 1) - 2
        cv2.putText(image, line, (x + 4, baseline_y), FONT, font_scale, TEXT_COLOUR, thickness, cv2.LINE_AA)


def annotate(image: np.ndarray, model_name: str, scale: int, status: str) -> np.ndarray:
    """Label both halves and write the status line (fps, latency, drops) at the bottom."""
    draw_text(image, [f"bicubic x{scale}"], 0)
    draw_text(image, [f"{model_name} x{scale}"], image.shape[1] // 2)
    draw_text(image, [status], 0, at_bottom=True)
    return image


# How each of FFmpeg's turning filters (srpipe.video.turn_filters) moves a BGR image's pixels
_TURNS = {
    ("transpose", "clock"): lambda image: np.rot90(image, -1),
    ("transpose", "cclock"): lambda image: np.rot90(image, 1),
    ("transpose", "cclock_flip"): lambda image: image.transpose(1, 0, 2),
    ("transpose", "clock_flip"): lambda image: np.rot90(image, -1)[::-1],
    ("hflip", None): lambda image: image[:, ::-1],
    ("vflip", None): lambda image: image[::-1],
}


def turned_halves(image: np.ndarray, filters: list[tuple[str, str | None]]) -> np.ndarray:
    """``image``'s two halves side by side (:func:`beside_bicubic`), each turned as ``filters``
    say: a phone's video shown upright, as players show it."""
    halves = np.hsplit(image, 2)
    for step in filters:
        halves = [_TURNS[step](half) for half in halves]
    return np.ascontiguousarray(np.hstack(halves))
