import dataclasses

import pytest
import torch

from srpipe.default_plugins.espcn.network import ESPCN, ESPCNConfig
from srpipe.default_plugins.espcn.task import SRTask
from srpipe.nn.registry import build_network, describe
from srpipe.nn.trainer import TrainConfig, Trainer

FSRCNN = dict(features=(8, 4, 4, 8), kernels=(5, 1, 3, 1, 3), activation="prelu")


def pair(cfg: ESPCNConfig) -> tuple[ESPCN, ESPCN]:
    torch.manual_seed(0)
    a = ESPCN(dataclasses.replace(cfg, shuffle="pixelshuffle"))
    b = ESPCN(dataclasses.replace(cfg, shuffle="einops"))
    b.load_state_dict(a.state_dict())
    return a, b


@pytest.mark.parametrize("cfg", [ESPCNConfig(scale=3), ESPCNConfig(scale=2, residual=True, **FSRCNN)])
def test_shuffles_give_identical_tensors(cfg):
    a, b = pair(cfg)
    x = torch.rand(2, 1, 9, 11)
    ya, yb = a(x), b(x)
    assert ya.shape == (2, 1, 9 * cfg.scale, 11 * cfg.scale)
    assert torch.equal(ya, yb)


class Batches:
    """A few fixed random (lr, hr) batches drawn from torch's global generator."""

    def __len__(self):
        return 3

    def __iter__(self):
        for _ in range(3):
            hr = torch.rand(4, 1, 12, 12)
            yield torch.nn.functional.avg_pool2d(hr, 2), hr


def test_seeded_training_gives_identical_weights_with_either_shuffle():
    cfg = ESPCNConfig(scale=2, residual=True, **FSRCNN)
    a, b = pair(cfg)
    for net in (a, b):
        Trainer(net, SRTask(2), Batches(), config=TrainConfig(epochs=2, seed=1, device="cpu")).fit()
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(pa, pb), name
    assert not torch.equal(a.last_layer.weight, pair(cfg)[0].last_layer.weight)


def test_macs_per_lr_pixel():
    paper = ESPCN(ESPCNConfig(scale=3))
    assert paper.macs_per_lr_pixel() == 5 * 5 * 64 + 3 * 3 * 64 * 32 + 3 * 3 * 32 * 9
    res = ESPCN(ESPCNConfig(scale=2, features=(4,), kernels=(3, 1), residual=True))
    assert res.macs_per_lr_pixel() == 9 * 4 + 4 * 4 + 16 * 4


def test_registry_round_trip():
    net = ESPCN(ESPCNConfig(scale=4, **FSRCNN))
    arch, cfg = describe(net)
    again = build_network(arch, cfg)
    assert again.config == net.config


def test_config_is_checked():
    with pytest.raises(ValueError):
        ESPCNConfig(features=(8,), kernels=(3,))
    with pytest.raises(ValueError):
        ESPCNConfig(shuffle="nearest")
    with pytest.raises(ValueError):
        ESPCNConfig.from_dict({"scale": 2, "bogus": 1})
    with pytest.raises(ValueError, match="unshuffle"):
        ESPCNConfig(unshuffle=0)
    with pytest.raises(ValueError, match="padding_mode"):  # circular: a tile's edges would wrap onto each other
        ESPCNConfig(padding_mode="circular")
