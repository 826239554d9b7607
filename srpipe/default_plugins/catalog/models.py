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
    """List models: name, kind, scales (* marks the default), plugin and description."""
    from srpipe.plugins import collect_models, get_plugin_manager

    rows = [
        {"name": m.name, "kind": m.kind, "scales": list(m.scales), "default_scale": m.default_scale,
         "plugin": m.plugin, "description": m.description}
        for m in collect_models(get_plugin_manager())
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    _table(("name", "kind", "scales (*default)", "plugin", "description"),
           [(r["name"], r["kind"], _scales(r["scales"], r["default_scale"]), r["plugin"], r["description"])
            for r in rows])


def _scales(scales: list[int], default: int | None) -> str:
    """``x2,3*,4``: the scales, the default marked where there is a choice; ``-`` for none."""
    if not scales:
        return "-"
    return "x" + ",".join(f"{s}*" if s == default and len(scales) > 1 else str(s) for s in scales)


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    """``rows`` under ``header``, each column as wide as its widest cell; the last (a
    description) runs on as it is."""
    widths = [max(len(row[column]) for row in (header, *rows)) for column in range(len(header) - 1)]
    for row in (header, *rows):
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1])


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
    _table(("name", "devices", "priority", "available", "plugin", "description"),
           [(r["name"], ",".join(r["devices"]), str(r["priority"]), "yes" if r["available"] else "no", r["plugin"],
             r["description"]) for r in rows])
