"""``srpipe upscale``: the main command, one input to one output."""

from __future__ import annotations

import contextlib
import json

import click

from srpipe import hookimpl
from srpipe.cli.options import (
    backend_option,
    encoder_options,
    exact_option,
    json_option,
    model_options,
    not_empty,
    overwrite_option,
    quiet_option,
    timeout_option,
)
from srpipe.media import SinkOptions, SourceOptions


@click.command()
@click.argument("input")
@click.option("-o", "--output", callback=not_empty,
              help="Output file, or - for standard output (--json then goes to standard error). "
                   "Default: NAME_xS beside INPUT (NAME_w1920... for a target size), as .png for "
                   "a picture; a video keeps .mp4, .m4v, .mov, .mkv, .webm or .ts (an animated "
                   "PNG its .png or .apng), any other (.avi, .gif...) becomes .mp4.")
@model_options
@backend_option
@exact_option
@encoder_options
@click.option("--format", "container_format",
              help="Output container, e.g. matroska or mpegts. Default: from the output's name; Matroska for -o -, "
                   "FIFOs and devices. A picture: png, jpeg, webp, bmp or tiff, for -o -, a FIFO or a device "
                   "(default: PNG, or the one its name says); a picture file is written in the format its name "
                   "says, which --format may not contradict.")
@click.option("--views", type=click.Choice(["1", "2", "4", "8"]), metavar="N",
              help="A picture through a network that gains from it (-m espcn): the mean of its outputs over N "
                   "flipped and turned views of the picture, 1, 2, 4 or 8 (1: the network once). Default: as many "
                   "as fit in 10^11 multiply-adds, all 8 on small pictures, one on large photos (docs/espcn.md).")
@click.option("--input-format", help="Input container for standard input or URLs whose format cannot be guessed.")
@timeout_option
@overwrite_option
@quiet_option
@json_option
@click.option("--no-threads", is_flag=True, hidden=True, help="Run decode, upscale and encode in one thread.")
def upscale(input, output, model, scale, width, height, weights, device, batch_size, backend, exact, codec, crf,
            preset, pix_fmt, container_format, views, input_format, on_decode_error, deinterlace, max_pixels, timeout,
            overwrite, quiet, as_json, no_threads):
    """Upscale a video, stream or image.

    INPUT is a video file, a URL FFmpeg can open (http, rtsp, ...), - for
    standard input, or a still image (PNG, JPEG, WebP, BMP, TIFF; AVIF and JPEG 2000
    are read, written as PNG). Video keeps
    its audio, subtitles, timestamps and colour tags; the luma goes through the
    model and the chroma is resized bicubically.

    \b
    Examples:
      srpipe upscale clip.mp4                      # writes clip_x2.mp4
      srpipe upscale clip.mp4 -m lanczos -s 3 -o big.mkv
      srpipe upscale clip.mp4 -s 1.5               # x2, then resized to 1.5x
      srpipe upscale clip.mp4 --width 1920         # 1920 wide, aspect ratio kept
      srpipe upscale photo.jpg -o photo_big.png
      srpipe upscale photo.jpg -m espcn --views 8  # the network on 8 turned views of it
      cat in.ts | srpipe upscale - -o - --format mpegts | ffplay -
    """
    # The library refuses these too, for its callers; here as usage errors, before anything is read
    if views is not None and exact:
        raise click.UsageError(f"--exact runs the network once; leave out --views {views} or --exact")
    from srpipe.outputs import is_stream_location, local_name_hint

    if output is None and is_stream_location(input):
        raise click.UsageError(f"{'standard input' if input == '-' else input} is a stream; name the output with -o"
                               + local_name_hint(input))
    if output == "-" and _stdout_is_terminal():
        from srpipe.errors import SrpipeError

        raise SrpipeError("-o - writes binary video to standard output, which is a terminal here; "
                          "pipe it into a program (... -o - | ffplay -) or redirect it (-o - > out.mkv)")
    from srpipe.cli.progress import FrameProgress, shown
    from srpipe.plugin_guard import prints_to_stderr
    from srpipe.upscaling import upscale as run_upscale

    progress = FrameProgress(quiet)
    try:
        with prints_to_stderr() if as_json else contextlib.nullcontext():  # the JSON is standard output's alone
            result = run_upscale(
                input,
                output,
                model=model,
                scale=scale,
                width=width,
                height=height,
                device=device,
                weights=weights,
                backend=backend,
                batch_size=batch_size,
                source_options=SourceOptions(input_format=input_format, on_decode_error=on_decode_error,
                                             deinterlace=deinterlace, max_pixels=max_pixels, timeout=timeout),
                sink_options=SinkOptions(
                    codec=codec, crf=crf, preset=preset, pix_fmt=pix_fmt,
                    container_format=container_format, overwrite=overwrite,
                ),
                threaded=not no_threads,
                progress=progress.for_total,
                exact=exact,
                views=None if views is None else int(views),
            )
    finally:
        progress.close()
    if as_json:  # with -o -, standard output holds the video
        click.echo(json.dumps(result.to_dict()), err=result.output == "-")
    elif not quiet:
        stats = result.stats
        where = f"{result.device}, {result.backend}" if result.backend else result.device
        reuse = f" ({result.reuse.describe()})" if result.reuse is not None else ""
        if stats.frames_deinterlaced:
            count = stats.frames_deinterlaced
            reuse += f", {count} frame{'s' * (count != 1)} deinterlaced"
        click.echo(
            f"{stats.frames_out} frame{'s' * (stats.frames_out != 1)} in {stats.seconds:.1f} s ({stats.fps:.1f} fps), "
            f"{result.model}{f' ({result.variant})' if result.variant else ''} {result.describe_size()} on {where}"
            f"{reuse} -> {shown(result.output)}",
            err=True,
        )


def _stdout_is_terminal() -> bool:
    import sys

    try:
        return sys.stdout is not None and sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


@hookimpl
def register_commands(cli):
    cli.add_command(upscale)
