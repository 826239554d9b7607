"""Tile reuse (srpipe.reuse) against pictures chosen to break it: the output must stay the
upscaler's own (threshold 0), whatever the frames' sizes, cuts and flat areas."""

import json

import av
import numpy as np
import pytest

from srpipe.reuse import ReusePolicy, TileReuse
from tests.core.test_reuse import BoxUpscaler, Nearest, frames_of
from tests.media import video_info
from tests.plugin_helpers import fake_plugin

from conftest import run_srpipe


def box(frame, radius=3):
    return BoxUpscaler(radius).upscale(frame[None], bit_depth=8, full_range=False)[0]


@pytest.mark.parametrize("centre_due", [False, True])
def test_a_textured_tile_amid_flat_ones_keeps_the_networks_output(centre_due):
    """A flat ring of tiles around a textured one: the ring's rectangle covers the textured
    tile, whose output must stay the network's, not the flat path's."""
    picture = np.full((80, 80), 100, np.uint8)  # 5 x 5 tiles of 16
    picture[36:44, 36:44] = np.random.default_rng(0).integers(0, 256, (8, 8))  # inside the centre tile (2, 2)
    lit = picture.copy()
    if centre_due:  # everything but the texture brightens: the centre tile's support holds a change
        lit[picture == 100] += 8
    else:  # only the outer ring of tiles, more than the radius away from the centre tile
        lit[:16] += 8
        lit[64:] += 8
        lit[16:64, :16] += 8
        lit[16:64, 64:] += 8
    reusing = TileReuse(BoxUpscaler(), 3, ReusePolicy(threshold=0, flat_range=8), flat_path=Nearest())
    first, second = frames_of(reusing, [picture, lit])
    np.testing.assert_array_equal(first, box(picture))
    assert reusing.stats.last_flat > 0.5  # the ring went the flat way
    np.testing.assert_array_equal(second[64:96, 64:96], box(lit)[64:96, 64:96])


@pytest.mark.parametrize("height, width", [(20, 20), (32, 18), (18, 32), (24, 40)])
def test_cuts_between_small_frames(height, width):
    """On frames that do not match (cuts), phase correlation finds a peak in the noise, which
    on a small frame may lie beyond it: taken for a cut, never a shift."""
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (height, width), dtype=np.uint8) for _ in range(30)]
    reusing = TileReuse(BoxUpscaler(), 3, ReusePolicy(flat=False))
    for frame, got in zip(frames, frames_of(reusing, frames)):
        np.testing.assert_array_equal(got, box(frame))
    assert reusing.stats.shifted_frames == 0


def test_a_one_pixel_wide_stream_of_a_pointwise_upscaler():
    """Radius 0 (an upscaler that reads each pixel alone) on a column one pixel wide."""
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 256, (40, 1), dtype=np.uint8) for _ in range(4)]
    reusing = TileReuse(BoxUpscaler(radius=0), 0, ReusePolicy(flat=False))
    for frame, got in zip(frames, frames_of(reusing, frames)):
        np.testing.assert_array_equal(got, box(frame, radius=0))


def noise_clip(path, width, height, frames):
    """Frames of noise, each a cut."""
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "gray"
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(rng.integers(16, 236, (height, width), dtype=np.uint8), format="gray")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def test_upscale_a_small_clip_of_cuts_with_espcn(tmp_path, cli_run):
    from srpipe.backends import load_upscaler
    from srpipe.plugins import collect_backends, collect_models, get_plugin_manager

    clip = noise_clip(tmp_path / "noise.mkv", 48, 32, 12)
    ours = tmp_path / "ours.mkv"
    result = cli_run("upscale", clip, "-o", ours, "-m", "espcn", "--codec", "ffv1", "--backend", "torch", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["reuse"]["frames"] == 12
    pm = get_plugin_manager()
    spec, _ = collect_models(pm).upscaler("espcn", 2, None)
    network = load_upscaler(spec, collect_backends(pm), scale=2, device="cpu", weights=None, backend="torch")
    pairs = list(zip(video_info(clip)["luma"], video_info(ours)["luma"]))
    assert len(pairs) == 12
    for source, written in pairs:  # every frame is a cut: each runs whole, the network on every pixel
        np.testing.assert_array_equal(written, network.upscale(source[None], bit_depth=8, full_range=False)[0])


def test_espcns_declared_radius_is_its_reach():
    """A pixel changes the output no farther than the declared radius (else reuse would keep
    stale output), and as far (each unneeded pixel of halo is read around every tile: with
    rectangles read in steps of 32, a lone tile of 16 reads 64 a side at radius 9, 32 at 7)."""
    from srpipe.backends import load_upscaler
    from srpipe.plugins import collect_backends, collect_models, get_plugin_manager

    pm = get_plugin_manager()
    spec, _ = collect_models(pm).upscaler("espcn", 2, None)
    network = load_upscaler(spec, collect_backends(pm), scale=2, device="cpu", weights=None, backend="torch")
    picture = np.random.default_rng(0).integers(16, 236, (1, 48, 48), dtype=np.uint8)
    before = network.upscale(picture, bit_depth=8, full_range=False)
    reach = 0
    for value in (0, 255):
        changed = picture.copy()
        changed[0, 24, 24] = value
        moved = np.argwhere(network.upscale(changed, bit_depth=8, full_range=False) != before)[:, 1:] // 2
        reach = max(reach, int(np.abs(moved - 24).max()))
    assert reach == network.receptive_radius



def test_a_shift_whose_frame_then_runs_whole_is_not_counted():
    """A pan and, on top of it, new stripes over 7 rows in 16: the shift explains most of the
    change, but every tile still has to run, so the frame runs whole and nothing was moved."""
    from tests.core.test_reuse import pan

    first, second = pan([(0, 0), (2, 0)])
    second = second.copy()
    for top in range(0, second.shape[0], 16):
        second[top:top + 7] = np.random.default_rng(top).integers(0, 256, second[top:top + 7].shape)
    reusing = TileReuse(BoxUpscaler(), 3, ReusePolicy(threshold=0, flat=False))
    for frame, got in zip([first, second], frames_of(reusing, [first, second])):
        np.testing.assert_array_equal(got, box(frame))
    assert reusing.stats.full_frames == 2
    assert reusing.stats.shifted_frames == 0


def test_a_kept_model_starts_each_file_afresh(tmp_path, monkeypatch):
    """Batch workers keep the model between files (keep_model); the reuse state must not go
    with it: a second file a code value or two from the first is upscaled on its own pixels."""
    from srpipe import upscaling
    from srpipe.backends import load_upscaler
    from srpipe.plugins import collect_backends, collect_models, get_plugin_manager
    from tests.core.test_reuse import static_clip

    monkeypatch.setattr(upscaling, "_kept_models", {})
    first = static_clip(tmp_path / "first.mkv", frames=2)
    second = tmp_path / "second.mkv"
    with av.open(str(first)) as source, av.open(str(second), "w") as target:
        stream = target.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = 256, 128, "yuv420p"
        for frame in source.decode(video=0):
            luma = frame.to_ndarray()
            luma[:128] = np.minimum(luma[:128], 250) + 2  # within the threshold of the first file
            copy = av.VideoFrame.from_ndarray(luma, format="yuv420p")
            copy.pts = frame.pts
            target.mux(stream.encode(copy))
        target.mux(stream.encode())
    for clip in (first, second):
        result = upscaling.upscale(str(clip), str(tmp_path / f"{clip.stem}_x2.mkv"), model="espcn", backend="torch",
                                   sink_options=upscaling.SinkOptions(codec="ffv1"), keep_model=True)
        assert result.reuse.full_frames == 1
    assert not any(isinstance(kept, TileReuse) for kept in upscaling._kept_models.values())
    pm = get_plugin_manager()
    spec, _ = collect_models(pm).upscaler("espcn", 2, None)
    network = load_upscaler(spec, collect_backends(pm), scale=2, device="cpu", weights=None, backend="torch")
    written = video_info(tmp_path / "second_x2.mkv")["luma"][0]
    source = video_info(second)["luma"][0]
    np.testing.assert_array_equal(written, network.upscale(source[None], bit_depth=8, full_range=False)[0])


class Scribbler(BoxUpscaler):
    """BoxUpscaler that then writes over its input, as docs/plugins.md allows an upscaler to."""

    def upscale(self, luma, *, bit_depth, full_range):
        out = super().upscale(luma, bit_depth=bit_depth, full_range=full_range)
        luma[...] = 0
        return out


def test_an_upscaler_that_writes_over_its_input_gets_its_own_output_back():
    rng = np.random.default_rng(3)
    frames = [rng.integers(0, 256, (64, 96), dtype=np.uint8)]
    for step in range(6):  # a patch changing over a still background: whole frames and blocks
        frame = frames[-1].copy()
        frame[8 * step:8 * step + 12, 20:40] = rng.integers(0, 256, (12, 20))
        frames.append(frame)
    frames.append(np.zeros((64, 96), np.uint8))  # a cut to black
    reusing = TileReuse(Scribbler(), 3, ReusePolicy(threshold=0))
    given = [frame.copy() for frame in frames]  # the input srpipe hands an upscaler is its to write over
    for frame, got in zip(frames, frames_of(reusing, given)):
        np.testing.assert_array_equal(got, box(frame))
    assert reusing.stats.reused > 0


def test_an_upscaler_whose_for_stream_gives_another_scale_is_refused():
    from srpipe.errors import SrpipeError
    from srpipe.models import for_stream

    class Changeling(BoxUpscaler):
        def for_stream(self):
            changed = BoxUpscaler()
            changed.scale = 3
            return changed

    with pytest.raises(SrpipeError, match=r"^the for_stream\(\) of model 'box' gave a BoxUpscaler of scale 3, not an "
                                          r"x2 upscaler; report it to the plugin's authors$"):
        for_stream(Changeling(), "model 'box'")


class GivingFlat(Nearest):
    """A flat path that gives ``give(its nearest output, luma)``."""

    def __init__(self, give):
        super().__init__()
        self.give = give

    def upscale(self, luma, *, bit_depth, full_range):
        return self.give(super().upscale(luma, bit_depth=bit_depth, full_range=full_range), luma)


def flat_then_moved(flat_path, bit_depth=8):
    """Two frames through tile reuse with ``flat_path``, of model 'boxed': a flat picture with a
    textured strip, then all of it brighter (the flat part goes the flat path)."""
    reusing = TileReuse(BoxUpscaler(), 3, ReusePolicy(tile=16, flat_range=8, step=1, call_pixels=0),
                        flat_path=flat_path, name="boxed")
    dtype, step = (np.uint8, 1) if bit_depth == 8 else (np.uint16, 1 << (bit_depth - 8))
    picture = np.full((64, 64), 100 * step, dtype)
    picture[:, 48:] = np.random.default_rng(4).integers(0, 256, (64, 16)) * step
    reusing.upscale(picture[None], bit_depth=bit_depth, full_range=False)
    return reusing.upscale((picture + 20 * step)[None], bit_depth=bit_depth, full_range=False)[0]


@pytest.mark.parametrize("give, got", [
    (lambda out, luma: out.astype(np.float32) / 255, r"float32 \(1, (\d+), (\d+)\)"),  # 0..1: black
    (lambda out, luma: np.zeros(out.shape, np.float32), r"float32 \(1, (\d+), (\d+)\)"),
    (lambda out, luma: out[:, 1:], r"uint8 \(1, (\d+), \d+\)"),  # a row short
    (lambda out, luma: luma.repeat(3, axis=1).repeat(3, axis=2), r"uint8 \(1, \d+, \d+\)"),  # x3 for an x2 model
    (lambda out, luma: list(out), "list"),
])
def test_a_flat_paths_output_is_checked_as_the_models(give, got):
    """What a flat path gave was written into the output as it came: float32 in 0..1 or zeros as
    black patches, a row short or another scale as whatever numpy made of it."""
    from srpipe.errors import SrpipeError

    with pytest.raises(SrpipeError, match=rf"^the flat path of model 'boxed' returned {got}; expected uint8 "
                                          r"\(1, \d+, \d+\)$"):
        flat_then_moved(GivingFlat(give))


def test_a_flat_paths_samples_over_the_bit_depth_are_clipped_with_a_warning():
    with pytest.warns(UserWarning, match=r"^the flat path of model 'boxed' gave samples above 1023, the largest "
                                         r"10-bit value; they were clipped$"):
        out = flat_then_moved(GivingFlat(lambda out, luma: out * 16), bit_depth=10)  # 0..4095 as from 12-bit
    assert out.max() <= 1023 and (out[:, :64] == 1023).all()


# A pointwise upscaler (radius 0, each pixel repeated) whose flat path fills each crop with its
# rounded mean: equal to it where the input the model reads for a tile spans at most 8.
POINTWISE_PLUGIN = """
import numpy as np

from srpipe import hookimpl
from srpipe.models import ModelSpec


class MeanFill:
    scale = 2

    def upscale(self, luma, *, bit_depth, full_range):
        means = np.rint(luma.mean(axis=(1, 2), keepdims=True)).astype(luma.dtype)
        return np.broadcast_to(means, (luma.shape[0], luma.shape[1] * 2, luma.shape[2] * 2)).copy()


class Repeat:
    scale = 2
    receptive_radius = 0
    flat_path = MeanFill()

    def upscale(self, luma, *, bit_depth, full_range):
        return luma.repeat(2, axis=1).repeat(2, axis=2)


@hookimpl
def register_models(register):
    register(ModelSpec(name="pointwise", scales=(2,), description="each pixel repeated", load=lambda **kw: Repeat(),
                       uses_gpu=False))
"""


def test_a_pointwise_models_textured_tiles_do_not_take_its_flat_path(tmp_path):
    """At radius 0 each pixel's support is the pixel, always flat: every tile due went the flat
    way, and noise came out as its tiles' means (up to 117 code values from --exact's)."""
    site = fake_plugin(tmp_path / "site", "pointwise_plugin", POINTWISE_PLUGIN)
    rng = np.random.default_rng(0)
    noise = rng.integers(16, 236, (64, 96), dtype=np.uint8)
    clip = tmp_path / "square.mkv"
    with av.open(str(clip), "w") as container:  # a square moving over still noise: its tiles are due
        stream = container.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "gray"
        for index in range(6):
            picture = noise.copy()
            picture[24:40, 8 + 8 * index:24 + 8 * index] = 200
            frame = av.VideoFrame.from_ndarray(picture, format="gray")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    runs = {}
    for name, options in (("reused", []), ("exact", ["--exact"])):
        done = run_srpipe("upscale", clip, "-m", "pointwise", "-o", tmp_path / f"{name}.mkv", "--codec", "ffv1",
                          "--json", *options, env={"PYTHONPATH": str(site)})
        assert done.returncode == 0, done.stderr.decode()
        runs[name] = json.loads(done.stdout)
    assert runs["reused"]["reuse"]["reused"] > 0.5  # the tile reuse ran
    for reused, exact in zip(*(video_info(tmp_path / f"{name}.mkv")["luma"] for name in ("reused", "exact"))):
        np.testing.assert_array_equal(reused, exact)
