"""A trained classifier: its network, classes and input shape, loaded from a checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from srpipe.errors import CheckpointError, SrpipeError
from srpipe.nn.checkpoint import load_checkpoint, network_from_checkpoint

WEIGHTS_DIR = Path(__file__).parent / "weights"


def shipped_weights(name: str) -> Path:
    """The checkpoint shipped for model ``name`` (e.g. ``fashion-mnist``)."""
    return WEIGHTS_DIR / f"{name}.pt"


def check_meta(meta: dict, config: dict, checkpoint: str | Path) -> None:
    """Refuse a classifier checkpoint whose ``meta`` does not describe its network as srpipe's
    training writes it: ``classes``, one name per output of the network; ``input``, [C, H, W]
    with the channels and square side of the network's config; ``dark_background`` a bool and
    ``dataset`` a name, where present."""
    hint = "it is damaged or not a classifier of srpipe's; use one written by 'srpipe train classifier'"
    classes, shape = meta["classes"], meta["input"]
    if not isinstance(classes, list) or not classes or not all(isinstance(name, str) for name in classes):
        raise CheckpointError(f"{checkpoint}: its meta's classes are not a list of names; {hint}")
    if (not isinstance(shape, list) or len(shape) != 3
            or not all(isinstance(side, int) and not isinstance(side, bool) for side in shape)):
        raise CheckpointError(f"{checkpoint}: its meta's input is not [channels, height, width]; {hint}")
    outputs, network = config.get("num_classes"), [config.get("in_channels"), config.get("image_size"),
                                                   config.get("image_size")]
    if len(classes) != outputs:
        raise CheckpointError(f"{checkpoint}: its meta names {len(classes)} classes, its network has {outputs} "
                              f"outputs; {hint}")
    if shape != network:
        shown = "x".join(map(str, network)) if None not in network else "no picture"
        raise CheckpointError(f"{checkpoint}: its meta's input is {'x'.join(map(str, shape))}, its network takes "
                              f"{shown}; {hint}")
    if not isinstance(meta.get("dark_background", False), bool) or not isinstance(meta.get("dataset", ""), str):
        raise CheckpointError(f"{checkpoint}: its meta's dark_background or dataset is not a bool or a name; {hint}")


class Classifier:
    """Classify batches of images already shaped as the network expects (see ``input_shape``)."""

    def __init__(self, checkpoint: str | Path, device: str = "cpu"):
        ckpt = load_checkpoint(checkpoint)
        meta = ckpt["meta"]
        if "classes" not in meta or "input" not in meta:
            raise SrpipeError(f"{checkpoint} is not a classifier checkpoint (no classes in its meta)")
        check_meta(meta, ckpt["config"], checkpoint)  # before the network is built or a picture resized
        self.device = torch.device(device)
        self.network = network_from_checkpoint(ckpt, str(checkpoint)).to(self.device).eval()
        self.classes: list[str] = list(meta["classes"])
        self.input_shape: tuple[int, int, int] = tuple(meta["input"])
        self.dark_background: bool = bool(meta.get("dark_background", False))
        self.meta = meta

    @torch.inference_mode()
    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """(N, C, H, W) float32 in [0, 1] -> (N, classes) softmax probabilities."""
        logits, _ = self.network(torch.from_numpy(images).to(self.device))
        return torch.softmax(logits.float(), dim=1).cpu().numpy()


def load_classifier(name: str, device: str = "cpu", weights: str | Path | None = None) -> Classifier:
    """Model ``name`` with its shipped weights, or with the checkpoint ``weights``."""
    path = Path(weights) if weights else shipped_weights(name)
    if not path.exists():
        hint = "check the path" if weights else "rebuild it with scripts/train_classifiers.sh"
        raise SrpipeError(f"weights {path} for model {name!r} do not exist; {hint}")
    return Classifier(path, device)
