"""``srpipe bench``."""

import contextlib
import json

import click

from srpipe.cli.options import (
    backend_option,
    device_option,
    json_option,
    max_pixels_option,
    on_decode_error_option,
    quiet_option,
    scale_option,
    weights_option,
    whole_scale,
)


class EvenSize(click.ParamType):
    """WIDTHxHEIGHT, both even (4:2:0) and at least 32."""

    name = "WxH"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        width, _, height = str(value).lower().partition("x")
        if not (width.isdigit() and height.isdigit()) or int(width) % 2 or int(height) % 2 \
                or min(int(width), int(height)) < 32:
            self.fail(f"{value!r} is not WIDTHxHEIGHT with even numbers of at least 32, e.g. 640x360", param, ctx)
        return int(width), int(height)


@click.command()
@click.argument("input", required=False)
@click.option("-m", "--model", "models", multiple=True, default=["bicubic", "lanczos"], show_default=True,
              help="Upscalers to measure (repeat the option).")
@scale_option
@weights_option
@device_option
@click.option("--batch-size", "batch_sizes", type=click.IntRange(min=1), multiple=True, default=[1, 8],
              show_default=True,
              help="Batch sizes for the upscale-only stage (repeat the option).")
@backend_option(multiple=True)
@click.option("--repeats", type=click.IntRange(min=1), default=3, show_default=True, help="Runs per measurement.")
@click.option("--memory-frames", type=click.IntRange(min=0), default=0,
              help="Also compare peak memory on generated clips of N and 10 N frames (first model).")
@click.option("--startup/--no-startup", default=True, show_default=True,
              help="Also time whole commands on a 3-frame clip against a bare Python importing PyAV and NumPy.")
@click.option("--speed-features", is_flag=True,
              help="Also time tile reuse, flat tiles and int8 on and off for the models that reuse tiles (espcn): "
                   "whole `srpipe upscale` runs on a generated fixed-camera clip and a zoom beside ffmpeg, the "
                   "upscale stage with each reuse setting, and `srpipe live` on the fixed camera.")
@click.option("--speed-size", type=EvenSize(), default="640x360", show_default=True,
              help="Size of the --speed-features clips; the live one is 4:3 at this width (640x480).")
@click.option("--speed-frames", type=click.IntRange(min=2), default=120, show_default=True,
              help="Frames in each --speed-features clip (30 fps).")
@max_pixels_option
@on_decode_error_option
@quiet_option
@json_option
def bench(input, models, scale, weights, device, batch_sizes, backends, repeats, memory_frames, startup,
          speed_features, speed_size, speed_frames, max_pixels, on_decode_error, quiet, as_json):
    """Measure frames per second of each stage alone and of whole commands.

    INPUT defaults to a generated 640x360 clip of 125 frames (5 s). Stages:
    decode, upscale (per model, backend and batch size, with GFLOP/s for neural
    models and their share of the float32 matrix-multiply rate, measured first),
    encode (libx264 veryfast, crf 18), on the clip's first frames that fit in
    1 GiB decoded and upscaled (all of a short clip; the output says how many
    otherwise). Then whole processes on every frame, as a user times
    them, start-up included: `srpipe upscale` on INPUT (with its peak memory)
    taking turns with, when a system ffmpeg exists, ffmpeg's own scale filter
    (bicubic, and lanczos when it is measured) + x264 on the same clip, frame
    for frame (-fps_mode passthrough), with each classical upscaler's ratio to
    it; both write an MP4, or an MKV where INPUT's sound or subtitles do not
    fit one (PCM, FLAC, SRT...); and (--startup) every model, --help,
    `models list` and error paths on a 3-frame clip against the floor, a bare
    `python -c 'import av, numpy'`, and ffmpeg's same job on that clip.
    --speed-features: for each model that reuses tiles, on a generated
    fixed-camera clip (a detailed room, sensor noise, a person walking;
    x264 crf 23, 30 fps) and on a zoom of it (every pixel moves): `srpipe
    upscale` as is, with --exact, and with int8 on and off where a backend
    has it, against ffmpeg's bicubic + x264 veryfast; the upscale stage with
    the network on every tile, reuse, flat tiles and both; and `srpipe live
    --no-window` on the fixed camera at 4:3, with and without --exact (frames
    shown, latency). Figures are medians over --repeats runs, taken in turns.
    --scale defaults to the first model's own and must be one every model has;
    --weights goes to the models that take a checkpoint.

    \b
    Example:
      srpipe bench samples/bigbuckbunny.mp4 -m bicubic -m espcn --json
      srpipe bench -m espcn --backend torch --backend openvino-bf16
      srpipe bench -m espcn --speed-features --no-startup --batch-size 8
    """
    from srpipe.default_plugins.bench.bench import run_bench

    def log(row):
        if as_json or quiet:
            return
        if row["stage"] == "note":
            click.echo(row["text"], err=True)
            return
        if row["stage"] == "speed":
            click.echo(speed_line(row), err=True)
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

    from srpipe.plugin_guard import prints_to_stderr

    with prints_to_stderr() if as_json else contextlib.nullcontext():  # the JSON is standard output's alone
        report = run_bench(input, tuple(models), whole_scale(scale, "bench"), device, tuple(batch_sizes), repeats,
                           memory_frames, log, tuple(backends), startup, weights, speed_features, speed_size,
                           speed_frames, max_pixels, on_decode_error)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    elif not quiet:
        for name, ratio in report["ratios"].items():
            click.echo(f"{name}: {ratio:.2f}", err=True)


def speed_line(row: dict) -> str:
    """A --speed-features row as one line: frame rate (or frames shown and latency for live), its
    ratios, what tile reuse did, the backend."""
    run = row["run"] if row["kind"] != "stage" else f"{row['run']} (-m {row['model']})"  # the others name it
    what = f"{row['clip']:<20} {run:<48}"
    if row["kind"] == "live":
        line = (f"{what} shown {row['shown_median']:4.0%} ({row['shown_min']:.0%}-{row['shown_max']:.0%})  "
                f"latency p50 {row['p50_ms_median']:.0f} ms, p99 {row['p99_ms_median']:.0f} ms")
        reused, late = row.get("reused"), row.get("late")
        return line + (f"  reused {reused:.0%}" if reused is not None else "") + (f", late {late:.0%}" if late else "")
    line = f"{what} {row['fps_median']:7.2f} fps ({row['fps_min']:.2f}-{row['fps_max']:.2f})"
    if "vs_ffmpeg" in row:
        line += f"  {row['vs_ffmpeg']:.3f} x ffmpeg"
    if "vs_exact" in row:
        line += f"  {row['vs_exact']:.2f} x exact"
    if row.get("reuse"):
        line += f"  reused {row['reuse']['reused']:.0%}, flat {row['reuse']['flat']:.0%}"
    return line + (f"  [{row['backend']}]" if row.get("backend") else "")
