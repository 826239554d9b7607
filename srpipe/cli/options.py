"""The option vocabulary every command shares: one definition of each option, so that
``--device``, ``--backend``, ``--weights``, ``-s/--scale``, ``-q``, ``--json``, ``-y/--overwrite``
and ``--codec/--crf/--preset`` mean the same wherever they appear
(``tests/core/test_options.py`` walks every command and checks it)."""

from __future__ import annotations

import math
import os
import re
from fractions import Fraction
from pathlib import Path

import click

from srpipe.device import DEVICE_CHOICES, is_device_name

# The largest -s: x4 for the built-in models; plugins may have more, but no useful picture is 64 times as wide.
MAX_SCALE = 64
_PLAIN_DECIMAL = re.compile(r"-?([0-9]+(\.[0-9]*)?|\.[0-9]+)")  # ASCII: \d takes other scripts' digits too


class DeviceType(click.ParamType):
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (one GPU by its index)."""

    name = "device"

    def convert(self, value, param, ctx):
        if is_device_name(value):
            return value
        self.fail(f"{value!r} is not one of auto, cpu, cuda or cuda:N (N: a GPU's index, from 0)", param, ctx)

    def get_metavar(self, param, ctx=None):
        return f"[{'|'.join(DEVICE_CHOICES)}|cuda:N]"

    def shell_complete(self, ctx, param, incomplete):
        from click.shell_completion import CompletionItem

        return [CompletionItem(name) for name in DEVICE_CHOICES if name.startswith(incomplete)]


class FiniteRange(click.FloatRange):
    """click's FloatRange, which lets nan through (every comparison with it is false), without it or infinity."""

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


class ScaleType(click.ParamType):
    """A whole scale (``2``), or a factor above 1 with up to four decimals (``1.5``, ``3.5``):
    an ``int`` for whole numbers, else a ``float``. Plain decimals only: no exponents, signs or
    digit separators (Python would read ``1_5`` as 15), and at most :data:`MAX_SCALE`."""

    name = "FACTOR"

    def convert(self, value, param, ctx):
        text = str(value).strip()  # also a default given as a number
        try:
            number = Fraction(text) if _PLAIN_DECIMAL.fullmatch(text) else None
        except ValueError:  # more digits than Python converts
            number = None
        if number is None:
            self.fail(f"{value!r} is not a number such as 2 or 1.5", param, ctx)
        if number <= 1:  # as the library says (srpipe.sizing), but here a usage error
            self.fail(f"{text} does not enlarge; srpipe upscales by factors above 1", param, ctx)
        if number > MAX_SCALE:
            self.fail(f"{text} is above {MAX_SCALE}, the largest factor srpipe takes", param, ctx)
        if number.denominator == 1:
            return int(number)
        if (number * 10_000).denominator != 1:
            self.fail(f"{text} has more than four decimals", param, ctx)
        return float(number)


SCALE = ScaleType()

# What each shared option says: ``--help`` texts that the consistency test compares.
# -s of the commands that run a network at its own scale (live, bench, eval, inspect)...
SCALE_HELP = ("Upscaling factor, a scale the model has: 2, 3 or 4 for the built-ins (a whole number: this "
              "command runs the network at its own scale). Default: the model's own.")
# ...and of upscale and batch, which resize the model's output to any factor
ANY_SCALE_HELP = ("Upscaling factor: a scale the model has (2, 3 or 4 for the built-ins), or any factor such as "
                  "1.5 or 3.5 (the model runs at its next scale, then the picture is resized down). "
                  "Default: the model's own.")
DEVICE_HELP = ("Where the model runs: auto (CUDA when a GPU is usable and the model gains from it, else the CPU), "
               "cpu, cuda (the first GPU) or cuda:N (the GPU of index N, from 0, as torch counts them).")
WEIGHTS_HELP = "Checkpoint to load instead of the model's own (from 'srpipe train')."
BACKEND_HELP = ("Inference backend of neural models (espcn): auto (the installed one of highest priority for the "
                "device, the fastest measured), openvino-int8 (not under --exact), openvino-bf16, openvino, torch, "
                "onnxruntime, torch-fp16 (CUDA), torch-compile (CUDA); see 'srpipe models backends'.")
QUIET_HELP = "No progress and no summary; errors are still shown."
JSON_HELP = "Print the result as JSON on standard output."
OVERWRITE_HELP = "Replace an existing output file (ffmpeg's -y)."
CODEC_HELP = ("Video encoder. Default: libx264 (libvpx-vp9 for .webm; h264_nvenc when the model runs on CUDA "
              "and NVENC works).")
CRF_HELP = "Encoder quality, 0-51 for x264/x265 (0-63 for VP9); lower is better and larger."
PRESET_HELP = "x264/x265 speed preset."
RECORD_PRESET_HELP = ("x264/x265 speed preset of the recording: the fastest by default, so that encoding keeps up "
                      "with the camera beside the model (larger files; veryfast or slower for smaller ones).")
WIDTH_HELP = ("Output width in pixels; without --height the height keeps the aspect ratio. The model runs at "
              "its next scale, then the picture is resized down.")
HEIGHT_HELP = "Output height in pixels; without --width the width keeps the aspect ratio."
_EXACT_HELP = ("Run the model's own network on every pixel of every frame, with no int8: its exact output, and "
               "slower. By default tiles that did not change since the previous frame keep its output, flat tiles "
               "take the bicubic path, int8 runs where the CPU has it{views}, and espcn x2 on the CPU runs a "
               "faster network distilled from its own (docs/speed.md).")
# upscale and batch: files, whose pictures espcn runs on several views and whose weights it picks by the file
EXACT_HELP = _EXACT_HELP.format(views=", a picture through espcn is the mean over up to eight flipped and "
                                      "turned views of it (docs/espcn.md)") + (
    " The weights a model picks for the file (espcn's for lossless or coarsely coded video, or a picture) are "
    "picked the same way.")
LIVE_EXACT_HELP = _EXACT_HELP.format(views="")  # live: frames as they come, none of them a picture file


def scale_option(command):
    """``-s`` of a command that runs a network at its own scale (:func:`whole_scale` refuses a fraction)."""
    return click.option("-s", "--scale", type=SCALE, help=SCALE_HELP)(command)


def _one_size(ctx, param, value):
    """-s and --width/--height each say how large the output is: refuse both together as the
    usage error it is (exit 2), before anything is read. Click runs every option's callback, so
    whichever of them it reads second finds the other in ``ctx.params``."""
    others = ("width", "height") if param.name == "scale" else ("scale",)
    if value is not None and any(ctx.params.get(name) is not None for name in others):
        raise click.UsageError("give either --scale or --width/--height, not both", ctx)
    return value


def device_option(command):
    return click.option("--device", type=DeviceType(), default="auto", show_default=True,
                        help=DEVICE_HELP)(command)


def _not_special(ctx, param, value):
    """Refuse a FIFO or a device (a link to one too) as --weights by what it is: it exists, but is
    no file, and reading it would wait for a writer or never end."""
    from srpipe.errors import SrpipeError
    from srpipe.outputs import special_kind

    kind = special_kind(value) if value else None
    if kind:
        raise SrpipeError(f"--weights {value} is a {kind}, not a file; give a checkpoint file")
    return value


def weights_option(command):
    return click.option("--weights", type=click.Path(dir_okay=False), callback=_not_special,
                        help=WEIGHTS_HELP)(command)


def backend_option(command=None, *, multiple: bool = False):
    """``--backend NAME``; ``multiple=True`` for commands that measure several (``bench``)."""
    help_text = BACKEND_HELP + (" Repeat the option to measure several." if multiple else "")
    option = click.option("--backend", "backends" if multiple else "backend", multiple=multiple,
                          default=("auto",) if multiple else "auto", show_default=True, metavar="NAME",
                          help=help_text)
    return option if command is None else option(command)


def exact_option(command):
    return click.option("--exact", is_flag=True, help=EXACT_HELP)(command)


def live_exact_option(command):
    return click.option("--exact", is_flag=True, help=LIVE_EXACT_HELP)(command)


def quiet_option(command):
    return click.option("-q", "--quiet", is_flag=True, help=QUIET_HELP)(command)


def json_option(command):
    return click.option("--json", "as_json", is_flag=True, help=JSON_HELP)(command)


def not_empty(ctx, param, value):
    """Refuse an empty path: "" (an unset shell variable) would mean the current folder."""
    if value == "":
        raise click.BadParameter("is empty (an unset shell variable?); give a path")
    return value


def overwrite_option(command):
    return click.option("-y", "--overwrite", is_flag=True, help=OVERWRITE_HELP)(command)


def codec_options(command, preset: str = "veryfast", preset_help: str = PRESET_HELP):
    """``--codec``, ``--crf``, ``--preset``: what encodes the output."""
    for option in reversed([
        click.option("--codec", help=CODEC_HELP),
        click.option("--crf", type=click.IntRange(0, 63), default=18, show_default=True, help=CRF_HELP),
        click.option("--preset", default=preset, show_default=True, help=preset_help),
    ]):
        command = option(command)
    return command


def recording_codec_options(command):
    """:func:`codec_options` of ``srpipe live --record``, whose encoder shares the cores with the
    model while the camera runs: x264's fastest preset by default (docs/live.md)."""
    return codec_options(command, preset="ultrafast", preset_help=RECORD_PRESET_HELP)


def size_options(command):
    """``-s`` and ``--width``/``--height`` of upscale and batch: a factor, or a target size instead."""
    for option in reversed([
        click.option("-s", "--scale", type=SCALE, callback=_one_size, help=ANY_SCALE_HELP),
        click.option("--width", type=click.IntRange(min=1), metavar="PIXELS", callback=_one_size, help=WIDTH_HELP),
        click.option("--height", type=click.IntRange(min=1), metavar="PIXELS", callback=_one_size, help=HEIGHT_HELP),
    ]):
        command = option(command)
    return command


def _apply(options):
    def decorate(command):
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


model_options = _apply([
    click.option("-m", "--model", default="bicubic", show_default=True,
                 help="Upscaler to use (see 'srpipe models list')."),
    size_options,
    weights_option,
    device_option,
    click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True,
                 help="Frames upscaled together."),
])

max_pixels_option = click.option("--max-pixels", type=click.IntRange(min=1),
                                 help="Refuse inputs whose frames have more pixels than this, before decoding. "
                                      "Default: 40 million, less where free memory is short.")

on_decode_error_option = click.option(
    "--on-decode-error", type=click.Choice(["stop", "skip"]), default="stop", show_default=True,
    help="A damaged input frame stops the file, or is dropped and counted (timestamps stay right).")

timeout_option = click.option(
    "--timeout", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
    help="Give up when the input sends no data for this long. Default: 30 for URLs, no limit for files and pipes.")

encoder_options = _apply([
    codec_options,
    click.option("--pix-fmt", help="Output pixel format, e.g. yuv420p. Default: the input's (10-bit stays 10-bit)."),
    on_decode_error_option,
    click.option("--deinterlace", type=click.Choice(["auto", "all", "off"]), default="auto", show_default=True,
                 help="Make interlaced frames (DV, DVD, TV) progressive before upscaling, one frame out per frame "
                      "in (FFmpeg's bwdif): auto, the frames the file marks as interlaced; all, every frame (for "
                      "interlaced video not marked as such); off, upscale both fields as one picture."),
    max_pixels_option,
])


def whole_scale(scale, what: str) -> int | None:
    """``scale`` for a command that runs a network at its own scale (``live``, ``eval``,
    ``inspect``, ``bench``): a fraction is refused with what to do instead."""
    if scale is None or isinstance(scale, int):
        return scale
    # a usage error (exit 2), as click's own checks of -s are
    raise click.BadParameter(f"{what} takes a whole scale (2, 3 or 4 for the built-ins), not {scale:g}; "
                             "fractional scales are for 'srpipe upscale' and 'srpipe batch'",
                             click.get_current_context(), param_hint="'-s' / '--scale'")


def check_output_folder(folder: str | Path, what: str) -> None:
    """Refuse, before any work, a ``folder`` to write into that cannot be made (``what``: the
    option as given, ``-o runs/x.pt``): the nearest of it and its parents that exists must be a
    folder this user may write into (the rest is created)."""
    from srpipe.errors import SrpipeError

    folder = Path(folder)
    existing = next(p for p in (folder, *folder.parents) if p.exists() or p.is_symlink())
    if not existing.is_dir():
        raise SrpipeError(f"cannot write {what}: {existing} is not a folder; choose another path")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise SrpipeError(f"cannot write {what}: the folder {existing} is not writable; choose another path")


RUN_FILES = ("last.pt", "final.pt", "log.jsonl")  # what a training run writes into its folder


def check_run_folder(out_dir: Path, inputs: dict, resume: bool, overwrite: bool, option: str) -> None:
    """Refuse, before torch loads, a training run folder whose files are links (a run writes its
    own files, never through a link) or among the command's ``inputs`` (:func:`srpipe.outputs.input_files`,
    whatever -y says), or that holds an earlier run, finished or not, which only -y replaces and
    --resume continues (from its last.pt). ``option`` names what chose the folder (``-o x.pt``)."""
    from srpipe.errors import SrpipeError
    from srpipe.outputs import check_not_input

    paths = [out_dir / name for name in RUN_FILES]
    for path in paths:
        if path.is_symlink():
            raise SrpipeError(f"{path} is a link; a run writes its own files, never through a link: remove it, "
                              f"or choose another {option}")
        check_not_input(path, inputs, option)
    resumable = (out_dir / "last.pt").exists()
    earlier = [path.name for path in paths if path.exists()]
    if earlier and not overwrite and not (resume and resumable):
        again = "--resume to continue it, " if resumable else ""
        raise SrpipeError(f"{out_dir} holds an earlier run ({', '.join(earlier)}); pass -y to replace it, {again}"
                          f"or choose another {option}")
