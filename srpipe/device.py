"""Choosing where models run."""

from __future__ import annotations

import ctypes
import os
import sys

from srpipe.errors import SrpipeError

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(name: str, *, uses_gpu: bool = True) -> str:
    """``auto`` is CUDA when the model can use a GPU (``uses_gpu``) and one is usable, else
    the CPU. A machine without NVIDIA's driver is told apart without importing torch, which
    would cost more start-up time than a short clip takes to upscale."""
    if name == "auto":
        return "cuda" if uses_gpu and _driver_present() and _torch_sees_cuda() else "cpu"
    if name.startswith("cuda") and not _torch_sees_cuda():
        raise SrpipeError("--device cuda was asked for but no CUDA GPU is usable here; use --device cpu")
    if name != "cpu" and not name.startswith("cuda"):
        raise SrpipeError(f"unknown --device {name!r}; use auto, cpu or cuda")
    return name


def _torch_sees_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


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
