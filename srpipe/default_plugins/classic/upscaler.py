"""The classical upscalers' kernels and their CPU (swscale, OpenCV) and CUDA (torch) paths."""

from __future__ import annotations

import numpy as np

from srpipe.resize import cubic_weight


def lanczos_weight(x: np.ndarray, a: int = 4) -> np.ndarray:
    """The Lanczos window of order ``a``."""
    return np.where(np.abs(x) < a, np.sinc(x) * np.sinc(x / a), 0.0)


KERNELS = {"bicubic": (cubic_weight, 2), "lanczos": (lanczos_weight, 4)}


def resampling_matrix(size: int, scale: int, method: str) -> np.ndarray:
    """(size*scale, size) matrix mapping a row of samples to the upscaled row."""
    kernel, radius = KERNELS[method]
    out = np.arange(size * scale)
    centre = (out + 0.5) / scale - 0.5
    left = np.floor(centre).astype(np.int64)
    taps = left[:, None] + np.arange(-radius + 1, radius + 1)[None, :]
    weights = kernel(centre[:, None] - taps)
    weights /= weights.sum(axis=1, keepdims=True)
    matrix = np.zeros((size * scale, size))
    np.add.at(matrix, (np.repeat(out, taps.shape[1]), np.clip(taps, 0, size - 1).ravel()), weights.ravel())
    return matrix


class ClassicUpscaler:
    """Bicubic or Lanczos upscaling of luma batches on the CPU or CUDA."""

    def __init__(self, method: str, scale: int, device: str = "cpu", backend: str | None = None):
        self.method = method
        self.scale = scale
        self.device = device
        self.backend = backend or ("cpu" if device == "cpu" else "torch")
        self._matrices: dict = {}
        self._scaler = None  # the PlaneScaler of the last plane size seen

    @property
    def working_bytes_per_output_pixel(self) -> int:
        """For the memory plan: on the CPU, one more copy of the 16-bit output (OpenCV's planes
        before they are stacked, swscale's before it is read back); with torch, float32 samples."""
        return 8 if self.backend == "torch" else 2

    def upscale(self, luma: np.ndarray, *, bit_depth: int, full_range: bool) -> np.ndarray:
        if self.backend == "torch":
            return self._upscale_torch(luma, bit_depth)
        if full_range:
            return self._upscale_opencv(luma, bit_depth)
        return self._upscale_swscale(luma, bit_depth)

    def _upscale_opencv(self, luma: np.ndarray, bit_depth: int) -> np.ndarray:
        from srpipe.resize import resize_plane

        _, height, width = luma.shape
        size = (width * self.scale, height * self.scale)
        return np.stack([resize_plane(plane, *size, (1 << bit_depth) - 1, self.method) for plane in luma])

    def _upscale_swscale(self, luma: np.ndarray, bit_depth: int) -> np.ndarray:
        from srpipe.resize import PlaneScaler

        n, height, width = luma.shape
        s = self.scale
        settings = ((width, height), (width * s, height * s), bit_depth, self.method)
        if self._scaler is None or self._scaler.settings != settings:
            self._scaler = PlaneScaler(*settings)
        out = np.empty((n, height * s, width * s), luma.dtype)
        for plane, big in zip(luma, out):
            self._scaler.resize(plane, big)
        return out

    def _matrix(self, size: int):
        import torch

        if size not in self._matrices:
            matrix = resampling_matrix(size, self.scale, self.method)
            self._matrices[size] = torch.from_numpy(matrix).to(self.device, torch.float32)
        return self._matrices[size]

    def _upscale_torch(self, luma: np.ndarray, bit_depth: int) -> np.ndarray:
        import torch

        _, height, width = luma.shape
        with torch.inference_mode():
            samples = torch.from_numpy(luma)
            if self.device != "cpu":  # integers go up from page-locked memory and down again
                samples = samples.pin_memory().to(self.device, non_blocking=True)
            x = samples.to(torch.float32)
            y = self._matrix(height) @ x @ self._matrix(width).T
            y = y.round_().clamp_(0, (1 << bit_depth) - 1)
            # into an array of its own: one that a tensor holds is copied again (pipeline.checked_upscale)
            out = np.empty(y.shape, luma.dtype)
            torch.from_numpy(out).copy_(y)
            return out
