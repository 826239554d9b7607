"""``srpipe live``: a camera or stream upscaled in real time, in a window or headless, and the
camera sources (``camera:0``).

A reader thread puts each decoded frame into a one-slot handoff (a newer frame
replaces an older one, which is counted as dropped); the loop upscales the
newest frame, draws it beside the bicubic upscale and shows, records and
measures it.
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
