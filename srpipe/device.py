"""Choosing where models run."""

from __future__ import annotations

import os

from srpipe.errors import SrpipeError

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(name: str) -> str:
    """``auto`` is CUDA when a GPU is usable, else the CPU."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SrpipeError("--device cuda was asked for but no CUDA GPU is usable here; use --device cpu")
    if name != "cpu" and not name.startswith("cuda"):
        raise SrpipeError(f"unknown --device {name!r}; use auto, cpu or cuda")
    return name


def sleep_idle_threads() -> None:
    """Let torch's idle OpenMP threads sleep rather than spin (unless OMP_WAIT_POLICY is set),
    leaving the cores to the decoder and encoder threads beside them. Measured here on
    640x360 ESPCN x2: end to end 5.4 -> 6.5 fps (0.74 -> 0.89 of the stage sum), the
    network alone 1.6% slower. Takes effect only before torch is imported."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
