"""Classify images, folders and videos with a loaded :class:`~srpipe.default_plugins.classifier.model.Classifier`."""

from __future__ import annotations

from itertools import islice
from pathlib import Path
from typing import Iterator

import numpy as np

from srpipe.default_plugins.classifier.inputs import InputImage, Unreadable, read_inputs
from srpipe.default_plugins.classifier.model import Classifier
from srpipe.nn.inputs import to_model_input


def classify(location: str | Path, classifier: Classifier, *, top_k: int = 3, every: int = 25,
             batch_size: int = 64) -> Iterator[dict]:
    """One result per image or sampled frame: ``source``, ``frame``, ``time`` (seconds, videos
    only), ``predictions`` (the ``top_k`` labels with probabilities, best first) and ``notes``
    (how the picture was converted for the model); for a file of a folder that could not be
    read, ``source`` and ``error`` instead."""
    top_k = min(top_k, len(classifier.classes))
    inputs = read_inputs(location, every)
    while batch := list(islice(inputs, batch_size)):
        pictures = [item for item in batch if isinstance(item, InputImage)]
        converted = [to_model_input(item.pixels, classifier.input_shape, classifier.dark_background, item.alpha)
                     for item in pictures]
        probabilities = classifier.probabilities(np.stack([array for array, _ in converted])) if pictures else []
        results = iter(zip(converted, probabilities))
        for item in batch:  # in the folder's order
            if isinstance(item, Unreadable):
                yield {"source": item.source, "error": item.error}
                continue
            (_, notes), probs = next(results)
            best = np.argsort(-probs)[:top_k]
            yield {
                "source": item.source,
                "frame": item.frame,
                "time": item.time,
                "predictions": [{"label": classifier.classes[i], "probability": float(probs[i])} for i in best],
                "notes": [*item.notes, *notes],
            }
