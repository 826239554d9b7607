"""Built-in image classifiers (MNIST, Fashion-MNIST) and their commands:
``train classifier``, ``classify``, ``classifier embed``."""

from srpipe import hookimpl
from srpipe.models import ModelSpec

MODELS = {
    "mnist": "Handwritten digit classifier (two-block CNN, 28x28 grey)",
    "fashion-mnist": "Clothing classifier, Fashion-MNIST classes (two-block CNN, 28x28 grey)",
}


def _loader(name: str):
    def load(scale=None, device: str = "cpu", weights=None):
        from srpipe.classifier.model import load_classifier

        return load_classifier(name, device, weights)

    return load


def _network(name: str):
    def network(scale=None):
        from srpipe.classifier.model import load_classifier

        return load_classifier(name).network

    return network


@hookimpl
def register_models(register):
    for name, description in MODELS.items():
        register(ModelSpec(name=name, scales=(), description=description, load=_loader(name),
                           accepts_weights=True, kind="classifier", network=_network(name)))


@hookimpl
def register_commands(cli):
    from srpipe.cli.classifier import classifier, train_classifier
    from srpipe.cli.classify import classify

    cli.commands["train"].add_command(train_classifier)
    cli.add_command(classify)
    cli.add_command(classifier)
