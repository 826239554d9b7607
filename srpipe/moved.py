"""Module paths that moved when the built-in features became plugins (srpipe/default_plugins/),
kept working until srpipe 0.3 so that plugins written against the earlier layout still run.

A plugin that does ``from srpipe.nn.espcn import ESPCN`` gets a stand-in module for
``srpipe.nn.espcn``, made when first imported; each name taken from it is looked up in its new
place and comes with a ``DeprecationWarning`` naming that place. The stand-ins are made by a
finder that ``srpipe/__init__.py`` puts after the real modules on ``sys.meta_path``: srpipe's own
code never imports an old path, so they cost nothing unless a plugin asks for one.
docs/plugins.md ("Moved names") lists them for plugin authors.
"""

import importlib
import sys
import warnings
from importlib.machinery import ModuleSpec

REMOVED_IN = "0.3"
_MISSING = object()

# old module -> the modules its names live in now, searched in order
MOVED = {
    "srpipe.nn.espcn": ("srpipe.default_plugins.espcn.network",),
    "srpipe.nn.espcn_config": ("srpipe.default_plugins.espcn.config",),
    "srpipe.nn.onnx_export": ("srpipe.default_plugins.espcn.onnx_export",),
    "srpipe.nn.classifier_nets": ("srpipe.default_plugins.classifier.networks",),
    "srpipe.sr": ("srpipe.default_plugins.espcn",),
    "srpipe.sr.upscaler": ("srpipe.default_plugins.espcn.upscaler", "srpipe.default_plugins.espcn.shipped"),
    **{f"srpipe.sr.{name}": (f"srpipe.default_plugins.espcn.{name}",)
       for name in ("color", "data", "degrade", "evaluate", "imresize", "metrics", "task", "training", "video_eval")},
    "srpipe.classifier": ("srpipe.default_plugins.classifier",),
    "srpipe.classifier.convert": ("srpipe.nn.inputs",),
    **{f"srpipe.classifier.{name}": (f"srpipe.default_plugins.classifier.{name}",)
       for name in ("classify", "datasets", "evaluate", "inputs", "model", "plots", "task", "training")},
    "srpipe.inspect": ("srpipe.default_plugins.inspect",),
    "srpipe.inspect.plotting": ("srpipe.plotting",),
    **{f"srpipe.inspect.{name}": (f"srpipe.default_plugins.inspect.{name}",)
       for name in ("figures", "kernels", "layers", "networks", "report")},
    "srpipe.live": ("srpipe.default_plugins.live",),
    **{f"srpipe.live.{name}": (f"srpipe.default_plugins.live.{name}",)
       for name in ("camera", "display", "feed", "loop", "recorder", "session", "stats", "upscalers", "window")},
    "srpipe.batch": ("srpipe.default_plugins.batch.engine",),
    "srpipe.chunks": ("srpipe.default_plugins.batch.chunks",),
    "srpipe.ray_engine": ("srpipe.default_plugins.batch.ray_engine",),
    "srpipe.bench": ("srpipe.default_plugins.bench.bench",),
    "srpipe.cli.batch": ("srpipe.default_plugins.batch.commands",),
    "srpipe.cli.bench": ("srpipe.default_plugins.bench.commands", "srpipe.device"),
    "srpipe.cli.classifier": ("srpipe.default_plugins.classifier.commands",),
    "srpipe.cli.classify": ("srpipe.default_plugins.classifier.commands",),
    "srpipe.cli.evaluate": ("srpipe.default_plugins.espcn.commands",),
    "srpipe.cli.train_espcn": ("srpipe.default_plugins.espcn.commands",),
    "srpipe.cli.inspect": ("srpipe.default_plugins.inspect.commands",),
    "srpipe.cli.live": ("srpipe.default_plugins.live.commands", "srpipe.device"),
    "srpipe.cli.models": ("srpipe.default_plugins.catalog.models",),
    "srpipe.cli.plugins": ("srpipe.default_plugins.catalog.plugins",),
    "srpipe.cli.upscale": ("srpipe.default_plugins.upscale",),
}


class MovedModuleFinder:
    """Finder and loader of the stand-ins: asked only for names no real module has."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in MOVED:
            return None
        # srpipe.sr and the like were packages: their stand-ins must be too, for srpipe.sr.upscaler
        is_package = any(name.startswith(f"{fullname}.") for name in MOVED)
        return ModuleSpec(fullname, self, is_package=is_package)

    def create_module(self, spec):
        return None  # the default module object

    def exec_module(self, module):
        old = module.__name__
        module.__doc__ = f"Moved to {MOVED[old][0]}; this path goes in srpipe {REMOVED_IN}."

        def __getattr__(name):  # PEP 562: asked for every name the stand-in lacks, that is all of them
            if f"{old}.{name}" in MOVED:  # a module of an old package (srpipe.sr.upscaler): its own stand-in
                return importlib.import_module(f"{old}.{name}")
            if not name.startswith("__"):  # dunder probes (__all__, __path__, __file__) are no moved names
                for new in MOVED[old]:
                    value = getattr(importlib.import_module(new), name, _MISSING)
                    if value is not _MISSING:
                        warnings.warn(f"{old}.{name} moved to {new}.{name}; import it from there "
                                      f"({old} goes in srpipe {REMOVED_IN})", DeprecationWarning, stacklevel=2)
                        return value
            raise AttributeError(f"module {old!r} has no attribute {name!r}")

        module.__getattr__ = __getattr__


def install() -> None:
    """Put the finder last on ``sys.meta_path`` (once), after the finders of real modules."""
    if not any(isinstance(finder, MovedModuleFinder) for finder in sys.meta_path):
        sys.meta_path.append(MovedModuleFinder())
