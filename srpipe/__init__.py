"""srpipe: video and stream super-resolution with pluggable upscalers."""

from srpipe.hookspecs import hookimpl

__version__ = "0.1.0"

__all__ = ["hookimpl", "__version__"]
