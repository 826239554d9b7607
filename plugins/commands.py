"""Built-in commands: upscale, batch, bench, models, plugins."""

from srpipe import hookimpl


@hookimpl
def register_commands(cli):
    from srpipe.cli.batch import batch
    from srpipe.cli.bench import bench
    from srpipe.cli.models import models
    from srpipe.cli.plugins import plugins
    from srpipe.cli.upscale import upscale

    for command in (upscale, batch, bench, models, plugins):
        cli.add_command(command)
