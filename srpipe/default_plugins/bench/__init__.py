"""``srpipe bench``: whole commands against ffmpeg and a bare interpreter, and the pipeline's stages."""

from srpipe import hookimpl


@hookimpl
def register_commands(cli):
    from srpipe.default_plugins.bench.commands import bench

    cli.add_command(bench)
