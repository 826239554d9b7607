"""Built-in ESPCN upscalers (Shi et al. 2016) with the weights shipped in srpipe/default_plugins/espcn/weights."""

import functools

from srpipe import hookimpl
from srpipe.backends import Backend, numpy_io
from srpipe.models import ModelSpec
from srpipe.nn.registry import NetworkSpec

SCALES = (2, 3, 4)


def load(scale: int, device: str = "cpu", weights=None, backend: Backend | None = None, kind: str = "default",
         pick: bool = False, fast: bool = False, exact: bool = False):
    """The shipped checkpoint for ``scale`` (``kind``: ``default``, the video-trained weights
    where shipped, else clean; ``image``; ``midbitrate`` or ``lowbitrate``, for H.264 by its
    quantizer; or ``clean``), or the user's ``weights``, run by
    ``backend`` (default torch). ``pick`` (with ``kind="image"``): the still-image weights, or
    the clean ones for a picture that looks shrunk with antialiasing, where a fitted look ships
    for the scale (:mod:`srpipe.default_plugins.espcn.still_pick`); with ``kind="lossless"``
    (``espcn-lossless``, near-lossless video), the clean ones or ``default``'s, by the look for
    video. ``fast`` (``-m espcn``; the ``-xN`` names fix their weights): on the CPU and not
    ``exact``, the fast network where one ships for the scale
    (:func:`srpipe.default_plugins.espcn.shipped.fast_weights`), the network being what a video
    costs there."""
    from srpipe.default_plugins.espcn.shipped import (
        default_weights,
        fast_weights,
        shipped_weights,
        still_pick_path,
        video_pick_path,
    )
    from srpipe.default_plugins.espcn.upscaler import ESPCNUpscaler
    from srpipe.errors import CheckpointError, SrpipeError

    look = video_pick_path(scale) if kind == "lossless" else still_pick_path(scale)
    if pick and weights is None and look.exists():
        from srpipe.default_plugins.espcn.still_pick import PickedWeights, StillPick

        if kind == "lossless":  # espcn's own path where the first frame does not look antialiased
            video = load(scale, device, None, backend, "default", fast=True, exact=exact)
            return PickedWeights(video, lambda: load(scale, device, None, backend, "clean"), StillPick.load(look),
                                 "video", load_clean_now=True)
        image = load(scale, device, None, backend, kind)
        return PickedWeights(image, lambda: load(scale, device, None, backend, "clean"), StillPick.load(look))

    path = weights or (default_weights(scale) if kind == "default" else shipped_weights(scale, kind))
    fast = fast and kind == "default" and weights is None and not exact and device == "cpu" and \
        fast_weights(scale).exists()
    if fast:
        path = fast_weights(scale)
    if weights is None and not path.exists():
        raise SrpipeError(f"no ESPCN weights are shipped for x{scale}; "
                          "train some with 'srpipe train espcn' and pass --weights")
    try:
        upscaler = ESPCNUpscaler(path, device=device, backend=backend, variant="fast network" if fast else None)
    except CheckpointError as exc:
        raise SrpipeError(str(exc)) from exc
    if weights is not None and scale is not None and upscaler.scale != scale:
        # the scale asked for is -s, or a name of one scale (espcn-x2) where no -s was given
        raise SrpipeError(f"{weights} is an x{upscaler.scale} model, and x{scale} was asked for (by -s or the model's "
                          f"name); run it with -m espcn -s {upscaler.scale}, or give x{scale} weights")
    return upscaler


def shipped_network(scale: int = 2, kind: str = "default"):
    """The torch module of the shipped x``scale`` model (for ``srpipe inspect``)."""
    from srpipe.default_plugins.espcn.shipped import default_weights, shipped_weights
    from srpipe.nn.checkpoint import load_checkpoint, network_from_checkpoint

    path = default_weights(scale) if kind == "default" else shipped_weights(scale, kind)
    return network_from_checkpoint(load_checkpoint(path), str(path)).eval()


def _fixed(scale: int, kind: str = "default"):
    return lambda scale=scale, device="cpu", weights=None, backend=None: load(scale, device, weights, backend, kind)


def _time_cudnn_algorithms(device) -> None:
    """On CUDA, let cuDNN time its convolution algorithms on each new input shape and keep the
    fastest: a video's tiles come in a few shapes, each timed once (scripts/gpu_speed.py measures
    the network with and without it)."""
    import torch

    if device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True


def _channels_last(network, device):
    """``network.convolved`` on NHWC tensors: oneDNN's fastest convolution layout on the CPU
    (docs/design-notes.md)."""
    import torch

    _time_cudnn_algorithms(device)
    network.to(memory_format=torch.channels_last)

    def convolved(x):
        return network.convolved(x.contiguous(memory_format=torch.channels_last))

    return numpy_io(convolved) if device == "cpu" else convolved


def _half(network, device):
    """``network.convolved`` in float16 on NHWC tensors, float32 in and out: what CUDA's
    tensor cores run fastest. A copy of the network is halved; the upscaler keeps its own."""
    import copy

    import torch

    _time_cudnn_algorithms(device)
    half = copy.deepcopy(network).half().to(memory_format=torch.channels_last)

    def convolved(x):
        return half.convolved(x.half().contiguous(memory_format=torch.channels_last)).float()

    return numpy_io(convolved) if device == "cpu" else convolved


TORCH = Backend(
    name="torch",
    devices=("cpu", "cuda"),
    priority=10,
    is_available=lambda: True,
    prepare=_channels_last,
    description="PyTorch, the reference (and the one for CUDA)",
)


# Below torch, so auto keeps float32 on CUDA: on the GPU measured, whole commands ran no faster in
# float16 (docs/speed.md#gpu). Its quality was measured on the CPU (docs/design-notes.md).
TORCH_FP16 = Backend(
    name="torch-fp16",
    devices=("cuda",),
    priority=5,
    is_available=lambda: True,
    prepare=_half,
    description="PyTorch in float16 on CUDA (tensor cores)",
    tile=1024,  # fewer, larger launches on a GPU; not tuned
)


def _compiled(network, device):
    from srpipe.default_plugins.espcn.compiled import prepare_compiled

    _time_cudnn_algorithms(device)  # for the convolutions TorchInductor leaves to cuDNN
    return prepare_compiled(network, device)


# Below torch too: compiled, the network alone ran faster than in float16 (docs/backends.md), but
# srpipe's pipeline with it has not been measured on a GPU, and each new frame size compiles first.
TORCH_COMPILE = Backend(
    name="torch-compile",
    devices=("cuda",),
    priority=1,
    is_available=lambda: True,
    prepare=_compiled,
    description="PyTorch compiled by torch.compile in float16 on CUDA (each frame size compiles once per machine)",
    tile=2048,  # whole frames up to 2048 LR pixels a side (1080p, 1440p): a compiled shape each
)


@hookimpl
def register_backends(register):
    register(TORCH)
    register(TORCH_FP16)
    register(TORCH_COMPILE)


@hookimpl
def register_commands(cli):
    from srpipe.default_plugins.espcn.commands import evaluate, train_espcn

    cli.commands["train"].add_command(train_espcn)
    cli.add_command(evaluate)


#: The weights 'espcn' runs on H.264 video from a mean quantizer (QP) on: (QP, kind). The QPs were
#: chosen on the evaluation set's val split, where each kind gained over the one below it from there
#: on (docs/evaluation.md, "Compressed video").
_MID_QP, _LOW_QP = 24, 32
COARSE_QUANTIZER_KINDS = ((_MID_QP, "midbitrate"), (_LOW_QP, "lowbitrate"))

WEIGHT_KINDS = {
    "default": ("espcn", "ESPCN sub-pixel CNN on the luma (x2 by default), for video: trained on x264-compressed "
                         "pan clips and several shrink kernels (x2 on the CPU runs a faster network distilled from "
                         "these weights unless --exact); on still images espcn-image stands in where it has the "
                         "scale, on lossless video espcn-lossless, on H.264 at middling and low bit rates "
                         "espcn-midbitrate and espcn-lowbitrate (with --exact too; espcn-x2 keeps these weights)"),
    "image": ("espcn-image", "ESPCN for still images, what 'espcn' runs on an image: weights trained on clean "
                             "shrinks of T91 + BSD200 with and without antialiasing, or the clean weights for a "
                             "picture that looks shrunk with antialiasing"),
    "lossless": ("espcn-lossless", "ESPCN for video coded losslessly or nearly so, what 'espcn' runs on such a "
                                   "file (a lossless codec, H.264 at fine quantizers): the clean weights where the "
                                   "first frame looks shrunk with antialiasing, else espcn's own"),
    "midbitrate": ("espcn-midbitrate", "ESPCN for video at middling bit rates, what 'espcn' runs at x2 on H.264 "
                                       f"coded at a mean quantizer (QP) of {_MID_QP} to {_LOW_QP - 1} (about x264's "
                                       "crf 22-29, common in phone recordings and downloads): the fast network "
                                       "fine-tuned on x264 at crf 17-29"),
    "lowbitrate": ("espcn-lowbitrate", "ESPCN for video at low bit rates, what 'espcn' runs at x2 on H.264 coded at a "
                                       f"mean quantizer (QP) of {_LOW_QP} or more (about crf 30 and up): the fast "
                                       "network fine-tuned on x264 at crf 25-40"),
    "clean": ("espcn-clean", "ESPCN trained on clean MATLAB-bicubic shrinks of T91 + BSD200 (the weights before "
                             "issue 17): best on clean, antialiased images; loses to bicubic on compressed or "
                             "aliased input"),
}


@hookimpl
def register_models(register):
    from srpipe.default_plugins.espcn.shipped import shipped_weights, video_pick_path

    for kind, (name, description) in WEIGHT_KINDS.items():
        if kind == "lossless":  # one picking model, no weights of its own
            scales = tuple(s for s in SCALES if video_pick_path(s).exists())
            if scales:
                register(ModelSpec(name=name, scales=scales, description=description,
                                   load=functools.partial(load, kind=kind, pick=True), accepts_backend=True,
                                   accepts_exact=True))
            continue
        scales = SCALES if kind == "default" else tuple(s for s in SCALES if shipped_weights(s, kind).exists())
        if not scales:
            continue
        default = kind == "default"
        register(ModelSpec(name=name, scales=scales, description=description,
                           load=functools.partial(load, kind=kind, pick=kind == "image", fast=default),
                           accepts_weights=True, accepts_backend=True, accepts_exact=default,
                           network=lambda scale=2, kind=kind: shipped_network(scale, kind),
                           image_model="espcn-image" if default else None,
                           near_lossless_model="espcn-lossless" if default else None,
                           coarse_quantizer_models=tuple((qp, WEIGHT_KINDS[coarse][0])
                                                         for qp, coarse in COARSE_QUANTIZER_KINDS) if default else ()))
        if kind in {coarse for _, coarse in COARSE_QUANTIZER_KINDS}:  # stand-ins of one scale: no -xN names
            continue
        for scale in scales:
            what = {"default": f"the video weights on every file ('espcn -s {scale}' runs them on a GPU or with "
                               "--exact where no stand-in fits the file)",
                    "image": "the still-image weights",
                    "clean": "the clean weights"}[kind]
            register(ModelSpec(name=f"{name}-x{scale}", scales=(scale,), description=f"ESPCN x{scale}: {what}",
                               load=_fixed(scale, kind), accepts_weights=True, accepts_backend=True,
                               network=lambda scale=scale, kind=kind: shipped_network(scale, kind)))


def _espcn_classes():
    from srpipe.default_plugins.espcn.network import ESPCN, ESPCNConfig

    return ESPCN, ESPCNConfig


@hookimpl
def register_networks(register):
    register(NetworkSpec(name="espcn", classes=_espcn_classes))
