"""The layout rule: every built-in feature is a plugin that stands alone, and the imports form no loop.

- each default plugin imports on its own (a fresh interpreter, nothing else imported first);
- disabling it removes its feature (commands, models, backends, networks) and nothing else;
- the core (``srpipe`` outside ``srpipe.default_plugins``) never imports a default plugin;
- no import cycles among srpipe's modules, counting imports inside functions too.
"""

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import click
import pytest

from srpipe import hookspecs
from srpipe.nn.registry import collect_networks
from srpipe.plugins import DEFAULT_PLUGINS, PluginManager, collect_backends, collect_models, make_plugin_manager

from conftest import REPO

PACKAGE = REPO / "srpipe"


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported_modules(name: str) -> set[str]:
    """The srpipe modules that module ``name`` imports anywhere in its body. ``from package
    import name`` counts the submodule when ``name`` is one, else the package."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    return {m for m in found if m in MODULES and m != name}


def test_each_default_plugin_imports_on_its_own():
    for name in DEFAULT_PLUGINS:
        result = subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True, text=True)
        assert result.returncode == 0, f"{name}: {result.stderr}"


def test_the_core_never_imports_a_default_plugin():
    for name in MODULES:
        if name.startswith("srpipe.default_plugins"):
            continue
        wrong = {m for m in imported_modules(name) if m.startswith("srpipe.default_plugins")}
        assert not wrong, f"{name} imports {wrong}"


def test_no_import_cycles():
    graph = {name: imported_modules(name) for name in MODULES}
    # Tarjan's strongly connected components: any with more than one module is a loop
    index, low, stack, on_stack, loops = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                loops.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph)))
    for node in graph:
        if node not in index:
            visit(node)
    assert not loops, f"import loops: {loops}"


def features(pm) -> set[tuple[str, str]]:
    """Everything the plugins of ``pm`` add: commands (with subcommands), models, backends, networks."""
    @click.group()
    def cli():
        pass

    @cli.group()
    def train():
        pass

    pm.hook.register_commands(cli=cli)
    commands = ({("command", name) for name in cli.commands if name != "train"}
                | {("command", f"train {name}") for name in train.commands})
    return (commands
            | {("model", m.name) for m in collect_models(pm)}
            | {("backend", b.name) for b in collect_backends(pm)}
            | {("network", n.name) for n in collect_networks(pm)})


def alone(plugin: str) -> PluginManager:
    """A manager holding only ``plugin``."""
    pm = PluginManager()
    pm.add_hookspecs(hookspecs)
    pm.register(importlib.import_module(plugin), name=plugin)
    return pm


@pytest.mark.parametrize("plugin", DEFAULT_PLUGINS)
def test_disabling_a_default_plugin_removes_its_feature_and_nothing_else(plugin, monkeypatch):
    everything = features(make_plugin_manager())
    own = features(alone(plugin))
    monkeypatch.setenv("SRPIPE_DISABLE_PLUGINS", plugin)
    assert everything - features(make_plugin_manager()) == own


@pytest.mark.parametrize("plugin, location", [("srpipe.default_plugins.video_files", "clip.mp4"),
                                              ("srpipe.default_plugins.still_images", "photo.png")])
def test_disabling_an_io_plugin_removes_its_format(plugin, location, tmp_path, monkeypatch):
    from srpipe.media import SourceOptions
    from srpipe.testing import make_test_image, make_test_video

    path = tmp_path / location
    if location.endswith(".mp4"):
        make_test_video(path, frames=2, width=32, height=32)
    else:
        make_test_image(path, width=16, height=16)
    assert make_plugin_manager().hook.open_source(location=str(path), options=SourceOptions()) is not None
    monkeypatch.setenv("SRPIPE_DISABLE_PLUGINS", plugin)
    pm = make_plugin_manager()
    source = pm.hook.open_source(location=str(path), options=SourceOptions())
    assert source is None or source.kind != ("video" if location.endswith(".mp4") else "image")
