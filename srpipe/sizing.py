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
"""

from __future__ import annotations

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
    last: tuple[int, int] | None = None  # the size of the last frames planned, for reports

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

    def ratio(self, width: int, height: int) -> Fraction:
        """How much larger the output is than a ``width`` x ``height`` input, on its larger side."""
        if self.scale is not None:
            return self.factor
        ratios = [Fraction(self.width, width)] if self.width is not None else []
        ratios += [Fraction(self.height, height)] if self.height is not None else []
        return max(ratios)

    def size(self, width: int, height: int, fmt: PlaneFormat | None = None) -> tuple[int, int]:
        """The exact output size for ``width`` x ``height`` frames of pixel format ``fmt``."""
        step_x, step_y = (1, 1) if fmt is None or fmt.chroma_shift is None else (
            1 << fmt.chroma_shift[0], 1 << fmt.chroma_shift[1])
        if self.scale is not None:
            size = _nearest(width * self.factor, step_x), _nearest(height * self.factor, step_y)
        elif self.width is not None and self.height is not None:
            size = self.width, self.height
        elif self.width is not None:
            size = self.width, _nearest(Fraction(height * self.width, width), step_y)
        else:
            size = _nearest(Fraction(width * self.height, height), step_x), self.height
        self.last = size
        return size

    def model_scale(self, scales: Sequence[int], model: str, width: int | None = None,
                    height: int | None = None) -> int:
        """The smallest of the model's ``scales`` that reaches the output size (for
        ``--width``/``--height``, of a ``width`` x ``height`` input)."""
        if self.scale is None and (width is None or height is None):
            raise SrpipeError("the input's frame size is not known before decoding; "
                              "use --scale instead of --width/--height")
        need = self.ratio(width, height) if self.scale is None else self.factor
        if self.scale is None and need <= 1:
            raise SrpipeError(f"{self.describe()} is not larger than the input ({width}x{height}); srpipe upscales")
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
