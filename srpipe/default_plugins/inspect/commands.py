"""``srpipe inspect MODEL`` and ``srpipe inspect kernels IMAGE``."""

import json
from pathlib import Path

import click


class ModelOrCommandGroup(click.Group):
    """``inspect NAME ...`` runs the subcommand NAME if there is one, else ``inspect model NAME ...``."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["model", *args]
        return super().parse_args(ctx, args)


@click.group(cls=ModelOrCommandGroup)
def inspect():
    """Look inside a CNN: `srpipe inspect MODEL [options]` (layers, receptive fields, filters,
    feature maps) or `srpipe inspect kernels IMAGE -o DIR` (classic hand-made kernels)."""


@inspect.command("model")
@click.argument("name", metavar="MODEL")
@click.option("--input-size", help="C,H,W of the input (default: what the network takes; 64x64 if any size).")
@click.option("-s", "--scale", type=int, help="For upscalers: the scale (or write the model as espcn-x2).")
@click.option("--json", "as_json", is_flag=True, help="The layer table as JSON on stdout.")
@click.option("--filters", is_flag=True, help="Write a PNG of each conv layer's learned kernels.")
@click.option("--feature-maps", "feature_image", type=click.Path(dir_okay=False),
              help="Write a PNG of each conv layer's activations for this image.")
@click.option("--receptive-field", is_flag=True, help="Write receptive_fields.png: each layer's RF on the input grid.")
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False), help="Folder for the PNGs.")
def inspect_model(name, input_size, scale, as_json, filters, feature_image, receptive_field, out_dir):
    """Per layer: type, kernel, stride, padding, dilation, output shape, weights, biases,
    receptive field, multiply-accumulates; and the totals. Works for any registered model
    with a torch network (see 'srpipe models list')."""
    from srpipe.errors import SrpipeError
    from srpipe.default_plugins.inspect import figures, networks
    from srpipe.default_plugins.inspect.layers import summarize
    from srpipe.default_plugins.inspect.report import format_summary
    from srpipe.plugins import collect_models, get_plugin_manager

    if (filters or feature_image or receptive_field) and not out_dir:
        raise SrpipeError("--filters, --feature-maps and --receptive-field write PNGs: give a folder with -o DIR")
    network, label = networks.load_network(collect_models(get_plugin_manager()), name, scale)
    shape = networks.parse_input_size(input_size) if input_size else networks.default_input_shape(network)
    summary = summarize(network, shape, label)
    if as_json:
        click.echo(json.dumps(summary.as_dict(), indent=2))
    else:
        click.echo(format_summary(summary))
    written = []
    if filters:
        written += figures.plot_filters(network, label, out_dir)
    if feature_image:
        any_size = not input_size and networks.takes_any_size(network)
        image, notes = networks.image_tensor(feature_image, shape[0], None if any_size else shape[1:])
        for note in notes:
            click.echo(f"note: {feature_image}: {note}", err=True)
        written += figures.plot_feature_maps(network, image, label, Path(feature_image).name, out_dir)
    if receptive_field:
        written.append(figures.plot_receptive_fields(summary, out_dir))
    for path in written:
        click.echo(f"wrote {path}", err=True)


@inspect.command("kernels")
@click.argument("image", type=click.Path(dir_okay=False))
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False), required=True, help="Folder for the PNGs.")
def inspect_kernels(image, out_dir):
    """Apply the classic kernels (box and Gaussian blur, sharpen, Laplacian, Sobel, emboss)
    to IMAGE with conv2d; one PNG per kernel, original and filtered side by side."""
    from srpipe.images import read_rgb8
    from srpipe.default_plugins.inspect.kernels import plot_kernels

    for path in plot_kernels(read_rgb8(image), Path(image).name, out_dir):
        click.echo(f"wrote {path}")
