"""``srpipe upscale``."""

from __future__ import annotations

import json
import sys

import click

from srpipe.device import DEVICE_CHOICES
from srpipe.media import SinkOptions, SourceOptions


@click.command()
@click.argument("input")
@click.option("-o", "--output", help="Output file, or - for standard output. Default: NAME_xS.ext beside INPUT.")
@click.option("-m", "--model", default="bicubic", show_default=True, help="Upscaler to use (see 'srpipe models list').")
@click.option("-s", "--scale", type=int, help="Upscaling factor. Default: the model's own.")
@click.option("--weights", type=click.Path(dir_okay=False), help="Checkpoint for models that take one (from 'srpipe train').")
@click.option("--device", type=click.Choice(DEVICE_CHOICES), default="auto", show_default=True, help="Where the model runs; auto picks CUDA when a GPU is usable.")
@click.option("--batch-size", type=int, default=8, show_default=True, help="Frames upscaled together.")
@click.option("--codec", help="Video encoder. Default: libx264 (libvpx-vp9 for .webm).")
@click.option("--crf", type=int, default=18, show_default=True, help="Encoder quality; lower is better and larger.")
@click.option("--preset", default="veryfast", show_default=True, help="x264/x265 speed preset.")
@click.option("--pix-fmt", help="Output pixel format, e.g. yuv420p. Default: the input's (10-bit stays 10-bit).")
@click.option("--format", "container_format", help="Output container, e.g. matroska or mpegts (needed for -o -).")
@click.option("--input-format", help="Input container for standard input or URLs whose format cannot be guessed.")
@click.option("--on-decode-error", type=click.Choice(["stop", "skip"]), default="stop", show_default=True,
              help="A damaged input frame stops the run, or is dropped and counted (timestamps stay right).")
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no summary.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on standard output.")
@click.option("--no-threads", is_flag=True, hidden=True, help="Run decode, upscale and encode in one thread.")
def upscale(input, output, model, scale, weights, device, batch_size, codec, crf, preset, pix_fmt,
            container_format, input_format, on_decode_error, overwrite, quiet, as_json, no_threads):
    """Upscale a video, stream or image.

    INPUT is a video file, a URL FFmpeg can open (http, rtsp, ...), - for
    standard input, or a still image (PNG, JPEG, WebP, BMP, TIFF). Video keeps
    its audio, subtitles, timestamps and colour tags; the luma goes through the
    model and the chroma is resized bicubically.

    \b
    Examples:
      srpipe upscale clip.mp4                      # writes clip_x2.mp4
      srpipe upscale clip.mp4 -m lanczos -s 3 -o big.mkv
      srpipe upscale photo.jpg -o photo_big.png
      cat in.ts | srpipe upscale - -o - --format mpegts | ffplay -
    """
    from srpipe.cli.progress import FrameProgress
    from srpipe.upscaling import upscale as run_upscale

    progress = FrameProgress(quiet)
    try:
        result = run_upscale(
            input,
            output,
            model=model,
            scale=scale,
            device=device,
            weights=weights,
            batch_size=batch_size,
            source_options=SourceOptions(input_format=input_format, on_decode_error=on_decode_error),
            sink_options=SinkOptions(
                codec=codec, crf=crf, preset=preset, pix_fmt=pix_fmt,
                container_format=container_format, overwrite=overwrite,
            ),
            threaded=not no_threads,
            progress=progress.for_total,
        )
    finally:
        progress.close()
    if as_json and result.output != "-":
        click.echo(json.dumps(result.to_dict()))
    elif not quiet:
        stats = result.stats
        click.echo(
            f"{stats.frames_out} frame{'s' * (stats.frames_out != 1)} in {stats.seconds:.1f} s ({stats.fps:.1f} fps), "
            f"{result.model} x{result.scale} on {result.device} -> {result.output}",
            err=True,
        )
    if result.stats.frames_skipped:
        click.echo(f"Warning: {result.stats.frames_skipped} damaged frames of {input} were skipped", err=True)
