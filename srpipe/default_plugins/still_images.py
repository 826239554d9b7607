"""Built-in source and sink for still images (PNG, JPEG, WebP, BMP, TIFF)."""

import os

from srpipe import hookimpl
from srpipe.errors import SrpipeError
from srpipe.media import is_image_file, is_image_path
from srpipe.outputs import writes_through


@hookimpl
def open_source(location, options):
    """Images are recognised by their content, so a misnamed file still works."""
    if location == "-" or not os.path.isfile(location) or not is_image_file(location):
        return None
    from srpipe.images import ImageSource  # loads NumPy: only for an image

    return ImageSource(location)


@hookimpl
def open_sink(location, source, options):
    if source.kind != "image":
        return None
    from srpipe.images import ImageSink, ImageSource

    if not isinstance(source, ImageSource):
        # A plugin's picture lacks what the image writer copies from the file it read (its header:
        # colour profile, density, bit depth); the video writer takes it as a one-frame video.
        if is_image_path(location):
            raise SrpipeError(f"{source.location} is an image from a plugin; srpipe's image writer takes only images "
                              "it read itself: write it as a video (.mkv), or give the plugin a sink of its own")
        return None
    if location != "-" and not (is_image_path(location) or writes_through(location)):
        raise SrpipeError(f"{source.location} is an image; name the output .png, .jpg, .webp, .bmp or .tif, "
                          "or - for standard output")
    return ImageSink(location, source, options)
