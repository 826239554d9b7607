"""``srpipe live``."""

from __future__ import annotations

from pathlib import Path

import click

from srpipe.cli.options import (
    backend_option,
    device_option,
    live_exact_option,
    max_pixels_option,
    not_empty,
    on_decode_error_option,
    overwrite_option,
    recording_codec_options,
    scale_option,
    timeout_option,
    weights_option,
    whole_scale,
)


def recording_name(ctx, param, value):
    """``--record``, refused as usage where live can record to no file of that name (the library
    refuses it too, for its callers: :func:`check_recording_name`)."""
    from srpipe.default_plugins.live.recording_name import check_recording_name
    from srpipe.errors import SrpipeError

    if value is not None:
        not_empty(ctx, param, value)
        try:
            check_recording_name(value)
        except SrpipeError as exc:
            raise click.UsageError(str(exc), ctx) from None
    return value


@click.command()
@click.option("--camera", metavar="DEVICE", help="Camera index (0), device (/dev/video0) or name; see --list-cameras.")
@click.option("--source", "source_location", metavar="URL_OR_FILE",
              help="A video file (played at its frame rate), a stream URL, or a plugin's location (camera:0).")
@click.option("-m", "--model", default="bicubic", show_default=True,
              help="Upscaler to start with; m cycles through the others.")
@scale_option
@weights_option
@device_option
@backend_option
@live_exact_option
@click.option("--keep-up/--drop-frames", default=True, show_default=True,
              help="When a network is slower than the source: show every frame, the tiles it has no time for "
                   "bicubic (or as the frame before, where the picture stayed) until a later frame gives them "
                   "the network; or drop frames and show the network's output on every tile.")
@click.option("--record", type=click.Path(dir_okay=False), callback=recording_name,  # a str: a Path drops a final "/"
              help="Also write what is shown to this video file (--codec, --crf, --preset encode it).")
@recording_codec_options
@overwrite_option
@click.option("--no-window", is_flag=True, help="Run without a window and print the statistics at the end.")
@click.option("--screenshot-dir", type=click.Path(exists=True, file_okay=False, writable=True, path_type=Path),
              default=".", show_default=True, help="Where the s key saves PNG screenshots.")
@on_decode_error_option
@timeout_option
@max_pixels_option
@click.option("--list-cameras", is_flag=True, help="List the cameras and exit.")
def live(camera, source_location, model, scale, weights, device, backend, exact, keep_up, record, codec, crf, preset,
         overwrite, no_window, screenshot_dir, on_decode_error, timeout, max_pixels, list_cameras):
    """Show a camera or a stream upscaled in real time, beside the bicubic upscale.

    A network runs only where the picture changed (--exact: on every pixel), and
    keeps up with the source: tiles it has no time for show bicubic until a later
    frame (--drop-frames: drop frames instead). When the model is still slower
    than the source, stale frames are dropped so that the latency stays low. A
    file or stream (--source) is deinterlaced where it marks its frames as
    interlaced, as upscale's --deinterlace auto does; a camera's frames are
    shown as they come. The
    window shows the frame rate, the latency, the drops, the share of the frame
    a network took from the frame before and the share left for later. Keys: q
    or Esc quits, m switches to the next upscaler, s saves a screenshot, space
    pauses.

    \b
    Examples:
      srpipe live --camera 0 -m espcn
      srpipe live --source clip.mp4 -m espcn -s 2 --record demo.mp4 --crf 23
      srpipe live --source rtsp://host/stream --no-window
    """
    if list_cameras:
        from srpipe.default_plugins.live.camera import list_cameras as find_cameras

        lines = find_cameras()
        click.echo("\n".join(lines) if lines else "no cameras found")
        return
    if (camera is None) == (source_location is None):
        raise click.UsageError("give either --camera or --source")
    from srpipe.default_plugins.live.session import run_live
    from srpipe.media import SourceOptions

    echo = lambda message: click.echo(message, err=True)  # noqa: E731
    run_live(
        f"camera:{camera}" if camera is not None else source_location,
        model=model, scale=whole_scale(scale, "live"), device=device, weights=weights, backend=backend, exact=exact,
        keep_up=keep_up, window=not no_window, record=record, overwrite=overwrite, screenshot_dir=screenshot_dir,
        record_options={"codec": codec, "crf": crf, "preset": preset},
        source_options=SourceOptions(on_decode_error=on_decode_error, timeout=timeout, max_pixels=max_pixels),
        echo=echo, on_end=lambda stats: echo(stats.summary()),
    )
