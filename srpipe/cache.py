"""srpipe's cache folder: what backends make once per network and keep for later runs."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(kind: str) -> Path:
    """``$SRPIPE_CACHE_DIR/kind`` (default ``~/.cache/srpipe/kind``, or under ``$XDG_CACHE_HOME``)."""
    root = (os.environ.get("SRPIPE_CACHE_DIR")
            or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "srpipe")
    return Path(root) / kind


def file_digest(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, in hex."""
    import hashlib

    with open(path, "rb") as file:
        return hashlib.sha256(file.read()).hexdigest()
