"""Tiled inference equals the untiled run exactly, and the network within float rounding."""

import numpy as np
import pytest
import torch

from srpipe.default_plugins.espcn.network import ESPCN, ESPCNConfig
from srpipe.default_plugins.espcn.upscaler import ESPCNUpscaler
from srpipe.nn.checkpoint import make_checkpoint


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
