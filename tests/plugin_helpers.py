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
