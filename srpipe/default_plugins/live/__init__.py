"""``srpipe live``: a camera or stream upscaled in real time, in a window or headless, and the
camera sources (``camera:0``).

A reader thread puts each decoded frame into a one-slot handoff (a newer frame
replaces an older one, which is counted as dropped); a worker thread upscales the
newest frame into another; the loop draws it beside the bicubic upscale and
shows, records and measures it, while the worker upscales the next.
"""

from srpipe import hookimpl


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
