"""Plots of a classifier's test results: a t-SNE map of its embedding and a confusion matrix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib import colormaps

from srpipe.default_plugins.classifier.evaluate import Evaluation
from srpipe.plotting import new_figure, save_figure


def tsne_points(embeddings: np.ndarray, seed: int = 0) -> np.ndarray:
    """2-D t-SNE coordinates of ``embeddings`` (reduced to 50 dimensions by PCA first)."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    features = embeddings.reshape(len(embeddings), -1)
    if features.shape[1] > 50 and len(features) > 50:
        features = PCA(50, random_state=seed).fit_transform(features)
    perplexity = min(30.0, (len(features) - 1) / 3)
    return TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(features)


def plot_tsne(evaluation: Evaluation, classes: list[str], title: str, path: str | Path,
              samples: int = 2000, seed: int = 0, size: tuple[int, int] = (900, 800)) -> Path:
    """t-SNE of the embeddings of up to ``samples`` images, coloured by their true class."""
    rng = np.random.default_rng(seed)
    chosen = rng.permutation(len(evaluation.labels))[:samples]
    points = tsne_points(evaluation.embeddings[chosen], seed)
    labels = evaluation.labels[chosen]
    figure = new_figure(*size)
    axes = figure.add_subplot()
    colours = colormaps["tab10" if len(classes) <= 10 else "tab20"]
    for index, name in enumerate(classes):
        mask = labels == index
        axes.scatter(points[mask, 0], points[mask, 1], s=6, color=colours(index % colours.N), label=name)
    axes.set_title(f"{title}\nt-SNE of the embedding, {len(chosen)} test images; "
                   f"test accuracy {100 * evaluation.accuracy:.2f}%")
    axes.set_xlabel("t-SNE dimension 1")
    axes.set_ylabel("t-SNE dimension 2")
    axes.legend(markerscale=3, fontsize=8, loc="best")
    figure.tight_layout()
    return save_figure(figure, path)


def plot_confusion(evaluation: Evaluation, classes: list[str], title: str, path: str | Path,
                   size: tuple[int, int] = (900, 800)) -> Path:
    """Counts of true against predicted classes, with the counts written in the cells."""
    matrix = evaluation.confusion(len(classes))
    figure = new_figure(*size)
    axes = figure.add_subplot()
    image = axes.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axes, label="images")
    ticks = np.arange(len(classes))
    axes.set_xticks(ticks, classes, rotation=45, ha="right")
    axes.set_yticks(ticks, classes)
    for (true, predicted), count in np.ndenumerate(matrix):
        colour = "white" if count > matrix.max() / 2 else "black"
        axes.text(predicted, true, str(count), ha="center", va="center", fontsize=7, color=colour)
    axes.set_title(f"{title}\nconfusion matrix, {len(evaluation.labels)} test images; "
                   f"accuracy {100 * evaluation.accuracy:.2f}%")
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    figure.tight_layout()
    return save_figure(figure, path)
