"""``srpipe batch``."""

from __future__ import annotations

import contextlib
import json
import os
import sys

import click

from srpipe.cli.options import (
    FiniteRange,
    backend_option,
    encoder_options,
    exact_option,
    json_option,
    model_options,
    not_empty,
    overwrite_option,
    quiet_option,
)
from srpipe.media import SinkOptions


@click.command()
@click.argument("in_dir", callback=not_empty)
@click.argument("out_dir", callback=not_empty)
@model_options
@backend_option
@exact_option
@encoder_options
@click.option("-j", "--jobs", type=click.IntRange(min=1),
              help="Workers at once, each with an equal share of the cores. Default: 1 locally, or one per GPU "
                   "where --device cuda (or auto, meaning CUDA) finds several; on Ray one per GPU, else one per CPU.")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="Where the work runs: processes on this machine, or a Ray cluster (pip install 'srpipe[ray]').")
@click.option("--address", help="Ray cluster to join, e.g. auto or HOST:6379. Default: start one on this machine.")
@click.option("--chunk-seconds", type=FiniteRange(min=0), default=60.0, show_default=True,
              help="With more than one worker, split videos at least twice this long into keyframe-aligned "
                   "chunks of about this length, upscaled in parallel and joined (0: never split).")
@click.option("--pattern", help="Only files whose relative path or name matches this glob, e.g. '*.mkv'. "
              "Hidden files and folders are left out unless it names them by their leading dot ('.*.mp4').")
@overwrite_option
@quiet_option
@json_option
def batch(in_dir, out_dir, model, scale, width, height, weights, device, batch_size, backend, exact, codec, crf,
          preset, pix_fmt, on_decode_error, deinterlace, max_pixels, jobs, engine, address, chunk_seconds, pattern,
          overwrite, quiet, as_json):
    """Upscale every video and image under IN_DIR into the same tree under OUT_DIR.

    Names and relative paths are kept (images become .png; videos keep
    .mp4/.m4v/.mov/.mkv/.webm/.ts and an animated PNG its .png/.apng, others,
    .avi and .gif among them, become .mp4). Run it again to resume:
    finished files, recorded in OUT_DIR/.srpipe-batch.json with their input's
    size and time and the settings, are skipped; anything else is redone. A
    file that fails is reported and the rest go on.

    A file already in OUT_DIR that this batch did not write is left alone and
    reported (status "exists"); -y replaces it. An input is never replaced,
    not even with -y (OUT_DIR above IN_DIR, a hard link). The exit code is 1
    if any file failed or was left alone.

    With --jobs 2 or more (or on Ray), long videos are split at keyframes
    into chunks that run in parallel; the parts (kept in
    OUT_DIR/.srpipe-parts until joined, so they resume too) are joined with
    the source's audio, subtitles and timestamps, and the frame count is
    checked against the source's. On Ray, inputs and OUT_DIR must be at the
    same path on every node.

    Progress: on a terminal, one bar over the batch in frames (counted from
    the containers before the first file starts) with the time left and the
    current file (file 3/120); elsewhere, one line per file with the batch's
    progress and time left, and a line a minute in between. With -q, only
    failed files and files left alone are listed, one line each.

    \b
    Examples:
      srpipe batch footage/ upscaled/ -m espcn
      srpipe batch footage/ upscaled/ --width 1920          # every file 1920 wide
      srpipe batch footage/ upscaled/ --pattern '*.mkv' --jobs 2 --json
      srpipe batch footage/ upscaled/ -m espcn --engine ray --address auto
    """
    if address is not None and engine != "ray":  # run_batch refuses it too, for its callers; here as usage
        raise click.UsageError("--address is for --engine ray")
    from srpipe.default_plugins.batch.engine import BatchSettings, run_batch
    from srpipe.default_plugins.batch.progress import BatchProgress, shown
    from srpipe.plugin_guard import prints_to_stderr

    settings = BatchSettings(
        model=model, scale=scale, weights=weights, device=device, backend=backend, batch_size=batch_size,
        sink=SinkOptions(codec=codec, crf=crf, preset=preset, pix_fmt=pix_fmt), on_decode_error=on_decode_error,
        deinterlace=deinterlace, max_pixels=max_pixels, width=width, height=height, exact=exact,
    )
    progress = BatchProgress(quiet)
    try:
        with prints_to_stderr() if as_json else contextlib.nullcontext():  # the JSON is standard output's alone
            report = run_batch(in_dir, out_dir, settings, jobs=jobs, engine=engine, address=address,
                               chunk_seconds=chunk_seconds, pattern=pattern, on_file=progress.on_file,
                               on_frame=progress.on_frame, on_plan=progress.on_plan, on_start=progress.on_start,
                               overwrite=overwrite)
    finally:
        progress.close()
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    if not quiet:
        left = f"{report.count('exists')} left alone (output exists), " if report.count("exists") else ""
        click.echo(
            f"{report.count('done')} done, {report.count('skipped')} skipped, {left}{report.count('failed')} failed; "
            f"{report.frames} frame{'' if report.frames == 1 else 's'} in {report.seconds:.1f} s -> "
            f"{shown(os.fspath(out_dir))}",
            err=True,
        )
    if report.count("failed") or report.count("exists"):  # not everything was upscaled
        sys.exit(1)
