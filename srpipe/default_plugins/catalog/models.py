"""``srpipe models``."""

import json

import click

from srpipe.cli.options import json_option


@click.group()
def models():
    """The upscalers and inference backends that are installed."""


@models.command("list")
@json_option
def list_models(as_json):
    """List models: name, kind, scales, plugin and description."""
    from srpipe.plugins import collect_models, get_plugin_manager

    rows = [
        {"name": m.name, "kind": m.kind, "scales": list(m.scales), "default_scale": m.default_scale,
         "plugin": m.plugin, "description": m.description}
        for m in collect_models(get_plugin_manager())
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    width = max((len(r["name"]) for r in rows), default=4)
    for r in rows:
        scales = "x" + ",".join(str(s) for s in r["scales"]) if r["scales"] else "-"
        click.echo(f"{r['name']:<{width}}  {r['kind']:<10} {scales:<8} {r['plugin']:<26} {r['description']}")


@models.command("backends")
@json_option
def list_backends(as_json):
    """List inference backends (--backend); auto takes the first available one for the device."""
    from srpipe.plugins import collect_backends, get_plugin_manager

    backends = collect_backends(get_plugin_manager())
    rows = [
        {"name": b.name, "devices": list(b.devices), "priority": b.priority, "available": backends.available(b),
         "plugin": b.plugin, "description": b.description}
        for b in backends
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        state = "available" if r["available"] else "not available"
        click.echo(f"{r['name']:<14} {','.join(r['devices']):<9} {state:<14} {r['plugin']:<35} {r['description']}")
