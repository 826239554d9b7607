"""Built-in source and sink for video: files, URLs and pipes, through PyAV."""

from srpipe import hookimpl
from srpipe.errors import SrpipeError
from srpipe.media import is_image_path


@hookimpl(trylast=True)
def open_source(location, options):
    from srpipe.video import PyAVSource

    return PyAVSource(location, options)


@hookimpl(trylast=True)
def open_sink(location, source, options):
    if source.kind != "video":
        return None
    if location != "-" and is_image_path(location):
        raise SrpipeError(f"{source.location} is a video but the output {location} is an image name; use .mp4 or .mkv")
    from srpipe.video import PyAVSink

    return PyAVSink(location, source, options)
