"""One ``srpipe live`` run: open the model, the source, the window and the recording, run the loop."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Callable

from srpipe.default_plugins.live.feed import FrameFeed
from srpipe.default_plugins.live.loop import LiveLoop, signals_held
from srpipe.default_plugins.live.recorder import Recorder
from srpipe.default_plugins.live.recording_name import check_recording_name
from srpipe.default_plugins.live.stats import LiveStats
from srpipe.default_plugins.live.upscalers import UpscalerCycle
from srpipe.default_plugins.live.window import Headless, Window
from srpipe.device import resolve_device
from srpipe.media import SourceOptions, open_source
from srpipe.memory import check_frame_size
from srpipe.outputs import check_output
from srpipe.pipeline import tell_skipped_frames
from srpipe.plugins import collect_backends, collect_models, get_plugin_manager
from srpipe.upscaling import check_input


def run_live(
    location: str,
    *,
    model: str = "bicubic",
    scale: int | None = None,
    device: str = "auto",
    weights: str | None = None,
    backend: str = "auto",
    exact: bool = False,
    keep_up: bool = True,
    window: bool = True,
    record: str | Path | None = None,
    overwrite: bool = False,
    screenshot_dir: Path = Path("."),
    record_options: dict | None = None,
    source_options: SourceOptions = SourceOptions(),
    echo: Callable[[str], None] = print,
    on_end: Callable[[LiveStats], None] = lambda stats: None,
    pm=None,
) -> LiveStats:
    """Show ``location`` upscaled until it ends or the user quits.

    ``on_end(stats)`` is called when the loop ends, by itself, by Ctrl-C or SIGTERM, or by the
    source's failing (the recording is kept then too: what was shown); a recording whose writing
    failed is removed.
    ``record_options``: ``codec``, ``crf``, ``preset`` of the recording (:class:`Recorder`);
    ``source_options``: how the source is read (--on-decode-error, --timeout).
    ``keep_up``: a network with tile reuse is held to the source's frame rate, leaving tiles it has
    no time for to later frames (:class:`srpipe.default_plugins.live.loop.KeepUp`); else frames drop.
    The recording is refused if it would replace an existing file without ``overwrite``, or
    the source itself, in whatever form ``location`` names it (a path, a ``file:`` or ``concat:`` URL,
    ``-``, a camera's device), or a file the source may read that cannot be told from ``location``.
    """
    check_input(location)
    if record is not None:  # before the models load and the source opens: an error comes at once
        check_recording_name(str(record))
        check_output(record, location, overwrite, option="--record")
    pm = pm or get_plugin_manager()
    models = UpscalerCycle(collect_models(pm), model, scale, resolve_device(device), weights,
                           backends=collect_backends(pm), backend=backend, exact=exact)
    source = open_source(pm, location, source_options)
    with source:
        # Before anything is decoded: a header may claim a frame far larger than the file holds
        check_frame_size(location, source.width, source.height, source_options.max_pixels)
        if source.width and source.height:  # a stream may tell its size only with its first frame
            models.warm_up(source.width, source.height)
        sound = [stream for stream in getattr(source, "passthrough", ()) if stream.type == "audio"]
        if record is not None and sound:  # what is shown is recorded, and live plays no sound
            warnings.warn(f"{record} records the picture only: the sound of {location} is not recorded (srpipe "
                          "upscale keeps it)")
        view = Window() if window else Headless()
        try:
            recorder = Recorder(record, overwrite, **(record_options or {}), rate=source.frame_rate) \
                if record is not None else None
            loop = LiveLoop(
                # A recording plays at its frame rate, as a camera would send it; a live stream comes at its own pace
                FrameFeed(source, paced=getattr(source, "is_recording", source.is_file),
                          max_pixels=source_options.max_pixels), models, view,
                recorder=recorder, screenshot_dir=screenshot_dir, echo=echo, keep_up=keep_up,
            )
            try:
                loop.run()
            except BaseException:
                # Ctrl-C, SIGTERM, a source that stalls or breaks off: what was shown is kept and
                # summed up. A recording whose writing failed is not.
                if recorder is not None and recorder.failed:
                    recorder.abort()
                else:
                    try:
                        _end(loop, recorder, on_end)
                    except Exception:  # the error that ended the loop is the one to tell
                        if recorder is not None:
                            recorder.abort()
                raise
        finally:
            view.close()
        tell_skipped_frames(source)
        _end(loop, recorder, on_end)
    return loop.stats


def _end(loop: LiveLoop, recorder: Recorder | None, on_end: Callable[[LiveStats], None]) -> None:
    """Finish the recording and sum up. Ctrl-C or SIGTERM meanwhile (the encoder's last frames
    take seconds: VP9's) acts after both, so that what was shown is kept as the run promises; a
    second acts at once, and then nothing half-written is left (:meth:`Recorder.finish`)."""
    with signals_held():
        if recorder is not None:
            recorder.finish()
        on_end(loop.stats)
