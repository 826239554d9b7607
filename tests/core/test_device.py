"""--device: auto, cpu, cuda and cuda:N; a GPU index checked against the GPUs torch sees; batch
workers on a machine of several GPUs take one each. The GPUs are stood in for where the check
is only of the counting (this machine has none); tests/core/test_cuda.py runs on a real one."""

import multiprocessing
import os
import subprocess
import sys
from dataclasses import replace

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
    with pytest.raises(SrpipeError, match=r"--device cuda:2: torch sees 2 CUDA GPUs, cuda:0 to cuda:1; pick one"):
        device.resolve_device("cuda:2")


@pytest.mark.parametrize("name", ["gpu", "cuda:", "cuda:-1", "cuda:1x", "cuda:01", "CUDA", "cuda:١"])
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


def test_a_worker_takes_a_free_gpu_slot_and_a_replacement_the_dead_ones(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    owners = multiprocessing.get_context("spawn").Array("i", 2)
    assert take_gpu(["GPU-a", "GPU-b"], owners) == "GPU-a"  # the first slot, now this process's
    assert list(owners) == [os.getpid(), 0] and os.environ["CUDA_VISIBLE_DEVICES"] == "GPU-a"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    owners[0], owners[1] = os.getppid(), int(dead.stdout)  # the worker of slot 1 died
    assert take_gpu(["GPU-a", "GPU-b"], owners) == "GPU-b"  # its replacement takes over its GPU
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "GPU-b"


def test_batch_runs_a_worker_on_each_gpu_by_default(two_gpus, tmp_path, monkeypatch):
    """Without --jobs, two GPUs make two workers, and a long video is cut into parts for them;
    the workers are stood in for by this process (on the CPU), after recording what they got."""
    from srpipe.default_plugins.batch import engine
    from srpipe.media import SinkOptions

    given = {}

    def run_locally(work, jobs, threads, on_frame, on_start, gpus):
        given.update(jobs=jobs, gpus=gpus, parts=sum(job.chunk is not None for job in work))
        for job in work:
            yield engine.run_and_pair(replace(job, settings=replace(job.settings, device="cpu")))

    monkeypatch.setattr(engine, "_run_locally", run_locally)
    clips = tmp_path / "in"
    clips.mkdir()
    make_test_video(clips / "long.mp4", frames=60, codec_options={"preset": "fast", "g": "10"})
    make_test_video(clips / "short.mp4", frames=4)
    settings = engine.BatchSettings(model="bicubic", device="cuda", sink=SinkOptions(codec="ffv1"))
    monkeypatch.setattr(engine, "_uses_gpu", lambda settings: True)  # bicubic stands in for a network
    report = engine.run_batch(clips, tmp_path / "out", settings, chunk_seconds=0.5)
    assert report.to_dict()["done"] == 2
    assert given["jobs"] == 2 and given["gpus"] == ["0", "1"] and given["parts"] > 1
