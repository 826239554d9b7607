"""``srpipe eval``."""

import json

import click

from srpipe.cli.options import backend_option


@click.command("eval")
@click.option("-m", "--model", required=True, help="Upscaler to score (see 'srpipe models list').")
@click.option("--data", required=True, type=click.Path(file_okay=False), help="Folder of high-resolution images.")
@click.option("-s", "--scale", type=int, help="Default: the model's own.")
@click.option("--weights", type=click.Path(dir_okay=False), help="Checkpoint for models that take one.")
@backend_option
@click.option("--json", "as_json", is_flag=True, help="Print per-image and mean scores as JSON.")
def evaluate(model, data, scale, weights, backend, as_json):
    """PSNR and SSIM on the luma, next to bicubic, as super-resolution papers score.

    Y is BT.601 as MATLAB's rgb2ycbcr; each image is cropped to a multiple of
    the scale, shrunk with MATLAB-style bicubic, upscaled, and scored with a
    border of `scale` pixels left out.

    \b
    Example:
      srpipe eval -m espcn-x3 --data Set5/
    """
    from srpipe.backends import load_upscaler
    from srpipe.errors import SrpipeError
    from srpipe.plugins import collect_backends, collect_models, get_plugin_manager
    from srpipe.sr.evaluate import evaluate_folder

    pm = get_plugin_manager()
    spec, scale = collect_models(pm).upscaler(model, scale, weights)
    upscaler = load_upscaler(spec, collect_backends(pm), scale=scale, device="cpu", weights=weights, backend=backend)
    try:
        report = evaluate_folder(data, upscaler.scale, lambda y: upscaler.upscale(y, bit_depth=8, full_range=False))
    except FileNotFoundError as exc:
        raise SrpipeError(f"{exc}; give a folder of PNG/BMP/JPEG/TIFF images") from exc
    if as_json:
        click.echo(json.dumps({"model": model, "scale": upscaler.scale, **report}, indent=2))
        return
    click.echo(f"{'image':<14} {model + ' PSNR/SSIM':>24} {'bicubic PSNR/SSIM':>24}")
    for row in report["images"] + [{"name": "mean", **report["mean"]}]:
        click.echo(f"{row['name']:<14} {row['psnr']:>15.2f} / {row['ssim']:.4f} "
                   f"{row['bicubic_psnr']:>15.2f} / {row['bicubic_ssim']:.4f}")
