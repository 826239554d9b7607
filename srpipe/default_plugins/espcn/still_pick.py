"""Which ESPCN weights a still picture gets.

The clean-photo weights (``espcn-clean``) are the best on a picture shrunk with antialiasing,
the convention of Set5 and of the super-resolution papers; on a picture shrunk without
antialiasing (``cv2.resize``'s cubic) they sharpen what is already aliased and lose 2.5-3 dB
to the still-image weights, which hold up on both kinds at some cost on the first (on JPEG
copies of antialiased shrinks the two are within 0.2 dB). So ``-m espcn`` on a picture runs the
still-image weights unless the picture looks antialiased, and then the clean ones.

The look is a logistic regression on seven numbers of the picture's luma (its middle, at
most 512 pixels a side, whole or, where the fit chose so, in pieces whose votes are taken by
the median): four ratios of its spectrum's energy, three between rings towards the Nyquist
frequency and one between the energy near Nyquist and at half of it along the axes (an
antialiasing filter takes the top band away; a bare decimation folds energy into it), and
three quantiles of how much of a strong edge's rise falls in one pixel step
(antialiasing spreads an edge over two or more). It is fitted per scale by
``scripts/fit_still_pick.py`` on shrinks of the training photos by five kernels, with and
without JPEG, and its threshold is set on held-out photos so that none of their shrinks
without antialiasing went to the clean weights: a wrong "antialiased" costs about 3 dB, a
wrong "not" a fraction of one. The fit ships beside the weights
(``weights/espcn_still_pick_x{scale}.json``). The model card gives the figures.

Near-lossless video (``espcn-lossless``) is picked for in the same way, between the clean weights
and ``espcn``'s own path, by a look fitted with generated line art added
(``weights/espcn_video_pick_x{scale}.json``).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from srpipe.memory import working_bytes
from srpipe.models import UpscalerTraits

CROP = 512  # pixels a side of the middle of the picture that is looked at
SMALLEST = 16  # pixels a side of the smallest picture looked at
FEATURES = ("log top band / low band", "log middle band / low band", "log top band / upper band",
            "log energy near Nyquist / at half Nyquist, along the axes",
            "edge step share, median", "edge step share, lower quartile", "edge step share, upper quartile")


def pieces(luma: np.ndarray, patch: int | None) -> list[np.ndarray]:
    """What a picture is looked at in: the middle of it, at most :data:`CROP` pixels a side, or
    that cut into ``patch`` x ``patch`` pieces (the middle itself where it is smaller)."""
    height, width = luma.shape
    top, left = max((height - CROP) // 2, 0), max((width - CROP) // 2, 0)
    middle = luma[top:top + CROP, left:left + CROP]
    if patch is None or min(middle.shape) < patch:
        return [middle]
    return [middle[y:y + patch, x:x + patch] for y in range(0, middle.shape[0] - patch + 1, patch)
            for x in range(0, middle.shape[1] - patch + 1, patch)]


def features(luma: np.ndarray, bit_depth: int = 8) -> np.ndarray:
    """The :data:`FEATURES` of one luma plane or piece of one (see the module's text)."""
    x = luma.astype(np.float32) / (1 << (bit_depth - 8))
    height, width = x.shape
    window = np.outer(np.hanning(height), np.hanning(width)).astype(np.float32)
    power = np.abs(np.fft.fftshift(np.fft.fft2((x - x.mean()) * window))) ** 2
    fy = np.abs(np.fft.fftshift(np.fft.fftfreq(height)))[:, None]
    fx = np.abs(np.fft.fftshift(np.fft.fftfreq(width)))[None, :]
    radius = np.hypot(fx, fy)

    def band(low, high):
        return power[(radius >= low) & (radius < high)].mean() + 1e-6

    columns, rows = power.mean(axis=0), power.mean(axis=1)
    near = columns[fx[0] > 0.42].mean() + rows[fy[:, 0] > 0.42].mean()
    half = columns[(fx[0] > 0.2) & (fx[0] < 0.3)].mean() + rows[(fy[:, 0] > 0.2) & (fy[:, 0] < 0.3)].mean()
    spectral = [np.log(band(0.375, 0.5) / band(0.125, 0.25)), np.log(band(0.25, 0.375) / band(0.125, 0.25)),
                np.log(band(0.42, 0.5) / band(0.3, 0.42)), np.log((near + 1e-6) / (half + 1e-6))]
    shares = []
    for plane in (x, x.T):  # along rows and along columns
        steps = np.abs(np.diff(plane, axis=1))
        middle, sides = steps[:, 1:-1], steps[:, :-2] + steps[:, 2:]
        strong = middle > max(np.percentile(middle, 98), 1.0)
        shares.append((middle / (middle + sides + 1e-6))[strong])
    share = np.concatenate(shares)
    edges = np.percentile(share, [50, 25, 75]) if share.size else np.full(3, 0.5)  # no edge: no evidence
    return np.array([*spectral, *edges], np.float64)


@dataclass(frozen=True)
class StillPick:
    """A fitted look (``weights/espcn_still_pick_x{scale}.json``): the probability that a
    picture was *not* shrunk with antialiasing is ``sigmoid(coef . features + intercept)`` of
    its :func:`pieces` (the median over them, with ``patch``); below ``threshold`` it gets the
    clean weights."""

    scale: int
    coef: tuple[float, ...]
    intercept: float
    threshold: float
    patch: int | None = None

    @classmethod
    def load(cls, path: str | Path) -> StillPick:
        fit = json.loads(Path(path).read_text())
        if len(fit["coef"]) != len(FEATURES):
            raise ValueError(f"{path} holds {len(fit['coef'])} coefficients for {len(FEATURES)} features")
        return cls(int(fit["scale"]), tuple(map(float, fit["coef"])), float(fit["intercept"]), float(fit["threshold"]),
                   fit.get("patch"))

    def probabilities(self, rows: np.ndarray) -> np.ndarray:
        """The not-antialiased probability of each row of features."""
        return 1 / (1 + np.exp(-np.clip(rows @ np.array(self.coef) + self.intercept, -50, 50)))

    def not_clean_probability(self, luma: np.ndarray, bit_depth: int = 8) -> float:
        if min(luma.shape) < SMALLEST or luma.min() == luma.max():
            return 1.0  # too small or flat to tell: the weights that hold up on both kinds
        rows = np.array([features(piece, bit_depth) for piece in pieces(luma, self.patch)])
        return float(np.median(self.probabilities(rows)))

    def looks_clean(self, luma: np.ndarray, bit_depth: int = 8) -> bool:
        return self.not_clean_probability(luma, bit_depth) < self.threshold


class PickedWeights:
    """An upscaler that runs each stream through the clean weights where its first frame looks
    antialiased (:class:`StillPick`), else through ``otherwise``: the still-image weights on a
    picture (or a video given ``-m espcn-image``), ``espcn``'s video path on near-lossless video
    (``espcn-lossless``). One choice per stream, on the whole first frame (tile reuse runs a
    stream's first frame whole), so a video's frames never switch weights midway; a first frame
    of one value (a black intro) tells nothing and gets ``otherwise``. Warm-ups run on a copy
    (:meth:`for_stream`). The clean weights are loaded when first chosen, or at once with
    ``load_clean_now`` (where they need more memory than ``otherwise``, so that the memory plan
    counts them), and shared by the streams after. It declares ``otherwise``'s receptive radius,
    crop alignment and flat path, so video through it reuses tiles (:mod:`srpipe.reuse`); the
    clean weights run only where they fit them (:meth:`_fits`)."""

    self_ensemble = True  # on a picture (srpipe.ensemble): both weights gain from it

    def __init__(self, otherwise, load_clean, pick: StillPick, otherwise_name: str = "image",
                 load_clean_now: bool = False):
        self.otherwise, self.otherwise_name, self.pick = otherwise, otherwise_name, pick
        self._load_clean, self._clean = load_clean, []  # a list that the copies share, empty until loaded
        self.scale = otherwise.scale
        self.chosen: str | None = None  # "clean" or otherwise_name, once the first frame was seen
        UpscalerTraits.of(otherwise).lend(self, "receptive_radius", "crop_alignment", "flat_path")
        if load_clean_now:
            self.clean()

    def clean(self):
        """The clean weights' upscaler, loaded on the first call (and shared with :meth:`for_stream`'s copies)."""
        if not self._clean:
            self._clean.append(self._load_clean())
        return self._clean[0]

    def _running(self):
        return self.clean() if self.chosen == "clean" else self.otherwise

    @property
    def backend(self) -> str | None:
        """What runs the chosen weights (``otherwise`` before the choice)."""
        return UpscalerTraits.of(self._running()).backend

    @property
    def macs_per_lr_pixel(self) -> int | None:
        return UpscalerTraits.of(self._running()).macs_per_lr_pixel

    def working_bytes(self, frames: int, width: int, height: int) -> int:
        """The larger of what the loaded weights need (:class:`UpscalerTraits`)."""
        return max(working_bytes(UpscalerTraits.of(upscaler), frames, width, height, self.scale)
                   for upscaler in [self.otherwise, *self._clean])

    @property
    def variant(self) -> str | None:
        """``"clean weights"``, or ``otherwise``'s variant (``"image weights"`` where it names
        none), once chosen (:class:`UpscalerTraits`)."""
        if self.chosen is None:
            return None
        if self.chosen == "clean":
            return "clean weights"
        return UpscalerTraits.of(self.otherwise).variant or f"{self.otherwise_name} weights"

    def for_stream(self) -> PickedWeights:
        """A fresh choice for a new stream, sharing what was loaded."""
        fresh = copy.copy(self)
        fresh.chosen = None
        return fresh

    def upscale(self, luma: np.ndarray, *, bit_depth: int, full_range: bool) -> np.ndarray:
        if self.chosen is None:
            self.chosen = "clean" if self.pick.looks_clean(luma[0], bit_depth) and self._fits(self.clean()) \
                else self.otherwise_name
        return self._running().upscale(luma, bit_depth=bit_depth, full_range=full_range)

    def _fits(self, clean) -> bool:
        """Whether ``clean`` reads no farther than the radius declared for both, and gives the
        whole frame's output on crops that start on the declared grid (else tile reuse would keep
        outputs it changes): true of the shipped weights."""
        declared, own = UpscalerTraits.of(self), UpscalerTraits.of(clean)
        if declared.receptive_radius is None:
            return True
        return own.receptive_radius is not None and own.receptive_radius <= declared.receptive_radius \
            and declared.crop_alignment % own.crop_alignment == 0

