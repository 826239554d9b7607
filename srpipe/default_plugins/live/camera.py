"""Cameras as sources: ``camera:0``, ``camera:/dev/video0`` or ``camera:NAME``.

A camera opens through PyAV's capture input for the platform (v4l2 on Linux,
avfoundation on macOS, dshow on Windows); if that fails, through OpenCV's
``VideoCapture``. Capture options go after ``?``: ``camera:0?video_size=1280x720&framerate=30``.
"""

from __future__ import annotations

import contextlib
import glob
import sys
import time
from fractions import Fraction
from pathlib import Path
from typing import Iterator
from urllib.parse import parse_qsl

import av
import cv2

from srpipe.default_plugins.live.display import matrix_for
from srpipe.errors import SrpipeError
from srpipe.frames import Frame
from srpipe.images import quiet_stderr
from srpipe.media import Source
from srpipe.video import chroma_location, ffmpeg_log, frame_from_av

SCHEME = "camera:"
INPUT_FORMATS = {"linux": "v4l2", "darwin": "avfoundation", "win32": "dshow"}
LIST_HINT = "list the cameras with 'srpipe live --list-cameras'"
MILLISECONDS = Fraction(1, 1000)


def parse_location(location: str) -> tuple[str, dict[str, str]]:
    """The device and the capture options of a ``camera:DEVICE?key=value`` location."""
    device, _, query = location[len(SCHEME):].partition("?")
    if not device:
        raise SrpipeError(f"{location} names no camera; use camera:0 or camera:/dev/video0 ({LIST_HINT})")
    return device, dict(parse_qsl(query))


def capture_name(device: str, platform: str = sys.platform) -> str:
    """What the platform's capture input calls ``device``."""
    if platform == "darwin":
        return device if ":" in device else f"{device}:none"  # video only
    if platform == "win32":
        return device if device.startswith("video=") else f"video={device}"
    return f"/dev/video{device}" if device.isdigit() else device


class PyAVCamera(Source):
    """Frames from an FFmpeg capture input (``input_format`` such as v4l2), as the device gives them."""

    is_file = False

    def __init__(self, location: str, device: str, input_format: str, options: dict[str, str]):
        self.location = location
        self.container = av.open(device, format=input_format, options=options)
        if not self.container.streams.video:
            self.container.close()
            raise SrpipeError(f"{location} has no video stream")
        context = self.container.streams.video[0].codec_context
        self.width, self.height = context.width, context.height
        self.chroma_location = chroma_location(self.container.streams.video[0])  # an MJPEG webcam's: centred

    def items(self) -> Iterator[Frame]:
        for video_frame in self.container.decode(video=0):
            yield frame_from_av(video_frame, self.chroma_location)

    def close(self) -> None:
        self.container.close()


class OpenCVCamera(Source):
    """Frames from ``cv2.VideoCapture`` (a camera index or anything it opens), timed on arrival."""

    is_file = False

    def __init__(self, location: str, device: str):
        self.location = location
        with quiet_stderr():  # OpenCV and its FFmpeg log every backend they try
            self.capture = cv2.VideoCapture(int(device) if device.isdigit() else device)
        if not self.capture.isOpened():
            raise OSError("OpenCV cannot open it either")
        self.width = int(self.capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height = int(self.capture.get(cv2.CAP_PROP_FRAME_HEIGHT))

    def items(self) -> Iterator[Frame]:
        start, pts = time.perf_counter(), -1
        while True:
            ok, bgr = self.capture.read()
            if not ok:
                return
            frame = bgr_to_frame(bgr)
            # the time it came, in milliseconds; frames read less than one apart (a burst) a tick apart
            pts = max(pts + 1, round((time.perf_counter() - start) / MILLISECONDS))
            frame.pts, frame.time_base = pts, MILLISECONDS
            yield frame

    def close(self) -> None:
        self.capture.release()


def bgr_to_frame(bgr) -> Frame:
    """A Y'CbCr frame (4:2:0, or 4:4:4 for odd sizes) of a BGR image, limited range."""
    height, width = bgr.shape[:2]
    layout = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
    video_frame = av.VideoFrame.from_ndarray(bgr, format="bgr24")
    return frame_from_av(video_frame.reformat(format=layout, dst_colorspace=matrix_for(height)))


def open_camera(location: str) -> Source:
    """The camera of a ``camera:`` location, through PyAV, else OpenCV; a one-line error if neither opens it."""
    device, options = parse_location(location)
    input_format = INPUT_FORMATS.get(sys.platform, "v4l2")
    try:
        return PyAVCamera(location, capture_name(device), input_format, options)
    except (av.FFmpegError, OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
    try:
        return OpenCVCamera(location, device)
    except OSError:
        pass
    raise SrpipeError(
        f"cannot open camera {device} ({reason}); check that it is connected and not in use by another program, "
        f"and {LIST_HINT}"
    )


def list_cameras(platform: str = sys.platform) -> list[str]:
    """One line per camera: its location for ``--camera`` and what the system calls it."""
    if platform.startswith("linux"):
        lines = []
        for path in sorted(glob.glob("/dev/video*"), key=lambda p: (len(p), p)):
            name_file = Path("/sys/class/video4linux") / Path(path).name / "name"
            name = name_file.read_text().strip() if name_file.exists() else ""
            lines.append(f"{path.removeprefix('/dev/video')}\t{path}\t{name}")
        return lines
    return _ffmpeg_device_list(INPUT_FORMATS.get(platform, "dshow"))


def _ffmpeg_device_list(input_format: str) -> list[str]:
    """The device list that avfoundation and dshow print when asked to (they have no other API)."""
    with ffmpeg_log(av.logging.INFO, local=True) as logs, contextlib.suppress(av.FFmpegError, OSError, ValueError):
        av.open("dummy" if input_format == "dshow" else "", format=input_format, options={"list_devices": "true"})
    return [message.rstrip() for _, _, message in logs if message.strip()]
