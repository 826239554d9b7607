"""Progress on standard error, quiet when it is not a terminal."""

from __future__ import annotations

import sys


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
            dynamic_ncols=True,
        )
        return self.bar.update

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
