"""Each pixel's work done once across frames: tile reuse for upscalers that declare their
receptive radius.

A fixed camera sends the same background frame after frame; a network that upscales it
anew each time spends most of its work on pixels it has already done. :class:`TileReuse`
wraps an upscaler and, frame by frame, runs it only on the tiles whose input changed:

- It keeps the input each output tile was computed from (``basis``). A pixel whose value
  differs from its basis by more than ``threshold`` (codec noise) has *changed*; a tile is
  computed again when a changed pixel lies in its *support*, the tile grown by the
  upscaler's receptive radius. The changed pixels' basis then takes their new values.
  Every output pixel is therefore what the upscaler gives for an input within
  ``threshold`` of its basis, and the current input is within ``threshold`` of the basis
  too: the error does not grow with time, and with ``threshold`` 0 the output is the
  upscaler's own.
- A change within ``threshold`` still counts where the picture *creeps*: a slow pan or drift
  by a fraction of a pixel a frame moves each pixel of smooth content by less than the
  threshold, and kept outputs would lag behind the picture, by up to the threshold, on clean
  content whose own error is far smaller (docs/speed.md). A tile that no pixel left by more
  than the threshold is judged on its own: its change crept if it exceeds ``creep_activity``
  times the tile's noise (Immerkaer's estimate: smooth content shows small moves, a noisy wall
  hides them), and a sub-pixel move (the Lucas-Kanade fit of the change to the picture's
  gradients) explains more of it than it leaves, and at least ``creep_floor`` code values.
  Sensor and codec noise fit no move, so a fixed camera keeps its reuse. The pixels of a tile
  that crept that changed by more than a code value then count as changed.
- Tiles to compute run in rectangles (each group of touching tiles as its bounding box or
  in bands, whichever reads fewer pixels), cut into blocks of at most ``block`` pixels a
  side in steps of ``step`` (few input shapes), each read with the receptive radius as halo
  and clamped to the frame, so that inside the block the output is what the whole frame
  gives (frame edges included); for an upscaler that works on blocks of pixels, each read
  starts on its grid (its ``crop_alignment``).
- Flat tiles (each pixel's support spans at most ``flat_range`` code values; at radius 0,
  the tile does) take the upscaler's ``flat_path`` where it declares one (a residual
  network's bicubic): on flat input the
  network adds next to nothing (the shipped ESPCN x2 on uniform noise spanning 8 code
  values: 0.3 of a code value on average, at most 3).
- Where much of the picture changed, it may have moved as a whole (a pan, a scrolled page):
  the shift between the frames is measured (phase correlation) and, rounded to whole pixels,
  the kept input and output are moved by it, as if the frames before had been taken there.
  Convolutions commute with whole-pixel shifts, so only the strips the shift brought in or
  that lay at a frame edge (where the network saw its padding) are invalid; the pixels
  then decide as before, and the move is kept only where it leaves fewer changed pixels.
  A network on blocks of pixels commutes only with shifts by whole blocks: other shifts
  are not followed.
- A frame with most tiles to compute (a cut, a zoom, a key frame) runs whole, and so does one
  whose blocks would cost more than the frame (changes scattered over it, as real cameras give:
  each block reads its halo, and each call costs beyond its pixels), and every
  ``refresh_frames``-th frame after a whole one; a new size or format starts afresh.
- With a time budget (``budget_s``, live preview: what the frame interval leaves), the network
  runs only on the blocks that fit in it (their time foretold from their cost at the rate its
  calls have shown): first those with a tile whose input moved too far to keep its output, then
  those whose tiles waited longest. The tiles of the rest wait for later frames: each keeps its
  output where the input over its support stayed within ``stale_limit`` of what that output was
  computed from (so within ``stale_limit`` + ``threshold`` of the input that gave it), else
  shows the flat path of this frame (bicubic: the picture as it is now, with less detail). Where
  a whole frame does not fit, a frame that would run whole runs its due tiles so too, a new stream
  starts with every tile due and no output to keep, and a refresh makes every tile wait; a
  followed shift keeps no output of a waiting tile (edges and what came in had other neighbours).

The wrapper decides from the pixels alone and reads no motion vectors or timestamps: a
stream without them, with nonsense ones, with reordered or duplicated frames is one more
sequence of pictures, and a wrong guess (a shift that does not fit) costs work, not quality.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from srpipe.models import Upscaler, UpscalerTraits, for_stream
from srpipe.pipeline import checked_upscale

CORRELATED = 256  # pixels a side of the window a shift is measured on
CREEP_SMALLEST = 8  # pixels a side of the smallest piece of a tile the creep test judges
# The weight of each frame's timing in the network's running rate (time budget): a first call 10x slow
# is forgotten within about ten frames
RATE_WEIGHT = 0.2


@dataclass(frozen=True)
class ReusePolicy:
    """How :class:`TileReuse` trades work for exactness (values in 8-bit code values, scaled
    for deeper samples)."""

    reuse: bool = True  # unchanged tiles keep the previous frame's output
    flat: bool = True  # flat tiles take the upscaler's flat path, where it has one
    tile: int = 16  # LR pixels a side of the unit of reuse
    threshold: int = 4  # a pixel that moved by at most this is unchanged (codec and sensor noise) ...
    creep: bool = True  # ... unless the picture crept there by a fraction of a pixel (the module's text)
    creep_activity: float = 4.0  # a creeping change exceeds this many times the tile's noise
    creep_floor: float = 0.3  # ... and a sub-pixel move explains at least this much of it (RMS)
    flat_range: int = 8  # a support spanning at most this is flat (what the network adds: the module's text)
    shift: bool = True  # try a whole-picture shift where much changed
    shift_share: float = 0.2  # ... that is, where more than this share of the pixels changed
    max_shift: int = 64  # LR pixels; a larger move is taken for a cut
    full_share: float = 0.6  # with more of the frame's tiles to run through the network, the whole frame runs
    # ... and so it does where its blocks would read more than ``whole_cost`` of the frame's pixels, each
    # call counted as ``call_pixels`` more (what a call costs beyond its pixels: docs/speed.md)
    whole_cost: float = 0.8
    call_pixels: int = 2048
    refresh_frames: int = 120  # a whole frame at least this often (4 s at 30 fps)
    # With a time budget, a tile left to later frames keeps its output while its input is within this
    # of what the output was computed from (a still background under noise); else it shows the flat path
    stale_limit: int = 8
    # Rectangles are upscaled in blocks of at most ``block`` pixels a side, in steps of ``step``,
    # each read with the radius around it (clamped to the frame): an engine that prepares itself
    # anew for each input shape (OpenVINO: docs/speed.md) then sees a few shapes, not one a call.
    block: int = 128
    step: int = 32


@dataclass
class ReuseStats:
    """Tiles by what became of them, over a run; ``last_*``: the latest frame's shares."""

    frames: int = 0
    tiles: int = 0
    reused: int = 0
    flat: int = 0
    full_frames: int = 0
    shifted_frames: int = 0  # frames whose kept picture was moved by a pan or scroll
    # Tiles left to later frames under a time budget (live preview, which reports them itself): shown
    # as the flat path, or as the output kept where the input stayed within ``stale_limit``
    deferred: int = 0
    last_reused: float = 0.0
    last_flat: float = 0.0
    last_deferred: float = 0.0

    @property
    def computed(self) -> int:
        return self.tiles - self.reused - self.flat - self.deferred

    def share(self, count: int) -> float:
        return count / self.tiles if self.tiles else 0.0

    def to_dict(self) -> dict:
        return {"frames": self.frames, "tiles": self.tiles, "reused": round(self.share(self.reused), 4),
                "flat": round(self.share(self.flat), 4), "computed": round(self.share(self.computed), 4),
                "full_frames": self.full_frames, "shifted_frames": self.shifted_frames}

    def describe(self) -> str:
        """``reused 83%, flat 4%``: the run's shares, for summaries (and ``deferred 2%`` where a
        time budget left tiles to later frames)."""
        deferred = f", deferred {self.share(self.deferred):.0%}" if self.deferred else ""
        return f"reused {self.share(self.reused):.0%}, flat {self.share(self.flat):.0%}{deferred}"


@dataclass
class _State:
    """What the last frames left: the key of their layout, the input each output pixel was
    computed from, the output, and the frames since the last whole one."""

    key: tuple
    basis: np.ndarray
    output: np.ndarray
    age: int = 0
    waiting: _Waiting | None = None  # with a time budget


@dataclass
class _Waiting:
    """Under a time budget, per tile (grid ``frames.shape``): the frames it has waited for the
    network (0: its output is the network's, or the flat path as the plan chose); whether its
    output may be kept while it waits; and the input that output was computed from, over the
    tile's support (``tile`` + 2 ``radius`` a side, the frame's edges repeated), to tell how far
    the input has moved from it since. A shift of the picture does not move the supports: it
    makes every output unkeepable until computed anew (:meth:`moved`)."""

    frames: np.ndarray
    keepable: np.ndarray
    supports: np.ndarray
    tile: int
    radius: int

    @classmethod
    def start(cls, grid: tuple[int, int], tile: int, radius: int, dtype) -> _Waiting:
        side = tile + 2 * radius
        return cls(np.zeros(grid, np.int32), np.zeros(grid, bool), np.zeros((*grid, side, side), dtype), tile, radius)

    def windows(self, y: np.ndarray) -> np.ndarray:
        """Each tile's support in ``y`` (a view)."""
        (rows, cols), t, r = self.frames.shape, self.tile, self.radius
        framed = cv2.copyMakeBorder(y, r, rows * t - y.shape[0] + r, r, cols * t - y.shape[1] + r, cv2.BORDER_REPLICATE)
        return np.lib.stride_tricks.sliding_window_view(framed, (t + 2 * r, t + 2 * r))[::t, ::t]

    def drift(self, windows: np.ndarray, tiles: np.ndarray) -> np.ndarray:
        """For ``tiles`` (a mask), the largest change of their support since their output was computed."""
        drift = np.zeros(tiles.shape, np.int64)
        if tiles.any():
            now, then = windows[tiles], self.supports[tiles]
            side = now.shape[-1]
            changes = cv2.absdiff(now.reshape(-1, side), then.reshape(-1, side))  # as 2-D planes: OpenCV's
            drift[tiles] = changes.reshape(len(now), -1).max(axis=1)
        return drift

    def shown(self, windows: np.ndarray, tiles: np.ndarray) -> None:
        """``tiles`` show an output computed from these supports now."""
        self.supports[tiles] = windows[tiles]
        self.keepable |= tiles

    def moved(self, dx: int, dy: int, shape: tuple[int, int]) -> None:
        """The kept picture moved by (``dx``, ``dy``) pixels: a tile waits wherever the output of one
        that waited moved to, and no output is kept (edges and what came in were computed with other
        neighbours)."""
        waited = _shifted(_pixels(self.frames, self.tile, shape), dx, dy)
        self.frames = _tile_max(waited, self.tile)
        self.keepable[...] = False


class TileReuse:
    """An upscaler that runs ``inner`` only where the input changed (see the module's text).

    ``radius``: ``inner``'s receptive radius in LR pixels (its ``receptive_radius`` trait);
    ``alignment``: the grid its crops start on (its ``crop_alignment`` trait).
    ``flat_path``: an upscaler equal to ``inner`` on flat input, or None. ``clock``: what times
    ``inner``'s calls for the time budget (:attr:`budget_s`). ``name``: the model's, for errors
    in what ``inner`` and ``flat_path`` give."""

    def __init__(self, inner: Upscaler, radius: int, policy: ReusePolicy = ReusePolicy(),
                 flat_path: Upscaler | None = None, alignment: int = 1,
                 clock: Callable[[], float] = time.perf_counter, name: str = "model"):
        self.inner = inner
        self.name = name
        self.scale = inner.scale
        self.radius = radius
        self.alignment = alignment
        self.policy = policy
        self.flat_path = flat_path if policy.flat else None  # for flat tiles
        self.stand_in = flat_path  # for tiles waiting for the network under a time budget
        self.stats = ReuseStats()
        self._state: _State | None = None
        self._costs: dict = {}
        # Seconds the network may take per frame (live preview), or None: no limit. Only with a flat path.
        self.budget_s: float | None = None
        self._seconds_per_pixel: float | None = None  # what the network's calls took per pixel of cost
        self._clock = clock
        self._support = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)  # a pixel and what its output reads
        UpscalerTraits.of(inner).lend(self, "working_bytes_per_output_pixel", "working_bytes")

    # The inner upscaler's (:class:`UpscalerTraits`), settled as frames go through (which weights
    # run may be chosen on the first frame).
    @property
    def variant(self) -> str | None:
        return UpscalerTraits.of(self.inner).variant

    @property
    def backend(self) -> str | None:
        return UpscalerTraits.of(self.inner).backend

    @property
    def macs_per_lr_pixel(self) -> int | None:
        return UpscalerTraits.of(self.inner).macs_per_lr_pixel

    def upscale(self, luma: np.ndarray, *, bit_depth: int, full_range: bool) -> np.ndarray:
        """As ``inner.upscale``, frame after frame, each reusing what the ones before left."""
        first = self._frame(luma[0], bit_depth, full_range)
        out = np.empty((len(luma), *first.shape), first.dtype)
        out[0] = first
        for index in range(1, len(luma)):  # each copied before the next frame changes the kept output
            out[index] = self._frame(luma[index], bit_depth, full_range)
        return out

    def _frame(self, y: np.ndarray, bit_depth: int, full_range: bool) -> np.ndarray:
        t, r = self.policy.tile, self.radius
        height, width = y.shape
        grid = (-(-height // t), -(-width // t))
        self.stats.frames += 1
        self.stats.tiles += grid[0] * grid[1]
        state, key = self._state, (y.shape, y.dtype, bit_depth, full_range)
        if min(height, width) <= 2 * r:
            return self._whole(y, bit_depth, full_range, key)
        step = 1 << (bit_depth - 8)  # one 8-bit code value
        whole_fits = self._fits(y.size + self.policy.call_pixels)
        fresh = state is None or state.key != key
        if fresh and whole_fits:
            return self._whole(y, bit_depth, full_range, key)
        if fresh:  # too slow for the budget: every tile due, the flat path where the network has no time
            s = self.scale
            state = self._state = _State(key, y.copy(), np.zeros((height * s, width * s), y.dtype))
            refresh = False
        else:
            state.age += 1
            refresh = state.age >= self.policy.refresh_frames
            if refresh and whole_fits:
                return self._whole(y, bit_depth, full_range, key)
        if self._budgeted and state.waiting is None:
            state.waiting = _Waiting.start(grid, t, r, y.dtype)
            if not fresh:  # the outputs so far came from the kept input (within the threshold)
                state.waiting.shown(state.waiting.windows(state.basis), np.ones(grid, bool))
        if refresh:  # a whole frame does not fit: every tile waits for the network, keeping its output meanwhile
            state.age = 0
            state.waiting.frames = np.maximum(state.waiting.frames, 1)
        changed, shifted = np.ones(y.shape, bool), False
        if not fresh:
            changed = cv2.absdiff(y, state.basis) > self.policy.threshold * step
            # A shift must leave some pixel farther than the radius from the edges (and OpenCV's phase
            # correlation fails on a column of one pixel).
            can_shift = self.policy.shift and self.policy.reuse and min(height, width) > 2 * r + 1
            if can_shift and changed.mean() > self.policy.shift_share:
                moved = self._follow_shift(y, changed, self.policy.threshold * step)
                shifted, changed = moved is not changed, moved
        waited = state.waiting.frames if state.waiting is not None else None
        due, flat, network = self._plan(y, changed, step, waited)
        if network.sum() <= self.policy.full_share * network.size and self.policy.reuse and self.policy.creep \
                and not fresh:
            crept = self._crept(y, state.basis, due, step)  # only adds tiles: not needed on a frame that runs whole
            if crept.any():
                changed |= crept
                due, flat, network = self._plan(y, changed, step, waited)

        def cost(rows, cols):
            return self._cost(y.shape, rows, cols)

        if network.sum() > self.policy.full_share * network.size and whole_fits:
            return self._whole(y, bit_depth, full_range, key)
        by_network = _regions(network, cost)
        if sum(cost(rows, cols) for rows, cols in by_network) > self.policy.whole_cost * y.size and whole_fits:
            return self._whole(y, bit_depth, full_range, key)
        show_flat, deferred = self._compute_network(y, network, by_network, due, step, bit_depth, full_range)
        if flat.any() or show_flat.any():
            self._compute_flat(y, flat | show_flat, bit_depth, full_range)
        if not self._budgeted:  # what waited was computed now; the budget, if it comes back, starts afresh
            state.waiting = None
        np.copyto(state.basis, y, where=changed)
        reused, flat_count = int(due.size - due.sum()), int(flat.sum())
        self.stats.reused += reused
        self.stats.flat += flat_count
        self.stats.deferred += deferred
        self.stats.shifted_frames += shifted
        self.stats.last_reused, self.stats.last_flat = reused / due.size, flat_count / due.size
        self.stats.last_deferred = deferred / due.size
        return state.output

    def _compute_network(self, y, network, rectangles, due, step, bit_depth, full_range):
        """The tiles of ``network`` through the network, in the blocks of ``rectangles``. With a
        time budget, only the blocks that fit in it (at least one): first those with tiles whose
        input moved too far to keep their output, then those that waited longest; the tiles of
        the rest wait, keeping their output where the input stayed within ``stale_limit`` of what
        it was computed from, else showing the flat path. ``due``: every tile computed now, by
        either path. The tiles to show the flat path, and the count of tiles left waiting."""
        t, state = self.policy.tile, self._state
        blocks = [block for rows, cols in rectangles for block in self._blocks(y.shape, rows, cols)]
        if not self._budgeted:
            for block in blocks:
                self._compute_block(y, self.inner, network, *block, bit_depth, full_range)
            return np.zeros_like(network), 0

        def block_tiles(block):  # the tiles a block writes to, in whole or in part
            return _box_tiles(block[0], t)

        def whole_tiles(block):  # the tiles it gives whole (a frame's last piece reaches back into a tile)
            return _box_tiles(block[0], t, whole=True)

        def block_cost(block):
            return self._read_cost(block[1])

        # Tiles whose kept output would lie too far from the input, over their support
        waiting = state.waiting
        windows = waiting.windows(y)
        checked = network & waiting.keepable
        stale = network & ~checked | checked & (waiting.drift(windows, checked) > self.policy.stale_limit * step)
        chosen, spent = [], 0
        for block in sorted(blocks, key=lambda block: (-int(stale[block_tiles(block)].any()),
                                                       -int(waiting.frames[block_tiles(block)].max()))):
            if not chosen or self._fits(spent + block_cost(block)):
                chosen.append(block)
                spent += block_cost(block)
        late = network.copy()
        for block in chosen:
            late[whole_tiles(block)] = False
        started = self._clock()
        for block in chosen:  # not into late tiles: a block given part of one leaves it whole as it was
            self._compute_block(y, self.inner, network & ~late, *block, bit_depth, full_range)
        if chosen:
            self._learn_rate(self._clock() - started, sum(map(block_cost, chosen)))
        waiting.frames[...] = np.where(late, waiting.frames + 1, 0)
        waiting.shown(windows, due & ~(late & ~stale))  # all but the kept
        return late & stale, int(late.sum())

    @property
    def _budgeted(self) -> bool:
        return self.budget_s is not None and self.stand_in is not None

    def _fits(self, pixels: int) -> bool:
        """Whether the network's work on ``pixels`` (a cost, :meth:`_cost`) fits in the time budget,
        at the rate its calls have shown (so far none: it fits)."""
        return not self._budgeted or self._seconds_per_pixel is None or \
            pixels * self._seconds_per_pixel <= self.budget_s

    def _learn_rate(self, seconds: float, pixels: int) -> None:
        rate = seconds / pixels
        known = self._seconds_per_pixel
        self._seconds_per_pixel = rate if known is None else known + RATE_WEIGHT * (rate - known)

    def _follow_shift(self, y: np.ndarray, changed: np.ndarray, threshold: int) -> np.ndarray:
        """Move the kept input and output by the whole-pixel shift from the kept input to ``y``
        where that leaves fewer changed pixels; the changed pixels after the move, or ``changed``
        itself where nothing moved."""
        state, r, s = self._state, self.radius, self.scale
        height, width = y.shape
        dy, dx, _ = measure_shift(state.basis, y)
        # On pictures that do not match, the peak is noise and may lie beyond the frame: a shift
        # that leaves no pixel valid is taken for a cut.
        if (dx, dy) == (0, 0) or max(abs(dx), abs(dy)) > self.policy.max_shift or \
                abs(dx) >= width - 2 * r or abs(dy) >= height - 2 * r or dx % self.alignment or dy % self.alignment:
            return changed
        basis = _shifted(state.basis, dx, dy)
        # Invalid: what came in, what lay within the radius of the old frame's edges, and the
        # new frame's own edges (their outputs came from the old interior, with no padding).
        valid = np.zeros(y.shape, np.uint8)
        valid[r + max(dy, 0):height - r + min(dy, 0), r + max(dx, 0):width - r + min(dx, 0)] = 1
        moved = (cv2.absdiff(y, basis) > threshold) | (valid == 0)
        if moved.sum() >= 0.5 * changed.sum():
            return changed
        state.basis, state.output = basis, _shifted(state.output, dx * s, dy * s)
        if state.waiting is not None:
            state.waiting.moved(dx, dy, y.shape)
        return moved

    def _plan(self, y: np.ndarray, changed: np.ndarray, step: int, waiting: np.ndarray | None):
        """The tiles (masks of the tile grid) due to be computed again, the pixels ``changed``
        being in their support, or ``waiting`` for the network (a time budget left them); of
        those, the flat ones and the ones for the network."""
        t = self.policy.tile
        if self.policy.reuse:
            touched = cv2.dilate(changed.view(np.uint8), self._support)  # pixels whose support holds a change
            due = _tile_max(touched, t) > 0
            if waiting is not None:
                due |= waiting > 0
        else:
            due = np.ones((-(-y.shape[0] // t), -(-y.shape[1] // t)), bool)
        flat = np.zeros_like(due)
        if self.flat_path is not None and due.any():
            # Flat where what the model reads is: each pixel's support (a residual network adds
            # little wherever that is flat, gentle gradients included). A model of radius 0 reads
            # each pixel alone, which is never textured: its tiles are judged whole.
            if self.radius:
                spread = _tile_max(cv2.subtract(cv2.dilate(y, self._support), cv2.erode(y, self._support)), t)
            else:
                spread = _tile_max(y, t) - ~_tile_max(~y, t)  # the complement's largest: the smallest
            flat = due & (spread <= self.policy.flat_range * step)
        return due, flat, due & ~flat

    def _crept(self, y: np.ndarray, basis: np.ndarray, due: np.ndarray, step: int) -> np.ndarray:
        """The pixels of ``y`` that changed from ``basis`` by more than a code value (``step``)
        on tiles, not yet ``due``, where the picture crept (the module's text)."""
        policy, t = self.policy, self.policy.tile
        difference = cv2.absdiff(y, basis)
        largest = _tile_max(difference, t)
        # A sliver of a tile at the frame's bottom or right edge is left out: filled out by copies
        # of its last row or column, it would look noiseless and take sensor noise for a move
        whole = [np.minimum(length - np.arange(0, length, t), t) >= min(t, CREEP_SMALLEST) for length in y.shape]
        quiet = ~due & (largest > step) & np.outer(*whole)
        crept = _creeping_tiles(y, basis, largest, quiet, policy, t, step)
        return (difference > step) & crept.repeat(t, axis=0).repeat(t, axis=1)[:y.shape[0], :y.shape[1]]

    def warm_up(self, width: int, height: int) -> None:
        """Run ``inner`` once on every input shape frames of ``width`` x ``height`` can give it
        (the whole frame, and each size of block), so that an engine that prepares itself per
        shape (OpenVINO) has done so before the first frame: for live preview, where that
        preparation would be the first frames' latency. The state is left as it was, the inner
        upscaler's too: it is a copy for a stream of its own that warms up (``for_stream``), which
        shares what was loaded and prepared."""
        step = self.policy.step
        sides = [{min(read_span(min(size, length), length, self.radius, self.alignment) + more, length)
                  for size in range(step, self.policy.block + step, step) for more in range(self.alignment)}
                 for length in (height, width)]
        inner = for_stream(self.inner, f"model {self.name!r}")
        for rows, cols in [(height, width), *((h, w) for h in sides[0] for w in sides[1])]:
            inner.upscale(np.zeros((1, rows, cols), np.uint8), bit_depth=8, full_range=False)

    def _whole(self, y, bit_depth, full_range, key) -> np.ndarray:
        """The whole frame through ``inner``; the state starts from it."""
        started = self._clock()
        basis = y.copy()  # before the call: an upscaler may write over its input (plugins.md)
        output = checked_upscale(self.inner, y[None], self.scale, bit_depth, full_range, f"model {self.name!r}")[0]
        self._learn_rate(self._clock() - started, y.size + self.policy.call_pixels)
        self._state = _State(key, basis, output)
        self.stats.full_frames += 1
        self.stats.last_reused = self.stats.last_flat = self.stats.last_deferred = 0.0
        return output

    def _blocks(self, shape, rows: tuple[int, int], cols: tuple[int, int]):
        """For tiles ``rows`` x ``cols`` (tile indices, end excluded): the blocks that upscale
        them, each as the pixels it gives (top, bottom, left, right) and the pixels it reads
        (y0, y1, x0, x1)."""
        t, b, step = self.policy.tile, self.policy.block, self.policy.step
        height, width = shape
        r, a = self.radius, self.alignment
        for top, bottom, y0, y1 in _pieces(rows[0] * t, min(rows[1] * t, height), height, b, step, r, a):
            for left, right, x0, x1 in _pieces(cols[0] * t, min(cols[1] * t, width), width, b, step, r, a):
                yield (top, bottom, left, right), (y0, y1, x0, x1)

    def _cost(self, shape, rows, cols) -> int:
        """What upscaling tiles ``rows`` x ``cols`` costs, in pixels: those its blocks read, and
        ``call_pixels`` a block (kept: the same rectangles come back frame after frame, and the
        plans of :func:`_regions` weigh many)."""
        key = (shape, rows, cols)
        if key not in self._costs:
            if len(self._costs) >= 4096:
                self._costs.clear()
            self._costs[key] = sum(self._read_cost(read) for _, read in self._blocks(shape, rows, cols))
        return self._costs[key]

    def _read_cost(self, read: tuple[int, int, int, int]) -> int:
        """What one call costs, in pixels: those it reads (y0, y1, x0, x1), and ``call_pixels``."""
        y0, y1, x0, x1 = read
        return (y1 - y0) * (x1 - x0) + self.policy.call_pixels

    def _compute_flat(self, y, mask, bit_depth, full_range) -> None:
        """The tiles of ``mask`` through the flat path, a call for each group of touching tiles,
        over its bounding box: a bicubic costs less per pixel than a call (its halo, 2 pixels, is
        within the radius)."""
        t, r = self.policy.tile, self.radius
        height, width = y.shape
        count, _, boxes, _ = cv2.connectedComponentsWithStats(mask.view(np.uint8), connectivity=8)
        for left, top, columns, rows, _ in boxes[1:count].tolist():
            box = (top * t, min((top + rows) * t, height), left * t, min((left + columns) * t, width))
            read = (max(box[0] - r, 0), min(box[1] + r, height), max(box[2] - r, 0), min(box[3] + r, width))
            self._compute_block(y, self.stand_in, mask, box, read, bit_depth, full_range, "the flat path of ")

    def _compute_block(self, y, upscaler, mask, box, read, bit_depth, full_range, path: str = "") -> None:
        """The tiles of ``mask`` in the block that gives ``box`` (top, bottom, left, right) from
        ``read`` (y0, y1, x0, x1) through ``upscaler``, written into the output. Only those: a
        block may hold tiles of the other path (a textured tile amid flat ones) or tiles that
        are not due. ``path``: which upscaler it is, in errors (``"the flat path of "``)."""
        s, t = self.scale, self.policy.tile
        (top, bottom, left, right), (y0, y1, x0, x1) = box, read
        # a copy, always: an upscaler may write over its input, and y is the reference of later frames
        part = checked_upscale(upscaler, y[None, y0:y1, x0:x1].copy(), s, bit_depth, full_range,
                               f"{path}model {self.name!r}")[0]
        given = part[(top - y0) * s:(bottom - y0) * s, (left - x0) * s:(right - x0) * s]
        if mask[_box_tiles(box, t)].all():
            self._state.output[top * s:bottom * s, left * s:right * s] = given
            return
        chosen = mask[np.ix_(np.arange(top, bottom) // t, np.arange(left, right) // t)]
        np.copyto(self._state.output[top * s:bottom * s, left * s:right * s], given,
                  where=_pixels(chosen, s, given.shape))


def measure_shift(previous: np.ndarray, current: np.ndarray) -> tuple[int, int, float]:
    """The whole-pixel ``(dy, dx)`` by which the picture moved from ``previous`` to ``current``
    (``current[y, x]`` is about ``previous[y - dy, x - dx]``), by phase correlation, and the
    correlation peak's response (near 0 where nothing could be told). Measured on the middle of
    the picture: a quarter of the cost of the whole 640x480 frame."""
    height, width = current.shape
    top, left = max(0, (height - CORRELATED) // 2), max(0, (width - CORRELATED) // 2)
    window = (slice(top, top + CORRELATED), slice(left, left + CORRELATED))
    (dx, dy), response = cv2.phaseCorrelate(previous[window].astype(np.float32), current[window].astype(np.float32))
    return round(dy), round(dx), response


def _creeping_tiles(y: np.ndarray, basis: np.ndarray, largest: np.ndarray, quiet: np.ndarray,
                    policy: ReusePolicy, tile: int, step: int) -> np.ndarray:
    """Which of the ``quiet`` tiles (a mask of the tile grid: no pixel changed by more than the
    threshold) saw the picture creep from ``basis`` to ``y`` (the module's text); ``largest``:
    each tile's largest absolute change."""
    # The planes with a pixel around them and filled out to whole tiles, by their edge pixels
    height, width = y.shape
    framed = [cv2.copyMakeBorder(plane, 1, 1 - height % -tile, 1, 1 - width % -tile, cv2.BORDER_REPLICATE)
              for plane in (basis, y)]
    # Immerkaer's noise estimate (1996): this kernel is blind to ramps, and its response to white
    # noise of deviation s has a mean absolute value of 6 * sqrt(2 / pi) * s. (8-bit samples go by
    # 16-bit integers, faster than floats, each tile's mean then in whole numbers: to
    # within 0.1 code values of noise; OpenCV has no such path for deeper samples.)
    depth = cv2.CV_16S if y.dtype == np.uint8 else cv2.CV_32F
    response = np.abs(cv2.filter2D(framed[0], depth, _NOISE_KERNEL))[1:-1, 1:-1]
    noise = cv2.resize(response, quiet.shape[::-1], interpolation=cv2.INTER_AREA) * (np.sqrt(np.pi / 2) / 6)
    showing = quiet & (largest > np.clip(policy.creep_activity * noise, step, policy.threshold * step))
    crept = np.zeros(quiet.shape, bool)
    if not showing.any():
        return crept
    # Lucas-Kanade on each tile that shows the change, read with a pixel around it: the move v
    # that best gives change = -v . gradient (Sobel), and the mean square of the change it
    # explains, g' S^-1 g, with S the means of the gradients' products and g of the gradients
    # times the change (at most the change's own mean square). Every other pixel of every other
    # row is enough to tell a move from noise (a fit to noise explains 2 of its 64 parts), and
    # costs a quarter.
    before, after = (np.lib.stride_tricks.sliding_window_view(plane, (tile + 2, tile + 2))[::tile, ::tile][showing]
                     .astype(np.float32) for plane in framed)

    def at(dy, dx):  # the tiles' pixels before, moved by (dy, dx), each within -1..1
        return before[:, 1 + dy:1 + dy + tile:2, 1 + dx:1 + dx + tile:2]

    def mean(values):
        return values.mean(axis=(1, 2))

    change = after[:, 1:-1:2, 1:-1:2] - at(0, 0)
    dx = (at(-1, 1) + 2 * at(0, 1) + at(1, 1) - at(-1, -1) - 2 * at(0, -1) - at(1, -1)) / 8
    dy = (at(1, -1) + 2 * at(1, 0) + at(1, 1) - at(-1, -1) - 2 * at(-1, 0) - at(-1, 1)) / 8
    # S is steadied on its diagonal, not through its determinant: on a tile that varies one way
    # only (stripes, a ramp) the determinant is 0 while the move along that way is still told
    ridge = 1e-3 * step * step
    sxx, sxy, syy = mean(dx * dx) + ridge, mean(dx * dy), mean(dy * dy) + ridge
    gx, gy = mean(dx * change), mean(dy * change)
    explained = (syy * gx * gx - 2 * sxy * gx * gy + sxx * gy * gy) / (sxx * syy - sxy * sxy)
    unexplained = mean(change * change) - explained
    crept[showing] = (explained > (policy.creep_floor * step) ** 2) & (explained > unexplained)
    return crept


_NOISE_KERNEL = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)


def _shifted(plane: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """``plane`` moved ``dx`` right and ``dy`` down; what comes in is 0."""
    out = np.zeros_like(plane)
    height, width = plane.shape
    out[max(dy, 0):height + min(dy, 0), max(dx, 0):width + min(dx, 0)] = \
        plane[max(-dy, 0):height + min(-dy, 0), max(-dx, 0):width + min(-dx, 0)]
    return out


def _pieces(start: int, end: int, length: int, block: int, step: int, radius: int, alignment: int = 1):
    """Pieces (first, last) that cover ``start``-``end``: ``block`` long, the last rounded up
    to a multiple of ``step`` (reaching back, or over the end, as ``length`` allows), each with
    the span (read0, read1) read for it (:func:`read_span` long): the piece and ``radius`` on each
    side (or all of ``length``), moved inside 0-``length``, starting at a multiple of
    ``alignment``. A piece is then at least ``radius`` from each end of its span that is not an
    end of ``length``."""
    for first in range(start, end, block):
        size = min(-(-min(block, end - first) // step) * step, length)
        first = min(first, length - size)
        span = read_span(size, length, radius, alignment)
        low = min(max(first - radius, 0), length - span)
        read0 = low - low % alignment
        # Back on the grid, the span still reaches ``radius`` past the piece; at the end of
        # ``length`` it reaches the end
        yield first, first + size, read0, length if low == length - span else read0 + span


def read_span(size: int, length: int, radius: int, alignment: int) -> int:
    """How much :func:`_pieces` reads for a piece of ``size`` (at most ``alignment`` - 1 more at
    the end of ``length``): ``radius`` on each side, and room to start the read on the grid of
    ``alignment``; at most ``length``."""
    return min(size + 2 * radius + alignment - 1, length)


def _box_tiles(box: tuple[int, int, int, int], tile: int, whole: bool = False) -> tuple[slice, slice]:
    """The tiles (slices of the tile grid) that pixels ``box`` (top, bottom, left, right) touch, or
    with ``whole`` only those it holds whole (a box ending at the frame's edge holds its last,
    smaller tiles whole)."""
    top, bottom, left, right = box
    first = (-(-top // tile), -(-left // tile)) if whole else (top // tile, left // tile)
    return slice(first[0], (bottom - 1) // tile + 1), slice(first[1], (right - 1) // tile + 1)


def _pixels(tiles: np.ndarray, tile: int, shape: tuple[int, int]) -> np.ndarray:
    """A mask of the tile grid as a mask of the pixels of a plane of ``shape``."""
    return tiles.repeat(tile, axis=0).repeat(tile, axis=1)[:shape[0], :shape[1]]


def _tile_max(plane: np.ndarray, tile: int) -> np.ndarray:
    """The largest value in each ``tile`` x ``tile`` tile of ``plane``, a plane of values of
    at least 0 (the last row and column of tiles may be smaller); by reshaping (padded with
    zeros to whole tiles), faster than ``np.maximum.reduceat``."""
    height, width = plane.shape
    rows, cols = -(-height // tile), -(-width // tile)
    if (rows * tile, cols * tile) != (height, width):
        plane = cv2.copyMakeBorder(plane, 0, rows * tile - height, 0, cols * tile - width, cv2.BORDER_CONSTANT,
                                   value=0)
    across = plane.reshape(rows, tile, cols * tile).max(axis=1)
    return across.reshape(rows, cols, tile).max(axis=2)


def _regions(mask: np.ndarray, cost) -> list:
    """(rows, cols) of rectangles of tiles that cover the True tiles of ``mask``, each one call
    of the upscaler with its halo: for each group of touching tiles, its bounding box or bands
    of it (a rectangle for each run of columns that holds some of the group, cut to the rows
    that do), whichever ``cost(rows, cols)`` finds cheapest in all."""
    count, labels, boxes, _ = cv2.connectedComponentsWithStats(mask.view(np.uint8), connectivity=8)
    chosen = []
    for label in range(1, count):
        left, top, width, height, _ = boxes[label].tolist()
        group = labels[top:top + height, left:left + width] == label
        if group.all():  # bands of a full rectangle only add halos
            chosen.append(((top, top + height), (left, left + width)))
            continue
        plans = [_bands(group, band, top, left) for band in dict.fromkeys((height, 8, 4, 2, 1)) if band <= height]
        chosen += min(plans, key=lambda plan: sum(cost(rows, cols) for rows, cols in plan))
    return chosen


def _bands(group: np.ndarray, band: int, top: int, left: int) -> list:
    """The rectangles covering the True tiles of ``group`` in bands of ``band`` rows, placed at
    (``top``, ``left``)."""
    rectangles = []
    for first in range(0, group.shape[0], band):
        rows = group[first:first + band]
        columns = np.concatenate(([False], rows.any(axis=0), [False]))
        edges = np.flatnonzero(columns[1:] != columns[:-1])
        for start, end in zip(edges[::2].tolist(), edges[1::2].tolist()):
            held = np.flatnonzero(rows[:, start:end].any(axis=1))
            rectangles.append(((top + first + int(held[0]), top + first + int(held[-1]) + 1),
                               (left + start, left + end)))
    return rectangles


def with_reuse(upscaler: Upscaler, policy: ReusePolicy = ReusePolicy(), name: str = "model") -> Upscaler:
    """``upscaler``, of the model ``name``, wrapped in :class:`TileReuse` where it declares its
    receptive radius (:class:`srpipe.models.UpscalerTraits`), else itself."""
    traits = UpscalerTraits.of(upscaler)
    if traits.receptive_radius is None or not (policy.reuse or policy.flat):
        return upscaler
    return TileReuse(upscaler, traits.receptive_radius, policy, traits.flat_path, traits.crop_alignment, name=name)
