"""Where the loop shows images and gets keys: an OpenCV highgui window, or nothing (headless)."""

from __future__ import annotations

import os
import sys

import numpy as np

from srpipe.errors import SrpipeError

TITLE = "srpipe live"
KEY_ESC = 27
NO_KEY = -1


class Window:
    """A highgui window showing images 1:1 (resizable, aspect kept); closing it acts like Esc.

    The loop waits in :meth:`key` rather than for frames: highgui handles input
    and drawing only while it waits there, and keeps only the last key pressed.
    """

    frame_timeout_s = 0.0

    def __init__(self, title: str = TITLE):
        if sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
            raise SrpipeError("no display to open a window on (DISPLAY is not set); use --no-window, or run under X11")
        import cv2

        self.cv2 = cv2
        self.title = title
        self.size: tuple[int, int] | None = None
        self.was_visible = False  # a window is not visible until the X server maps it
        cv2.namedWindow(title, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO | cv2.WINDOW_GUI_NORMAL)

    def show(self, image: np.ndarray) -> None:
        size = (image.shape[1], image.shape[0])
        if size != self.size:  # the first image, or the source changed size
            self.cv2.resizeWindow(self.title, *size)
            self.size = size
        self.cv2.imshow(self.title, image)

    def key(self, wait_ms: int) -> int:
        """The key pressed within ``wait_ms`` (this also draws the window), or ``NO_KEY``."""
        key = self.cv2.waitKey(wait_ms)
        try:
            visible = self.cv2.getWindowProperty(self.title, self.cv2.WND_PROP_VISIBLE) >= 1
        except self.cv2.error:  # closed by the window manager: Qt has destroyed it already
            visible = False
        if self.was_visible and not visible:
            return KEY_ESC
        self.was_visible = visible
        return NO_KEY if key == -1 else key & 0xFF

    def close(self) -> None:
        try:
            self.cv2.destroyWindow(self.title)
        except self.cv2.error:  # closed by the window manager: Qt has destroyed it already
            return
        self.cv2.waitKey(1)  # lets the window actually go away


class Headless:
    """``--no-window``: images go nowhere and no key is ever pressed."""

    frame_timeout_s = 0.05

    def show(self, image: np.ndarray) -> None:
        pass

    def key(self, wait_ms: int) -> int:
        return NO_KEY

    def close(self) -> None:
        pass
