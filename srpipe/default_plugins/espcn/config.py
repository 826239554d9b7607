"""The shape of an ESPCN-family network, without torch: what a prepared network's cache
keeps beside it, so that a backend can run it without the network being rebuilt."""

from __future__ import annotations

from dataclasses import dataclass, fields

ACTIVATIONS = ("tanh", "relu", "prelu")
# Not "circular": it wraps a crop's edges onto each other where the frame's are, so that a tile
# would not give the whole frame's output (tile reuse and tiling rely on it)
PADDING_MODES = ("zeros", "reflect", "replicate")
SHUFFLES = ("pixelshuffle", "einops")
MAX_SCALE, MAX_KERNEL, MAX_WIDTH, MAX_LAYERS, MAX_FRAMES = 8, 15, 1024, 32, 8



TRAINING_PATCH = 24  # the side, in LR pixels, of the patches `srpipe train espcn` learns from

@dataclass
class ESPCNConfig:
    """An ESPCN-family network.

    ``features[i]`` is the width of hidden layer i and ``kernels`` the kernel size of every
    convolution (one more than ``features``: the last maps to ``channels * scale**2``).
    The defaults are the paper's network (5x5x64, 3x3x32, 3x3xr^2, tanh). With ``residual``
    the network predicts the difference from a bicubic upscale of its input. With ``frames``
    above 1 the network is temporal: its first convolution also takes the ``frames - 1``
    frames before the current one, aligned to it, oldest first (early fusion, as VESPCN does;
    :mod:`srpipe.default_plugins.espcn.temporal`), and it upscales the last, the current one.
    With ``unshuffle`` above 1 the convolutions run on the input rearranged into blocks of
    ``unshuffle`` x ``unshuffle`` pixels as channels (a pixel unshuffle), at that fraction of its
    size in each direction, and the last one gives ``(scale * unshuffle)**2`` sub-pixels of each
    block: more channels on fewer positions, which CPUs' vector units run faster per
    multiply-add than a narrow layer over every pixel. A crop of the input then gives the
    whole input's output only where it starts on that grid (:meth:`crop_alignment`).
    """

    scale: int = 3
    channels: int = 1
    features: tuple[int, ...] = (64, 32)
    kernels: tuple[int, ...] = (5, 3, 3)
    activation: str = "tanh"
    shuffle: str = "pixelshuffle"
    residual: bool = False
    padding_mode: str = "zeros"
    frames: int = 1
    unshuffle: int = 1

    def __post_init__(self):
        self.features = tuple(int(f) for f in self.features)
        self.kernels = tuple(int(k) for k in self.kernels)
        if len(self.kernels) != len(self.features) + 1:
            raise ValueError("kernels needs one entry per convolution: len(features) + 1")
        if any(k % 2 == 0 for k in self.kernels):
            raise ValueError("kernel sizes must be odd")
        # Far past any sensible ESPCN; a checkpoint's config must not ask srpipe for gigabytes
        if not 1 <= self.scale <= MAX_SCALE or not 1 <= self.channels <= 4:
            raise ValueError(f"scale must be 1-{MAX_SCALE} and channels 1-4")
        if any(not 1 <= k <= MAX_KERNEL for k in self.kernels) or any(not 1 <= f <= MAX_WIDTH for f in self.features):
            raise ValueError(f"kernel sizes must be 1-{MAX_KERNEL} and widths 1-{MAX_WIDTH}")
        if not 1 <= self.unshuffle <= MAX_SCALE:
            raise ValueError(f"unshuffle must be 1-{MAX_SCALE}")
        if not 1 <= self.frames <= MAX_FRAMES:
            raise ValueError(f"frames must be 1-{MAX_FRAMES}")
        if len(self.features) > MAX_LAYERS:
            raise ValueError(f"at most {MAX_LAYERS} hidden layers")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}")
        if self.padding_mode not in PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {PADDING_MODES}")
        if self.shuffle not in SHUFFLES:
            raise ValueError(f"shuffle must be one of {SHUFFLES}")

    @classmethod
    def from_dict(cls, d: dict) -> "ESPCNConfig":
        """Build from a dict such as a checkpoint's ``config``; unknown keys are an error."""
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown ESPCN config keys: {sorted(unknown)}")
        return cls(**d)

    def widths(self) -> tuple[int, ...]:
        """Channels into and out of each convolution, input first."""
        u = self.unshuffle
        return (self.channels * self.frames * u * u, *self.features, self.channels * (self.scale * u) ** 2)

    def receptive_radius(self) -> int:
        """How many LR pixels away an input can still change the convolutions' output: with
        ``unshuffle`` u, an output pixel's block reads blocks up to the kernels' reach away, and
        the pixel may sit at either end of its own block."""
        u = self.unshuffle
        return u * sum(k // 2 for k in self.kernels) + u - 1

    def output_radius(self) -> int:
        """How many LR pixels away an input can still change the whole output: the convolutions'
        radius, or the residual's bicubic taps (2) if wider (the two are added, not chained)."""
        return max(self.receptive_radius(), 2 if self.residual else 0)

    def crop_alignment(self) -> int:
        """A crop of the input gives the whole input's output (away from its cut edges) only
        where it starts at a multiple of this many pixels: ``unshuffle``'s grid."""
        return self.unshuffle

    def macs_per_lr_pixel(self) -> int:
        """Multiply-accumulates per LR pixel (convolutions, plus 16 per HR pixel for bicubic)."""
        w = self.widths()
        macs = sum(w[i] * w[i + 1] * k * k for i, k in enumerate(self.kernels)) // self.unshuffle**2
        if self.residual:
            macs += 16 * self.channels * self.scale**2
        return macs
