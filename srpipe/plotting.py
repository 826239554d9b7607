"""Headless matplotlib figures: created with the Agg backend, saved as PNG and closed."""

from __future__ import annotations

import contextlib
import os
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
_overwrite = False  # whether a figure may replace an existing file (-y)


@contextlib.contextmanager
def keeping_inputs(inputs: dict, option: str = "-o", overwrite: bool = False):
    """Within it, :func:`save_figure` refuses to write over any of ``inputs``
    (:func:`srpipe.outputs.input_files`), naming ``option``, what chose the figures' place, and
    over any existing file unless ``overwrite``."""
    global _inputs, _option, _overwrite
    saved = _inputs, _option, _overwrite
    _inputs, _option, _overwrite = inputs, option, overwrite
    try:
        yield
    finally:
        _inputs, _option, _overwrite = saved


def check_writable(paths) -> None:
    """Refuse, before any figure is drawn, figures that would replace an input of the command, a
    folder or a special file (a FIFO, a device: even with ``-y``, as it is not a figure's to
    replace) or an existing file without ``-y`` (:func:`keeping_inputs`): so a refusal leaves no
    new files."""
    from srpipe.errors import SrpipeError
    from srpipe.outputs import check_not_input, special_kind

    for path in map(Path, paths):
        check_not_input(path, _inputs, _option)
        kind = "folder" if path.is_dir() else special_kind(path)
        if kind is not None:
            raise SrpipeError(f"{path} is a {kind}, not a file a figure may replace; remove it, or choose another "
                              f"{_option}")
        if not _overwrite and os.path.lexists(path):
            raise SrpipeError(f"{path} already exists; pass -y to replace it, or choose another {_option}")


def save_figure(figure, path: str | Path) -> Path:
    """Write ``figure`` as PNG (creating the folder) and free it. The file appears whole or not at
    all (written beside it, then renamed); an input of the command, a folder or a special file is
    never replaced, nor an existing file without ``-y`` (:func:`check_writable`)."""
    from srpipe.outputs import atomic_path

    path = Path(path)
    try:
        check_writable([path])
        with atomic_path(path) as temp:
            figure.savefig(temp, dpi=DPI, format="png")
    finally:
        plt.close(figure)
    return path


def save_figures(drawings) -> list[Path]:
    """Draw and save each of ``drawings``, pairs of a path and a function making its figure, in
    order. Every path is checked (:func:`check_writable`) before the first figure is drawn: a
    refusal leaves none of them written."""
    drawings = [(Path(path), draw) for path, draw in drawings]
    check_writable(path for path, _ in drawings)
    return [save_figure(draw(), path) for path, draw in drawings]
