"""Camera locations, the PyAV and OpenCV camera paths, and sources from third-party plugins."""

import pytest

from srpipe import hookimpl
from srpipe.default_plugins.live.camera import OpenCVCamera, PyAVCamera, capture_name, open_camera, parse_location
from srpipe.default_plugins.live.session import run_live
from srpipe.errors import SrpipeError
from srpipe.frames import Frame
from srpipe.media import Source
from srpipe.testing import make_plugin_manager, make_test_video

from live_helpers import grey_frame


def test_locations_name_the_device_and_capture_options():
    assert parse_location("camera:0") == ("0", {})
    assert parse_location("camera:/dev/video2?video_size=1280x720&framerate=30") == (
        "/dev/video2", {"video_size": "1280x720", "framerate": "30"}
    )
    assert capture_name("0", "linux") == "/dev/video0"
    assert capture_name("/dev/video3", "linux") == "/dev/video3"
    assert capture_name("0", "darwin") == "0:none"
    assert capture_name("FaceTime HD Camera", "win32") == "video=FaceTime HD Camera"
    with pytest.raises(SrpipeError, match="names no camera"):
        parse_location("camera:")


def test_missing_camera_is_one_line_naming_it_and_how_to_list_cameras():
    with pytest.raises(SrpipeError) as caught:
        open_camera("camera:/dev/video-srpipe-missing")
    message = str(caught.value)
    assert "\n" not in message
    assert "camera /dev/video-srpipe-missing" in message and "srpipe live --list-cameras" in message


def test_pyav_capture_input_gives_frames():
    # lavfi stands in for v4l2/avfoundation/dshow: the same av.open(device, format=...) path
    with PyAVCamera("camera:test", "testsrc2=size=64x48:rate=25", "lavfi", {}) as camera:
        frames = [item for _, item in zip(range(3), camera.items())]
    assert all(isinstance(f, Frame) and (f.width, f.height) == (64, 48) for f in frames)
    assert not camera.is_file


def test_opencv_fallback_opens_what_the_capture_input_cannot(tmp_path):
    clip = make_test_video(tmp_path / "clip.mp4", width=64, height=48, frames=5, audio=False)
    with open_camera(f"camera:{clip}") as camera:  # v4l2 refuses a regular file; OpenCV reads it
        assert isinstance(camera, OpenCVCamera)
        frames = list(camera.items())
    assert len(frames) == 5 and frames[0].format.name == "yuv420p" and (frames[0].width, frames[0].height) == (64, 48)
    assert [f.pts for f in frames] == sorted(f.pts for f in frames)


def test_a_cameras_frames_read_in_a_burst_are_timed_one_after_the_other(tmp_path, monkeypatch):
    """Frames a driver gives back to back (the reader a frame late) were stamped the same
    millisecond, and live refused its own camera: 'timestamp 5 after 5'."""
    import types

    from srpipe.default_plugins.live import camera

    clip = make_test_video(tmp_path / "clip.mp4", width=64, height=48, frames=5, audio=False)
    monkeypatch.setattr(camera, "time", types.SimpleNamespace(perf_counter=lambda: 100.0))  # all at once
    with open_camera(f"camera:{clip}") as opened:
        assert [f.pts for f in opened.items()] == [0, 1, 2, 3, 4]
    assert run_live(f"camera:{clip}", window=False).read == 5


class ScreenSource(Source):
    is_file = False
    location = "screen:"

    def items(self):
        for index in range(8):
            yield grey_frame(index)


class ScreenPlugin:
    """A third-party source for a scheme srpipe does not know."""

    @hookimpl
    def open_source(self, location, options):
        return ScreenSource() if location == "screen:" else None


def test_a_plugin_source_plays_in_live():
    pm = make_plugin_manager()
    pm.register(ScreenPlugin(), name="screen")
    stats = run_live("screen:", window=False, pm=pm)
    assert stats.read == 8 and stats.shown + stats.dropped == 8 and stats.shown >= 1


def test_a_plugin_sources_malformed_frame_is_refused_naming_it():
    """live showed what upscale refuses: a frame larger than the source declared (memory was
    planned by the declared size), timestamps that go back."""

    class Oversized(ScreenSource):
        width, height = 32, 24

        def items(self):
            yield grey_frame(0)
            yield grey_frame(1, width=64, height=48)

    class Growing:
        @hookimpl
        def open_source(self, location, options):
            return Oversized() if location == "screen:" else None

    pm = make_plugin_manager()
    pm.register(Growing(), name="growing")
    with pytest.raises(SrpipeError, match=r"source Oversized \(screen:\) of plugin 'growing' .* declared "):
        run_live("screen:", window=False, pm=pm)
