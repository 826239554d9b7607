"""Checkpoint files: a plain dict saved with ``torch.save``, loaded only with ``weights_only=True``."""

from __future__ import annotations

import os
import re
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from srpipe.errors import CheckpointError
from srpipe.nn.registry import build_network, describe
from srpipe.outputs import atomic_path

FORMAT = "srpipe-checkpoint/1"
REQUIRED = {"format": str, "arch": str, "config": dict, "state_dict": dict, "meta": dict}


def make_checkpoint(model: nn.Module, meta: dict | None = None, **extra: Any) -> dict:
    """The checkpoint dict of a registered network (tensors moved to the CPU)."""
    arch, config = describe(model)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    return {"format": FORMAT, "arch": arch, "config": config, "state_dict": state,
            "meta": dict(meta or {}), **extra}


def save_checkpoint(ckpt: dict, path: str | Path) -> None:
    """Write ``ckpt`` atomically (a temporary file renamed into place)."""
    with atomic_path(Path(path)) as temp:
        torch.save(ckpt, temp)


# torch.save stores a checkpoint's members uncompressed; a little slack covers zip headers.
_ZIP_SLACK = 1 << 20


def check_archive(path: str | Path, hint: str) -> None:
    """Refuse, before torch.load reads it, a zip checkpoint whose members unpack to more than
    the file holds: torch writes them uncompressed, so that is a zip bomb, not a checkpoint."""
    try:
        with zipfile.ZipFile(path) as archive:
            unpacked = sum(member.file_size for member in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return  # not a zip (torch's legacy format, garbage): torch.load decides
    size = os.path.getsize(path)
    if unpacked > size + _ZIP_SLACK:
        raise CheckpointError(f"{path} unpacks to {unpacked / 2**20:.0f} MiB from a {size / 2**20:.1f} MiB file; "
                              f"it was not loaded; {hint}")


def load_checkpoint(path: str | Path, hint: str = "use a checkpoint written by 'srpipe train'") -> dict:
    """Read and check a checkpoint; anything else raises :class:`CheckpointError`, whose
    message ends with ``hint`` (what to do) where the file is not one."""
    check_archive(path, hint)
    try:
        with warnings.catch_warnings():  # torch warns about foreign pickles; the refusal says it all
            warnings.simplefilter("ignore")
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path} does not exist") from None
    except Exception as e:  # unpickling refused, truncated zip, garbage bytes...
        raise CheckpointError(f"{path} {_refusal(str(e))}; it was not loaded; {hint}") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an {FORMAT} file; {hint}")
    for key, typ in REQUIRED.items():
        if not isinstance(ckpt.get(key), typ):
            raise CheckpointError(f"{path} lacks a valid {key!r} entry; {hint}")
    check_finite(ckpt["state_dict"], path)
    return ckpt


def check_finite(state_dict: dict, path: str | Path) -> None:
    """Refuse NaN or infinite weights: they give a black or garbage picture, not an error."""
    for name, tensor in state_dict.items():
        if torch.is_tensor(tensor) and tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise CheckpointError(f"{path} holds NaN or infinite weights ({name}); it was not loaded; "
                                  "retrain it or use another checkpoint")


def network_from_checkpoint(ckpt: dict, source: str = "checkpoint") -> nn.Module:
    """Build the network a checkpoint describes and load its weights."""
    try:
        # First on the meta device (nothing allocated): a config describing a network other
        # than its weights (a 3001x3001 kernel, say) must not allocate it before being refused.
        with torch.device("meta"):
            shapes = {k: tuple(v.shape) for k, v in build_network(ckpt["arch"], ckpt["config"]).state_dict().items()}
        stored = {k: tuple(v.shape) for k, v in ckpt["state_dict"].items() if torch.is_tensor(v)}
        if shapes != stored:
            wrong = sorted(set(shapes.items()) ^ set(stored.items()))[0][0]
            raise ValueError(f"its config and its weights disagree at {wrong}")
        net = build_network(ckpt["arch"], ckpt["config"])
        net.load_state_dict(ckpt["state_dict"])
    except (ValueError, TypeError, RuntimeError) as e:
        first = str(e).strip().splitlines()[0][:200]
        raise CheckpointError(f"{source} does not match its architecture ({first})") from None
    return net


def _refusal(message: str) -> str:
    """Why ``torch.load(weights_only=True)`` refused a file, in a few words."""
    # torch's words for it change between versions: "Unsupported global: GLOBAL x", "unsupported GLOBAL x"
    found = re.search(r"unsupported (?:global: )?GLOBAL (\S+)", message, re.IGNORECASE)
    if found:
        return f"holds a pickled Python object ({found.group(1)}), not only tensors"
    return "is corrupt or not a checkpoint file"
