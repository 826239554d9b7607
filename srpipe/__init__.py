"""srpipe: video and stream super-resolution with pluggable upscalers."""

from srpipe import moved
from srpipe.hookspecs import hookimpl

moved.install()  # module paths of the earlier layout (srpipe.nn.espcn, ...) import until srpipe 0.3

__version__ = "0.1.0"

__all__ = ["hookimpl", "__version__"]
