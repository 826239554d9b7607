"""Frames for an encoder that writes a palette of 256 colours (GIF): each frame gets its own,
chosen from its colours, as FFmpeg's ``palettegen`` (``stats_mode=single``) and ``paletteuse``
(``new=1``, dithered) give it; a transparent colour is kept where the frame has alpha.

A palette for each frame, not one for the whole clip: frames stream through, and a clip whose
colours change (a cut, a fade) keeps them. The plain conversion FFmpeg's encoder takes
otherwise, 3 bits of red and green and 2 of blue for every picture, bands every gradient."""

from __future__ import annotations

from fractions import Fraction

import av


class PaletteFrames:
    """Push frames of ``width`` x ``height`` (any format, converted to RGB, with ``alpha`` to
    RGBA), get them back as pal8 frames with their timestamps."""

    def __init__(self, width: int, height: int, alpha: bool, time_base: Fraction):
        self.format = "rgba" if alpha else "rgb24"
        graph = self.graph = av.filter.Graph()
        source = graph.add_buffer(width=width, height=height, format=self.format, time_base=time_base)
        split = graph.add("split")
        choose, use = graph.add("palettegen", "stats_mode=single"), graph.add("paletteuse", "new=1")
        sink = graph.add("buffersink")
        source.link_to(split)
        split.link_to(choose, 0, 0)
        split.link_to(use, 1, 0)
        choose.link_to(use, 0, 1)
        use.link_to(sink)
        graph.configure()

    def frames(self, frame: av.VideoFrame | None) -> list[av.VideoFrame]:
        """The pal8 frames ready after ``frame`` went in; None: the end, every frame held."""
        self.graph.push(frame if frame is None or frame.format.name == self.format else
                        frame.reformat(format=self.format))
        ready = []
        while True:
            try:
                ready.append(self.graph.pull())
            except (av.BlockingIOError, av.EOFError):
                return ready
