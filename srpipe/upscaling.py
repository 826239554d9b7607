"""Upscale one input to one output: the library call behind ``srpipe upscale``."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from srpipe.backends import AUTO, load_upscaler
from srpipe.device import resolve_device
from srpipe.errors import SrpipeError
from srpipe.media import SinkOptions, SourceOptions, open_sink, open_source, turns_a_quarter
from srpipe.models import UpscalerTraits, for_stream, model_of_plugin
from srpipe.outputs import (
    check_output,
    check_output_path,
    default_output_path,
    is_stream_location,
    local_name_hint,
    plugins_write_outputs,
    remove_own_partials,
)
from srpipe.plugin_guard import exits_as_errors, plugin_code
from srpipe.plugins import collect_backends, collect_models, get_plugin_manager
from srpipe.sizing import SizePlan, is_fractional

if TYPE_CHECKING:
    from srpipe.pipeline import RunStats
    from srpipe.reuse import ReusePolicy, ReuseStats


@dataclass
class UpscaleResult:
    input: str
    output: str
    model: str
    scale: int
    device: str
    stats: RunStats
    backend: str | None = None  # what ran the network; None for models without one
    sizes: SizePlan | None = None  # a fractional scale or a target size: the model's output was resized
    encoder: str | None = None  # what the sink encoded with (libx264, h264_nvenc, png), where it says
    reuse: ReuseStats | None = None  # what tile reuse did (srpipe.reuse); None where it did not run
    variant: str | None = None  # which of its variants the model ran (UpscalerTraits.variant)

    def describe_size(self) -> str:
        """``x2``, or ``x1.5 (x2, resized to 1920x1080)`` for a fractional scale or target size."""
        if self.sizes is None:
            return f"x{self.scale}"
        asked = f"x{self.sizes.scale:g} " if self.sizes.scale is not None else ""
        size = f", resized to {self.sizes.last[0]}x{self.sizes.last[1]}" if self.sizes.last else ""
        return f"{asked}(x{self.scale}{size})"

    def to_dict(self) -> dict:
        return {
            "input": self.input,
            "output": self.output,
            "model": self.model,
            "scale": self.scale if self.sizes is None else self.sizes.scale,  # None for a target size
            **({} if self.sizes is None else {"model_scale": self.scale,
                                              "width": self.sizes.last and self.sizes.last[0],
                                              "height": self.sizes.last and self.sizes.last[1]}),
            "device": self.device,
            "backend": self.backend,
            "encoder": self.encoder,
            "frames": self.stats.frames_out,
            "frames_skipped": self.stats.frames_skipped,
            "frames_concealed": self.stats.frames_concealed,
            "frames_deinterlaced": self.stats.frames_deinterlaced,
            "packets_copied": self.stats.packets_copied,
            "seconds": round(self.stats.seconds, 3),
            "fps": round(self.stats.fps, 2),
            "reuse": self.reuse.to_dict() if self.reuse is not None else None,
            **({} if self.variant is None else {"variant": self.variant}),
        }


_kept_models: dict[tuple, object] = {}


def check_input(location: str) -> None:
    """Refuse a missing, non-regular or empty input file with a helpful message."""
    if is_stream_location(location):
        return
    if not os.path.exists(location):
        raise SrpipeError(f"{location} does not exist; check the path")
    if os.path.isdir(location):
        raise SrpipeError(f"{location} is a directory; give a video or image file (or use 'srpipe batch')")
    if os.path.isfile(location) and os.path.getsize(location) == 0:  # FIFOs and devices have no size
        raise SrpipeError(f"{location} is empty; give a complete video or image file")


def upscale(
    input: str,
    output: str | None = None,
    *,
    model: str = "bicubic",
    scale: int | float | None = None,
    width: int | None = None,
    height: int | None = None,
    device: str = "auto",
    weights: str | None = None,
    backend: str = AUTO,
    batch_size: int = 8,
    source_options: SourceOptions = SourceOptions(),
    sink_options: SinkOptions = SinkOptions(),
    threaded: bool = True,
    progress: Callable[[int | None], Callable[[], None]] | None = None,
    keep_model: bool = False,
    exact: bool = False,
    reuse: ReusePolicy | None = None,
    views: int | None = None,
    pm=None,
) -> UpscaleResult:
    """Upscale ``input`` into ``output`` (default ``NAME_xS.ext`` beside it).

    ``scale`` is a scale the model has, or a factor such as 1.5; ``width`` and ``height`` a
    target size instead (``srpipe.sizing``): the model then runs at the next scale it has and
    its output is resized down to the exact size.
    ``backend`` names the inference backend of neural models (``auto``: the installed one of
    highest priority for the device). ``progress(total_frames)`` returns a callback called once per written frame.
    ``keep_model`` keeps the loaded model in this process for the next call with the same model
    settings (batch workers). A model's stand-ins run in its place on images, on near-lossless
    video and on coarsely quantized video (``ModelSpec.image_model``, ``near_lossless_model``,
    ``coarse_quantizer_models``). On CUDA, with no codec given, NVENC
    encodes where it works.
    On video, an upscaler that declares its receptive radius runs only on the tiles that changed
    (``reuse``, default :class:`srpipe.reuse.ReusePolicy`); ``exact`` turns that off and keeps
    inexact backends (int8) out of ``auto``: the output is then the network's on every pixel.
    A picture through an upscaler that declares ``self_ensemble`` is the mean over ``views`` of
    its flipped and turned views (:mod:`srpipe.ensemble`; None: as many as its budget allows;
    ``exact``: one); ``views`` is refused for video and for models without them.
    """
    pm = pm or get_plugin_manager()
    models = collect_models(pm)
    sizes = None
    if width is not None or height is not None or is_fractional(scale):
        sizes = SizePlan(scale, width, height, pix_fmt=sink_options.pix_fmt)
        spec, scale = models.upscaler(model, None, weights)
        scale = sizes.model_scale(spec.scales, model) if sizes.scale is not None else None
    else:
        spec, scale = models.upscaler(model, scale, weights)
    if batch_size < 1:
        raise SrpipeError("--batch-size must be at least 1")
    if views is not None and exact and views != 1:
        raise SrpipeError(f"--exact runs the network once; leave out --views {views} or --exact")
    check_input(input)
    if output is None and is_stream_location(input):
        raise SrpipeError(f"{'standard input' if input == '-' else input} is a stream; name the output with -o"
                          + local_name_hint(input))
    # Every check a user can fail comes before the model loads: loading may import torch.
    if output is not None:  # standard output, a URL for a sink plugin, or the file srpipe writes
        check_output(output, input, sink_options.overwrite, plugin_sinks=plugins_write_outputs(pm))
    device = resolve_device(device, uses_gpu=spec.uses_gpu)
    from srpipe.images import ImageSource
    from srpipe.memory import check_frame_size, fit_batch_size
    from srpipe.pipeline import abort_sink, run  # with PyAV and OpenCV: after the checks, so that errors come at once

    source = open_source(pm, input, source_options)
    with source:
        # Before anything is decoded: a header may claim a frame far larger than the file holds. The
        # run holds each frame to the same limit (a plugin's source may give larger ones than it declared).
        check_frame_size(input, source.width, source.height, source_options.max_pixels)
        if output is None and not source.is_file:
            raise SrpipeError(f"{input} is a stream; name the output with -o")
        if views not in (None, 1) and not isinstance(source, ImageSource):
            raise SrpipeError(f"{'standard input' if input == '-' else input} is read as video, whose frames run the "
                              "model once each; --views is for a picture file: leave it out")
        if sizes is not None:  # a fractional scale too: the size is checked against the input's
            sizes.turned = source.quarter_turned()
            scale = sizes.model_scale(spec.scales, model, source.width, source.height)
        if output is None and sizes is not None:
            output = str(_sized_output_path(input, sizes, source.default_suffix))
            check_output_path(Path(output), input, sink_options.overwrite)
        if output is None and scale is not None:  # with --weights and no --scale, the checkpoint's scale
            output = str(default_output_path(input, scale, source.default_suffix))
            check_output_path(Path(output), input, sink_options.overwrite)
        if source.kind == "image":
            spec = models.for_images(spec, scale, weights)
            model = spec.name
        elif (stand_in := models.for_near_lossless(spec, scale, weights)) is not spec and source.near_lossless():
            spec, model = stand_in, stand_in.name
        elif (stand_in := models.for_quantizer(spec, scale, weights, source.quantizer)) is not spec:
            spec, model = stand_in, stand_in.name
        upscaler = for_stream(_load(spec, pm, scale, device, weights, backend, keep_model, exact),
                              model_of_plugin(spec))
        if source_options.pts_range is not None:
            _settle_as_the_whole_file(upscaler, spec, pm, input, source_options)
        if output is None:
            output = str(default_output_path(input, upscaler.scale, source.default_suffix))
            check_output_path(Path(output), input, sink_options.overwrite)
        scale = upscaler.scale
        reuse_stats = None
        if views not in (None, 1) and not UpscalerTraits.of(upscaler).self_ensemble:
            given = " with --weights" if weights else ""  # -m espcn then runs them, not the weights it picks
            raise SrpipeError(f"model {model!r}{given} runs no views (the weights -m espcn picks for a picture do); "
                              "leave out --views")
        if isinstance(source, ImageSource):  # one picture: its own need, with no batch to fit
            from srpipe.ensemble import for_picture

            upscaler = for_picture(upscaler, f"model {model!r}", exact, views)
            source.check_memory(upscaler, sizes, output, sink_options.container_format)
        else:
            if reuses_tiles(upscaler, device, exact):
                from srpipe.reuse import ReusePolicy, with_reuse

                reusing = with_reuse(upscaler, reuse or ReusePolicy(), model)
                reuse_stats = reusing.stats if reusing is not upscaler else None
                upscaler = reusing
            batch_size = fit_batch_size(source.width, source.height, scale, batch_size, source.bytes_per_sample,
                                        upscaler, samples_per_pixel=source.samples_per_pixel)
        hardware = sink_options.hardware_encoder or device.startswith("cuda")
        gpu = int(device.partition(":")[2]) if device.startswith("cuda:") else sink_options.hardware_gpu
        sink_options = replace(sink_options, scale=scale, hardware_encoder=hardware, hardware_gpu=gpu)
        sink = None
        try:
            # The run is plugins' code too (the model's upscale, the source's items, the sink): a working
            # folder it changes is put back, and with -o -, what it prints goes to standard error, not into
            # the video. (The output's path is absolute already: outputs.AtomicOutput.)
            with plugin_code(f"a plugin upscaling {input}", prints=output == "-"):
                sink = open_sink(pm, output, source, sink_options)
                on_frame = progress(source.frame_count) if progress else None
                stats = run(source, sink, upscaler, batch_size=batch_size, threaded=threaded, model_name=model,
                            on_frame=on_frame, sizes=sizes,
                            max_pixels=source_options.max_pixels)
        except BaseException:
            if sink is not None:
                abort_sink(sink)  # also covers a signal that lands before run() starts
            else:  # a signal (Ctrl-C, a batch worker stopped) while the sink was being opened
                remove_own_partials(output)
            raise
    if sizes is not None and not sizes.turned and turns_a_quarter(source.display_matrix):
        name = "standard input" if input == "-" else input
        warnings.warn(f"{name} is shown turned a quarter, and was sized as stored ({sizes.last[0]}x{sizes.last[1]}, "
                      "shown the other way round): its turn is read from the file, which a stream cannot give "
                      "twice; upscale the file itself to size it as shown")
    traits = UpscalerTraits.of(upscaler)  # optional traits, read after the run (a variant is settled by then)
    backend_used = traits.backend if spec.accepts_backend else None
    return UpscaleResult(input, output, model, scale, device, stats, backend_used, sizes, sink.encoder, reuse_stats,
                         traits.variant)


def reuses_tiles(upscaler, device: str, exact: bool) -> bool:
    """Whether video goes through ``upscaler`` by tile reuse (:mod:`srpipe.reuse`): on the CPU,
    unless ``exact``, where it declares its receptive radius. A GPU runs whole frames faster than
    tiles come and go; classical upscalers declare no radius (they run faster than the
    bookkeeping), and OpenCV is then not loaded for them."""
    return not exact and device == "cpu" and UpscalerTraits.of(upscaler).receptive_radius is not None


def _settle_as_the_whole_file(upscaler, spec, pm, input: str, source_options: SourceOptions) -> None:
    """A part of a file (``pts_range``: a chunk of ``srpipe batch``) gets what the whole file
    would: an upscaler that settles something per stream and then maps each frame alone (one
    with a stream state, ``for_stream``, that declares a ``receptive_radius``: ``espcn-lossless``
    and ``espcn-image`` choosing their weights) sees the file's first frame before the part's."""
    if UpscalerTraits.of(upscaler).receptive_radius is None or for_stream(upscaler, model_of_plugin(spec)) is upscaler:
        return
    from srpipe.frames import Frame

    with exits_as_errors():  # items and upscale: plugins' code
        with open_source(pm, input, replace(source_options, pts_range=None)) as whole:
            first = next((item for item in whole.items() if isinstance(item, Frame)), None)
        if first is not None:
            upscaler.upscale(first.planes[0][None], bit_depth=first.format.bit_depth, full_range=first.full_range)


def _sized_output_path(input: str, sizes: SizePlan, suffix: str) -> Path:
    """``NAME_x1.5.mp4``, ``NAME_1920x1080.mp4``, ``NAME_w1920.mp4`` beside the input."""
    path = Path(input)
    return path.with_name(f"{path.stem}_{sizes.name_tag()}{suffix}")


def _load(spec, pm, scale, device, weights, backend, keep_model, exact):
    """The upscaler, loaded, or one this process kept from an earlier call with the same
    settings (``keep_model``: batch workers, whose files may alternate between a model and
    its stand-ins). The one used longest ago goes first."""
    key = (spec.name, scale, device, weights, backend, exact)
    upscaler = _kept_models.pop(key, None) if keep_model else None
    if upscaler is None:
        upscaler = load_upscaler(spec, collect_backends(pm), scale=scale, device=device, weights=weights,
                                 backend=backend, exact=exact)
        if keep_model and len(_kept_models) >= 5:  # a model and its stand-ins (image, near-lossless, two coarse)
            _kept_models.pop(next(iter(_kept_models)))
    if keep_model:
        _kept_models[key] = upscaler  # the newest last
    return upscaler
