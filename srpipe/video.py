"""Video through PyAV: a source that decodes to Y'CbCr planes and a sink that
encodes them, copying audio, subtitles, timestamps and colour metadata."""

from __future__ import annotations

import contextlib
import enum
import errno
import functools
import itertools
import logging
import math
import os
import re
import select
import shlex
import stat
import struct
import sys
import threading
import time
import warnings
import zlib
from collections import Counter
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
import numpy as np
from av.bitstream import BitStreamFilterContext
from av.sidedata.sidedata import Type as SideDataType

from srpipe import deinterlace
from srpipe.errors import SrpipeError
from srpipe.frames import (
    ALPHA_FORMATS,
    ALPHA_OF,
    CHROMA_LOCATIONS,
    FULL_RANGE_ALIASES,
    PLANE_FORMATS,
    Frame,
    PlaneFormat,
)
from srpipe.media import Sink, SinkOptions, Source, SourceOptions, described, png_animation, turns_a_quarter
from srpipe.memory import check_frame_size, decoder_pixels, default_max_pixels
from srpipe.outputs import AtomicOutput, local_name_hint, special_kind, write_all
from srpipe.palette import PaletteFrames

# Containers whose extension the default output name keeps; others become .mp4.
KEPT_SUFFIXES = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".ts"}
STREAMING_FORMATS = {"matroska", "webm", "mpegts", "nut", "gif", "flv", "mpeg"}
SUFFIX_FORMATS = {".mkv": "matroska", ".webm": "webm", ".ts": "mpegts", ".m2ts": "mpegts", ".mts": "mpegts",
                  ".nut": "nut", ".mp4": "mp4", ".m4v": "ipod", ".mov": "mov", ".apng": "apng", ".gif": "gif",
                  ".avi": "avi", ".flv": "flv", ".mpg": "mpeg", ".mpeg": "mpeg"}
# FFmpeg's muxers of the QuickTime family that Apple's players read (ipod: .m4v)
QUICKTIME_FORMATS = ("mp4", "mov", "ipod")
_MPEGTS_VIDEO_IDS = {
    av.codec.Codec(name, "r").id for name in ("h264", "hevc", "mpeg1video", "mpeg2video", "mpeg4", "av1", "vc1")
}


def _unnamed_side_data(cls, value):
    """A stand-in for a side-data type newer than PyAV's table of them (FFmpeg 8's EXIF, 31, which
    its MJPEG decoder attaches to every frame of a camera's JPEG video). PyAV 18.1.0 and older raise
    on one, and so lose all of a frame's side data, its display matrix included; 18.1.1 names such
    types itself, and this one is then not put in. Enum accepts a pseudo-member returned by
    _missing_; one a value, so that two of the same value are equal, as members are."""
    if not isinstance(value, int):
        return None
    if value not in _UNNAMED_SIDE_DATA:
        member = object.__new__(cls)
        member._name_, member._value_ = f"UNNAMED_{value}", value
        _UNNAMED_SIDE_DATA[value] = member
    return _UNNAMED_SIDE_DATA[value]


_UNNAMED_SIDE_DATA: dict[int, SideDataType] = {}


if SideDataType._missing_.__func__ is enum.Enum._missing_.__func__:
    SideDataType._missing_ = classmethod(_unnamed_side_data)


def side_data_of(frame) -> list:
    """Every side-data entry a decoded frame holds, in its order. PyAV 18.1.0 and earlier iterate a
    frame's side data by entry; 18.1.1 made it a mapping, whose iteration gives the types, and
    gives the entries by position through a slice."""
    side_data = frame.side_data  # made anew at each access
    entries = list(side_data)
    if entries and isinstance(entries[0], SideDataType):
        entries = side_data[:]
    return entries


PALETTE_FORMAT = "pal8"  # 256 colours chosen per frame (srpipe.palette)
# The Y'CbCr matrices (AVCOL_SPC) FFmpeg's scaler converts by: BT.709, FCC, BT.601 (two), SMPTE 240M, BT.2020
CONVERTED_MATRICES = frozenset({1, 4, 5, 6, 7, 9, 10})
COLOR_RANGE_FULL = 2
COLOR_RANGE_LIMITED = 1
# The matrix frames in RGB (or a palette) are converted to Y'CbCr with, and the one their output
# is tagged with: swscale's default, BT.601 (FFmpeg's AVCOL_SPC_SMPTE170M)
RGB_TO_YCBCR = av.video.reformatter.Colorspace.ITU601
RGB_TO_YCBCR_TAG = 6
RGB_COLORSPACE_TAG = 0  # AVCOL_SPC_RGB: the planes are G, B and R


def plane_view(plane, dtype: np.dtype) -> np.ndarray:
    """The visible (height, width) samples of a PyAV plane, without copying."""
    rows = np.frombuffer(plane, dtype=dtype).reshape(plane.height, plane.line_size // dtype.itemsize)
    return rows[:, : plane.width]


def has_alpha(pix_fmt) -> bool:
    """Whether a PyAV pixel format carries alpha (Y'CbCrA, grey with alpha, RGBA...)."""
    return any(component.is_alpha for component in pix_fmt.components)


def is_rgb(pix_fmt) -> bool:
    """Whether a PyAV pixel format holds RGB (or palette) colours, which srpipe converts to Y'CbCr."""
    return pix_fmt.is_rgb or pix_fmt.has_palette


def _fallback_format(name: str, bits: int, alpha: bool) -> str:
    """The planar Y'CbCr layout (with alpha where the format has it) to convert an unusual
    pixel format to: RGBA, a GIF's BGRA, 9-bit Y'CbCrA..."""
    sub = "420" if ("420" in name or name.startswith(("nv12", "nv21", "p01"))) else (
        "422" if "422" in name or name.startswith("nv16") else "444"
    )
    depth = next((depth for depth in (8, 10, 12, 16) if depth >= bits), 16)  # no bit lost (16-bit RGB)
    colour = f"yuv{sub}p" if depth == 8 else f"yuv{sub}p{depth}le"
    if alpha and colour not in ALPHA_OF:  # FFmpeg has no yuva420p12le
        colour = f"yuv{sub}p16le"
    return ALPHA_OF[colour] if alpha else colour


# The carrier of a frame's captions is made and sized by swscale, its pixels not used: a matrix given, as
# swscale refuses some a frame may be tagged with (ICtCp, YCgCo, BT.2020 constant luminance)
CARRIER_REFORMAT = {"src_colorspace": av.video.reformatter.Colorspace.ITU709,
                    "dst_colorspace": av.video.reformatter.Colorspace.ITU709, "interpolation": "POINT"}
UNSPECIFIED_COLORSPACE = 2  # AVCOL_SPC_UNSPECIFIED


def frame_from_av(video_frame: av.VideoFrame, chroma_location: str | None = None) -> Frame:
    """Planes straight from the decoder, alpha as its own plane; only unusual formats are converted.
    ``chroma_location``: where the stream's chroma lies (:func:`chroma_location`; None: "left")."""
    name = video_frame.format.name
    full_range = video_frame.color_range == COLOR_RANGE_FULL
    if name in FULL_RANGE_ALIASES:
        name, full_range = FULL_RANGE_ALIASES[name], True
    if name not in PLANE_FORMATS and name not in ALPHA_FORMATS:
        bits = max(c.bits for c in video_frame.format.components)
        name = _fallback_format(name, bits, has_alpha(video_frame.format))
        video_frame = video_frame.reformat(format=name, dst_colorspace=RGB_TO_YCBCR if is_rgb(video_frame.format)
                                           else None)
    alpha = None
    if name in ALPHA_FORMATS:
        name = ALPHA_FORMATS[name]
        alpha = plane_view(video_frame.planes[3], PLANE_FORMATS[name].dtype)
    fmt = PLANE_FORMATS[name]
    count = 1 if fmt.chroma_shift is None else 3
    planes = tuple(plane_view(video_frame.planes[i], fmt.dtype) for i in range(count))
    time_base = Fraction(video_frame.time_base) if video_frame.time_base is not None else None
    # The captions in a frame of 2x2 pixels made from it: it holds its side data, and not its pictures
    # till the output frame is encoded
    captions = (video_frame.reformat(2, 2, "gray", **CARRIER_REFORMAT)
                if SideDataType.A53_CC in video_frame.side_data else None)
    return Frame(planes, fmt, full_range, video_frame.pts, time_base, alpha, video_frame.duration or None,
                 chroma_location=chroma_location, captions=captions)


def frame_to_av(frame: Frame) -> av.VideoFrame:
    """An encoder-ready frame holding a copy of the planes (alpha too, where the format has one
    with it) and the original pts."""
    keep_alpha = frame.alpha is not None and frame.format.name in ALPHA_OF
    layout = ALPHA_OF[frame.format.name] if keep_alpha else frame.format.name
    if frame.captions is not None:  # made from the decoder's frame, it has its captions for the encoder
        # (and the rest of its side data: a 3D frame packing, a timecode, which x264 and MPEG-2 write too)
        video_frame = frame.captions.reformat(frame.width, frame.height, layout, **CARRIER_REFORMAT)
        video_frame.pict_type = av.video.frame.PictureType.NONE  # else x264 copies the source's frame types
        video_frame.colorspace = UNSPECIFIED_COLORSPACE  # as a new frame's: the stream's tags say it
    else:
        video_frame = av.VideoFrame(frame.width, frame.height, layout)
    for plane, data in zip(video_frame.planes, (*frame.planes, frame.alpha) if keep_alpha else frame.planes):
        plane_view(plane, frame.format.dtype)[...] = data
    video_frame.pts = frame.pts
    if frame.time_base is not None:
        video_frame.time_base = frame.time_base
    video_frame.color_range = COLOR_RANGE_FULL if frame.full_range else COLOR_RANGE_LIMITED
    return video_frame


# VP8/VP9 carry alpha beside the picture (WebM's BlockAdditional), which FFmpeg's own decoders
# ignore and libvpx's read.
_ALPHA_DECODERS = {"vp8": "libvpx", "vp9": "libvpx-vp9"}


# libvpx's encoders write alpha beside the picture (WebM's BlockAdditional) as 8-bit 4:2:0 only
LIBVPX_ALPHA_ENCODERS = ("libvpx", "libvpx-vp9")
# Encoders that write the closed captions (A/53) a frame comes with: x264 and MPEG-2's as broadcast
# sends them, NVENC's by its extra_sei; x265's and the others' leave them out
CAPTION_ENCODERS = ("libx264", "libx264rgb", "mpeg2video", "h264_nvenc", "hevc_nvenc")
# Encoders that list formats with alpha they may not write: x265 writes alpha only where it was built
# for it, which PyAV's is not ("does not support alpha layer encoding")
ALPHA_LISTED_NOT_WRITTEN = ("libx265",)


def carries_alpha_aside(stream) -> bool:
    """Whether ``stream`` is VP8/VP9 whose alpha WebM keeps beside the picture (block additions,
    which FFmpeg's own decoder does not read and formats other than Matroska do not keep)."""
    tags = {key.lower(): value for key, value in stream.metadata.items()}
    return stream.codec_context.name in _ALPHA_DECODERS and tags.get("alpha_mode") == "1"


def _alpha_decoder(stream, max_pixels: int):
    """libvpx's decoder for a VP8/VP9 stream tagged as carrying alpha; None for any other stream
    (or where this FFmpeg lacks libvpx's decoder, which leaves the alpha undecoded)."""
    if not carries_alpha_aside(stream):
        return None
    name = _ALPHA_DECODERS[stream.codec_context.name]
    try:
        decoder = av.CodecContext.create(name, "r")
    except (av.FFmpegError, ValueError):
        warnings.warn(f"the alpha channel of this {stream.codec_context.name} video is dropped: "
                      f"this FFmpeg has no {name} decoder to read it")
        return None
    decoder.extradata = stream.codec_context.extradata
    decoder.options = {"max_pixels": decoder_pixels(max_pixels)}
    return decoder


def _display_matrix(video_frame: av.VideoFrame) -> tuple[int, ...] | None:
    for data in side_data_of(video_frame):
        if data.type == SideDataType.DISPLAYMATRIX:
            return struct.unpack("<9i", bytes(data)[:36])
    return None


def main_video(container) -> av.video.stream.VideoStream | None:
    """The video stream srpipe upscales, much as FFmpeg's own command picks one: not a cover
    picture, a default one over others, then not a single frame, the largest, the first; None
    where there is none. Not always the first: a cover picture whose flag a remux lost, or a
    thumbnail track, can come first."""
    videos = list(container.streams.video)
    if not videos:
        return None
    moving = [stream for stream in videos if not stream.disposition & av.stream.Disposition.attached_pic]
    return max(moving or videos, key=lambda stream: (
        bool(stream.disposition & av.stream.Disposition.default),
        stream.frames != 1,  # a picture track that lost its flag (where the container counts frames)
        (stream.codec_context.width * stream.codec_context.height) if stream.codec_context is not None else 0))


def first_frame_layout(location: str, input_format: str | None = None,
                       max_pixels: int | None = None) -> tuple[tuple[int, ...] | None, bool]:
    """(display matrix or None, full range?) of a file's first video frame, opened as a file
    whatever its name (FFmpeg would read "pipe:0" from standard input); (None, False) where
    it has none that can be read."""
    options = {"max_pixels": decoder_pixels(max_pixels or default_max_pixels())}
    try:
        with av.open(f"file:{os.path.abspath(location)}", format=input_format, options=options) as container:
            first = next(container.decode(main_video(container)), None)
    except (av.FFmpegError, OSError, ValueError):
        return None, False
    if first is None:
        return None, False
    return _display_matrix(first), frame_from_av(first).full_range


def stream_colour(stream) -> tuple[int, int, int]:
    """(colorspace, primaries, transfer) of a PyAV video stream."""
    cc = stream.codec_context
    return cc.colorspace, cc.color_primaries, cc.color_trc


def upscaled_colour(stream) -> tuple[int, int, int]:
    """The colour description of a stream's frames as srpipe upscales them: its own, but for RGB
    the matrix they are converted to Y'CbCr with (tagged RGB, the Y'CbCr planes would be shown as
    if they were G, B and R: wrong colours)."""
    colorspace, primaries, transfer = stream_colour(stream)
    pix_fmt = stream.codec_context.format
    if pix_fmt is not None and is_rgb(pix_fmt):
        colorspace = RGB_TO_YCBCR_TAG
    return colorspace, primaries, transfer


UNSPECIFIED = 2  # FFmpeg's AVCOL_SPC_UNSPECIFIED, AVCOL_PRI_UNSPECIFIED, AVCOL_TRC_UNSPECIFIED
BT709, BT470BG, SMPTE170M = 1, 5, 6  # as matrices and as primaries


def _shown_as_hd(width: int, height: int) -> bool:
    """Whether players take an untagged picture of this size for BT.709 (HD) rather than BT.601
    (SD): mpv's rule, and VLC's and most others' alike."""
    return width >= 1280 or height > 576


def colour_as_shown(colour: tuple[int, int, int] | None, source_size: tuple[int, int],
                    output_size: tuple[int, int]) -> tuple[int, int, int] | None:
    """The colour description to tag an upscale with, so that it is shown in the source's colours.

    Players show untagged video by its size: an SD picture (a DVD, DV, an old AVI) as BT.601 and
    an HD one as BT.709, whose matrices turn the same samples into visibly other colours. An
    untagged SD source upscaled to HD is therefore tagged with what it was shown as: the BT.601
    matrix, and the primaries of its line count (625-line PAL, 525-line NTSC), as players guess."""
    colorspace, primaries, transfer = colour if colour is not None else (UNSPECIFIED,) * 3
    if colorspace != UNSPECIFIED or _shown_as_hd(*source_size) or not _shown_as_hd(*output_size):
        return colour
    if primaries == UNSPECIFIED:
        height = source_size[1]
        primaries = BT470BG if height in (576, 288) else SMPTE170M if height in (480, 486, 240) else BT709
    return SMPTE170M, primaries, transfer


def copy_colour(codec_context, full_range: bool, colour: tuple[int, int, int] | None = None) -> None:
    """Tag an output stream with the range of its frames and the source's colour description."""
    codec_context.color_range = COLOR_RANGE_FULL if full_range else COLOR_RANGE_LIMITED
    if colour is not None:
        codec_context.colorspace, codec_context.color_primaries, codec_context.color_trc = colour


def _open_error(location: str, exc: Exception) -> SrpipeError:
    reason = getattr(exc, "strerror", None) or str(exc)
    if location == "-":
        return SrpipeError(f"cannot read standard input as video ({reason}): it sent nothing, or nothing FFmpeg "
                           "can read; pipe a video file or stream into srpipe")
    if hint := local_name_hint(location):
        return SrpipeError(f"cannot read {location}: {reason}{hint}")
    if is_network(location) and "Invalid data" not in reason:  # the server, the address or the network
        return SrpipeError(f"cannot read {location}: {reason}; check the address and that the server is up")
    if getattr(exc, "errno", None) in (errno.EACCES, errno.EPERM):
        return SrpipeError(f"cannot read {location}: {reason}; check that you may read it")
    return SrpipeError(f"cannot read {location} as video: {reason}; check that it is a complete media file")


# Decoders that give one picture for each packet of a stream (H.264 and HEVC in access units,
# MPEG-1/2 pictures, AV1 in temporal units, each with one frame shown): a packet without one is a
# frame left out (VP8/VP9 have hidden frames, and MPEG-4 Part 2 frames not coded, which DivX and
# Xvid write for the frames they drop)
ONE_FRAME_A_PACKET = {"h264", "hevc", "mpeg1video", "mpeg2video", "libdav1d", "av1", "libaom-av1"}

# At most this many packets' times are kept while their frames have not come out (what the decoder's
# threads and its reordering hold is a few dozen at most)
WAITING_PACKETS = 512

# The quickest frame rate taken for a video's own (a slow-motion phone clip's 120): FFmpeg's guess is a
# timestamp's unit beyond it (1/90000)
QUICKEST_RATE = 120

# A timestamp jump beyond this many seconds joins two recordings (FFmpeg's -dts_delta_threshold)
DISCONTINUITY_S = 10
# A recording cut by stream copy can end in gaps up to this many frames long (its last B-frames)
CUT_END_FRAMES = 4
# Bytes between packets that a demuxer skipped (damage), not a container's own structure (Matroska's
# cluster headers take some 20), in the containers that store each packet whole, in file order (not
# QuickTime, whose index places samples anywhere, nor MPEG-TS and PS, which cut packets into pieces)
SKIPPED_BYTES = 4096
CONTIGUOUS_FORMATS = frozenset({"matroska", "webm", "avi", "flv"})
# Formats that can lose whole packets with no flag on the packets around the loss (MPEG-TS, where as many
# go missing as its continuity counters wrap at; PS): there damage the decoder met tells that gaps in
# the timestamps are losses. Indexed and contiguous formats lose none without a flag or skipped bytes.
UNFLAGGED_LOSS_FORMATS = frozenset({"mpegts", "mpeg"})
# Formats whose header states one end for every stream, the file's (ASF's play time, from zero): its
# video ends before it where the sound runs on
FILE_END_FORMATS = frozenset({"asf", "asf_o"})

# A Content-Length this large, on a stream of no known duration, is made up (a live camera's 2^31 - 1
# and more), not a file's: a stream that ends before it ends as one that said no length
MADE_UP_SIZE = 2**31 - 1

# Formats that read a playlist, whose own size says nothing of the stream's length
PLAYLIST_FORMATS = frozenset({"hls", "dash"})

# Demuxers of bare video streams (a camera's or an encoder's .h264, .hevc, .m2v): their frames have no
# times, and the rate they report is their own option's default (25 fps), not the stream's, which the
# codec's headers give (H.264's and HEVC's timing info) and FFmpeg's command takes
ELEMENTARY_FORMATS = frozenset({"h264", "hevc", "vvc", "mpegvideo", "m4v", "cavsvideo", "avs2", "avs3", "vc1",
                                "dirac", "h261", "h263", "obu"})
# Seconds a network input may send nothing before srpipe gives up (--timeout).
NETWORK_TIMEOUT = 30.0

# The shortest a frame is shown in an output, in seconds: MP4 and MOV round the span they play (their
# edit list) to their movie's time unit, FFmpeg's 1 ms, and a last frame shown for less (a repeated
# time shared out at the end: FrameTimes) could begin past that span, where players leave it out
SHORTEST_SHOWN = Fraction(1, 1000)


def chroma_location(stream) -> str:
    """Where a video stream's subsampled chroma lies, by FFmpeg's name (:data:`CHROMA_LOCATIONS`):
    what its codec's headers say (H.264, HEVC, AV1: UHD and HDR video often "topleft"), else its
    codec's default ("center" for the JPEG family, else "left"). PyAV does not give the location
    FFmpeg reads; its ``trace_headers`` filter logs the headers it holds (the stream's extradata,
    which the demuxer's probe fills in for MPEG-TS too), and the field is read from that log."""
    # The codec's name, not its decoder's (libdav1d decodes AV1)
    name = stream.codec_context.codec.canonical_name if stream.codec_context is not None else None
    default = "center" if name in CENTRED_CHROMA_CODECS else "left"
    if name not in CHROMA_LOCATION_FIELDS or not stream.codec_context.extradata:
        return default
    field, names = CHROMA_LOCATION_FIELDS[name]
    try:
        with ffmpeg_log(av.logging.INFO, local=True) as logs:  # the level the trace is logged at, in this thread
            BitStreamFilterContext("trace_headers", stream)
    except (av.FFmpegError, ValueError):  # headers it cannot parse: the decoder will say
        return default
    for _, source, message in logs:
        said = re.search(rf"\b{field}\s+[01]+ = (\d+)", message) if source == "trace_headers" else None
        if said:
            value = int(said[1])
            return names[value] if value < len(names) and names[value] else default
    return default


def tell_concealed(count: int, location: str, first: float | None, then: str) -> None:
    """Warn of ``count`` frames of ``location`` the decoder mended (concealed), the first at ``first``
    seconds (None: not known); ``then``: what became of them."""
    at = f" (the first at {first:.3f} s)" if first is not None else ""
    warnings.warn(f"{count} frame{'s' * (count != 1)} of {location} came out of the decoder damaged{at}, the lost "
                  f"parts filled in from the picture around them {then}")


def stated_end(stream, origin: int = 0) -> int | None:
    """Where a video ``stream``'s header says it ends, in its time-base units from ``origin`` (the
    file's, in those units; not the container's duration, which includes audio that may run longer).
    In the :data:`FILE_END_FORMATS`, the file's end."""
    if stream.container.format.name in FILE_END_FORMATS:
        return stream.duration - origin if stream.duration else None
    tag = stream.metadata.get("DURATION")  # Matroska's per-track statistics
    if tag:
        try:
            hours, minutes, seconds = tag.split(":")
            return round((int(hours) * 3600 + int(minutes) * 60 + Fraction(seconds)) / stream.time_base) - origin
        except (ValueError, ZeroDivisionError):
            return None
    if stream.duration:
        return (stream.start_time or 0) + stream.duration - origin
    return None


def ends_by_falling_silent(location: str) -> bool:
    """Whether ``location`` is a stream that says nothing when it ends (UDP, RTP, SRT: a sender
    stops sending), so that a silence as long as --timeout is its end, not a failure."""
    return location.split(":", 1)[0].lower() in ("udp", "rtp", "srt")


def is_network(location: str) -> bool:
    """URLs other than local files and pipes: a server may stall them."""
    scheme = location.split(":", 1)[0].lower() if ":" in location else ""
    return len(scheme) > 1 and scheme not in ("file", "pipe", "fd")


def refused_size(logs, reason: str = "exceeds specified max pixel count") -> tuple[int, int] | None:
    """The frame size FFmpeg's logs say a decoder refused as over ``max_pixels`` (or for
    another ``reason`` it gives), if they say so."""
    for _, _, message in logs:
        found = re.search(rf"Picture size (\d+)x(\d+) {reason}", message)
        if found:
            return int(found[1]), int(found[2])
    return None


def refuse_claimed_size(location: str, logs) -> None:
    """Refuse a file whose header claims a frame larger than FFmpeg decodes at all (its images'
    limit, near 2^28 pixels, not --max-pixels), as FFmpeg's ``logs`` of a failed open say: the
    open's own reason is an errno, EBUSY ("Device or resource busy")."""
    if (claimed := refused_size(logs, "is invalid")) is not None:
        raise SrpipeError(f"{location} claims {claimed[0]}x{claimed[1]} frames, larger than FFmpeg decodes "
                          "(about 268 megapixels): its header is damaged, or it is not a video")


def interruptible(call):
    """``call()`` in a helper thread, the main thread waiting: FFmpeg blocks in C (opening a URL,
    a pipe without a writer) where a signal cannot reach it, but the main thread's wait is where
    Python runs its signal handlers, so Ctrl-C and SIGTERM end the wait at once."""
    outcome: dict = {}

    def work():
        try:
            outcome["value"] = call()
        except BaseException as exc:  # raised again in the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=work, name="srpipe-open", daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(0.05)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


# H.264 quantizer (on the 8-bit scale) below which a video counts as near lossless: fitted on the
# evaluation set's val split, where finer quantized clips gained from the clean-image weights and
# coarser ones from the video weights (docs/evaluation.md, "Lossless and near-lossless video").
NEAR_LOSSLESS_QP = 10
QUANTIZER_FRAMES = 4  # the first frames with content whose quantizers are averaged
QUANTIZER_PACKETS = 256  # the most video packets decoded for them
# The most packets of all streams read for them: sound that starts before the picture (or beside a
# black intro) does not use up the video's share, and a short video beside long sound is not read
# to its end.
QUANTIZER_ALL_PACKETS = 16 * QUANTIZER_PACKETS
# Frames whose luma spans fewer code values (8-bit scale) are passed over: x264 quantizes a black
# intro or the start of a fade finely whatever the crf of what follows.
CONTENT_RANGE = 32
# A 16x16 block whose luma spans at most this many code values (8-bit scale) is flat: its quantizer
# does not count.
FLAT_BLOCK_RANGE = 3
CONTENT_BLOCK_SHARE = 0.25  # a frame counts where at least this share of its blocks carry content
# Codecs that centre each chroma sample on its luma block (the JPEG family); others site it as MPEG-2
# and H.264 do, unless the stream says otherwise (chroma_location).
CENTRED_CHROMA_CODECS = frozenset({"mjpeg", "mjpegb", "jpegls", "jpeg2000", "smvjpeg", "ljpeg", "amv"})
# Where a stream's headers say its chroma lies, as FFmpeg's trace of them names the field, and the
# FFmpeg name of each value (H.264 and HEVC: chroma_sample_loc_type; AV1: chroma_sample_position)
CHROMA_LOCATION_FIELDS = {
    "h264": ("chroma_sample_loc_type_top_field", CHROMA_LOCATIONS),
    "hevc": ("chroma_sample_loc_type_top_field", CHROMA_LOCATIONS),
    "av1": ("chroma_sample_position", (None, "left", "topleft")),
}
# Codecs that only code losslessly and hold what was captured or rendered (not GIF and other
# palette formats, which reduce the colours).
LOSSLESS_CODECS = frozenset({"ffv1", "ffvhuff", "huffyuv", "utvideo", "magicyuv", "png", "rawvideo", "v210"})
_UNREAD = object()  # a quantizer not read yet (None: read, and not known)


def _full_colour(pix_fmt) -> bool:
    """Whether a format holds each component in 8 bits or more, not a palette (PNG and raw video
    also carry GIF-like pictures: pal8, rgb8, monob)."""
    return pix_fmt is not None and pix_fmt.name != "pal8" and min(c.bits for c in pix_fmt.components) >= 8


def mean_quantizer(location: str, max_pixels: int, frames: int = QUANTIZER_FRAMES) -> float | None:
    """The H.264 quantizer (QP, on the 8-bit scale: 0 is lossless) of a file's first ``frames``
    frames with content, as its decoder reports per block (each frame's median over its blocks with
    content, :func:`_content_quantizer`, then the mean over the frames), or None where it cannot
    tell (another codec, no such frames in the first packets, a frame without the report, damage)."""
    try:  # as a file whatever its name: FFmpeg would read "pipe:0" from standard input
        limit = {"max_pixels": decoder_pixels(max_pixels)}
        with av.open(f"file:{os.path.abspath(location)}", options=limit) as container:
            stream = main_video(container)
            if stream is None or stream.codec_context is None or stream.codec_context.name != "h264":
                return None
            stream.codec_context.options = {**limit, "export_side_data": "venc_params"}
            quantizers, video_packets = [], 0
            for packet in itertools.islice(container.demux(), QUANTIZER_ALL_PACKETS):
                if packet.stream is not stream:
                    continue
                video_packets += 1
                if video_packets > QUANTIZER_PACKETS:
                    break
                for frame in packet.decode():
                    reports = [data for data in side_data_of(frame) if data.type == SideDataType.VIDEO_ENC_PARAMS]
                    if not reports:
                        return None
                    depth = max(component.bits for component in frame.format.components)
                    luma = plane_view(frame.planes[0], np.dtype(np.uint8 if depth <= 8 else np.uint16))
                    if int(luma.max()) - int(luma.min()) >= CONTENT_RANGE << (depth - 8):
                        quantizer = _content_quantizer(reports[0], luma, FLAT_BLOCK_RANGE << (depth - 8))
                        if quantizer is not None:  # H.264 adds 6 per bit of depth beyond 8 to its scale
                            quantizers.append(quantizer - 6 * (depth - 8))
                if len(quantizers) >= frames:
                    break
    except (av.FFmpegError, OSError, ValueError, RuntimeError):  # RuntimeError: a report PyAV cannot read
        return None
    return float(np.mean(quantizers[:frames])) if quantizers else None


def _content_quantizer(report, luma: np.ndarray, flat: int) -> float | None:
    """The median quantizer of a frame's blocks that carry content: each 16x16 block whose luma
    spans more than ``flat`` code values; None where fewer than :data:`CONTENT_BLOCK_SHARE` of the
    blocks do (the frame does not count: a title card). Flat blocks (black bars, a plain
    background) are left out, as x264 codes them finer than the picture; the median leaves out
    the skipped blocks of a still part, which report whatever quantizer the block before them had.
    Blocks at 0 count only where all do: the decoder reports 0 for the blocks it concealed in a
    damaged frame. PyAV's map of the blocks, or, where it cannot lay them out (a stream cropped by
    16 pixels or more), the blocks one by one."""
    try:
        quantizers = report.qp_map()
        rows, columns = quantizers.shape
        padded = np.pad(luma, ((0, max(rows * 16 - luma.shape[0], 0)), (0, max(columns * 16 - luma.shape[1], 0))),
                        mode="edge")[:rows * 16, :columns * 16].reshape(rows, 16, columns, 16)
        spans = padded.max(axis=(1, 3)).astype(np.int64) - padded.min(axis=(1, 3))
    except RuntimeError:
        blocks = [report.block_params(i) for i in range(report.nb_blocks)]
        quantizers = report.qp + np.array([block.delta_qp for block in blocks])
        pieces = [luma[block.src_y:block.src_y + block.h, block.src_x:block.src_x + block.w] for block in blocks]
        spans = np.array([int(piece.max()) - int(piece.min()) if piece.size else 0 for piece in pieces])
    quantizers, spans = quantizers.ravel(), spans.ravel()
    if not quantizers.size:
        return float(report.qp)
    content = spans > flat
    if content.mean() < CONTENT_BLOCK_SHARE:
        return None
    counted = content & ((quantizers != 0) | (quantizers == 0).all())
    return float(np.median(quantizers[counted])) if counted.any() else None


def _dated_before(packets: list[av.Packet], dated: av.Packet) -> list[av.Packet]:
    """``packets`` without a decoding time (Matroska gives the first packets of a stream with
    B-frames none), each given one a frame before the next, ending before ``dated``'s: muxers
    need it, and the stream's first keyframe is among them."""
    step = dated.duration or 1
    for back, packet in enumerate(reversed(packets), start=1):
        packet.dts = dated.dts - back * step
    return packets


class BestEffortTimes:
    """Each decoded frame's time as FFmpeg's ``best_effort_timestamp`` gives it: its presentation
    time, unless those have gone backwards more often than the decoding times of the packets that
    gave the frames, or it has none (an AVI's frames); then that decoding time."""

    def __init__(self):
        self.faulty_pts = self.faulty_dts = 0
        self.last_pts = self.last_dts = None

    def __call__(self, pts: int | None, dts: int | None) -> int | None:
        if dts is not None:
            self.faulty_dts += self.last_dts is not None and dts <= self.last_dts
            self.last_dts = dts
        if pts is not None:
            self.faulty_pts += self.last_pts is not None and pts <= self.last_pts
            self.last_pts = pts
        return pts if pts is not None and (self.faulty_pts <= self.faulty_dts or dts is None) else dts


# Frames held at most while they wait for the next frame with a time of its own (a repeated time or
# a few in a badly muxed file); a longer run is timed by the frame rate, so that no more decoded
# frames are held than a batch (the memory plan counts no more; the frame that ends them waits too)
REPAIR_FRAMES = 8


class FrameTimes:
    """A time for each decoded frame that has none, or one not after the frame before's (a raw
    stream has none; a damaged or badly muxed file repeats one: Matroska's milliseconds give frames
    less than one apart the same time), or one that jumps ahead of both frames around it, every
    other frame keeping its own.

    Such a frame waits for the next frame with a time after the one before, and the frames waiting
    share the time between those two evenly. Not the frame rate's step after the one before: in a
    variable frame rate that step can pass the next valid times, which then moved too, dragging the
    video out of step with its sound until they caught up. Where the time base leaves no room, each
    takes the next unit, and the frame after them as few as keep the order. At the end they share
    the time up to where the stream's packets end, so that the video ends where it did, with its
    sound. Frames before the first timed one are the frame rate's step apart before it (not before
    zero, where outputs start); a run longer than :data:`REPAIR_FRAMES`, frames at an end with no
    room, and a stream without times are timed by the frame rate after the frame before.

    A frame with a time of its own is given out when the next frame comes: where that one is after
    the frame before but before this one, this one's time is the wrong one (a single time jumped
    ahead), and it waits as a frame without one. Taken as right, it held every later frame behind
    it, and those were then stepped on by the frame rate, out of step with their sound. (Several
    frames jumped ahead together keep their times: the frames after them are the ones held.)"""

    def __init__(self, rate_step: int, untimed: bool = False):
        self.rate_step = rate_step
        # A stream whose frames have no times (a bare .h264's): each is timed by the frame rate as it
        # comes, not held for a timed one that will not come (which gave them out in bursts, late)
        self.untimed = untimed
        self.held: list[Frame] = []
        self.next: Frame | None = None  # the frame with a time of its own after those held, given out with the next
        self.last: int | None = None  # the time of the last frame given out (which is the pipeline's then)
        # The time a frame must be after to keep its own: the last frame's own time, where it kept it (a frame
        # moved on by a unit for room keeps its own; one timed by the frame rate claims the times it passed)
        self.own: int | None = None
        self.timed = False  # a frame came with a time of its own
        self.repaired = 0  # frames given a time, told in a warning

    def __call__(self, frame: Frame) -> list[Frame]:
        """The frames timed now that ``frame`` came, in order."""
        ready, before = [], self.next
        self.next = None
        if before is not None:
            jumped = self.own is not None and frame.pts is not None and self.own < frame.pts < before.pts
            ready = self._hold(before) if jumped else self._timed(before)
        if frame.pts is None or self.own is not None and frame.pts <= self.own:
            return ready + self._hold(frame)
        self.next = frame
        return ready

    def _hold(self, frame: Frame) -> list[Frame]:
        """``frame`` waiting for a time; the frames waiting, timed by the frame rate, where too many wait
        or the stream has no times."""
        self.held.append(frame)
        return self._stepped() if len(self.held) > REPAIR_FRAMES or self.untimed else []

    def _timed(self, frame: Frame) -> list[Frame]:
        """``frame``, which keeps its own time, and the frames waiting before it, timed."""
        self.timed, self.own = True, frame.pts
        if not self.held:
            return self._given([frame])
        start = self.last
        if start is None:
            start = frame.pts - (len(self.held) + 1) * self.rate_step
            if frame.pts >= 0 and start + self.rate_step < 0:  # where the first would come before zero: from it
                start = -1
        return self._shared(start, frame.pts) + self._given([frame])

    def flush(self, end: int | None) -> list[Frame]:
        """The frames still waiting at the stream's ``end`` (where its last packet ends; None: not
        known), timed. The decoder's last frames without a time are no fault, nor told: it gives
        out the frames it held for B-frames with none where the packets have no presentation time
        (an AVI's)."""
        ready = self._timed(self.next) if self.next is not None else []  # the last frame with a time of its own
        self.next = None
        expected = sum(frame.pts is None for frame in self.held) if self.timed else 0
        if not self.held or self.last is None or end is None or end - self.last <= len(self.held):
            ready += self._stepped()
        else:
            ready += self._shared(self.last, end)
        self.repaired -= expected
        return ready

    def _shared(self, start: int, end: int) -> list[Frame]:
        """The frames waiting, given the times between ``start`` and ``end`` evenly (one unit apart
        where there is no room), each shown until the next."""
        held, self.held = self.held, []
        span, parts = end - start, len(held) + 1
        for index, frame in enumerate(held, start=1):
            frame.pts = start + (span * index // parts if span >= parts else index)
        self._given(held)
        for frame, after in zip(held, held[1:]):
            frame.duration = after.pts - frame.pts
        held[-1].duration = max(end - held[-1].pts, 1)
        self.repaired += len(held)
        return held

    def _stepped(self) -> list[Frame]:
        """The frames waiting, the frame rate's step apart after the last frame given out (from
        zero: none), each shown for the step."""
        held, self.held = self.held, []
        start = self.last if self.last is not None else -self.rate_step
        for index, frame in enumerate(held, start=1):
            frame.pts, frame.duration = start + index * self.rate_step, self.rate_step
        self.repaired += len(held)
        self._given(held)
        self.own = self.last
        return held

    def _given(self, frames: list[Frame]) -> list[Frame]:
        """``frames`` given out, each after the one before (the next unit where there was no room)."""
        for frame in frames:
            if self.last is not None:
                frame.pts = max(frame.pts, self.last + 1)
            self.last = frame.pts
        return frames


class Joints:
    """Recordings joined end to end (``cat a.ts b.ts``, a stream's discontinuity) closed up, as
    FFmpeg's command does in the formats whose timestamps may jump (MPEG-TS, MPEG-PS, HLS: its
    ``AVFMT_TS_DISCONT``): an audio or video packet whose decoding time lies more than
    ``DISCONTINUITY_S`` from where its stream's next was due (a stream's first: from the file's
    last packet), or more than a tenth of a second before its stream's last, moves it and every
    later packet of every stream by the difference. Else the output would hold the jump: a
    picture frozen for as long, or times that go back, which muxers refuse.

    Two things FFmpeg's command gets wrong are put right. MPEG-TS gives a packet only when the
    next of its stream begins, so the last video packet of a recording comes after the first
    audio of the next one, which found the joint: a packet is moved by the offset its stream had
    before where that keeps it nearer its due time (FFmpeg moved it a recording ahead, and the
    whole next recording's video after it, out of step with its sound). And the other streams'
    first packets after a joint may lie a little before their last ones (a recording's audio
    ends after its video): each is moved to a millisecond after, as FFmpeg's writers move it."""

    def __init__(self, location: str):
        self.location = location
        self.offset = Fraction(0)  # seconds added to every timestamp from here on
        self.moved: dict[int, Fraction] = {}  # the offset each stream's last packet was moved by
        self.due: dict[int, Fraction] = {}  # each stream's next decoding time, in seconds
        self.last: dict[int, Fraction] = {}  # each stream's last decoding time
        self.file_last: Fraction | None = None
        self.at: list[Fraction] = []  # where each joint was closed up, in the output's seconds

    def close_up(self, packet: av.Packet) -> None:
        """Move ``packet``'s timestamps by the joints so far, and by its own if it is one."""
        time_base, index = Fraction(packet.time_base), packet.stream.index
        offset, due = self.offset, self.due.get(index)
        if packet.dts is not None and due is not None and self.moved[index] != offset:
            raw = packet.dts * time_base
            offset = min(offset, self.moved[index], key=lambda candidate: abs(raw + candidate - due))
        move_packet(packet, round(offset / time_base))
        if packet.dts is None or packet.stream.type not in ("audio", "video"):
            return
        self.moved[index] = offset
        dts, due = packet.dts * time_base, due if due is not None else self.file_last
        if due is not None and (abs(dts - due) > DISCONTINUITY_S or dts + Fraction(1, 10) < self.last.get(index, dts)):
            if not self.at:
                warnings.warn(f"{self.location} holds recordings joined end to end (its times jump at "
                              f"{float(due):.1f} s): they play one after the other, as FFmpeg plays them")
            self.at.append(due)
            self.offset = self.moved[index] = offset + due - dts
            move_packet(packet, round((due - dts) / time_base))
            dts = due
        elif self.at and index in self.last and dts <= self.last[index]:
            # a millisecond later: after it in any time base a writer rounds to (Matroska's are milliseconds)
            packet.dts = math.ceil((self.last[index] + Fraction(1, 1000)) / time_base)
            packet.pts = max(packet.pts, packet.dts) if packet.pts is not None else None
            dts = packet.dts * time_base
        self.last[index] = self.file_last = dts
        self.due[index] = dts + _packet_duration(packet, time_base)


class AudioTimes:
    """Decoding times for the packets of copied audio streams that the demuxer gave none: MPEG-TS
    carries several frames of sound in each of its packets, timed only the first, and times the
    others only where it knew the stream's sample rate from the start (not a stream whose sound
    came after the probe: a recording joined after a silent one). Each is timed after the one
    before it, by the samples that one decodes to. Those with none before them are counted."""

    def __init__(self):
        self.due: dict[int, int] = {}  # each audio stream's next decoding time, in its time base
        self.decoders: dict[int, av.CodecContext] = {}
        self.untimed: Counter[int] = Counter()

    def date(self, packet: av.Packet) -> bool:
        """Whether to keep ``packet``: false for an audio packet without times that none came before,
        else true; an audio packet without times is given them here. (Times, not packets, are
        kept: a packet's own change as the writer takes it into its stream.)"""
        index = packet.stream.index
        if packet.stream.type != "audio":
            return True
        if packet.pts is None and packet.dts is None:
            if index not in self.due:
                self.untimed[index] += 1
                return False
            packet.dts = packet.pts = self.due[index]
        if packet.dts is not None:
            step = packet.duration or self._samples(packet)
            if step:
                self.due[index] = packet.dts + step
            else:
                self.due.pop(index, None)
        return True

    def _samples(self, packet: av.Packet) -> int:
        """How long ``packet`` plays, in its time base, from the samples it decodes to (0: none)."""
        if packet.stream.index not in self.decoders:
            self.decoders[packet.stream.index] = decoder_of(packet.stream)
        try:
            frames = self.decoders[packet.stream.index].decode(packet)
        except av.FFmpegError:
            return 0
        samples = sum(frame.samples for frame in frames)
        rate = frames[0].sample_rate if frames else 0
        return round(Fraction(samples, rate) / Fraction(packet.time_base)) if rate else 0


def decoder_of(stream) -> av.CodecContext:
    """A decoder of its own for ``stream``'s packets (its codec and set-up data), apart from the
    stream's, which another part of the run may use."""
    decoder = av.CodecContext.create(stream.codec_context.name, "r")
    if stream.codec_context.extradata:
        decoder.extradata = stream.codec_context.extradata
    return decoder


def move_packet(packet: av.Packet, step: int) -> None:
    """Move ``packet``'s timestamps by ``step`` units of its time base."""
    if step and packet.dts is not None:
        packet.dts += step
    if step and packet.pts is not None:
        packet.pts += step


# The formats whose writers keep a cover picture as a stream (MP4's covr, as iTunes writes it; FFmpeg's
# MOV writer leaves it out); Matroska keeps one as an attachment, made from its bytes
COVER_FORMATS = frozenset({"mp4"})
COVER_TYPES = {"mjpeg": ("image/jpeg", "cover.jpg"), "png": ("image/png", "cover.png")}  # Matroska's names

# The formats that keep a video stream's timecode: as a timecode track (MOV, MP4), or its tag (Matroska)
TIMECODE_FORMATS = frozenset({"mov", "mp4", "ipod", "matroska", "webm"})

# A video stream's tags that describe its encoding (the encoder, its vendor, its alpha), and the statistics that
# mkvmerge writes (BPS, DURATION..., with a language suffix in older versions): wrong for a new encoding
ENCODING_TAGS = {"encoder", "vendor_id", "alpha_mode"}  # alpha_mode: Matroska's, set anew where alpha is kept
STATISTICS_TAGS = {"BPS", "DURATION", "NUMBER_OF_FRAMES", "NUMBER_OF_BYTES"}


def started_at_zero(chapters: list[dict], origin: Fraction) -> list[dict]:
    """PyAV's ``chapters`` moved to a file's times with ``origin`` (seconds) taken off, as
    FFmpeg's command moves them: those that end by then left out, the first started at zero
    (chapters at 0 in a file whose streams start later, after B-frames' delay)."""
    moved = []
    for chapter in chapters:
        step = round(origin / Fraction(chapter["time_base"]))
        if chapter["end"] > step:
            moved.append({**chapter, "start": max(chapter["start"] - step, 0), "end": chapter["end"] - step})
    return moved


def times_may_jump(container) -> bool:
    """Whether the container's format lets times jump (MPEG-TS, MPEG-PS, HLS: FFmpeg's
    ``AVFMT_TS_DISCONT``): recordings joined end to end, a clock that wraps."""
    return bool(container.format.flags & av.format.Flags.ts_discont.value)


def file_origin(container, video_start: Fraction | None = None) -> Fraction:
    """Where a file's times start, in seconds, taken off them all as FFmpeg's command does: a
    recording that starts later (MPEG-TS's 1.4 s, a broadcast's hours) would open an MP4 with a
    blank as long (an empty edit), and one that MPEG-TS's clock, wrapping, starts before zero
    would have an MP4's edit list hide its first frames. Elsewhere a start before zero (an
    MP4's audio priming) is the file's own, and kept.

    A later start is never after ``video_start``, the time of the video's first packet (seconds;
    None: not known), nor after zero where that is before. FFmpeg's start is where a stream starts
    to play, a sound's after the priming its decoder drops; and it gives an H.264 stream in
    Matroska, which stores no decoding times, no start of its own where it has fewer than the 7
    frames FFmpeg works those out from, but the file's: a clip whose video starts at 0 and its
    primed AAC sound plays from 80 ms started at 80 ms, and the video's first two frames, moved
    before zero, were hidden by an MP4's edit list."""
    start = container.start_time
    if not start or (start < 0 and not times_may_jump(container)):
        return Fraction(0)
    origin = Fraction(start, av.time_base)
    if origin > 0 and video_start is not None:
        origin = min(origin, max(video_start, Fraction(0)))
    return origin


def date_cover(packet: av.Packet) -> None:
    """Give a cover picture's one packet, which has no time, time zero: writers take only dated packets."""
    if packet.pts is None and packet.dts is None and packet.stream.disposition & av.stream.Disposition.attached_pic:
        packet.pts = packet.dts = 0


class CutAwaySound:
    """Copied packets before an MP4 edit list's start (the sound a cut by ``ffmpeg -ss ... -c copy``
    or a phone's trim keeps before its cut point): an MP4 or MOV written keeps them hidden by an
    edit list of its own, where another writer (Matroska, MPEG-TS) would play them and put the
    picture that much later. There only the last before each stream's first packet that plays is
    kept, as the priming its decoder needs, as for an uncut MP4."""

    def __init__(self, writer: str):
        self.hides = writer in QUICKTIME_FORMATS
        self.held: dict[int, av.Packet] = {}

    def pass_on(self, packet: av.Packet) -> list[av.Packet]:
        """The packets to write, in order, for ``packet`` read."""
        if self.hides:
            return [packet]
        if packet.is_discard:
            self.held[packet.stream.index] = packet
            return []
        held = self.held.pop(packet.stream.index, None)
        return [packet] if held is None else [held, packet]


def tell_what_is_not_kept(written_path, muxer: str, streams: int, location: str, chapters: int, copied: list[tuple],
                          pixel_shape: tuple[int, Fraction] | None = None) -> None:
    """Warn of the chapters, the streams' flags (forced, commentary...) and the video's pixel shape
    the writer of ``written_path`` left out without a word (MPEG-TS holds no chapters, MOV no flag
    but the default one; Matroska takes the shape from the codec, which VP9 and FFV1 do not carry,
    and PyAV cannot tag the stream): the user would miss forced subtitles, or see a DVD squeezed.
    Read back, as each writer keeps its own share. ``muxer``: the writer's name (FFmpeg's, the first
    of the format's names); ``streams``: how many streams were written;
    ``copied``: (input stream, its output stream's index); ``pixel_shape``: (the video's index, its
    sample aspect ratio) where it is not square."""
    try:
        with av.open(str(written_path)) as written:
            kept_chapters = len(written.chapters())
            # MP4 leaves out a track with no packet (the indices after it move) and adds its chapters as one
            if len(written.streams) < streams or any(
                    written.streams[index].type != in_stream.type for in_stream, index in copied):
                copied, pixel_shape = [], None
            kept_flags = [(in_stream, written.streams[index].disposition) for in_stream, index in copied]
            if pixel_shape:
                video = written.streams[pixel_shape[0]]
                kept_shape, kept_codec = video.sample_aspect_ratio, video.codec_context.name
    except (OSError, av.FFmpegError):
        return  # what cannot be read back is told by the checks that need it
    writer = _WRITER_NAMES.get(muxer, muxer.upper())
    same = Path(location).suffix.lower() == Path(written_path).suffix.lower()
    instead = "write a .mkv" if same else as_the_input(location, "write a .mkv") + ","
    if chapters and not kept_chapters:
        which = f"the {chapters} chapters of {location} are" if chapters != 1 else f"the chapter of {location} is"
        warnings.warn(f"{which} not kept: {writer} holds none ({instead} to keep {'them' if chapters != 1 else 'it'})")
    shown_anyway = av.stream.Disposition.default | av.stream.Disposition.attached_pic
    for in_stream, kept in kept_flags:
        if lost := in_stream.disposition & ~shown_anyway & ~kept:
            names = ", ".join(flag.name.replace("_", " ") for flag in av.stream.Disposition if flag & lost)
            warnings.warn(f"the {in_stream.type} stream #{in_stream.index} of {location} loses its flags ({names}): "
                          f"{writer} does not hold them ({instead} to keep them)")
    if pixel_shape and (kept_shape or 1) != pixel_shape[1]:
        shape, codec = pixel_shape[1], kept_codec
        warnings.warn(f"the upscale of {location} is shown with square pixels, not its own {shape.numerator}:"
                      f"{shape.denominator}: {writer} takes the pixels' shape from the codec, which {codec} does not "
                      "carry (write .mp4 or .mov, or .mkv with --codec libx264, to keep it)")


def upscaled_tags(stream) -> dict[str, str]:
    """A video stream's own tags (language, title, handler name, timecode), for its upscale: not
    those its encoder or a muxer's statistics wrote, which would be wrong for it."""
    return {key: value for key, value in stream.metadata.items()
            if key.lower() not in ENCODING_TAGS and key.split("-")[0] not in STATISTICS_TAGS
            and not key.startswith("_STATISTICS_")}


def upscaled_disposition(stream) -> av.stream.Disposition:
    """A video stream's flags (default, forced...), for its upscale; never a cover picture's."""
    return stream.disposition & ~av.stream.Disposition.attached_pic


def _packet_duration(packet: av.Packet, time_base: Fraction) -> Fraction:
    """How long ``packet`` plays, in seconds: audio's frame of samples, else its own duration, else
    a frame at the stream's rate."""
    context = packet.stream.codec_context  # of another kind where a joint changed what a PID carries
    frame_size, sample_rate = getattr(context, "frame_size", 0), getattr(context, "sample_rate", 0)
    if packet.stream.type == "audio" and frame_size and sample_rate:
        return Fraction(frame_size, sample_rate)
    if packet.duration:
        return packet.duration * time_base
    rate = packet.stream.type == "video" and (packet.stream.average_rate or packet.stream.guessed_rate)
    return 1 / Fraction(rate) if rate else Fraction(0)


class PyAVSource(Source):
    """A file, URL or standard input that FFmpeg can demux."""

    def __init__(self, location: str, options: SourceOptions):
        self.location = location
        self.is_file = location != "-" and Path(location).is_file()
        self._size_at_open = os.stat(location).st_size if self.is_file else None  # one that grows is being written
        if location == "-" and sys.stdin is None:
            raise SrpipeError("standard input is closed; give an input file or pipe data into srpipe")
        target = sys.stdin.buffer if location == "-" else location
        timeout = (options.timeout if options.timeout is not None
                   else (NETWORK_TIMEOUT if is_network(location) else None))
        self.timeout, self._pipe = timeout, None
        if is_pipe(location) and (timeout or location == "-"):
            target = self._pipe = TimedPipe(location, timeout)
        max_pixels = default_max_pixels() if options.max_pixels is None else options.max_pixels
        # max_pixels: the stream probe decodes a first frame; a header claiming a huge one fails instead
        settings = {"options": {"max_pixels": decoder_pixels(max_pixels)},
                    **({"timeout": timeout} if timeout else {})}
        if location.lower().startswith(("http:", "https:")):
            # FFmpeg 8.1 asks for each connection to be closed, then sends the request that follows a
            # seek (an MP4's index, MPEG-TS's probe) on it anyway: servers that honour byte ranges
            # (nginx) end it, and the read goes on from the wrong place. One kept-alive connection.
            settings["options"]["multiple_requests"] = "1"
        try:
            with ffmpeg_errors() as logs:
                self.container = interruptible(lambda: av.open(target, mode="r", format=options.input_format,
                                                               **settings))
        except av.ExitError as exc:
            raise SrpipeError(f"{location} sent no data for {timeout:g} s; check the address, or allow longer "
                              "with --timeout SECONDS") from exc
        except (av.FFmpegError, OSError, ValueError) as exc:
            self._check_stalled()
            refuse_claimed_size(location, logs)
            raise _open_error(location, exc) from exc
        finally:
            if self._pipe is not None and not hasattr(self, "container"):  # not opened: the FIFO is closed
                self._pipe.close()
        # Frames are timed as FFmpeg's own command times them (BestEffortTimes). PyAV has demuxers make
        # up missing presentation times, which an AVI's (it stores none) are: its packets' decoding
        # order, shuffled by the decoder where it holds B-frames. Other containers' made-up times are
        # right where they are missing (ASF's, MPEG-PS's), and kept.
        if "avi" in self.container.format.name.split(","):
            self.container.flags = self.container.flags & ~av.container.Flags.gen_pts.value
        self.max_pixels, self.input_format = max_pixels, options.input_format
        self._reading = threading.Lock()  # close() must not free the container under a read
        self._waiting_pts: list[int] = []  # of the packets in the decoder whose frames have not come out
        self.video = main_video(self.container)
        if self.video is None:
            self.container.close()
            raise SrpipeError(f"{location} has no video stream; srpipe upscales video and images")
        if self.video.disposition & av.stream.Disposition.attached_pic:  # a song's cover: one frame, no time
            self.container.close()
            raise SrpipeError(f"{location} holds no video but a cover picture; srpipe upscales video and images: "
                              f"take the picture out first (ffmpeg -i {shlex.quote(location)} -an -frames:v 1 "
                              "cover.png) and upscale that")
        refused = refused_size(logs) if not self.video.codec_context or not self.video.codec_context.width else None
        if refused is not None:  # the probe's decoder refused a frame over the limit, leaving the size unknown
            self.container.close()
            check_frame_size(location, *refused, max_pixels)
        if self.video.codec_context is None:  # a header cut short, or a codec FFmpeg does not know
            self.container.close()
            raise SrpipeError(f"{location} has a video stream that cannot be decoded (no codec: the file may be "
                              "cut short); check the file")
        self.video.thread_type = "AUTO"
        if options.decode_threads:
            self.video.thread_count = options.decode_threads
        # a stream that changes to a larger frame later is refused by the decoder, not allocated
        self.video.codec_context.options = {"max_pixels": decoder_pixels(max_pixels)}
        self.decoder = _alpha_decoder(self.video, max_pixels) or self.video.codec_context
        self.chroma_location = chroma_location(self.video)
        self.pts_range = options.pts_range
        # A part of a file (pts_range) keeps the file's times, which it is cut by
        self.origin = file_origin(self.container) if self.pts_range is None else Fraction(0)
        self.passthrough = [] if self.pts_range else [
            s for s in self.container.streams if s.index != self.video.index
        ]
        self.frame_count = self.video.frames or self._estimate_frames()
        self.width, self.height = self.video.codec_context.width, self.video.codec_context.height
        pix_fmt = self.video.codec_context.format
        self.bytes_per_sample = 2 if pix_fmt is not None and max(c.bits for c in pix_fmt.components) > 8 else 1
        if pix_fmt is not None and has_alpha(pix_fmt):
            self.samples_per_pixel = 4  # the alpha plane, full size, beside the colour planes
        self.default_suffix = video_output_suffix(location)
        # How often an animation plays (0: for ever), which its upscale as one keeps
        self.plays = animation_plays(location, self.container.format.name) if self.is_file else 0
        self.display_matrix: tuple[int, ...] | None = None
        self.hdr10: str | None = None  # the first frame's HDR10 metadata, as x265 takes it (hdr10_params)
        self.on_decode_error = options.on_decode_error
        self.deinterlace_mode = options.deinterlace
        self._deinterlacer: deinterlace.Deinterlacer | None = None
        self._quantizer: float | None | object = _UNREAD

    def quarter_turned(self) -> bool:
        """From the first frame's display matrix, decoded from the file opened again; standard
        input and streams, which cannot be read twice, and a first frame that cannot be read (the
        run then says why, or skips it) are taken as shown as stored."""
        return self.is_file and turns_a_quarter(
            first_frame_layout(self.location, self.input_format, self.max_pixels)[0])

    def near_lossless(self) -> bool:
        """A file in one of the :data:`LOSSLESS_CODECS`, or H.264 whose first frames with content
        were quantized finer than :data:`NEAR_LOSSLESS_QP` (it is opened again to read the
        quantizers). Not standard input or a stream: what is piped in losslessly (raw video, y4m)
        is often a lossy file decoded on the way."""
        if not self.is_file:
            return False
        if self.video.codec_context.name in LOSSLESS_CODECS:
            return _full_colour(self.video.codec_context.format)
        quantizer = self.quantizer()
        return quantizer is not None and quantizer < NEAR_LOSSLESS_QP

    def quantizer(self) -> float | None:
        """The mean quantizer of an H.264 file's first frames with content (:func:`mean_quantizer`:
        the file is opened again to read it, once); None for other codecs, standard input and streams."""
        if self._quantizer is _UNREAD:
            h264_file = self.is_file and self.video.codec_context.name == "h264"
            self._quantizer = mean_quantizer(self.location, self.max_pixels) if h264_file else None
        return self._quantizer

    @property
    def is_recording(self) -> bool:
        """Whether the input is a recording of known length (a file, a URL whose server gave its
        size, a playlist that ends), not a live stream or a camera: live preview plays it at its
        frame rate."""
        duration = self.container.duration or 0  # a live FLV says 0
        return self.is_file or duration > 0 or self._served_size() is not None

    def _served_size(self) -> int | None:
        """The size in bytes the server gave for a URL's media (not a playlist's own size), if it did.
        PyAV says an unknown size as a negative number, or from 18.1.1 as None."""
        size = self.container.size or 0
        if is_network(self.location) and size > 0 and \
                not set(self.container.format.name.split(",")) & PLAYLIST_FORMATS:
            return size
        return None

    def _estimate_frames(self) -> int | None:
        rate = self.video.average_rate or self.video.guessed_rate
        if self.container.duration and rate:
            return int(self.container.duration / av.time_base * rate)
        return None

    @property
    def time_base(self) -> Fraction:
        return Fraction(self.video.time_base)

    @property
    def frame_rate(self) -> Fraction | None:
        rate = self.video.average_rate or self.video.guessed_rate
        if self.container.format.name in ELEMENTARY_FORMATS:  # their mean rate is the demuxer's 25, not the stream's
            rate = self.video.codec_context.framerate or self.video.guessed_rate or rate
        return Fraction(rate) if rate else None

    @property
    def quickest_rate(self) -> Fraction | None:
        """The rate of the quickest frames where it varies (FFmpeg's guess, r_frame_rate), where it
        is one a video has (at most :data:`QUICKEST_RATE`): what a container that counts in frames
        takes, so that a quick stretch keeps its times (at the mean rate it would fall behind its
        sound); else the mean."""
        guessed, mean = self.video.guessed_rate, self.frame_rate
        if guessed and mean and mean <= guessed <= QUICKEST_RATE:
            return Fraction(guessed)
        return mean

    @property
    def metadata(self) -> dict[str, str]:
        return dict(self.container.metadata)

    @property
    def chapters(self) -> list[dict]:
        """The file's chapters (PyAV's form), none for a part of it (``pts_range``)."""
        return [] if self.pts_range else started_at_zero(self.container.chapters(), self.origin)

    @property
    def video_tags(self) -> dict[str, str]:
        return upscaled_tags(self.video)

    @property
    def video_disposition(self) -> av.stream.Disposition:
        return upscaled_disposition(self.video)

    @property
    def sample_aspect_ratio(self) -> Fraction | None:
        """The shape of the stream's pixels (4/3: a DV or DVD frame shown wider than it is stored)."""
        ratio = self.video.sample_aspect_ratio or self.video.codec_context.sample_aspect_ratio
        return Fraction(ratio) if ratio else None

    @property
    def colour(self) -> tuple[int, int, int]:
        return upscaled_colour(self.video)

    def items(self) -> Iterator[Frame | av.Packet]:
        return self._items() if self.pts_range is None else self._range_items(*self.pts_range)

    def _first_frame(self) -> av.VideoFrame | None:
        """The file's first frame, from the decoder the frames come from; None where it is damaged."""
        try:
            for packet in self.container.demux(self.video):
                for video_frame in self.decoder.decode(packet):
                    return video_frame
        except av.FFmpegError:
            pass
        return None

    def _range_items(self, start: int | None, end: int | None) -> Iterator[Frame]:
        """The frames of one chunk: decoding starts at the keyframe ``start`` and
        runs until the decoder, which emits in presentation order, passes ``end``."""
        if start is not None:
            # the file's first frame's size and format, which a part after a change of them is brought
            # to, as the whole file's frames are (:meth:`_as_first`); its own if that cannot be decoded
            video_frame = self._first_frame()
            if video_frame is not None:
                self.first_frame_size = (video_frame.width, video_frame.height)
                self._first_format = video_frame.format.name
            self.container.seek(start, stream=self.video, backward=True)
            self.decoder.flush_buffers()  # the seek flushes the stream's own decoder, not libvpx's for alpha
        first = True
        for frame in self._items():
            if end is not None and frame.pts >= end:
                return
            if start is not None and frame.pts < start:
                continue  # leading frames of an open GOP: the previous chunk's
            if first and start is not None and frame.pts != start:
                raise SrpipeError(f"{self.location}: seeking to pts {start} missed frames; process it unchunked")
            first = False
            yield frame

    def _items(self) -> Iterator[Frame | av.Packet]:
        passthrough = {s.index for s in self.passthrough}
        times = FrameTimes(self._rate_step(), untimed=self.container.format.name in ELEMENTARY_FORMATS)
        video_pts, video_end, corrupt = [], None, False  # what the demuxer gave, to tell what it lost
        # Where the stream that ends last ends, in seconds, where the header states the file's end alone
        file_end = Fraction(0) if self.container.format.name in FILE_END_FORMATS else None
        first_shown = None  # the first frame's time: the packets before it that gave none joined mid-way
        keyframe_pts, bytes_skipped = set(), False
        undated: dict[int, list[av.Packet]] = {}  # copied packets waiting for a decoding time
        audio_times = AudioTimes()
        best_effort = BestEffortTimes()
        # A demuxer that read past damage skipped bytes: where packets lie whole and in file order,
        # the file's bytes the packets read so far reach (-1: not told so)
        reach = None if set(self.container.format.name.split(",")) & CONTIGUOUS_FORMATS else -1
        packets, stalled = self._from_origin(self.container.demux()), False
        joints = Joints(self.location) if times_may_jump(self.container) else None
        while True:
            with self._reading:
                asked = time.monotonic()
                try:
                    packet = next(packets, None)
                    # A demuxer that takes the time limit for the end (HLS: a live playlist that stopped growing)
                    stalled = stalled or bool(self.timeout) and self._pipe is None and \
                        time.monotonic() - asked >= self.timeout  # (a pipe read through srpipe stops with an error)
                except av.ExitError as exc:
                    if not (self._decoded and ends_by_falling_silent(self.location)):
                        raise SrpipeError(f"{self.location} sent no data for {self.timeout:g} s; check the source, "
                                          "or allow longer with --timeout SECONDS") from exc
                    stalled, packet = True, self._flush_packet()  # the only end such a stream has
                except (OSError, av.FFmpegError) as exc:
                    self._check_stalled()
                    packet = self._ended_by(exc)
                except IndexError:
                    # PyAV's end of the streams, after their last packets, met a stream that came up
                    # midway (MPEG-TS), whose packets it passed over: the streams it knows have ended
                    hint = ": give the file itself, where it is found" if self.location == "-" else ""
                    warnings.warn(f"a stream that begins partway through {self.location} is not copied{hint}")
                    packet = None
            if packet is None:
                self._check_stalled()
                if stalled:
                    warnings.warn(f"{self.location} sent no data for {self.timeout:g} s and ended there (a live "
                                  "stream that stopped?): the frames that arrived are upscaled")
                break
            if joints is not None and packet.size:
                joints.close_up(packet)
            if reach != -1 and packet.pos is not None and packet.pos >= 0 and packet.size:
                bytes_skipped |= reach is not None and packet.pos > reach + SKIPPED_BYTES
                corrupt |= bytes_skipped
                reach = max(reach or 0, packet.pos + packet.size)
            index = packet.stream.index
            if file_end is not None and packet.pts is not None:
                file_end = max(file_end, (packet.pts + (packet.duration or 0)) * packet.time_base)
            if index == self.video.index:
                stamp = packet.pts if packet.pts is not None else packet.dts  # AVI's packets have no pts
                if stamp is not None:
                    video_pts.append(stamp)
                    video_end = max(video_end or 0, stamp + (packet.duration or 0))
                    if packet.is_keyframe:
                        keyframe_pts.add(stamp)
                corrupt |= packet.is_corrupt
                for video_frame in self._decode(packet):
                    if first_shown is None:
                        first_shown = video_frame.pts
                    if self.display_matrix is None:
                        self.display_matrix = _display_matrix(video_frame) or ()
                        self.hdr10 = hdr10_params(video_frame)
                        if self.first_frame_size is None:
                            self.first_frame_size = (video_frame.width, video_frame.height)
                            self._first_format = video_frame.format.name
                    frame = frame_from_av(self._as_first(video_frame), self.chroma_location)
                    frame.pts = best_effort(video_frame.pts, video_frame.dts)
                    yield from times(frame)
            elif index in passthrough and packet.size and audio_times.date(packet):  # not the empty packet that
                # ends each stream
                date_cover(packet)
                if packet.pts is None:  # an AVI's (muxers need one): its decoding time
                    packet.pts = packet.dts
                if packet.dts is None and packet.pts is not None:
                    undated.setdefault(index, []).append(packet)
                elif packet.dts is not None:
                    yield from _dated_before(undated.pop(index, []), packet)
                    yield packet
        yield from times.flush(video_end)
        if times.repaired:
            count = times.repaired
            warnings.warn(f"{count} frame{'s' * (count != 1)} of {self.location} had no timestamp, or one not after "
                          "the frame before's or past the frame after's, and took one between the frames around them "
                          "(a long run of them, or a stream without timestamps, is timed by the frame rate)")
        if self.concealed_frames:
            tell_concealed(self.concealed_frames, self.location, self._first_concealed,
                           "as players show them, and are upscaled so; check the source")
        for packets in undated.values():  # a stream that never gave a decoding time: its presentation times
            for packet in packets:
                packet.dts = packet.pts
                yield packet
        for index, count in audio_times.untimed.items():
            warnings.warn(f"{count} packet{'s' * (count != 1)} of the audio stream #{index} of {self.location} had no "
                          f"time, with no timed one before {'them' if count != 1 else 'it'}, and "
                          f"{'are' if count != 1 else 'is'} left out")
        if self.pts_range is None:
            self._tell_growth()
            # (before the frames the container lost, which had no packets, are counted)
            frameless = self._tell_frameless_packets()
            joined_midway = sum(pts < first_shown for pts in video_pts) if first_shown is not None else 0
            damage = bytes_skipped or self.skipped_frames or self.concealed_frames or frameless > joined_midway
            unflagged = bool(damage) and bool(set(self.container.format.name.split(",")) & UNFLAGGED_LOSS_FORMATS)
            self._count_container_losses(sorted(video_pts), video_end, corrupt or unflagged,
                                         joints.at if joints else [], set() if damage else keyframe_pts, file_end)
        if self._closed_without_length is not None:
            warnings.warn(f"{self.location} ended in an input/output error ({self._closed_without_length}; the "
                          "server closed it without saying how long it is?): the frames that arrived are upscaled")

    def _from_origin(self, packets: Iterator[av.Packet]) -> Iterator[av.Packet]:
        """``packets`` with the file's :attr:`origin` taken off their times. Where the file starts
        after zero, the packets before the video's first wait for it, which the origin is not
        after (:func:`file_origin`)."""
        def moved(packet: av.Packet) -> av.Packet:
            if self.origin and packet.size:  # not the empty packet that ends each stream
                move_packet(packet, -round(self.origin / Fraction(packet.time_base)))
            return packet

        waiting: list[av.Packet] | None = [] if self.origin > 0 else None
        for packet in packets:
            stamp = packet.pts if packet.pts is not None else packet.dts
            if waiting is not None and packet.stream.index == self.video.index and packet.size and \
                    not packet.is_discard and stamp is not None:  # (discard: before an MP4 edit list's start)
                self.origin = file_origin(self.container, stamp * Fraction(packet.time_base))
                yield from map(moved, waiting)
                waiting = None
            if waiting is not None:
                waiting.append(packet)
            else:
                yield moved(packet)
        yield from map(moved, waiting or ())

    # The first frame's, which the header's (``width``, ``height``: the last size it saw) may not be
    first_frame_size: tuple[int, int] | None = None
    _first_format: str | None = None
    _closed_without_length: str | None = None  # why a server's stream that said no length ended, if it ended so
    _told_layout_change = False
    _decoded = False  # a frame came out of the decoder
    _packets_in = _frames_out = 0  # the video packets with data that went into the decoder, the frames out
    _fields_seen = False  # an interlaced frame came out
    _first_concealed: float | None = None  # the time of the first frame the decoder mended, in seconds

    def _as_first(self, video_frame: av.VideoFrame) -> av.VideoFrame:
        """``video_frame`` in the first frame's size and pixel format, as FFmpeg's command scales
        and converts it (its -autoscale): a broadcast switches size for its adverts, recordings
        joined end to end differ, and an output holds one size and format. Told once."""
        size, pixel_format = (video_frame.width, video_frame.height), video_frame.format.name
        if (size, pixel_format) == (self.first_frame_size, self._first_format):
            return video_frame
        width, height = self.first_frame_size
        if not self._told_layout_change:
            self._told_layout_change = True
            at = f" at {float(video_frame.time):.3f} s" if video_frame.time is not None else ""
            warnings.warn(f"{self.location} changes from {width}x{height} {self._first_format} to "
                          f"{size[0]}x{size[1]} {pixel_format}{at}: the frames from there are brought to the first's "
                          "size and format, as FFmpeg's command brings them")
        return video_frame.reformat(width=width, height=height, format=self._first_format, interpolation="BICUBIC")

    def _tell_growth(self) -> None:
        """Say that the file grew while it was read: a recording still being written (by a camera,
        a capture, ffmpeg) is upscaled up to where it was read, which its end is not."""
        try:
            grown = self._size_at_open is not None and os.stat(self.location).st_size > self._size_at_open
        except OSError:
            return
        if grown:
            warnings.warn(f"{self.location} grew while it was read (a recording still being written?): the frames up "
                          "to where it was read are upscaled; upscale it again when it is finished")

    def _tell_frameless_packets(self) -> int:
        """Say how many packets gave no frame where each should give one (:data:`ONE_FRAME_A_PACKET`):
        a stream joined mid-way begins with packets that refer to frames before it, which the
        decoder leaves out without an error, and dav1d may drop a damaged AV1 frame so. Their count."""
        if self.decoder.name not in ONE_FRAME_A_PACKET or self._fields_seen:  # a field a packet, in broadcasts
            return 0
        frameless = self._packets_in - self._frames_out - self.skipped_frames
        if frameless > 0:
            warnings.warn(f"{frameless} packet{'s' * (frameless != 1)} of {self.location} gave no picture and "
                          f"{'are' if frameless != 1 else 'is'} left out (as where a stream is joined mid-way, before "
                          "its first keyframe, or damage made the decoder drop a frame)")
        return max(frameless, 0)

    def _check_stalled(self) -> None:
        """Raise, where the input is a pipe that ended because it sent nothing for --timeout, so."""
        if self._pipe is not None and self._pipe.stalled:
            raise SrpipeError(f"{self.location} sent no data for {self.timeout:g} s; check the source, or allow "
                              "longer with --timeout SECONDS")

    def _ended_by(self, exc: Exception) -> av.Packet:
        """A stream a server closed without saying how long it is ends in an input/output error,
        which FFmpeg's own command takes for the end, as is taken here (with a warning); anything
        else stops the run. A stream whose server said its size and that broke off before that
        stops it too (FFmpeg's HTTP reader calls it an input/output error: "Stream ends
        prematurely"), whether its duration is known or not (MPEG-TS from a server that does not
        seek), but for a size of :data:`MADE_UP_SIZE` or more with no duration (a live stream's,
        ended as the first), unless damaged frames are skipped (then the lost frames that its header's end
        tells are counted so). The empty packet that flushes the decoder of what it holds."""
        reason = getattr(exc, "strerror", None) or str(exc)
        if not (is_network(self.location) and getattr(exc, "errno", None) == errno.EIO):
            hint = "check the file or the connection"
            if "mp4" in self.container.format.name and not self.is_file:  # its index read before, from a pipe
                hint = ("an MP4 or MOV read from a pipe needs its index first (ffmpeg -movflags +faststart); "
                        "give the file itself")
            raise SrpipeError(f"cannot read {self.location} ({reason}); {hint}") from exc
        size = self._served_size()
        if size is not None and size >= MADE_UP_SIZE and not self.container.duration:
            size = None  # a live stream's, as some cameras send: it has no end to break off before
        if size is None:  # told once the frames are counted: where the header states more, it broke off
            self._closed_without_length = reason
        else:
            broke = (f"{self.location} broke off ({reason}): the server said {size} bytes and closed the connection "
                     "before they all came")
            if self.on_decode_error != "skip":
                raise SrpipeError(f"{broke}; check the server or the connection, and try again, or rerun with "
                                  "--on-decode-error skip to keep the frames that came") from exc
            warnings.warn(f"{broke}: the frames that came are upscaled")
        return self._flush_packet()

    def _flush_packet(self) -> av.Packet:
        """The empty packet that flushes the decoder of what it holds."""
        flush = av.Packet()
        flush.stream = self.video
        return flush

    _deinterlaced_elsewhere = 0  # frames deinterlaced outside the part read (pts_range)

    @property
    def deinterlaced_frames(self) -> int:
        return self._deinterlacer.count - self._deinterlaced_elsewhere if self._deinterlacer is not None else 0

    def _count_container_losses(self, pts: list[int], end: int | None, corrupt: bool, joints: list[Fraction],
                                keyframes: set[int], file_end: Fraction | None) -> None:
        """Frames the demuxer skipped over (a damaged container): a stream ending before the
        duration its header states (the file ending before it, in seconds ``file_end``, where the
        header states the file's end alone: :data:`FILE_END_FORMATS`) and, where the file is
        ``corrupt`` (the demuxer flagged a packet so or skipped bytes, ``SKIPPED_BYTES``, or, in the
        :data:`UNFLAGGED_LOSS_FORMATS`, the decoder met damage: they lose whole packets without a
        flag, and the frames after them refer to what they held), gaps in timestamps that are
        otherwise regular. They stop the run, or are counted as skipped, like frames the decoder
        refused.

        A gap alone is no loss: valid files have them where frames were left out on purpose (a
        phone's dropped frames, duplicates removed from a screen recording, cuts joined by stream
        copy, the B-frames a stream copy cut ends without), and they are kept as they are. Nor
        is a jump of more than ``DISCONTINUITY_S`` (recordings joined end to end, as FFmpeg
        takes it in MPEG-TS), or a gap in the ``CUT_END_FRAMES`` frames before one (the first
        recording's cut end; a joint in MPEG-TS is flagged corrupt), nor gaps as near the
        ``joints`` closed up (:class:`Joints`, in seconds), where the header's end is in the times
        before they were, and says nothing. Nor is a gap that ends at a keyframe (of ``keyframes``,
        their times; none where the demuxer skipped bytes to find its way again, which it does
        at a keyframe, or the decoder met damage: a loss cuts a frame short, and in a stream of
        keyframes alone every gap ends at one): there a recording joined after a pause begins
        (``cat a.ts b.ts``, a stream's discontinuity; what is lost mid-way in a stream of
        predicted frames leaves frames that refer to it), which is told and kept as it is."""
        if not pts or end is None:
            return
        gaps = [(a, b) for a, b in zip(pts, pts[1:]) if b > a]
        steps = [b - a for a, b in gaps]
        step, lost, first = None, 0, None  # first: when the first frame missing would have been shown
        if steps:
            step, count = Counter(steps).most_common(1)[0]
            if count < 0.9 * len(steps):  # variable frame rate: a long frame is no loss
                step = None
            elif corrupt:
                longest, near = DISCONTINUITY_S / self.time_base, (CUT_END_FRAMES + 1) * step
                joined = [joint / self.time_base for joint in joints]
                holes = [(a, b) for i, ((a, b), d) in enumerate(zip(gaps, steps))
                         if 1.5 * step < d and max(steps[i:i + CUT_END_FRAMES + 1]) <= longest
                         and not any(a - near <= joint <= b + near for joint in joined)]
                lost_in = [(a, b) for a, b in holes if b not in keyframes]
                lost += sum(round((b - a) / step) - 1 for a, b in lost_in)
                first = lost_in[0][0] + step if lost_in else None
                pauses = [(a, b) for a, b in holes if b in keyframes]
                if pauses:
                    (a, b), tb = pauses[0], self.time_base
                    more = f" (and {len(pauses) - 1} more times)" if len(pauses) > 1 else ""
                    warnings.warn(f"{self.location}'s times skip {float((b - a - step) * tb):.2f} s at "
                                  f"{float(a * tb):.2f} s{more}, up to a keyframe (recordings joined after a pause?): "
                                  "the picture before holds as long, as players show it")
        rate = self.video.average_rate
        step = step or (1 / (Fraction(rate) * self.time_base) if rate else None)
        stated = None if joints else stated_end(self.video, round(self.origin / self.time_base))
        reached = end if file_end is None else max(end, round(file_end / self.time_base))
        # One frame short is a writer's rounding (ASF's), not a loss
        if step and stated is not None and stated - reached > 1.5 * step:
            lost += round((stated - reached) / step)
            first = end if first is None else first
        lost -= self.skipped_frames  # those the decoder refused are in the gaps too
        if lost <= 0:
            return
        if self.on_decode_error == "skip":
            self.skipped_frames += lost
            return
        if self._closed_without_length is not None:  # a recording (its header states its end) cut short
            raise SrpipeError(f"{self.location} broke off ({self._closed_without_length}): the server closed it "
                              f"about {lost} video frame{'s' * (lost != 1)} before the end its header states; check "
                              "the server or the connection, and try again, or rerun with --on-decode-error skip to "
                              "keep the frames that came")
        after = f", the first at {float(first * self.time_base):.3f} s," if first is not None else ""
        raise SrpipeError(f"{self.location} is damaged: its container lost about {lost} video "
                          f"frame{'s' * (lost != 1)}{after} that could not be read; rerun with --on-decode-error skip "
                          "to keep the frames that could be read")

    def _in_range(self, pts: int | None) -> bool:
        """Whether a frame at ``pts`` is one of the part read (``pts_range``): a chunk's decoder
        also reads frames of its neighbours (an open GOP's, those past its end), their own to count."""
        if self.pts_range is None or pts is None:
            return True
        start, end = self.pts_range
        return (start is None or pts >= start) and (end is None or pts < end)

    def _decode(self, packet: av.Packet) -> list[av.VideoFrame]:
        """The frames of one packet, deinterlaced where they are interlaced (:meth:`_progressive`);
        a damaged packet stops or is skipped and counted."""
        self._packets_in += packet.size > 0 and not packet.is_discard  # discard: before an MP4 edit list's start
        if packet.size and packet.pts is not None:
            self._waiting_pts.append(packet.pts)
            del self._waiting_pts[:-WAITING_PACKETS]  # frames without times never clear them
        try:
            frames = self.decoder.decode(packet)
        except av.FFmpegError as exc:
            if self.container.format.name == "image2" and not self._decoded:  # named as a picture, read as one
                raise SrpipeError(f"cannot read {self.location} as an image (corrupt, truncated or not an image); "
                                  "check that it is a complete PNG/JPEG/WebP/BMP/TIFF")
            if self.on_decode_error == "skip":
                self.skipped_frames += self._in_range(packet.pts)
                return []
            # Frames come out in order, so the first one that did not is where the damage begins: not
            # the packet the error came with, which the decoder's frame threads take several later
            first = min(self._waiting_pts, default=packet.pts)
            at = f" at {float(first * packet.time_base):.3f} s" if first is not None else ""
            raise SrpipeError(
                f"{self.location} is damaged{at} ({exc.strerror or exc}); "
                "rerun with --on-decode-error skip to drop the damaged frames"
            ) from exc
        self._decoded = self._decoded or bool(frames)
        self._frames_out += len(frames)
        if frames and frames[-1].pts is not None:  # what came before it will not come any more
            self._waiting_pts = [pts for pts in self._waiting_pts if pts > frames[-1].pts]
        for frame in frames:
            # decoded with errors, whose lost blocks the decoder filled in (concealed)
            if frame.is_corrupt and self._in_range(frame.pts):
                self.concealed_frames += 1
                if self._first_concealed is None:
                    self._first_concealed = frame.time  # None without a pts or time base
        self._fields_seen = self._fields_seen or any(frame.interlaced_frame for frame in frames)
        return self._progressive(frames, last=packet.size == 0)  # an empty packet ends the stream

    def _progressive(self, frames: list[av.VideoFrame], last: bool) -> list[av.VideoFrame]:
        """``frames`` through the deinterlacer once one of them is interlaced (``deinterlace``
        ``auto``; ``all``: from the first), which holds each until the next is in; ``last``: the
        stream ends, and it gives what it holds."""
        if self.deinterlace_mode == deinterlace.OFF:
            return frames
        ready, every = [], self.deinterlace_mode == deinterlace.ALL
        for frame in frames:
            if self._deinterlacer is None and (every or frame.interlaced_frame):
                self._deinterlacer = deinterlace.Deinterlacer(every_frame=every)
            if self._deinterlacer is None:
                ready.append(frame)
                continue
            counted = self._deinterlacer.count
            ready += self._deinterlacer.frames(frame)
            if not self._in_range(frame.pts):  # a neighbour's frame (a chunk's decoder reads some): not this part's
                self._deinterlaced_elsewhere += self._deinterlacer.count - counted
        if last and self._deinterlacer is not None:
            ready += self._deinterlacer.flush()
        return ready

    def _rate_step(self) -> int:
        """A frame's step at the frame rate, in time-base units (for frames without times: :class:`FrameTimes`)."""
        rate = self.frame_rate or Fraction(25)
        return max(1, round(1 / (rate * self.time_base)))

    def close(self) -> None:
        # A read blocked in FFmpeg (a stalled URL, on Ctrl-C) holds the lock: freeing the
        # container under it would crash, so it is left to the process's exit.
        if self._reading.acquire(timeout=0.5):
            try:
                self.container.close()
                if self._pipe is not None:
                    self._pipe.close()
            finally:
                self._reading.release()


HARDWARE_ENCODER = "h264_nvenc"


@functools.cache
def encoder_works(name: str) -> bool:
    """Whether encoder ``name`` opens here: hardware encoders need their GPU and driver."""
    try:
        context = av.CodecContext.create(name, "w")
        context.width, context.height, context.pix_fmt = 256, 256, "yuv420p"
        context.time_base = Fraction(1, 25)
        with scheduling_kept():
            context.open()
    except (av.FFmpegError, ValueError, OSError):
        return False
    return True


def video_output_suffix(location: str) -> str:
    """The suffix of a video's upscale named after it: its own where srpipe writes it as it is
    (an animated PNG's .png or .apng too), else .mp4."""
    suffix = Path(location).suffix.lower()
    if suffix in KEPT_SUFFIXES or suffix == ".apng" or (suffix == ".png" and png_animation(location) is not None):
        return suffix
    return ".mp4"


def default_codec(container_format: str, hardware: bool = False) -> str:
    """libvpx-vp9 for WebM, gif for GIF, apng for an animated PNG; otherwise NVENC H.264 when
    ``hardware`` is asked for and works, else libx264."""
    if container_format == "webm":
        return "libvpx-vp9"
    if container_format in ("gif", "apng"):
        return container_format
    return HARDWARE_ENCODER if hardware and encoder_works(HARDWARE_ENCODER) else "libx264"


def check_video_encoder(name: str) -> None:
    """Refuse a name that is no encoder, or an audio or subtitle one, before PyAV is handed it."""
    try:
        codec = av.Codec(name, "w")
    except (av.FFmpegError, ValueError) as exc:
        raise SrpipeError(f"--codec {name} is not an encoder FFmpeg knows; see 'ffmpeg -encoders' for names") from exc
    if codec.type != "video":
        raise SrpipeError(f"--codec {name} is an {codec.type} encoder; give a video encoder such as libx264")


# The --crf range of encoders that clamp larger values without a word (x264/x265, NVENC's cq)
CRF_LIMITS = {"libx264": 51, "libx265": 51, "h264_nvenc": 51, "hevc_nvenc": 51}
# x264's and x265's presets: checked here, since a wrong one makes the library print to the
# terminal itself and FFmpeg report only 'Invalid argument'
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow",
                "placebo")


def encoder_options(codec: str, crf: int | None, preset: str | None, extra: dict[str, str],
                    gpu: int | None = None) -> dict[str, str]:
    """The encoder's options for srpipe's quality settings: ``crf`` is NVENC's constant
    quality ``cq``; x264/x265 presets go only to x264/x265; ``gpu`` (``--device cuda:N``) is
    the GPU NVENC encodes on (it counts them as CUDA does), where ``extra`` names none."""
    options = dict(extra)
    if gpu is not None and codec.endswith("_nvenc"):
        options.setdefault("gpu", str(gpu))
    if crf is not None and crf > CRF_LIMITS.get(codec, 63):
        raise SrpipeError(f"--crf {crf} is out of range for {codec}; it takes 0-{CRF_LIMITS.get(codec, 63)}")
    if crf is not None:
        if codec.endswith("_nvenc"):
            options.setdefault("rc", "vbr")
            options.setdefault("cq", str(crf))
        else:
            options.setdefault("crf", str(crf))
    if preset is not None and codec in ("libx264", "libx265"):
        if not _is_preset(codec, preset) and "preset" not in extra:
            raise SrpipeError(f"--preset {preset} is not a {codec} preset; use one of {', '.join(X264_PRESETS)} "
                              "(or 0-9, fastest to slowest)")
        options.setdefault("preset", preset)
    if codec == "libx265" and "x265-params" not in options:
        options["x265-params"] = "log-level=error"  # not its settings and tuning notes on every run (-q too)
    return options


def _is_preset(codec: str, preset: str) -> bool:
    """Whether x264 or x265 takes ``preset``: a name (x264 in any case) or its number, 0-9."""
    name = preset.lower() if codec == "libx264" else preset
    return name in X264_PRESETS or (len(preset) == 1 and preset in "0123456789")


@contextlib.contextmanager
def scheduling_kept() -> Iterator[None]:
    """Undo what the block does to the scheduling of this process's threads: each thread gets
    back its own, and a thread the block started this thread's. SVT-AV1 opened as root makes the
    thread that opens it real time (SCHED_FIFO at the highest priority), and with it every thread
    and process started after: its own threads, a batch's workers. They take both cores from the
    decoder's and the network's threads (docs/design-notes.md: the test suite's batches stopped
    for ever so)."""
    if not hasattr(os, "sched_getscheduler"):  # not Linux
        yield
        return
    before = _thread_scheduling()
    own = before.get(threading.get_native_id()) or _scheduling(0)
    try:
        yield
    finally:
        for thread, now in _thread_scheduling().items():
            was = before.get(thread, own)
            if now != was:
                with contextlib.suppress(OSError):  # ended meanwhile
                    os.sched_setscheduler(thread, was[0], os.sched_param(was[1]))


def _scheduling(thread: int) -> tuple[int, int]:
    """A thread's policy (with SCHED_RESET_ON_FORK) and priority (0: this thread)."""
    return os.sched_getscheduler(thread), os.sched_getparam(thread).sched_priority


def _thread_scheduling() -> dict[int, tuple[int, int]]:
    """The scheduling of each of this process's threads (only this one where /proc cannot be read)."""
    try:
        threads = [int(name) for name in os.listdir("/proc/self/task")]
    except OSError:
        threads = [threading.get_native_id()]
    found = {}
    for thread in threads:
        with contextlib.suppress(OSError):  # ended meanwhile
            found[thread] = _scheduling(thread)
    return found


def add_video_encoder(container, codec: str, *, rate, time_base: Fraction, crf: int | None, preset: str | None,
                      extra: dict[str, str] | None = None, gpu: int | None = None):
    """An output video stream that ``codec`` encodes with srpipe's quality settings; the
    caller sets its size and pixel format. Every srpipe encoder (the sink, ``live --record``,
    ``eval --video``) is set up here."""
    check_video_encoder(codec)
    try:
        stream = container.add_stream(codec, rate=rate)
    except (av.FFmpegError, ValueError) as exc:
        raise SrpipeError(f"cannot use encoder {codec!r}: {exc}; see 'ffmpeg -encoders' for names") from exc
    stream.time_base = stream.codec_context.time_base = encoder_time_base(
        stream.codec_context.name, container.format.name, time_base, Fraction(rate))
    stream.options = encoder_options(stream.codec_context.name, crf, preset, extra or {}, gpu)
    if stream.codec_context.name == "libx264":
        # frame threads, as ffmpeg's CLI runs x264: PyAV's default (slice threads) made files
        # larger and encoding slower (docs/design-notes.md)
        stream.codec_context.thread_type = "FRAME"
    tag_hevc_for_apple(container, stream)
    return stream


# Encoders that count time in frames (MPEG-1/2: their frame rate codes), and those whose time base has
# at most 16 bits (MPEG-4 Part 2 and H.263 and their kin, which refuse MPEG-TS's 1/90000)
FRAME_TIMED_CODECS = frozenset({"mpeg1video", "mpeg2video"})
SHORT_TIME_BASE_CODECS = frozenset({"mpeg4", "h263", "h263p", "msmpeg4", "msmpeg4v2", "wmv1", "wmv2", "flv"})


def counts_in_frames(codec: str, container_format: str) -> bool:
    """Whether the encoder (MPEG-1/2) or the container (AVI: a tick a frame, the rest of a tick
    written as empty frames) counts time in frames."""
    return codec in FRAME_TIMED_CODECS or "avi" in container_format.split(",")


def encoder_time_base(codec: str, container_format: str, time_base: Fraction, rate: Fraction) -> Fraction:
    """The time base to encode in: the source's, which keeps each frame's time, but a frame at
    ``rate`` where the encoder or the container counts in frames (:func:`counts_in_frames`) or
    cannot hold the source's."""
    chosen = time_base
    if counts_in_frames(codec, container_format) or (
            codec in SHORT_TIME_BASE_CODECS and time_base.denominator > 0xFFFF):
        chosen = 1 / rate
    # a variable rate's mean (90000/3089) can need more bits than those encoders take
    return chosen.limit_denominator(0xFFFF) if codec in SHORT_TIME_BASE_CODECS else chosen


# The formats whose writers keep a video stream's display matrix (a phone's rotation)
TURN_FORMATS = frozenset({*QUICKTIME_FORMATS, "matroska", "webm"})


def turn_filters(matrix: tuple[int, ...]) -> list[tuple[str, str | None]] | None:
    """The filters (name, arguments) that show a picture as FFmpeg's display ``matrix`` says, as
    FFmpeg's command turns it (its autorotate): none where it shows it as stored; None for a turn
    by other than a quarter (FFmpeg's ``rotate``, which pads the picture)."""
    scale = [math.hypot(matrix[0], matrix[3]), math.hypot(matrix[1], matrix[4])]
    if not all(scale):  # no turn a picture can take (FFmpeg's command leaves it as stored)
        return []
    theta = round(math.degrees(math.atan2(matrix[1] / scale[1], matrix[0] / scale[0])))
    theta -= 360 * math.floor(theta / 360 + 0.9 / 360)
    if abs(theta - 90) < 1:
        return [("transpose", "cclock_flip" if matrix[3] > 0 else "clock")]
    if abs(theta - 270) < 1:
        return [("transpose", "clock_flip" if matrix[3] < 0 else "cclock")]
    if abs(theta - 180) < 1:
        return [(name, None) for name, flips in (("hflip", matrix[0] < 0), ("vflip", matrix[4] < 0)) if flips]
    if abs(theta) < 1:
        return [("vflip", None)] if matrix[4] < 0 else []
    return None


class Turn:
    """Frames turned by filters (:func:`turn_filters`), for an output that cannot keep the display matrix."""

    def __init__(self, filters: list[tuple[str, str | None]]):
        self.filters = filters
        self._graph: av.filter.Graph | None = None
        self._format: str | None = None  # the pixel format the graph was made for

    def __call__(self, frame: av.VideoFrame) -> av.VideoFrame:
        if self._graph is not None and frame.format.name != self._format:  # the graph takes one format
            frame = frame.reformat(format=self._format)
        if self._graph is None:
            self._format = frame.format.name
            graph = av.filter.Graph()
            last = graph.add_buffer(width=frame.width, height=frame.height, format=frame.format.name,
                                    time_base=frame.time_base or Fraction(1, 90000))
            for name, arguments in self.filters:
                last.link_to(step := graph.add(name, arguments))
                last = step
            last.link_to(graph.add("buffersink"))
            graph.configure()
            self._graph = graph
        self._graph.vpush(frame)
        return self._graph.vpull()


def tag_hevc_for_apple(container, stream) -> None:
    """HEVC in MP4 or MOV as hvc1, what Apple's players take (FFmpeg's default, hev1, they refuse)."""
    if stream.codec_context.name in ("libx265", "hevc", "hevc_nvenc") and \
            container.format.name.split(",")[0] in QUICKTIME_FORMATS:
        stream.codec_tag = "hvc1"


def tag_video_stream(stream, full_range: bool, colour: tuple[int, int, int] | None,
                     display_matrix: tuple[int, ...] | None) -> None:
    """Give an output video stream its range, the source's colour description and rotation."""
    copy_colour(stream.codec_context, full_range, colour)
    if display_matrix:
        stream.set_display_matrix(display_matrix)


@contextlib.contextmanager
def ffmpeg_errors() -> Iterator[list[tuple[int, str, str]]]:
    """The errors FFmpeg logs, from any thread, while the block runs: PyAV drops them otherwise,
    and an encoder says only there why it refused (x264: 'width not divisible by 2 (101x76)')."""
    with ffmpeg_log(av.logging.ERROR, local=False) as logs:
        yield logs


_log_levels: list[int] = []  # the levels the ffmpeg_log blocks running now asked for
_log_lock = threading.Lock()
_level_before: int | None = None  # FFmpeg's level before the first of them
# PyAV's level where ffmpeg_log silenced FFmpeg as PyAV's level None does (see there): the level below
# every message's
AV_LOG_QUIET = -8
# A message that reaches PyAV's callback as a block ends goes to the logger "libav": not printed by
# Python's last resort where nothing was set up for it (PyAV drops every message by default); a
# user's own logging set up still gets it
logging.getLogger("libav").addHandler(logging.NullHandler())


@contextlib.contextmanager
def ffmpeg_log(level: int, *, local: bool) -> Iterator[list[tuple[int, str, str]]]:
    """FFmpeg's log messages up to ``level`` while the block runs, of this thread (``local``) or of
    any. The level is one for the whole process: while blocks run in several threads it is the
    most verbose any asked for, and it goes back to what it was when the last one ends (set and put
    back by each in turn, a block that ended first put back the level before the other began)."""
    global _level_before
    with _log_lock:
        if not _log_levels:
            before = av.logging.get_level()
            _level_before = None if before == AV_LOG_QUIET else before
        _log_levels.append(level)
        av.logging.set_level(max(_log_levels))
    try:
        with av.logging.Capture(local=local) as logs:
            yield logs
    finally:
        with _log_lock:
            _log_levels.remove(level)
            if not _log_levels and _level_before is None:
                # Back to no messages, PyAV's default, without its level None: that makes the level a
                # thread already inside PyAV's callback compares with None, and PyAV printed a traceback
                # (an HTTP stream's end, dav1d on a damaged file). A level kept with PyAV's callback
                # would take the GIL for each error: a decoder freed with the GIL held (PyAV's dealloc)
                # then waited for ever for a thread waiting for it. FFmpeg's own callback, told to
                # print nothing, takes no GIL.
                av.logging.set_level(AV_LOG_QUIET)
                av.logging.restore_default_callback()
                av.logging.set_libav_level(AV_LOG_QUIET)
            else:
                av.logging.set_level(max(_log_levels) if _log_levels else _level_before)


def write_error(location: str, exc: Exception) -> SrpipeError | BrokenPipeError:
    """What a failed write to ``location`` raises. A reader that closed its pipe (standard output,
    a FIFO) is no error: a BrokenPipeError, on which the command line ends quietly, like other tools."""
    if isinstance(exc, BrokenPipeError):
        return BrokenPipeError(errno.EPIPE, f"the reader of {location} closed it")
    reason = getattr(exc, "strerror", None) or str(exc)
    return SrpipeError(f"cannot write {location}: {reason}; check free space and permissions")


def encoder_refusal(stream, exc: av.FFmpegError, logs=(), hint: str = "check --codec, --crf, --preset") -> SrpipeError:
    """One line for an encoder that refused to open or encode: its own reason where it logged one,
    else FFmpeg's, without the error number and the C call; ``hint`` says what to change. An odd
    size with chroma subsampling (4:2:0, 4:2:2) gets the ways around it instead."""
    name, width, height, pix_fmt = (stream.codec_context.name, stream.width, stream.height,
                                    stream.codec_context.pix_fmt)
    said = [message.strip().rstrip(".") for _, source, message in logs if source == name and message.strip()]
    reason = said[0] if said else (exc.strerror or str(exc))
    if (width % 2 or height % 2) and pix_fmt and _subsampled(pix_fmt):
        hint = f"the output is {width}x{height} and {pix_fmt} needs even sizes: use --pix-fmt yuv444p or --codec ffv1"
    elif "width x height" in reason:  # x264's words for a side over its largest, 16384
        hint = f"the output is {width}x{height}: choose a smaller size (--width, --height, -s) or --codec ffv1"
    return SrpipeError(f"encoder {name} refused the settings: {reason}; {hint}")


Layout = tuple[int, "tuple[int, int] | None"]  # bits, and the chroma's shift (None: grey)


def layout_of(pix_fmt: str) -> Layout | None:
    """The bits and chroma subsampling of a Y'CbCr or grey pixel format FFmpeg names, planar or
    not (nv12, p010le); None for RGB, palettes, alpha, hardware frames and the deprecated
    full-range yuvj names."""
    if pix_fmt.startswith("yuvj"):
        return None
    try:
        pixel_format = av.VideoFormat(pix_fmt, 2, 2)
    except (ValueError, av.FFmpegError):
        return None
    components = pixel_format.components
    if pixel_format.is_rgb or not components or not components[0].is_luma or \
            any(c.is_alpha or not c.bits for c in components):
        return None
    bits = max(c.bits for c in components)
    if len(components) == 1:
        return bits, None
    chroma = components[1]
    return bits, ((2 // chroma.width).bit_length() - 1, (2 // chroma.height).bit_length() - 1)


def _distance(source: Layout, candidate: Layout) -> tuple[int, int, int, int]:
    """How far writing ``source`` as ``candidate`` goes: chroma made coarser, bits lost, chroma
    made finer, bits added (each 0 where none)."""
    (bits, shift), (their_bits, their_shift) = source, candidate
    if shift is None or their_shift is None:  # grey into colour adds only neutral chroma
        coarser, finer = (4 if their_shift is None and shift is not None else 0), 0
    else:
        coarser = sum(max(0, c - s) for c, s in zip(their_shift, shift))
        finer = sum(max(0, s - c) for c, s in zip(their_shift, shift))
    return coarser, max(0, bits - their_bits), finer, max(0, their_bits - bits)


def nearest_format(source: PlaneFormat, supported: list[str]) -> str:
    """Of an encoder's pixel formats, the one nearest ``source``: the least coarser chroma, then
    the fewest bits lost, then the least needless detail, a planar one before a packed one at
    equal distance (12-bit 4:4:4 for x264: yuv444p10le). Where that would be grey for a picture in
    colour, or none is Y'CbCr, RGB with the fewest bits that hold the source's (PNG, BMP, TIFF
    take no Y'CbCr); else the encoder's first."""
    own = (source.bit_depth, source.chroma_shift)
    candidates = [(name, layout_of(name)) for name in supported]
    candidates = [(name, layout) for name, layout in candidates if layout is not None]
    nearest = min(candidates, key=lambda item: (*_distance(own, item[1]), item[0] not in PLANE_FORMATS),
                  default=(None, None))
    if nearest[0] is not None and (nearest[1][1] is not None or source.chroma_shift is None):
        return nearest[0]
    rgb = sorted(((bits, name) for name, bits in map(_rgb_bits, supported) if bits), key=lambda item: (
        item[0] < source.bit_depth, abs(item[0] - source.bit_depth)))
    return rgb[0][1] if rgb else nearest[0] or supported[0]


def _rgb_bits(pix_fmt: str, alpha: bool = False) -> tuple[str, int | None]:
    """``pix_fmt`` and the bits of each of its colours where it is RGB without palette, and with
    alpha where ``alpha`` (how encoders that take no Y'CbCr, PNG and APNG, keep it) or else
    without; else None."""
    fmt = av.VideoFormat(pix_fmt)
    if not fmt.is_rgb or fmt.has_palette or len(fmt.components) != (4 if alpha else 3):
        return pix_fmt, None
    return pix_fmt, min(component.bits for component in fmt.components)


def _encodable(codec: str, supported: list[str]) -> list[str]:
    """The formats of ``supported`` every GPU's NVENC takes: 4:2:0 (4:2:2 and 10-bit H.264 only on
    the newest); for other encoders all."""
    if not codec.endswith("_nvenc"):
        return supported
    deepest = 8 if codec == "h264_nvenc" else 16
    most = [name for name, layout in ((name, layout_of(name)) for name in supported)
            if layout is not None and layout[1] == (1, 1) and layout[0] <= deepest]
    return most or supported


def loses_detail(source: PlaneFormat, pix_fmt: str) -> bool:
    """Whether writing ``source`` as ``pix_fmt`` loses colour detail or bits (RGB: only bits; other
    formats that are not Y'CbCr: always)."""
    layout = layout_of(pix_fmt)
    if layout is None:
        bits = _rgb_bits(pix_fmt)[1]
        return bits is None or bits < source.bit_depth
    return any(_distance((source.bit_depth, source.chroma_shift), layout)[:2])


def _coarser(chroma_shift, than) -> bool:
    """Whether a chroma subsampling (PlaneFormat.chroma_shift; None: grey) keeps fewer colour
    samples than ``than`` on either axis."""
    if chroma_shift is None or than is None:
        return chroma_shift is None and than is not None
    return any(a > b for a, b in zip(chroma_shift, than))


def _subsampled(pix_fmt: str) -> bool:
    """Whether a pixel format's chroma has fewer samples than its luma (4:2:0, 4:2:2, NV12...)."""
    return any(c.width < 2 or c.height < 2 for c in av.VideoFormat(pix_fmt, 2, 2).components)


# The most bytes of packets (of all streams) read ahead for an audio stream's first, where the file's
# header does not tell its sample rate: a minute of a broadcast
LOOK_AHEAD_BYTES = 64 << 20


def first_sound(in_stream, location: str, held=()) -> tuple[av.AudioFrame, bytes] | None:
    """The first sound ``in_stream`` (audio) decodes to, and the packet it came in: from ``held``,
    packets of it already read, else from the file ``location`` opened again (not standard input
    or a stream, which cannot be read twice), within its first :data:`LOOK_AHEAD_BYTES`; None
    where neither gives any."""

    def decoded(packets) -> tuple[av.AudioFrame, bytes] | None:
        decoder = decoder_of(in_stream)
        for packet in packets:
            if packet.stream.index == in_stream.index and packet.size:
                try:
                    frames = decoder.decode(packet)
                except av.FFmpegError:
                    continue  # damage: the next packet may tell
                if frames and frames[0].sample_rate:
                    return frames[0], bytes(packet)
        return None

    def within_bound(packets):
        read = 0
        for packet in packets:
            yield packet
            read += packet.size
            if read > LOOK_AHEAD_BYTES:
                return

    sound = decoded(held)
    if sound is not None or not Path(location).is_file():
        return sound
    try:  # as a file whatever its name, in the format it was read in
        with av.open(f"file:{os.path.abspath(location)}",
                     format=in_stream.container.format.name.split(",")[0]) as container:
            return decoded(within_bound(container.demux()))
    except (av.FFmpegError, OSError, ValueError):
        return None


def add_copied_stream(container, in_stream, location: str, held=(), streamed: bool = False):
    """An output stream for copying ``in_stream``'s packets untouched, with its flags (default,
    forced...); ``None`` (with a warning) for a data track (a timecode that no video stream
    carries as a tag, chapter text, camera telemetry: muxers take one and then refuse the
    header or the trailer, which would lose the whole file), a cover picture the container
    cannot keep, an attachment it cannot hold, or an audio stream whose sample rate neither the
    file's header nor its first packets tell (``held``: the packets of it already read;
    ``streamed``: the output is written where its writer cannot seek back, :func:`give_aac_config`).
    Audio and subtitles must fit."""
    if in_stream.type == "video" and in_stream.disposition & av.stream.Disposition.attached_pic:
        out_stream = None
        if set(container.format.name.split(",")) & COVER_FORMATS:
            try:
                out_stream = container.add_stream_from_template(in_stream)
            except (av.FFmpegError, ValueError):
                pass
        kind = COVER_TYPES.get(in_stream.codec_context.name)
        if out_stream is None and "matroska" in container.format.name.split(",") and held and kind:
            mimetype, name = kind
            container.add_attachment(in_stream.metadata.get("filename", name), in_stream.metadata.get(
                "mimetype", mimetype), bytes(held[0]))
            return None  # its packet goes nowhere else
        if out_stream is None:
            warnings.warn(f"the cover picture (stream #{in_stream.index}) of {location} is not copied: of the "
                          "outputs, MP4 (.mp4) keeps one, and Matroska (.mkv) a JPEG or PNG one")
            return None
        out_stream.metadata.update(in_stream.metadata)
        out_stream.disposition = in_stream.disposition
        return out_stream
    if in_stream.type == "attachment" and "matroska" not in container.format.name.split(","):
        name = in_stream.metadata.get("filename") or in_stream.codec_context.name  # a font for the subtitles
        warnings.warn(f"the attachment #{in_stream.index} ({name}) of {location} is not copied: of the outputs, only "
                      "Matroska (.mkv) holds attachments")
        return None
    if in_stream.type == "data":
        if in_stream.container.chapters() and in_stream.metadata.get("handler_name", "").lower().startswith(
                ("subtitle", "text", "chapter")):
            return None  # MP4's chapter titles, a text track of their own: they go as chapters
        timecode = in_stream.metadata.get("timecode")
        if timecode and any(video.metadata.get("timecode") == timecode for video in in_stream.container.streams.video) \
                and set(container.format.name.split(",")) & TIMECODE_FORMATS:
            return None  # a camera's timecode track: the upscaled stream carries it (MOV and MP4 as a track)
        kind = "timecode" if timecode else (in_stream.name or "data")
        warnings.warn(f"the data stream #{in_stream.index} ({kind}) of {location} is not copied: srpipe copies "
                      "audio, subtitles, attachments and chapters")
        return None
    if in_stream.codec_context is None and in_stream.type in ("audio", "subtitle"):  # its header was cut short
        raise SrpipeError(f"the {in_stream.type} stream #{in_stream.index} of {location} has no codec (the file may "
                          "be cut short); check the file")
    sound = None
    if in_stream.type == "audio" and not in_stream.codec_context.sample_rate:
        # The header does not tell it (a recording whose sound starts after its picture, as one
        # joined after a silent one; a broadcast's track that carries nothing): its first packet does
        sound = first_sound(in_stream, location, held)
        if sound is None:
            why = ("none of its first packets, nor the file's header, tell its sample rate (a track that carries "
                   "no sound?)") if Path(location).is_file() else (
                   "its sample rate comes with its first packets, after the output began, and cannot be read "
                   "ahead for; give a file, which can")
            warnings.warn(f"the audio stream #{in_stream.index} ({in_stream.codec_context.name}) of {location} is "
                          f"not copied: {why}")
            return None
    try:
        codec = in_stream.codec_context.name if in_stream.codec_context is not None else "no codec"
        carried = _CARRIED.get((container.format.name, in_stream.type))
        if carried is not None and codec not in carried:
            kind = "subtitles" if in_stream.type == "subtitle" else in_stream.type
            raise ValueError(f"{_WRITER_NAMES[container.format.name]} carries {kind} only as {', '.join(carried)}")
        if in_stream.type == "audio" and codec in _REFUSED_AUDIO.get(container.format.name, ()):
            raise ValueError(f"{container.format.name} takes no {codec}")
        out_stream = container.add_stream_from_template(in_stream)
    except (av.FFmpegError, ValueError) as exc:
        what = f"{in_stream.type} stream #{in_stream.index} ({codec})"
        if in_stream.type in ("audio", "subtitle"):
            # Matroska is the widest; what it cannot hold either (MP4's own subtitles), the input's kind can
            if container.format.name in ("matroska", "webm") or codec not in _codecs_held_by("matroska"):
                instead = as_the_input(location, f"write with --format {in_stream.container.format.name.split(',')[0]}")
            else:
                instead = "write a .mkv instead"
            raise SrpipeError(f"the output container cannot hold the {what} of {location}: {exc}; {instead}") from exc
        warnings.warn(f"the {what} of {location} is not copied: the output container cannot hold it")
        return None
    if sound is not None:
        frame, packet = sound
        out_stream.codec_context.sample_rate, out_stream.codec_context.layout = frame.sample_rate, frame.layout
        if streamed:
            give_aac_config(out_stream, in_stream, packet)
    out_stream.metadata.update(in_stream.metadata)
    out_stream.disposition = in_stream.disposition
    if in_stream.type == "video":  # a second camera angle, a thumbnail track
        warnings.warn(f"the video stream #{in_stream.index} of {location} is copied as it is, not upscaled: srpipe "
                      f"upscales one video stream, #{main_video(in_stream.container).index}")
    return out_stream


# FFmpeg's default channel layout for each count (av_channel_layout_default)
DEFAULT_LAYOUTS = {1: "mono", 2: "stereo", 3: "3.0", 4: "4.0", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}
# Encoders of at most two channels (and FLV holds no more), and the layouts libopus takes beyond two (Vorbis's)
TWO_CHANNEL_CODECS = frozenset({"mp2", "libmp3lame", "libtwolame", "mp3"})
OPUS_LAYOUTS = {3: "3.0", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}

# Animations, which hold neither sound nor subtitles
PICTURE_ONLY_FORMATS = frozenset({"gif", "apng"})

# The codec sound is encoded again in, for an output that cannot hold the input's: the container's
# own, as FFmpeg's command picks it, but AAC in MPEG-TS (FFmpeg's MP2 is a broadcast's of old) and
# libopus in WebM (FFmpeg's own Opus encoder is its experimental one)
REENCODED_AUDIO = {"mpegts": "aac", "webm": "libopus", "flv": "aac"}


def audio_reencoder(container, in_stream) -> str | None:
    """The codec to encode ``in_stream``'s sound again in, for ``container``, which cannot hold it
    as it is (AAC in WebM: Opus); None for no sound, sound that cannot be decoded (no sample rate
    known), or a container that holds none (GIF)."""
    if in_stream.type != "audio" or in_stream.codec_context is None or not in_stream.codec_context.sample_rate:
        return None
    chosen = REENCODED_AUDIO.get(container.format.name, container.default_audio_codec)
    return chosen if chosen in av.codecs_available and chosen != in_stream.codec_context.name else None


class AudioReencoder:
    """An audio stream decoded and encoded again (:func:`audio_reencoder`), its sound's times kept."""

    def __init__(self, container, in_stream, codec: str):
        self.decoder = in_stream.codec_context
        rates = av.Codec(codec, "w").audio_rates
        rate = self.decoder.sample_rate
        if rates and rate not in rates:  # Opus: 48 kHz and fractions of it
            rate = min((r for r in rates if r >= rate), default=max(rates))
        channels = self.decoder.layout.nb_channels
        # PCM in Matroska names no layout ("2 channels"): FFmpeg's default one for the count
        layout = DEFAULT_LAYOUTS.get(channels, "stereo") if self.decoder.layout.name == f"{channels} channels" \
            else self.decoder.layout.name
        options = {}
        if codec == "libopus" and channels > 2:  # Opus beyond stereo: Vorbis's layouts (5.1(side) as 5.1)
            layout, options = OPUS_LAYOUTS.get(channels, "stereo"), {"mapping_family": "1"}
        self.mixed_down = channels > 2 and (codec in TWO_CHANNEL_CODECS or container.format.name == "flv"
                                            or layout == "stereo")
        self.stream = container.add_stream(codec, rate=rate, layout="stereo" if self.mixed_down else layout,
                                           options=options)
        self.stream.metadata.update(in_stream.metadata)
        self.stream.disposition = in_stream.disposition
        self.index = in_stream.index
        self._resampler: av.AudioResampler | None = None
        self._key: tuple | None = None  # the format, layout and rate the resampler takes

    def packets(self, packet: av.Packet | None) -> list[av.Packet]:
        """The packets of the sound ``packet`` holds (None: of what the coders hold, at the end).
        Decoding errors are FFmpeg's (damage); encoding ones are told as srpipe's."""
        frames = self.decoder.decode(packet)
        try:
            out = [encoded for frame in frames for encoded in self._encoded(frame)]
            if packet is None:
                out += self._encoded(None)
            return out
        except av.FFmpegError as exc:
            raise SrpipeError(f"encoder {self.stream.codec_context.name} refused the sound of the audio stream "
                              f"#{self.index}: {exc.strerror or exc}; write a .mkv, which keeps it as it is") from exc

    def _encoded(self, frame: av.AudioFrame | None) -> list[av.Packet]:
        """``frame`` (None: the end) through a resampler to the encoder's format and frame size,
        made anew where the sound's layout, format or rate changes (a broadcast's stereo and 5.1)."""
        key = None if frame is None else (frame.format.name, frame.layout.name, frame.sample_rate)
        resampled = []
        if self._resampler is not None and key != self._key:
            resampled = self._resampler.resample(None)  # what it holds of the sound before
            self._resampler = None
        if frame is not None:
            if self._resampler is None:
                encoder = self.stream.codec_context
                self._resampler = av.AudioResampler(format=encoder.format, layout=encoder.layout,
                                                    rate=encoder.sample_rate, frame_size=encoder.frame_size or None)
                self._key = key
            resampled += self._resampler.resample(frame)
        if frame is None:
            resampled.append(None)
        return [packet for piece in resampled for packet in self.stream.encode(piece)]


@functools.cache
def _codecs_held_by(container_format: str) -> frozenset[str]:
    """The codecs FFmpeg's writer of ``container_format`` takes."""
    with av.open(os.devnull, "w", format=container_format) as container:
        return frozenset(container.supported_codecs)


# The codecs writers carry only in part, by format and kind of stream: MPEG-TS's gives others a stream
# type no player reads (private data); MPEG-PS's refuses others as it writes its header; FLV's writes
# others in FFmpeg 8's extended form, which earlier players cannot read (PCM: it aborts). dca: DTS
_CARRIED = {
    ("mpegts", "audio"): ("mp2", "mp3", "aac", "aac_latm", "ac3", "eac3", "dca", "opus", "s302m"),
    ("mpegts", "subtitle"): ("dvb_subtitle", "dvb_teletext"),
    ("mpeg", "audio"): ("mp2", "mp3", "ac3", "dca", "pcm_dvd", "pcm_s16be"),
    ("flv", "audio"): ("aac", "mp3"),
}
_WRITER_NAMES = {"mpegts": "MPEG-TS", "mpeg": "MPEG-PS", "flv": "FLV", "matroska": "Matroska", "webm": "WebM",
                 "mp4": "MP4", "ipod": "M4V", "mov": "MOV"}


def as_the_input(location: str, otherwise: str) -> str:
    """Advice to write the kind of file the input is (which held what another kind cannot), or
    ``otherwise`` where its name does not tell the kind."""
    suffix = Path(location).suffix
    return f"write a {suffix} file, as the input is" if suffix else otherwise
# ... and the audio codecs writers take and then refuse as they write the header (MOV: "only supported
# in MP4"; TrueHD in MP4: "experimental")
_REFUSED_AUDIO = {"mov": ("flac", "opus", "truehd"), "mp4": ("truehd",)}


# Metadata an MP4 or MOV holds as QuickTime keys, where a phone's keys make it write them so, and
# the keys of a file's own structure, which are not the user's metadata
QUICKTIME_KEYS = {name: f"com.apple.quicktime.{name}" for name in (
    "title", "artist", "album", "comment", "description", "genre", "copyright", "composer")}
CONTAINER_KEYS = {"major_brand", "minor_version", "compatible_brands", "encoder"}


def animation_plays(location: str, format_name: str) -> int:
    """How often the animation in the file ``location`` plays, 0 for ever: an animated PNG's play
    count; a GIF's loop count (its NETSCAPE2.0 block, which FFmpeg's reader passes over) counts the
    plays after the first, and a GIF without one plays once. 0 for a video."""
    if format_name == "apng":
        animation = png_animation(location)
        return animation[1] if animation else 0
    if format_name != "gif":
        return 0
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None  # srpipe checks sizes itself (--max-pixels); Pillow's check refused a large GIF
    try:
        with Image.open(location) as image:
            loops = image.info.get("loop")
    except (OSError, SyntaxError, ValueError):  # FFmpeg reads it, Pillow not: as a video's, for ever
        return 0
    return 1 if loops is None else 0 if loops == 0 else min(loops + 1, 65535)  # APNG's most


def set_last_apng_delay(path: Path, seconds: Fraction) -> None:
    """Make the last frame of the animated PNG at ``path`` shown for ``seconds``: its frame
    control chunk's (fcTL) delay, a fraction of 16-bit numbers, and the chunk's CRC."""
    seconds = min(seconds, Fraction(65535))
    delay = seconds.limit_denominator(max(1, 65535 // math.ceil(seconds)))
    last = None
    with open(path, "r+b") as file:
        file.seek(8)  # the signature
        while len(header := file.read(8)) == 8 and header[4:8] != b"IEND":
            if header[4:8] == b"fcTL":
                last = file.tell() - 4
            file.seek(int.from_bytes(header[:4], "big") + 4, 1)  # the data and its CRC
        if last is None:  # one frame: written as a still PNG
            return
        file.seek(last)
        chunk = bytearray(file.read(4 + 26))  # its kind and data
        chunk[24:28] = struct.pack(">HH", delay.numerator, delay.denominator)
        file.seek(last)
        file.write(chunk + struct.pack(">I", zlib.crc32(chunk)))


def output_metadata(metadata: dict[str, str], fmt_name: str | None) -> tuple[dict[str, str], dict[str, str]]:
    """The container metadata to write, and the muxer's options for it. A phone's keys
    (com.apple.quicktime.location.ISO6709, com.android.capture.fps...) are QuickTime metadata,
    which MP4 (.m4v too) and MOV hold only when asked to; so asked, they hold every key as QuickTime metadata,
    where players look for the title and the others under Apple's names."""
    if fmt_name not in QUICKTIME_FORMATS or not any("." in key for key in metadata):
        return dict(metadata), {}
    kept = {_quicktime_key(key): value for key, value in metadata.items() if key.lower() not in CONTAINER_KEYS}
    return kept, {"movflags": "use_metadata_tags"}


def _quicktime_key(key: str) -> str:
    """A key as QuickTime metadata spells it. Matroska stores tag names in capitals, which Apple's
    players, reading its reverse-DNS keys as they are, would not find: those are lower case but
    for the location's ISO6709."""
    lower = key.lower()
    if lower in QUICKTIME_KEYS:
        return QUICKTIME_KEYS[lower]
    if lower.startswith("com."):  # reverse-DNS: Apple's, Android's, Samsung's...
        return lower.replace(".iso6709", ".ISO6709")
    return key


def hdr10_params(video_frame) -> str | None:
    """A frame's HDR10 metadata (the mastering display's colours and light, the content's light
    level) in x265's terms, ``master-display=G(x,y)B(x,y)R(x,y)WP(x,y)L(max,min):max-cll=C,F``,
    or None where it has none. FFmpeg gives them as its C structs: AVMasteringDisplayMetadata,
    (R, G, B) x (x, y), white point and luminances as int32 fractions, then two flags; and
    AVContentLightMetadata, two unsigned ints."""
    params = []
    for data in side_data_of(video_frame):
        if data.type == SideDataType.MASTERING_DISPLAY_METADATA and len(bytes(data)) >= 88:
            values = struct.unpack("<20i2i", bytes(data)[:88])
            fractions = [values[i] / values[i + 1] if values[i + 1] else 0.0 for i in range(0, 20, 2)]
            has_primaries, has_luminance = values[20:22]
            if has_primaries and has_luminance:
                (rx, ry, gx, gy, bx, by, wx, wy), (low, high) = fractions[:8], fractions[8:]
                chroma = [round(value * 50000) for value in (gx, gy, bx, by, rx, ry, wx, wy)]
                params.append("master-display=G({},{})B({},{})R({},{})WP({},{})".format(*chroma)
                              + f"L({round(high * 10000)},{round(low * 10000)})")
        elif data.type == SideDataType.CONTENT_LIGHT_LEVEL and len(bytes(data)) >= 8:
            params.append("max-cll={},{}".format(*struct.unpack("<2I", bytes(data)[:8])))
    return ":".join(params) or None


def give_aac_config(out_stream, in_stream, first_packet: bytes | None = None) -> None:
    """For a stream written where the muxer cannot seek back (-o -, a FIFO): ADTS AAC (MPEG-TS,
    .aac) has no config outside its packets, and Matroska wants it in the header it writes first.
    It is taken from ``first_packet``'s ADTS header where one came before the first frame, else
    from the decoder's parameters where they tell it (plain AAC profiles); the muxer strips the
    ADTS headers itself. (A file is left to the muxer, which fills it in from the first packet.)"""
    if in_stream.type == "audio" and in_stream.codec_context.name == "aac" and not out_stream.codec_context.extradata:
        config = adts_audio_config(first_packet) if first_packet else aac_audio_config(in_stream.codec_context)
        if config is not None:
            out_stream.codec_context.extradata = config


# AAC's sampling frequency indexes (ISO 14496-3), and the object types of the profiles whose
# decoder parameters are what the ADTS headers say (HE-AAC's decoder reports twice the core rate)
AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)
AAC_OBJECT_TYPES = {"Main": 1, "LC": 2, "SSR": 3, "LTP": 4}
AAC_CHANNEL_CONFIGS = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 8: 7}  # channels -> configuration


def _audio_specific_config(object_type: int, rate_index: int, channel_config: int) -> bytes:
    return bytes([object_type << 3 | rate_index >> 1, (rate_index & 1) << 7 | channel_config << 3])


def adts_audio_config(packet: bytes) -> bytes | None:
    """The AudioSpecificConfig an ADTS header (a packet's first 7 bytes) describes, or None where
    it is no ADTS header or its channels are given in the stream (configuration 0)."""
    if len(packet) < 7 or packet[0] != 0xFF or packet[1] & 0xF6 != 0xF0:
        return None
    object_type, rate_index = (packet[2] >> 6) + 1, packet[2] >> 2 & 0xF
    channel_config = (packet[2] & 1) << 2 | packet[3] >> 6
    if rate_index >= len(AAC_RATES) or channel_config == 0:
        return None
    return _audio_specific_config(object_type, rate_index, channel_config)


def aac_audio_config(codec_context) -> bytes | None:
    """The AudioSpecificConfig of an ADTS AAC stream from its decoder's parameters, or None where
    they do not tell it (HE-AAC, channels the two-byte form cannot name, other rates)."""
    object_type = AAC_OBJECT_TYPES.get(codec_context.profile)
    channels = AAC_CHANNEL_CONFIGS.get(codec_context.channels)
    if object_type is None or channels is None or codec_context.sample_rate not in AAC_RATES:
        return None
    return _audio_specific_config(object_type, AAC_RATES.index(codec_context.sample_rate), channels)


def streamed_format(location: str, container_format: str | None, instead: str) -> str:
    """The container standard output (``-``), a FIFO or a device is written in: ``container_format``,
    else the one the name says, else Matroska; refused where it needs seeking (MP4), saying what to
    use ``instead``."""
    chosen = container_format or SUFFIX_FORMATS.get(Path(location).suffix.lower()) or "matroska"
    if chosen not in STREAMING_FORMATS:
        where = "standard output" if location == "-" else f"{location} (a {special_kind(location)})"
        refusal = f"{chosen} cannot be streamed to {where}" if chosen in av.formats_available else \
            f"no container format {chosen!r} to write to {where}"
        raise SrpipeError(f"{refusal}; use {instead}")
    return chosen


def is_pipe(location: str) -> bool:
    """Whether an input is a pipe, a FIFO or a socket (``-``: standard input, as it is open):
    what only srpipe's own reads can time (:class:`TimedPipe`). A file redirected into standard
    input is a file, which FFmpeg may seek."""
    try:
        mode = os.fstat(sys.stdin.fileno()).st_mode if location == "-" else os.stat(location).st_mode
    except (OSError, ValueError, AttributeError):
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


class TimedPipe:
    """Standard input or a FIFO, read through Python with a limit on how long a read may wait
    for data (--timeout): FFmpeg does not ask its interrupt callback while a read of a pipe blocks.
    A read that waited too long ends the input, and ``stalled`` says so (PyAV drops what its
    read callback raises). A FIFO is opened here, on Linux without waiting for a writer: the first
    read waits for one, under the same limit (where the open waited, --timeout never began).

    Standard input is read so with no limit too: a read gives what has arrived, where Python's
    ``sys.stdin.buffer`` waits until the whole of what FFmpeg asks for (32 KB) is there, and a
    live stream piped in would come in bursts of frames, most of which live preview drops."""

    def __init__(self, location: str, timeout: float | None):
        # Linux's poll waits for a FIFO's first writer; elsewhere it may say "ended" at once: the open waits there
        flags = os.O_RDONLY | (os.O_NONBLOCK if sys.platform.startswith("linux") else 0)
        try:
            self.fd = sys.stdin.fileno() if location == "-" else os.open(location, flags)
        except OSError as exc:  # a socket's path (only connect() reads one)
            raise SrpipeError(f"cannot read {location} ({exc.strerror}); pipe its data into srpipe -") from exc
        self.owned, self.timeout = location != "-", timeout
        self.stalled = False
        self._poll = select.poll()
        self._poll.register(self.fd, select.POLLIN)

    def read(self, size: int) -> bytes:
        if self.stalled:  # FFmpeg reads again after an end: it stays the end, at once
            return b""
        while True:
            if not self._poll.poll(None if self.timeout is None else self.timeout * 1000):
                self.stalled = True
                return b""
            try:
                return os.read(self.fd, size)
            except BlockingIOError:  # the data went to another reader of the FIFO
                continue

    def close(self) -> None:
        if self.owned:
            os.close(self.fd)


class StreamedFile:
    """A FIFO or device that PyAV writes through Python (no seeking). A write blocked on a
    FIFO whose reader stopped reading is where Ctrl-C lands; PyAV's callback would swallow the
    KeyboardInterrupt and FFmpeg write on, so it is kept here, the write fails (and every later
    one, at once), and the sink raises it again."""

    def __init__(self, target):
        """``target``: a path, or a file descriptor (standard output), which stays open."""
        # srpipe opens it, not FFmpeg: a FIFO's open waits for a reader, and Python's open lets Ctrl-C through
        self.raw = open(target, "wb", buffering=0, closefd=not isinstance(target, int))
        self.interrupted: BaseException | None = None

    def write(self, data) -> int:
        if self.interrupted is not None:
            raise OSError(errno.EINTR, "interrupted")
        try:
            return write_all(self.raw, data)
        except Exception:
            raise
        except BaseException as exc:  # KeyboardInterrupt, SIGTERM's Terminated
            self.interrupted = exc
            raise OSError(errno.EINTR, "interrupted") from None

    def close(self) -> None:
        self.raw.close()


class PyAVSink(Sink):
    """Encodes upscaled frames and copies the source's other streams."""

    def __init__(self, location: str, source: PyAVSource | Source, options: SinkOptions):
        self.location = location
        self.source = source
        self.options = options
        self.to_stdout = location == "-"
        if self.to_stdout and sys.stdout is None:
            raise SrpipeError("standard output is closed; name an output file with -o")
        self.output = None if self.to_stdout else AtomicOutput(location, options.overwrite)
        # Standard output, FIFOs and devices are written as a stream, in a format that needs no seeking.
        # A video named .png is an animated PNG (open_sink lets only those through), which FFmpeg
        # would take for a numbered picture sequence by that name alone
        self.container_format = options.container_format or (
            "apng" if Path(location).suffix.lower() in (".png", ".apng") else None)
        if self.to_stdout or self.output.direct:
            self.container_format = streamed_format(location, options.container_format, "--format matroska or mpegts")
        self.file = None  # the FIFO or device, opened by srpipe
        self.frames_written = 0
        self._durations: dict[int, int] = {}  # frames in the encoder: pts -> duration, in its time base
        self.container = None
        self.stream = None
        self.palette: PaletteFrames | None = None  # where the encoder writes a palette (GIF)
        self.keeps_alpha = False  # set as the encoder opens
        # The source's Y'CbCr matrix, for a conversion to RGB (GIF, --pix-fmt bgr0); None: BT.601, FFmpeg's default
        self.matrix: int | None = None
        self.copied: dict[int, av.stream.Stream] = {}
        self.reencoded: dict[int, AudioReencoder] = {}  # sound the output cannot hold as it is
        self._copied_dts: dict[int, int] = {}  # each copied stream's last decoding time
        self.held_packets: list[av.Packet] = []

    def _open(self, first: Frame) -> None:
        if self.to_stdout:
            target = sys.stdout.buffer
            try:
                sys.stdout.flush()
                target = self.file = StreamedFile(sys.stdout.fileno())
            except (OSError, ValueError, AttributeError):
                pass  # a standard output without a descriptor (a test runner's): written as it is
        elif self.output.direct:
            # Opened here, not by FFmpeg: a FIFO's open waits for a reader, and Python's own
            # open and writes let Ctrl-C through where FFmpeg's would retry forever.
            target = self.file = StreamedFile(self.output.temp)
        else:
            target = str(self.output.temp)
        muxer = self.container_format or SUFFIX_FORMATS.get(Path(self.location).suffix.lower())
        metadata, options = output_metadata(self.source.metadata, muxer)
        # An animation plays as the input played; a video made an animation loops, as a GIF
        plays = getattr(self.source, "plays", 0)
        if muxer == "apng":
            options = {**options, "plays": str(plays)}
        elif muxer == "gif":  # a GIF counts the plays after the first: -1 none, 0 for ever
            options = {**options, "loop": str({0: 0, 1: -1}.get(plays, plays - 1))}
        try:
            self.container = av.open(target, mode="w", format=self.container_format, options=options)
        except (av.FFmpegError, ValueError) as exc:
            raise SrpipeError(f"cannot write {self.location}: {exc}; choose a known extension or --format") from exc
        fmt_name = self.container.format.name.split(",")[0]
        self._cut_away = CutAwaySound(fmt_name)
        codec = self.options.codec or default_codec(fmt_name, self.options.hardware_encoder)
        rate = self.source.frame_rate
        if counts_in_frames(codec, self.container.format.name):  # a tick for each of the quickest frames
            rate = getattr(self.source, "quickest_rate", None) or rate
        stream = add_video_encoder(self.container, codec, rate=rate or 25,
                                   time_base=self.source.time_base or first.time_base or Fraction(1, 90000),
                                   crf=self.options.crf, preset=self.options.preset, extra=self.options.codec_options,
                                   gpu=self.options.hardware_gpu)
        self._check_codec_fits(fmt_name, stream)
        self._frame_size = (first.width, first.height)
        matrix, turned = self._turn(self.source.display_matrix), False
        if self.turn is not None:  # shown as the display matrix says
            matrix, turned = None, any(name == "transpose" for name, _ in self.turn.filters)
        stream.width, stream.height = (first.height, first.width) if turned else (first.width, first.height)
        stream.pix_fmt = self._pix_fmt(stream, first)
        hdr10, params = getattr(self.source, "hdr10", None), stream.options.get("x265-params", "")
        if hdr10 and stream.codec_context.name == "libx265" and "master-display" not in params:
            # HDR10: how bright the picture is meant to be shown, which a TV maps to what it can show
            stream.options = {**stream.options, "x265-params": ":".join(filter(None, (params, "hdr10=1", hdr10)))}
        elif hdr10 and stream.codec_context.name != "libx265":
            # (MPEG-TS lists only its defaults, but holds HEVC)
            where = "" if "libx265" in self.container.supported_codecs or fmt_name == "mpegts" else \
                " in an .mp4 or .mkv"
            warnings.warn(f"the HDR10 metadata of {self.source.location} (its mastering display and light level) "
                          f"is not written by {stream.codec_context.name}: use --codec libx265{where} to keep it")
        colour = self.source.colour
        if self.source.width and self.source.height:
            colour = colour_as_shown(colour, (self.source.width, self.source.height), (first.width, first.height))
        if colour is not None and colour[0] in CONVERTED_MATRICES:
            self.matrix = colour[0]
        if colour is not None and is_rgb(av.VideoFormat(stream.pix_fmt)):  # written as RGB (--pix-fmt bgr0): no matrix
            colour = (RGB_COLORSPACE_TAG, *colour[1:])
        tag_video_stream(stream, first.full_range, colour, matrix)
        if first.chroma_siting != "left" and first.format.chroma_shift not in (None, (0, 0)):
            # Chroma resized as it lies (MJPEG's centred, HDR video's top left): said so, where a player
            # would take the H.264 default and show the colour half a pixel off
            stream.options = {**stream.options, "chroma_sample_location": first.chroma_siting}
        stream.metadata.update(getattr(self.source, "video_tags", {}))
        stream.disposition = getattr(self.source, "video_disposition", stream.disposition)
        sample_aspect = getattr(self.source, "sample_aspect_ratio", None)
        if sample_aspect and sample_aspect != 1 and self.source.width and self.source.height:  # anamorphic: its shape
            pixel = sample_aspect * self.source.width * first.height / (first.width * self.source.height)
            stream.codec_context.sample_aspect_ratio = (1 / pixel if turned else pixel).limit_denominator(65535)
        self.stream = stream
        self.encoder = stream.codec_context.name
        if stream.pix_fmt == PALETTE_FORMAT:
            try:
                self.palette = PaletteFrames(stream.width, stream.height, first.alpha is not None,
                                             Fraction(stream.codec_context.time_base))
            except av.FFmpegError as exc:  # FFmpeg's pictures are at most about 16,000 pixels square
                raise SrpipeError(f"cannot write {self.location}: FFmpeg makes no palette for {stream.width}x"
                                  f"{stream.height} frames ({exc.strerror or exc}); upscale to a smaller size "
                                  "(--width, --height)") from exc
        # Whether a frame's alpha is written: Y'CbCrA, RGBA (PNG, APNG), or a palette's transparency
        self.keeps_alpha = (stream.pix_fmt in ALPHA_FORMATS or _rgb_bits(stream.pix_fmt, alpha=True)[1] is not None
                            or (self.palette is not None and self.palette.format == "rgba"))
        self.container.metadata.update(metadata)
        for in_stream in self.source.passthrough:
            self._add_copy(in_stream)
        if any(copied.type == "video" for copied in self.copied.values()):  # players show the first default one
            stream.disposition = av.stream.Disposition.default
        chapters = getattr(self.source, "chapters", None)
        if chapters:
            self.container.set_chapters(chapters)
        with ffmpeg_errors() as logs, scheduling_kept():
            try:
                self.container.start_encoding()  # opens the encoder and writes the header
            except (av.FFmpegError, OSError) as exc:  # OSError: writing the header to a FIFO or device
                if self.file is not None and self.file.interrupted:
                    raise self.file.interrupted from None
                if isinstance(exc, av.FFmpegError) and not isinstance(exc, BrokenPipeError):
                    raise (self._muxer_refusal(logs) or self._settings_error(exc, logs)) from exc
                raise write_error(self.location, exc) from exc

    turn: Turn | None = None  # what shows the frames as the display matrix says, where the output cannot keep it

    def _turn(self, matrix: tuple[int, ...] | None) -> tuple[int, ...] | None:
        """The display matrix to write: ``matrix`` where the container keeps it, else none, the
        frames then turned by :attr:`turn`, as FFmpeg's command turns them (a GIF, MPEG-TS, AVI)."""
        # a part of a file (batch's chunks) is turned by the join's display matrix, not here
        if not matrix or set(self.container.format.name.split(",")) & TURN_FORMATS or \
                getattr(self.source, "pts_range", None) is not None:
            return matrix
        filters = turn_filters(matrix)
        if filters is None:
            warnings.warn(f"{self.source.location} is shown turned by other than a quarter, which "
                          f"{self.container.format.name.split(',')[0]} cannot say: it is written as stored (write "
                          ".mp4 or .mkv to keep the turn)")
        elif filters:
            self.turn = Turn(filters)
        return None

    def _muxer_refusal(self, logs) -> SrpipeError | None:
        """Where the container's writer, not the encoder, refused the header: its own reason."""
        muxer = self.container.format.name.split(",")[0]
        said = [message.strip().rstrip(".") for _, source, message in logs if source == muxer and message.strip()]
        if not said:
            return None
        return SrpipeError(f"the {muxer} writer refused {self.location}: {said[0]}; try another container "
                           "(--format, or another output name)")

    def _check_codec_fits(self, fmt_name: str, stream) -> None:
        """MPEG-TS takes any codec without complaint but can carry few video codecs."""
        codec = stream.codec_context.codec
        if fmt_name == "mpegts" and codec.id not in _MPEGTS_VIDEO_IDS:
            raise SrpipeError(
                f"MPEG-TS cannot carry {codec.name} video; use --codec libx264 or libx265, or a .mkv output"
            )

    def _pix_fmt(self, stream, first: Frame) -> str:
        """The input's pixel format (with its alpha where the encoder takes it), or --pix-fmt."""
        fmt = first.format
        supported = [f.name for f in (stream.codec_context.codec.video_formats or [])]
        # Y'CbCr with alpha that the encoder takes, by its colour part, with no coarser chroma than the
        # input's (only where it loses bits is that said); libvpx lists more but refuses them ("not
        # widely supported") without -strict, and takes alpha only as WebM carries it, 4:2:0
        alpha_of = {ALPHA_FORMATS[name]: name for name in supported if name in ALPHA_FORMATS
                    and stream.codec_context.name not in ALPHA_LISTED_NOT_WRITTEN
                    and not _coarser(PLANE_FORMATS[ALPHA_FORMATS[name]].chroma_shift, fmt.chroma_shift)}
        if stream.codec_context.name in LIBVPX_ALPHA_ENCODERS:
            alpha_of = {"yuv420p": "yuva420p"}
        if first.alpha is not None and not self.options.pix_fmt and alpha_of:
            # the nearest that keeps the alpha (ProRes 4444 decodes as 12-bit and is written as 10-bit)
            colour = fmt.name if fmt.name in alpha_of else nearest_format(fmt, list(alpha_of))
            if fmt.bit_depth > PLANE_FORMATS[colour].bit_depth:
                warnings.warn(f"{stream.codec_context.name} keeps the alpha channel only in "
                              f"{PLANE_FORMATS[colour].bit_depth} bits; the {fmt.bit_depth}-bit input is written as "
                              f"{alpha_of[colour]}: use --codec ffv1 (.mkv) to keep its depth")
            return alpha_of[colour]
        rgb_alpha = [(bits, name) for name, bits in (_rgb_bits(name, alpha=True) for name in supported) if bits]
        if first.alpha is not None and not self.options.pix_fmt and rgb_alpha:  # PNG, APNG: alpha only with RGB
            return min(rgb_alpha, key=lambda item: (item[0] < fmt.bit_depth, item[0]))[1]
        return self._colour_pix_fmt(stream, fmt, supported)

    def _colour_pix_fmt(self, stream, fmt: PlaneFormat, supported: list[str]) -> str:
        wanted = self.options.pix_fmt or fmt.name
        if stream.codec_context.name == "gif" and not self.options.pix_fmt and fmt.chroma_shift is not None:
            return PALETTE_FORMAT  # a palette chosen for each frame (srpipe.palette), not 3-3-2 bits or grey
        if supported and wanted not in supported:
            if self.options.pix_fmt:
                raise SrpipeError(
                    f"encoder {stream.codec_context.name} cannot write --pix-fmt {wanted}; "
                    f"it takes {', '.join(supported)}"
                )
            wanted = nearest_format(fmt, _encodable(stream.codec_context.name, supported))
            if loses_detail(fmt, wanted):
                warnings.warn(f"encoder {stream.codec_context.name} cannot write {fmt.name}; the output is {wanted}, "
                              "with less detail in depth or colour: use --codec ffv1 (.mkv) to keep it all")
        return wanted

    def _add_copy(self, in_stream) -> None:
        held = [packet for packet in self.held_packets if packet.stream.index == in_stream.index]
        first = held[0] if held else None
        try:
            out_stream = add_copied_stream(self.container, in_stream, self.source.location, held,
                                           self.file is not None)
        except SrpipeError:  # sound the output cannot hold as it is is encoded again, as FFmpeg's command does
            fmt = self.container.format.name.split(",")[0]
            if fmt in PICTURE_ONLY_FORMATS and in_stream.type in ("audio", "subtitle"):
                what = "sound" if in_stream.type == "audio" else "subtitles"
                warnings.warn(f"{fmt.upper()} holds no {what}: the {in_stream.type} stream #{in_stream.index} of "
                              f"{self.source.location} is left out")
                return
            codec = audio_reencoder(self.container, in_stream)
            if codec is None:
                raise
            suffix = Path(self.source.location).suffix
            keeps = ("a .mkv" if in_stream.codec_context.name in _codecs_held_by("matroska") else
                     f"a {suffix} file" if suffix else "a file of the input's kind")
            reencoder = self.reencoded[in_stream.index] = AudioReencoder(self.container, in_stream, codec)
            mixed = ", mixed down to stereo" if reencoder.mixed_down else ""
            warnings.warn(f"the audio stream #{in_stream.index} ({in_stream.codec_context.name}) of "
                          f"{self.source.location} cannot go into {fmt} as it is: it is encoded again as "
                          f"{codec}{mixed} (write {keeps} to keep it as it is)")
            return
        if out_stream is not None:
            if self.file is not None:  # written as a stream
                give_aac_config(out_stream, in_stream, bytes(first) if first is not None else None)
            self.copied[in_stream.index] = out_stream

    def write_frame(self, frame: Frame) -> None:
        if self.container is None:
            self._open(frame)
            for packet in self.held_packets:
                self.write_packet(packet)
            self.held_packets.clear()
        if (frame.width, frame.height) != self._frame_size:
            raise self._size_change(frame)
        if frame.pts is None:  # a source without timestamps (checked: then none has one): by the frame rate
            rate = self.source.frame_rate or Fraction(25)
            frame.pts = self.frames_written * max(1, round(1 / (rate * self.stream.time_base)))
            frame.time_base = self.stream.time_base
        if frame.time_base is not None:
            self._time_in(frame, Fraction(self.stream.codec_context.time_base))
        self.frames_written += 1
        if frame.captions is not None and self.stream.codec_context.name not in CAPTION_ENCODERS:
            self._drop_captions()
            frame = replace(frame, captions=None)
        video_frame = frame_to_av(frame)
        if self.matrix is not None:
            video_frame.colorspace = self.matrix
        if frame.alpha is not None and not self.keeps_alpha:
            self._drop_alpha(frame)
        if self.turn is not None:
            video_frame = self.turn(video_frame)
        self._last_shown = None
        if frame.duration and frame.time_base is not None:
            # Encoders drop a frame's duration, and a muxer then gives the last frame the usual
            # step: a GIF's long last frame, or a phone's, would be cut short. Its packet gets it back.
            encoder_base = Fraction(self.stream.codec_context.time_base)
            unit = frame.time_base / encoder_base
            shown = max(round(frame.duration * unit), math.ceil(SHORTEST_SHOWN / encoder_base))
            self._durations[round(frame.pts * unit)] = shown
            self._last_shown = shown * encoder_base
        if self.palette is not None:
            for paletted in self.palette.frames(video_frame):
                self._mux_video(self._encode(paletted))
            return
        if self.stream.pix_fmt != video_frame.format.name:
            video_frame = video_frame.reformat(format=self.stream.pix_fmt)
        # ProRes and APNG (cICP, cHRM) take the colours' primaries and transfer from each frame, not the stream
        video_frame.color_primaries = self.stream.codec_context.color_primaries
        video_frame.color_trc = self.stream.codec_context.color_trc
        self._mux_video(self._encode(video_frame))

    _last_pts: int | None = None  # in the encoder's time base
    _last_shown: Fraction | None = None  # how long the last frame written is shown, in seconds, where it says

    def _time_in(self, frame: Frame, time_base: Fraction) -> None:
        """``frame`` timed in the encoder's ``time_base`` (:func:`encoder_time_base`), at least a
        unit of it and a tick of the output's time base after the one before: frames closer move,
        none is lost, and none is shown at another's time. Closer than the encoder's unit: a
        variable frame rate in a finer time base. Than the output's tick: Matroska's and FLV's
        milliseconds, to which their writers round frames less than one apart to one time (a
        frame's time, as :data:`SHORTEST_SHOWN` is its duration). Not a GIF's hundredths of a
        second, which would stretch the video by up to one a frame: it is refused."""
        pts = round(frame.pts * frame.time_base / time_base)
        if self._last_pts is not None:
            step = math.ceil(max(1, Fraction(self.stream.time_base) / time_base))
            if step > 1 and pts < self._last_pts + step and self.container.format.name == "gif":
                raise SrpipeError(f"{self.source.location} has frames less than 1/100 s apart (at "
                                  f"{float(frame.pts * frame.time_base):.3f} s), which a GIF cannot hold: it times "
                                  "frames in hundredths of a second; write .apng or a video format (.mp4, .mkv) "
                                  "instead")
            pts = max(pts, self._last_pts + step)
        if frame.duration:
            frame.duration = max(1, round(frame.duration * frame.time_base / time_base))
        frame.pts, frame.time_base, self._last_pts = pts, time_base, pts

    def _size_change(self, frame: Frame) -> SrpipeError:
        """The refusal of an upscaled ``frame`` of another size than the first, with where it
        changed: told in the input's sizes where the source declares them (its first frame has
        them: pipeline.check_frame), else in the output's. Only a plugin's source gets here:
        srpipe's reader brings every frame to its first's size (PyAVSource._as_first)."""
        first = (self.source.width, self.source.height)
        at = f" at {float(frame.pts * frame.time_base):.3f} s" if frame.pts is not None and frame.time_base else ""
        if not all(first):  # a plugin's source that declares no size
            return SrpipeError(f"{self.source.location} changes frame size mid-stream, upscaled from "
                               f"{self._frame_size[0]}x{self._frame_size[1]} to {frame.width}x{frame.height}{at}; "
                               "a video file holds one size")
        now = [round(size * old / new) for size, old, new in zip((frame.width, frame.height), first, self._frame_size)]
        return SrpipeError(f"{self.source.location} changes frame size mid-stream, from {first[0]}x{first[1]} to "
                           f"{now[0]}x{now[1]}{at}; a video file holds one size")

    _warned_alpha = False
    _warned_captions = False

    def _drop_captions(self) -> None:
        if not self._warned_captions:
            self._warned_captions = True
            warnings.warn(f"the closed captions (CEA-608/708) of {self.source.location} are dropped: "
                          f"{self.stream.codec_context.name} cannot carry them; use --codec libx264 (.mp4, .mkv) "
                          "or mpeg2video (.ts) to keep them")

    def _drop_alpha(self, frame: Frame) -> None:
        """Say once that the alpha is lost, when it first holds anything but opaque samples
        (a GIF's BGRA usually does not)."""
        if not self._warned_alpha and frame.alpha.min() < frame.format.max_value:
            self._warned_alpha = True
            # an animation (a GIF becomes .mp4 unless named) keeps it written as one: APNG whole, GIF all or nothing
            animation = Path(self.source.location).suffix.lower() in (".gif", ".png", ".apng")
            keep = "-o NAME.apng (or .gif, whose pixels are each transparent or not), " if animation else ""
            warnings.warn(f"the alpha channel of {self.source.location} is dropped: {self.stream.codec_context.name} "
                          f"cannot write it as {self.stream.pix_fmt}; use {keep}--codec ffv1 (.mkv), libvpx-vp9 "
                          "(.webm) or prores_ks (.mov) to keep it")

    def _encode(self, video_frame):
        try:
            return self.stream.encode(video_frame)
        except av.FFmpegError as exc:
            raise self._settings_error(exc) from exc

    def _settings_error(self, exc: av.FFmpegError, logs=()) -> SrpipeError:
        return encoder_refusal(self.stream, exc, logs, "check --codec, --crf, --preset, --pix-fmt")

    def _mux_video(self, packets) -> None:
        """The encoder's packets, each with the duration of the frame of its timestamp."""
        for packet in packets:
            duration = self._durations.pop(packet.pts, None)
            if duration:
                packet.duration = duration
        self._mux(packets)

    def _mux(self, packets, copied: tuple[str, int, float, bool] | None = None) -> None:
        """Mux ``packets``; ``copied``: (kind, stream, time in seconds, whether it has the time of the
        packet before) of a copied packet, which the writer's own filter may find damaged (ADTS audio
        into MP4's or Matroska's AAC), or the writer refuse at the time of the one before (MP4: a
        piece of sound that lost its neighbours in MPEG-TS; Matroska takes it)."""
        try:
            self.container.mux(packets)
        except (OSError, av.FFmpegError) as exc:
            if self.file is not None and self.file.interrupted:
                raise self.file.interrupted from None
            if copied is not None and (isinstance(exc, av.InvalidDataError) or
                                       copied[3] and isinstance(exc, av.ArgumentError)):
                self._leave_out_damaged(*copied[:3])
                return
            raise write_error(self.location, exc) from exc
        if self.file is not None and self.file.interrupted:
            raise self.file.interrupted

    def write_packet(self, packet: av.Packet) -> None:
        if not isinstance(packet, av.Packet):  # what a plugin's source yields beside its frames
            raise SrpipeError(f"{described(self.source)} gave a {type(packet).__name__} beside its frames, where only "
                              "packets of its passthrough streams go; the plugin that reads it is broken")
        if self.container is None:
            self.held_packets.append(packet)
            return
        index = packet.stream.index
        if index in self.reencoded:
            self._reencode(packet)
            return
        out_stream = self.copied.get(index)
        if out_stream is None:
            return
        for kept in self._cut_away.pass_on(packet):
            self._copy(kept, out_stream)

    def _copy(self, packet: av.Packet, out_stream) -> None:
        index = packet.stream.index
        last = self._copied_dts.get(index)
        seconds = float(packet.dts * packet.time_base)
        if last is not None and packet.dts < last:  # no container takes it: say so, not the muxer's EINVAL
            if (last - packet.dts) * packet.time_base < DISCONTINUITY_S:
                # A piece of sound re-timed by a demuxer that lost packets around it (MPEG-TS)
                self._leave_out_damaged(packet.stream.type, index, seconds)
                return
            raise SrpipeError(
                f"the {packet.stream.type} stream #{index} of {self.source.location} goes back in time, from "
                f"{float(last * packet.time_base):.3f} s to {seconds:.3f} s "
                "(recordings joined end to end?); cut the input where it does (ffmpeg -t, -ss) and upscale the "
                "parts one by one")
        self._copied_dts[index] = packet.dts
        copied = (packet.stream.type, index, seconds, packet.dts == last)
        packet.stream = out_stream
        self._mux(packet, copied)

    def _reencode(self, packet: av.Packet) -> None:
        seconds = float(packet.pts * packet.time_base) if packet.pts is not None else 0.0
        try:
            packets = self.reencoded[packet.stream.index].packets(packet)
        except av.FFmpegError:  # the decoder's: the encoder's are told as SrpipeError
            self._leave_out_damaged("audio", packet.stream.index, seconds)
            return
        self._mux(packets)

    _damaged_copies = 0

    def _leave_out_damaged(self, kind: str, index: int, seconds: float) -> None:
        """A copied packet the writer could not read: damage in the input, which stops the run, or
        with ``--on-decode-error skip`` is left out and counted (told at the end)."""
        if getattr(self.source, "on_decode_error", None) != "skip":
            raise SrpipeError(f"the {kind} stream #{index} of {self.source.location} is damaged at {seconds:.3f} s; "
                              "rerun with --on-decode-error skip to leave its damaged packets out")
        self._damaged_copies += 1

    def finish(self) -> None:
        if self.container is None:
            raise SrpipeError(f"{self.source.location} has no video frames to upscale")
        for reencoder in self.reencoded.values():
            try:
                self._mux(reencoder.packets(None))
            except av.FFmpegError:  # the decoder's last, damaged
                self._leave_out_damaged("audio", reencoder.index, 0.0)
        if self._damaged_copies:
            warnings.warn(f"{self._damaged_copies} damaged packet{'s' * (self._damaged_copies != 1)} of the sound and "
                          f"other streams of {self.source.location} {'were' if self._damaged_copies != 1 else 'was'} "
                          "left out")
        for paletted in self.palette.frames(None) if self.palette is not None else ():
            self._mux_video(self._encode(paletted))
        self._mux_video(self._encode(None))
        muxer, streams = self.container.format.name.split(",")[0], len(self.container.streams)
        try:
            self.container.close()
            if self.file is not None:
                self.file.close()
        except (OSError, av.FFmpegError) as exc:
            raise write_error(self.location, exc) from exc
        if self.output is not None and not self.output.direct:
            copied = [(in_stream, self.copied[in_stream.index].index) for in_stream in self.source.passthrough
                      if in_stream.index in self.copied]
            chapters = len(getattr(self.source, "chapters", None) or ())
            shape = self.stream.codec_context.sample_aspect_ratio
            tell_what_is_not_kept(self.output.temp, muxer, streams, self.source.location, chapters, copied,
                                  (self.stream.index, shape) if shape and shape != 1 else None)
        if self.output is not None and not self.output.direct and muxer in QUICKTIME_FORMATS:
            self._check_all_play()
        if self.output is not None and not self.output.direct and muxer == "apng" and self._last_shown:
            # FFmpeg's APNG writer times each frame up to the next, and the last as the one
            # before it (its final_delay, an option set before the first frame, aside)
            try:
                set_last_apng_delay(self.output.temp, self._last_shown)
            except OSError as exc:
                raise write_error(self.location, exc) from exc
        if self.output is not None:
            self.output.commit()

    def _check_all_play(self) -> None:
        """Refuse an MP4 or MOV that leaves out frames written to it: those its edit list marks
        outside the span it plays, which players and decoders drop, where the count of frames
        written (frames in == frames out) would not tell."""
        try:
            with av.open(str(self.output.temp)) as written:
                entries = written.streams[self.stream.index].index_entries
                played = sum(not entry.is_discard for entry in entries)
        except (OSError, av.FFmpegError) as exc:
            raise SrpipeError(f"cannot read back {self.location} to count its frames ({exc})") from exc
        if played != self.frames_written:
            raise SrpipeError(f"{self.frames_written} frames encoded but {played} play in {self.location} (its edit "
                              "list leaves the others out); write it as Matroska (.mkv) instead, and report it")

    def abort(self) -> None:
        if self.file is not None:
            # First: closing the container writes a trailer, which would wait forever on a
            # FIFO whose reader stopped reading; with the file closed those writes just fail.
            file, self.file = self.file, None
            try:
                file.close()
            except OSError:
                pass  # a reader that went away: nothing more to write
        if self.container is not None:
            container, self.container = self.container, None
            try:
                container.close()
            except Exception:
                pass  # the output is discarded anyway
        if self.output is not None:
            self.output.discard()
