"""Memory planning: how many frames fit in memory at once, and how freed memory is kept."""

from __future__ import annotations

import ctypes
import warnings

from srpipe.errors import SrpipeError

GIB = 1 << 30
# Float32 working copies per output pixel when an upscaler states none (input and output).
DEFAULT_WORKING_BYTES = 8


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc mallopt() parameters


def retain_freed_memory(limit: int = GIB) -> bool:
    """Keep freed blocks below ``limit`` in the process for reuse (glibc only).

    By default glibc serves blocks over 128 KiB-32 MiB with fresh mmap() calls and hands
    them back on free(). Torch's CPU activations (megabytes per tile, per layer) then cost
    a page fault per 4 KiB page on every frame (README, Speed). Peak memory is unchanged;
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


def bytes_for_batch(width: int, height: int, scale: int, batch: int, bytes_per_sample: int, working: int) -> int:
    """Memory for ``batch`` frames in flight: two queues of decoded and of upscaled
    frames (2 x batch each, 4:4:4 at worst) plus the model's working memory."""
    in_px, out_px = width * height, width * height * scale * scale
    queued = 2 * batch * 3 * bytes_per_sample * (in_px + out_px)
    return queued + batch * out_px * working


def fit_batch_size(width, height, scale, batch_size, bytes_per_sample, upscaler, available=None) -> int:
    """The largest batch size up to ``batch_size`` that fits in 80% of free memory.

    Refuses, with the size it would need, when not even one frame fits.
    """
    available = available_memory() if available is None else available
    if not available or not width or not height:
        return batch_size
    working = getattr(upscaler, "working_bytes_per_output_pixel", DEFAULT_WORKING_BYTES)
    budget = 0.8 * available
    for batch in range(batch_size, 0, -1):
        if bytes_for_batch(width, height, scale, batch, bytes_per_sample, working) <= budget:
            if batch < batch_size:
                warnings.warn(f"--batch-size lowered from {batch_size} to {batch} to fit in free memory")
            return batch
    needed = bytes_for_batch(width, height, scale, 1, bytes_per_sample, working)
    raise SrpipeError(
        f"a {width}x{height} frame upscaled x{scale} needs about {needed / GIB:.1f} GiB, "
        f"but only {available / GIB:.1f} GiB is free; use a smaller --scale or free some memory"
    )
