"""Plugins for tests: installed for real, as a distribution with an entry point, on a PYTHONPATH."""

from pathlib import Path


def fake_plugin(site: Path, name: str, source: str) -> Path:
    """A minimal installed distribution whose entry point is the module ``name``."""
    site.mkdir(exist_ok=True)
    (site / f"{name}.py").write_text(source)
    dist = site / f"{name}-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[srpipe]\n{name} = {name}\n")
    return site


# A model that takes its time: for tests that interrupt a run. SRPIPE_TEST_SLOW_SECONDS sets the
# time of a call (0: a run after the interrupted one, which need not be slow).
SLOW_PLUGIN = '''
import os
import time
from srpipe import hookimpl
from srpipe.models import ModelSpec

SECONDS = float(os.environ.get("SRPIPE_TEST_SLOW_SECONDS", "0.2"))


class Slow:
    scale = 2

    def upscale(self, luma, *, bit_depth, full_range):
        time.sleep(SECONDS)
        return luma.repeat(2, axis=1).repeat(2, axis=2)


@hookimpl
def register_models(register):
    register(ModelSpec(name="slow", scales=(2,), description="sleeps", load=lambda **kw: Slow()))
'''


# A model, "exits", a source, "exits:" (a few frames of grey), and a sink for outputs named *.exits,
# of which one part raises SystemExit: the model's load, upscale, for_stream or working_bytes, the
# source's items, the sink's methods, or the model's load parsing the command line as the script a
# research model was ported from did (argparse: exit 2)
EXITING_PLUGIN = '''
import argparse
import os
import sys
from fractions import Fraction

import numpy as np

from srpipe import hookimpl
from srpipe.frames import PLANE_FORMATS, Frame
from srpipe.media import Sink, Source
from srpipe.models import ModelSpec


def maybe_exit(where):
    if where != WHERE:
        return
    if ONCE is not None:  # only the first time in the whole run, its workers' too
        try:
            os.close(os.open(ONCE, os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            return
    if where == "argparse":
        parser = argparse.ArgumentParser()
        parser.add_argument("--config", required=True)
        parser.parse_args()
    sys.exit(CODE)


class Nearest:
    scale = 2

    def upscale(self, luma, *, bit_depth, full_range):
        maybe_exit("upscale")
        return luma.repeat(2, axis=1).repeat(2, axis=2)

    def for_stream(self):
        maybe_exit("for_stream")
        return self

    def working_bytes(self, frames, width, height):
        maybe_exit("working_bytes")
        return 0


def load(**kw):
    maybe_exit("load")
    maybe_exit("argparse")
    return Nearest()


class Grey(Source):
    location = "exits:"
    is_file = False
    frame_rate, time_base = Fraction(25), Fraction(1, 25)

    def items(self):
        for index in range(6):
            if index == 3:
                maybe_exit("items")
            y, c = np.full((48, 64), 100, np.uint8), np.full((24, 32), 128, np.uint8)
            yield Frame((y, c, c.copy()), PLANE_FORMATS["yuv420p"], False, index, self.time_base)


class Dropping(Sink):
    """Writes nowhere; "abort": its write fails, and then its abort exits."""

    def __init__(self, location):
        self.location = location

    def write_frame(self, frame):
        if WHERE == "abort":
            raise OSError("the disk went away")
        maybe_exit("write_frame")

    def finish(self):
        maybe_exit("finish")

    def abort(self):
        maybe_exit("abort")


@hookimpl
def open_source(location, options):
    return Grey() if location == "exits:" else None


@hookimpl
def open_sink(location, source, options):
    return Dropping(location) if location.endswith(".exits") else None


@hookimpl
def register_models(register):
    register(ModelSpec(name="exits", scales=(2,), description="raises SystemExit", load=load, uses_gpu=False))
'''


def exiting_plugin(site: Path, where: str, code, once: Path | None = None) -> Path:
    """:data:`EXITING_PLUGIN` installed in ``site`` as ``exiting_plugin``, raising
    ``SystemExit(code)`` in ``where`` (``load``, ``upscale``, ``items``, ``argparse``; the
    upscaler's ``for_stream`` or ``working_bytes``; the ``.exits`` sink's ``write_frame``,
    ``finish`` or ``abort``, whose ``write_frame`` then fails first); with
    ``once``, only where it is the first to create that file."""
    settings = f"WHERE, CODE, ONCE = {where!r}, {code!r}, {None if once is None else str(once)!r}\n"
    return fake_plugin(site, "exiting_plugin", EXITING_PLUGIN + settings)
