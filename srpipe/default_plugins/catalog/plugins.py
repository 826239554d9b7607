"""``srpipe plugins``."""

import json

import click

from srpipe.cli.options import json_option


@click.command()
@json_option
def plugins(as_json):
    """List loaded plugins: name, version and the hooks they implement."""
    from srpipe.plugins import describe_plugins, get_plugin_manager

    rows = describe_plugins(get_plugin_manager())
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        origin = "built-in" if r["builtin"] else "installed"
        click.echo(f"{r['name']} {r['version']} ({origin}): {', '.join(r['hooks'])}")
