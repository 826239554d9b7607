"""Memory planning: how many frames fit in memory at once, and how freed memory is kept."""

from __future__ import annotations

import ctypes
import warnings
from pathlib import Path
from typing import Iterator

from srpipe.errors import SrpipeError
from srpipe.models import UpscalerTraits
from srpipe.plugin_guard import exits_as_errors

GIB = 1 << 30
# The share of free memory a run may plan to take: the rest is for what the plan does not count
# (the interpreter's and libraries' own growth, other processes meanwhile)
USABLE_SHARE = 0.8
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
    """Memory this process may still take: MemAvailable from /proc/meminfo, or less where a
    control group (a container's limit) allows less; None where neither can be read."""
    found = [free for free in (_meminfo_available(), cgroup_memory_free()) if free is not None]
    return min(found) if found else None


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


# Where the kernel says which control groups this process is in, and where they are mounted.
PROC_CGROUP = "/proc/self/cgroup"
CGROUP_MOUNT = "/sys/fs/cgroup"
_UNLIMITED = 1 << 60  # cgroup v1 writes "no limit" as a number near 2**63
# (limit, usage, the memory.stat line of page cache the kernel reclaims before it kills) per version
_CGROUP_FILES = {2: ("memory.max", "memory.current", "inactive_file"),
                 1: ("memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file")}


def cgroup_memory_free(proc_cgroup: str | None = None, mount: str | None = None) -> int | None:
    """What the memory limit of this process's control group still allows (cgroup v2's
    ``memory.max``, v1's ``memory.limit_in_bytes``): the limit less the usage, page cache
    that can be reclaimed not counted as used; the tightest over the group and the groups
    above it. A container's limit is not in MemAvailable: over it, the kernel kills the run.
    None where no limit is set or none can be read (not Linux)."""
    proc_cgroup, mount = proc_cgroup or PROC_CGROUP, Path(mount or CGROUP_MOUNT)
    try:
        with open(proc_cgroup) as file:
            lines = file.read().splitlines()
    except (OSError, ValueError):  # ValueError: not text
        return None
    free = []
    for line in lines:
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and not controllers:
            version, root = 2, mount
        elif "memory" in controllers.split(","):
            version, root = 1, mount / "memory"
        else:
            continue
        # In a container the group's own path is often not under the mount, whose root is then
        # the container's group: every folder from the group's up to the mount's root is read.
        parts = [part for part in path.split("/") if part]
        for depth in range(len(parts), -1, -1):
            limit = _cgroup_free(root.joinpath(*parts[:depth]), *_CGROUP_FILES[version])
            if limit is not None:
                free.append(limit)
    return max(0, min(free)) if free else None


def _cgroup_free(folder: Path, limit_name: str, usage_name: str, reclaimable_name: str) -> int | None:
    try:
        limit = (folder / limit_name).read_text().strip()
        if limit == "max" or int(limit) >= _UNLIMITED:
            return None
        usage = int((folder / usage_name).read_text())
    except (OSError, ValueError):
        return None
    reclaimable = 0
    try:
        for line in (folder / "memory.stat").read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == reclaimable_name:
                reclaimable = int(value)
    except (OSError, ValueError):
        pass
    return int(limit) - max(0, usage - reclaimable)


# Pixels worked on at a time where a picture's samples go through float copies (the colour
# conversion of a still image, a shrink's widened samples): the copies then take megabytes
# however large the picture, not several times its size.
BAND_PIXELS = 1 << 18


def row_bands(height: int, width: int, pixels: int = BAND_PIXELS) -> Iterator[slice]:
    """Slices of consecutive rows, of about ``pixels`` pixels each, covering ``height`` rows."""
    rows = max(1, pixels // max(1, width))
    for top in range(0, height, rows):
        yield slice(top, min(top + rows, height))


def refuse_unless_fits(needed: int, what: str, available: int | None = None) -> None:
    """Refuse ``what`` (``a 4000x3000 image upscaled x4``) where it needs more than
    :data:`USABLE_SHARE` of the memory free (:func:`available_memory`), before anything large is allocated: the
    kernel would kill the run part way through instead."""
    available = available_memory() if available is None else available
    if available is not None and needed > USABLE_SHARE * available:
        raise SrpipeError(_too_large(what, needed, available))


def _too_large(what: str, needed: int, available: int) -> str:
    limited = cgroup_memory_free()
    where = " under this container's memory limit" if limited is not None and limited <= available else ""
    return (f"{what} needs about {needed / GIB:.1f} GiB, over the {USABLE_SHARE * available / GIB:.1f} GiB srpipe "
            f"takes of the {available / GIB:.1f} GiB free{where} ({USABLE_SHARE:.0%}); use a smaller --scale or free "
            f"some memory{' (or raise the limit)' if where else ''}")


def working_bytes(traits: UpscalerTraits, frames: int, width: int, height: int, scale: int) -> int:
    """The model's working memory for ``frames`` frames of ``width`` x ``height`` upscaled x``scale``:
    what it states (``UpscalerTraits.working_bytes``), else its bytes per output pixel."""
    if traits.working_bytes is not None:
        with exits_as_errors():  # a plugin's code
            return traits.working_bytes(frames, width, height)
    return frames * width * height * scale * scale * traits.working_bytes_per_output_pixel


def bytes_for_batch(width: int, height: int, scale: int, batch: int, bytes_per_sample: int,
                    working: int | UpscalerTraits, samples_per_pixel: int = 3, video: bool = True) -> int:
    """Memory for ``batch`` frames in flight: two queues of decoded and of upscaled
    frames (2 x batch each, of ``samples_per_pixel``), for ``video`` the batch whose chroma is
    resized while the model works on the next (its frames and upscaled luma), plus the model's
    working memory (``working``: the upscaler's traits, or its bytes per output pixel)."""
    in_px, out_px = width * height, width * height * scale * scale
    queued = 2 * batch * samples_per_pixel * bytes_per_sample * (in_px + out_px)
    if video:
        queued += batch * bytes_per_sample * (samples_per_pixel * in_px + out_px)
    if not isinstance(working, UpscalerTraits):
        working = UpscalerTraits(working_bytes_per_output_pixel=working)
    return queued + working_bytes(working, batch, width, height, scale)


def fit_batch_size(width, height, scale, batch_size, bytes_per_sample, upscaler, available=None,
                   samples_per_pixel: int = 3) -> int:
    """The largest batch size up to ``batch_size`` that fits in 80% of free memory.

    Refuses, with the size it would need, when not even one frame fits.
    """
    available = available_memory() if available is None else available
    if available is None or not width or not height:  # 0 free is known, and fits nothing
        return batch_size
    traits = UpscalerTraits.of(upscaler)

    def needed(batch: int) -> int:
        return bytes_for_batch(width, height, scale, batch, bytes_per_sample, traits, samples_per_pixel)

    if needed(1) > USABLE_SHARE * available:
        raise SrpipeError(_too_large(f"a {width}x{height} frame upscaled x{scale}", needed(1), available))
    low, high = 1, batch_size  # the need grows with the batch: the largest that fits, found by halves
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if needed(middle) <= USABLE_SHARE * available else (low, middle - 1)
    if low < batch_size:
        warnings.warn(f"--batch-size lowered from {batch_size} to {low} to fit in free memory")
    return low


# The largest input frame srpipe reads without --max-pixels: above 8K UHD (33 megapixels) and
# a 36-megapixel photo, so real footage passes; a few-KB file whose header claims a huge
# frame (16000x16000) is refused before a decoder allocates gigabytes for it.
MAX_PIXELS_CAP = 40_000_000
FFMPEG_INT_MAX = 2**31 - 1  # the largest value of FFmpeg's int options


def default_max_pixels(available: int | None = None) -> int:
    """``--max-pixels`` when not given: the cap, or less where free memory holds no x2 run of a
    frame that large (batch of one, 16-bit samples, the default working memory; a picture's run:
    a video's, which holds one batch more, is planned again by :func:`fit_batch_size`)."""
    available = available_memory() if available is None else available
    if available is None:
        return MAX_PIXELS_CAP
    per_pixel = bytes_for_batch(1, 1, 2, 1, 2, DEFAULT_WORKING_BYTES, video=False)
    return max(1, min(MAX_PIXELS_CAP, int(USABLE_SHARE * available / per_pixel)))


def decoder_pixels(max_pixels: int) -> str:
    """The ``max_pixels`` FFmpeg's decoders are given for frames of at most ``max_pixels`` (which
    srpipe checks on the header's size): room for the rows they count aligned (H.264: a 160x90
    frame counts as 192x90), so that a frame within the limit decodes; a stream that grows far
    beyond it is still refused. FFmpeg takes at most a C int there: a limit raised past it (a
    billion pixels and more) gives FFmpeg its largest, where a larger one failed every decode."""
    return str(min(2 * max_pixels + (1 << 20), FFMPEG_INT_MAX))


def check_frame_size(location: str, width: int | None, height: int | None, max_pixels: int | None) -> None:
    """Refuse a frame larger than ``max_pixels`` (None: the default) before it is decoded."""
    if not width or not height:
        return
    limit = default_max_pixels() if max_pixels is None else max_pixels
    if width * height > limit:
        raise SrpipeError(
            f"{location} has {width}x{height} frames ({_pixels(width * height)}), over the limit of {_pixels(limit)}; "
            f"if the file is genuine and memory allows, pass --max-pixels {width * height}"
        )


def _pixels(count: int) -> str:
    return f"{count / 1e6:.1f} megapixels" if count >= 100_000 else f"{count} pixels"
