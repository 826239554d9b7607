"""Train a classifier with the shared :class:`~srpipe.nn.trainer.Trainer`."""

from __future__ import annotations

from typing import Callable

from torch import nn
from torch.utils.data import DataLoader, Dataset

from srpipe.default_plugins.classifier.datasets import DatasetSpec
from srpipe.default_plugins.classifier.task import ClassificationTask
from srpipe.nn.registry import build_network
from srpipe.nn.trainer import TrainConfig, Trainer

TEST_BATCH = 1000  # the Trainer averages per batch: exact on 10,000 test images


def build_classifier(spec: DatasetSpec, arch: str | None = None, **config) -> nn.Module:
    """A fresh network for ``spec``'s images and classes (``config`` overrides its defaults)."""
    shape = {"in_channels": spec.channels, "image_size": spec.size, "num_classes": len(spec.classes)}
    return build_network(arch or spec.default_arch, {**shape, **config})


def checkpoint_meta(spec: DatasetSpec) -> dict:
    """What inference needs to know besides the weights."""
    return {"dataset": spec.name, "classes": list(spec.classes),
            "input": [spec.channels, spec.size, spec.size], "dark_background": spec.dark_background}


def train_classifier(network: nn.Module, spec: DatasetSpec, train_set: Dataset, test_set: Dataset,
                     config: TrainConfig, *, batch_size: int = 128, label_smoothing: float = 0.0,
                     augment: bool = True, resume: bool = False, overwrite: bool = False,
                     on_epoch: Callable[[dict], None] | None = None) -> Trainer:
    """Train ``network`` on ``train_set`` (augmented, as ``augment`` records), measuring accuracy
    on ``test_set`` every epoch.

    With ``config.out_dir`` the Trainer writes ``last.pt`` every epoch (``resume`` continues
    from it; ``overwrite`` starts an unfinished run there afresh), ``final.pt`` and ``log.jsonl``;
    ``on_epoch(record)`` as each epoch ends (:meth:`Trainer.fit`).
    """
    train_loader = DataLoader(train_set, batch_size=batch_size, shuffle=True)
    test_loader = DataLoader(test_set, batch_size=TEST_BATCH)
    # what a resume must share with the run's start, by the options that set them: the optimizer's
    # state comes back with its weight decay, the schedule counts steps of this batch size
    settings = {"--batch-size": batch_size, "--no-augment": not augment, "--label-smoothing": label_smoothing,
                "--weight-decay": config.weight_decay, "--seed": config.seed}
    trainer = Trainer(network, ClassificationTask(label_smoothing), train_loader, test_loader, config,
                      meta={**checkpoint_meta(spec), "training": settings},
                      same_on_resume={"dataset": spec.name, **settings})
    trainer.fit(resume=resume, overwrite=overwrite, on_epoch=on_epoch)
    return trainer
