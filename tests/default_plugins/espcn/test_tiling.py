"""Tiled inference equals the untiled run exactly, and the network within float rounding."""

import numpy as np
import pytest
import torch

from srpipe.default_plugins.espcn import upscaler as upscaler_module
from srpipe.default_plugins.espcn.network import ESPCN, ESPCNConfig
from srpipe.default_plugins.espcn.upscaler import ESPCNUpscaler
from srpipe.nn.checkpoint import make_checkpoint
from srpipe.reuse import ReusePolicy, with_reuse


@pytest.mark.parametrize("scale", [2, 3])
@pytest.mark.parametrize("residual", [True, False])
def test_tiles_give_the_untiled_output(scale, residual):
    torch.manual_seed(0)
    net = ESPCN(ESPCNConfig(scale=scale, features=(8, 4, 8), kernels=(5, 1, 3, 3), activation="prelu",
                            residual=residual))
    for p in net.parameters():  # trained-looking weights, not the near-zero residual init
        p.data.normal_(0, 0.3)
    tiled = ESPCNUpscaler(make_checkpoint(net), tile=16)
    whole = ESPCNUpscaler(make_checkpoint(net), tile=10_000)
    assert tiled.margin == 2 + 0 + 1 + 1
    x = np.random.default_rng(0).random((2, 1, 53, 71), dtype=np.float32)
    assert np.array_equal(tiled.run_tiled(x), whole.run_tiled(x))
    with torch.inference_mode():  # the residual by OpenCV: float rounding apart from torch (7e-6 at x3)
        assert np.abs(whole.run_tiled(x) - whole.network(torch.from_numpy(x)).numpy()).max() < 2e-5
    luma = (np.random.default_rng(1).random((2, 53, 71)) * 255).astype(np.uint8)
    assert np.array_equal(tiled.upscale(luma, bit_depth=8, full_range=False),
                          whole.upscale(luma, bit_depth=8, full_range=False))


def blocks_network(shuffle="pixelshuffle"):
    """A network on 2x2 blocks of pixels (ESPCNConfig.unshuffle), with trained-looking weights."""
    torch.manual_seed(0)
    net = ESPCN(ESPCNConfig(scale=2, features=(8, 8), kernels=(3, 3, 3), activation="prelu", residual=True,
                            unshuffle=2, shuffle=shuffle))
    for p in net.parameters():
        p.data.normal_(0, 0.3)
    return net


def test_a_network_on_blocks_reads_its_radius_and_no_farther():
    net = blocks_network().eval()
    radius = net.receptive_radius()
    assert (radius, net.config.crop_alignment()) == (2 * 3 + 1, 2)
    assert net.macs_per_lr_pixel() == (4 * 8 + 8 * 8 + 8 * 16) * 9 // 4 + 16 * 4
    x = torch.rand(1, 1, 41, 43)

    def moves(pixel, distance):  # whether a change ``distance`` to the right of LR pixel ``pixel`` moves its outputs
        changed = x.clone()
        changed[..., pixel, pixel + distance] += 1
        return bool((net.convolved(changed) - before)[..., 2 * pixel:2 * pixel + 2, 2 * pixel:2 * pixel + 2].any())

    with torch.inference_mode():
        before = net.convolved(x)
        assert moves(20, radius) and not moves(20, radius + 1)  # the first pixel of its block reads the farthest
        assert not moves(21, radius)
        assert torch.equal(blocks_network("einops").eval().convolved(x), before)


def test_a_network_on_blocks_gives_the_whole_frames_output_in_tiles_and_bands(monkeypatch):
    net = blocks_network()
    tiled = ESPCNUpscaler(make_checkpoint(net), tile=15)
    whole = ESPCNUpscaler(make_checkpoint(net), tile=10_000)
    assert (tiled.tile, tiled.margin, tiled.crop_alignment) == (16, 8, 2)  # rounded up to whole blocks
    x = np.random.default_rng(0).random((2, 1, 53, 71), dtype=np.float32)  # odd sides: edge blocks padded
    assert np.array_equal(tiled.run_tiled(x), whole.run_tiled(x))
    luma = (np.random.default_rng(1).random((2, 53, 71)) * 255).astype(np.uint8)
    want = whole.upscale(luma, bit_depth=8, full_range=False)
    monkeypatch.setattr(upscaler_module, "BAND_OUTPUT_PIXELS", 3 * 71 * 4)  # bands of 3 rows, made 4
    assert tiled._band(71) == (4, 10)
    assert np.array_equal(tiled.upscale(luma, bit_depth=8, full_range=False), want)


def test_tile_reuse_starts_each_read_of_a_network_on_blocks_on_its_grid():
    """With threshold 0, every frame is the network's own output on the whole frame, while a
    subject moves over a still picture and the picture pans by whole blocks (followed) and by
    odd shifts (not followed: the network's output does not move with them), and the frame's
    bottom right changes (an odd number of rows, padded to whole blocks; an even number of
    columns, where a read pushed against the end must grow back to its grid). The network runs
    in float64 here: in float32 torch rounds differently on different shapes, which can move an
    output across a half code value."""
    net = blocks_network().double().eval()

    def convolved(x):
        with torch.inference_mode():
            return net.convolved(torch.from_numpy(x).double()).float().numpy()

    whole, inner = ESPCNUpscaler(make_checkpoint(net.float())), ESPCNUpscaler(make_checkpoint(net.float()))
    whole.convolved = inner.convolved = convolved
    net.double()
    # whole_cost: the strips a pan brings in and their halos read more than would run the frame whole here
    reusing = with_reuse(inner, ReusePolicy(threshold=0, flat=False, call_pixels=0, whole_cost=2.0))
    assert (reusing.radius, reusing.alignment) == (7, 2)
    rng = np.random.default_rng(2)
    world = (np.random.default_rng(3).random((300, 380)) * 255).astype(np.uint8)
    x0 = y0 = 30
    for index, (dy, dx) in enumerate([(0, 0)] * 4 + [(2, 4)] * 3 + [(0, 0)] * 2 + [(1, 3)] * 2 + [(0, 0)] * 2):
        y0, x0 = y0 - dy, x0 - dx
        frame = np.ascontiguousarray(world[y0:y0 + 251, x0:x0 + 316])
        top, left = 40 + 5 * index, 57 + 3 * index
        frame[top:top + 12, left:left + 9] = rng.integers(0, 256, (12, 9))
        frame[-3 - index % 3:, -5 - index % 4:] = 255 - index  # at the frame's odd bottom and right ends
        got = reusing.upscale(frame[None], bit_depth=8, full_range=False)[0]
        np.testing.assert_array_equal(got, whole.upscale(frame[None], bit_depth=8, full_range=False)[0])
    assert reusing.stats.shifted_frames == 3  # the even pans only
    assert reusing.stats.full_frames == 1 + 2  # the first, and the odd pans
