"""The torch-compile backend's code, run on the CPU (the backend is CUDA's, where no GPU is at hand
to test it): TorchInductor really compiles a small ESPCN, says so, keeps what it compiled in
srpipe's checked cache, and a later process compiles nothing for the same shape."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from srpipe.cache import CacheWarning, read_recorded

# One process: build a small ESPCN, run the compiled backend's function on a batch of 3, then of 2, and
# print the largest difference from the network itself and inductor's cache counters.
RUN = """
import json, os, sys, numpy as np, torch
from torch._dynamo.utils import counters
from srpipe.default_plugins.espcn.compiled import prepare_compiled
from srpipe.default_plugins.espcn.network import ESPCN, ESPCNConfig

torch.manual_seed(0)
network = ESPCN(ESPCNConfig(scale=2, features=(8,), kernels=(3, 3))).eval()
convolved = prepare_compiled(network, "cpu")
x = np.random.default_rng(0).random((3, 1, 20, 24), dtype=np.float32)
out = convolved(x)
with torch.inference_mode():
    expected = network.convolved(torch.from_numpy(x)).numpy()
fewer = convolved(x[:2])  # padded to the batch of 3 before it: no other shape to compile
assert fewer.shape == (2, 1, 40, 48) and np.abs(fewer - expected[:2]).max() < 1e-5
print(json.dumps({"shape": list(out.shape), "difference": float(np.abs(out - expected).max()),
                  "hits": counters["inductor"]["fxgraph_cache_hit"], "again": convolved(x).tolist() == out.tolist(),
                  "inductor_folder": os.environ["TORCHINDUCTOR_CACHE_DIR"]}))
"""


COMPILING = ("Compiling the network for batches of 3 at 24x20 on the CPU (torch.compile: once for each size; on a GPU, "
             "a minute or two)")


def _run(cache):
    done = subprocess.run([sys.executable, "-c", RUN], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "SRPIPE_CACHE_DIR": str(cache)})
    assert done.returncode == 0, done.stderr
    told = [line.partition("CacheWarning: ")[2] or line for line in done.stderr.splitlines()
            if line.startswith("Compiling") or "CacheWarning: " in line]
    return json.loads(done.stdout.splitlines()[-1]), told


@pytest.mark.skipif(not any(shutil.which(name) for name in (os.environ.get("CXX", "g++"), "g++", "c++", "clang++")),
                    reason="torch.compile on the CPU needs a C++ compiler (g++)")
def test_a_shape_compiles_once_on_a_machine_and_the_kept_result_is_checked(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    left = Path(tempfile.gettempdir()) / f"srpipe-compiled-{ended.stdout.strip()}-test"  # its process is gone
    left.mkdir()
    (left / "kernel.so").write_bytes(b"left behind by a process that did not reach its exit")
    first, told = _run(cache)
    assert not left.exists()
    assert first["shape"] == [3, 1, 40, 48] and first["difference"] < 1e-5 and first["again"]
    assert told == [COMPILING]
    assert first["hits"] == 0
    # inductor's own cache was a private folder of the process, gone with it
    assert os.path.basename(first["inductor_folder"]).startswith("srpipe-compiled-")
    assert not os.path.exists(first["inductor_folder"])
    kept = list((cache / "compiled").iterdir())
    assert len(kept) == 1 and kept[0].stat().st_size > 0

    second, told = _run(cache)
    assert told == [] and second["hits"] >= 1  # compiled from what the first run kept
    assert second["difference"] == first["difference"]

    # damaged: not handed to torch (a run given nothing kept compiles, as the first did)
    kept[0].write_bytes(kept[0].read_bytes()[:-1] + b"x")
    monkeypatch.setenv("SRPIPE_CACHE_DIR", str(cache))
    with pytest.warns(CacheWarning, match="^the cached compiled network did not match srpipe's record of it; it is "
                                          "made again$"):
        assert read_recorded("compiled", kept[0].name, "compiled network") is None
