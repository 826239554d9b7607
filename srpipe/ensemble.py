"""A still picture upscaled as the mean of a network's outputs over the picture's flipped and
transposed views (geometric self-ensemble; Timofte et al., "Seven ways to improve example-based
single image super resolution", 2016).

A learned network is not symmetric under flips and transposes the way a picture's content is:
its errors differ from one view to the next, and their mean is closer to the truth than any
one view (docs/espcn.md gives the gain on the shipped weights). It costs a pass of the network
per view, which video, at a frame's time per frame, cannot spend; a picture is one frame. So it
runs only on still pictures, only for upscalers that declare ``self_ensemble``
(:class:`srpipe.models.UpscalerTraits`), never with ``--exact`` (the network's own output), and
takes as many of the eight views as fit in :data:`ENSEMBLE_MACS` multiply-adds: every view on a
small picture, fewer or one on a large photo, whose single pass already takes seconds.
"""

from __future__ import annotations

import numpy as np

from srpipe.memory import working_bytes
from srpipe.models import UpscalerTraits

# Multiply-adds a picture's views may take together: for the shipped x2 image weights (159,616 per
# input pixel) all eight up to 0.08 megapixels in (Set5's pictures), four up to 0.16, two up to 0.31.
ENSEMBLE_MACS = 10**11
VIEW_COUNTS = (8, 4, 2, 1)  # the first 2 and 4 views are flips, so a half or a quarter set stays balanced


def _view(luma: np.ndarray, index: int) -> np.ndarray:
    """View ``index`` (0-7) of a batch of planes (N, H, W): bit 0 flips left-right, bit 1 upside
    down, bit 2 transposes (after the flips)."""
    if index & 1:
        luma = luma[:, :, ::-1]
    if index & 2:
        luma = luma[:, ::-1, :]
    if index & 4:
        luma = luma.transpose(0, 2, 1)
    return luma


def _unview(planes: np.ndarray, index: int) -> np.ndarray:
    """The inverse of :func:`_view`: an output of the view, as the picture's."""
    if index & 4:
        planes = planes.transpose(0, 2, 1)
    if index & 2:
        planes = planes[:, ::-1, :]
    if index & 1:
        planes = planes[:, :, ::-1]
    return planes


def views_within(macs_per_lr_pixel: int | None, pixels: int, budget: int = ENSEMBLE_MACS) -> int:
    """How many views of a picture of ``pixels`` input pixels fit in ``budget`` multiply-adds
    (one where the network's cost is not declared)."""
    if not macs_per_lr_pixel:
        return 1
    return next(count for count in VIEW_COUNTS if count == 1 or count * macs_per_lr_pixel * pixels <= budget)


def for_picture(upscaler, who: str, exact: bool = False, count: int | None = None):
    """``upscaler`` as srpipe runs it on a still picture (``upscale``, ``batch``, ``eval --data``):
    through its views where it declares ``self_ensemble``, unless ``exact``; ``count`` as
    :class:`ViewEnsemble` takes it."""
    if exact or not UpscalerTraits.of(upscaler).self_ensemble:
        return upscaler
    return ViewEnsemble(upscaler, who, count=count)


class ViewEnsemble:
    """``inner`` on a still picture, as the rounded mean over as many of its eight views as
    :func:`views_within` allows by the cost ``inner`` declares before it runs (a model that picks
    its weights by the picture, :class:`srpipe.default_plugins.espcn.still_pick.PickedWeights`,
    declares its costlier ones until then), so that the memory plan knows the count beforehand;
    ``who`` names the model in errors. How many ran is told by ``views`` and in ``variant``
    (``"image weights, 8 views"``)."""

    def __init__(self, inner, who: str, budget: int = ENSEMBLE_MACS, count: int | None = None):
        """``count``: that many views (one of :data:`VIEW_COUNTS`) whatever the picture's size."""
        self.inner, self.who, self.budget, self.count = inner, who, budget, count
        self.scale = inner.scale
        self.views: int | None = None

    @property
    def backend(self) -> str | None:
        return UpscalerTraits.of(self.inner).backend

    @property
    def variant(self) -> str | None:
        own = UpscalerTraits.of(self.inner).variant
        if self.views is None or self.views == 1:
            return own
        return f"{own}, {self.views} views" if own else f"{self.views} views"

    def count_for(self, pixels: int) -> int:
        """How many views a picture of ``pixels`` input pixels runs through."""
        if self.count is not None:
            return self.count
        return views_within(UpscalerTraits.of(self.inner).macs_per_lr_pixel, pixels, self.budget)

    def working_bytes(self, frames: int, width: int, height: int) -> int:
        """The network's working memory, and where more than one view runs, the sum of the views
        (32 bits a sample) with one view's output and the rounded mean beside it."""
        inner = working_bytes(UpscalerTraits.of(self.inner), frames, width, height, self.scale)
        if self.count_for(frames * width * height) == 1:
            return inner
        return inner + frames * width * height * self.scale**2 * (4 + 4 + 2)

    def upscale(self, luma: np.ndarray, *, bit_depth: int, full_range: bool) -> np.ndarray:
        from srpipe.pipeline import checked_upscale

        self.views = count = self.count_for(luma.size)
        if count == 1:
            return checked_upscale(self.inner, luma, self.scale, bit_depth, full_range, self.who)
        total = None
        for index in range(count):
            # each view a copy of its own: a model may overwrite its input (docs/plugins.md)
            view = np.array(_view(luma, index), order="C")
            who = self.who if index == 0 else (f"{self.who} (given the picture flipped or transposed, view {index + 1} "
                                               f"of {count}; --exact runs only the picture itself)")
            out = _unview(checked_upscale(self.inner, view, self.scale, bit_depth, full_range, who), index)
            if total is None:
                total = out.astype(np.uint32)
            else:
                total += out
        total += count // 2  # rounded, not truncated
        total //= count
        return total.astype(luma.dtype)
