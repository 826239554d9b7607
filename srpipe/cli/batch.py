"""``srpipe batch``."""

from __future__ import annotations

import json
import os
import sys

import click

from srpipe.cli.options import encoder_options, model_options
from srpipe.media import SinkOptions


@click.command()
@click.argument("in_dir")
@click.argument("out_dir")
@model_options
@encoder_options
@click.option("-j", "--jobs", type=int, default=1, show_default=True,
              help="Files processed at once, each in its own process with an equal share of the cores.")
@click.option("--pattern", help="Only files whose relative path or name matches this glob, e.g. '*.mkv'.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars and no per-file lines.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on standard output.")
def batch(in_dir, out_dir, model, scale, weights, device, batch_size, codec, crf, preset, pix_fmt,
          on_decode_error, jobs, pattern, quiet, as_json):
    """Upscale every video and image under IN_DIR into the same tree under OUT_DIR.

    Names and relative paths are kept (images become .png; videos keep
    .mp4/.mkv/.mov/.webm/.ts, others become .mp4). Run it again to resume:
    finished files, recorded in OUT_DIR/.srpipe-batch.json with their input's
    size and time and the settings, are skipped; anything else is redone. A
    file that fails is reported and the rest go on; the exit code is 1 if any
    failed.

    \b
    Examples:
      srpipe batch footage/ upscaled/ -m espcn
      srpipe batch footage/ upscaled/ --pattern '*.mkv' --jobs 2 --json
    """
    from tqdm import tqdm

    from srpipe.batch import BatchSettings, run_batch

    settings = BatchSettings(
        model=model, scale=scale, weights=weights, device=device, batch_size=batch_size,
        sink=SinkOptions(codec=codec, crf=crf, preset=preset, pix_fmt=pix_fmt), on_decode_error=on_decode_error,
    )
    bar = tqdm(unit="frame", desc="batch", file=sys.stderr, disable=True if quiet else None, dynamic_ncols=True)

    def on_file(result):
        if quiet:
            return
        line = {"done": f"done     {result.input} -> {result.output} ({result.frames} frame{'s' * (result.frames != 1)}, {result.seconds:.1f} s)",
                "skipped": f"skipped  {result.input} (already done)",
                "failed": f"FAILED   {result.input}: {result.error}"}[result.status]
        bar.write(line, file=sys.stderr)

    try:
        report = run_batch(in_dir, out_dir, settings, jobs=jobs, pattern=pattern, on_file=on_file, on_frame=bar.update)
    finally:
        bar.close()
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    if not quiet:
        click.echo(
            f"{report.count('done')} done, {report.count('skipped')} skipped, {report.count('failed')} failed; "
            f"{report.frames} frames in {report.seconds:.1f} s -> {os.fspath(out_dir)}",
            err=True,
        )
    if report.count("failed"):
        sys.exit(1)
