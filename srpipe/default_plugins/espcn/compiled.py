"""The ``torch-compile`` backend: the network compiled by ``torch.compile`` (TorchInductor, mode
``max-autotune-no-cudagraphs``), in float16 on channels_last tensors on CUDA: the fastest way
torch ran the x2 network on a GPU (docs/backends.md). The same code
compiles in float32 on the CPU, where the tests run it; there OpenVINO is faster, so the backend
is CUDA's only.

Each input shape (batch, height, width) compiles the first time it comes: on a GPU, autotuning
takes the better part of a minute, which a line on standard error says. What torch compiled is
then kept in srpipe's cache (``compiled/``, a file per network, input shape, device and torch
version, with its record: :mod:`srpipe.cache`) and handed back to torch in later runs
(``torch.compiler.load_cache_artifacts``, torch 2.7 and later), so that each shape compiles once
for a cache folder. TorchInductor's own cache folder is a private temporary folder of the
process: torch reads no compiled code that srpipe did not keep and check (Triton's goes there
too, unless ``TRITON_CACHE_DIR`` names another).

Shapes are kept few: the upscaler hands whole frames up to 2048 LR pixels a side (the backend's
tile), and a batch smaller than the largest one yet (the last of a clip) is padded to it.
"""

from __future__ import annotations

import atexit
import copy
import hashlib
import inspect
import json
import os
import re
import shutil
import stat
import sys
import tempfile

from tqdm import tqdm  # its write keeps a progress bar on standard error whole

from srpipe import __version__, cache
from srpipe.errors import SrpipeError
from srpipe.outputs import process_exists

MODE = "max-autotune-no-cudagraphs"
SHAPES = 64  # input shapes compiled in one process at most (torch runs any more uncompiled)
_FOLDER_PREFIX = "srpipe-compiled-"
_private_folder: list[str] = []  # the process's TorchInductor folder, made once


def _use_private_folder() -> None:
    """Point TorchInductor at a private temporary folder (made 0700), once a process: its default
    (``/tmp/torchinductor_USER``) holds compiled code that torch runs, which anyone who could
    write there first would choose. The folder goes at exit; those of processes that ended
    without their exit (a signal while a thread was stuck) are removed here."""
    if _private_folder:
        return
    _remove_left_behind(tempfile.gettempdir())
    folder = tempfile.mkdtemp(prefix=f"{_FOLDER_PREFIX}{os.getpid()}-")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = folder
    atexit.register(shutil.rmtree, folder, True)
    _private_folder.append(folder)


def _remove_left_behind(root: str) -> None:
    """Remove this user's private folders in ``root`` whose process is gone."""
    try:
        names = os.listdir(root)
    except OSError:
        return
    for name in names:
        found = re.fullmatch(re.escape(_FOLDER_PREFIX) + r"(\d+)-\w+", name)
        path = os.path.join(root, name)
        try:
            info = os.lstat(path)
        except OSError:
            continue
        if not found or not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
            continue
        if not process_exists(int(found[1])):
            shutil.rmtree(path, ignore_errors=True)


def _kept_name(network, device: str, shape: tuple[int, ...], dtype) -> str:
    """The cache file of what torch compiled for ``network``'s layers on ``shape`` on this device
    (and this srpipe's network code: a changed one compiles anew)."""
    import torch

    where = torch.cuda.get_device_name(device) if device.startswith("cuda") else "cpu"
    with open(inspect.getfile(type(network)), "rb") as code:
        code_digest = hashlib.sha256(code.read()).hexdigest()
    about = json.dumps([network.config.__dict__, code_digest, __version__, where, torch.__version__, str(dtype),
                        MODE, shape], default=str)
    return hashlib.sha256(about.encode()).hexdigest()[:32] + ".bin"


def _compiles_so_far() -> int:
    """TorchInductor's compiles in this process (graphs it did not find in its cache), or -1
    where this torch does not count them."""
    try:
        from torch._dynamo.utils import counters
    except ImportError:
        return -1
    return counters["inductor"]["fxgraph_cache_miss"]


def prepare_compiled(network, device: str):
    """``network.convolved``, compiled: float32 (N, C, h, w) in and out, torch tensors on CUDA and
    numpy arrays on the CPU (:class:`srpipe.backends.Backend`'s contract)."""
    import torch
    import torch._dynamo.config

    from srpipe.backends import numpy_io

    _use_private_folder()
    limit = "recompile_limit" if hasattr(torch._dynamo.config, "recompile_limit") else "cache_size_limit"
    setattr(torch._dynamo.config, limit, max(getattr(torch._dynamo.config, limit), SHAPES))
    on_cuda = device.startswith("cuda")
    dtype = torch.float16 if on_cuda else torch.float32
    module = copy.deepcopy(network).to(dtype=dtype, memory_format=torch.channels_last)
    compiled = torch.compile(module.convolved, mode=MODE, dynamic=False)
    keeps = hasattr(torch.compiler, "save_cache_artifacts")  # torch 2.7 and later
    ready: set[tuple[int, ...]] = set()
    largest = 0  # the largest batch yet: smaller ones are padded to it

    def first_call(x):
        """``compiled`` on a shape not seen in this process: from the cache where it was kept, else
        compiled (said on standard error) and kept."""
        shape = tuple(x.shape)
        name = _kept_name(network, device, shape, dtype)
        kept = cache.read_recorded("compiled", name, "compiled network") if keeps else None
        if kept is not None:
            try:
                torch.compiler.load_cache_artifacts(kept)
            except Exception:  # another torch's: compiled again
                kept = None
        if kept is None and len(ready) < SHAPES:
            n, c, h, w = shape
            where = torch.cuda.get_device_name(device) if on_cuda else "the CPU"
            tqdm.write(f"Compiling the network for batches of {n} at {w}x{h} on {where} (torch.compile: once for "
                       "each size; on a GPU, a minute or two)", file=sys.stderr)
        compiles = _compiles_so_far()
        try:
            out = compiled(x)
        except Exception as exc:  # no C++ compiler or Triton, say: the run stops with what torch said
            said = (str(exc).strip().splitlines() or [""])[0]
            raise SrpipeError(f"the network compiled by torch.compile failed on its first batch of {shape[0]} at "
                              f"{shape[3]}x{shape[2]} ({type(exc).__name__}: {said}); use another --backend") from exc
        # kept anew where torch compiled something: nothing was kept, or what was (another Triton's,
        # another driver's) did not serve
        if keeps and (kept is None if compiles < 0 else _compiles_so_far() > compiles):
            artifacts = torch.compiler.save_cache_artifacts()
            if artifacts is not None:
                cache.write_recorded("compiled", name, artifacts[0])
        ready.add(shape)
        return out

    def convolved(x):
        nonlocal largest
        count = len(x)
        largest = max(largest, count)
        if count < largest:
            x = torch.cat([x, x.new_zeros((largest - count, *x.shape[1:]))])
        x = x.to(dtype).contiguous(memory_format=torch.channels_last)
        out = compiled(x) if tuple(x.shape) in ready else first_call(x)
        return out[:count].float()

    return convolved if on_cuda else numpy_io(convolved)
