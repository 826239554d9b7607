"""``srpipe inspect MODEL`` and ``srpipe inspect kernels IMAGE``."""

import json
from pathlib import Path

import click

from srpipe.cli.options import check_output_folder, json_option, overwrite_option, scale_option, whole_scale

# Larger inputs than these would take gigabytes in a forward pass (--input-size) or in a figure
# of every channel's activations (--feature-maps, which shrinks a larger picture to fit)
MAX_CHANNELS, MAX_SIDE = 64, 4096


class InputSize(click.ParamType):
    """``--input-size``: ``"1,28,28"`` (or ``1x28x28``) -> (1, 28, 28), at most :data:`MAX_CHANNELS`
    channels and :data:`MAX_SIDE` pixels a side."""

    name = "C,H,W"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):  # converted already
            return value
        try:
            shape = tuple(int(v) for v in value.replace("x", ",").split(","))
        except ValueError:
            shape = ()
        if len(shape) != 3 or min(shape) < 1:
            self.fail(f"{value!r} is not C,H,W with three positive integers, e.g. 1,28,28", param, ctx)
        if shape[0] > MAX_CHANNELS or max(shape[1:]) > MAX_SIDE:
            self.fail(f"{value!r} is larger than inspect runs: at most {MAX_CHANNELS} channels and {MAX_SIDE} pixels "
                      "a side", param, ctx)
        return shape


class ModelOrCommandGroup(click.Group):
    """``inspect NAME ...`` runs the subcommand NAME if there is one, else ``inspect model NAME ...``
    (a hidden subcommand, so that the usage and the listing say the same: MODEL or kernels)."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["model", *args]
        return super().parse_args(ctx, args)

    def format_usage(self, ctx, formatter):
        formatter.write_usage(ctx.command_path, "MODEL [OPTIONS] | kernels IMAGE -o DIR")


class ModelCommand(click.Command):
    """``srpipe inspect MODEL``: the usage line says so, not ``inspect model MODEL``."""

    def format_usage(self, ctx, formatter):
        formatter.write_usage(ctx.parent.command_path if ctx.parent else ctx.command_path, "MODEL [OPTIONS]")


@click.group(cls=ModelOrCommandGroup)
def inspect():
    """Look inside a CNN.

    \b
    srpipe inspect MODEL [OPTIONS]      layers, receptive fields, filters, feature maps
                                        (options: srpipe inspect MODEL --help)
    srpipe inspect kernels IMAGE -o DIR classic hand-made kernels on an image

    \b
    Examples:
      srpipe inspect espcn-x2
      srpipe inspect fashion-mnist --filters -o filters/
      srpipe inspect kernels photo.png -o kernels/
    """


@inspect.command("model", cls=ModelCommand, hidden=True)
@click.argument("name", metavar="MODEL")
@click.option("--input-size", type=InputSize(),
              help="C,H,W of the input (default: what the network takes; 64x64 if any size).")
@scale_option
@json_option
@click.option("--filters", is_flag=True, help="Write a PNG of each conv layer's learned kernels.")
@click.option("--feature-maps", "feature_image", type=click.Path(dir_okay=False),
              help="Write a PNG of each conv layer's activations for this image (its first 64 channels, "
                   "each shrunk to at most 128 pixels a side).")
@click.option("--receptive-field", is_flag=True, help="Write receptive_fields.png: each layer's RF on the input grid.")
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False), help="Folder for the PNGs.")
@overwrite_option
def inspect_model(name, input_size, scale, as_json, filters, feature_image, receptive_field, out_dir, overwrite):
    """Per layer: type, kernel, stride, padding, dilation, output shape, weights, biases,
    receptive field, multiply-accumulates; and the totals. Works for any registered model
    with a torch network (see 'srpipe models list')."""
    from srpipe.default_plugins.inspect import figures, networks
    from srpipe.default_plugins.inspect.layers import summarize
    from srpipe.default_plugins.inspect.report import format_summary
    from srpipe.outputs import input_files
    from srpipe.plotting import keeping_inputs, save_figures
    from srpipe.plugins import collect_models, get_plugin_manager

    if (filters or feature_image or receptive_field) and not out_dir:
        raise click.UsageError("--filters, --feature-maps and --receptive-field write PNGs: give a folder with -o DIR")
    if out_dir:
        check_output_folder(out_dir, f"-o {out_dir}")
    network, label = networks.load_network(collect_models(get_plugin_manager()), name, whole_scale(scale, "inspect"))
    shape = input_size or networks.default_input_shape(network)
    summary = summarize(network, shape, label)
    # The figures before the table: a figure refused (its file exists, or is an input) then ends the
    # command before it prints anything, rather than after a table that seemed to succeed.
    drawings = []
    with keeping_inputs(input_files([feature_image] if feature_image else []), overwrite=overwrite):
        if filters:
            drawings += figures.filter_figures(network, label, out_dir)
        if feature_image:
            any_size = not input_size and networks.takes_any_size(network)
            image, notes = networks.image_tensor(feature_image, shape[0], None if any_size else shape[1:])
            for note in notes:
                click.echo(f"note: {feature_image}: {note}", err=True)
            drawings += figures.feature_map_figures(network, image, label, Path(feature_image).name, out_dir)
        if receptive_field:
            drawings.append(figures.receptive_field_figure(summary, out_dir))
        written = save_figures(drawings)
    if as_json:
        click.echo(json.dumps(summary.as_dict(), indent=2))
    else:
        click.echo(format_summary(summary))
    for path in written:
        click.echo(f"wrote {path}", err=True)


@inspect.command("kernels")
@click.argument("image", type=click.Path(dir_okay=False))
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False), required=True, help="Folder for the PNGs.")
@overwrite_option
def inspect_kernels(image, out_dir, overwrite):
    """Apply the classic kernels (box and Gaussian blur, sharpen, Laplacian, Sobel, emboss)
    to IMAGE with conv2d; one PNG per kernel, original and filtered side by side."""
    from srpipe.default_plugins.inspect.kernels import kernel_figures
    from srpipe.errors import SrpipeError
    from srpipe.images import image_size, read_rgb8
    from srpipe.memory import default_max_pixels
    from srpipe.outputs import input_files
    from srpipe.plotting import keeping_inputs, save_figures

    check_output_folder(out_dir, f"-o {out_dir}")
    stored = image_size(image)
    if stored is not None and stored[0] * stored[1] > default_max_pixels():  # before decoding it
        raise SrpipeError(f"{image} is {stored[0]}x{stored[1]}, larger than srpipe reads; crop or shrink it")
    with keeping_inputs(input_files([image]), overwrite=overwrite):
        for path in save_figures(kernel_figures(read_rgb8(image), Path(image).name, out_dir)):
            click.echo(f"wrote {path}")
