"""Deinterlacing decoded frames before they are upscaled.

An interlaced frame (DV and DVD, broadcast TV, older camcorders) holds two fields taken 1/50
or 1/60 s apart, on alternate lines. Upscaled as one picture, the two fields blur into each
other and their combing is magnified with the rest. FFmpeg's ``bwdif`` (the w3fdif and yadif
deinterlacers combined) makes each frame a progressive one from its first field, with the
fields around it, one frame out per frame in, so that the frame count, rate and timestamps
stay as they were.
"""

from __future__ import annotations

from fractions import Fraction

import av

from srpipe.errors import SrpipeError

AUTO, ALL, OFF = "auto", "all", "off"
SMALLEST = 4  # the least side of a plane bwdif takes (chroma planes are half the frame in 4:2:0)


class Deinterlacer:
    """Decoded frames through ``bwdif``, in order, one frame later than they come in.

    ``every_frame``: deinterlace every frame, for interlaced video its file does not mark as
    such; else only the frames the decoder flags as interlaced (the others pass unchanged).
    A change of size or pixel format starts a new filter, after the frames of the old one.
    """

    def __init__(self, every_frame: bool = False):
        self.every_frame = every_frame
        self.count = 0  # frames deinterlaced: those marked interlaced, or every one
        self._graph: av.filter.Graph | None = None
        self._key: tuple | None = None
        self._time_base: Fraction | None = None

    def frames(self, frame: av.VideoFrame) -> list[av.VideoFrame]:
        """The progressive frames that are ready after ``frame``: none at first, then one."""
        key = (frame.width, frame.height, frame.format.name)
        ready = self.flush() if self._graph is not None and key != self._key else []
        if min(min(plane.width, plane.height) for plane in frame.planes) < SMALLEST:  # fields of a line or two
            return ready + [frame]
        try:
            if self._graph is None:
                self._start(frame, key)
            self._graph.vpush(frame)
            self.count += self.every_frame or frame.interlaced_frame
        except av.FFmpegError as exc:
            raise SrpipeError(f"the deinterlacer refused a {frame.width}x{frame.height} {frame.format.name} frame "
                              f"({exc}); rerun with --deinterlace off") from exc
        return ready + self._pull()

    def flush(self) -> list[av.VideoFrame]:
        """The frames still held (at the end of the stream, or before a change of size)."""
        if self._graph is None:
            return []
        self._graph.vpush(None)
        ready = self._pull()
        self._graph = None
        return ready

    def _start(self, frame: av.VideoFrame, key: tuple) -> None:
        self._time_base = Fraction(frame.time_base) if frame.time_base is not None else Fraction(1, 90000)
        graph = av.filter.Graph()
        source = graph.add_buffer(width=frame.width, height=frame.height, format=frame.format.name,
                                  time_base=self._time_base)
        bwdif = graph.add("bwdif", f"mode=send_frame:parity=auto:deint={'all' if self.every_frame else 'interlaced'}")
        sink = graph.add("buffersink")
        source.link_to(bwdif)
        bwdif.link_to(sink)
        graph.configure()
        self._graph, self._key = graph, key

    def _pull(self) -> list[av.VideoFrame]:
        ready = []
        while True:
            try:
                frame = self._graph.vpull()
            except (av.BlockingIOError, av.EOFError):
                return ready
            # bwdif counts time in half its input's units (it can send a frame per field): back to the input's
            if frame.time_base is not None:
                unit = Fraction(frame.time_base) / self._time_base
                if frame.pts is not None:
                    frame.pts = round(frame.pts * unit)
                frame.duration = round(frame.duration * unit)
            frame.time_base = self._time_base
            ready.append(frame)
