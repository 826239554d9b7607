"""Headless matplotlib figures: created with the Agg backend, saved as PNG and closed."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

DPI = 100


def new_figure(width_px: int, height_px: int):
    """A figure of exactly ``width_px`` x ``height_px`` pixels once saved."""
    return plt.figure(figsize=(width_px / DPI, height_px / DPI), dpi=DPI)


def save_figure(figure, path: str | Path) -> Path:
    """Write ``figure`` as PNG (creating the folder) and free it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=DPI, format="png")
    plt.close(figure)
    return path
