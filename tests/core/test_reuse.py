"""Tile reuse across frames (srpipe.reuse): the output stays what the upscaler gives, within the
threshold, whatever the frames do; and the work is done only where the input changed."""

import json

import av
import cv2
import numpy as np
import pytest

from srpipe.reuse import ReusePolicy, TileReuse, with_reuse
from tests.media import video_info
from tests.plugin_helpers import fake_plugin


class BoxUpscaler:
    """A local upscaler with a known receptive radius: the sum over a (2r+1)^2 window (zeros
    outside the frame), scaled into the sample range, repeated x2. Counts the pixels it is given."""

    scale = 2

    def __init__(self, radius: int = 3):
        self.receptive_radius = radius
        self.pixels = 0
        self.calls = 0

    def upscale(self, luma, *, bit_depth, full_range):
        self.pixels += luma.size
        self.calls += 1
        r = self.receptive_radius
        padded = np.pad(luma.astype(np.int64), ((0, 0), (r, r), (r, r)))
        sums = np.zeros(luma.shape, np.int64)
        for dy in range(2 * r + 1):
            for dx in range(2 * r + 1):
                sums += padded[:, dy:dy + luma.shape[1], dx:dx + luma.shape[2]]
        out = (sums // (2 * r + 1) ** 2).astype(luma.dtype)
        return out.repeat(2, axis=1).repeat(2, axis=2)


class Nearest:
    scale = 2

    def __init__(self):
        self.pixels = 0

    def upscale(self, luma, *, bit_depth, full_range):
        self.pixels += luma.size
        return luma.repeat(2, axis=1).repeat(2, axis=2)


def frames_of(upscaler, frames):
    return [upscaler.upscale(f[None], bit_depth=8, full_range=False)[0] for f in frames]


def textured(height=96, width=128, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width), dtype=np.uint8)


def test_with_threshold_zero_every_frame_is_the_upscalers_own():
    rng = np.random.default_rng(1)
    first = textured()
    frames = [first]
    for _ in range(12):  # a small subject moving over a static background, and scattered changes
        frame = frames[-1].copy()
        y, x = rng.integers(0, 80), rng.integers(0, 110)
        frame[y:y + 16, x:x + 18] = rng.integers(0, 256, (16, 18))
        frame[rng.integers(0, 96), rng.integers(0, 128)] ^= 0xFF
        frames.append(frame)
    inner = BoxUpscaler()
    reusing = TileReuse(BoxUpscaler(), 3, ReusePolicy(threshold=0, flat=False, tile=16))
    for expected, got in zip(frames_of(inner, frames), frames_of(reusing, frames)):
        np.testing.assert_array_equal(got, expected)
    stats = reusing.stats
    assert stats.frames == 13 and stats.full_frames == 1
    assert 0.3 < stats.share(stats.reused) < 1  # most of each frame was taken over, not all


def test_a_static_picture_is_upscaled_once():
    inner = BoxUpscaler()
    reusing = TileReuse(inner, 3, ReusePolicy(flat=False, tile=16, refresh_frames=10**6))
    picture = textured()
    outputs = frames_of(reusing, [picture] * 5)
    assert inner.pixels == picture.size  # the first frame, whole; nothing after (no refresh falls due)
    assert all(np.array_equal(out, outputs[0]) for out in outputs)
    assert reusing.stats.last_reused == 1.0


def test_only_tiles_whose_support_holds_a_change_run_again():
    inner = BoxUpscaler(radius=3)
    reusing = TileReuse(inner, 3, ReusePolicy(threshold=0, flat=False, tile=16, refresh_frames=10**6, step=1))
    picture = textured(96, 128)
    reusing.upscale(picture[None], bit_depth=8, full_range=False)
    changed = picture.copy()
    changed[40, 40] += 1  # inside tile (2, 2), more than 3 pixels from its edges: that tile alone
    inner.pixels = 0
    reusing.upscale(changed[None], bit_depth=8, full_range=False)
    assert inner.calls == 2 and inner.pixels == (16 + 6) ** 2
    changed[40, 33] += 1  # 1 pixel from tile (2, 1): both tiles, as one strip
    inner.pixels = 0
    out = reusing.upscale(changed[None], bit_depth=8, full_range=False)[0]
    assert inner.pixels == (16 + 6) * (32 + 6)
    np.testing.assert_array_equal(out, BoxUpscaler().upscale(changed[None], bit_depth=8, full_range=False)[0])


def test_the_engine_sees_few_shapes():
    """A subject that moves and changes size: the pieces read are at most block a side, in
    steps of step, each with the radius around it."""
    shapes = set()

    class Recording(BoxUpscaler):
        def upscale(self, luma, *, bit_depth, full_range):
            shapes.add(luma.shape[1:])
            return super().upscale(luma, bit_depth=bit_depth, full_range=full_range)

    reusing = TileReuse(Recording(), 3, ReusePolicy(threshold=0, flat=False, tile=16, block=64, step=32))
    picture = textured(256, 320)
    for index in range(30):
        frame = picture.copy()
        frame[10 + 3 * index:40 + 5 * index, 20 + 7 * index:50 + 4 * index] = 255
        got = reusing.upscale(frame[None], bit_depth=8, full_range=False)[0]
        np.testing.assert_array_equal(got, BoxUpscaler().upscale(frame[None], bit_depth=8, full_range=False)[0])
    assert shapes - {(256, 320)} <= {(h, w) for h in (38, 70) for w in (38, 70)}


@pytest.mark.parametrize("alignment", [1, 2])
def test_after_warming_up_no_frame_brings_a_new_shape(alignment):
    shapes, calls = set(), []

    class Recording(BoxUpscaler):
        def upscale(self, luma, *, bit_depth, full_range):
            calls.append(luma.shape[1:] not in shapes)
            shapes.add(luma.shape[1:])
            return super().upscale(luma, bit_depth=bit_depth, full_range=full_range)

    reusing = TileReuse(Recording(), 3, ReusePolicy(threshold=0, flat=False, tile=16, block=64, step=16),
                        alignment=alignment)
    reusing.warm_up(200, 150)
    assert reusing.stats.frames == 0 and reusing._state is None  # nothing of a frame is kept
    calls.clear()
    picture = textured(150, 200)
    for index in range(25):
        frame = picture.copy()
        frame[5 + 4 * index:30 + 5 * index, 10 + 6 * index:40 + 3 * index] = 255
        reusing.upscale(frame[None], bit_depth=8, full_range=False)
    assert calls and not any(calls)


def pan(steps, height=256, width=320, seed=7):
    """Frames of a camera moving over a larger picture by whole pixels: (dx, dy) per frame."""
    world = textured(height + 80, width + 80, seed=seed)
    x = y = 40
    frames = []
    for dx, dy in steps:
        x, y = x - dx, y - dy  # the picture moves right and down as the camera moves left and up
        frames.append(np.ascontiguousarray(world[y:y + height, x:x + width]))
    return frames


def test_a_pan_by_whole_pixels_moves_the_kept_picture():
    frames = pan([(0, 0)] + [(3, 1)] * 6 + [(-2, 0)] * 4 + [(0, -5)] * 3)
    inner = BoxUpscaler()
    # call_pixels=0: on frames this small, a call's own cost would make the whole frame cheaper
    reusing = TileReuse(inner, 3, ReusePolicy(threshold=0, flat=False, tile=16, step=1, call_pixels=0))
    for got, expected in zip(frames_of(reusing, frames), frames_of(BoxUpscaler(), frames)):
        np.testing.assert_array_equal(got, expected)
    assert reusing.stats.shifted_frames == len(frames) - 1
    assert reusing.stats.full_frames == 1
    assert inner.pixels < 0.5 * len(frames) * frames[0].size  # the edges and what came in, not the frames


def test_a_zoom_is_no_shift_and_stays_right():
    base = textured(96, 128, seed=2)
    frames = [cv2.resize(base[k:96 - k, k:128 - k], (128, 96), interpolation=cv2.INTER_LINEAR) for k in range(0, 12, 2)]
    reusing = TileReuse(BoxUpscaler(), 3, ReusePolicy(threshold=0, flat=False, tile=16))
    for got, expected in zip(frames_of(reusing, frames), frames_of(BoxUpscaler(), frames)):
        np.testing.assert_array_equal(got, expected)
    assert reusing.stats.shifted_frames == 0


def test_changes_under_the_threshold_never_add_up():
    """A slow fade, one code value a frame: each output stays within what the threshold allows
    of the upscaler's own, however long it goes on."""
    reusing = TileReuse(BoxUpscaler(), 3, ReusePolicy(threshold=2, flat=False, tile=16))
    picture = textured().astype(np.int64) // 2
    for step in range(40):
        frame = (picture + step).astype(np.uint8)
        got = reusing.upscale(frame[None], bit_depth=8, full_range=False)[0].astype(int)
        expected = BoxUpscaler().upscale(frame[None], bit_depth=8, full_range=False)[0].astype(int)
        assert np.abs(got - expected).max() <= 2 * 2 + 1  # the box mean of inputs within 2 x threshold
    assert reusing.stats.reused > 0


def smooth_picture(height=96, width=128, seed=0):
    """Smooth content (a blurred field of blobs spanning about 40-215): each pixel of it moves
    by less than the threshold under a pan of a fraction of a pixel."""
    field = np.random.default_rng(seed).normal(0, 1, (height + 32, width + 32)).astype(np.float32)
    field = cv2.GaussianBlur(field, (0, 0), 6)
    return 128 + 90 * field / np.abs(field).max()


def panned(picture, offset, height=96, width=128):
    """``picture`` moved ``offset`` pixels right (bilinear) and cut to ``height`` x ``width``."""
    shift = np.float32([[1, 0, offset], [0, 1, 0]])
    moved = cv2.warpAffine(picture, shift, picture.shape[::-1], flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return np.clip(np.rint(moved[16:16 + height, 16:16 + width]), 0, 255).astype(np.uint8)


def stripes(height=96, width=128):
    """Content that varies one way only (a sine across, 40 pixels a period), as a ramp or a
    screen's stripes do."""
    across = 128 + 90 * np.sin(2 * np.pi * np.arange(width + 32, dtype=np.float32) / 40)
    return np.repeat(across[None, :], height + 32, axis=0)


@pytest.mark.parametrize("creep, bit_depth, content", [(True, 8, smooth_picture), (False, 8, smooth_picture),
                                                       (True, 10, smooth_picture), (True, 8, stripes),
                                                       (False, 8, stripes)])
def test_a_slow_sub_pixel_pan_does_not_leave_the_output_behind(creep, bit_depth, content):
    """A pan of 0.15 pixel a frame over smooth content changes each pixel by less than the
    threshold: without the creep test kept tiles lag behind the picture (here up to 1.1 code
    values off on average over blobs, 2.5 over stripes, until the pan adds up to a whole pixel);
    with it they are computed again once a tile's change exceeds a code value."""
    picture = content()
    shift = bit_depth - 8
    frames = [panned(picture, 0.15 * k).astype(np.uint16 if shift else np.uint8) << shift for k in range(40)]
    reusing = TileReuse(BoxUpscaler(), 3, ReusePolicy(flat=False, tile=16, creep=creep))
    errors = []
    for frame in frames:
        got = reusing.upscale(frame[None], bit_depth=bit_depth, full_range=False)[0].astype(int)
        expected = BoxUpscaler().upscale(frame[None], bit_depth=bit_depth, full_range=False)[0]
        errors.append(np.abs(got - expected).mean() / (1 << shift))  # in 8-bit code values
    if creep:
        assert max(errors) < 0.4
    else:
        assert max(errors) > 0.9  # the failure the creep test is there for


@pytest.mark.parametrize("size", [(96, 128), (97, 129)])
def test_noise_on_a_still_picture_is_not_taken_for_a_creep(size):
    """Fresh sensor noise on every frame of a fixed view: the creep test finds no move in it,
    and the tiles are reused as without it, also where the frame ends in a sliver of a tile."""
    rng = np.random.default_rng(5)
    picture = smooth_picture(*size)[16:16 + size[0], 16:16 + size[1]]
    frames = [np.clip(np.rint(picture + rng.normal(0, 0.6, picture.shape)), 0, 255).astype(np.uint8)
              for _ in range(20)]
    shares = {}
    for creep in (True, False):
        reusing = TileReuse(BoxUpscaler(), 3, ReusePolicy(flat=False, tile=16, creep=creep))
        frames_of(reusing, frames)
        shares[creep] = reusing.stats.share(reusing.stats.reused)
    assert shares[False] > 0.8
    assert shares[True] == shares[False]



def test_a_batch_of_frames_is_what_they_give_one_by_one():
    """Frames given together come back each as its own (the kept output changes from frame to
    frame, and each is copied out before the next)."""
    base = textured()
    frames = [base.copy() for _ in range(4)]
    for index, frame in enumerate(frames):
        frame[20 + 10 * index:30 + 10 * index, 40:60] = 255 - frame[20 + 10 * index:30 + 10 * index, 40:60]
    together = TileReuse(BoxUpscaler(), 3, ReusePolicy(flat=False, tile=16)).upscale(
        np.stack(frames), bit_depth=8, full_range=False)
    one_by_one = frames_of(TileReuse(BoxUpscaler(), 3, ReusePolicy(flat=False, tile=16)), frames)
    for got, expected in zip(together, one_by_one):
        np.testing.assert_array_equal(got, expected)
    assert len({got.tobytes() for got in together}) == 4

def test_a_new_size_or_format_starts_afresh():
    reusing = TileReuse(BoxUpscaler(), 3, ReusePolicy(flat=False, tile=16))
    small, large = textured(64, 80), textured(96, 128, seed=3)
    for frame in (small, large, small):
        np.testing.assert_array_equal(reusing.upscale(frame[None], bit_depth=8, full_range=False)[0],
                                      BoxUpscaler().upscale(frame[None], bit_depth=8, full_range=False)[0])
    deep = (small.astype(np.uint16) << 2)
    got = reusing.upscale(deep[None], bit_depth=10, full_range=False)[0]
    np.testing.assert_array_equal(got, BoxUpscaler().upscale(deep[None], bit_depth=10, full_range=False)[0])
    assert reusing.stats.full_frames == 4


def test_a_whole_frame_runs_every_refresh_period():
    inner = BoxUpscaler()
    reusing = TileReuse(inner, 3, ReusePolicy(flat=False, tile=16, refresh_frames=10))
    picture = textured(96, 128)
    whole = []
    for _ in range(31):
        before = inner.pixels
        reusing.upscale(picture[None], bit_depth=8, full_range=False)
        whole.append(inner.pixels - before == picture.size)
    assert [i for i, w in enumerate(whole) if w] == [0, 10, 20, 30]
    assert reusing.stats.full_frames == 4 and inner.pixels == 4 * picture.size


def test_scattered_changes_run_the_whole_frame_where_tiles_would_cost_more():
    """A quarter of the tiles changed, each alone: their blocks, each read with its halo and
    each a call, would cost more than the frame, which then runs whole, in one call."""
    inner = BoxUpscaler()
    reusing = TileReuse(inner, 3, ReusePolicy(flat=False, tile=16))
    picture = textured(128, 256)
    reusing.upscale(picture[None], bit_depth=8, full_range=False)
    frame = picture.copy()
    frame[8::32, 8::32] ^= 0x80
    inner.calls = 0
    got = reusing.upscale(frame[None], bit_depth=8, full_range=False)[0]
    assert inner.calls == 1 and reusing.stats.full_frames == 2
    np.testing.assert_array_equal(got, BoxUpscaler().upscale(frame[None], bit_depth=8, full_range=False)[0])
    # changes gathered in one corner run as tiles
    frame[:32, :64] ^= 0x80
    inner.calls = 0
    got = reusing.upscale(frame[None], bit_depth=8, full_range=False)[0]
    assert inner.calls == 1 and reusing.stats.full_frames == 2 and reusing.stats.last_reused > 0.5
    np.testing.assert_array_equal(got, BoxUpscaler().upscale(frame[None], bit_depth=8, full_range=False)[0])


def test_a_calls_own_cost_can_make_the_whole_frame_cheaper():
    """Twelve lone changed pixels: their blocks read half the frame, but twelve calls cost
    more than one; counted without the calls' cost, they run as tiles. The same output."""
    picture = textured(128, 256)
    frame = picture.copy()
    frame[8::64, 8::48] ^= 0x80  # 2 x 6 pixels, each alone in its tile
    outputs = {}
    for call_pixels in (2048, 0):
        inner = BoxUpscaler()
        reusing = TileReuse(inner, 3, ReusePolicy(flat=False, tile=16, call_pixels=call_pixels))
        reusing.upscale(picture[None], bit_depth=8, full_range=False)
        inner.calls = 0
        outputs[call_pixels] = reusing.upscale(frame[None], bit_depth=8, full_range=False)[0]
        assert inner.calls == (1 if call_pixels else 12), call_pixels
    expected = BoxUpscaler().upscale(frame[None], bit_depth=8, full_range=False)[0]
    for got in outputs.values():
        np.testing.assert_array_equal(got, expected)


def test_flat_tiles_take_the_flat_path():
    inner, flat = BoxUpscaler(), Nearest()
    reusing = TileReuse(inner, 3, ReusePolicy(tile=16, flat_range=8, step=1, call_pixels=0), flat_path=flat)
    picture = np.full((64, 64), 100, np.uint8)
    picture[:, 48:] = textured(64, 16)
    reusing.upscale(picture[None], bit_depth=8, full_range=False)
    moved = picture + np.uint8(20)  # everything changes: the flat half goes the flat way
    inner.pixels = 0
    out = reusing.upscale(moved[None], bit_depth=8, full_range=False)[0]
    assert flat.pixels > 0 and inner.pixels < moved.size
    assert (out[:, :64] == 120).all()  # the flat path's output where the support is flat
    assert reusing.stats.last_flat > 0


def test_upscalers_without_a_radius_are_left_as_they_are():
    plain = Nearest()
    assert with_reuse(plain) is plain
    assert with_reuse(BoxUpscaler(), ReusePolicy(reuse=False, flat=False)).__class__ is BoxUpscaler
    assert isinstance(with_reuse(BoxUpscaler()), TileReuse)


def test_a_frame_smaller_than_the_halo_runs_whole():
    reusing = TileReuse(BoxUpscaler(), 3, ReusePolicy(flat=False, tile=16))
    tiny = textured(5, 40)
    for _ in range(2):
        np.testing.assert_array_equal(reusing.upscale(tiny[None], bit_depth=8, full_range=False)[0],
                                      BoxUpscaler().upscale(tiny[None], bit_depth=8, full_range=False)[0])
    assert reusing.stats.full_frames == 2


# Through the real pipeline, with ESPCN and a plugin's upscaler.

def static_clip(path, frames=8, width=256, height=128, codec="ffv1"):
    """A still picture with a small square that moves: what a fixed camera sends."""
    picture = textured(height, width, seed=5)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index in range(frames):
            luma = picture.copy()
            luma[20:30, 5 + 6 * index:15 + 6 * index] = 255
            frame = av.VideoFrame(width, height, "yuv420p")
            frame.planes[0].update(np.ascontiguousarray(luma))
            for plane in frame.planes[1:]:
                plane.update(np.full(plane.buffer_size, 128, np.uint8))
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def espcn_network(exact: bool):
    """What ``-m espcn --backend torch`` runs on every pixel: the fast network, or with ``exact`` the video weights."""
    from srpipe.backends import load_upscaler
    from srpipe.plugins import collect_backends, collect_models, get_plugin_manager

    pm = get_plugin_manager()
    spec, _ = collect_models(pm).upscaler("espcn", 2, None)
    return load_upscaler(spec, collect_backends(pm), scale=2, device="cpu", weights=None, backend="torch", exact=exact)


def test_upscale_reuses_tiles_of_espcn_and_exact_does_not(tmp_path, cli_run):
    clip = static_clip(tmp_path / "still.mkv")
    reused, exact = tmp_path / "reused.mkv", tmp_path / "exact.mkv"
    result = cli_run("upscale", clip, "-m", "espcn", "-o", reused, "--codec", "ffv1", "--backend", "torch", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)["reuse"]
    assert report["frames"] == 8 and report["full_frames"] == 1 and report["reused"] > 0.3
    result = cli_run("upscale", clip, "-m", "espcn", "-o", exact, "--codec", "ffv1", "--backend", "torch", "--json",
                     "--exact")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["reuse"] is None
    network = espcn_network(exact=False)
    sources, ours = video_info(clip)["luma"], video_info(reused)["luma"]
    assert len(ours) == len(video_info(exact)["luma"]) == 8
    for source, a in zip(sources, ours):  # the threshold (2) on a lossless clip: the network's pictures
        b = network.upscale(source[None], bit_depth=8, full_range=False)[0]
        assert np.abs(a.astype(int) - b).max() <= 1


def test_the_exact_output_is_the_networks_on_every_frame(tmp_path, cli_run):
    clip = static_clip(tmp_path / "still.mkv", frames=3)
    out = tmp_path / "exact.mkv"
    result = cli_run("upscale", clip, "-m", "espcn", "-o", out, "--codec", "ffv1", "--backend", "torch", "--exact")
    assert result.exit_code == 0, result.output
    network = espcn_network(exact=True)
    for source, written in zip(video_info(clip)["luma"], video_info(out)["luma"]):
        np.testing.assert_array_equal(written, network.upscale(source[None], bit_depth=8, full_range=False)[0])


BOX_PLUGIN = '''
import numpy as np
from srpipe import hookimpl
from srpipe.models import ModelSpec


class Box:
    scale = 2
    receptive_radius = 1
    backend = "numpy"

    def upscale(self, luma, *, bit_depth, full_range):
        padded = np.pad(luma.astype(np.int64), ((0, 0), (1, 1), (1, 1)))
        total = sum(padded[:, dy:dy + luma.shape[1], dx:dx + luma.shape[2]] for dy in range(3) for dx in range(3))
        return (total // 9).astype(luma.dtype).repeat(2, axis=1).repeat(2, axis=2)


@hookimpl
def register_models(register):
    register(ModelSpec(name="box", scales=(2,), description="3x3 box, declares its radius", load=lambda **kw: Box(),
                       uses_gpu=False))
'''


def test_a_plugins_upscaler_that_declares_its_radius_is_reused(tmp_path):
    from tests.conftest import run_srpipe

    site = fake_plugin(tmp_path / "site", "srpipe_box", BOX_PLUGIN)
    clip = static_clip(tmp_path / "still.mkv")
    out = tmp_path / "box.mkv"
    done = run_srpipe("upscale", clip, "-m", "box", "-o", out, "--codec", "ffv1", "--json",
                      env={"PYTHONPATH": str(site)})
    assert done.returncode == 0, done.stderr.decode()
    report = json.loads(done.stdout)["reuse"]
    assert report["reused"] > 0.3
    pixels = video_info(clip)["luma"]
    expected = [BoxUpscaler(radius=1).upscale(p[None], bit_depth=8, full_range=False)[0] for p in pixels]
    for a, b in zip(video_info(out)["luma"], expected):
        assert np.abs(a.astype(int) - b).max() <= 1  # the threshold: within one box mean of the truth


@pytest.mark.parametrize("exact", [False, True])
def test_live_shows_the_reused_share(tmp_path, exact):
    from srpipe.default_plugins.live.session import run_live

    clip = static_clip(tmp_path / "still.mkv", frames=6)
    ended = []
    stats = run_live(str(clip), model="espcn", backend="torch", window=False, exact=exact, on_end=ended.append)
    assert stats.shown >= 1
    assert ("of tiles reused" in stats.summary()) is not exact
