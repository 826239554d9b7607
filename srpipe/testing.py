"""Helpers for testing srpipe and its plugins: small generated media and a fresh plugin manager."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from srpipe.plugins import make_plugin_manager
from srpipe.video import scheduling_kept

__all__ = ["FixedCameraScene", "damage_video", "make_fixed_camera_clip", "make_huge_claim_h264", "make_huge_claim_png",
           "make_interlaced_clip", "make_plugin_manager", "make_test_video", "make_test_image", "make_zoom_clip",
           "person_sprite", "room_picture", "test_pattern", "zoom_frames"]


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
    with scheduling_kept():
        container.start_encoding()

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
        # Rows of zeros (a filter byte, black pixels) deflated a block of some 4 MB at a time: a
        # full flush leaves the stream byte-aligned and its history empty, so every block is the
        # first one's bytes again, and 400 megapixels take milliseconds, not seconds
        row = bytes(1 + 3 * width)
        rows = max(1, (4 << 20) // len(row))
        squeeze = zlib.compressobj(9, zlib.DEFLATED, -15)  # raw deflate: its zlib header and check below
        block = squeeze.compress(row * rows) + squeeze.flush(zlib.Z_FULL_FLUSH)
        body = block * (height // rows) + squeeze.compress(row * (height % rows)) + squeeze.flush()
        adler = ((len(row) * height % 65521) << 16) | 1  # Adler-32 of zeros: 1, and the count in the high half
        data = chunk(b"IDAT", b"\x78\xda" + body + struct.pack(">I", adler))
    header = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    path = Path(path)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + header + data + chunk(b"IEND", b""))
    return path


# Camera-like clips: a detailed room, sensor noise, a person or a zoom -----------------------


def _smooth_noise(rng: np.random.Generator, height: int, width: int, cell: int) -> np.ndarray:
    """A smooth random field (about unit deviation) varying over ``cell`` pixels."""
    import cv2

    cell = max(cell, 1)
    rows, cols = height // cell + 4, width // cell + 4
    grid = rng.standard_normal((rows, cols)).astype(np.float32)
    field = cv2.resize(grid, (cols * cell, rows * cell), interpolation=cv2.INTER_CUBIC)
    return field[cell:cell + height, cell:cell + width]


def room_picture(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A static room as a fixed camera sees it: a lit plaster wall with a window, a whiteboard
    of text, a clock and a bookshelf, a wooden desk with a monitor, keyboard, mug and papers.
    RGB, float32 in 0-255. Drawn in fractions of the frame, so any size gives the same room."""
    import cv2

    rng = np.random.default_rng(seed)
    W, H = width, height

    def px(fx: float, fy: float) -> tuple[int, int]:
        return int(round(fx * W)), int(round(fy * H))

    def line(t: float) -> int:
        return max(1, int(round(t * H)))

    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    wall = np.array([196, 186, 166], np.float32) * (1.02 - 0.1 * y / H)[..., None]
    wall += 2 * _smooth_noise(rng, H, W, H // 12)[..., None] + 0.8 * _smooth_noise(rng, H, W, H // 60)[..., None]
    desk_top = int(0.72 * H)
    grain = np.sin(2 * np.pi * (y / (0.012 * H) + 2.5 * _smooth_noise(rng, H, W, H // 8)))
    wood_light = 1 + 0.12 * grain + 0.05 * _smooth_noise(rng, H, W, H // 30)
    wood = np.array([120, 78, 44], np.float32) * wood_light[..., None]
    picture = np.where((y >= desk_top)[..., None], wood, wall)
    picture[int(0.93 * H):] *= 0.55  # the desk's front edge, in shadow
    img = np.clip(picture, 0, 255).astype(np.uint8)
    aa = cv2.LINE_AA
    font = cv2.FONT_HERSHEY_SIMPLEX

    def text(words: str, fx: float, fy: float, size: float, colour, thickness: float = 0.003) -> None:
        cv2.putText(img, words, px(fx, fy), font, size * H / 360, colour, line(thickness), aa)

    # a window: sky, far buildings with lit windows, a white frame with a cross bar
    x0, y0, x1, y1 = (*px(0.03, 0.07), *px(0.25, 0.5))
    for row in range(y0, y1):
        share = (row - y0) / max(y1 - y0, 1)
        img[row, x0:x1] = (150 + 90 * share, 190 + 50 * share, 235)
    for left in np.arange(0.03, 0.25, 0.03):
        top = 0.3 + 0.12 * rng.random()
        cv2.rectangle(img, px(left, top), px(left + 0.026, 0.5), (95, 100, 110), -1, aa)
        for wy in np.arange(top + 0.02, 0.48, 0.03):
            for wx in (left + 0.005, left + 0.016):
                lit = (235, 220, 150) if rng.random() < 0.4 else (60, 65, 80)
                cv2.rectangle(img, px(wx, wy), px(wx + 0.006, wy + 0.012), lit, -1, aa)
    cv2.rectangle(img, (x0, y0), (x1, y1), (245, 245, 240), line(0.014), aa)
    cv2.line(img, px(0.14, 0.07), px(0.14, 0.5), (245, 245, 240), line(0.01), aa)
    cv2.line(img, px(0.03, 0.28), px(0.25, 0.28), (245, 245, 240), line(0.01), aa)
    # a whiteboard with a heading, lines of notes and a bar chart
    cv2.rectangle(img, px(0.29, 0.08), px(0.5, 0.44), (236, 238, 235), -1, aa)
    cv2.rectangle(img, px(0.29, 0.08), px(0.5, 0.44), (150, 150, 155), line(0.008), aa)
    text("Q3 PLAN", 0.305, 0.14, 0.45, (30, 60, 160), 0.005)
    for n, words in enumerate(("ship v2.1 by Aug 14", "fix the 360p path", "call Dana re: demo", "budget 4,250")):
        text(words, 0.305, 0.2 + 0.045 * n, 0.3, (40, 40, 45))
    for n, height_share in enumerate((0.5, 0.8, 0.35, 0.65, 0.95)):
        left = 0.42 + 0.014 * n
        cv2.rectangle(img, px(left, 0.42 - 0.2 * height_share), px(left + 0.01, 0.42), (200, 70, 60), -1, aa)
    # a clock
    centre, radius = px(0.52, 0.14), line(0.055)
    cv2.circle(img, centre, radius, (250, 250, 245), -1, aa)
    cv2.circle(img, centre, radius, (40, 40, 40), line(0.008), aa)
    for tick in range(12):
        angle = tick * np.pi / 6
        inner = (int(centre[0] + 0.8 * radius * np.cos(angle)), int(centre[1] + 0.8 * radius * np.sin(angle)))
        outer = (int(centre[0] + 0.95 * radius * np.cos(angle)), int(centre[1] + 0.95 * radius * np.sin(angle)))
        cv2.line(img, inner, outer, (30, 30, 30), line(0.004), aa)
    cv2.line(img, centre, (centre[0] + int(0.5 * radius), centre[1] - int(0.3 * radius)), (20, 20, 20), line(0.006), aa)
    cv2.line(img, centre, (centre[0] - int(0.1 * radius), centre[1] - int(0.8 * radius)), (20, 20, 20), line(0.004), aa)
    # a bookshelf: a dark frame, three shelves of books with bands and titles on their spines
    cv2.rectangle(img, px(0.74, 0.04), px(0.97, 0.72), (70, 45, 30), -1, aa)
    palette = [(150, 40, 40), (40, 90, 150), (220, 190, 90), (60, 120, 70), (200, 200, 190), (90, 60, 120),
               (30, 30, 35), (210, 110, 50)]
    for shelf_top in (0.07, 0.29, 0.51):
        cv2.rectangle(img, px(0.755, shelf_top), px(0.955, shelf_top + 0.19), (40, 26, 18), -1, aa)
        left = 0.76
        while left < 0.94:
            width_share = 0.012 + 0.018 * rng.random()
            top = shelf_top + 0.19 * (0.05 + 0.35 * rng.random())
            colour = palette[rng.integers(len(palette))]
            right = min(left + width_share, 0.95)
            cv2.rectangle(img, px(left, top), px(right, shelf_top + 0.19), colour, -1, aa)
            band = tuple(min(255, c + 70) for c in colour)
            for fy in (top + 0.02, shelf_top + 0.17):
                cv2.line(img, px(left, fy), px(right, fy), band, line(0.004), aa)
            for fy in np.arange(top + 0.04, shelf_top + 0.15, 0.018):
                cv2.line(img, px(left + 0.3 * width_share, fy), px(right - 0.3 * width_share, fy), band, 1, aa)
            left = right + 0.002
        cv2.rectangle(img, px(0.75, shelf_top + 0.19), px(0.96, shelf_top + 0.21), (95, 62, 40), -1, aa)
    # a monitor with a window of text, a keyboard, a mug, papers
    cv2.rectangle(img, px(0.05, 0.5), px(0.27, 0.74), (25, 25, 28), -1, aa)
    cv2.rectangle(img, px(0.06, 0.515), px(0.26, 0.725), (35, 60, 95), -1, aa)
    for n in range(7):
        text("def upscale(frame): return net(frame)"[n * 3:n * 3 + 18], 0.065, 0.54 + 0.027 * n, 0.2,
             (190, 220, 190), 0.002)
    cv2.rectangle(img, px(0.145, 0.74), px(0.175, 0.78), (40, 40, 44), -1, aa)
    cv2.rectangle(img, px(0.07, 0.8), px(0.31, 0.9), (50, 50, 55), -1, aa)
    for row in range(4):
        for key in range(14):
            fx, fy = 0.075 + key * 0.0165, 0.808 + row * 0.022
            cv2.rectangle(img, px(fx, fy), px(fx + 0.013, fy + 0.016), (200, 200, 205), -1, aa)
    cv2.ellipse(img, px(0.82, 0.8), (line(0.035), line(0.012)), 0, 0, 360, (180, 40, 40), -1, aa)
    cv2.rectangle(img, px(0.82 - 0.035 * H / W, 0.72), px(0.82 + 0.035 * H / W, 0.8), (180, 40, 40), -1, aa)
    cv2.ellipse(img, px(0.82, 0.72), (line(0.035), line(0.012)), 0, 0, 360, (60, 30, 20), -1, aa)
    paper = np.array([px(0.55, 0.8), px(0.74, 0.78), px(0.76, 0.92), px(0.57, 0.94)], np.int32)
    cv2.fillPoly(img, [paper], (245, 244, 238), aa)
    for n in range(6):
        cv2.line(img, px(0.57, 0.82 + 0.018 * n), px(0.72 + 0.02 * rng.random(), 0.805 + 0.018 * n),
                 (90, 90, 100), 1, aa)

    lit = img.astype(np.float32)
    lit *= (0.8 + 0.3 * np.exp(-((x - 0.2 * W) ** 2 + (y + 0.2 * H) ** 2) / (0.9 * W) ** 2))[..., None]
    lit += 1 * rng.standard_normal((H, W, 1), dtype=np.float32)  # the surfaces' fine grain (static)
    return np.clip(lit, 0, 255)


def person_sprite(height: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A person from the waist up, ``height`` pixels tall and 0.6 of that wide: a plaid shirt
    with arms and folds, a neck, a shaded face with eyes and mouth, hair. Returns the RGB
    premultiplied by alpha (float32, 0-255) and alpha (0-1)."""
    import cv2

    rng = np.random.default_rng(seed + 1)
    H = height
    W = max(int(0.6 * H), 2)

    def px(fx: float, fy: float) -> tuple[int, int]:
        return int(round(fx * W)), int(round(fy * H))

    aa = cv2.LINE_AA
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    period = max(0.06 * H, 3)
    checks = (np.sin(2 * np.pi * x / period) > 0.5).astype(np.float32) + (np.sin(2 * np.pi * y / period) > 0.5)
    fine = (np.sin(2 * np.pi * (x + y) / max(0.012 * H, 2)) > 0.7).astype(np.float32)
    shirt = np.array([40, 70, 140], np.float32) + checks[..., None] * np.array([50, 20, 10], np.float32)
    shirt += 25 * fine[..., None]
    shirt *= (1 - 0.35 * (2 * x / W - 1) ** 4)[..., None]  # folds: darker towards the sides
    torso = np.zeros((H, W), np.uint8)
    outline = [px(0.03, 0.43), px(0.18, 0.36), px(0.82, 0.36), px(0.97, 0.43), px(1.0, 1.0), px(0.0, 1.0)]
    cv2.fillPoly(torso, [np.array(outline, np.int32)], 255, aa)
    img = np.zeros((H, W, 3), np.uint8)
    alpha = torso.copy()
    img[:] = np.clip(shirt, 0, 255).astype(np.uint8)
    for fx in (0.2, 0.8):  # where the arms meet the body
        cv2.line(img, px(fx, 0.46), px(fx + (0.02 if fx < 0.5 else -0.02), 0.98), (15, 25, 55), max(1, H // 150), aa)
    cv2.line(img, px(0.5, 0.37), px(0.5, 0.6), (220, 220, 225), max(1, H // 200), aa)  # the placket
    skin, hair = (205, 160, 130), (55, 38, 28)
    for shape in (img, alpha):
        colour = skin if shape is img else 255
        cv2.rectangle(shape, px(0.41, 0.25), px(0.59, 0.38), colour, -1, aa)
        cv2.ellipse(shape, px(0.5, 0.17), (max(1, int(0.13 * H)), max(1, int(0.115 * H))), 90, 0, 360, colour, -1, aa)
        cv2.ellipse(shape, px(0.5, 0.15), (max(1, int(0.12 * H)), max(1, int(0.1 * H))), 0, 180, 360,
                    hair if shape is img else 255, -1, aa)
    face = img.astype(np.float32)
    face *= (1 - 0.18 * np.clip((x - 0.5 * W) / (0.2 * W), 0, 1))[..., None]  # light from the left
    img = np.clip(face, 0, 255).astype(np.uint8)
    for fx in (0.43, 0.57):
        cv2.ellipse(img, px(fx, 0.17), (max(1, int(0.012 * H)), max(1, int(0.008 * H))), 0, 0, 360, (35, 25, 20),
                    -1, aa)
        cv2.line(img, px(fx - 0.035, 0.145), px(fx + 0.035, 0.145), hair, max(1, H // 250), aa)
    cv2.line(img, px(0.5, 0.18), px(0.49, 0.22), (170, 120, 95), max(1, H // 300), aa)
    cv2.ellipse(img, px(0.5, 0.245), (max(1, int(0.025 * H)), max(1, int(0.008 * H))), 0, 0, 180, (150, 70, 70),
                max(1, H // 300), aa)
    strands = rng.standard_normal((H, W)).astype(np.float32)
    strands = cv2.GaussianBlur(strands, (1, 0), sigmaX=0.1, sigmaY=max(0.01 * H, 1))
    hair_mask = (np.abs(img.astype(np.int16) - hair).sum(axis=-1) < 30)
    rgb = img.astype(np.float32)
    rgb[hair_mask] += 40 * strands[hair_mask, None]
    a = alpha.astype(np.float32)[..., None] / 255
    return np.clip(rgb, 0, 255) * a, a[..., 0]


class FixedCameraScene:
    """What a webcam or a phone on a stand films: :func:`room_picture` that never moves, a
    person (:func:`person_sprite`, 0.85 of the frame's height) walking slowly to and fro and
    swaying, and fresh Gaussian sensor noise of ``noise`` codes on every frame."""

    def __init__(self, width: int, height: int, rate: float = 30, noise: float = 1.75, seed: int = 0):
        self.width, self.height, self.rate, self.noise, self.seed = width, height, rate, noise, seed
        self.room = room_picture(width, height, seed)
        self.sprite, self.alpha = person_sprite(max(int(0.85 * height), 4), seed)

    def subject_transform(self, index: int) -> np.ndarray:
        """The 2x3 matrix that puts the sprite in frame ``index``: turned about its feet by the sway,
        moved across by the walk, lifted by the steps."""
        import cv2

        t = index / self.rate
        sprite_h, sprite_w = self.alpha.shape
        walk = self.width * (0.5 + 0.17 * np.sin(2 * np.pi * t / 6))
        step = 0.01 * self.height * np.sin(2 * np.pi * t / 0.9)
        matrix = cv2.getRotationMatrix2D((sprite_w / 2, sprite_h), 3 * np.sin(2 * np.pi * t / 1.9), 1.0)
        matrix[:, 2] += (walk - sprite_w / 2, 1.04 * self.height + step - sprite_h)
        return matrix

    def subject_box(self, index: int) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) of the frame that the person covers in frame ``index``."""
        sprite_h, sprite_w = self.alpha.shape
        corners = np.array([[0, 0, 1], [sprite_w, 0, 1], [0, sprite_h, 1], [sprite_w, sprite_h, 1]], np.float64)
        points = corners @ self.subject_transform(index).T
        left, top = np.floor(points.min(axis=0)).astype(int)
        right, bottom = np.ceil(points.max(axis=0)).astype(int)
        return max(left, 0), max(top, 0), min(right, self.width), min(bottom, self.height)

    def frame(self, index: int) -> np.ndarray:
        """Frame ``index`` as RGB uint8 (the same every time it is asked for)."""
        import cv2

        size = (self.width, self.height)
        matrix = self.subject_transform(index)
        person = cv2.warpAffine(self.sprite, matrix, size, flags=cv2.INTER_LINEAR)
        alpha = cv2.warpAffine(self.alpha, matrix, size, flags=cv2.INTER_LINEAR)[..., None]
        picture = self.room * (1 - alpha) + person
        return _with_sensor_noise(picture, self.noise, (self.seed, index))


def _with_sensor_noise(picture: np.ndarray, sigma: float, seed) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noisy = picture + sigma * rng.standard_normal(picture.shape, dtype=np.float32)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def _write_camera_clip(path: str | Path, frames, width: int, height: int, rate: int, crf: int, preset: str) -> Path:
    """RGB frames encoded as a camera's clip would be: H.264 (x264 at ``crf``), 4:2:0, no audio."""
    path = Path(path)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": str(crf), "preset": preset}
        for index, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
            frame.pts, frame.time_base = index, Fraction(1, rate)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def make_fixed_camera_clip(path: str | Path, *, width: int = 640, height: int = 360, frames: int = 120,
                           rate: int = 30, crf: int = 23, preset: str = "medium", noise: float = 1.75,
                           seed: int = 0) -> Path:
    """Write a fixed-camera clip (:class:`FixedCameraScene`) as H.264 at x264's ``crf`` and
    ``preset`` (the defaults about what a phone or webcam gives); even sizes."""
    scene = FixedCameraScene(width, height, rate, noise, seed)
    return _write_camera_clip(path, (scene.frame(i) for i in range(frames)), width, height, rate, crf, preset)


def zoom_frames(width: int, height: int, frames: int, step: float = 1.012, noise: float = 1.75, seed: int = 0):
    """RGB uint8 frames of a room with a person in it (the fixed camera's scene, drawn at twice
    the size) under a steady zoom about its centre by ``step`` a frame, in from 1x to 2x and back
    out again: every pixel but the centre's moves on every frame."""
    import cv2

    scene = FixedCameraScene(2 * width, 2 * height, noise=0, seed=seed)
    still = cv2.GaussianBlur(scene.frame(0).astype(np.float32), (0, 0), 0.7)  # no aliasing at 1x
    frames_per_way = np.log(2) / np.log(step)
    for index in range(frames):
        way = (index / frames_per_way) % 2
        zoom = 2 ** (way if way <= 1 else 2 - way)
        source_step = 2 / zoom  # source pixels per output pixel
        # output pixel centres (x + 0.5) map to the source about its centre (width, height)
        matrix = np.array([[source_step, 0, width + (0.5 - width / 2) * source_step - 0.5],
                           [0, source_step, height + (0.5 - height / 2) * source_step - 0.5]], np.float32)
        view = cv2.warpAffine(still, matrix, (width, height), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP)
        yield _with_sensor_noise(view, noise, (seed, index))


def make_zoom_clip(path: str | Path, *, width: int = 640, height: int = 360, frames: int = 120, rate: int = 30,
                   crf: int = 23, preset: str = "medium", step: float = 1.012, noise: float = 1.75,
                   seed: int = 0) -> Path:
    """Write a full-motion clip (:func:`zoom_frames`) as :func:`make_fixed_camera_clip` does."""
    return _write_camera_clip(path, zoom_frames(width, height, frames, step, noise, seed), width, height, rate, crf,
                              preset)


def make_interlaced_clip(path: str | Path, fields, *, rate: int = 25, crf: int = 10, flagged: bool = True,
                         codec_options: dict[str, str] | None = None) -> Path:
    """Write interlaced H.264 as a DV or TV camera films it: each frame woven from two pictures
    of ``fields`` (RGB uint8, taken a field apart, 2 x ``rate`` a second), the first on the odd
    lines (the bottom field, which x264 codes first, as DV does), the second on the even lines;
    chroma likewise, line by line. ``flagged=False`` codes the same frames as progressive ones,
    as interlaced video badly converted is. An odd count leaves the last picture out.
    ``codec_options``: more x264 options (``{"g": "10"}``...)."""
    path = Path(path)
    fields = iter(fields)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=rate, options={"crf": str(crf), **(codec_options or {})})
        stream.pix_fmt = "yuv420p"
        if flagged:
            stream.codec_context.flags |= av.codec.context.Flags.interlaced_dct | av.codec.context.Flags.interlaced_me
        for index, (first, second) in enumerate(zip(fields, fields)):
            if index == 0:
                stream.height, stream.width = first.shape[:2]
            planes = [av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p").to_ndarray()
                      for rgb in (first, second)]
            woven = planes[1].copy()
            height = first.shape[0]
            woven[1:height:2] = planes[0][1:height:2]  # luma rows, then the two chroma planes' rows
            chroma = woven[height:].reshape(2, height // 2, -1)  # a view: U and V of half the rows
            chroma[:, 1::2] = planes[0][height:].reshape(2, height // 2, -1)[:, 1::2]
            frame = av.VideoFrame.from_ndarray(woven, format="yuv420p")
            frame.pts, frame.time_base = index, Fraction(1, rate)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path
