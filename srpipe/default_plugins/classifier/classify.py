"""Classify images, folders and videos with a loaded :class:`~srpipe.default_plugins.classifier.model.Classifier`."""

from __future__ import annotations

from itertools import islice
from pathlib import Path
from typing import Iterator

import numpy as np

from srpipe.default_plugins.classifier.inputs import read_inputs
from srpipe.default_plugins.classifier.model import Classifier
from srpipe.nn.inputs import to_model_input


def classify(location: str | Path, classifier: Classifier, *, top_k: int = 3, every: int = 25,
             batch_size: int = 64) -> Iterator[dict]:
    """One result per image or sampled frame: ``source``, ``frame``, ``time`` (seconds, videos
    only), ``predictions`` (the ``top_k`` labels with probabilities, best first) and ``notes``
    (how the picture was converted for the model)."""
    top_k = min(top_k, len(classifier.classes))
    inputs = read_inputs(location, every)
    while batch := list(islice(inputs, batch_size)):
        converted = [to_model_input(item.pixels, classifier.input_shape, classifier.dark_background)
                     for item in batch]
        probabilities = classifier.probabilities(np.stack([array for array, _ in converted]))
        for item, (_, notes), probs in zip(batch, converted, probabilities):
            best = np.argsort(-probs)[:top_k]
            yield {
                "source": item.source,
                "frame": item.frame,
                "time": item.time,
                "predictions": [{"label": classifier.classes[i], "probability": float(probs[i])} for i in best],
                "notes": notes,
            }
