"""The CUDA path against the CPU's. Skipped where torch sees no GPU: none was lent to this
project, so these have not run yet; they are the first thing to run on a GPU machine."""

import json

import av
import numpy as np
import pytest
import torch

from srpipe.default_plugins.classic.upscaler import ClassicUpscaler
from srpipe.default_plugins.espcn import TORCH, TORCH_COMPILE, TORCH_FP16
from srpipe.default_plugins.espcn.shipped import shipped_weights
from srpipe.default_plugins.espcn.upscaler import ESPCNUpscaler
from srpipe.testing import make_test_video
from srpipe.video import encoder_works, frame_from_av

from conftest import REPO, run_srpipe
from media import video_info

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture(scope="module")
def luma():
    """Ten 720p luma planes of the bundled clip: sub-batches of four, the last one partial."""
    with av.open(str(REPO / "samples" / "bigbuckbunny.mp4")) as container:
        return np.stack([frame_from_av(f).planes[0] for _, f in zip(range(10), container.decode(video=0))])


@pytest.mark.parametrize("backend", [TORCH, TORCH_FP16, TORCH_COMPILE], ids=lambda b: b.name)
@pytest.mark.parametrize("bit_depth", [8, 10])
def test_espcn_on_cuda_matches_the_cpu(luma, backend, bit_depth):
    """Within one 8-bit code value: cuDNN may compute float32 convolutions in TF32, and
    torch-fp16 and torch-compile in float16 (as the CPU emulation in test_backends.py measured)."""
    samples = luma if bit_depth == 8 else luma.astype(np.uint16) << 2
    cpu = ESPCNUpscaler(shipped_weights(2), backend=TORCH).upscale(samples, bit_depth=bit_depth, full_range=False)
    gpu = ESPCNUpscaler(shipped_weights(2), device="cuda", backend=backend).upscale(
        samples, bit_depth=bit_depth, full_range=False)
    assert gpu.dtype == cpu.dtype and gpu.shape == cpu.shape == (10, 1440, 2560)
    assert torch.backends.cudnn.benchmark  # cuDNN times its algorithms for each shape
    differ = np.abs(gpu.astype(np.int64) - cpu)
    assert differ.max() <= (1 if bit_depth == 8 else 4) and (differ > 0).mean() <= 0.05


@pytest.mark.parametrize("method", ["bicubic", "lanczos"])
def test_classical_on_cuda_matches_the_cpu(luma, method):
    cpu = ClassicUpscaler(method, 2).upscale(luma[:3], bit_depth=8, full_range=False)
    gpu = ClassicUpscaler(method, 2, "cuda").upscale(luma[:3], bit_depth=8, full_range=False)
    differ = np.abs(gpu.astype(np.int64) - cpu)
    assert gpu.dtype == np.uint8 and differ.max() <= 1 and differ.mean() < 0.15


def test_upscale_on_cuda_end_to_end(tmp_path):
    clip = make_test_video(tmp_path / "clip.mp4", frames=12)
    done = run_srpipe("upscale", clip, "-m", "espcn", "--device", "cuda", "--json", "-q")
    assert done.returncode == 0, done.stderr.decode()
    summary = json.loads(done.stdout)
    assert summary["device"].startswith("cuda")
    assert summary["encoder"] == ("h264_nvenc" if encoder_works("h264_nvenc") else "libx264")
    info = video_info(tmp_path / "clip_x2.mp4")
    assert (info["width"], info["height"], len(info["times"])) == (128, 96, 12)


def test_a_gpu_by_its_index(tmp_path):
    """``--device cuda:N``: the last GPU runs the job; one past it is refused in one line."""
    clip = make_test_video(tmp_path / "clip.mp4", frames=4)
    last = torch.cuda.device_count() - 1
    done = run_srpipe("upscale", clip, "-m", "espcn", "--device", f"cuda:{last}", "--json", "-q")
    assert done.returncode == 0, done.stderr.decode()
    assert json.loads(done.stdout)["device"] == f"cuda:{last}"
    refused = run_srpipe("upscale", clip, "-m", "espcn", "--device", f"cuda:{last + 1}", "-o", tmp_path / "no.mp4")
    assert refused.returncode == 1 and b"pick one of them" in refused.stderr
    assert not (tmp_path / "no.mp4").exists()


def test_nan_from_the_network_is_refused_on_cuda(luma):
    from srpipe.default_plugins.espcn.network import ESPCN, ESPCNConfig
    from srpipe.errors import NonFiniteOutput
    from srpipe.nn.checkpoint import make_checkpoint

    network = ESPCN(ESPCNConfig(scale=2, features=(4,), kernels=(3, 3)))
    network.body[-1].bias.data[:] = float("nan")
    with pytest.raises(NonFiniteOutput):
        ESPCNUpscaler(make_checkpoint(network), device="cuda").upscale(luma[:5], bit_depth=8, full_range=False)
