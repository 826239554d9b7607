"""Expanded convolutions: trained as branches, saved and run as the one convolution they sum to."""

import pytest
import torch
from test_trainer import RandomBatches
from torch import nn

from srpipe.default_plugins.espcn.network import ESPCN, ESPCNConfig
from srpipe.default_plugins.espcn.task import SRTask
from srpipe.errors import CheckpointError, SrpipeError
from srpipe.nn.checkpoint import load_checkpoint, network_from_checkpoint, save_checkpoint
from srpipe.nn.expanded import ExpandedConv2d, expand, folded, is_expanded
from srpipe.nn.trainer import TrainConfig, Trainer


def network(padding_mode="zeros"):
    torch.manual_seed(0)
    return ESPCN(ESPCNConfig(scale=2, features=(8, 6, 8), kernels=(5, 1, 3, 3), activation="prelu",
                             residual=True, padding_mode=padding_mode))


def nudge(model, amount=0.05):
    """Move every parameter, as training would, so that every branch has something to fold."""
    with torch.no_grad():
        for p in model.parameters():
            p.add_(amount * torch.randn_like(p))


@pytest.mark.parametrize("padding_mode", ["zeros", "replicate", "reflect"])
def test_an_expanded_network_starts_as_the_plain_one_and_folds_into_what_it_computes(padding_mode):
    net = network(padding_mode)
    x = torch.rand(2, 1, 19, 23)
    before = net(x)
    expand(net)
    kinds = [type(m).__name__ for m in net.body if not isinstance(m, nn.PReLU)]
    assert kinds == ["ExpandedConv2d", "Conv2d", "ExpandedConv2d", "ExpandedConv2d"]  # 1x1 stays plain
    torch.testing.assert_close(net(x), before, rtol=0, atol=0)
    nudge(net)
    moved = net(x)
    assert (moved - before).abs().max() > 0.01
    plain = folded(net)
    assert not is_expanded(plain) and is_expanded(net)  # a copy: the expanded one goes on training
    assert all(type(m) in (nn.Conv2d, nn.PReLU) for m in plain.body)
    torch.testing.assert_close(plain(x), moved, rtol=0, atol=1e-6)


def test_every_branch_moves_the_kernel_and_learns():
    conv = ExpandedConv2d(nn.Conv2d(3, 4, 3, padding=1))
    branches = ("weight", "reduce", "spread", "edge_mix", "edge_scale")
    nudge(conv)
    start = conv.kernel().detach()
    for name in branches:
        with torch.no_grad():
            getattr(conv, name).mul_(1.5)
        assert not torch.allclose(conv.kernel(), start), name
        start = conv.kernel().detach()
    conv(torch.rand(1, 3, 8, 8)).square().sum().backward()
    assert all(getattr(conv, name).grad.abs().sum() > 0 for name in branches)


def test_edge_filters_sit_in_the_middle_of_a_larger_kernel():
    conv = ExpandedConv2d(nn.Conv2d(1, 1, 5, padding=2, bias=False))
    with torch.no_grad():
        conv.weight.zero_()
        conv.spread.zero_()
        conv.edge_mix.fill_(1.0)
        conv.edge_scale.copy_(torch.tensor([[1.0], [0.0], [0.0]]))  # the Sobel x filter alone
    expected = torch.zeros(5, 5)
    expected[1:4, 1:4] = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    torch.testing.assert_close(conv.kernel()[0, 0], expected)


def trainer(out, expanded=True, epochs=2):
    net = network()
    if expanded:
        expand(net)
    hr = torch.rand(1, 1, 24, 24)
    cfg = TrainConfig(epochs=epochs, lr=1e-2, seed=3, device="cpu", out_dir=str(out))
    return Trainer(net, SRTask(2), RandomBatches(), {"toy": [(nn.functional.avg_pool2d(hr, 2), hr)]}, cfg)


def test_checkpoints_hold_the_plain_network_and_a_run_resumes_with_its_branches(tmp_path):
    straight = trainer(tmp_path / "a")
    straight.fit()
    final = load_checkpoint(tmp_path / "a" / "final.pt")
    plain = network_from_checkpoint(final, "final.pt")
    assert type(plain) is ESPCN and not is_expanded(plain)
    x = torch.rand(1, 1, 16, 16)
    torch.testing.assert_close(plain(x), straight.model(x), rtol=0, atol=1e-6)

    stopped = trainer(tmp_path / "b")
    stopped.config.stop_after = 1
    stopped.fit()
    last = load_checkpoint(tmp_path / "b" / "last.pt")
    assert "body.0.spread" in last["train"]["expanded_state_dict"] and "body.0.spread" not in last["state_dict"]
    resumed = trainer(tmp_path / "b")
    resumed.fit(resume=True)
    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)


def test_a_run_resumes_only_as_expanded_as_it_was_started(tmp_path):
    first = trainer(tmp_path, expanded=True)
    first.config.stop_after = 1
    first.fit()
    with pytest.raises(SrpipeError, match="started with expanded convolutions"):
        trainer(tmp_path, expanded=False).fit(resume=True)


@pytest.mark.parametrize("branches", [None, [1, 2], "nan"])
def test_a_run_whose_branches_are_not_weights_is_refused(tmp_path, branches):
    first = trainer(tmp_path, expanded=True)
    first.config.stop_after = 1
    first.fit()
    last = load_checkpoint(tmp_path / "last.pt")
    if branches == "nan":
        last["train"]["expanded_state_dict"]["body.0.spread"].fill_(float("nan"))
    else:
        last["train"]["expanded_state_dict"] = branches
    save_checkpoint(last, tmp_path / "last.pt")
    with pytest.raises(CheckpointError, match="last.pt holds (no valid expanded|NaN or infinite) weights"):
        trainer(tmp_path, expanded=True).fit(resume=True)
