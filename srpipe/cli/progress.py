"""Progress on standard error, quiet when it is not a terminal."""

from __future__ import annotations

import os
import sys

FALLBACK_COLUMNS = 80
_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def shown(text: str) -> str:
    """``text`` on one line and unambiguous, as ``ls -b`` shows names: a backslash, and every
    character that is not printable (controls such as a newline or a terminal escape, format
    characters such as U+202E, which shows the rest of a name backwards, separators other than
    the space), as escapes: ``\\n``, ``\\x1b``, ``\\u202e``. A byte that is not UTF-8 (decoded as a
    surrogate) is ``\\xNN``, told apart from the character U+00NN (``\\u00NN``)."""
    if text.isprintable() and "\\" not in text:
        return text
    out = []
    for char in text:
        code = ord(char)
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif 0xDC80 <= code <= 0xDCFF:  # os.fsdecode's stand-in for an undecodable byte
            out.append(f"\\x{code - 0xDC00:02x}")
        elif char.isprintable():
            out.append(char)
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        else:
            out.append(f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    return "".join(out)


def width_options(stream) -> dict:
    """tqdm's width options for a bar on ``stream``: the terminal's width as it changes, or
    :data:`FALLBACK_COLUMNS` where the terminal reports 0 columns (``script``, some consoles),
    which tqdm takes as no room, drawing no bar at all."""
    try:
        columns = os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError, AttributeError):  # not a terminal: tqdm shows nothing there anyway
        columns = 0
    return {"dynamic_ncols": True} if columns > 0 else {"ncols": FALLBACK_COLUMNS}


class FrameProgress:
    """A tqdm bar in frames; ``for_total(total)`` hands the pipeline its per-frame callback."""

    def __init__(self, quiet: bool, description: str = "upscale"):
        self.quiet = quiet
        self.description = description
        self.bar = None

    def for_total(self, total: int | None):
        if self.quiet:  # nothing to show: tqdm is not even imported
            return lambda: None
        from tqdm import tqdm

        self.bar = tqdm(
            total=total,
            unit="frame",
            desc=self.description,
            file=sys.stderr,
            disable=None,  # off when stderr is not a terminal
            **width_options(sys.stderr),
        )
        return self.bar.update

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
