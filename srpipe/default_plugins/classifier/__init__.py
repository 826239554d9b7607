"""Built-in image classifiers (MNIST, Fashion-MNIST) and their commands:
``train classifier``, ``classify``, ``classifier embed``."""

from srpipe import hookimpl
from srpipe.models import ModelSpec
from srpipe.nn.registry import NetworkSpec

MODELS = {
    "mnist": "Handwritten digit classifier (two-block CNN, 28x28 grey)",
    "fashion-mnist": "Clothing classifier, Fashion-MNIST classes (two-block CNN, 28x28 grey)",
}


def _loader(name: str):
    def load(scale=None, device: str = "cpu", weights=None):
        from srpipe.default_plugins.classifier.model import load_classifier

        return load_classifier(name, device, weights)

    return load


def _network(name: str):
    def network(scale=None):
        from srpipe.default_plugins.classifier.model import load_classifier

        return load_classifier(name).network

    return network


@hookimpl
def register_models(register):
    for name, description in MODELS.items():
        register(ModelSpec(name=name, scales=(), description=description, load=_loader(name),
                           accepts_weights=True, kind="classifier", network=_network(name)))


@hookimpl
def register_commands(cli):
    from srpipe.default_plugins.classifier.commands import classifier, classify, train_classifier

    cli.commands["train"].add_command(train_classifier)
    cli.add_command(classify)
    cli.add_command(classifier)


def _classes(network: str, config: str):
    def classes():
        from srpipe.default_plugins.classifier import networks

        return getattr(networks, network), getattr(networks, config)

    return classes


@hookimpl
def register_networks(register):
    register(NetworkSpec(name="small-cnn", classes=_classes("SmallCNN", "SmallCNNConfig")))
    register(NetworkSpec(name="lenet", classes=_classes("LeNet", "LeNetConfig")))
