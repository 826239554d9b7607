"""``srpipe classify``."""

import json

import click


@click.command()
@click.argument("input_path", metavar="INPUT")
@click.option("-m", "--model", required=True, help="Classifier (see 'srpipe models list'), e.g. fashion-mnist.")
@click.option("-k", "--top-k", type=click.IntRange(1), default=3, show_default=True, help="Labels shown per image.")
@click.option("--every", type=click.IntRange(1), default=25, show_default=True,
              help="For a video, classify every Nth frame.")
@click.option("--weights", type=click.Path(dir_okay=False), help="A checkpoint instead of the model's own.")
@click.option("--device", default="cpu", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line on stdout.")
def classify(input_path, model, top_k, every, weights, device, as_json):
    """Classify an image, a folder of images or a video (every Nth frame, with timestamps).

    Pictures of another size or colour are converted the way the model expects; a note on
    stderr says how.
    """
    from srpipe.classifier.classify import classify as run
    from srpipe.plugins import collect_models, get_plugin_manager

    spec = collect_models(get_plugin_manager()).get(model, kind="classifier")
    classifier = spec.load(device=device, weights=weights)
    told = set()
    for result in run(input_path, classifier, top_k=top_k, every=every):
        if as_json:
            click.echo(json.dumps(result))
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
