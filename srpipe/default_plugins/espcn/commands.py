"""``srpipe train espcn`` and ``srpipe eval``."""

import collections
import contextlib
import json
import re
import warnings
from pathlib import Path

import click
from click.core import UNSET

from srpipe.cli.options import (
    backend_option,
    check_output_folder,
    check_run_folder,
    device_option,
    json_option,
    max_pixels_option,
    not_empty,
    overwrite_option,
    scale_option,
    weights_option,
    whole_scale,
)
from srpipe.cli.progress import shown
from srpipe.errors import SrpipeError
from srpipe.outputs import check_not_input, input_files


@click.command("espcn")
@click.option("--data", "data", multiple=True, required=True, type=click.Path(file_okay=False),
              help="Folder of training images, its sub-folders not searched (repeat for several).")
@click.option("--val", "val", multiple=True, type=click.Path(file_okay=False),
              help="Folder of validation images, scored each epoch (repeat for several).")
@click.option("-s", "--scale", type=click.Choice(["2", "3", "4"]), required=True,
              help="The scale the network learns: 2, 3 or 4.")
@click.option("--epochs", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--steps-per-epoch", type=click.IntRange(min=1), default=500, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True, help="Patches per step.")
@click.option("--arch", "preset", type=click.Choice(["shipped", "fsrcnn", "paper"]),
              default="shipped", show_default=True,
              help="shipped: the network of the shipped weights (64-24x5-64, PReLU, residual); "
                   "fsrcnn: a narrower 56-12x5-56; paper: 5x5x64, 3x3x32, tanh.")
@click.option("--degrade", type=click.Choice(["none", "video"]), default="none", show_default=True,
              help="video: train on short pan clips of each image, shrunk with several kernels (with and "
                   "without antialiasing) and really encoded by x264 at random crf, as video arrives.")
@click.option("--holdout", type=click.IntRange(min=0), default=0, show_default=True,
              help="Keep this many images of the last --data folder out of training and score them each "
                   "epoch, clean, shrunk without antialiasing and compressed: choose by them, not by a test set.")
@click.option("--temporal", type=click.IntRange(min=1, max=8), default=1, show_default=True, metavar="N",
              help="With --degrade video: a temporal network that also reads the N-1 frames before the current "
                   "one, aligned to it (early fusion); each costs 1,600 more MAC per pixel with --arch shipped.")
@click.option("--expand", is_flag=True,
              help="Train each 3x3 and 5x5 convolution as several branches (a 1x1 widening then the kernel, "
                   "edge filters) that sum to one kernel: the network saved and run is the same size, and "
                   "small networks learn more this way.")
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True, help="CPU threads for torch.")
@max_pixels_option
@click.option("--resume", is_flag=True, help="Continue the run from its last checkpoint.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Weights file to write; the run's checkpoints and log go to OUTPUT.run/.")
@overwrite_option
def train_espcn(data, val, scale, epochs, steps_per_epoch, batch_size, preset, degrade, holdout, temporal, expand,
                threads, max_pixels, resume, output, overwrite):
    """Train an ESPCN upscaler on any folder of images.

    Random crops with flips and rotations; the low-resolution input is made
    by MATLAB-style antialiased bicubic downscaling (or, with --degrade video,
    by several kernels and x264), on limited-range luma (the convention video
    uses). Checkpoints every epoch into OUTPUT.run/; an earlier run there,
    finished or not, is continued with --resume or replaced with -y.

    \b
    Example:
      srpipe train espcn --data photos/ --val Set5/ -s 2 --epochs 16 -o my_x2.pt
      srpipe train espcn --data photos/ --degrade video --holdout 10 -s 2 -o my_video_x2.pt
      srpipe train espcn --data photos/ --degrade video --temporal 3 -s 2 -o my_temporal_x2.pt
      srpipe upscale clip.mp4 -m espcn --weights my_x2.pt
    """
    if temporal > 1 and degrade != "video":  # the library refuses it too, for its callers; here as usage
        raise click.UsageError("--temporal trains on clips: add --degrade video")
    for folder in data + val:
        check_image_folder(folder)
    run_folder = Path(output).with_name(Path(output).name + ".run")
    check_output_folder(run_folder, f"-o {output}")  # the weights go beside it
    inputs = input_files(data + val)
    check_not_input(output, inputs, "-o")
    check_run_folder(run_folder, inputs, resume, overwrite, "-o")  # a finished run too: its weights outlive -o's
    if Path(output).is_dir():
        raise SrpipeError(f"output {output} is a folder; give a file name for the weights with -o")
    if Path(output).exists() and not overwrite:  # found now, not when training is over
        raise SrpipeError(f"output {output} already exists; pass --overwrite to replace it")
    check_training_images(data, val, int(scale), holdout, max_pixels)
    from srpipe.default_plugins.espcn.training import TrainSettings, train  # torch: after the checks

    train(TrainSettings(scale=int(scale), preset=preset, epochs=epochs, steps_per_epoch=steps_per_epoch,
                        batch=batch_size, last_lr_mult=0.1, threads=threads, out=str(run_folder), export=output,
                        degrade=degrade, holdout=holdout, frames=temporal, mismatch=0.2 if temporal > 1 else 0.0,
                        expand=expand, train=list(data), val=list(val), max_pixels=max_pixels, resume=resume,
                        overwrite=overwrite))


def check_training_images(data, val, scale: int, holdout: int, max_pixels: int | None) -> None:
    """Refuse, from the images' headers and before training, what would fail later: --val images
    that cannot be scored (checked after each epoch), pictures over --max-pixels, no
    picture large enough for a training patch, a --holdout that leaves nothing to train on."""
    from srpipe.default_plugins.espcn.config import TRAINING_PATCH
    from srpipe.default_plugins.espcn.evaluate import scorable_images, training_images
    from srpipe.images import image_size
    from srpipe.memory import check_frame_size

    for folder in val:
        scorable_images(folder, scale, max_pixels)
    least = TRAINING_PATCH * scale  # a training patch of the HR picture
    sizes = []
    train, held = training_images(data, holdout)
    for path in train + held:
        size = image_size(str(path))
        check_frame_size(str(path), *(size or (None, None)), max_pixels)
        sizes.append(size)
    if all(size is not None and min(size) < least for size in sizes):
        raise SrpipeError(f"no image in {', '.join(data)} is {least}x{least} pixels or more, what a training patch "
                          f"takes at x{scale}; add larger images")


def check_image_folder(folder: str) -> None:
    """Refuse a missing folder of images at once, before a model or torch loads."""
    if not Path(folder).is_dir():
        problem = "is not a folder" if Path(folder).exists() else "does not exist"
        raise SrpipeError(f"image folder {folder} {problem}; give a folder of PNG/BMP/JPEG/TIFF images")


class CrfList(click.ParamType):
    """``--crfs``: comma-separated x264 crf values, each from 0 to 51 and given once -> a list of ints."""

    name = "LIST"

    def convert(self, value, param, ctx):
        if isinstance(value, list):  # converted already
            return value
        items = [item.strip() for item in value.split(",")]
        if not all(re.fullmatch("-?[0-9]+", item) for item in items):
            self.fail(f"{value!r} is not comma-separated integers, e.g. 0,23,30", param, ctx)
        crfs = [int(item) for item in items]
        if not all(0 <= crf <= 51 for crf in crfs):
            self.fail(f"{value}: x264 takes crf values from 0 (lossless) to 51", param, ctx)
        if len(set(crfs)) != len(crfs):
            self.fail(f"{value} names a crf twice; give each once", param, ctx)
        return crfs


def degradation_setting(ctx, param, value):
    """``--degrade``, refused as usage where it is no degradation (:func:`parse_degradation`)."""
    if value != "none":  # the default: no need to load the codecs that degrade.py brings
        from srpipe.default_plugins.espcn.degrade import parse_degradation

        try:
            parse_degradation(value)
        except SrpipeError as exc:
            raise click.BadParameter(str(exc), ctx, param) from None
    return value


DOWNSCALE_KERNELS = ("matlab-bicubic", "swscale-bicubic", "opencv-cubic", "area", "bilinear", "lanczos")
SCORED_PATHS = ("both", "default", "exact")


@click.command("eval")
@click.option("-m", "--model", required=True, help="Upscaler to score (see 'srpipe models list').")
@click.option("--data", type=click.Path(file_okay=False), callback=not_empty, help="Folder of high-resolution images.")
@click.option("--video", type=click.Path(), callback=not_empty,
              help="A video clip, shrunk, encoded and upscaled by the pipeline; or a folder of clips, scored per "
                   "category (its sub-folders) and in all.")
@scale_option
@weights_option
@device_option
@click.option("--downscale", type=click.Choice(DOWNSCALE_KERNELS), default="matlab-bicubic", show_default=True,
              help="How --data images are shrunk: opencv-cubic and bilinear are cv2.resize without antialiasing; "
                   "swscale-bicubic is ffmpeg's scale filter.")
@click.option("--degrade", default="none", show_default=True, metavar="SPEC", callback=degradation_setting,
              help="What the shrunk --data images go through: none, x264:crf=N (one intra frame) or jpeg:quality=N.")
@click.option("--crfs", "crf", type=CrfList(), default="0,23,30", show_default=True,
              help="x264 crf values (preset medium) for --video; 0 is lossless.")
@click.option("--frames", type=click.IntRange(min=1), help="Score only the first N frames of --video.")
@max_pixels_option
@click.option("--score", type=click.Choice(SCORED_PATHS),
              help="Which of `srpipe upscale`'s paths to score: its default (tile reuse, flat tiles, int8 where they "
                   "apply), --exact (the network on every pixel), or both, with the difference (--video). "
                   "Default: both with --video, default with --data.")
@backend_option
@json_option
def evaluate(model, data, video, scale, weights, device, downscale, degrade, crf, frames, max_pixels, score, backend,
             as_json):
    """PSNR and SSIM on the luma, next to bicubic, as super-resolution papers score,
    or the luma PSNR of a compressed video upscaled by the pipeline.

    --data: Y is BT.601 as MATLAB's rgb2ycbcr; each image is cropped to a
    multiple of the scale, shrunk (MATLAB-style bicubic by default), optionally
    compressed, upscaled, and scored with a border of `scale` pixels left out,
    beside MATLAB's bicubic upscale of it (the MATLAB bicubic column). Each file
    counts once, as with --video: a link or hard link to one is skipped.

    --video: the clip is shrunk as `ffmpeg -vf scale` does (bicubic), encoded
    by x264 (preset medium) at each of --crfs, upscaled by `srpipe upscale` with the
    model, as it runs by default and with --exact (--score), and with bicubic,
    and each frame's luma is scored against the original (border = scale);
    the table gives the mean over frames. Given a folder, every clip in it is
    scored, and the table gives the mean over clips per category (each
    sub-folder: text/, faces/, night/...) and over all of them.

    \b
    Examples:
      srpipe eval -m espcn-x3 --data Set5/
      srpipe eval -m espcn --data Set14/ --downscale opencv-cubic
      srpipe eval -m espcn --data Set5/ --downscale swscale-bicubic --degrade x264:crf=23
      srpipe eval -m espcn --video clip.mp4 --crfs 0,23,30
      srpipe eval -m espcn --video clip.mp4 --crfs 23 --score default
      srpipe eval -m espcn --video my-clips/ --crfs 23 --json > scores.json
    """
    from srpipe.backends import load_upscaler
    from srpipe.device import resolve_device
    from srpipe.errors import SrpipeError
    from srpipe.models import for_stream, model_of_plugin
    from srpipe.plugins import collect_backends, collect_models, get_plugin_manager

    if (data is None) == (video is None):
        raise click.UsageError("give either --data (a folder of images) or --video (a clip)")
    chosen = "--data" if data is not None else "--video"
    for option, name, value, kind, instead in (  # each kind of run's own: with the other, they would change nothing
            ("--downscale", "downscale", downscale, "--data", "--video clips are shrunk as ffmpeg's scale filter does"),
            ("--degrade", "degrade", degrade, "--data", "--video clips are encoded by x264 at each of --crfs"),
            ("--crfs", "crf", crf, "--video", "--data images are compressed by --degrade"),
            ("--frames", "frames", frames, "--video", "--data scores every image")):
        if kind != chosen and _set_apart_from_default(name, value):
            raise click.UsageError(f"{option} goes with {kind}: {instead}; leave it out")
    if data is not None and score == "both":
        raise click.UsageError("--score both goes with --video; with --data give --score default or --score exact")
    if data is not None:
        check_image_folder(data)
    score = score or ("both" if video is not None else "default")
    pm = get_plugin_manager()
    models = collect_models(pm)
    spec, scale = models.upscaler(model, whole_scale(scale, "eval"), weights)
    if data is not None:  # images are scored with what 'srpipe upscale' runs on an image
        spec = models.for_images(spec, scale, weights)
        model = spec.name
    device = resolve_device(device, uses_gpu=spec.uses_gpu)
    backends = collect_backends(pm)
    chosen = backends.find(backend)
    if score != "default" and spec.accepts_backend and chosen is not None and not chosen.exact:
        raise SrpipeError(f"--backend {backend} is not exact, so it cannot run the --exact path that --score {score} "
                          "scores; give --score default or another backend")
    upscaler = load_upscaler(spec, backends, scale=scale, device=device, weights=weights, backend=backend,
                             exact=score == "exact")
    from srpipe.models import UpscalerTraits

    if score != "default" and not spec.accepts_backend and UpscalerTraits.of(upscaler).receptive_radius is None:
        # no tile reuse, int8 or other network for --exact to leave out: its column would repeat the default's
        if click.get_current_context().get_parameter_source("score") != click.core.ParameterSource.DEFAULT:
            warnings.warn(f"{model} runs the same with --exact (it has no tile reuse or int8 to leave out): it is "
                          f"scored once, not as --score {score} would")
        score = "default"
    from srpipe.plugin_guard import plugin_code

    if video is not None:
        _evaluate_video(model, video, upscaler.scale, weights, backend, crf, frames, as_json, device, score,
                        max_pixels)
        return
    from srpipe.default_plugins.espcn.evaluate import evaluate_folder
    from srpipe.ensemble import for_picture
    from srpipe.pipeline import checked_upscale

    def as_upscale_runs_it(luma):  # each picture a stream of its own
        with plugin_code(f"model {model!r}"):  # its prints, working folder and handlers: as upscale's
            picture = for_picture(for_stream(upscaler, model_of_plugin(spec)), f"model {model!r}",
                                  exact=score == "exact")
            return checked_upscale(picture, luma, upscaler.scale, 8, False, f"model {model!r}")

    report = evaluate_folder(data, upscaler.scale, as_upscale_runs_it,
                             downscale=downscale, degrade=degrade, max_pixels=max_pixels)
    if as_json:
        click.echo(json.dumps({"model": model, "scale": upscaler.scale, "downscale": downscale, "degrade": degrade,
                               **report}, indent=2))
    else:
        # the reference beside the model: MATLAB's bicubic upscale of the LR (imresize), as papers score it,
        # which -m bicubic (srpipe's own, in the model's column) is not
        click.echo(f"{'image':<14} {model + ' PSNR/SSIM':>24} {'MATLAB bicubic PSNR/SSIM':>24}")
        for row in report["images"] + [{"name": "mean", **report["mean"]}]:
            click.echo(f"{shown(row['name']):<14} {row['psnr']:>15.2f} / {row['ssim']:.4f} "
                       f"{row['bicubic_psnr']:>15.2f} / {row['bicubic_ssim']:.4f}")
    if report["not_scored"]:
        count, total = len(report["not_scored"]), len(report["not_scored"]) + len(report["images"])
        raise SrpipeError(f"{count} of {total} images could not be scored (each named above); the scores are of "
                          "the others")


def _set_apart_from_default(name: str, value) -> bool:
    """Whether the user gave the current command's option ``name`` a value other than its default."""
    context = click.get_current_context()
    if context.get_parameter_source(name) in (click.core.ParameterSource.DEFAULT, None):
        return False
    param = next(param for param in context.command.params if param.name == name)
    default = param.get_default(context)
    if default is None or default is UNSET:  # an option without a default: any value given is apart from it
        return True
    return value != param.type_cast_value(context, default)  # as the option's type converts it (--crfs: a list)


def _evaluate_video(model, video, scale, weights, backend, crfs, frames, as_json, device="cpu", score="both",
                    max_pixels=None):
    from srpipe.default_plugins.espcn.video_eval import evaluate_folder_of_clips, evaluate_video
    from srpipe.errors import SrpipeError

    models = {"bicubic": None, **({model: weights} if score != "exact" else {})}
    exact_models = {model: weights} if score != "default" else {}
    options = {"backend": backend, "frames": frames, "device": device, "exact_models": exact_models,
               "max_pixels": max_pixels}
    from srpipe.plugin_guard import prints_to_stderr

    quiet_prints = prints_to_stderr() if as_json else contextlib.nullcontext()  # the JSON is standard output's
    if Path(video).is_dir():
        with quiet_prints:
            report = evaluate_folder_of_clips(video, models, scale, crfs, **options)
        # a category (a sub-folder) named "all" is told from the row of all clips by its slash; one
        # named with a newline or a terminal escape keeps to its row
        rows = [(f"crf {crf} {shown(name)}", means[index]["clips"], means[index]["psnr"])
                for index, crf in enumerate(crfs)
                for name, means in [*((name + "/" if name == "all" else name, means)
                                      for name, means in report["categories"].items()), ("all", report["all"])]]
        header, align = ("crf, category", "clips"), "<"
    else:
        with quiet_prints:
            report = evaluate_video(video, models, scale, crfs, **options)
        rows = [(row["crf"], row["frames"], row["psnr"]) for row in report["crfs"]]
        header, align = ("crf", "frames"), ">"
    report["model"] = model
    _show_video_report(report, rows, header, align, model, as_json)
    if report.get("not_scored"):
        count, total = len(report["not_scored"]), len(report["not_scored"]) + len(report["clips"])
        raise SrpipeError(f"{count} of {total} clips could not be scored (each named above); the scores are "
                          "of the others")


def _difference(value: float) -> str:
    """A difference in dB with its sign, +0.00 for what rounds to nothing (never -0.00)."""
    return f"{round(value, 2) + 0.0:+.2f}"


def _show_video_report(report, rows, header, align, model, as_json):
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    # the model's columns: the path scored (or both, and what the default loses against --exact)
    columns = [label for label in (model, f"{model} --exact") if label in rows[0][2]]
    both = len(columns) == 2
    width = max(4, *(len(str(key)) for key, _, _ in rows), len(header[0]))
    click.echo(f"{header[0]:{align}{width}} {header[1]:>6} " + " ".join(f"{label + ' Y-PSNR':>20}" for label in columns)
               + (f" {'vs exact':>8}" if both else "") + f" {'bicubic Y-PSNR':>16} {'gain':>7}")
    for key, count, psnr in rows:
        scores, base = [psnr[label] for label in columns], psnr["bicubic"]
        click.echo(f"{key:{align}{width}} {count:>6} " + " ".join(f"{value:>20.2f}" for value in scores)
                   + (f" {_difference(scores[0] - scores[1]):>8}" if both else "")
                   + f" {base:>16.2f} {_difference(scores[0] - base):>7}")
    clips = report["clips"] if "clips" in report else [report]
    # (crf, what ran) where a stand-in ran (espcn-lossless on lossless encodes, say), counting clips
    stand_ins = collections.Counter(pair for clip in clips for pair in {
        (row["crf"], row["ran"][label]) for row in clip["crfs"] for label in columns
        if row["ran"][label].split()[0] != model})
    if stand_ins:
        of_all = f" of {len(clips)} clips" if len(clips) > 1 else ""
        click.echo("; ".join(f"at crf {crf}, {model} ran as {ran}" + (f" on {count}{of_all}" if of_all else "")
                             for (crf, ran), count in sorted(stand_ins.items())))
