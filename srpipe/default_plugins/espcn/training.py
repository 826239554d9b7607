"""Train an ESPCN-family luma upscaler and score it.

:func:`train` takes a :class:`TrainSettings`; ``srpipe train espcn`` and
``scripts/train_espcn.py`` (through :func:`main`, its command line) both call it. Every shipped
weights file records its exact command in ``meta["command"]``. Re-running with ``resume``
continues from OUT/last.pt. Data folders are the caller's; ``$SRPIPE_DATA`` (a folder laid out
as ``sr/train/T91``, ``sr/test/Set5``...) gives the command line its defaults.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from srpipe import cache
from srpipe.default_plugins.espcn.color import load_y, modcrop
from srpipe.default_plugins.espcn.config import TRAINING_PATCH
from srpipe.default_plugins.espcn.data import PatchSampler, cached_degraded_pairs, cached_pairs, eval_batches
from srpipe.default_plugins.espcn.degrade import KERNELS
from srpipe.default_plugins.espcn.evaluate import evaluate_folder, training_images
from srpipe.default_plugins.espcn.network import ESPCN, ESPCNConfig
from srpipe.default_plugins.espcn.task import SRTask
from srpipe.default_plugins.espcn.upscaler import ESPCNUpscaler
from srpipe.errors import SrpipeError
from srpipe.images import image_size
from srpipe.nn.checkpoint import load_checkpoint, make_checkpoint, network_from_checkpoint, save_checkpoint
from srpipe.nn.expanded import expand, is_expanded
from srpipe.nn.trainer import TrainConfig, Trainer, seed_everything
from srpipe.outputs import write_atomically

CACHE = cache.cache_dir("training")  # the LR/HR pairs and degraded clips, made once per data and settings
PRESETS = {
    "paper": dict(features=(64, 32), kernels=(5, 3, 3), activation="tanh", residual=False),
    "shipped": dict(features=(64, 24, 24, 24, 24, 24, 64), kernels=(5, 1, 3, 3, 3, 3, 1, 3),
                    activation="prelu", residual=True),
    "fsrcnn": dict(features=(56, 12, 12, 12, 12, 12, 56), kernels=(5, 1, 3, 3, 3, 3, 1, 3),
                   activation="prelu", residual=True),
}


def ints(text: str) -> tuple[int, ...]:
    return tuple(int(t) for t in text.split(","))


@dataclass
class TrainSettings:
    """One training run; the command line of :func:`main` spells each field as ``--name``."""

    scale: int
    out: str  # run folder: last.pt, final.pt, log.jsonl, result.json
    train: list[str]  # folders of training images
    val: list[str] = field(default_factory=list)  # folders scored each epoch
    preset: str = "fsrcnn"
    features: tuple[int, ...] | None = None
    kernels: tuple[int, ...] | None = None
    activation: str | None = None
    residual: bool | None = None
    padding_mode: str = "zeros"
    frames: int = 1  # a temporal network's input frames: the current one and those before it
    unshuffle: int = 1  # ESPCNConfig.unshuffle
    expand: bool = False  # train the KxK convolutions as branches (srpipe.nn.expanded); saved plain
    mismatch: float = 0.0  # share of earlier frames cropped misaligned (PatchSampler)
    shuffle: str = "pixelshuffle"
    loss: str = "l1"
    border: int = 0
    patch: int = TRAINING_PATCH
    batch: int = 32
    lr: float = 1e-3
    last_lr_mult: float = 1.0
    epochs: int = 20
    steps_per_epoch: int = 500
    stop_after: int | None = None
    seed: int = 0
    threads: int = 1
    rescales: tuple[float, ...] = (1.0,)
    holdout: int = 0
    degrade: str = "none"
    down_kernels: tuple[str, ...] = KERNELS
    crf_range: tuple[int, ...] = (18, 36)
    lossless: float = 0.15
    jpeg: float = 0.1
    variants: int = 4
    clip_frames: int = 6
    init: str | None = None
    grow: bool = False
    teacher: str | None = None  # a checkpoint whose outputs the network also learns (SRTask)
    teacher_weight: float = 0.5
    cache_dir: str | None = None  # where LR/HR pairs are cached; None: CACHE
    max_pixels: int | None = None  # the --val images' limit when scored at the end (None: the default)
    resume: bool = False
    overwrite: bool = False  # an unfinished run in ``out`` is started afresh rather than refused
    export: str | None = None
    command: str = ""  # recorded in the weights' meta; default: this process's command line


def parse_args(argv=None) -> TrainSettings:
    """The settings of a ``scripts/train_espcn.py`` command line."""
    data = os.environ.get("SRPIPE_DATA")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", type=int, required=True)
    p.add_argument("--preset", choices=sorted(PRESETS), default="fsrcnn")
    p.add_argument("--features", type=ints, help="hidden widths, e.g. 64,32 (overrides the preset)")
    p.add_argument("--kernels", type=ints, help="kernel sizes, one more than --features")
    p.add_argument("--activation", choices=("tanh", "relu", "prelu"))
    p.add_argument("--residual", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--padding-mode", default="zeros", choices=("zeros", "reflect", "replicate"))
    p.add_argument("--frames", type=int, default=1,
                   help="input frames of a temporal network: the current one and those before it, aligned "
                        "(needs --degrade video; see srpipe.default_plugins.espcn.temporal)")
    p.add_argument("--unshuffle", type=int, default=1,
                   help="run the convolutions on blocks of NxN pixels as channels (ESPCNConfig.unshuffle)")
    p.add_argument("--expand", action="store_true",
                   help="train each KxK convolution as ECBSR's branches, folded into one kernel: the same network "
                        "when saved and run, trained better (srpipe.nn.expanded)")
    p.add_argument("--mismatch", type=float, default=0.0,
                   help="share of earlier frames cropped misaligned in training, as a moving subject gives")
    p.add_argument("--shuffle", default="pixelshuffle", choices=("pixelshuffle", "einops"))
    p.add_argument("--loss", default="l1", choices=("l1", "mse"))
    p.add_argument("--border", type=int, default=0, help="LR pixels at patch edges left out of the loss")
    p.add_argument("--patch", type=int, default=TRAINING_PATCH, help="LR patch size")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--last-lr-mult", type=float, default=1.0, help="learning-rate factor of the last layer")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--steps-per-epoch", type=int, default=500)
    p.add_argument("--stop-after", type=int, help="stop after this epoch (resume later with --resume)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--train", nargs="+", required=not data,
                   default=[str(Path(data, "sr/train/T91")), str(Path(data, "sr/train/BSD200"))] if data else None,
                   help="folders of training images (default: $SRPIPE_DATA/sr/train/{T91,BSD200})")
    p.add_argument("--rescales", type=lambda t: tuple(float(x) for x in t.split(",")), default=(1.0,),
                   help="HR rescale factors for augmentation, e.g. 1,0.9,0.8,0.7,0.6")
    p.add_argument("--val", nargs="*",
                   default=[str(Path(data, "sr/test/Set5")), str(Path(data, "sr/test/Set14"))] if data else [],
                   help="folders scored each epoch (default: $SRPIPE_DATA/sr/test/{Set5,Set14})")
    p.add_argument("--holdout", type=int, default=0,
                   help="keep this many images of the last --train folder (evenly spaced) out of training; "
                        "they are scored each epoch as 'holdout-*' (clean, non-antialiased, x264 crf 23 and 30)")
    p.add_argument("--degrade", choices=("none", "video"), default="none",
                   help="video: train on pan clips shrunk with --kernels and really encoded by x264 "
                        "(see srpipe.default_plugins.espcn.data.degraded_clips)")
    p.add_argument("--down-kernels", dest="down_kernels", type=lambda t: tuple(t.split(",")), default=KERNELS,
                   help="downscaling kernels (srpipe.default_plugins.espcn.degrade.KERNELS) drawn from for "
                        "--degrade video (repeat a name to weight it)")
    p.add_argument("--crf-range", type=ints, default=(18, 36), help="x264 crf range for --degrade video")
    p.add_argument("--lossless", type=float, default=0.15, help="share of lossless clips for --degrade video")
    p.add_argument("--jpeg", type=float, default=0.1, help="share of JPEG stills for --degrade video")
    p.add_argument("--variants", type=int, default=4, help="degraded clips per image for --degrade video")
    p.add_argument("--clip-frames", type=int, default=6, help="frames per clip for --degrade video")
    p.add_argument("--init", help="checkpoint whose layers of matching shape initialise the network")
    p.add_argument("--grow", action="store_true",
                   help="--init from a narrower network of the same layers (see init_from)")
    p.add_argument("--teacher", help="checkpoint of a network of the same scale and input whose outputs this one "
                                     "also learns (distillation)")
    p.add_argument("--teacher-weight", type=float, default=0.5,
                   help="share of the loss that is the distance to the teacher's outputs")
    p.add_argument("--out", required=True, help="run folder: last.pt, final.pt, log.jsonl, result.json")
    p.add_argument("--cache-dir", help=f"where the LR/HR pairs are cached (default {CACHE})")
    p.add_argument("--max-pixels", type=int, help="the largest --val image scored at the end, in pixels")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--overwrite", action="store_true", help="start an unfinished run in --out afresh")
    p.add_argument("--export", help="write the final weights-only checkpoint here")
    return TrainSettings(**vars(p.parse_args(argv)))


def network_config(a: TrainSettings) -> ESPCNConfig:
    cfg = dict(PRESETS[a.preset])
    for key in ("features", "kernels", "activation", "residual"):
        if getattr(a, key) is not None:
            cfg[key] = getattr(a, key)
    try:
        return ESPCNConfig(scale=a.scale, shuffle=a.shuffle, padding_mode=a.padding_mode, frames=a.frames,
                           unshuffle=a.unshuffle, **cfg)
    except ValueError as exc:  # kernels of even size, a missing width...
        raise SrpipeError(f"no such network: {exc}") from None


def init_from(net: ESPCN, path: str, grow: bool = False) -> None:
    """Copy the tensors of ``path`` whose names and shapes match (e.g. another scale's trunk).

    With ``grow``, a network of the same layers but wider hidden layers starts as the
    checkpoint's: each smaller tensor fills the leading corner of the wider one, and the
    weights from the new input channels are zero, so the new channels start without effect
    and the network computes exactly what the checkpoint does until training moves them.
    A temporal network (``frames`` above 1) starts from a single-frame checkpoint with the first
    convolution's weights shared out equally over its input frames: on a still picture it
    computes what the checkpoint does, and where frames differ only by the codec's noise it
    starts from their average. (Zero weights on the earlier frames would start it at the
    checkpoint's optimum, where their gradients cancel: training left them near zero.)"""
    own = net.state_dict()
    src = load_checkpoint(path)["state_dict"]
    for k, v in src.items():
        if k not in own:
            continue
        if own[k].shape == v.shape:
            own[k] = v
        elif k == "body.0.weight" and net.config.frames > 1 and v.shape[1] == net.config.channels:
            if own[k].shape[0] != v.shape[0] or own[k].shape[2:] != v.shape[2:]:
                raise SrpipeError(f"{path} is a single-frame network of another first layer; a temporal network "
                                  "starts from one of its own widths and kernels (widen it with --grow first)")
            own[k] = v.repeat(1, net.config.frames, 1, 1) / net.config.frames
        elif grow and own[k].dim() == v.dim() and all(a >= b for a, b in zip(own[k].shape, v.shape)):
            if v.dim() == 4:  # conv weight (out, in, kh, kw)
                own[k][:, v.shape[1]:] = 0
            own[k][tuple(slice(0, n) for n in v.shape)] = v
    net.load_state_dict(own)


def large_enough(paths: list[Path], least: int, what: str) -> list[Path]:
    """The images of ``paths`` at least ``least`` pixels a side, read from their headers (an
    unread header: kept); each other one is named in a warning, as too small for ``what``."""
    kept = []
    for path in paths:
        size = image_size(str(path))
        if size is not None and min(size) < least:
            warnings.warn(f"left {path} out: it is {size[0]}x{size[1]}, smaller than {what} ({least}x{least})")
        else:
            kept.append(path)
    return kept


def holdout_batches(paths, scale: int, frames: int = 1) -> dict[str, list]:
    """Validation batches of the held-out images under the degradations a model must handle.

    The x264 sets take the middle frame of a 5-frame pan clip (a P or B frame), shrunk as
    ``ffmpeg -vf scale`` does; a temporal network's input (``frames`` above 1) has the frames
    before it (:func:`srpipe.default_plugins.espcn.temporal.stack_clip`)."""
    from srpipe.default_plugins.espcn.degrade import degrade_frames, downscale, pan_offsets
    from srpipe.default_plugins.espcn.temporal import stack_clip

    sets = {"holdout-clean": ("matlab-bicubic", "none", 1), "holdout-noaa": ("opencv-cubic", "none", 1),
            "holdout-crf23": ("swscale-bicubic", "x264:crf=23", 5),
            "holdout-crf30": ("swscale-bicubic", "x264:crf=30", 5)}
    out = {}
    for name, (kernel, degradation, n) in sets.items():
        out[name] = []
        for path in paths:
            hr = modcrop(load_y(path), scale)
            offsets = pan_offsets(n, (scale, scale // 2))
            h = hr.shape[0] - offsets[-1][0] - (hr.shape[0] - offsets[-1][0]) % scale
            w = hr.shape[1] - offsets[-1][1] - (hr.shape[1] - offsets[-1][1]) % scale
            lrs = degrade_frames(np.stack([downscale(hr[y:y + h, x:x + w], scale, kernel) for y, x in offsets]),
                                 degradation)
            y, x = offsets[n // 2]
            out[name].append((torch.from_numpy(stack_clip(lrs, frames)[n // 2])[None].float() / 255.0,
                              torch.from_numpy(hr[y:y + h, x:x + w].astype(np.float32))[None, None] / 255.0))
    return out


def main(argv=None) -> dict:
    """Train as the command line ``argv`` says; returns what goes into result.json."""
    settings = parse_args(argv)
    settings.command = "python " + " ".join(shlex.quote(x) for x in [sys.argv[0], *(argv or sys.argv[1:])])
    return train(settings)


def train(a: TrainSettings) -> dict:
    """Run the training ``a`` describes; returns what goes into result.json (empty when it
    stopped early, to be resumed)."""
    torch.set_num_threads(a.threads)
    if a.teacher and not 0 <= a.teacher_weight <= 1:
        raise SrpipeError(f"--teacher-weight must be 0-1, not {a.teacher_weight}")
    cache_dir = a.cache_dir or str(CACHE)
    command = a.command or " ".join(shlex.quote(x) for x in sys.argv)
    seed_everything(a.seed)
    net = ESPCN(network_config(a))
    if a.init:
        init_from(net, a.init, a.grow)
    parameters = sum(p.numel() for p in net.parameters())  # of the network as saved and run
    if a.expand and not is_expanded(expand(net)):
        raise SrpipeError("--expand trains 3x3 and larger convolutions as branches, and this network has none; "
                          "leave out --expand")
    last = list(net.last_layer.parameters())
    rest = [p for p in net.parameters() if all(p is not q for q in last)]
    groups = [{"params": rest}, {"params": last, "lr": a.lr * a.last_lr_mult}]
    train, held = training_images(a.train, a.holdout)
    train = large_enough(train, a.patch * a.scale, f"a training patch at x{a.scale}")
    if a.degrade == "video":
        pairs = cached_degraded_pairs(train, a.scale, cache_dir, variants=a.variants, frames=a.clip_frames,
                                      kernels=a.down_kernels, crf_range=a.crf_range, lossless=a.lossless,
                                      jpeg=a.jpeg, seed=a.seed, stack=a.frames)
    elif a.frames > 1:
        raise SrpipeError("a temporal network (--frames above 1) trains on clips: add --degrade video")
    else:
        pairs = cached_pairs(train, a.scale, a.rescales, cache_dir)
    sampler = PatchSampler(pairs, a.scale, a.patch, a.batch, a.steps_per_epoch, mismatch=a.mismatch)
    val = {Path(v).name: eval_batches(v, a.scale, a.frames) for v in a.val}
    val.update(holdout_batches(held, a.scale, a.frames))
    degradation = {k: getattr(a, k) for k in ("degrade", "down_kernels", "crf_range", "lossless", "jpeg",
                                              "variants", "clip_frames", "mismatch")} if a.degrade == "video" else {}
    meta = {"command": command, "data": [str(Path(t).name) for t in a.train], "rescales": a.rescales,
            "holdout": [p.name for p in held], **degradation,
            "macs_per_lr_pixel": net.macs_per_lr_pixel(),
            "parameters": parameters, **({"expanded": True} if a.expand else {})}
    cfg = TrainConfig(epochs=a.epochs, steps_per_epoch=a.steps_per_epoch, lr=a.lr, seed=a.seed,
                      out_dir=a.out, stop_after=a.stop_after)
    teacher = None
    if a.teacher:
        teacher = network_from_checkpoint(load_checkpoint(a.teacher), a.teacher)
        if not isinstance(teacher, ESPCN):
            raise SrpipeError(f"the teacher {a.teacher} is not an ESPCN network")
        if (teacher.config.scale, teacher.config.frames) != (a.scale, a.frames):
            raise SrpipeError(f"the teacher {a.teacher} is x{teacher.config.scale} on {teacher.config.frames} "
                              f"frame(s); this network is x{a.scale} on {a.frames}")
        meta["teacher"] = {"path": a.teacher, "sha256": cache.file_digest(a.teacher), "weight": a.teacher_weight}
    # what a resume must share with the run's start besides the network and schedule (the teacher by
    # its digest: the same file given by another path is the same teacher). The data by its real
    # folders and files, not the names meta["data"] keeps: another folder of the same name is other
    # data. The batch size: the schedule counts steps, and result.json records one for the run.
    run = {"data": meta["data"], "data folders": [os.path.realpath(folder) for folder in a.train],
           "data files": sorted(os.path.realpath(path) for path in train + held), "batch size": a.batch,
           "rescales": a.rescales, "holdout": meta["holdout"], "degrade": a.degrade,
           **degradation, "teacher": meta["teacher"]["sha256"] if teacher else None,
           "teacher_weight": a.teacher_weight if teacher else None}
    trainer = Trainer(net, SRTask(a.scale, a.loss, a.border, teacher, a.teacher_weight), sampler, val, cfg,
                      param_groups=groups, meta=meta, same_on_resume=run)
    if teacher is not None:
        teacher.to(trainer.device)  # beside the network it teaches
    print(f"{net.macs_per_lr_pixel()} MAC/LR px, {meta['parameters']} parameters, "
          f"{len(train)} training images", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    history = trainer.fit(resume=a.resume, overwrite=a.overwrite)
    if trainer.epoch < a.epochs:
        print(f"stopped after epoch {trainer.epoch} of {a.epochs}; continue with --resume", file=sys.stderr)
        return {}
    net = trainer.saved_model().cpu()
    upscaler = ESPCNUpscaler(make_checkpoint(net), "cpu")
    scores = {Path(v).name: evaluate_folder(v, a.scale, lambda x: upscaler.for_stream().upscale(
        x, bit_depth=8, full_range=False), max_pixels=a.max_pixels)["mean"] for v in a.val}
    result = {**meta, "epochs": a.epochs, "steps": a.epochs * a.steps_per_epoch,
              "batch": a.batch, "patch": a.patch,
              "train_minutes": round(sum(h["epoch_s"] for h in history) / 60, 2),
              "wall_minutes_this_process": round((time.perf_counter() - t0) / 60, 2),
              "scores": scores,
              # the held-out images' scores at the last epoch (every epoch's: log.jsonl)
              "holdout_scores": {key: value for key, value in (history[-1] if history else {}).items()
                                 if key.startswith("holdout-")}}
    write_atomically(Path(a.out, "result.json"), json.dumps(result, indent=1).encode())
    if a.export:
        save_checkpoint(make_checkpoint(net, result), a.export)
    print(json.dumps({k: result[k] for k in ("macs_per_lr_pixel", "train_minutes", "scores", "holdout_scores")}))
    return result
