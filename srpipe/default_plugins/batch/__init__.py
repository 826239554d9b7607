"""``srpipe batch``: every video and image of a folder tree, in parallel processes, on Ray
across machines, or one long video cut into chunks at keyframes."""

from srpipe import hookimpl


@hookimpl
def register_commands(cli):
    from srpipe.default_plugins.batch.commands import batch

    cli.add_command(batch)
