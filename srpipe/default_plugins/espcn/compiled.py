"""The ``torch-compile`` backend: the network compiled by ``torch.compile`` (TorchInductor, mode
``max-autotune-no-cudagraphs``), in float16 on channels_last tensors on CUDA: the fastest way
torch ran the x2 network on an H200 (issue #26's figures, docs/backends.md). The same code
compiles in float32 on the CPU, where the tests run it; there OpenVINO is faster, so the backend
is CUDA's only.

Each input shape (batch, height, width) compiles the first time it comes: on a GPU, autotuning
takes the better part of a minute, which a line on standard error says. What torch compiled is
then kept in srpipe's cache (``compiled/``, a file per network shape, input shape, device and torch
version, with its record: :mod:`srpipe.cache`) and handed back to torch in later runs
(``torch.compiler.load_cache_artifacts``), so that each shape compiles once on a machine.
TorchInductor's own cache folder (and Triton's in it) is a private temporary folder of the
process, removed at its exit: torch reads no compiled code that srpipe did not keep and check.

Shapes are kept few: the upscaler hands whole frames up to 2048 LR pixels a side (the backend's
tile), and a batch is padded to the next power of two (the last batch of a clip is often smaller).
"""

from __future__ import annotations

import atexit
import copy
import hashlib
import json
import os
import shutil
import sys
import tempfile

from srpipe import cache
from srpipe.errors import SrpipeError

MODE = "max-autotune-no-cudagraphs"
_private_folder: list[str] = []  # the process's TorchInductor and Triton folder, made once


def _use_private_folder() -> None:
    """Point TorchInductor at a private temporary folder (made 0700), once a process: its default
    (``/tmp/torchinductor_USER``) holds compiled code that torch runs, which anyone who could
    write there first would choose."""
    if _private_folder:
        return
    folder = tempfile.mkdtemp(prefix="srpipe-compiled-")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = folder
    atexit.register(shutil.rmtree, folder, True)
    _private_folder.append(folder)


def _padded_batch(count: int) -> int:
    """``count`` rounded up to a power of two."""
    return 1 << (count - 1).bit_length()


def _kept_name(network, device: str, shape: tuple[int, ...], dtype) -> str:
    """The cache file of what torch compiled for ``network``'s layers on ``shape`` on this device."""
    import torch

    where = torch.cuda.get_device_name(device) if device.startswith("cuda") else "cpu"
    about = json.dumps([network.config.__dict__, where, torch.__version__, str(dtype), MODE, shape], default=str)
    return hashlib.sha256(about.encode()).hexdigest()[:32] + ".bin"


def prepare_compiled(network, device: str):
    """``network.convolved``, compiled: float32 (N, C, h, w) in and out, torch tensors on CUDA and
    numpy arrays on the CPU (:class:`srpipe.backends.Backend`'s contract)."""
    import torch

    from srpipe.backends import numpy_io

    _use_private_folder()
    on_cuda = device.startswith("cuda")
    dtype = torch.float16 if on_cuda else torch.float32
    module = copy.deepcopy(network).to(dtype=dtype, memory_format=torch.channels_last)
    compiled = torch.compile(module.convolved, mode=MODE, dynamic=False)
    ready: set[tuple[int, ...]] = set()

    def first_call(x):
        """``compiled`` on a shape not seen in this process: from the cache where it was kept, else
        compiled (said on standard error) and kept."""
        name = _kept_name(network, device, tuple(x.shape), dtype)
        keeps = hasattr(torch.compiler, "save_cache_artifacts")  # torch 2.7 and later
        kept = cache.read_recorded("compiled", name, "compiled network") if keeps else None
        if kept is not None:
            try:
                torch.compiler.load_cache_artifacts(kept)
            except Exception:  # another torch's: compiled again
                kept = None
        if kept is None:
            n, c, h, w = x.shape
            where = torch.cuda.get_device_name(device) if on_cuda else "the CPU"
            sys.stderr.write(f"Compiling the network for {n} x {w}x{h} on {where} (torch.compile: once for each "
                             "size on this machine; on a GPU, a minute or two)\n")
        try:
            out = compiled(x)
        except Exception as exc:  # no C++ compiler or Triton, say: the run stops with what torch said
            said = (str(exc).strip().splitlines() or [""])[0]
            raise SrpipeError(f"torch.compile could not compile the network ({type(exc).__name__}: {said}); "
                              "use another --backend") from exc
        if kept is None and keeps:
            artifacts = torch.compiler.save_cache_artifacts()
            if artifacts is not None:
                cache.write_recorded("compiled", name, artifacts[0])
        ready.add(tuple(x.shape))
        return out

    def convolved(x):
        count = len(x)
        padded = _padded_batch(count)
        if padded != count:
            x = torch.cat([x, x.new_zeros((padded - count, *x.shape[1:]))])
        x = x.to(dtype).contiguous(memory_format=torch.channels_last)
        out = compiled(x) if tuple(x.shape) in ready else first_call(x)
        return out[:count].float()

    return convolved if on_cuda else numpy_io(convolved)
