"""Tests for the plugin, with srpipe's testing helpers."""

import av
import numpy as np

from srpipe.plugins import collect_models
from srpipe.testing import make_plugin_manager, make_test_video
from srpipe.upscaling import upscale


def test_repeats_pixels():
    from srpipe_nearest import NearestUpscaler

    luma = np.arange(6, dtype=np.uint8).reshape(1, 2, 3)
    out = NearestUpscaler(2).upscale(luma, bit_depth=8, full_range=False)
    assert out.shape == (1, 4, 6) and out[0, 1, 1] == luma[0, 0, 0] and out[0, 3, 5] == luma[0, 1, 2]


def test_registered():
    models = collect_models(make_plugin_manager())
    assert models.get("nearest").plugin == "nearest"


def test_upscales_a_video(tmp_path):
    clip = make_test_video(tmp_path / "in.mp4", frames=5)
    result = upscale(str(clip), model="nearest", scale=3, pm=make_plugin_manager())
    with av.open(result.output) as container:
        frames = [f.to_ndarray(format="gray") for f in container.decode(video=0)]
    assert len(frames) == 5 and frames[0].shape == (144, 192)
