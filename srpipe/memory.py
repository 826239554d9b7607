"""Memory planning: how many frames fit in memory at once, and how freed memory is kept."""

from __future__ import annotations

import ctypes
import warnings

from srpipe.errors import SrpipeError
from srpipe.models import UpscalerTraits

GIB = 1 << 30
# Float32 working copies per output pixel when an upscaler states none (input and output).
DEFAULT_WORKING_BYTES = UpscalerTraits.working_bytes_per_output_pixel


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc mallopt() parameters


def retain_freed_memory(limit: int = GIB) -> bool:
    """Keep freed blocks below ``limit`` in the process for reuse (glibc only).

    By default glibc serves blocks over 128 KiB-32 MiB with fresh mmap() calls and hands
    them back on free(). Torch's CPU activations (megabytes per tile, per layer) then cost
    a page fault per 4 KiB page on every frame (docs/design-notes.md). Peak memory is unchanged;
    it is reused instead of returned. Returns whether the setting took effect.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own symbols: libc's, where it is glibc
    except (OSError, AttributeError, TypeError):
        return False  # not glibc (macOS, Windows, musl): nothing to tune
    return bool(mallopt(_M_MMAP_THRESHOLD, limit)) and bool(mallopt(_M_TRIM_THRESHOLD, limit))


def available_memory() -> int | None:
    """MemAvailable from /proc/meminfo, or None where that cannot be read."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def bytes_for_batch(width: int, height: int, scale: int, batch: int, bytes_per_sample: int, working: int,
                    samples_per_pixel: int = 3) -> int:
    """Memory for ``batch`` frames in flight: two queues of decoded and of upscaled
    frames (2 x batch each, of ``samples_per_pixel``) plus the model's working memory."""
    in_px, out_px = width * height, width * height * scale * scale
    queued = 2 * batch * samples_per_pixel * bytes_per_sample * (in_px + out_px)
    return queued + batch * out_px * working


def fit_batch_size(width, height, scale, batch_size, bytes_per_sample, upscaler, available=None,
                   samples_per_pixel: int = 3) -> int:
    """The largest batch size up to ``batch_size`` that fits in 80% of free memory.

    Refuses, with the size it would need, when not even one frame fits.
    """
    available = available_memory() if available is None else available
    if not available or not width or not height:
        return batch_size
    working = UpscalerTraits.of(upscaler).working_bytes_per_output_pixel
    needed = bytes_for_batch(width, height, scale, 1, bytes_per_sample, working, samples_per_pixel)
    batch = min(batch_size, int(0.8 * available // needed))  # the need grows linearly with the batch
    if batch >= 1:
        if batch < batch_size:
            warnings.warn(f"--batch-size lowered from {batch_size} to {batch} to fit in free memory")
        return batch
    raise SrpipeError(
        f"a {width}x{height} frame upscaled x{scale} needs about {needed / GIB:.1f} GiB, "
        f"but only {available / GIB:.1f} GiB is free; use a smaller --scale or free some memory"
    )


# The largest input frame srpipe reads without --max-pixels: above 8K UHD (33 megapixels) and
# a 36-megapixel photo, so real footage passes; a few-KB file whose header claims a huge
# frame (16000x16000) is refused before a decoder allocates gigabytes for it.
MAX_PIXELS_CAP = 40_000_000


def default_max_pixels(available: int | None = None) -> int:
    """``--max-pixels`` when not given: the cap, or less where free memory holds no x2 run of a
    frame that large (batch of one, 16-bit samples, the default working memory)."""
    available = available_memory() if available is None else available
    if not available:
        return MAX_PIXELS_CAP
    per_pixel = bytes_for_batch(1, 1, 2, 1, 2, DEFAULT_WORKING_BYTES)
    return max(1, min(MAX_PIXELS_CAP, int(0.8 * available / per_pixel)))


def check_frame_size(location: str, width: int | None, height: int | None, max_pixels: int | None) -> None:
    """Refuse a frame larger than ``max_pixels`` (None: the default) before it is decoded."""
    if not width or not height:
        return
    limit = default_max_pixels() if max_pixels is None else max_pixels
    if width * height > limit:
        raise SrpipeError(
            f"{location} has {width}x{height} frames ({width * height / 1e6:.1f} megapixels), over the limit of "
            f"{limit / 1e6:.1f} megapixels; if the file is genuine and memory allows, "
            f"pass --max-pixels {width * height}"
        )
