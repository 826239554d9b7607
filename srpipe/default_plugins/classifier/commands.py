"""``srpipe train classifier``, ``srpipe classify`` and ``srpipe classifier embed``."""

import json
from pathlib import Path

import click

from srpipe.cli.options import (
    FiniteRange,
    check_output_folder,
    check_run_folder,
    device_option,
    json_option,
    overwrite_option,
    weights_option,
)
from srpipe.default_plugins.classifier.datasets import DATASETS, DEFAULT_ROOT
from srpipe.errors import SrpipeError
from srpipe.outputs import input_files
from srpipe.plugin_guard import exits_as_errors

MAX_FEATURES = 1024  # filters a conv block may have: more would take gigabytes for 28x28 pictures


def _features(text: str | None):
    if text is None:
        return None
    try:
        features = tuple(int(v) for v in text.split(","))
    except ValueError:
        features = ()
    if len(features) != 2 or not all(1 <= f <= MAX_FEATURES for f in features):
        raise click.BadParameter(f"give two whole numbers from 1 to {MAX_FEATURES}, such as 16,32 (got {text!r})")
    return features


@click.command("classifier")
@click.option("--dataset", type=click.Choice(sorted(DATASETS)), required=True)
@click.option("--root", type=click.Path(file_okay=False), default=str(DEFAULT_ROOT), show_default=True,
              help="Folder in torchvision's layout; downloaded there when missing and online.")
@click.option("--arch", type=click.Choice(["small-cnn", "lenet"]), help="Network (default: the dataset's).")
@click.option("--features", callback=lambda ctx, param, value: _features(value),
              help="small-cnn: filters of the two conv blocks, e.g. 16,32 (the default).")
@click.option("--dropout", type=FiniteRange(0, 1, max_open=True), default=0.0, show_default=True,
              help="small-cnn: before the head.")
@click.option("--epochs", type=click.IntRange(1), default=10, show_default=True)
@click.option("--batch-size", type=click.IntRange(1), default=128, show_default=True)
@click.option("--lr", type=FiniteRange(0, 1, min_open=True), default=2e-3, show_default=True,
              help="AdamW peak rate, cosine decay.")
@click.option("--weight-decay", type=FiniteRange(0, 1), default=1e-4, show_default=True)
@click.option("--label-smoothing", type=FiniteRange(0, 1, max_open=True), default=0.0, show_default=True)
@click.option("--no-augment", is_flag=True, help="Train without random crops/flips/affine.")
@click.option("--seed", type=int, default=0, show_default=True)
@device_option
@click.option("--threads", type=click.IntRange(1), help="CPU threads for torch.")
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False), required=True,
              help="Run folder: last.pt (every epoch), final.pt, log.jsonl.")
@click.option("--resume", is_flag=True, help="Continue from OUT/last.pt.")
@overwrite_option
def train_classifier(dataset, root, arch, features, dropout, epochs, batch_size, lr, weight_decay,
                     label_smoothing, no_augment, seed, device, threads, out_dir, resume, overwrite):
    """Train an image classifier; prints the test accuracy of each epoch as it ends.

    An earlier run in OUT is replaced only with -y, or continued with --resume.
    """
    check_output_folder(out_dir, f"-o {out_dir}")  # before torch loads
    check_run_folder(Path(out_dir), input_files([root]), resume, overwrite, "-o")
    import torch

    from srpipe.default_plugins.classifier.datasets import get_spec, load_split
    from srpipe.default_plugins.classifier.training import build_classifier
    from srpipe.default_plugins.classifier.training import train_classifier as train
    from srpipe.nn.trainer import TrainConfig, seed_everything

    if threads:
        torch.set_num_threads(threads)
    spec = get_spec(dataset)
    train_set = load_split(spec, root, train=True, augment=not no_augment)
    test_set = load_split(spec, root, train=False)
    seed_everything(seed)  # before the network's weights are drawn: --seed reproduces a run
    config = {"features": features, "dropout": dropout} if (arch or spec.default_arch) == "small-cnn" else {}
    network = build_classifier(spec, arch, **{k: v for k, v in config.items() if v is not None})
    def tell(record):
        click.echo(f"epoch {record['epoch']:>3}  loss {record['train_loss']:.4f}  "
                   f"test accuracy {100 * record['val_accuracy']:.2f}%  ({record['epoch_s']:.0f} s)")

    cfg = TrainConfig(epochs=epochs, lr=lr, weight_decay=weight_decay, seed=seed,
                      device=None if device == "auto" else _usable(device), out_dir=out_dir)
    train(network, spec, train_set, test_set, cfg, batch_size=batch_size, label_smoothing=label_smoothing,
          augment=not no_augment, resume=resume, overwrite=overwrite, on_epoch=tell)
    click.echo(f"weights: {Path(out_dir) / 'final.pt'}")


@click.group()
def classifier():
    """Look inside the image classifiers."""


@classifier.command()
@click.option("-m", "--model", required=True, help="Classifier, e.g. fashion-mnist.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True, help="t-SNE plot (PNG).")
@click.option("--confusion", type=click.Path(dir_okay=False),
              help="Confusion-matrix plot (PNG; default: OUTPUT with _confusion added).")
@click.option("--root", type=click.Path(file_okay=False), default=str(DEFAULT_ROOT), show_default=True,
              help="Folder with the model's data set in torchvision's layout.")
@click.option("--samples", type=click.IntRange(10), default=2000, show_default=True,
              help="Test images in the t-SNE plot (all are used for accuracy and confusion).")
@weights_option
@click.option("--threads", type=click.IntRange(1), help="CPU threads for torch.")
@overwrite_option
def embed(model, output, confusion, root, samples, weights, threads, overwrite):
    """Plot a t-SNE map of the embedding head on the test split, and a confusion matrix."""
    output = Path(output)
    confusion = Path(confusion) if confusion else output.with_name(f"{output.stem}_confusion.png")
    check_output_folder(output.parent, f"-o {output}")  # before torch loads
    check_output_folder(confusion.parent, f"--confusion {confusion}")
    if output.resolve() == confusion.resolve():
        raise SrpipeError(f"-o and --confusion both name {output}; give the confusion matrix a name of its own")
    inputs = input_files([root, *([weights] if weights else [])])
    from srpipe.plotting import check_writable, keeping_inputs

    for path, option in ((output, "-o"), (confusion, "--confusion")):  # before torch loads and the set is embedded
        with keeping_inputs(inputs, option, overwrite):
            check_writable([path])
    import torch

    from srpipe.default_plugins.classifier.datasets import get_spec, load_split
    from srpipe.default_plugins.classifier.evaluate import evaluate
    from srpipe.default_plugins.classifier.plots import plot_confusion, plot_tsne
    from srpipe.plugins import collect_models, get_plugin_manager

    if threads:
        torch.set_num_threads(threads)
    with exits_as_errors():  # a plugin's code
        loaded = collect_models(get_plugin_manager()).get(model, kind="classifier").load(weights=weights)
    if "dataset" not in loaded.meta:
        raise SrpipeError(f"the checkpoint of {model} names no data set, which embed scores it on; use one written "
                          "by 'srpipe train classifier'")
    if model in DATASETS and loaded.meta["dataset"] != model:  # its accuracy would be on other data than -m's
        raise SrpipeError(f"{weights} was trained on {loaded.meta['dataset']}, not on {model}; give -m "
                          f"{loaded.meta['dataset']}, or weights trained on {model}")
    spec = get_spec(loaded.meta["dataset"])
    evaluation = evaluate(loaded.network, load_split(spec, root, train=False))
    with keeping_inputs(inputs, overwrite=overwrite):
        plot_tsne(evaluation, loaded.classes, f"{model} classifier", output, samples=samples)
        plot_confusion(evaluation, loaded.classes, f"{model} classifier", confusion)
    click.echo(f"test accuracy {100 * evaluation.accuracy:.2f}% on {len(evaluation.labels)} images")
    click.echo(f"wrote {output} and {confusion}")


@click.command()
@click.argument("input_path", metavar="INPUT")
@click.option("-m", "--model", required=True, help="Classifier (see 'srpipe models list'), e.g. fashion-mnist.")
@click.option("-k", "--top-k", type=click.IntRange(1), default=3, show_default=True, help="Labels shown per image.")
@click.option("--every", type=click.IntRange(1), default=25, show_default=True,
              help="For a video, classify every Nth frame.")
@weights_option
@device_option
@json_option
def classify(input_path, model, top_k, every, weights, device, as_json):
    """Classify an image, a folder of images or a video (every Nth frame, with timestamps).

    Pictures of another size or colour are converted the way the model expects; a note on
    stderr says how. With --json, one JSON object per line. In a folder, a file that cannot be
    read is reported (in --json as an object with "error") and the others are classified; the
    exit status is then 1.
    """
    from srpipe.default_plugins.classifier.classify import classify as run
    from srpipe.plugins import collect_models, get_plugin_manager

    spec = collect_models(get_plugin_manager()).get(model, kind="classifier")
    with exits_as_errors():  # a plugin's code
        classifier = spec.load(device=_usable(device), weights=weights)
    told = set()
    unreadable = []
    for result in run(input_path, classifier, top_k=top_k, every=every):
        if "error" in result:
            unreadable.append(result["source"])
            click.echo(f"Error: {result['error']}", err=True)
        if as_json:
            click.echo(json.dumps(result))
            continue
        if "error" in result:
            continue
        for note in result["notes"]:
            if (result["source"], note) not in told:
                told.add((result["source"], note))
                click.echo(f"note: {result['source']}: {note}", err=True)
        where = result["source"]
        if result["frame"] is not None:
            time = f"{result['time']:.2f} s, " if result["time"] is not None else ""
            where += f" @ {time}frame {result['frame']}"
        labels = ", ".join(f"{p['label']} {100 * p['probability']:.1f}%" for p in result["predictions"])
        click.echo(f"{where}: {labels}")
    if unreadable:
        raise SrpipeError(f"{len(unreadable)} of the files in {input_path} could not be read (above; the first: "
                          f"{unreadable[0]}); the others were classified")


def _usable(device: str) -> str:
    """``auto``: CUDA when a GPU is usable, else the CPU; ``cuda`` without one is refused."""
    from srpipe.device import resolve_device

    return resolve_device(device, uses_gpu=True)
