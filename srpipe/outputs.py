"""Output paths: default names, safety checks, and write-then-rename."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from srpipe.errors import SrpipeError


def default_output_path(input_path: str, scale: int, suffix: str) -> Path:
    """``NAME_x2.mp4`` next to the input."""
    path = Path(input_path)
    return path.with_name(f"{path.stem}_x{scale}{suffix}")


def check_output_path(output: Path, input_location: str, overwrite: bool) -> None:
    """Refuse an output that would clobber the input or an existing file, or cannot be written."""
    if os.path.exists(input_location) and output.exists() and os.path.samefile(output, input_location):
        raise SrpipeError(f"output {output} is the input file; choose another name with -o")
    if output.is_dir():
        raise SrpipeError(f"output {output} is a directory; give a file name with -o")
    if output.exists() and not overwrite:
        raise SrpipeError(f"output {output} already exists; pass --overwrite to replace it")
    parent = output.parent
    if not parent.is_dir():
        raise SrpipeError(f"output folder {parent} does not exist; create it first")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise SrpipeError(f"output folder {parent} is not writable; choose another with -o")


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


class AtomicOutput:
    """A temporary file beside ``final`` that becomes ``final`` only on :meth:`commit`."""

    def __init__(self, final: Path, overwrite: bool):
        self.final = Path(final)
        self.overwrite = overwrite
        fd, temp = tempfile.mkstemp(
            prefix=f".{self.final.stem}.", suffix=f".partial{self.final.suffix}", dir=self.final.parent
        )
        os.close(fd)
        self.temp = Path(temp)
        os.chmod(self.temp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode

    def commit(self) -> None:
        if not self.overwrite and self.final.exists():
            self.discard()
            raise SrpipeError(f"output {self.final} appeared while writing; pass --overwrite to replace it")
        os.replace(self.temp, self.final)

    def discard(self) -> None:
        self.temp.unlink(missing_ok=True)
