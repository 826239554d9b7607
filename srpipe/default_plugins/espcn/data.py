"""Training and validation data for luma super-resolution.

Convention: the network sees MATLAB-style Y (limited range, [16, 235]) divided by 255, which
is exactly 8-bit limited-range video luma / 255. LR inputs are rounded to 8 bits, as video is.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from srpipe import cache
from srpipe.default_plugins.espcn.color import load_y, modcrop
from srpipe.default_plugins.espcn.evaluate import make_lr
from srpipe.default_plugins.espcn.imresize import imresize
from srpipe.images import image_paths


def make_pairs(
    paths: Sequence[str | Path], scale: int, rescales: Sequence[float] = (1.0,)
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(LR uint8, HR float32 in [16, 235]) luma pairs for every image file of ``paths`` and HR
    rescale factor."""
    pairs = []
    for path in paths:
        y = load_y(path)
        for f in rescales:
            hr = modcrop(y if f == 1.0 else imresize(y, f), scale)
            pairs.append((make_lr(hr, scale), hr.astype(np.float32)))
    return pairs


def cached_pairs(
    paths: Sequence[str | Path], scale: int, rescales: Sequence[float], cache_dir: str | Path
) -> list[tuple[np.ndarray, np.ndarray]]:
    """:func:`make_pairs`, stored in an ``.npz`` under ``cache_dir`` after the first call (:func:`_read_npz`)."""
    files = sorted(str(p) for p in paths)
    key = hashlib.sha1(repr((_stamps(files), scale, list(rescales))).encode()).hexdigest()[:16]
    name = f"srpairs-x{scale}-{key}.npz"

    def unpack(z):
        pairs = [(z[f"lr{i}"], z[f"hr{i}"]) for i in range(len(z.files) // 2)]
        fits = all(lr.ndim == 2 and hr.shape == (lr.shape[0] * scale, lr.shape[1] * scale) for lr, hr in pairs)
        return pairs if fits and pairs else None

    pairs = _read_npz(cache_dir, name, unpack)
    if pairs is None:
        pairs = make_pairs(paths, scale, rescales)
        _write_npz(cache_dir, name, **{f"{k}{i}": a for i, p in enumerate(pairs) for k, a in zip(("lr", "hr"), p)})
    return pairs


def _stamps(files: Sequence[str]) -> list[tuple[str, int, int]]:
    """What a cached entry is keyed by: each file's real path, size and time of change, so that
    the same names in another folder, or a file rewritten, make it afresh."""
    stamps = []
    for file in files:
        info = os.stat(file)
        stamps.append((os.path.realpath(file), info.st_size, info.st_mtime_ns))
    return stamps


def _read_npz(cache_dir: str | Path, name: str, unpack):
    """``unpack(arrays)`` of the ``.npz`` kept as ``name`` under ``cache_dir``, or None where it is
    missing, refused (:func:`srpipe.cache.opened`), damaged, unpacks to more than the file holds
    (srpipe writes them uncompressed), or ``unpack`` finds its arrays do not fit (None): then it
    is made again."""
    import zipfile

    with cache.opened(Path(cache_dir), name) as file:
        if file is None:
            return None
        try:
            with zipfile.ZipFile(file) as archive:
                unpacked = sum(member.file_size for member in archive.infolist())
            if unpacked > os.fstat(file.fileno()).st_size:
                return None
            file.seek(0)
            with np.load(file, allow_pickle=False) as arrays:
                return unpack(arrays)
        except (OSError, ValueError, KeyError, TypeError, IndexError, zipfile.BadZipFile):
            return None


def _write_npz(cache_dir: str | Path, name: str, **arrays) -> None:
    """Keep ``arrays`` as the ``.npz`` ``name`` under ``cache_dir`` where it can (:func:`srpipe.cache.replacing`)."""
    with cache.replacing(Path(cache_dir), name) as file:
        if file:
            np.savez(file, **arrays)


class PatchSampler:
    """Random aligned LR/HR crops with a random flip/rot90 each, as ``(lr, hr)`` batches.

    ``lr`` is (B, F, patch, patch) and ``hr`` (B, 1, patch*scale, patch*scale), both /255, where
    F is 1 for (H, W) LR images and ``frames`` for (frames, H, W) stacks of a temporal network's
    input (the current frame last, :mod:`srpipe.default_plugins.espcn.temporal`). With
    ``mismatch``, each earlier frame of a stack is, with that probability, cropped up to
    ``MISMATCH_SHIFT`` pixels away from where it aligns: what a moving subject or a scene cut
    gives, so that the network learns to use an earlier frame only where it matches.
    Randomness comes from torch's global generator (so a trainer's seed and resume cover it).
    MATLAB imresize commutes with flips and transposes on mod-cropped images, so augmenting
    the pair equals degrading the augmented HR.
    """

    MISMATCH_SHIFT = 8

    def __init__(self, pairs, scale: int, patch: int, batch_size: int, steps: int, mismatch: float = 0.0):
        self.scale, self.patch, self.batch_size, self.steps = scale, patch, batch_size, steps
        self.mismatch = mismatch
        self.pairs = [(torch.from_numpy(lr), torch.from_numpy(hr)) for lr, hr in pairs
                      if min(lr.shape[-2:]) >= patch]
        if not self.pairs:
            raise ValueError(f"no training image is at least {patch} LR pixels on each side")
        areas = torch.tensor([float(lr.shape[-1] * lr.shape[-2]) for lr, _ in self.pairs])
        self.weights = areas / areas.sum()

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for _ in range(self.steps):
            yield self.batch()

    def batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        p, s = self.patch, self.scale
        idx = torch.multinomial(self.weights, self.batch_size, replacement=True)
        aug = torch.randint(0, 8, (self.batch_size,))
        lrs, hrs = [], []
        for k, a in zip(idx.tolist(), aug.tolist()):
            lr, hr = self.pairs[k]
            lr = lr if lr.dim() == 3 else lr[None]
            h, w = lr.shape[-2:]
            i = int(torch.randint(0, h - p + 1, ()))
            j = int(torch.randint(0, w - p + 1, ()))
            crop = lr[:, i:i + p, j:j + p]
            if self.mismatch and len(lr) > 1:
                crop = torch.stack([self._earlier(lr[f], i, j) for f in range(len(lr) - 1)] + [crop[-1]])
            lrs.append(dihedral(crop, a))
            hrs.append(dihedral(hr[i * s:(i + p) * s, j * s:(j + p) * s], a))
        lr = torch.stack(lrs).float() / 255.0
        hr = torch.stack(hrs)[:, None] / 255.0
        return lr, hr

    def _earlier(self, frame: torch.Tensor, i: int, j: int) -> torch.Tensor:
        """An earlier frame's crop at (i, j), or with probability ``mismatch`` one nearby."""
        p = self.patch
        if float(torch.rand(())) < self.mismatch:
            m = self.MISMATCH_SHIFT
            i = min(max(i + int(torch.randint(-m, m + 1, ())), 0), frame.shape[0] - p)
            j = min(max(j + int(torch.randint(-m, m + 1, ())), 0), frame.shape[1] - p)
        return frame[i:i + p, j:j + p]


def dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """One of the 8 flips/rotations of a tensor's last two dimensions."""
    x = torch.rot90(x, k % 4, dims=(-2, -1))
    return x.flip(-1) if k >= 4 else x


def eval_batches(folder: str | Path, scale: int, frames: int = 1) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """One ``(lr, hr)`` batch per image of ``folder``, /255, as :func:`evaluate_folder` sees it
    (for a temporal network of ``frames`` input frames, the image stands in for those before it)."""
    out = []
    for path in image_paths(folder):
        hr = modcrop(load_y(path), scale)
        lr = make_lr(hr, scale)
        out.append((torch.from_numpy(lr)[None, None].float().repeat(1, frames, 1, 1) / 255.0,
                    torch.from_numpy(hr.astype(np.float32))[None, None] / 255.0))
    return out


def degraded_clips(
    paths: Sequence[str | Path], scale: int, *, variants: int = 4, frames: int = 6,
    kernels: Sequence[str] = ("matlab-bicubic",), crf_range: tuple[int, int] = (18, 36),
    lossless: float = 0.15, jpeg: float = 0.0, max_step: int = 4, seed: int = 0,
) -> tuple[list[np.ndarray], list[tuple[np.ndarray, int, int, int]]]:
    """Short pan clips over each HR image, shrunk and really compressed, for training.

    For every image and each of ``variants``: a window pans up to ``max_step`` HR pixels per
    frame in x and y (sub-pixel motion at LR), each of ``frames`` windows is shrunk with a
    kernel drawn from ``kernels``, and the clip is encoded by x264 at a crf drawn from
    ``crf_range`` (or 0, lossless, with probability ``lossless``) and decoded, so P and B
    frames carry the artefacts of real video. With probability ``jpeg`` a variant is a single
    still through libjpeg (quality 30-95) instead. Returns the HR images (float32) and, per LR
    frame, ``(lr uint8, image index, top, left, clip index)`` of its HR window, each clip's frames
    together and in order.
    """
    from srpipe.default_plugins.espcn.degrade import degrade_frames, downscale, pan_offsets

    hrs, frames_out = [], []
    for k, path in enumerate(paths):
        hr = modcrop(load_y(path), scale).astype(np.float32)
        hrs.append(hr)
        for v in range(variants):
            rng = np.random.default_rng([seed, k, v])
            kernel = kernels[int(rng.integers(len(kernels)))]
            r = rng.random()
            if r < jpeg:
                n, degradation = 1, f"jpeg:quality={int(rng.integers(30, 96))}"
            else:
                crf = 0 if r < jpeg + lossless else int(rng.integers(crf_range[0], crf_range[1] + 1))
                n, degradation = frames, f"x264:crf={crf}"
            step = tuple(int(t) for t in rng.integers(-max_step, max_step + 1, 2))
            offsets = pan_offsets(n, step)
            h = hr.shape[0] - max(o[0] for o in offsets)
            w = hr.shape[1] - max(o[1] for o in offsets)
            h, w = h - h % scale, w - w % scale
            if min(h, w) < 8 * scale:
                continue
            lr = np.stack([downscale(hr[y:y + h, x:x + w], scale, kernel) for y, x in offsets])
            lr = degrade_frames(lr, degradation)
            clip = frames_out[-1][4] + 1 if frames_out else 0
            frames_out += [(f, k, y, x, clip) for f, (y, x) in zip(lr, offsets)]
    return hrs, frames_out


def cached_degraded_pairs(paths: Sequence[str | Path], scale: int, cache_dir: str | Path, *, stack: int = 1,
                          **settings) -> list[tuple[np.ndarray, np.ndarray]]:
    """:func:`degraded_clips` as ``(lr, hr window)`` pairs, stored in an ``.npz`` under
    ``cache_dir`` keyed by the images and settings (the HR windows are views of one array per
    image, so the cache and memory hold each HR image once; :func:`_read_npz`). With ``stack``
    above 1, each ``lr`` is the (stack, H, W) input of a temporal network: the frame after the
    frames of its clip before it, aligned (:func:`srpipe.default_plugins.espcn.temporal.stack_clip`)."""
    from srpipe.default_plugins.espcn.temporal import stack_clip

    files = sorted(str(p) for p in paths)
    key = hashlib.sha1(repr((_stamps(files), scale, sorted(settings.items()))).encode()).hexdigest()[:16]
    name = f"srclips2-x{scale}-{key}.npz"

    def unpack(z):
        where = z["where"]
        hrs = [z[f"hr{i}"] for i in range(int(z["n_hr"]))]
        frames = [(z[f"lr{i}"], *map(int, where[i])) for i in range(len(where))]
        # each frame's HR window (image k, top y, left x) must lie in its image
        fits = all(lr.ndim == 2 and 0 <= k < len(hrs) and 0 <= y and 0 <= x
                   and y + lr.shape[0] * scale <= hrs[k].shape[0] and x + lr.shape[1] * scale <= hrs[k].shape[1]
                   for lr, k, y, x, _ in frames)
        return (hrs, frames) if fits and frames else None

    kept = _read_npz(cache_dir, name, unpack)
    if kept is None:
        hrs, frames = degraded_clips(files, scale, **settings)
        _write_npz(cache_dir, name, n_hr=len(hrs), where=np.array([f[1:] for f in frames], np.int64).reshape(-1, 4),
                   **{f"hr{i}": h for i, h in enumerate(hrs)}, **{f"lr{i}": f[0] for i, f in enumerate(frames)})
    else:
        hrs, frames = kept
    if stack > 1:  # each clip's frames are together and in order (degraded_clips)
        lrs = [lr for _, clip in itertools.groupby(frames, key=lambda f: f[4])
               for lr in stack_clip(np.stack([f[0] for f in clip]), stack)]
    else:
        lrs = [f[0] for f in frames]
    return [(lr, hrs[k][y:y + lr.shape[-2] * scale, x:x + lr.shape[-1] * scale])
            for lr, (_, k, y, x, _) in zip(lrs, frames)]
