"""Choosing where models run."""

from __future__ import annotations

import ctypes
import os
import re
import sys

from srpipe.errors import SrpipeError

DEVICE_CHOICES = ("auto", "cpu", "cuda")  # and cuda:N (CUDA_INDEXED), one GPU by its index
CUDA_INDEXED = re.compile(r"cuda:(0|[1-9][0-9]*)")  # as torch.device reads it: no leading zeros


def is_device_name(name: str) -> bool:
    """Whether ``name`` is one of :data:`DEVICE_CHOICES` or ``cuda:N``."""
    return name in DEVICE_CHOICES or CUDA_INDEXED.fullmatch(name) is not None


def resolve_device(name: str, *, uses_gpu: bool = True) -> str:
    """``auto`` is CUDA when the model can use a GPU (``uses_gpu``) and one is usable, else
    the CPU; ``cuda`` is torch's current GPU (the first), ``cuda:N`` the GPU of index N as
    torch counts them. A machine without NVIDIA's driver is told apart without importing
    torch, which would cost more start-up time than a short clip takes to upscale."""
    if name == "auto":
        return "cuda" if uses_gpu and _driver_present() and cuda_device_count() else "cpu"
    if not is_device_name(name):
        raise SrpipeError(f"unknown --device {name!r}; use auto, cpu, cuda or cuda:N (a GPU by its index)")
    if name.startswith("cuda"):
        count = cuda_device_count()
        if not count:
            raise SrpipeError(f"--device {name} was asked for but no CUDA GPU is usable here; use --device cpu")
        index = int(name.partition(":")[2] or 0)
        if index >= count:
            which = "cuda:0" if count == 1 else f"cuda:0 to cuda:{count - 1}"
            visible = os.environ.get("CUDA_VISIBLE_DEVICES")
            shown = f" (CUDA_VISIBLE_DEVICES={visible})" if visible else ""
            raise SrpipeError(f"--device {name}: torch sees {count} CUDA GPU{'s' * (count > 1)}{shown}, {which}; "
                              "pick one of them, or --device cuda for the first")
    return name


def cuda_device_count() -> int:
    """The CUDA GPUs torch can use (0 where it can use none)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def gpus_to_share(device: str, uses_gpu: bool) -> list[str]:
    """The GPUs that worker processes running on ``device`` take one each, as
    CUDA_VISIBLE_DEVICES names them: every usable GPU for ``cuda`` (and ``auto`` where it
    means CUDA); none for the CPU, or for ``cuda:N``, which names one GPU for all of them."""
    if device not in ("cuda", "auto") or not uses_gpu or not _driver_present():
        return []
    count = cuda_device_count()
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    names = [part.strip() for part in visible.split(",")] if visible else [str(index) for index in range(count)]
    return names[:count]


def _driver_present() -> bool:
    """False only where torch surely finds no GPU: CUDA_VISIBLE_DEVICES hides them all, or
    (on Linux without ROCm) CUDA's driver library cannot be loaded. Loading it starts nothing
    (no cuInit), so worker processes forked later can still use CUDA."""
    if os.environ.get("CUDA_VISIBLE_DEVICES") in ("", "-1"):
        return False
    if sys.platform != "linux" or os.path.exists("/dev/kfd"):  # elsewhere, and for ROCm, torch decides
        return True
    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    return True


def compute_threads() -> int | None:
    """Threads for a model's arithmetic where this process has a share of the cores (batch
    workers set it with :func:`limit_threads`, or the user with OMP_NUM_THREADS); None: each
    library's own default."""
    value = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


def limit_threads(threads: int) -> None:
    """Give torch (now or when it is imported), OpenCV, OpenVINO and ONNX Runtime ``threads``."""
    import cv2

    os.environ["OMP_NUM_THREADS"] = str(threads)
    cv2.setNumThreads(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def sleep_idle_threads() -> None:
    """Let idle worker threads sleep rather than spin, leaving the cores to the decoder and
    encoder threads beside them (docs/design-notes.md): torch's OpenMP threads, and OpenBLAS's
    (NumPy's and OpenCV's), which spin for about 2**28 clock cycles after they start and after
    each job although a video run gives them none. A variable the user set is kept. Takes
    effect only for the libraries not yet loaded: ``srpipe.cli`` calls it as it is imported,
    before NumPy."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")  # 2**4 cycles, OpenBLAS's least
