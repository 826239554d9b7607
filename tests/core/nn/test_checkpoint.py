import os
import pickle

import pytest
import torch

from srpipe.default_plugins.espcn.network import ESPCN, ESPCNConfig
from srpipe.errors import SrpipeError
from srpipe.nn.checkpoint import (
    CheckpointError,
    load_checkpoint,
    make_checkpoint,
    network_from_checkpoint,
    save_checkpoint,
)


def small() -> ESPCN:
    return ESPCN(ESPCNConfig(scale=2, features=(4,), kernels=(3, 3)))


def test_round_trip(tmp_path):
    net = small()
    save_checkpoint(make_checkpoint(net, {"psnr": 1.5}), tmp_path / "a.pt")
    ckpt = load_checkpoint(tmp_path / "a.pt")
    assert ckpt["format"] == "srpipe-checkpoint/1" and ckpt["meta"] == {"psnr": 1.5}
    again = network_from_checkpoint(ckpt)
    x = torch.rand(1, 1, 5, 6)
    assert torch.equal(net(x), again(x))


class Exploit:
    """Unpickling this would create a marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickled_module_is_refused(tmp_path):
    torch.save(small(), tmp_path / "module.pt")
    with pytest.raises(CheckpointError, match="module.pt"):
        load_checkpoint(tmp_path / "module.pt")


@pytest.mark.parametrize("how", ["torch.save", "pickle"])
def test_malicious_pickle_is_refused_and_not_run(tmp_path, how):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    payload = {"format": "srpipe-checkpoint/1", "state_dict": Exploit(marker)}
    if how == "torch.save":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload, protocol=2))
    with pytest.raises(CheckpointError, match=r"evil.pt holds a pickled Python object \((posix|os)\.system\), not only "
                                              r"tensors"):
        load_checkpoint(path)
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"", b"garbage" * 100, b"PK\x03\x04truncated zip"])
def test_garbage_is_refused(tmp_path, content):
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(path)
    assert "bad.pt" in str(e.value) and "\n" not in str(e.value)
    assert isinstance(e.value, SrpipeError)


def test_wrong_content_is_refused(tmp_path):
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not an srpipe-checkpoint/1"):
        load_checkpoint(tmp_path / "other.pt")
    ckpt = make_checkpoint(small())
    ckpt["state_dict"].pop("body.0.weight")
    with pytest.raises(CheckpointError, match="does not match"):
        network_from_checkpoint(ckpt)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
