import numpy as np
import pytest
import torch

from srpipe.default_plugins.espcn.network import ESPCN, ESPCNConfig
from srpipe.default_plugins.espcn.shipped import shipped_weights
from srpipe.default_plugins.espcn.upscaler import ESPCNUpscaler
from srpipe.nn.checkpoint import make_checkpoint, save_checkpoint


def nearest_checkpoint(scale=2, bias=0.0) -> dict:
    """A one-layer ESPCN that copies each input pixel to its scale x scale block (+ bias)."""
    net = ESPCN(ESPCNConfig(scale=scale, features=(), kernels=(1,)))
    with torch.no_grad():
        net.last_layer.weight.fill_(1.0)
        net.last_layer.bias.fill_(bias)
    return make_checkpoint(net, {"note": "nearest"})


def nearest(x, s):
    return x.repeat(s, axis=1).repeat(s, axis=2)


@pytest.mark.parametrize("bit_depth", [8, 10, 12, 16])
@pytest.mark.parametrize("full_range", [False, True])
def test_identity_round_trips_every_format(bit_depth, full_range):
    dtype = np.uint8 if bit_depth == 8 else np.uint16
    rng = np.random.default_rng(bit_depth)
    luma = rng.integers(0, 1 << bit_depth, (5, 7, 9)).astype(dtype)  # odd sizes, 5 frames
    up = ESPCNUpscaler(nearest_checkpoint(3), "cpu", batch_size=2)
    out = up.upscale(luma, bit_depth=bit_depth, full_range=full_range)
    assert up.scale == 3 and out.dtype == dtype and out.shape == (5, 21, 27)
    np.testing.assert_array_equal(out, nearest(luma, 3))


def test_range_conversion_and_clipping():
    # the network (its convolutions) sees limited-range 8-bit / 255: full-range 0 and 255 arrive as 16 and 235
    seen = []
    up = ESPCNUpscaler(nearest_checkpoint(2, bias=0.5), "cpu")
    up.network.body.register_forward_hook(lambda m, i, o: seen.append(i[0].clone()))
    luma = np.array([[[0, 255]]], np.uint8)
    out = up.upscale(luma, bit_depth=8, full_range=True)
    assert seen[0].flatten().tolist() == pytest.approx([16 / 255, 235 / 255])
    # +127.5 at 8-bit limited scale: 16 -> 143.5 -> (143.5 - 16) * 255/219 = 148.5; 235 saturates
    assert out[0, 0].tolist() == [148, 148, 255, 255]
    ten = np.array([[[64, 940]]], np.uint16)  # 10-bit limited black and white
    up = ESPCNUpscaler(nearest_checkpoint(2), "cpu")
    seen.clear()
    up.network.body.register_forward_hook(lambda m, i, o: seen.append(i[0].clone()))
    assert (up.upscale(ten, bit_depth=10, full_range=False) == nearest(ten, 2)).all()
    assert seen[0].flatten().tolist() == pytest.approx([16 / 255, 235 / 255])


def test_loads_from_a_path(tmp_path):
    save_checkpoint(nearest_checkpoint(4), tmp_path / "n.pt")
    up = ESPCNUpscaler(tmp_path / "n.pt")
    assert up.scale == 4 and up.meta == {"note": "nearest"}


def test_rejects_bad_input():
    up = ESPCNUpscaler(nearest_checkpoint())
    with pytest.raises(ValueError):
        up.upscale(np.zeros((4, 4), np.uint8), bit_depth=8, full_range=False)
    with pytest.raises(ValueError):
        up.upscale(np.zeros((1, 4, 4), np.uint8), bit_depth=10, full_range=False)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_shipped_weights_load(scale):
    path = shipped_weights(scale)
    up = ESPCNUpscaler(path)
    assert up.scale == scale and path.stat().st_size < 1_000_000
    assert {"command", "scores", "macs_per_lr_pixel"} <= set(up.meta)
    out = up.upscale(np.full((1, 6, 5), 128, np.uint8), bit_depth=8, full_range=False)
    assert out.shape == (1, 6 * scale, 5 * scale) and np.abs(out.astype(int) - 128).max() <= 2
