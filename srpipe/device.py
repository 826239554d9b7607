"""Choosing where models run."""

from __future__ import annotations

import ctypes
import os
import sys

from srpipe.errors import SrpipeError

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(name: str, *, uses_gpu: bool = True) -> str:
    """``auto`` is CUDA when the model can use a GPU (``uses_gpu``) and one is usable, else
    the CPU. A machine without an NVIDIA driver is told apart without importing torch, which
    would cost more start-up time than a short clip takes to upscale."""
    if name == "auto":
        return "cuda" if uses_gpu and cuda_is_usable() else "cpu"
    if name.startswith("cuda") and not cuda_is_usable():
        raise SrpipeError("--device cuda was asked for but no CUDA GPU is usable here; use --device cpu")
    if name != "cpu" and not name.startswith("cuda"):
        raise SrpipeError(f"unknown --device {name!r}; use auto, cpu or cuda")
    return name


def cuda_is_usable() -> bool:
    """torch's answer, asked only where a GPU may be present."""
    if not _gpu_may_be_present():
        return False
    import torch

    return torch.cuda.is_available()


def _gpu_may_be_present() -> bool:
    """False only where there surely is no GPU for torch: CUDA_VISIBLE_DEVICES hides them all,
    or (on Linux without ROCm) NVIDIA's management library is absent or counts none. NVML,
    unlike CUDA, may be asked before worker processes fork."""
    if os.environ.get("CUDA_VISIBLE_DEVICES") in ("", "-1"):
        return False
    if sys.platform != "linux" or os.path.exists("/dev/kfd"):  # elsewhere, and for ROCm, torch decides
        return True
    try:
        nvml = ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        return False
    count = ctypes.c_uint(0)
    if nvml.nvmlInit_v2() != 0:
        return False
    try:
        return nvml.nvmlDeviceGetCount_v2(ctypes.byref(count)) == 0 and count.value > 0
    finally:
        nvml.nvmlShutdown()


def compute_threads() -> int:
    """Threads for a model's arithmetic: this process's share of the cores. Batch workers
    set theirs with :func:`limit_threads`; otherwise every core."""
    if os.environ.get("OMP_NUM_THREADS"):
        return int(os.environ["OMP_NUM_THREADS"])
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def limit_threads(threads: int) -> None:
    """Give torch (now or when it is imported), OpenCV, OpenVINO and ONNX Runtime ``threads``."""
    import cv2

    os.environ["OMP_NUM_THREADS"] = str(threads)
    cv2.setNumThreads(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def sleep_idle_threads() -> None:
    """Let torch's idle OpenMP threads sleep rather than spin (unless OMP_WAIT_POLICY is set),
    leaving the cores to the decoder and encoder threads beside them (README, Speed). Takes
    effect only before torch is imported."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
