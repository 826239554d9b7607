"""Built-in filter inspector: ``srpipe inspect MODEL`` and ``srpipe inspect kernels IMAGE``."""

from srpipe import hookimpl


@hookimpl
def register_commands(cli):
    from srpipe.default_plugins.inspect.commands import inspect

    cli.add_command(inspect)
