"""The torchvision data sets a classifier can be trained on, with their augmentation."""

from __future__ import annotations

import contextlib
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.error import URLError

from srpipe.errors import SrpipeError

if TYPE_CHECKING:
    from torch.utils.data import Dataset

DEFAULT_ROOT = Path.home() / ".cache" / "srpipe" / "datasets"

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")


@dataclass(frozen=True)
class DatasetSpec:
    """A data set: its torchvision class, classes, image shape and training augmentation.

    ``dark_background``: objects are light on black (MNIST), so inputs with a light
    background are inverted before classification.
    """

    name: str
    torchvision_name: str
    classes: tuple[str, ...]
    channels: int
    size: int
    dark_background: bool
    default_arch: str

    def augmentation(self) -> list:
        """Random transforms applied to training images (PIL) before ``ToTensor``."""
        from torchvision import transforms

        if self.name == "mnist":  # digits must not be mirrored
            return [transforms.RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.9, 1.1))]
        pad = self.size // 8
        return [transforms.RandomCrop(self.size, padding=pad), transforms.RandomHorizontalFlip()]

    def transform(self, train: bool, augment: bool = True):
        """PIL image -> float tensor (C, H, W) in [0, 1], augmented for training."""
        from torchvision import transforms

        steps = self.augmentation() if train and augment else []
        return transforms.Compose([*steps, transforms.ToTensor()])


DATASETS = {
    "mnist": DatasetSpec("mnist", "MNIST", tuple(str(d) for d in range(10)), 1, 28, True, "small-cnn"),
    "fashion-mnist": DatasetSpec("fashion-mnist", "FashionMNIST", FASHION_CLASSES, 1, 28, True, "small-cnn"),
    "cifar10": DatasetSpec("cifar10", "CIFAR10", CIFAR10_CLASSES, 3, 32, False, "lenet"),
}


def get_spec(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except KeyError:
        raise SrpipeError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}") from None


def load_split(spec: DatasetSpec, root: str | Path, train: bool, augment: bool = True,
               download: bool = True) -> Dataset:
    """The train or test split of ``spec`` from ``root`` (torchvision's layout), downloading
    it there when it is missing and the machine is online."""
    from torchvision import datasets

    root = Path(root).expanduser()
    cls = getattr(datasets, spec.torchvision_name)
    try:
        with _removed_on_failure(root):
            return cls(str(root), train=train, download=download, transform=spec.transform(train, augment))
    except PermissionError as e:
        raise SrpipeError(
            f"cannot unpack {spec.name} under {root} ({e.strerror}: {e.filename}); copy the folder "
            f"somewhere writable (cp -r {root} /tmp/datasets) and pass --root /tmp/datasets"
        ) from None
    except (RuntimeError, URLError, OSError) as e:
        # torchvision fetches both splits' files whichever is asked for, so the message names the
        # data set, and the file whose download failed with its reason (the last line of its text)
        lines = [line.strip() for line in str(e).splitlines() if line.strip()] or [type(e).__name__]
        why = lines[0] if len(lines) == 1 else f"{lines[0]} {lines[-1]}"
        raise SrpipeError(
            f"the {spec.name} data set (its train and test files) is not under {root} and could not be "
            f"downloaded ({why}); pass --root with a folder holding torchvision's {spec.torchvision_name} files, "
            "or go online"
        ) from None


@contextlib.contextmanager
def _removed_on_failure(root: Path):
    """Remove, if what it wraps fails, what appeared under ``root`` meanwhile (torchvision makes
    its folders, ``FashionMNIST/raw``, before it fetches a byte), and ``root`` itself and the
    folders above it that did not exist: an error leaves nothing behind. What was there before
    stays: the paths two levels deep, as deep as torchvision's layouts make folders."""
    missing = [path for path in (root, *root.parents) if not path.exists()]
    before = set() if missing else {path for pattern in ("*", "*/*") for path in root.glob(pattern)}
    try:
        yield
    except BaseException:
        if missing:
            shutil.rmtree(missing[-1], ignore_errors=True)
        else:
            for path in sorted({path for pattern in ("*", "*/*") for path in root.glob(pattern)} - before):
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
        raise
