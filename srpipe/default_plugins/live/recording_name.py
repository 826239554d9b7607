"""The names ``srpipe live --record`` refuses, checked as the command line is read."""

from pathlib import Path

from srpipe.errors import SrpipeError


def check_recording_name(record: str) -> None:
    """Refuse, before anything loads, a recording live cannot make: a picture or an animation
    (the recorder writes video, in 4:2:0), or standard output (the window is where live shows).
    Apart from the recorder, so that the command checks it without loading PyAV."""
    from srpipe.media import IMAGE_SUFFIXES

    if record == "-":
        raise SrpipeError("--record writes a file: give a name such as rec.mp4 or rec.mkv (standard output is not "
                          "recorded to; srpipe upscale - -o - streams)")
    suffix = Path(record).suffix.lower()
    if suffix in IMAGE_SUFFIXES or suffix in (".gif", ".apng"):
        raise SrpipeError(f"--record {record}: live records video; give a .mp4, .mkv, .mov, .webm or .ts name "
                          "(srpipe upscale writes pictures and animations)")
