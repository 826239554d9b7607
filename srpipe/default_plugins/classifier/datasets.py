"""The torchvision data sets a classifier can be trained on, with their augmentation."""

from __future__ import annotations

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
    split = "train" if train else "test"
    try:
        return cls(str(root), train=train, download=download, transform=spec.transform(train, augment))
    except PermissionError as e:
        raise SrpipeError(
            f"cannot unpack {spec.name} under {root} ({e.strerror}: {e.filename}); copy the folder "
            f"somewhere writable (cp -r {root} /tmp/datasets) and pass --root /tmp/datasets"
        ) from None
    except (RuntimeError, URLError, OSError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise SrpipeError(
            f"the {spec.name} {split} split is not under {root} and could not be downloaded ({first}); "
            f"pass --root with a folder holding torchvision's {spec.torchvision_name} files, or go online"
        ) from None
