"""Plane resizing on the CPU: FFmpeg's ``scale`` filter (libswscale) for limited-range video
(the classical upscalers' luma, the chroma) and for every shrink to a target size; OpenCV to
enlarge full-range planes and alpha."""

from __future__ import annotations

import functools
import threading
from fractions import Fraction
from typing import Iterator

import numpy as np

from srpipe.memory import row_bands

# srpipe's kernels in the scale filter's terms: Keys' cubic with a = -0.75 (B = 0, C = 0.75,
# as OpenCV's INTER_CUBIC) and Lanczos with a = 4 (as OpenCV's INTER_LANCZOS4)
SWSCALE_FLAGS = {"bicubic": "bicubic:param0=0:param1=0.75", "lanczos": "lanczos:param0=4"}
OPENCV_INTERPOLATIONS = {"bicubic": "INTER_CUBIC", "lanczos": "INTER_LANCZOS4"}
SWSCALE_MIN_SIDE = 6  # below it swscale's bicubic drops taps: 2-4-row planes came out up to 15 levels off
GRAY_FORMATS = {8: "gray", 9: "gray9le", 10: "gray10le", 12: "gray12le", 14: "gray14le", 16: "gray16le"}


def cubic_weight(x: np.ndarray, a: float = -0.75) -> np.ndarray:
    """Keys' cubic convolution kernel, as OpenCV uses it (srpipe's bicubic)."""
    x = np.abs(x)
    near = ((a + 2) * x - (a + 3)) * x * x + 1
    far = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return np.where(x <= 1, near, np.where(x < 2, far, 0.0))


def _scale_graph(size: tuple[int, int], out_size: tuple[int, int], pix_fmt: str, options: str):
    """A configured filter graph of FFmpeg's ``scale`` filter with ``options``, on one thread."""
    import av

    graph = av.filter.Graph()
    source = graph.add_buffer(width=size[0], height=size[1], format=pix_fmt, time_base=Fraction(1, 25))
    scaler = graph.add("scale", f"{out_size[0]}:{out_size[1]}:{options}:threads=1")
    source.link_to(scaler)
    scaler.link_to(graph.add("buffersink"))
    graph.configure()
    return graph


class PlaneScaler:
    """Planes of one size and bit depth resized by FFmpeg's ``scale`` filter on one thread,
    as ``ffmpeg -vf scale=W:H:flags=...`` resizes the luma of a clip. Not for concurrent use.

    It resizes faster than OpenCV's kernels on one thread (docs/design-notes.md). swscale
    clips its intermediate after the horizontal pass, so where the kernel overshoots past the
    format's range it parts from the exact kernel: limited-range video (headroom above 235)
    stays within 1-2 levels of it, 0/255 text is up to 12 off and full-swing noise up to 29,
    which is why full-range planes are resized with OpenCV.
    """

    def __init__(self, size: tuple[int, int], out_size: tuple[int, int], bit_depth: int, method: str):
        import av  # here: a still image (OpenCV resizes its full-range planes) runs without PyAV

        from srpipe.video import plane_view

        if bit_depth not in GRAY_FORMATS:
            raise ValueError(f"no {bit_depth}-bit gray format for FFmpeg's scale filter")
        width, height = size
        self.settings = (size, out_size, bit_depth, method)
        self.format = GRAY_FORMATS[bit_depth]
        self.graph = _scale_graph(size, out_size, self.format, f"flags={SWSCALE_FLAGS[method]}")
        self._frame_of, self._view = av.VideoFrame.from_ndarray, plane_view
        self._blank = functools.partial(av.VideoFrame, width, height, self.format)  # no cycle: freed with its thread
        self.dtype = np.dtype(np.uint8 if bit_depth == 8 else np.uint16)

    def resize(self, plane: np.ndarray, out: np.ndarray) -> None:
        """``plane`` (uint8 for 8-bit, else uint16) resized into ``out``."""
        self.graph.push(self._frame_of(plane, format=self.format))
        out[...] = self._view(self.graph.pull().planes[0], plane.dtype)

    def input_frame(self):
        """A frame of the input size for :meth:`resized`, and a writable view of its samples."""
        frame = self._blank()
        return frame, self._view(frame.planes[0], self.dtype)

    def resized(self, frame) -> np.ndarray:
        """``frame`` (from :meth:`input_frame`) resized: a view of FFmpeg's frame, not a copy."""
        self.graph.push(frame)
        return self._view(self.graph.pull().planes[0], self.dtype)


class ChromaScaler:
    """The chroma planes of limited-range frames of one size and format resized as FFmpeg's
    ``scale`` filter resizes the whole frame with the chroma sited (``in_h_chr_pos``,
    ``in_v_chr_pos`` and their ``out_`` twins) as ``siting`` says (:func:`chroma_positions`). The
    luma it resizes beside them is not read: about three times the cost of resizing the two planes
    alone, less than loading OpenCV to move them (a classical run loads none). Not for concurrent use."""

    def __init__(self, size: tuple[int, int], out_size: tuple[int, int], fmt, siting: str = "left"):
        import av

        from srpipe.video import plane_view

        across, down = chroma_positions(siting)
        options = f"flags={SWSCALE_FLAGS['bicubic']}:in_h_chr_pos={across}:out_h_chr_pos={across}"
        if fmt.chroma_shift[1]:  # swscale's default for rows not subsampled: none to give
            options += f":in_v_chr_pos={down}:out_v_chr_pos={down}"
        self.graph = _scale_graph(size, out_size, fmt.name, options)
        self.frame = av.VideoFrame(*size, fmt.name)
        self._view, self.fmt = plane_view, fmt

    def resize(self, chroma) -> list[np.ndarray]:
        """The two chroma planes, resized (new arrays)."""
        for plane, samples in zip(self.frame.planes[1:], chroma):
            self._view(plane, self.fmt.dtype)[...] = samples
        self.graph.push(self.frame)
        return [np.minimum(self._view(plane, self.fmt.dtype), self.fmt.max_value)
                for plane in self.graph.pull().planes[1:]]


def chroma_positions(siting: str) -> tuple[int, int]:
    """Where a subsampled chroma sample lies (FFmpeg's name of it, :data:`srpipe.frames.CHROMA_LOCATIONS`)
    within the pair of luma samples it covers, across and down, in 256ths of a luma sample from the
    first: 0 on the first, 128 between them, 256 on the second (the ``scale`` filter's ``*_chr_pos``)."""
    across = 0 if siting.endswith("left") else 128
    down = 0 if siting.startswith("top") else 256 if siting.startswith("bottom") else 128
    return across, down


def resize_chroma(chroma, size: tuple[int, int], out_size: tuple[int, int], fmt, full_range: bool,
                  siting: str = "left") -> list[np.ndarray]:
    """The chroma planes of a frame of ``size`` (its luma's (width, height)) in the layout
    ``fmt`` (:class:`srpipe.frames.PlaneFormat`) resized for a luma of ``out_size``, where they lie
    (``siting``, :func:`chroma_positions`).

    :func:`resize_plane` takes each sample as centred on its block of luma, as JPEG and MJPEG
    place chroma ("center"). MPEG-2, H.264, HEVC, VP9 and AV1 place a horizontally subsampled
    chroma sample on the first luma sample of its pair ("left", their default): a quarter of an
    input chroma sample left of the centre, and so a quarter of an output sample left of the
    output's. Resized by s, output sample m is then what the centred resize gives at m + (s - 1) / 4:
    at x2, half an output luma pixel across, where the colour landed to one side of the luma. Down,
    chroma on the first row of its pair ("top...": UHD and HDR video's "topleft") is moved so too,
    and on the second ("bottom...") the other way. Limited-range video goes through FFmpeg's
    ``scale`` so sited (:class:`ChromaScaler`); full range, and planes too small for swscale,
    through :func:`resize_plane` (OpenCV) and then Keys' kernel at those offsets (within 2 levels
    of FFmpeg's, where both apply)."""
    width, height = fmt.chroma_size(*out_size)
    # Where the samples lie in their pairs, and so the output samples to move by, across and down, from
    # where the centred resize puts them (none across or down where the chroma is not subsampled)
    across, down = (position if shift else 128 for position, shift in zip(chroma_positions(siting), fmt.chroma_shift))
    moves = [(128 - position) / 512 * (new / old - 1)
             for position, new, old in ((across, width, chroma[0].shape[1]), (down, height, chroma[0].shape[0]))]
    if moves == [0.0, 0.0]:
        return [resize_plane(p, width, height, fmt.max_value, full_range=full_range) for p in chroma]
    large = min(min(p.shape) for p in chroma) >= SWSCALE_MIN_SIDE
    if not full_range and large:
        return _kept(ChromaScaler, size, out_size, fmt, siting).resize(chroma)
    import cv2  # loaded already: resize_plane takes these planes through OpenCV

    if not large:  # a move after the resize smears a plane of a few rows: the sited kernel itself
        return [_sited_cubic(plane, width, height, across, down, fmt.max_value) for plane in chroma]

    def kernel(move):  # Keys' taps (2 a side) around the moved position, and the anchor
        reach = int(np.floor(abs(move))) + 2
        return cubic_weight(move - np.arange(-reach, reach + 1)).astype(np.float32), reach

    (across_taps, across_anchor), (down_taps, down_anchor) = kernel(moves[0]), kernel(moves[1])
    planes = []
    for plane in chroma:
        resized = resize_plane(plane, width, height, fmt.max_value, full_range=full_range)
        if moves[1] == 0:  # across only (H.264's default): one pass
            moved = cv2.filter2D(resized, -1, across_taps[None, :], anchor=(across_anchor, 0),
                                 borderType=cv2.BORDER_REPLICATE)
        else:  # both ways in one call, rounded once
            moved = cv2.sepFilter2D(resized, -1, across_taps, down_taps, anchor=(across_anchor, down_anchor),
                                    borderType=cv2.BORDER_REPLICATE)
        planes.append(np.minimum(moved, fmt.max_value, out=moved))
    return planes


def _sited_cubic(plane: np.ndarray, width: int, height: int, across: int, down: int, max_value: int) -> np.ndarray:
    """``plane`` resized to (height, width) by Keys' kernel (OpenCV's cubic) with its samples at
    ``across`` and ``down`` (:func:`chroma_positions`): output sample m of a resize by s reads the
    input at (m + o) / s - o, o the sample's offset from its pair's first luma sample in chroma samples."""
    import cv2

    def positions(count, old, position):
        offset = position / 512 + 0.25  # 0.25 on the first luma sample, 0.5 between, 0.75 on the second
        return ((np.arange(count) + offset) * old / count - offset).astype(np.float32)

    xs, ys = positions(width, plane.shape[1], across), positions(height, plane.shape[0], down)
    out = np.empty((height, width), plane.dtype)
    # OpenCV's remap takes sides under 32767: a plane of a few rows can be far longer (a strip, a
    # tall screenshot), so it goes in bands, each reading the input rows and columns its taps reach
    for rows in _bands(ys, plane.shape[0]):
        for cols in _bands(xs, plane.shape[1]):
            top, left = rows[1].start, cols[1].start
            x, y = np.meshgrid(xs[cols[0]] - left, ys[rows[0]] - top)
            out[rows[0], cols[0]] = cv2.remap(plane[rows[1], cols[1]], x, y, cv2.INTER_CUBIC,
                                              borderMode=cv2.BORDER_REPLICATE)
    return np.minimum(out, max_value, out=out)


REMAP_BAND = 8192  # output samples a side in one remap call, well under OpenCV's limit (SHRT_MAX)


def _bands(positions: np.ndarray, length: int) -> Iterator[tuple[slice, slice]]:
    """(output slice, input slice) bands along one side for :func:`_sited_cubic`: the input slice
    holds every sample the cubic taps of its outputs read (two a side), so that inside the plane
    the band's output is the whole plane's, and meets the plane's edge where they reach it."""
    band = max(1, min(REMAP_BAND, int(REMAP_BAND * len(positions) / max(length, 1))))
    for start in range(0, len(positions), band):
        stop = min(start + band, len(positions))
        first = max(0, int(np.floor(positions[start:stop].min())) - 2)
        last = min(length, int(np.floor(positions[start:stop].max())) + 3)
        yield slice(start, stop), slice(first, last)


def fill_hidden_colour(planes, alpha: np.ndarray, chroma_shift: tuple[int, int] | None) -> tuple[np.ndarray, ...]:
    """The colour planes of a picture with ``alpha`` (at the luma's size), their fully transparent
    samples given the value of the nearest visible one; the visible ones unchanged.

    What lies under alpha 0 is never seen, and is often black or left over: resized with its
    visible neighbours it would mix into the visible edge, a dark ring round a white logo over
    a light page, or a tint. So it takes the edge's own colour first, for every upscaler alike.
    A subsampled chroma sample is hidden where every luma pixel it covers is."""
    hidden = alpha == 0
    if not hidden.any() or hidden.all():
        return tuple(planes)
    plan = _fill_plan(hidden, "luma")
    out = [_filled(planes[0], plan)]
    if len(planes) > 1:
        if chroma_shift != (0, 0):  # the share of each chroma sample's luma pixels that are hidden: all of them
            import cv2

            size = planes[1].shape[::-1]
            chroma_hidden = cv2.resize(hidden.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 1 - 1e-6
            plan = _fill_plan(chroma_hidden, "chroma")
        out += [_filled(plane, plan) for plane in planes[1:]]
    return tuple(out)


_fill_plans = threading.local()  # this thread's last plan of each kind (upscale threads run one stream each)


def _fill_plan(hidden: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(the hidden samples, the visible sample each takes its value from), as flat indices, or None
    where nothing is hidden. Kept for the next frame: a video's transparency (a logo, a title's
    box) often stays as it was, and the distance transform is most of the cost."""
    kept = getattr(_fill_plans, kind, None)
    if kept is not None and kept[0].shape == hidden.shape and np.array_equal(kept[0], hidden):
        return kept[1]
    plan = None
    if hidden.any():
        import cv2

        # Every sample's nearest visible one (near enough: the 3x3 mask), as its label; the visible ones
        # are labelled 1, 2, ... in the order of the rows
        _, labels = cv2.distanceTransformWithLabels(hidden.view(np.uint8), cv2.DIST_L2, 3,
                                                    labelType=cv2.DIST_LABEL_PIXEL)
        targets = np.flatnonzero(hidden).astype(np.int32)  # half the memory of NumPy's indices
        plan = targets, np.flatnonzero(~hidden).astype(np.int32)[labels.ravel()[targets] - 1]
    setattr(_fill_plans, kind, (hidden, plan))
    return plan


def _filled(plane: np.ndarray, plan: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
    if plan is None:
        return plane
    targets, sources = plan
    out = plane.copy()
    out.ravel()[targets] = plane.ravel()[sources]
    return out


def resize_plane(plane: np.ndarray, width: int, height: int, max_value: int, method: str = "bicubic",
                 full_range: bool = True) -> np.ndarray:
    """Resize one 2-D plane to (height, width), clipped to ``max_value``. A limited-range plane
    (``full_range=False``: video chroma, with headroom for the kernel's overshoot) goes through
    swscale on this thread, which is faster there and spares a video run loading OpenCV; a
    full-range one through OpenCV, exact where swscale clips (:class:`PlaneScaler`), and so does
    a plane under ``SWSCALE_MIN_SIDE`` samples a side, for which swscale shortens its kernel.
    A full-range plane that shrinks on either side (a target size narrower or shorter than the
    input's chroma) goes through :func:`shrink_plane`, which antialiases where OpenCV does not
    (the bicubic kernel, on planes of at least ``SWSCALE_MIN_SIDE`` samples a side)."""
    bit_depth = int(max_value).bit_length()
    swscale_fits = bit_depth in GRAY_FORMATS and min(plane.shape) >= SWSCALE_MIN_SIDE
    if full_range and swscale_fits and method == "bicubic" and (width < plane.shape[1] or height < plane.shape[0]):
        return shrink_plane(plane, width, height, max_value, full_range=True)  # OpenCV's cubic would alias
    if not full_range and swscale_fits:
        out = _swscale(plane, width, height, bit_depth, method)
        if max_value < (1 << bit_depth) - 1:
            np.minimum(out, max_value, out=out)
        return out
    import cv2  # slow to load: only where a full-range plane needs it

    out = cv2.resize(plane, (width, height), interpolation=getattr(cv2, OPENCV_INTERPOLATIONS[method]))
    if max_value < np.iinfo(out.dtype).max:
        np.minimum(out, max_value, out=out)
    return out


_scalers = threading.local()  # scalers are not for concurrent use: one set per thread


def _kept(kind, *settings):
    """This thread's ``kind(*settings)`` (a PlaneScaler or ChromaScaler), made once."""
    cache = _scalers.__dict__.setdefault("by_settings", {})
    key = (kind, *settings)
    if key not in cache:
        if len(cache) > 8:  # sizes change only between files
            cache.clear()
        cache[key] = kind(*settings)
    return cache[key]


def _scaler(size: tuple[int, int], out_size: tuple[int, int], bit_depth: int, method: str = "bicubic") -> PlaneScaler:
    return _kept(PlaneScaler, size, out_size, bit_depth, method)


def _swscale(plane: np.ndarray, width: int, height: int, bit_depth: int, method: str = "bicubic") -> np.ndarray:
    """``plane`` resized to (height, width) by this thread's scaler for those settings."""
    out = np.empty((height, width), plane.dtype)
    _scaler((plane.shape[1], plane.shape[0]), (width, height), bit_depth, method).resize(
        np.ascontiguousarray(plane), out)
    return out


def shrink_plane(plane: np.ndarray, width: int, height: int, max_value: int, full_range: bool = False) -> np.ndarray:
    """Resize one 2-D plane down to (height, width) on at least one side with FFmpeg's bicubic
    (srpipe's Keys kernel, a = -0.75), which swscale widens by the ratio when it shrinks, so
    that nothing aliases: what the model's output goes through at fractional scales and
    target sizes. Of the kernels measured (scripts/eval_fractional.py) it kept the most of the
    model's gain: 0.7 dB more than OpenCV's cubic, which does not antialias, and 1.1 dB more than
    OpenCV's area average at x1.5 after ESPCN x2 on Set5.

    Limited-range planes have headroom for the kernel's overshoot and go through swscale at
    their own depth. Full-range planes (images, full-range video) would overshoot the range,
    which swscale clips between its two passes: they are moved into 16-bit samples with a
    quarter of the range spare below and half above, resized there, and moved back.
    """
    bit_depth = int(max_value).bit_length()
    if not full_range and bit_depth in GRAY_FORMATS:
        return _swscale(plane, width, height, bit_depth)
    shift = 14 - bit_depth  # samples as 14-bit values, offset by 2**14
    scaler = _scaler((plane.shape[1], plane.shape[0]), (width, height), 16)
    frame, wide = scaler.input_frame()
    # A band at a time, from the plane into FFmpeg's frame and from its output into ours: no
    # whole-size copies beyond those two frames (a 12 MP photo's x4 output is 384 MB a copy).
    for rows in row_bands(*plane.shape):
        band = plane[rows].astype(np.uint16)
        wide[rows] = ((band << shift) if shift >= 0 else (band >> -shift)) + (1 << 14)
    resized = scaler.resized(frame)
    del frame, wide
    out = np.empty((height, width), plane.dtype)
    for rows in row_bands(height, width):
        back = resized[rows].astype(np.int32) - (1 << 14)
        back = ((back + (1 << (shift - 1))) >> shift) if shift > 0 else (back << -shift)
        out[rows] = np.clip(back, 0, max_value)
    return out
