"""The one-slot handoff keeps only the newest frame and counts what it replaced."""

import pytest

from srpipe.default_plugins.live.feed import FrameFeed, LatestFrame, TimedFrame
from srpipe.media import Source
from srpipe.plugin_guard import PluginExit

from live_helpers import grey_frame


def timed(index):
    return TimedFrame(grey_frame(index), float(index))


def test_newest_frame_wins_and_replaced_ones_count_as_dropped():
    slot = LatestFrame()
    for index in range(3):
        slot.put(timed(index))
    assert slot.take(0.01).frame.pts == 2
    assert (slot.put_count, slot.dropped) == (3, 2)
    assert slot.take(0.01) is None and not slot.finished


def test_end_is_seen_after_the_last_frame_and_errors_are_raised_in_the_taker():
    slot = LatestFrame()
    slot.put(timed(0))
    slot.end()
    assert not slot.finished
    assert slot.take(0.01).frame.pts == 0
    assert slot.finished
    failed = LatestFrame()
    failed.end(RuntimeError("decoder broke"))
    with pytest.raises(RuntimeError, match="decoder broke"):
        failed.take(0.01)


def test_discarding_the_waiting_frame_counts_it():
    slot = LatestFrame()
    slot.discard()
    slot.put(timed(0))
    slot.discard()
    assert (slot.put_count, slot.dropped) == (1, 1) and slot.take(0.01) is None


def test_a_sources_system_exit_is_raised_in_the_taker_as_an_error_of_the_plugin():
    """A SystemExit in the reader thread ended live without a word."""

    class Exiting(Source):
        def items(self):
            yield grey_frame(0)
            raise SystemExit(3)

    feed = FrameFeed(Exiting(), paced=False)
    feed.start()
    assert feed.slot.take(5).frame.pts == 0
    with pytest.raises(PluginExit) as raised:
        feed.slot.take(5)
    assert isinstance(raised.value.__cause__, SystemExit) and raised.value.__cause__.code == 3
