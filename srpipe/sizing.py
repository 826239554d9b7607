"""Output sizes that are not a whole multiple of the input: fractional scales (``-s 1.5``) and
target sizes (``--width``/``--height``).

The model runs at the smallest scale it has that reaches the size, then its luma output is
resized down to the exact size (``srpipe.resize.shrink_plane``: FFmpeg's bicubic, antialiased);
the chroma is resized from the input's straight to the output's chroma size, as at whole
scales. Sizes srpipe computes (from a fractional scale, or the side that keeps the aspect
ratio) are rounded to the nearest multiple of the chroma subsampling (even for 4:2:0, even
widths for 4:2:2), so that every encoder takes them; sizes the user gives are kept as given,
and odd ones then follow the rules of odd sizes at whole scales (``--pix-fmt yuv444p`` or
``--codec ffv1`` for x264).

A size must enlarge: no side smaller than the input's, and one side at least a whole pixel
larger before the rounding, which then cannot round it back to the input's size
(:meth:`SizePlan.check_enlarges`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Sequence

from srpipe.errors import SrpipeError

if TYPE_CHECKING:  # frames load NumPy: the size checks come before it
    from srpipe.frames import PlaneFormat


def is_fractional(scale) -> bool:
    return scale is not None and not isinstance(scale, int)


def _nearest(value: Fraction, step: int) -> int:
    """``value`` rounded to the nearest multiple of ``step`` (halves up), at least ``step``."""
    return max(step, int(value / step + Fraction(1, 2)) * step)


@dataclass
class SizePlan:
    """What ``-s FACTOR`` or ``--width``/``--height`` ask for, turned into exact frame sizes."""

    scale: int | float | None = None
    width: int | None = None
    height: int | None = None
    last: tuple[int, int] | None = None  # the size of the last frames planned, as shown, for reports
    # The frames are shown turned a quarter (a phone's portrait video): --width and --height size the
    # picture as shown, so each method takes the stored size and works on it turned
    turned: bool = False
    # The output's pixel format where one is asked for (--pix-fmt): sizes are rounded to its chroma
    # subsampling too (4:2:0 written from a 4:2:2 or 4:4:4 input needs even sides)
    pix_fmt: str | None = None

    def __post_init__(self):
        if self.scale is not None and (self.width is not None or self.height is not None):
            raise SrpipeError("give either --scale or --width/--height, not both")
        if self.width is None and self.height is None and not is_fractional(self.scale):
            raise ValueError("a SizePlan needs a fractional scale or a width or height")
        if self.scale is not None and self.scale <= 1:
            raise SrpipeError(f"--scale {self.scale:g} does not enlarge; srpipe upscales by factors above 1")

    @property
    def factor(self) -> Fraction | None:
        return Fraction(repr(self.scale)) if self.scale is not None else None

    def _shown(self, width: int, height: int) -> tuple[int, int]:
        """A stored size (or one of the output's) as shown, and back again."""
        return (height, width) if self.turned else (width, height)

    def ratio(self, width: int, height: int) -> Fraction:
        """How much larger the output is than a ``width`` x ``height`` input, on its larger side."""
        if self.scale is not None:
            return self.factor
        wanted_width, wanted_height = self.wanted(width, height)
        return max(wanted_width / width, wanted_height / height)

    def wanted(self, width: int, height: int) -> tuple[Fraction, Fraction]:
        """The output size asked for a ``width`` x ``height`` input (stored sizes), before any rounding."""
        return self._shown(*self._wanted_shown(*self._shown(width, height)))

    def _wanted_shown(self, width: int, height: int) -> tuple[Fraction, Fraction]:
        if self.scale is not None:
            return width * self.factor, height * self.factor
        if self.width is not None and self.height is not None:
            return Fraction(self.width), Fraction(self.height)
        if self.width is not None:
            return Fraction(self.width), Fraction(height * self.width, width)
        return Fraction(width * self.height, height), Fraction(self.height)

    def check_enlarges(self, width: int, height: int) -> None:
        """Refuse a size that does not enlarge a ``width`` x ``height`` input: a side smaller
        than the input's, or no side a whole pixel larger. A whole pixel, because the rounding
        of :meth:`size` (to the nearest pixel, or the nearest even one under chroma subsampling)
        could round less back to the input's size: ``-s 1.01`` on a 64x48 4:2:0 clip."""
        width, height = self._shown(width, height)
        wanted = self._wanted_shown(width, height)
        shrunk = [side for side, new, old in zip(("width", "height"), wanted, (width, height)) if new < old]
        shown = " as shown" if self.turned else ""
        problem = f"{self.describe()} is not larger than the input ({width}x{height}{shown})"
        if shrunk:
            raise SrpipeError(f"{problem}: the {' and '.join(shrunk)} would shrink; srpipe upscales: "
                              f"give a size of at least {width}x{height}, larger on one side")
        if wanted[0] < width + 1 and wanted[1] < height + 1:
            if self.scale is None:  # given sides are whole pixels: neither grows
                raise SrpipeError(f"{problem}: it is the input's own size; give a larger size")
            # the least factor that adds a pixel to the longer side, at the four decimals -s takes
            least = math.ceil((1 + Fraction(1, max(width, height))) * 10_000) / 10_000
            raise SrpipeError(f"{problem}: it adds less than a pixel to each side; give -s {least:g} or more")

    def size(self, width: int, height: int, fmt: PlaneFormat | None = None) -> tuple[int, int]:
        """The exact output size (stored) for ``width`` x ``height`` frames of pixel format ``fmt``."""
        self.check_enlarges(width, height)  # also streams that no header sized, and frames that change size
        steps = (1, 1) if fmt is None or fmt.chroma_shift is None else (
            1 << fmt.chroma_shift[0], 1 << fmt.chroma_shift[1])
        steps = tuple(max(step, out_step) for step, out_step in zip(steps, _chroma_steps(self.pix_fmt)))
        width, height = self._shown(width, height)
        step_x, step_y = self._shown(*steps)
        if self.scale is not None:
            size = _nearest(width * self.factor, step_x), _nearest(height * self.factor, step_y)
        elif self.width is not None and self.height is not None:
            size = self.width, self.height
        elif self.width is not None:
            size = self.width, _nearest(Fraction(height * self.width, width), step_y)
        else:
            size = _nearest(Fraction(width * self.height, height), step_x), self.height
        self.last = size
        return self._shown(*size)

    def model_scale(self, scales: Sequence[int], model: str, width: int | None = None,
                    height: int | None = None) -> int:
        """The smallest of the model's ``scales`` that reaches the output size (for
        ``--width``/``--height``, of a ``width`` x ``height`` input). Given the input's size
        (from its header, before decoding), a size that does not enlarge it is refused."""
        if width is not None and height is not None:
            self.check_enlarges(width, height)
        elif self.scale is None:
            raise SrpipeError("the input's frame size is not known before decoding; "
                              "use --scale instead of --width/--height")
        need = self.ratio(width, height) if self.scale is None else self.factor
        fitting = [s for s in sorted(scales) if s >= need]
        if not fitting:
            raise SrpipeError(f"{self.describe()} needs x{float(need):.3g} and model {model!r} goes up to "
                              f"x{max(scales)}; choose a smaller size or another model (see 'srpipe models list')")
        return fitting[0]

    def describe(self) -> str:
        if self.scale is not None:
            return f"--scale {self.scale:g}"
        return " ".join(f"--{name} {value}" for name, value in (("width", self.width), ("height", self.height))
                        if value is not None)

    def name_tag(self) -> str:
        """What the default output name carries: ``x1.5``, ``1920x1080``, ``w1920`` or ``h1080``."""
        if self.scale is not None:
            return f"x{self.scale:g}"
        if self.width is not None and self.height is not None:
            return f"{self.width}x{self.height}"
        return f"w{self.width}" if self.width is not None else f"h{self.height}"


def _chroma_steps(pix_fmt: str | None) -> tuple[int, int]:
    """How many pixels across and down share a chroma sample in ``pix_fmt`` (2, 2 for 4:2:0);
    1, 1 for none given, or one FFmpeg does not know (its encoder refuses it, saying so)."""
    if pix_fmt is None:
        return 1, 1
    import av

    try:
        fmt = av.VideoFormat(pix_fmt)
    except ValueError:
        return 1, 1
    return 1024 // fmt.chroma_width(1024), 1024 // fmt.chroma_height(1024)
