"""Tile reuse under a time budget (``TileReuse.budget_s``, live preview): the network runs only on
what fits, every tile shows either its network output or the flat path of the current frame (or
keeps an output whose input stayed within ``stale_limit``), and what waited gets the network on
later frames. Time is a fake clock that the network's calls move by their pixels, so that what
fits is exact."""

import numpy as np

from srpipe.reuse import ReusePolicy, TileReuse

SECONDS_PER_PIXEL = 1e-6


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class TimedBox:
    """A local upscaler with radius 3 (the mean over a 7x7 window, zeros outside), x2, that
    moves ``clock`` by its pixels."""

    scale = 2

    def __init__(self, clock: Clock):
        self.clock = clock

    def upscale(self, luma, *, bit_depth, full_range):
        self.clock.now += luma.size * SECONDS_PER_PIXEL
        padded = np.pad(luma.astype(np.int64), ((0, 0), (3, 3), (3, 3)))
        sums = sum(padded[:, dy:dy + luma.shape[1], dx:dx + luma.shape[2]] for dy in range(7) for dx in range(7))
        return (sums // 49).astype(luma.dtype).repeat(2, axis=1).repeat(2, axis=2)


class Nearest:
    """The flat path: each pixel repeated (unlike the box on textured input)."""

    scale = 2

    def upscale(self, luma, *, bit_depth, full_range):
        return luma.repeat(2, axis=1).repeat(2, axis=2)


POLICY = ReusePolicy(threshold=0, tile=16, block=32, step=32, call_pixels=0, flat=False, creep=False,
                     shift=False, refresh_frames=10**6)
ONE_BLOCK = 38 * 38 * SECONDS_PER_PIXEL  # a 32x32 block read with its radius of 3 around it


def budgeted(budget_s, policy=POLICY):
    clock = Clock()
    reusing = TileReuse(TimedBox(clock), 3, policy, flat_path=Nearest(), clock=clock)
    reusing.budget_s = budget_s
    return reusing


def textured(height=96, width=128, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width), dtype=np.uint8)


def upscale(upscaler, frame):
    return upscaler.upscale(frame[None], bit_depth=8, full_range=False)[0].copy()


def tiles_of(image, tile=32):
    """Each output tile (16 input pixels x2) of ``image``, by its tile index."""
    rows, cols = image.shape[0] // tile, image.shape[1] // tile
    return {(r, c): image[r * tile:(r + 1) * tile, c * tile:(c + 1) * tile] for r in range(rows) for c in range(cols)}


def network_or_flat(got, frame):
    """Per tile: 'network' where ``got`` is the network's output for ``frame``, 'flat' where it
    is the flat path's, None where it is neither."""
    network, flat = (tiles_of(upscale(path, frame)) for path in (TimedBox(Clock()), Nearest()))
    kinds = {}
    for index, tile in tiles_of(got).items():
        kinds[index] = "network" if np.array_equal(tile, network[index]) else \
            "flat" if np.array_equal(tile, flat[index]) else None
    return kinds


def moving_subject(count, seed=1):
    """A textured background with a noisy subject moving over it (new values on every frame)."""
    rng = np.random.default_rng(seed)
    background = textured()
    frames = []
    for index in range(count):
        frame = background.copy()
        top, left = 10 + 5 * index % 60, 8 + 9 * index % 80
        frame[top:top + 30, left:left + 40] = rng.integers(0, 256, (30, 40))
        frames.append(frame)
    return frames


def test_a_budget_that_fits_everything_changes_nothing():
    frames = moving_subject(8)
    plain = TileReuse(TimedBox(Clock()), 3, POLICY, flat_path=Nearest())
    roomy = budgeted(1.0)
    for frame in frames:
        np.testing.assert_array_equal(upscale(roomy, frame), upscale(plain, frame))
    assert roomy.stats.deferred == 0


def test_a_tight_budget_shows_each_tile_as_the_network_or_the_flat_path_of_this_frame():
    frames = moving_subject(12)
    reusing = budgeted(2 * ONE_BLOCK)
    upscale(reusing, frames[0])  # whole: the rate is learnt
    deferred_frames = 0
    for frame in frames[1:]:
        kinds = network_or_flat(upscale(reusing, frame), frame)
        assert None not in kinds.values()  # never a stale picture of the subject
        deferred_frames += reusing.stats.last_deferred > 0
    assert deferred_frames >= 8  # the budget did hold the network back
    assert reusing.stats.full_frames == 1
    # Once the picture stays, what waited gets the network: the output becomes the network's own
    still = frames[-1]
    for _ in range(12):
        got = upscale(reusing, still)
    np.testing.assert_array_equal(got, upscale(TimedBox(Clock()), still))
    assert reusing.stats.last_deferred == 0


def test_each_call_fits_the_budget_at_the_rate_learnt():
    clock = Clock()
    reusing = budgeted(3 * ONE_BLOCK)
    reusing.inner.clock = clock
    reusing._clock = clock
    frames = moving_subject(10)
    upscale(reusing, frames[0])
    for frame in frames[1:]:
        before = clock.now
        upscale(reusing, frame)
        assert clock.now - before <= 3 * ONE_BLOCK + 1e-9


def test_every_tile_gets_the_network_in_turn_when_everything_changes():
    rng = np.random.default_rng(2)
    frames = [rng.integers(0, 256, (96, 128), dtype=np.uint8) for _ in range(40)]
    reusing = budgeted(ONE_BLOCK)  # one block of 2x2 tiles a frame: 48 tiles in 12 frames
    upscale(reusing, frames[0])
    had_the_network = set()
    for frame in frames[1:]:
        kinds = network_or_flat(upscale(reusing, frame), frame)
        assert None not in kinds.values()
        had_the_network |= {index for index, kind in kinds.items() if kind == "network"}
    assert len(had_the_network) == 48


def test_an_output_is_kept_while_its_input_stays_within_the_stale_limit():
    reusing = budgeted(ONE_BLOCK, ReusePolicy(**{**POLICY.__dict__, "stale_limit": 8}))
    picture = textured()
    first = upscale(reusing, picture)
    noisy = (picture.astype(np.int16) + 5).clip(0, 255).astype(np.uint8)  # every pixel, within the limit
    got = upscale(reusing, noisy)
    kinds = network_or_flat(got, noisy)
    kept = [index for index, kind in kinds.items() if kind is None]
    assert len(kept) >= 40 and "flat" not in kinds.values()  # one block ran; the rest kept their output
    for index in kept:
        np.testing.assert_array_equal(tiles_of(got)[index], tiles_of(first)[index])
    far = (picture.astype(np.int16) + 30).clip(0, 255).astype(np.uint8)  # beyond it: the flat path
    kinds = network_or_flat(upscale(reusing, far), far)
    assert None not in kinds.values() and "flat" in kinds.values()


def test_a_new_size_that_does_not_fit_starts_as_the_flat_path():
    reusing = budgeted(2 * ONE_BLOCK)
    upscale(reusing, textured())  # whole: the rate is learnt
    larger = textured(128, 160, seed=3)
    kinds = network_or_flat(upscale(reusing, larger), larger)
    assert None not in kinds.values() and list(kinds.values()).count("network") <= 8
    assert reusing.stats.full_frames == 1  # it did not run whole
    for _ in range(20):
        got = upscale(reusing, larger)
    np.testing.assert_array_equal(got, upscale(TimedBox(Clock()), larger))


def test_deeper_samples_under_a_budget():
    reusing = budgeted(2 * ONE_BLOCK)
    frames = [frame.astype(np.uint16) * 4 for frame in moving_subject(6)]
    reusing.upscale(frames[0][None], bit_depth=10, full_range=False)
    for frame in frames[1:]:
        got = reusing.upscale(frame[None], bit_depth=10, full_range=False)[0]
        assert got.dtype == np.uint16
        assert None not in network_or_flat(got, frame).values()


def test_without_a_flat_path_the_budget_is_not_used():
    clock = Clock()
    reusing = TileReuse(TimedBox(clock), 3, POLICY, flat_path=None, clock=clock)
    reusing.budget_s = ONE_BLOCK
    frames = moving_subject(6)
    for frame in frames:
        np.testing.assert_array_equal(upscale(reusing, frame), upscale(TimedBox(Clock()), frame))
    assert reusing.stats.deferred == 0


def test_after_a_pan_what_waited_still_gets_the_network():
    """A pan moves the kept output, late tiles with it: they must wait where they went."""
    reusing = budgeted(2 * ONE_BLOCK, ReusePolicy(**{**POLICY.__dict__, "shift": True, "threshold": 4}))
    rng = np.random.default_rng(4)
    scene = rng.integers(0, 256, (96, 160), dtype=np.uint8)
    upscale(reusing, scene[:, :128])  # whole: the rate is learnt
    changed = scene.copy()
    changed[20:80, 10:120] = rng.integers(0, 256, (60, 110))  # most tiles late, many as the flat path
    upscale(reusing, changed[:, :128])
    assert reusing.stats.last_deferred > 0.5
    panned = changed[:, 16:144]  # the camera moves 16 pixels right: the picture, 16 left
    upscale(reusing, panned)
    assert reusing.stats.shifted_frames == 1
    for _ in range(30):
        got = upscale(reusing, panned)
    np.testing.assert_array_equal(got, upscale(TimedBox(Clock()), panned))


def test_a_kept_output_is_judged_against_the_input_it_came_from_not_its_neighbours():
    """A tile whose support creeps (+6 a frame, each step within the limit) while a neighbour that
    always changes takes the one block that fits: the neighbour's new input must not reset how far
    the tile's own output lags."""
    policy = ReusePolicy(**{**POLICY.__dict__, "threshold": 4, "block": 16, "step": 16, "stale_limit": 8})
    reusing = budgeted(1.5 * 22 * 22 * SECONDS_PER_PIXEL, policy)  # one 16x16 block with its radius
    base = textured()
    first = upscale(reusing, base)
    rng = np.random.default_rng(5)
    frame = base
    for step in range(1, 21):
        frame = frame.copy()
        # The first 3 columns of tile (2, 3), within the support of tile (2, 2), creep ...
        frame[32:48, 48:51] = np.clip(base[32:48, 48:51].astype(int) + 6 * step, 0, 255)
        frame[32:48, 54:64] = rng.integers(0, 256, (16, 10))  # ... and the rest of it changes
        got = upscale(reusing, frame)
        if np.array_equal(tiles_of(got)[2, 2], tiles_of(first)[2, 2]):  # kept from the first frame
            assert 6 * step <= policy.stale_limit


def test_turning_the_budget_off_computes_what_waited_once():
    clock = Clock()
    reusing = budgeted(ONE_BLOCK)
    reusing.inner.clock = reusing._clock = clock
    frames = moving_subject(4)
    for frame in frames:
        upscale(reusing, frame)
    assert reusing.stats.last_deferred > 0
    reusing.budget_s = None
    got = upscale(reusing, frames[-1])  # what waited runs now
    np.testing.assert_array_equal(got, upscale(TimedBox(Clock()), frames[-1]))
    before = clock.now
    upscale(reusing, frames[-1])
    assert clock.now == before  # and nothing after


def test_a_frame_that_is_not_whole_tiles_never_leaves_a_tile_half_computed():
    """At 100 lines the last piece of a column reaches back into tile row 4: when that piece gets
    the network and tile row 4's own block waits, the tile must wait whole, not keep old rows."""
    reusing = budgeted(ONE_BLOCK)
    base = textured(100, 64, seed=1)
    upscale(reusing, base)  # whole: the rate is learnt
    first = base.copy()
    first[4:10, 4:10] = 255 - first[4:10, 4:10]
    first[99, 36:44] = 255 - first[99, 36:44]
    upscale(reusing, first)  # tile (0, 0) gets the one block; the bottom row waits
    second = first.copy()
    second[99, 36:44] = 255 - second[99, 36:44]
    second[70:74, 36:44] = 255 - second[70:74, 36:44]  # rows of tile row 4 the reaching-back piece covers
    for _ in range(4):
        got = upscale(reusing, second)
        assert None not in network_or_flat(got, second).values()
    for _ in range(8):
        got = upscale(reusing, second)
    np.testing.assert_array_equal(got, upscale(TimedBox(Clock()), second))
