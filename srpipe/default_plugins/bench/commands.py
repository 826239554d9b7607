"""``srpipe bench``."""

import json

import click

from srpipe.cli.options import (
    backend_option,
    device_option,
    json_option,
    quiet_option,
    scale_option,
    weights_option,
    whole_scale,
)


@click.command()
@click.argument("input", required=False)
@click.option("-m", "--model", "models", multiple=True, default=["bicubic", "lanczos"], show_default=True,
              help="Upscalers to measure (repeat the option).")
@scale_option
@weights_option
@device_option
@click.option("--batch-size", "batch_sizes", type=int, multiple=True, default=[1, 8], show_default=True,
              help="Batch sizes for the upscale-only stage (repeat the option).")
@backend_option(multiple=True)
@click.option("--repeats", type=int, default=3, show_default=True, help="Runs per measurement.")
@click.option("--memory-frames", type=int, default=0,
              help="Also compare peak memory on generated clips of N and 10 N frames (first model).")
@click.option("--startup/--no-startup", default=True, show_default=True,
              help="Also time whole commands on a 3-frame clip against a bare Python importing PyAV and NumPy.")
@quiet_option
@json_option
def bench(input, models, scale, weights, device, batch_sizes, backends, repeats, memory_frames, startup, quiet,
          as_json):
    """Measure frames per second of each stage alone and of whole commands.

    INPUT defaults to a generated 640x360 clip of 125 frames (5 s). Stages:
    decode, upscale (per model, backend and batch size, with GFLOP/s for neural
    models and their share of the float32 matrix-multiply rate, measured first),
    encode (libx264 veryfast, crf 18). Then whole processes, as a user times
    them, start-up included: `srpipe upscale` on INPUT (with its peak memory)
    taking turns with, when a system ffmpeg exists, ffmpeg's own scale filter
    (bicubic, and lanczos when it is measured) + x264 on the same clip, with
    each classical upscaler's ratio to it; and (--startup) every model, --help,
    `models list` and error paths on a 3-frame clip against the floor, a bare
    `python -c 'import av, numpy'`, and ffmpeg's same job on that clip. Figures are medians over --repeats runs.
    --scale defaults to the first model's own and must be one every model has;
    --weights goes to the models that take a checkpoint.

    \b
    Example:
      srpipe bench samples/bigbuckbunny.mp4 -m bicubic -m espcn --json
      srpipe bench -m espcn --backend torch --backend openvino-bf16
    """
    from srpipe.default_plugins.bench.bench import run_bench

    def log(row):
        if as_json or quiet:
            return
        if row["stage"] == "startup":
            click.echo(f"{row['command']:<44} {row['seconds_median']:6.3f} s ({row['seconds_min']:.3f}-"
                       f"{row['seconds_max']:.3f})  {row['vs_floor']:5.2f} x floor  peak {row['peak_rss_mib']} MiB",
                       err=True)
            return
        extra = ", ".join(f"{k}={v}" for k, v in row.items()
                          if k not in ("stage", "model", "backend", "fps_median", "fps_min", "fps_max"))
        backend = f" ({row['backend']})" if row.get("backend") else ""
        name = f"{row['stage']} {row['model'] or ''}".strip() + backend
        if row["stage"] == "matmul":
            click.echo(f"{name:<28} {row['gflops']:8.1f} GFLOP/s (float32, the device's practical peak)", err=True)
            return
        if row["stage"] == "memory":
            click.echo(f"{name:<28} peak {row['peak_rss_mib']} MiB for {row['frames']} frames", err=True)
            return
        click.echo(f"{name:<28} {row['fps_median']:8.2f} fps  ({row['fps_min']:.2f}-{row['fps_max']:.2f})  {extra}",
                   err=True)

    report = run_bench(input, tuple(models), whole_scale(scale, "bench"), device, tuple(batch_sizes), repeats,
                       memory_frames, log, tuple(backends), startup, weights)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    elif not quiet:
        for name, ratio in report["ratios"].items():
            click.echo(f"{name}: {ratio:.2f}", err=True)
