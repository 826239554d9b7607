"""``ESPCNUpscaler``: a trained ESPCN checkpoint applied to video luma planes.

On the CPU the upscaler works on numpy arrays. With a backend that keeps what it prepared
(``Backend.load_prepared``, OpenVINO's), a checkpoint seen before starts from the backend's
cache and a card of its config beside it, and torch is never imported: on a short clip,
importing torch takes longer than the upscaling. On CUDA it works on torch tensors."""

from __future__ import annotations

import copy
import json
import zipfile
from pathlib import Path

import cv2
import numpy as np

from srpipe import cache
from srpipe.backends import Backend, BackendFailed
from srpipe.default_plugins.espcn.config import ESPCNConfig
from srpipe.default_plugins.espcn.temporal import TemporalWindow
from srpipe.errors import NonFiniteOutput, SrpipeError


def _card_name(key: str) -> str:
    """The card's name in the cache folder ``networks`` (kept with a record: see :mod:`srpipe.cache`)."""
    return f"{key}-{CARD_FORMAT}.json"


CARD_FORMAT = "card1"  # changes with what a card holds


def _agrees(convolved, config: ESPCNConfig) -> bool:
    """Whether a cached network takes and gives the shapes its card says: a card and a graph
    from different runs must not meet (an unlikely race), and this costs a tiny inference."""
    try:
        out = convolved(np.zeros((1, config.channels * config.frames, 4, 4), np.float32))
    except Exception:  # the backend's own error: it is prepared again from the checkpoint
        return False
    return out.shape == (1, config.channels, 4 * config.scale, 4 * config.scale)


BAND_OUTPUT_PIXELS = 1 << 22  # output pixels of a frame upscaled at a time on the CPU (16 MiB a float copy)
# For the memory plan (the measurements: docs/design-notes.md, "Memory"): bytes a backend holds
# per LR pixel of a tile and channel of the network's widest layer (activations, reorders,
# scratch), and bytes per output pixel of a band's float32 copies (the network's output, the
# residual's bicubic, the samples rescaled and rounded).
TILE_BYTES_PER_CHANNEL = {"openvino-int8": 3, "openvino-bf16": 6, "openvino": 9, "onnxruntime": 18}
TILE_BYTES_OTHERWISE = 28  # torch, and backends not measured
BAND_BYTES = 18


class ResidualBase:
    """A residual network's base: the bicubic of ``ESPCNUpscaler.upsampled``, on integer samples."""

    def __init__(self, scale: int):
        self.scale = scale

    def upscale(self, luma: np.ndarray, *, bit_depth: int, full_range: bool) -> np.ndarray:
        n, h, w = luma.shape
        return np.stack([cv2.resize(plane, (w * self.scale, h * self.scale), interpolation=cv2.INTER_CUBIC)
                         for plane in luma])


def _whole_blocks(pixels: int, block: int) -> int:
    """``pixels`` rounded up to a multiple of ``block``."""
    return -(-pixels // block) * block


class ESPCNUpscaler:
    """Upscale batches of luma planes with an ESPCN checkpoint.

    The network works on 8-bit limited-range luma / 255. Other bit depths are scaled to that
    range and full-range input is mapped to limited range (Y_lim = 16 + Y_full * 219/255 at
    8-bit scale) before the network, and back after. ``network`` is the torch module, or
    ``None`` where the backend runs a network it prepared in an earlier run. A temporal network
    (``config.frames`` above 1) reads each frame with the frames before it, which the upscaler
    keeps: :meth:`for_stream` gives each stream its own.
    """

    def __init__(self, checkpoint: str | Path | dict, device: str = "cpu", batch_size: int = 4,
                 tile: int | None = None, backend: Backend | None = None, variant: str | None = None):
        self.device = str(device)
        self.variant = variant  # UpscalerTraits.variant: which of a model's networks this is, where it has several
        self.batch_size = batch_size
        self.backend = backend.name if backend else "torch"
        self._plugin = backend.plugin if backend else "srpipe"  # the backend's, named where it fails
        self.network = None
        self.convolved = self._load_prepared(checkpoint, backend) or self._prepare(checkpoint, backend)
        self.backend = getattr(self.convolved, "backend", self.backend)  # a fallback names what really runs
        self.scale: int = self.config.scale
        # Tiles, bands and their margins in whole blocks of a network that works on blocks
        # (ESPCNConfig.unshuffle), so that each piece's output is the whole frame's.
        self.crop_alignment = self.config.crop_alignment()
        self.tile = _whole_blocks(tile or (backend.tile if backend else 192), self.crop_alignment)
        self.margin = _whole_blocks(self.config.receptive_radius(), self.crop_alignment)
        self._copy_stream = None  # CUDA only, made on first use
        self._window = TemporalWindow(self.config.frames) if self.config.frames > 1 else None

    def for_stream(self) -> "ESPCNUpscaler":
        """This upscaler for a new stream: a temporal network's gets its own earlier frames (the
        loaded network is shared); any other is stateless and is returned as it is."""
        if self._window is None:
            return self
        fresh = copy.copy(self)
        fresh._window = TemporalWindow(self.config.frames)
        return fresh

    def _tile_bytes_per_lr_pixel(self) -> int:
        """What running the backend on a tile holds, per LR pixel of the tile: its own buffers
        (TILE_BYTES_PER_CHANNEL), the float32 input and output, and bfloat16's split input."""
        widest = max(self.config.features, default=self.config.channels * self.scale**2)  # no hidden layer: the last
        split = 28 if self.backend.endswith("bf16") else 0  # the input twice and its rounding's temporaries
        per_channel = TILE_BYTES_PER_CHANNEL.get(self.backend, TILE_BYTES_OTHERWISE)
        return widest * per_channel + 4 + 4 * self.scale**2 + split

    def working_bytes(self, frames: int, width: int, height: int) -> int:
        """For the memory plan (srpipe.memory): the working memory of upscaling ``frames`` frames
        of ``width`` x ``height`` at once, beyond their input and output samples.

        On the CPU, :meth:`upscale` takes ``batch_size`` frames at a time, a band of rows at a
        time (BAND_OUTPUT_PIXELS, and its halo), the band in tiles: a band's float copies and a
        tile's working memory, each twice where there are several (the first band and tile are
        smaller than the next: what is allocated for them is too small for those, and the
        allocator keeps it, see memory.retain_freed_memory). On CUDA, the page-locked copies of
        the input and output samples (2 bytes a sample at most), which torch rounds up to a
        power of two."""
        s2, stacked = self.scale**2, self.config.frames  # a temporal network reads each frame with those before it
        if self.device.startswith("cuda"):
            return frames * width * height * (stacked + s2) * 2 * 2  # 2 bytes a sample, doubled by the rounding
        rows, halo = self._band(width)
        side = self.tile + 2 * self.margin
        band_rows = min(height, rows + 2 * halo)
        tile = min(band_rows, side) * min(width, side)
        band_bytes = (1 if band_rows == height else 2) * band_rows * width * s2 * BAND_BYTES
        tile_bytes = (1 if tile == width * height else 2) * tile * self._tile_bytes_per_lr_pixel()
        # A temporal network's input: the stacked frames of the batch (2 bytes a sample at most),
        # and the band's two float copies of them.
        stack_bytes = 0 if stacked == 1 else frames * width * height * stacked * 2 + \
            min(frames, self.batch_size) * band_rows * width * stacked * 4 * 2
        return min(frames, self.batch_size) * (band_bytes + tile_bytes) + stack_bytes

    @property
    def macs_per_lr_pixel(self) -> int:
        return self.config.macs_per_lr_pixel()

    @property
    def receptive_radius(self) -> int | None:
        """The network's reach (``ESPCNConfig.output_radius``). None for a temporal network, whose
        output also depends on the earlier frames, so that a tile cannot be kept because its own
        input did not change."""
        if self._window is not None:
            return None
        return self.config.output_radius()

    @property
    def flat_path(self) -> ResidualBase | None:
        """The bicubic the residual network adds to, which it equals on flat input."""
        return ResidualBase(self.scale) if self.config.residual and self._window is None else None

    def _load_prepared(self, checkpoint, backend: Backend | None):
        """What the backend prepared for this checkpoint file in an earlier run, or None."""
        self._key = None
        if isinstance(checkpoint, dict) or backend is None or backend.load_prepared is None:
            return None
        if not zipfile.is_zipfile(checkpoint):  # no checkpoint of torch.save's: _prepare refuses it, unhashed
            return None
        self._key = cache.file_digest(checkpoint)
        kept = cache.read_recorded("networks", _card_name(self._key), f"network card for checkpoint {self._key[:16]}")
        if kept is None:
            return None
        try:
            card = json.loads(kept)
            config = ESPCNConfig.from_dict(card["config"])
        except (ValueError, KeyError, TypeError):  # a card of another srpipe's making
            return None
        convolved = backend.load_prepared(self._key, self.device)
        if convolved is None or not _agrees(convolved, config):
            return None
        self.config, self.meta = config, card["meta"]
        return convolved

    def _prepare(self, checkpoint, backend: Backend | None):
        """Load the checkpoint into torch and let the backend prepare it (keeping it, and a
        card of its config, for later runs where the backend can)."""
        from srpipe.backends import numpy_io
        from srpipe.default_plugins.espcn.network import ESPCN
        from srpipe.nn.checkpoint import load_checkpoint, network_from_checkpoint

        source = "checkpoint" if isinstance(checkpoint, dict) else str(checkpoint)
        ckpt = checkpoint if isinstance(checkpoint, dict) else load_checkpoint(checkpoint)
        network = network_from_checkpoint(ckpt, source)
        if not isinstance(network, ESPCN):  # a classifier's checkpoint, say: it loads, but upscales nothing
            raise SrpipeError(f"{source} holds a {ckpt.get('arch', type(network).__name__)} network, not an ESPCN "
                              "upscaler; give weights from 'srpipe train espcn'")
        self.network = network.to(self.device).eval()
        self.config, self.meta = self.network.config, ckpt["meta"]
        if backend is None:
            convolved = self.network.convolved
            return numpy_io(convolved) if self.device == "cpu" else convolved
        try:
            if self._key is None:
                return backend.prepare(self.network, self.device)
            convolved = backend.prepare(self.network, self.device, key=self._key)
        except SrpipeError:
            raise
        except Exception as exc:  # a plugin's backend, most likely: say which (--backend auto takes the next)
            raise BackendFailed(backend, exc) from exc
        card = {"config": self.config.__dict__, "meta": self.meta}
        cache.write_recorded("networks", _card_name(self._key), json.dumps(card, default=str).encode())
        return convolved  # where the card could not be kept (a read-only cache), the next run prepares again

    def run_tiled(self, x):
        """The network on (N, 1, H, W) float32 (a numpy array on the CPU, a torch tensor on
        CUDA), its convolutions (run by the backend) in tiles of ``tile`` LR pixels, each read
        with a margin of their receptive radius, so the output equals the untiled one.

        The tile is the backend's (``Backend.tile``): small tiles keep torch's activations in
        cache and bound ONNX Runtime's memory; OpenVINO fuses the layers and runs large tiles
        fastest (docs/design-notes.md)."""
        n, c, h, w = x.shape
        s, m, t = self.scale, self.margin, self.tile
        on_arrays = isinstance(x, np.ndarray)  # the CPU; torch tensors on CUDA
        if h <= t and w <= t:
            out = self._convolve(x)
        else:
            shape = (n, self.config.channels, h * s, w * s)
            out = np.empty(shape, np.float32) if on_arrays else x.new_empty(shape)
            for top in range(0, h, t):
                for left in range(0, w, t):
                    y0, x0 = max(top - m, 0), max(left - m, 0)
                    y1, x1 = min(top + t + m, h), min(left + t + m, w)
                    piece = x[:, :, y0:y1, x0:x1]
                    part = self._convolve(np.ascontiguousarray(piece) if on_arrays else piece)
                    bottom, right = min(top + t, h), min(left + t, w)
                    out[:, :, top * s:bottom * s, left * s:right * s] = part[
                        :, :, (top - y0) * s:(bottom - y0) * s, (left - x0) * s:(right - x0) * s
                    ]
        if self.config.residual:
            out += self.upsampled(x)
        return out

    def _convolve(self, x):
        """``self.convolved`` on ``x``, the shape of what it gives checked: a backend's function
        that gives another (a plugin's) failed in NumPy's broadcasting, naming neither it nor its plugin."""
        out = self.convolved(x)
        n, _, h, w = x.shape
        expected = (n, self.config.channels, h * self.scale, w * self.scale)
        got = tuple(getattr(out, "shape", ()))
        if got != expected:
            raise SrpipeError(f"backend {self.backend} (plugin {self._plugin}) gave {got or type(out).__name__} for "
                              f"an input of {tuple(x.shape)}, not {expected}; use another --backend")
        return out

    def upsampled(self, x):
        """The residual's bicubic upscale of (N, C, H, W), which must equal ``ESPCN.upsampled``
        (torch's bicubic, a = -0.75, pixel centres, replicated edges): that one on CUDA;
        OpenCV's on the CPU, the same kernel, grid and edges (within 1e-5), and faster. Of a
        temporal network's input, only the current frame, the last channels."""
        if not isinstance(x, np.ndarray):
            return self.network.upsampled(x)
        x = x[:, x.shape[1] - self.config.channels:]
        n, c, h, w = x.shape
        s = self.scale
        out = np.empty((n, c, h * s, w * s), dtype=np.float32)
        for i in range(n):
            for j in range(c):
                cv2.resize(x[i, j], (w * s, h * s), dst=out[i, j], interpolation=cv2.INTER_CUBIC)
        return out

    def upscale(self, luma: np.ndarray, *, bit_depth: int, full_range: bool) -> np.ndarray:
        """(N, H, W) uint8 (8-bit) or uint16 (10/12/16-bit) -> (N, H*s, W*s), same dtype."""
        if luma.ndim != 3:
            raise ValueError(f"luma must be (N, H, W), got shape {luma.shape}")
        expected = np.uint8 if bit_depth == 8 else np.uint16
        if luma.dtype != expected or not 8 <= bit_depth <= 16:
            raise ValueError(f"{bit_depth}-bit luma must be {np.dtype(expected).name}, got {luma.dtype}")
        n, h, w = luma.shape
        out = np.empty((n, h * self.scale, w * self.scale), dtype=luma.dtype)
        if self._window is not None:  # (N, frames, H, W): each frame after the frames before it
            luma = self._window.stacks(luma)
        if self.device.startswith("cuda"):
            import torch

            with torch.inference_mode():
                self._upscale_overlapped(luma, out, bit_depth, full_range)
            return out
        maxval, s = (1 << bit_depth) - 1, self.scale
        # Bands of rows, each read with a halo of the network's receptive radius and the residual's
        # bicubic taps (2), so that the output equals the whole frame's: the float copies then
        # take a band's memory, not several times the upscaled frame's (a 12 MP photo at x4).
        rows, halo = self._band(w)
        for i in range(0, n, self.batch_size):
            for top in range(0, h, rows):
                bottom = min(top + rows, h)
                y0, y1 = max(top - halo, 0), min(bottom + halo, h)
                y = self._network_on_samples(luma[i:i + self.batch_size, ..., y0:y1, :].astype(np.float32),
                                             bit_depth, full_range)
                if not np.isfinite(y).all():  # clipped, NaN becomes black: refuse instead
                    raise NonFiniteOutput("the network gave NaN or infinite values")
                np.clip(np.rint(y), 0, maxval, out=y)
                out[i:i + self.batch_size, top * s:bottom * s] = y[:, (top - y0) * s:(bottom - y0) * s]
        return out

    def _band(self, width: int) -> tuple[int, int]:
        """The rows of a band of :meth:`upscale` on frames ``width`` wide, and the halo of rows
        read on each side."""
        rows = max(1, BAND_OUTPUT_PIXELS // (width * self.scale**2))
        return _whole_blocks(rows, self.crop_alignment), _whole_blocks(self.margin + 2, self.crop_alignment)

    def _network_on_samples(self, x, bit_depth: int, full_range: bool):
        """Float (N, H, W) samples of ``bit_depth`` bits (a temporal network's: (N, frames, H, W))
        through the network, in the same scale (numpy on the CPU, torch on CUDA), unrounded."""
        maxval = (1 << bit_depth) - 1
        step = float(1 << (bit_depth - 8))  # one 8-bit code value in this bit depth
        if full_range:
            x = (16 + x * (219.0 / maxval)) / 255.0
        else:
            x = x / (255.0 * step)
        y = self.run_tiled(x[:, None] if x.ndim == 3 else x)[:, 0]
        if full_range:
            return (y * 255.0 - 16) * (maxval / 219.0)
        return y * (255.0 * step)

    def _upscale_samples(self, samples, bit_depth: int, full_range: bool):
        """Integer (N, H, W) torch samples -> (upscaled integer samples of the same dtype,
        whether the network's output was all finite), both on their device."""
        import torch

        y = self._network_on_samples(samples.to(torch.float32), bit_depth, full_range)
        return torch.round(y).clamp_(0, (1 << bit_depth) - 1).to(samples.dtype), torch.isfinite(y).all()

    def _upscale_overlapped(self, luma: np.ndarray, out: np.ndarray, bit_depth: int, full_range: bool) -> None:
        """The CUDA path: integer samples (a quarter or half of float32's bytes) go up from
        page-locked memory on a copy stream, each sub-batch is converted and run on the compute
        stream as soon as its upload lands, and comes down on the copy stream while the next
        one computes; the host waits once, for the last download."""
        import torch

        if self._copy_stream is None:
            self._copy_stream = torch.cuda.Stream(self.device)
        copy, compute = self._copy_stream, torch.cuda.current_stream(self.device)
        host_in = torch.from_numpy(luma).pin_memory()
        host_out = torch.empty(out.shape, dtype=host_in.dtype, pin_memory=True)
        parts = range(0, len(luma), self.batch_size)
        finite = torch.ones((), dtype=torch.bool, device=self.device)  # read once, after the last download
        with torch.cuda.stream(copy):
            uploads = [(host_in[i:i + self.batch_size].to(self.device, non_blocking=True), copy.record_event())
                       for i in parts]
        for i, (samples, uploaded) in zip(parts, uploads):
            compute.wait_event(uploaded)
            samples.record_stream(compute)  # allocated on the copy stream, used on this one
            result, part_finite = self._upscale_samples(samples, bit_depth, full_range)
            finite &= part_finite
            copy.wait_event(compute.record_event())
            result.record_stream(copy)
            with torch.cuda.stream(copy):
                host_out[i:i + self.batch_size].copy_(result, non_blocking=True)
        copy.synchronize()
        if not finite.item():
            raise NonFiniteOutput("the network gave NaN or infinite values")
        out[...] = host_out.numpy()
