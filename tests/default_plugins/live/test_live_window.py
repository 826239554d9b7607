"""The real highgui window under Xvfb: it shows the frames, and real key presses reach the loop."""

import ctypes
import ctypes.util
import os
import shutil
import subprocess
import sys
import time

import av
import cv2
import pytest

from srpipe.testing import make_test_video

from conftest import wait_for

pytestmark = [
    pytest.mark.skipif(shutil.which("Xvfb") is None,
                       reason="Xvfb is not installed (apt-get install xvfb; see .ci/apt-packages)"),
    pytest.mark.skipif(shutil.which("xdotool") is None,
                       reason="xdotool is not installed (apt-get install xdotool; see .ci/apt-packages)"),
]
SCREEN = (640, 480)


@pytest.fixture
def display():
    """A fresh X server; yields its DISPLAY name."""
    read_fd, write_fd = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", f"{SCREEN[0]}x{SCREEN[1]}x24", "-br", "-nolisten", "tcp"],
        pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    with os.fdopen(read_fd) as numbers:
        number = numbers.readline().strip()
    yield f":{number}"
    server.terminate()
    server.wait(timeout=10)


def grab(display):
    """The whole X screen as BGR, through FFmpeg's x11grab input."""
    with av.open(display, format="x11grab", options={"video_size": f"{SCREEN[0]}x{SCREEN[1]}"}) as screen:
        return next(screen.decode(video=0)).to_ndarray(format="bgr24")


def wait_for_window(display, live, seconds=30):
    """Wait until ``live``'s window has drawn on ``display`` (the screen is black before). Mapped
    on a busy machine by an X server with no window manager, Qt's window can stay black for good
    (one in four on two loaded cores), where mapped again it draws; a window manager maps each
    window itself. So after each few seconds of a black screen, the window is mapped again."""
    deadline = time.monotonic() + seconds
    map_at = time.monotonic() + 3
    while grab(display).std() < 5:
        if live.poll() is not None:
            raise AssertionError(f"srpipe live ended (exit {live.returncode}) before its window drew: "
                                 f"{live.stderr.read().decode(errors='replace')}")
        assert time.monotonic() < deadline, f"no window appeared in {seconds} s"
        if time.monotonic() > map_at:
            subprocess.run(["xdotool", "search", "--name", "srpipe live", "windowunmap", "--sync", "windowmap",
                            "--sync"], env={**os.environ, "DISPLAY": display}, capture_output=True, timeout=20)
            map_at = time.monotonic() + 3
        time.sleep(0.2)


def xdotool(display, *args, timeout=20):
    subprocess.run(["xdotool", *args], env={**os.environ, "DISPLAY": display}, check=True, timeout=timeout,
                   capture_output=True)


def test_window_shows_the_upscaled_frames_and_takes_keys(display, tmp_path):
    clip = make_test_video(tmp_path / "clip.mp4", width=96, height=64, frames=500, rate=25, audio=False)  # 20 s
    env = {**os.environ, "DISPLAY": display}
    live = subprocess.Popen(
        [sys.executable, "-m", "srpipe", "live", "--source", str(clip), "--screenshot-dir", str(tmp_path)],
        env=env, stderr=subprocess.PIPE,
    )
    try:
        wait_for_window(display, live)
        for attempt in range(4):  # on a busy machine the focus change can go unseen: asked for again
            try:
                xdotool(display, "search", "--sync", "--name", "srpipe live", "windowfocus", "--sync", timeout=5)
                break
            except subprocess.TimeoutExpired:
                assert attempt < 3, "the window never took the focus"
        time.sleep(0.5)  # keys sent at once after the focus change can be lost
        xdotool(display, "key", "--delay", "200", "space", "s")  # pause, so that the screen and the screenshot agree
        wait_for(lambda: list(tmp_path.glob("srpipe-live-*.png")), live, seconds=20)
        deadline = time.monotonic() + 20
        saved = list(tmp_path.glob("srpipe-live-*.png"))
        assert len(saved) == 1
        shown = cv2.imread(str(saved[0]))
        while True:  # the paused frame drawn: on a busy machine, the window may draw it after the file is out
            screen = grab(display)
            match = cv2.matchTemplate(screen, shown, cv2.TM_CCOEFF_NORMED).max()
            if match > 0.95 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        xdotool(display, "key", "q")
        live.wait(timeout=20)
    finally:
        live.kill()
    stderr = live.stderr.read().decode()
    assert live.returncode == 0, stderr
    assert "frames shown" in stderr

    assert len(list(tmp_path.glob("srpipe-live-*.png"))) == 1, stderr
    assert shown.shape == (128, 384, 3)  # 96x64 x2, bicubic and model side by side
    assert screen.std() > 20
    assert match > 0.95  # the window shows exactly what the screenshot holds



def ask_to_close(display, window: int) -> None:
    """What a window manager's close button sends: WM_DELETE_WINDOW, as a WM_PROTOCOLS client message."""
    x11 = ctypes.cdll.LoadLibrary(ctypes.util.find_library("X11"))
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XInternAtom.restype, x11.XInternAtom.argtypes = ctypes.c_ulong, [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    x11.XSendEvent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
    x11.XSync.argtypes = [ctypes.c_void_p, ctypes.c_int]
    x11.XCloseDisplay.argtypes = [ctypes.c_void_p]

    class ClientMessage(ctypes.Structure):
        _fields_ = [("type", ctypes.c_int), ("serial", ctypes.c_ulong), ("send_event", ctypes.c_int),
                    ("display", ctypes.c_void_p), ("window", ctypes.c_ulong), ("message_type", ctypes.c_ulong),
                    ("format", ctypes.c_int), ("data", ctypes.c_long * 5)]

    class Event(ctypes.Union):
        _fields_ = [("message", ClientMessage), ("pad", ctypes.c_long * 24)]

    connection = x11.XOpenDisplay(display.encode())
    event = Event()
    event.message.type, event.message.window, event.message.format = 33, window, 32  # ClientMessage
    event.message.message_type = x11.XInternAtom(connection, b"WM_PROTOCOLS", 0)
    event.message.data[0] = x11.XInternAtom(connection, b"WM_DELETE_WINDOW", 0)
    x11.XSendEvent(connection, window, 0, 0, ctypes.byref(event))
    x11.XSync(connection, 0)
    x11.XCloseDisplay(connection)


def test_closing_the_window_ends_as_esc_does(display, tmp_path):
    """Closed by the window manager (WM_DELETE_WINDOW), the window is gone when the end closes it:
    that close raised OpenCV's 'NULL guiReceiver', exit status 1."""
    clip = make_test_video(tmp_path / "clip.mp4", width=96, height=64, frames=500, rate=25, audio=False)  # 20 s
    env = {**os.environ, "DISPLAY": display}
    live = subprocess.Popen([sys.executable, "-m", "srpipe", "live", "--source", str(clip)], env=env,
                            stderr=subprocess.PIPE)
    try:
        wait_for_window(display, live)
        found = subprocess.run(["xdotool", "search", "--name", "srpipe live"], env=env, capture_output=True,
                               text=True, timeout=20, check=True)
        for window in found.stdout.split():
            ask_to_close(display, int(window))
        live.wait(timeout=10)  # long before the clip's end
    finally:
        live.kill()
    stderr = live.stderr.read().decode()
    assert live.returncode == 0 and "frames shown" in stderr, stderr
