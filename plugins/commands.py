"""Built-in commands: upscale, models, plugins."""

from srpipe import hookimpl


@hookimpl
def register_commands(cli):
    from srpipe.cli.models import models
    from srpipe.cli.plugins import plugins
    from srpipe.cli.upscale import upscale

    for command in (upscale, models, plugins):
        cli.add_command(command)
