"""Where the shipped weights are: a module of its own, so that registering the models (at
every start) reads a folder listing and imports nothing heavy."""

from __future__ import annotations

from pathlib import Path

WEIGHTS_DIR = Path(__file__).parent / "weights"


def shipped_weights(scale: int, kind: str = "clean") -> Path:
    """The path of the shipped ESPCN weights for ``scale``: ``clean`` (trained on clean MATLAB
    bicubic shrinks, ``espcn-clean``), ``video`` (trained on compressed video, ``espcn``),
    ``image`` (still images shrunk with and without antialiasing, ``espcn-image``), or
    ``midbitrate`` and ``lowbitrate`` (H.264 at the quantizers of their crf ranges,
    ``espcn-midbitrate`` and ``espcn-lowbitrate``)."""
    return WEIGHTS_DIR / (f"espcn_x{scale}.pt" if kind == "clean" else f"espcn_{kind}_x{scale}.pt")


def default_weights(scale: int) -> Path:
    """The weights ``-m espcn`` uses at ``scale``: the video-trained ones where shipped, else clean."""
    video = shipped_weights(scale, "video")
    return video if video.exists() else shipped_weights(scale)


def fast_weights(scale: int) -> Path:
    """The fast network ``-m espcn`` runs on the CPU at ``scale`` unless ``--exact``: smaller,
    distilled from the video weights, within issue #24's quality gate of them (the model card)."""
    return WEIGHTS_DIR / f"espcn_fast_x{scale}.pt"


def still_pick_path(scale: int) -> Path:
    """The fitted look that picks the clean or the still-image weights for a picture at ``scale``
    (:mod:`srpipe.default_plugins.espcn.still_pick`)."""
    return WEIGHTS_DIR / f"espcn_still_pick_x{scale}.json"


def video_pick_path(scale: int) -> Path:
    """The look that picks the clean weights or ``espcn``'s own for near-lossless video at
    ``scale`` (``espcn-lossless``): fitted like :func:`still_pick_path`'s, with line art added."""
    return WEIGHTS_DIR / f"espcn_video_pick_x{scale}.json"
