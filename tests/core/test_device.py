"""--device: auto, cpu, cuda and cuda:N; a GPU index checked against the GPUs torch sees; batch
workers on a machine of several GPUs take one each. The GPUs are stood in for where the check
is only of the counting (this machine has none); tests/core/test_cuda.py runs on a real one."""

import multiprocessing
import os

import pytest

from srpipe import device
from srpipe.default_plugins.batch.engine import take_gpu
from srpipe.errors import SrpipeError
from srpipe.testing import make_test_video


@pytest.fixture
def two_gpus(monkeypatch):
    monkeypatch.setattr(device, "cuda_device_count", lambda: 2)
    monkeypatch.setattr(device, "_driver_present", lambda: True)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


def test_a_gpu_is_picked_by_its_index(two_gpus):
    assert device.resolve_device("cuda:1") == "cuda:1"
    assert device.resolve_device("cuda") == "cuda"
    assert device.resolve_device("auto") == "cuda"
    assert device.resolve_device("auto", uses_gpu=False) == "cpu"
    with pytest.raises(SrpipeError, match=r"--device cuda:2: this machine has 2 CUDA GPUs \(cuda:0 to cuda:1\)"):
        device.resolve_device("cuda:2")


@pytest.mark.parametrize("name", ["gpu", "cuda:", "cuda:-1", "cuda:1x", "CUDA", "cuda:١"])
def test_other_names_are_refused_before_torch_is_asked(name, monkeypatch):
    monkeypatch.setattr(device, "cuda_device_count", lambda: pytest.fail("torch was asked"))
    with pytest.raises(SrpipeError, match="use auto, cpu, cuda or cuda:N"):
        device.resolve_device(name)


def test_the_cli_takes_cuda_n_and_says_what_is_wrong(tmp_path, cli_run):
    clip = make_test_video(tmp_path / "in.mp4", width=32, height=32, frames=2)
    result = cli_run("upscale", clip, "-m", "bicubic", "--device", "cuda:x")
    assert result.exit_code == 2 and "'cuda:x' is not one of auto, cpu, cuda or cuda:N" in result.output
    assert "[auto|cpu|cuda|cuda:N]" in cli_run("upscale", "--help").output
    if device.cuda_device_count():
        pytest.skip("this machine has a CUDA GPU: tests/core/test_cuda.py runs the device")
    result = cli_run("upscale", clip, "-m", "bicubic", "--device", "cuda:0", "-o", tmp_path / "out.mp4")
    assert result.exit_code == 1
    assert "--device cuda:0 was asked for but no CUDA GPU is usable here; use --device cpu" in result.output
    assert not (tmp_path / "out.mp4").exists()


def test_batch_workers_share_out_the_gpus(two_gpus, monkeypatch):
    assert device.gpus_to_share("cuda", uses_gpu=True) == ["0", "1"]
    assert device.gpus_to_share("auto", uses_gpu=True) == ["0", "1"]
    assert device.gpus_to_share("cuda:1", uses_gpu=True) == []  # the user named one GPU for all
    assert device.gpus_to_share("cpu", uses_gpu=True) == []
    assert device.gpus_to_share("auto", uses_gpu=False) == []  # bicubic: the CPU
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-a, GPU-b,GPU-c")  # the ones this process may use
    assert device.gpus_to_share("cuda", uses_gpu=True) == ["GPU-a", "GPU-b"]
    turns = multiprocessing.get_context("spawn").Value("i", 0)
    taken = [take_gpu(["GPU-a", "GPU-b"], turns) for _ in range(3)]
    assert taken == ["GPU-a", "GPU-b", "GPU-a"]  # a worker that replaced one takes the next turn
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "GPU-a"
