"""Headless matplotlib figures: created with the Agg backend, saved as PNG and closed."""

from __future__ import annotations

import contextlib
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

DPI = 100


def new_figure(width_px: int, height_px: int):
    """A figure of exactly ``width_px`` x ``height_px`` pixels once saved."""
    return plt.figure(figsize=(width_px / DPI, height_px / DPI), dpi=DPI)


_inputs: dict = {}  # the command's input files, which no figure may replace (keeping_inputs)
_option = "-o"


@contextlib.contextmanager
def keeping_inputs(inputs: dict, option: str = "-o"):
    """Within it, :func:`save_figure` refuses to write over any of ``inputs``
    (:func:`srpipe.outputs.input_files`), naming ``option``, what chose the figures' place."""
    global _inputs, _option
    saved = _inputs, _option
    _inputs, _option = inputs, option
    try:
        yield
    finally:
        _inputs, _option = saved


def save_figure(figure, path: str | Path) -> Path:
    """Write ``figure`` as PNG (creating the folder) and free it. The file appears whole or not at
    all (written beside it, then renamed); an input of the command is never replaced."""
    from srpipe.outputs import atomic_path, check_not_input

    path = Path(path)
    try:
        check_not_input(path, _inputs, _option)
        with atomic_path(path) as temp:
            figure.savefig(temp, dpi=DPI, format="png")
    finally:
        plt.close(figure)
    return path
