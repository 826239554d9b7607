"""What is installed: ``srpipe models`` (upscalers, backends) and ``srpipe plugins``."""

from srpipe import hookimpl


@hookimpl
def register_commands(cli):
    from srpipe.default_plugins.catalog.models import models
    from srpipe.default_plugins.catalog.plugins import plugins

    cli.add_command(models)
    cli.add_command(plugins)
