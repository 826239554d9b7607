"""Degradations for training and scoring luma upscalers on the inputs users really have:
shrunk with one of several kernels (with and without antialiasing), then compressed by a real
codec (x264 through PyAV, or libjpeg through OpenCV).

Luma is 8-bit limited-range Y ([16, 235], MATLAB ``rgb2ycbcr``), as in :mod:`srpipe.default_plugins.espcn.data`;
x264 gets it as the Y plane of yuv420p with flat chroma, so it is coded as a video's luma is.
"""

from __future__ import annotations

from fractions import Fraction

import av
import cv2
import numpy as np
from PIL import Image

from srpipe.default_plugins.espcn.imresize import imresize
from srpipe.errors import SrpipeError

#: Downscaling kernels. The non-antialiased ones (``opencv-cubic``, ``bilinear``) alias as
#: ``cv2.resize`` does; ``swscale-bicubic`` is ``ffmpeg -vf scale=W:H`` (its default bicubic).
KERNELS = ("matlab-bicubic", "swscale-bicubic", "opencv-cubic", "area", "bilinear", "lanczos")


def to_uint8(y: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(y), 0, 255).astype(np.uint8)


def swscale_resize(plane: np.ndarray, width: int, height: int, flags: str = "bicubic") -> np.ndarray:
    """An 8-bit plane resized by FFmpeg's ``scale`` filter, as ``ffmpeg -vf scale`` does."""
    graph = av.filter.Graph()
    src = graph.add_buffer(width=plane.shape[1], height=plane.shape[0], format="gray", time_base=Fraction(1, 25))
    scaler = graph.add("scale", f"{width}:{height}:flags={flags}:threads=1")
    src.link_to(scaler)
    scaler.link_to(graph.add("buffersink"))
    graph.configure()
    graph.push(av.VideoFrame.from_ndarray(np.ascontiguousarray(plane), format="gray"))
    return graph.pull().to_ndarray()


def downscale(hr: np.ndarray, scale: int, kernel: str = "matlab-bicubic") -> np.ndarray:
    """The uint8 LR of an HR luma (float or uint8) whose sides are multiples of ``scale``."""
    h, w = hr.shape
    if h % scale or w % scale:
        raise ValueError(f"HR size {w}x{h} is not a multiple of the scale {scale}")
    size = (w // scale, h // scale)
    if kernel == "matlab-bicubic":
        return to_uint8(imresize(hr, 1.0 / scale))
    if kernel == "swscale-bicubic":
        return swscale_resize(to_uint8(hr), *size)
    x = np.asarray(hr, np.float32)
    if kernel == "opencv-cubic":
        return to_uint8(cv2.resize(x, size, interpolation=cv2.INTER_CUBIC))
    if kernel == "area":
        return to_uint8(cv2.resize(x, size, interpolation=cv2.INTER_AREA))
    if kernel == "bilinear":
        return to_uint8(cv2.resize(x, size, interpolation=cv2.INTER_LINEAR))
    if kernel == "lanczos":  # PIL widens the kernel when shrinking: antialiased
        return to_uint8(np.asarray(Image.fromarray(x, mode="F").resize(size, Image.LANCZOS)))
    raise SrpipeError(f"unknown downscaling kernel {kernel!r}; use one of {', '.join(KERNELS)}")


def x264_roundtrip(frames: np.ndarray, crf: int, preset: str = "medium") -> np.ndarray:
    """(N, H, W) uint8 luma frames encoded as one H.264 clip by x264 and decoded again.

    With several frames, x264 makes an I frame then P and B frames, as in real video. Odd
    sizes are padded by edge replication for 4:2:0 and cropped back. ``crf`` 0 is lossless.
    """
    n, h, w = frames.shape
    ph, pw = h + h % 2, w + w % 2
    enc = av.CodecContext.create("libx264", "w")
    enc.width, enc.height, enc.pix_fmt = pw, ph, "yuv420p"
    enc.time_base = Fraction(1, 25)
    enc.options = {"preset": preset, "crf": str(crf), "threads": "1"}
    chroma = np.full((ph // 2, pw), 128, np.uint8)  # U and V planes, flat grey
    packets = []
    for i, y in enumerate(frames):
        y = np.pad(y, ((0, ph - h), (0, pw - w)), mode="edge")
        frame = av.VideoFrame.from_ndarray(np.concatenate([y, chroma]), format="yuv420p")
        frame.pts = i
        packets += enc.encode(frame)
    packets += enc.encode(None)
    dec = av.CodecContext.create("h264", "r")
    out = [f for p in packets for f in dec.decode(p)] + dec.decode(None)
    if len(out) != n:
        raise RuntimeError(f"x264 round trip gave {len(out)} frames for {n}")
    return np.stack([f.to_ndarray()[:h, :w] for f in out])


def jpeg_roundtrip(y: np.ndarray, quality: int) -> np.ndarray:
    """A uint8 luma encoded as a greyscale JPEG by libjpeg (OpenCV) and decoded."""
    ok, data = cv2.imencode(".jpg", y, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("OpenCV could not encode a JPEG")
    return cv2.imdecode(data, cv2.IMREAD_GRAYSCALE)


def parse_degradation(text: str) -> tuple[str, dict[str, int]]:
    """``none``, ``x264:crf=23`` or ``jpeg:quality=75`` -> (name, settings)."""
    name, _, rest = text.partition(":")
    settings = {}
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        if not eq or not value.strip().lstrip("-").isdigit():
            raise SrpipeError(f"bad degradation setting {item!r} in {text!r}; "
                              "write e.g. x264:crf=23 or jpeg:quality=75")
        settings[key.strip()] = int(value)
    allowed = {"none": set(), "x264": {"crf"}, "jpeg": {"quality"}}
    if name not in allowed:
        raise SrpipeError(f"unknown degradation {name!r}; use none, x264:crf=N or jpeg:quality=N")
    if set(settings) - allowed[name]:
        raise SrpipeError(f"{name} takes {', '.join(sorted(allowed[name])) or 'no settings'}, got {text!r}")
    if name == "x264" and not 0 <= settings.setdefault("crf", 23) <= 51:
        raise SrpipeError("x264 crf must be between 0 (lossless) and 51")
    if name == "jpeg" and not 1 <= settings.setdefault("quality", 75) <= 100:
        raise SrpipeError("JPEG quality must be between 1 and 100")
    return name, settings


def degrade_frames(frames: np.ndarray, degradation: str) -> np.ndarray:
    """(N, H, W) uint8 LR frames through ``degradation`` (see :func:`parse_degradation`)."""
    name, settings = parse_degradation(degradation)
    if name == "x264":
        return x264_roundtrip(frames, settings["crf"])
    if name == "jpeg":
        return np.stack([jpeg_roundtrip(f, settings["quality"]) for f in frames])
    return frames


def make_degraded_lr(hr: np.ndarray, scale: int, kernel: str = "matlab-bicubic",
                     degradation: str = "none") -> np.ndarray:
    """The LR of one mod-cropped HR luma: shrunk with ``kernel``, then degraded (as a still)."""
    return degrade_frames(downscale(hr, scale, kernel)[None], degradation)[0]


def pan_offsets(count: int, step: tuple[int, int]) -> list[tuple[int, int]]:
    """Top-left HR offsets (y, x) of a window panning ``step`` HR pixels per frame, all >= 0."""
    dy, dx = step
    ys = [i * dy for i in range(count)]
    xs = [i * dx for i in range(count)]
    return [(y - min(ys), x - min(xs)) for y, x in zip(ys, xs)]
