"""Options that ``upscale``, ``batch`` and other commands share."""

from __future__ import annotations

import click

from srpipe.device import DEVICE_CHOICES

_MODEL_OPTIONS = [
    click.option("-m", "--model", default="bicubic", show_default=True, help="Upscaler to use (see 'srpipe models list')."),
    click.option("-s", "--scale", type=int, help="Upscaling factor. Default: the model's own."),
    click.option("--weights", type=click.Path(dir_okay=False), help="Checkpoint for models that take one (from 'srpipe train')."),
    click.option("--device", type=click.Choice(DEVICE_CHOICES), default="auto", show_default=True,
                 help="Where the model runs; auto picks CUDA when a GPU is usable."),
    click.option("--batch-size", type=int, default=8, show_default=True, help="Frames upscaled together."),
]

_ENCODER_OPTIONS = [
    click.option("--codec", help="Video encoder. Default: libx264 (libvpx-vp9 for .webm; h264_nvenc when the model runs on CUDA and NVENC works)."),
    click.option("--crf", type=click.IntRange(0, 63), default=18, show_default=True,
                 help="Encoder quality, 0-51 for x264/x265 (0-63 for VP9); lower is better and larger."),
    click.option("--preset", default="veryfast", show_default=True, help="x264/x265 speed preset."),
    click.option("--pix-fmt", help="Output pixel format, e.g. yuv420p. Default: the input's (10-bit stays 10-bit)."),
    click.option("--on-decode-error", type=click.Choice(["stop", "skip"]), default="stop", show_default=True,
                 help="A damaged input frame stops the file, or is dropped and counted (timestamps stay right)."),
    click.option("--max-pixels", type=click.IntRange(min=1),
                 help="Refuse inputs whose frames have more pixels than this, before decoding. "
                      "Default: 40 million, less where free memory is short."),
]


def _apply(options):
    def decorate(command):
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


model_options = _apply(_MODEL_OPTIONS)
backend_option = click.option(
    "--backend", default="auto", show_default=True, metavar="NAME",
    help="Inference backend of neural models (espcn): auto (the installed one of highest priority for the "
         "device, the fastest measured), openvino-bf16, openvino, torch, onnxruntime, torch-fp16 (CUDA); "
         "see 'srpipe models backends'.",
)
encoder_options = _apply(_ENCODER_OPTIONS)
