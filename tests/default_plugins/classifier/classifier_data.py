"""Tiny generated classification data: bars in four orientations at random places, with noise."""

import gzip
import struct
from pathlib import Path

import numpy as np
from PIL import Image
from torch.utils.data import Dataset


def bar_images(count: int, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(count, size, size) uint8 light bars on black: horizontal, vertical and the two diagonals."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, count)
    images = rng.integers(0, 40, (count, size, size)).astype(np.uint8)
    y, x = np.mgrid[0:size, 0:size]
    for image, label in zip(images, labels):
        cy, cx = rng.integers(size // 4, 3 * size // 4, 2)
        offset = [y - cy, x - cx, (y - cy) - (x - cx), (y - cy) + (x - cx)][label]
        near = (np.abs(offset) <= 1) & (np.abs(y - cy) < size // 3) & (np.abs(x - cx) < size // 3)
        image[near] = 255
    return images, labels


class BarImages(Dataset):
    """PIL images and labels, as torchvision's data sets give them (``transform`` applied)."""

    def __init__(self, count: int, size: int, channels: int, transform, seed: int = 0):
        self.images, self.labels = bar_images(count, size, seed)
        self.channels, self.transform = channels, transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        image = Image.fromarray(self.images[i]).convert("RGB" if self.channels == 3 else "L")
        return self.transform(image), int(self.labels[i])


def write_fake_mnist(root: Path, folder: str = "MNIST", train: int = 512, test: int = 200) -> Path:
    """Bar images in torchvision's MNIST layout (idx files in ``root/folder/raw``)."""
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    for prefix, count, seed in (("train", train, 1), ("t10k", test, 2)):
        images, labels = bar_images(count, 28, seed)
        with gzip.open(raw / f"{prefix}-images-idx3-ubyte.gz", "wb") as f:
            f.write(struct.pack(">IIII", 2051, count, 28, 28) + images.tobytes())
        with gzip.open(raw / f"{prefix}-labels-idx1-ubyte.gz", "wb") as f:
            f.write(struct.pack(">II", 2049, count) + labels.astype(np.uint8).tobytes())
        for name in (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"):
            (raw / name).write_bytes(gzip.decompress((raw / f"{name}.gz").read_bytes()))
    return root


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG header; fails if the file is not a PNG."""
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])
