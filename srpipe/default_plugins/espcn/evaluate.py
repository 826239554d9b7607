"""Score an upscaler against bicubic on a folder of HR images (Y-PSNR / SSIM, border = scale)."""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from srpipe.default_plugins.espcn.color import load_y, modcrop
from srpipe.default_plugins.espcn.degrade import KERNELS, make_degraded_lr, parse_degradation
from srpipe.default_plugins.espcn.imresize import imresize
from srpipe.default_plugins.espcn.metrics import psnr, ssim
from srpipe.errors import SrpipeError
from srpipe.images import image_paths, image_size
from srpipe.memory import check_frame_size

#: Upscales (N, H, W) uint8 limited-range luma to (N, H*s, W*s) uint8.
UpscaleFn = Callable[[np.ndarray], np.ndarray]


@dataclass
class ImageScore:
    name: str
    psnr: float | None
    ssim: float | None
    bicubic_psnr: float
    bicubic_ssim: float


def to_uint8(y: np.ndarray) -> np.ndarray:
    """Round and clip to uint8."""
    return np.clip(np.rint(y), 0, 255).astype(np.uint8)


def make_lr(hr_y: np.ndarray, scale: int) -> np.ndarray:
    """The uint8 LR luma of a mod-cropped HR luma: MATLAB bicubic downscale, rounded."""
    return to_uint8(imresize(hr_y, 1.0 / scale))


def bicubic_upscale(lr: np.ndarray, scale: int) -> np.ndarray:
    """MATLAB bicubic upscale of uint8 luma, rounded to uint8."""
    return to_uint8(imresize(lr, scale))


def smallest_scorable(scale: int) -> int:
    """The least side, in pixels, of an image :func:`score_image` scores at x``scale``: SSIM's
    11x11 window inside the border the convention leaves out, after the crop to the scale."""
    return -(-(11 + 2 * scale) // scale) * scale


def _identity(path: Path) -> tuple[int, int]:
    """(device, inode): the file ``path`` names, links followed."""
    status = path.stat()
    return status.st_dev, status.st_ino


def first_of_its_file(path: Path, seen: dict[tuple[int, int], Path]) -> bool:
    """Whether ``path`` is a file not in ``seen`` ((device, inode) -> the path it came by first),
    which it then joins; a link or a hard link to a file seen is passed over with a warning, so
    that a mean counts each picture or clip once."""
    identity = _identity(path)
    if identity in seen:
        warnings.warn(f"skipped {path}: the same file as {seen[identity]}")
        return False
    seen[identity] = path
    return True


def distinct_images(paths: list[Path], seen: dict[tuple[int, int], Path]) -> list[Path]:
    """The images among ``paths`` whose files are not in ``seen`` (:func:`first_of_its_file`),
    sorted: each by its own name, before the links to it."""
    return sorted(path for path in sorted(paths, key=Path.is_symlink) if first_of_its_file(path, seen))


def training_images(folders, holdout: int = 0) -> tuple[list[Path], list[Path]]:
    """(training images, held-out images) of the ``--data`` folders: each file once (the same
    folder given twice, a link or a hard link to an image add nothing; :func:`distinct_images`),
    and ``holdout`` evenly spaced images of the last folder held out, trained on under none of
    their names. Only the images directly in a folder are read: sub-folders holding images are
    named in a warning, and a folder with no images of its own is refused, saying so."""
    seen = {}
    images = []
    for folder in folders:
        paths = image_paths(folder)
        if not paths:
            raise SrpipeError(f"no images in {folder}{_not_searched(folder)}")
        if below := _not_searched(folder, ""):
            warnings.warn(f"trained only on the images directly in {folder}{below}")
        images += distinct_images(paths, seen)
    with warnings.catch_warnings():  # each passed over was named above
        warnings.simplefilter("ignore")
        last = distinct_images(image_paths(folders[-1]), {})
    if holdout and holdout >= len(last):
        raise SrpipeError(f"--holdout {holdout} would hold out every image of {folders[-1]} ({len(last)}); "
                          "hold out fewer")
    held = [last[int(i * len(last) / holdout)] for i in range(holdout)]
    held_files = set(map(_identity, held))
    return [path for path in images if _identity(path) not in held_files], held


def _not_searched(folder: str | Path, otherwise: str = "; give a folder of PNG/BMP/JPEG/TIFF images") -> str:
    """What to say of ``folder``'s sub-folders that hold images (only the images directly in a
    folder are read), or ``otherwise`` where none does."""
    below = sorted(sub.name for sub in Path(folder).iterdir()
                   if sub.is_dir() and not sub.name.startswith(".") and image_paths(sub))
    return f"; its sub-folders with images ({', '.join(below)}) are not searched: give each as --data" if below \
        else otherwise


def folder_images(folder: str | Path) -> list[Path]:
    """The images directly in ``folder`` to score, each file once (:func:`distinct_images`), hidden
    ones left out as ``eval --video`` leaves them (macOS's ._NAME beside each picture on a shared
    drive is no picture); refused where there are none."""
    paths = distinct_images([path for path in image_paths(folder) if not path.name.startswith(".")], {})
    if not paths:
        raise SrpipeError(f"no images in {folder}{_not_searched(folder)}")
    return paths


class UnscorableImage(SrpipeError):
    """A picture that cannot be read or is too small to score: in a folder, it is skipped."""


def _too_small(name: str | Path, width: int, height: int, scale: int) -> None:
    least = smallest_scorable(scale)
    if min(width, height) < least:
        raise UnscorableImage(f"{name} is {width}x{height}, too small to score at x{scale}: it needs "
                              f"{least}x{least} pixels; leave it out of the folder")


def scorable_images(folder: str | Path, scale: int, max_pixels: int | None = None) -> list[Path]:
    """The images of ``folder`` (:func:`folder_images`), each checked from its header before any is
    decoded: refused where one has more pixels than ``max_pixels`` (None: ``--max-pixels``'s
    default), or is too small to score, so that a run stops at once, not part way through."""
    paths = folder_images(folder)
    for path in paths:
        size = image_size(str(path))
        check_frame_size(str(path), *(size or (None, None)), max_pixels)
        if size is not None:
            _too_small(path, *size, scale)
    return paths


def _scorable_luma(path: Path, scale: int) -> np.ndarray:
    """``path``'s luma (:func:`load_y`), or :class:`UnscorableImage` where it cannot be read or is too small."""
    try:
        luma = load_y(path)
    except SrpipeError as exc:
        raise UnscorableImage(str(exc)) from None
    _too_small(path, luma.shape[1], luma.shape[0], scale)
    return luma


def score_image(name: str, hr_y: np.ndarray, scale: int, upscale: UpscaleFn | None,
                downscale: str = "matlab-bicubic", degrade: str = "none") -> ImageScore:
    """Scores of ``upscale`` and of bicubic for one HR luma (float, [16, 235]), its LR shrunk
    with the ``downscale`` kernel and passed through ``degrade`` (:mod:`srpipe.default_plugins.espcn.degrade`)."""
    hr = modcrop(hr_y, scale)
    _too_small(name, hr_y.shape[1], hr_y.shape[0], scale)  # a picture whose header srpipe does not read
    lr = make_degraded_lr(hr, scale, downscale, degrade)
    bic = bicubic_upscale(lr, scale)
    p = s = None
    if upscale is not None:
        sr = upscale(lr[None])[0]
        p, s = psnr(sr, hr, scale), ssim(sr, hr, scale)
    return ImageScore(name, p, s, psnr(bic, hr, scale), ssim(bic, hr, scale))


def evaluate_folder(folder: str | Path, scale: int, upscale: UpscaleFn | None = None,
                    downscale: str = "matlab-bicubic", degrade: str = "none", max_pixels: int | None = None) -> dict:
    """Per-image and mean scores: ``{"images": [ImageScore as dict...], "mean": {...}, "not_scored":
    [{"image", "error"}]}``. An image whose header gives more pixels than ``max_pixels`` (None:
    ``--max-pixels``'s default) is refused before any is decoded; one that cannot be read or is
    too small to score is skipped with a warning and listed in ``not_scored``, as ``eval --video``
    skips a clip (the folder's one image: its error is the answer)."""
    parse_degradation(degrade)  # a bad setting fails before any image is read
    if downscale not in KERNELS:
        raise SrpipeError(f"unknown downscaling kernel {downscale!r}; use one of {', '.join(KERNELS)}")
    paths = folder_images(folder)
    for path in paths:  # all before any is scored: a refusal comes at once
        check_frame_size(str(path), *(image_size(str(path)) or (None, None)), max_pixels)
    scores, not_scored = [], []
    for path in paths:
        try:
            luma = _scorable_luma(path, scale)
        except UnscorableImage as exc:
            if len(paths) == 1:
                raise
            warnings.warn(f"skipped: {exc}")  # which names the picture
            not_scored.append({"image": str(path), "error": str(exc)})
            continue
        scores.append(score_image(path.name, luma, scale, upscale, downscale, degrade))
    if not scores:
        raise SrpipeError(f"none of the {len(paths)} images in {folder} could be scored (each named above)")
    keys = ["bicubic_psnr", "bicubic_ssim"] + (["psnr", "ssim"] if upscale else [])
    mean = {k: float(np.mean([getattr(s, k) for s in scores])) for k in keys}
    return {"images": [asdict(s) for s in scores], "mean": mean, "not_scored": not_scored}
