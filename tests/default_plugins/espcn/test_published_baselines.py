"""Optional check against the real test sets (skips when ../shared/data is absent)."""

import os
from pathlib import Path

import pytest

from srpipe.default_plugins.espcn.evaluate import evaluate_folder

DATA = Path(os.environ.get("SRPIPE_DATA", Path(__file__).resolve().parents[4] / "shared" / "data"))
PUBLISHED = {("Set5", 2): 33.66, ("Set5", 3): 30.39, ("Set5", 4): 28.42,
             ("Set14", 2): 30.24, ("Set14", 3): 27.55, ("Set14", 4): 26.00}


@pytest.mark.parametrize("name,scale", sorted(PUBLISHED))
def test_bicubic_reproduces_published_psnr(name, scale):
    folder = DATA / "sr" / "test" / name
    if not folder.is_dir():
        pytest.skip(f"{folder} not found (set SRPIPE_DATA to the shared data folder)")
    mean = evaluate_folder(folder, scale)["mean"]
    assert mean["bicubic_psnr"] == pytest.approx(PUBLISHED[name, scale], abs=0.05)
