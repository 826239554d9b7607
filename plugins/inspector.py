"""Built-in filter inspector: ``srpipe inspect MODEL`` and ``srpipe inspect kernels IMAGE``."""

from srpipe import hookimpl


@hookimpl
def register_commands(cli):
    from srpipe.cli.inspect import inspect

    cli.add_command(inspect)
