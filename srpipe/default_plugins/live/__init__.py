"""``srpipe live``: a camera or stream upscaled in real time, in a window or headless, and the
camera sources (``camera:0``).

A reader thread puts each decoded frame into a one-slot handoff (a newer frame
replaces an older one, which is counted as dropped); a worker thread upscales the
newest frame into another; the loop draws it beside the bicubic upscale and
shows, records and measures it, while the worker upscales the next.
"""

from pathlib import Path

from srpipe import hookimpl
from srpipe.errors import SrpipeError


@hookimpl
def open_source(location, options):
    if not location.startswith("camera:"):
        return None
    from srpipe.default_plugins.live.camera import open_camera

    return open_camera(location)


@hookimpl
def register_commands(cli):
    from srpipe.default_plugins.live.commands import live

    cli.add_command(live)


def check_recording_name(record: str) -> None:
    """Refuse, before anything loads, a recording live cannot make: a picture or an animation
    (the recorder writes video, in 4:2:0), or standard output (the window is where live shows).
    Here, not in the recorder, so that the command checks it without loading PyAV."""
    from srpipe.media import IMAGE_SUFFIXES

    if record == "-":
        raise SrpipeError("--record writes a file: give a name such as rec.mp4 or rec.mkv (standard output is not "
                          "recorded to; srpipe upscale - -o - streams)")
    suffix = Path(record).suffix.lower()
    if suffix in IMAGE_SUFFIXES or suffix in (".gif", ".apng"):
        raise SrpipeError(f"--record {record}: live records video; give a .mp4, .mkv, .mov, .webm or .ts name "
                          "(srpipe upscale writes pictures and animations)")
