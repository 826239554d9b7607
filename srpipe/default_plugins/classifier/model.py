"""A trained classifier: its network, classes and input shape, loaded from a checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from srpipe.errors import SrpipeError
from srpipe.nn.checkpoint import load_checkpoint, network_from_checkpoint

WEIGHTS_DIR = Path(__file__).parent / "weights"


def shipped_weights(name: str) -> Path:
    """The checkpoint shipped for model ``name`` (e.g. ``fashion-mnist``)."""
    return WEIGHTS_DIR / f"{name}.pt"


class Classifier:
    """Classify batches of images already shaped as the network expects (see ``input_shape``)."""

    def __init__(self, checkpoint: str | Path, device: str = "cpu"):
        ckpt = load_checkpoint(checkpoint)
        meta = ckpt["meta"]
        if "classes" not in meta or "input" not in meta:
            raise SrpipeError(f"{checkpoint} is not a classifier checkpoint (no classes in its meta)")
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
