"""Built-in source and sink for video: files, URLs and pipes, through PyAV."""

from pathlib import PurePath

from srpipe import hookimpl
from srpipe.errors import SrpipeError
from srpipe.media import is_image_path


@hookimpl(trylast=True)
def open_source(location, options):
    from srpipe.video import PyAVSource

    return PyAVSource(location, options)


@hookimpl(trylast=True)
def open_sink(location, source, options):
    from srpipe.images import ImageSource

    if isinstance(source, ImageSource):  # srpipe's own pictures: still_images writes them
        return None
    # A plugin's picture (kind "image") is written as a one-frame video.
    if location != "-" and is_image_path(location) and not _animated_png(location, source):
        if source.location == "-":  # a picture piped in is video too: still images are read from files (header, EXIF)
            raise SrpipeError(f"standard input is read as video (a stream), so the output {location} cannot be an "
                              "image; give a picture by its file name, or name a video output (.mp4, .mkv)")
        raise SrpipeError(f"{source.location} is a video but the output {location} is an image name; use .mp4 or "
                          ".mkv (.gif or .apng for an animation)")
    from srpipe.video import PyAVSink

    return PyAVSink(location, source, options)


def _animated_png(location, source) -> bool:
    """An animated PNG's upscale named .png: written as an animated PNG."""
    container = getattr(source, "container", None)
    return PurePath(location).suffix.lower() == ".png" and container is not None and container.format.name == "apng"
