"""Training and validation data for luma super-resolution.

Convention: the network sees MATLAB-style Y (limited range, [16, 235]) divided by 255, which
is exactly 8-bit limited-range video luma / 255. LR inputs are rounded to 8 bits, as video is.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from srpipe.sr.color import load_y, modcrop
from srpipe.sr.evaluate import image_paths, make_lr
from srpipe.sr.imresize import imresize


def make_pairs(
    folders: Sequence[str | Path], scale: int, rescales: Sequence[float] = (1.0,)
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(LR uint8, HR float32 in [16, 235]) luma pairs for every image and HR rescale factor."""
    pairs = []
    for path in (p for folder in folders for p in image_paths(folder)):
        y = load_y(path)
        for f in rescales:
            hr = modcrop(y if f == 1.0 else imresize(y, f), scale)
            pairs.append((make_lr(hr, scale), hr.astype(np.float32)))
    return pairs


def cached_pairs(
    folders: Sequence[str | Path], scale: int, rescales: Sequence[float], cache_dir: str | Path
) -> list[tuple[np.ndarray, np.ndarray]]:
    """:func:`make_pairs`, stored in an ``.npz`` under ``cache_dir`` after the first call."""
    files = sorted(str(p) for folder in folders for p in image_paths(folder))
    key = hashlib.sha1(repr((files, scale, list(rescales))).encode()).hexdigest()[:16]
    path = Path(cache_dir) / f"srpairs-x{scale}-{key}.npz"
    if path.exists():
        with np.load(path) as z:
            n = len(z.files) // 2
            return [(z[f"lr{i}"], z[f"hr{i}"]) for i in range(n)]
    pairs = make_pairs(folders, scale, rescales)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial.npz")
    np.savez(tmp, **{f"{k}{i}": a for i, p in enumerate(pairs) for k, a in zip(("lr", "hr"), p)})
    tmp.replace(path)
    return pairs


class PatchSampler:
    """Random aligned LR/HR crops with a random flip/rot90 each, as ``(lr, hr)`` batches.

    ``lr`` is (B, 1, patch, patch) and ``hr`` (B, 1, patch*scale, patch*scale), both /255.
    Randomness comes from torch's global generator (so a trainer's seed and resume cover it).
    MATLAB imresize commutes with flips and transposes on mod-cropped images, so augmenting
    the pair equals degrading the augmented HR.
    """

    def __init__(self, pairs, scale: int, patch: int, batch_size: int, steps: int):
        self.scale, self.patch, self.batch_size, self.steps = scale, patch, batch_size, steps
        self.pairs = [(torch.from_numpy(lr), torch.from_numpy(hr)) for lr, hr in pairs
                      if min(lr.shape) >= patch]
        if not self.pairs:
            raise ValueError(f"no training image is at least {patch} LR pixels on each side")
        areas = torch.tensor([float(lr.numel()) for lr, _ in self.pairs])
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
            i = int(torch.randint(0, lr.shape[0] - p + 1, ()))
            j = int(torch.randint(0, lr.shape[1] - p + 1, ()))
            lrs.append(dihedral(lr[i:i + p, j:j + p], a))
            hrs.append(dihedral(hr[i * s:(i + p) * s, j * s:(j + p) * s], a))
        lr = torch.stack(lrs)[:, None].float() / 255.0
        hr = torch.stack(hrs)[:, None] / 255.0
        return lr, hr


def dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """One of the 8 flips/rotations of a 2-D tensor."""
    x = torch.rot90(x, k % 4)
    return x.flip(-1) if k >= 4 else x


def eval_batches(folder: str | Path, scale: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """One ``(lr, hr)`` batch per image of ``folder``, /255, as :func:`evaluate_folder` sees it."""
    out = []
    for path in image_paths(folder):
        hr = modcrop(load_y(path), scale)
        lr = make_lr(hr, scale)
        out.append((torch.from_numpy(lr)[None, None].float() / 255.0,
                    torch.from_numpy(hr.astype(np.float32))[None, None] / 255.0))
    return out
