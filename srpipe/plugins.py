"""The plugin manager: built-in plugins, then third-party ones from entry points.

Environment switches:
  SRPIPE_LOAD_PLUGINS=a,b     load only these third-party plugins (empty: none)
  SRPIPE_DISABLE_PLUGINS=a,b  load none of these (built-in or third-party)
  SRPIPE_TRACE_HOOKS=1        print every hook call and its result to stderr
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import pathlib
import stat
import sys
import traceback
import types
import warnings

import pluggy

from srpipe import __version__, cache, hookspecs
from srpipe.backends import BackendRegistry
from srpipe.errors import PluginWarning
from srpipe.models import ModelRegistry
from srpipe.plugin_guard import PluginExit, Stop, plugin_code

ENTRY_POINT_GROUP = "srpipe"

DEFAULT_PLUGINS = tuple(
    f"srpipe.default_plugins.{name}"
    for name in (
        "video_files", "still_images",
        "classic", "espcn", "espcn.onnxruntime_backend", "espcn.openvino_backend",
        "upscale", "batch", "bench", "catalog", "classifier", "inspect", "live",
    )
)


def _names_from_env(variable: str) -> set[str] | None:
    value = os.environ.get(variable)
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


def _warn(message: str) -> None:
    warnings.warn(message, PluginWarning, stacklevel=3)


class PluginManager(pluggy.PluginManager):
    """pluggy's manager, remembering which distribution version each plugin came from."""

    def __init__(self):
        super().__init__(hookspecs.PROJECT)
        self.versions: dict[str, str] = {}

    def label(self, name: str) -> str:
        """A plugin as errors name it: ``plugin 'NAME' (VERSION)``."""
        return f"plugin {name!r} ({self.versions.get(name, 'unknown version')})"


def make_plugin_manager() -> PluginManager:
    """A fresh manager with the built-ins and the installed entry points loaded."""
    pm = PluginManager()
    pm.add_hookspecs(hookspecs)
    disabled = _names_from_env("SRPIPE_DISABLE_PLUGINS") or set()
    only = _names_from_env("SRPIPE_LOAD_PLUGINS")

    loaded = {}  # name -> what it names: built-ins and entry points registered
    for module_name in DEFAULT_PLUGINS:
        load = functools.partial(importlib.import_module, module_name)
        if module_name not in disabled and _register(pm, module_name, module_name, load):
            pm.versions[module_name], loaded[module_name] = __version__, module_name

    entry_points = installed_entry_points()
    for name, value, version in entry_points:
        if name in disabled or (only is not None and name not in only):
            continue
        if name in loaded:  # a built-in's name, or two distributions': the first is kept
            if loaded[name] != value:
                _warn(f"plugin {name!r} ({value}) has the name of a plugin already loaded ({loaded[name]}) and is "
                      "skipped; ask its author to rename its entry point")
        elif _register(pm, name, value, functools.partial(_load_entry_point, value)):
            pm.versions[name], loaded[name] = version, value

    known = set(DEFAULT_PLUGINS) | {name for name, _, _ in entry_points}
    for variable, names in (("SRPIPE_DISABLE_PLUGINS", disabled), ("SRPIPE_LOAD_PLUGINS", only or set())):
        for name in sorted(names - known):  # a typo would otherwise be ignored without a word
            _warn(f"{variable} names {name!r}, which is no installed plugin; see 'srpipe plugins' for names")

    if os.environ.get("SRPIPE_TRACE_HOOKS"):
        pm.trace.root.setwriter(lambda text: sys.stderr.write(text))
        pm.enable_tracing()
    return pm


KEPT_SETUPS = 4  # sys.path layouts whose entry points the cache file keeps (venvs, python -m from a folder)


def installed_entry_points() -> list[tuple[str, str, str]]:
    """(name, object reference, distribution version) of each installed ``srpipe`` entry point.

    Loading ``importlib.metadata`` and reading every distribution's metadata took about as long
    as the rest of srpipe's own start-up, on every command, so the answer is kept in the cache
    folder, per ``sys.path``, with a stamp of what an install, upgrade or removal changes
    (:func:`_metadata_stamp`), as stevedore keeps its entry-point cache; the scan runs again
    when the stamp differs. The cache only saves the scan and never changes which plugins load:
    whatever the stamp says, what it gives must be, in order, the entry points that the metadata
    folders ``importlib.metadata`` reads declare now (:func:`_verified`: an entry point added,
    left out, moved or changed means a full scan and a new cache file); it keeps only the versions
    and the import of ``importlib.metadata``. A cache that cannot be read or written only costs
    the scan."""
    setup = "\0".join(sys.path)
    stamp, listing = _metadata_stamp()
    kept = _read_kept()
    entry = kept.get(setup)
    if isinstance(entry, dict) and entry.get("stamp") == stamp:
        rows = entry.get("entry_points")
        if _verified(rows, listing):
            return [tuple(row[:3]) for row in rows]
    import importlib.metadata

    rows = [[entry_point.name, entry_point.value, (entry_point.dist and entry_point.dist.version) or "unknown",
             _metadata_folder(entry_point.dist)]
            for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)]
    if _verified(rows, listing):  # else the next run could not use it either (a zipped distribution)
        others = [(key, value) for key, value in kept.items() if key != setup][-(KEPT_SETUPS - 1):]
        kept = {**dict(others), setup: {"stamp": stamp, "entry_points": rows}}
        cache.write("plugins", "entry-points.json", json.dumps(kept).encode())
    return [tuple(row[:3]) for row in rows]


def _read_kept() -> dict:
    """The cache file's setups, or none where it is missing, refused or damaged."""
    try:
        kept = json.loads(cache.read("plugins", "entry-points.json") or b"{}")
    except (ValueError, RecursionError):
        return {}
    return kept if isinstance(kept, dict) else {}


def _metadata_stamp() -> tuple[list, list[tuple[str, list[tuple[str, bool]] | None]]]:
    """What installing, upgrading or removing a distribution on ``sys.path`` changes, as
    ``importlib.metadata`` finds distributions: the name of every metadata folder (the first of a
    name shadows the rest), an unpacked egg's, and of each ``entry_points.txt`` the time it last
    changed, its size and inode, which a copy that keeps modification times does not keep (zip
    archives: their own). Not a folder's own time: the current folder is on ``sys.path`` under
    ``python -m``, and every output written there changes it.

    Also the listing it is made from: each entry of ``sys.path`` and the metadata names in it, in
    the order the folder lists them, as ``importlib.metadata`` reads them, each with whether it
    has an ``entry_points.txt`` (None for a zip archive)."""
    stamp, listing = [], []
    for entry in sys.path:
        folder = entry or "."
        try:
            info = os.stat(folder)
            if not stat.S_ISDIR(info.st_mode):
                stamp.append([entry, info.st_mtime_ns, info.st_size])
                listing.append((entry, None))
                continue
            with os.scandir(folder) as items:
                names = [item.name for item in items
                         if item.name.lower().endswith((".dist-info", ".egg-info", ".egg"))]
        except OSError:
            continue
        stamp.append([entry])
        listed = []
        for name in names:
            metadata = os.path.join(folder, name, "EGG-INFO" if name.endswith(".egg") else "", "entry_points.txt")
            try:
                found = os.stat(metadata)
                stamp.append([name, found.st_mtime_ns, found.st_ctime_ns, found.st_size, found.st_ino])
                listed.append((name, True))
            except OSError:
                stamp.append([name])  # no entry points, or an .egg-info file
                listed.append((name, False))
        listing.append((entry, listed))
    return stamp, listing


def _distribution_key(metadata_name: str) -> str:
    """A metadata folder's distribution name, normalized as ``importlib.metadata`` does to tell
    which folder of a name comes first (``Foo.Bar-1.0.dist-info`` -> ``foo_bar``); no regular
    expression: this runs on every name on ``sys.path`` at every start."""
    key = metadata_name.rpartition(".")[0].partition("-")[0].lower().replace("-", "_").replace(".", "_")
    while "__" in key:
        key = key.replace("__", "_")
    return key


def _metadata_folder(distribution) -> str | None:
    """The folder ``importlib.metadata`` read ``distribution`` from (its ``_path``: the public API
    does not say), or None for one from elsewhere (a zip archive)."""
    path = getattr(distribution, "_path", None)
    return str(path) if isinstance(path, pathlib.Path) else None


def _verified(rows, listing: list[tuple[str, list[tuple[str, bool]] | None]]) -> bool:
    """Whether ``rows``, ``[name, value, version, metadata folder]`` each, are the ``srpipe`` entry
    points that ``importlib.metadata`` finds now (:func:`_declared_now`), in its order, each with
    the version its metadata gives: none added, none left out."""
    declared = _declared_now(listing)
    if declared is None or not isinstance(rows, list) or len(rows) != len(declared):
        return False
    return all(row == [name, value, _metadata_version(folder) or "unknown", folder]
               for row, (name, value, folder) in zip(rows, declared))


def _declared_now(listing: list[tuple[str, list[tuple[str, bool]] | None]]) -> list[tuple[str, str, str]] | None:
    """(name, value, metadata folder) of each ``srpipe`` entry point declared on this ``sys.path``,
    in the order ``importlib.metadata`` gives them: of each distribution name, the first metadata
    folder (``sys.path`` in order, each folder's names as it lists them), read from its
    ``entry_points.txt``. None where that cannot be told here, so that the scan runs: a zip
    archive or an egg on ``sys.path``, or a metadata folder named with capitals in its suffix,
    which ``importlib.metadata`` finds by rules not followed here."""
    seen, declared = set(), []
    for entry, names in listing:
        if names is None or entry.lower().endswith(".egg"):
            return None
        for name, has_entry_points in names:
            if name.lower().endswith(".egg"):  # read only where it is on sys.path itself
                continue
            if not name.endswith((".dist-info", ".egg-info")):
                return None
            key = _distribution_key(name)
            if key in seen:  # shadowed by the first of its name
                continue
            seen.add(key)
            entry_points = _declared_entry_points(os.path.join(entry, name)) if has_entry_points else []
            if entry_points:
                folder = str(pathlib.Path(entry, name))  # as importlib.metadata names it
                declared += [(entry_point, value, folder) for entry_point, value in entry_points]
    return declared


def _declared_entry_points(folder: str) -> list[tuple[str, str]]:
    """(name, value) of each ``srpipe`` entry point in ``folder``'s ``entry_points.txt``, in order,
    read as ``importlib.metadata`` reads it."""
    try:
        with open(os.path.join(folder, "entry_points.txt"), encoding="utf-8") as file:
            text = file.read()
    except (OSError, ValueError):
        return []
    if ENTRY_POINT_GROUP not in text:  # most distributions' (console scripts): read at every start
        return []
    group, declared = None, []
    for line in map(str.strip, text.splitlines()):
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            group = line.strip("[]")
        elif group == ENTRY_POINT_GROUP:
            name, equals, value = line.partition("=")
            if equals:
                declared.append((name.strip(), value.strip()))
    return declared


def _metadata_version(folder: str) -> str | None:
    """The ``Version`` header of ``folder``'s ``METADATA`` (``PKG-INFO`` for an .egg-info)."""
    for filename in ("METADATA", "PKG-INFO"):
        try:
            with open(os.path.join(folder, filename), encoding="utf-8") as file:
                for line in file:
                    if not line.strip():  # the headers end at the first blank line
                        break
                    key, colon, value = line.partition(":")
                    if colon and not line[0].isspace() and key.strip().lower() == "version":
                        return value.strip()
            return None
        except (OSError, ValueError):
            continue
    return None


def _load_entry_point(value: str):
    """The object a well-formed entry point names, ``module`` or ``module:attribute.path``
    (extras ignored), as ``importlib.metadata.EntryPoint.load`` finds it."""
    module, _, attributes = value.split("[")[0].partition(":")
    found = importlib.import_module(module.strip())
    for attribute in filter(None, attributes.strip().split(".")):
        found = getattr(found, attribute)
    return found


def _register(pm: PluginManager, name: str, target: str, load) -> bool:
    """Import a plugin (``target``: the module, or entry point, ``load`` imports) and register it;
    one that fails is named and skipped. Whether it was registered."""
    if pm.get_plugin(name) is not None or pm.is_blocked(name):
        return False
    try:
        with plugin_code(f"plugin {name!r}"):
            plugin = load()
            if (other := pm.get_name(plugin)) is not None:  # pluggy's refusal would print its whole registry
                _warn(f"plugin {name!r} ({target}) is already loaded as plugin {other!r} and is skipped; ask its "
                      "author to drop one of the two entry points")
                return False
            pm.register(plugin, name=name)
    except Stop:  # srpipe's own signal handler (a batch worker told to stop), not the plugin's doing
        raise
    except (Exception, SystemExit) as exc:  # a broken plugin must not break srpipe, nor end it
        _warn(f"plugin {name!r} could not be loaded and is skipped: {type(exc).__name__}: {exc}")
        return False
    return True


@functools.lru_cache(maxsize=1)
def get_plugin_manager() -> PluginManager:
    """The process-wide manager (tests call :func:`make_plugin_manager`)."""
    return make_plugin_manager()


def failure_text(exc: BaseException) -> str:
    """``exc`` as ``Type: message``, naming the third-party plugin whose code raised it where one
    did (the innermost of its frames in the traceback, or in those of the exceptions it came
    from), with what the user can do: an unexpected error there is the plugin's to fix. A
    plugin's SystemExit (:class:`PluginExit`) is told as itself."""
    if isinstance(exc, PluginExit):
        exc = exc.__cause__
    pm = get_plugin_manager()
    # A third-party plugin's module and each package above it -> the plugin's name; a package two
    # plugins share (the namespace package acme of acme.sr_a and acme.sr_b) -> None: it names neither
    owners: dict[str, str | None] = {}
    for name, plugin in pm.list_name_plugin():
        module = plugin.__name__ if isinstance(plugin, types.ModuleType) else getattr(plugin, "__module__", None)
        parts = str(module or "").split(".")
        if name in DEFAULT_PLUGINS or parts[0] in ("", "srpipe", "builtins", "__main__"):
            continue
        for end in range(1, len(parts) + 1):
            prefix = ".".join(parts[:end])
            owners[prefix] = name if owners.get(prefix, name) == name else None
    message = f": {exc}" if str(exc) else ""  # sys.exit() has none
    seen, cause = set(), exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        names = [_owner(owners, str(frame.f_globals.get("__name__", "")))
                 for frame, _ in traceback.walk_tb(cause.__traceback__)]
        name = next((name for name in reversed(names) if name), None)
        if name:
            return (f"{type(exc).__name__} in {pm.label(name)}{message}; "
                    f"report it to the plugin's authors, or run without it: SRPIPE_DISABLE_PLUGINS={name}")
        cause = cause.__cause__ or cause.__context__
    return f"{type(exc).__name__}{message}"


def _owner(owners: dict[str, str | None], module: str) -> str | None:
    """The plugin of ``module``: that of its most specific prefix in ``owners``."""
    while module and module not in owners:
        module = module.rpartition(".")[0]
    return owners.get(module)


def call_per_plugin(pm: pluggy.PluginManager, hook_name: str, make_kwargs, check=None) -> None:
    """Call a registration hook plugin by plugin, so that each call knows its
    plugin's name and one plugin raising does not stop the others. ``check()``, where given, runs
    after each plugin's call, whether it raised or not: it undoes what a plugin must not do, and
    raises to have the plugin named for it."""
    hook = getattr(pm.hook, hook_name)
    plugins = list(dict.fromkeys(impl.plugin for impl in hook.get_hookimpls()))  # once: a plugin may have two
    for plugin in plugins:
        name = pm.get_name(plugin)
        others = [p for p in plugins if p is not plugin]
        try:
            with plugin_code(f"plugin {name!r}"):
                try:
                    pm.subset_hook_caller(hook_name, remove_plugins=others)(**make_kwargs(name))
                finally:
                    if check is not None:
                        check()
        except Stop:  # srpipe's own signal handler (a batch worker told to stop), not the plugin's doing
            raise
        except (Exception, SystemExit) as exc:
            _warn(f"plugin {name!r} failed in {hook_name} and is skipped: {type(exc).__name__}: {exc}")


def collect(pm: pluggy.PluginManager, hook_name: str, registry):
    """``registry`` filled by every plugin's ``hook_name(register)``, each entry tagged with its plugin.
    A ``register()`` call that fails is named and skipped; the plugin's other calls still count."""

    def register_for(plugin: str):
        def register(item) -> None:
            try:
                registry.register(item, plugin=plugin)
            except (TypeError, ValueError) as exc:
                _warn(f"plugin {plugin!r} failed in {hook_name} for one entry, which is skipped: "
                      f"{type(exc).__name__}: {exc}")

        return register

    call_per_plugin(pm, hook_name, lambda plugin: {"register": register_for(plugin)})
    return registry


def collect_models(pm: pluggy.PluginManager) -> ModelRegistry:
    """All models the plugins register."""
    return collect(pm, "register_models", ModelRegistry())


def collect_backends(pm: pluggy.PluginManager) -> BackendRegistry:
    """All inference backends the plugins register."""
    return collect(pm, "register_backends", BackendRegistry())


def describe_plugins(pm: PluginManager) -> list[dict]:
    """Name, version and implemented hooks of every registered plugin."""
    rows = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda item: item[0]):
        hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or [])
        rows.append(
            {
                "name": name,
                "version": pm.versions.get(name, "unknown"),
                "hooks": hooks,
                "builtin": name in DEFAULT_PLUGINS,
            }
        )
    return rows
