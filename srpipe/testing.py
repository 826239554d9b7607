"""Helpers for testing srpipe and its plugins: small generated media and a fresh plugin manager."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from srpipe.plugins import make_plugin_manager

__all__ = ["damage_video", "make_huge_claim_h264", "make_huge_claim_png", "make_plugin_manager", "make_test_video",
           "make_test_image", "test_pattern"]


def test_pattern(width: int, height: int, index: int) -> np.ndarray:
    """An RGB frame with edges, gradients and motion, so upscalers have something to do."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    r = 127.5 + 127.5 * np.sin((x + 3 * index) / 3.0)
    g = 255.0 * y / max(height - 1, 1)
    b = np.where(((x // 8 + y // 8 + index) % 2) == 0, 230.0, 25.0)
    return np.stack([r, g, b], axis=-1).astype(np.uint8)


test_pattern.__test__ = False  # not a pytest test


def make_test_video(
    path: str | Path,
    *,
    width: int = 64,
    height: int = 48,
    frames: int = 12,
    pix_fmt: str = "yuv420p",
    codec: str = "libx264",
    rate: int = 25,
    pts: list[int] | None = None,
    time_base: Fraction | None = None,
    audio: bool = True,
    subtitles: bool = False,
    title: str | None = "srpipe test clip",
    rotation: int | None = None,
    color_range: int | None = None,
    codec_options: dict[str, str] | None = None,
) -> Path:
    """Write a small clip. ``pts`` (in ``time_base`` units) makes it variable-frame-rate.

    Audio is an AAC tone; subtitles (one ASS event) need a .mkv path; odd
    sizes need a codec that takes them, such as ffv1.
    """
    path = Path(path)
    container = av.open(str(path), mode="w")
    stream = container.add_stream(codec, rate=rate)
    stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
    if time_base is not None:
        stream.time_base = time_base
        stream.codec_context.time_base = time_base
    stream.options = dict(codec_options or {"preset": "ultrafast"} if codec == "libx264" else codec_options or {})
    if color_range is not None:
        stream.codec_context.color_range = color_range
    if rotation is not None:
        stream.set_display_rotation(rotation)
    if title:
        container.metadata["title"] = title
    audio_stream = container.add_stream("aac", rate=48000) if audio else None
    subtitle_stream = None
    if subtitles:
        subtitle_stream = container.add_stream("ass")
        subtitle_stream.codec_context.time_base = subtitle_stream.time_base = Fraction(1, 1000)

    for index in range(frames):
        frame = av.VideoFrame.from_ndarray(test_pattern(width, height, index), format="rgb24")
        frame = frame.reformat(format=pix_fmt)
        if color_range is not None:
            frame.color_range = color_range
        frame.pts = pts[index] if pts is not None else index
        frame.time_base = time_base or Fraction(1, rate)
        container.mux(stream.encode(frame))
    container.mux(stream.encode())

    seconds = frames / rate if pts is None else float(pts[-1] * (time_base or Fraction(1, rate))) + 1 / rate
    if audio_stream is not None:
        _write_tone(container, audio_stream, seconds)
    if subtitle_stream is not None:
        packet = av.Packet(b"0,0,Default,,0,0,0,,srpipe subtitle")
        packet.stream = subtitle_stream
        packet.time_base = Fraction(1, 1000)
        packet.pts = packet.dts = 0
        packet.duration = int(seconds * 1000)
        container.mux(packet)
    container.close()
    return path


def _write_tone(container, stream, seconds: float) -> None:
    samples_per_frame = 1024
    total = int(seconds * stream.rate)
    for start in range(0, total, samples_per_frame):
        t = (np.arange(start, start + samples_per_frame) / stream.rate).astype(np.float32)
        tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None, :]
        frame = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
        frame.sample_rate = stream.rate
        frame.pts = start
        container.mux(stream.encode(frame))
    container.mux(stream.encode())


def make_test_image(path: str | Path, *, width: int = 40, height: int = 30, mode: str = "rgb",
                    bit_depth: int = 8) -> Path:
    """Write a test image: ``mode`` is rgb, rgba, grey or greya."""
    import cv2

    rgb = test_pattern(width, height, 0).astype(np.float64)
    if bit_depth == 16:
        rgb = rgb * 257
    dtype = np.uint8 if bit_depth == 8 else np.uint16
    image = rgb[..., ::-1]
    if mode.startswith("grey"):
        image = image[..., 1]
    if mode.endswith("a"):
        alpha = np.linspace(0, np.iinfo(dtype).max, width)[None, :].repeat(height, axis=0)
        image = np.dstack([image if image.ndim == 3 else np.dstack([image] * 3), alpha])
    path = Path(path)
    ok, data = cv2.imencode(path.suffix, image.astype(dtype))
    if not ok:
        raise ValueError(f"OpenCV cannot write {path.suffix}")
    data.tofile(str(path))
    return path


def damage_video(source: str | Path, target: str | Path, frames: tuple[int, ...] = (4, 5)) -> Path:
    """Copy a clip, scrambling the second half of the given video packets (1-based)."""
    target = Path(target)
    with av.open(str(source)) as inp, av.open(str(target), mode="w") as out:
        streams = {s.index: out.add_stream_from_template(s) for s in inp.streams}
        count = 0
        for packet in inp.demux():
            if packet.dts is None:
                continue
            stream = streams[packet.stream.index]
            if packet.stream.type == "video":
                count += 1
                if count in frames:
                    data = bytearray(bytes(packet))
                    for i in range(len(data) // 4, len(data)):
                        data[i] = (data[i] * 7 + 13) & 0xFF
                    damaged = av.Packet(bytes(data))
                    damaged.pts, damaged.dts, damaged.time_base = packet.pts, packet.dts, packet.time_base
                    damaged.duration, damaged.is_keyframe = packet.duration, packet.is_keyframe
                    packet = damaged
            packet.stream = stream
            out.mux(packet)
    return target


# Hostile inputs: small files that claim huge frames ------------------------------------


class _Bits:
    """An H.264 RBSP read and written bit by bit, with Exp-Golomb codes."""

    def __init__(self, data: bytes = b""):
        self.bits = "".join(f"{byte:08b}" for byte in data)
        self.pos = 0

    def u(self, n: int) -> int:
        value = int(self.bits[self.pos:self.pos + n], 2)
        self.pos += n
        return value

    def ue(self) -> int:
        zeros = 0
        while self.bits[self.pos + zeros] == "0":
            zeros += 1
        value = int(self.bits[self.pos + zeros:self.pos + 2 * zeros + 1], 2) - 1
        self.pos += 2 * zeros + 1
        return value

    @staticmethod
    def ue_bits(value: int) -> str:
        code = f"{value + 1:b}"
        return "0" * (len(code) - 1) + code


def _unescape(nal: bytes) -> bytes:
    return nal.replace(b"\x00\x00\x03", b"\x00\x00")


def _escape(rbsp: bytes) -> bytes:
    out, zeros = bytearray(), 0
    for byte in rbsp:
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def _resize_sps(nal: bytes, width: int, height: int) -> bytes:
    """An SPS NAL unit (header byte included) that says ``width`` x ``height`` (multiples of 16)."""
    bits = _Bits(_unescape(nal[1:]))
    profile = bits.u(8)
    bits.u(16)
    bits.ue()
    if profile in (100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135):
        if bits.ue() == 3:
            bits.u(1)
        bits.ue(), bits.ue(), bits.u(1)
        if bits.u(1):
            raise ValueError("SPS with scaling matrices: not supported")
    bits.ue()
    poc_type = bits.ue()
    if poc_type == 0:
        bits.ue()
    elif poc_type == 1:
        raise ValueError("SPS with pic_order_cnt_type 1: not supported")
    bits.ue(), bits.u(1)
    start = bits.pos
    bits.ue(), bits.ue()
    rest = bits.bits[bits.pos:].rstrip("0")  # the stop bit is the last 1
    new = bits.bits[:start] + _Bits.ue_bits(width // 16 - 1) + _Bits.ue_bits(height // 16 - 1) + rest
    new += "0" * (-len(new) % 8)
    rbsp = int(new, 2).to_bytes(len(new) // 8, "big")
    return nal[:1] + _escape(rbsp)


def make_huge_claim_h264(path: str | Path, width: int = 16000, height: int = 16000) -> Path:
    """A raw H.264 stream of a few small frames whose SPS claims ``width`` x ``height``:
    a file of a few KB that a decoder would allocate gigabytes for."""
    path = Path(path)
    small = path.with_name(path.name + ".small.h264")
    make_test_video(small, width=64, height=48, frames=3, audio=False, title=None)
    data = small.read_bytes()
    small.unlink()
    out = bytearray()
    for nal in data.split(b"\x00\x00\x01")[1:]:
        nal = nal.rstrip(b"\x00")
        if nal and nal[0] & 0x1F == 7:
            nal = _resize_sps(nal, width, height)
        out += b"\x00\x00\x00\x01" + nal
    path.write_bytes(bytes(out))
    return path


def make_huge_claim_png(path: str | Path, width: int, height: int, pixels: bool = True) -> Path:
    """An RGB PNG of ``width`` x ``height`` black pixels, compressed to a few hundred KB
    (``pixels=False``: the header only, its image data missing)."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    data = b""
    if pixels:
        squeeze, row, parts = zlib.compressobj(9), bytes(1 + 3 * width), []
        for _ in range(height):
            parts.append(squeeze.compress(row))
        parts.append(squeeze.flush())
        data = chunk(b"IDAT", b"".join(parts))
    header = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    path = Path(path)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + header + data + chunk(b"IEND", b""))
    return path
