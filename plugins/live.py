"""Built-in live preview: camera sources (``camera:0``) and the ``live`` command."""

from srpipe import hookimpl


@hookimpl
def open_source(location, options):
    if not location.startswith("camera:"):
        return None
    from srpipe.live.camera import open_camera

    return open_camera(location)


@hookimpl
def register_commands(cli):
    from srpipe.cli.live import live

    cli.add_command(live)
