import ast
from pathlib import Path

import pytest
import torch

import srpipe.nn.trainer
from srpipe.default_plugins.classifier.datasets import get_spec
from srpipe.default_plugins.classifier.evaluate import evaluate
from srpipe.default_plugins.classifier.networks import LeNet, LeNetConfig, SmallCNN, SmallCNNConfig
from srpipe.default_plugins.classifier.training import build_classifier, train_classifier
from srpipe.nn.checkpoint import load_checkpoint, network_from_checkpoint
from srpipe.nn.trainer import TrainConfig

from classifier_data import BarImages

REPO = Path(__file__).resolve().parents[3]


def test_small_cnn_matches_hand_count():
    net = SmallCNN(SmallCNNConfig())  # 16 and 32 filters of 5x5, then 32*7*7 -> 10
    hand = (16 * 1 * 25 + 16) + (32 * 16 * 25 + 32) + (32 * 7 * 7 * 10 + 10)
    assert sum(p.numel() for p in net.parameters()) == hand == 28938
    logits, embedding = net(torch.rand(2, 1, 28, 28))
    assert logits.shape == (2, 10) and embedding.shape == (2, 32 * 7 * 7)


def test_lenet_matches_hand_count():
    net = LeNet(LeNetConfig())
    hand = (6 * 3 * 25 + 6) + (16 * 6 * 25 + 16) + (400 * 120 + 120) + (120 * 84 + 84) + (84 * 10 + 10)
    assert sum(p.numel() for p in net.parameters()) == hand == 62006
    logits, embedding = net(torch.rand(2, 3, 32, 32))
    assert logits.shape == (2, 10) and embedding.shape == (2, 84)


@pytest.mark.parametrize("dataset", ["cifar10", "fashion-mnist"])
def test_tiny_classifier_beats_chance(tmp_path, dataset):
    torch.set_num_threads(1)
    spec = get_spec(dataset)
    train = BarImages(480, spec.size, spec.channels, spec.transform(train=True, augment=False), seed=1)
    test = BarImages(200, spec.size, spec.channels, spec.transform(train=False), seed=2)
    network = build_classifier(spec)
    config = TrainConfig(epochs=8, lr=3e-3, device="cpu", out_dir=str(tmp_path))
    trainer = train_classifier(network, spec, train, test, config, batch_size=32)
    accuracy = evaluate(trainer.model, test).accuracy
    assert accuracy > 0.75  # four classes: chance is 0.25
    assert trainer.history[-1]["val_accuracy"] == pytest.approx(accuracy, abs=1e-6)
    final = load_checkpoint(tmp_path / "final.pt")
    assert final["meta"]["dataset"] == dataset and final["meta"]["classes"] == list(spec.classes)
    rebuilt = network_from_checkpoint(final)
    assert evaluate(rebuilt, test).accuracy == accuracy


def test_classifier_and_espcn_use_the_one_trainer(monkeypatch, tmp_path):
    import srpipe.default_plugins.classifier.training as classifier_training
    import srpipe.default_plugins.espcn.training as sr_training

    assert classifier_training.Trainer is sr_training.Trainer is srpipe.nn.trainer.Trainer
    fitted = []
    real_fit = srpipe.nn.trainer.Trainer.fit
    monkeypatch.setattr(srpipe.nn.trainer.Trainer, "fit",
                        lambda self, **kw: fitted.append(type(self)) or real_fit(self, **kw))
    spec = get_spec("mnist")
    data = BarImages(32, 28, 1, spec.transform(train=False))
    train_classifier(build_classifier(spec), spec, data, data, TrainConfig(epochs=1, device="cpu"))
    assert fitted == [srpipe.nn.trainer.Trainer]


def test_no_training_loop_in_the_classifier_package():
    for path in (REPO / "srpipe" / "default_plugins" / "classifier").glob("*.py"):
        calls = {node.func.attr for node in ast.walk(ast.parse(path.read_text()))
                 if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)}
        assert not calls & {"backward", "step", "zero_grad"}, path
