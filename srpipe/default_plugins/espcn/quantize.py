"""int8 graphs of the shipped ESPCN networks for the ``openvino-int8`` backend: post-training
quantization by NNCF, calibrated on the training photos and generated line art, and the quality
gate a graph must pass to be shipped (issue #24).

Only ``scripts/quantize_espcn.py`` runs this; it needs NNCF (``pip install srpipe[quantize]``),
which srpipe itself never imports. A graph is kept beside its checkpoint as
``NAME.int8.xml``/``.bin`` with ``NAME.int8.json``, the record :func:`srpipe.default_plugins.espcn.
openvino_backend.shipped_int8` checks before it reads them: the checkpoint's SHA-256, the files'
SHA-256, the versions and settings that made them, and the gate's figures.

The gate (issue #24): each clip is shrunk by FFmpeg's bicubic and encoded by x264 at crf 0, 23
and 30 (``video_eval.shrink_and_encode``, as ``srpipe eval --video`` does), upscaled by the
float32 ``openvino`` backend, today's ``openvino-bf16`` and the int8 graph, and scored in luma
PSNR against the original. At each crf the int8 mean over the clips may be at most
:data:`MEAN_LOSS_DB` below float32's, and no clip more than :data:`CLIP_LOSS_DB`.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

MEAN_LOSS_DB = 0.1
CLIP_LOSS_DB = 0.3
GATE_CRFS = (0, 23, 30)
CLIP_SIDE = 12  # gate clips' sides are multiples of this: 4:2:0 fits them shrunk x2, x3 and x4


@dataclass(frozen=True)
class Recipe:
    """NNCF's settings for one candidate graph. ``float_convolutions`` are kept in float32:
    ``ends`` the first and last (the input's 8-bit codes, the residual's fine values), ``last``
    the last, ``none`` none (fastest: no float32 activations between layers); ``ranges``
    is NNCF's estimator of the activations' ranges: ``minmax`` clips nothing the calibration saw,
    ``histogram`` clips rare extremes for finer steps; ``equalization`` rescales the channels
    first (:func:`equalized`)."""

    name: str
    ranges: str = "minmax"
    float_convolutions: str = "ends"
    preset: str = "mixed"  # asymmetric activations: PReLU outputs are lopsided
    subset_size: int = 300
    fast_bias_correction: bool = True
    equalization: float = 0.0  # :func:`equalized`'s strength

    def nncf_arguments(self, model) -> dict:
        import nncf
        from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix
        from nncf.quantization.range_estimator import RangeEstimatorParametersSet

        convolutions = [op.get_friendly_name() for op in model.get_ordered_ops() if op.get_type_name() == "Convolution"]
        kept = {"ends": [convolutions[0], convolutions[-1]], "last": [convolutions[-1]], "none": []}[
            self.float_convolutions]
        ranges = {"minmax": RangeEstimatorParametersSet.MINMAX, "histogram": RangeEstimatorParametersSet.HISTOGRAM}
        # No overflow fix (7-bit weights, for CPUs without VNNI, whose multiply-adds saturate at 16 bits):
        # it costs precision everywhere, and the graphs shipped pass the gate on AVX2 alone without it
        # (scripts/quantize_espcn.py --check, docs/backends.md).
        advanced = AdvancedQuantizationParameters(activations_range_estimator_params=ranges[self.ranges],
                                                  overflow_fix=OverflowFix.DISABLE)
        return dict(preset=nncf.QuantizationPreset(self.preset), subset_size=self.subset_size,
                    fast_bias_correction=self.fast_bias_correction, target_device=nncf.TargetDevice.CPU,
                    ignored_scope=nncf.IgnoredScope(names=kept) if kept else None,
                    advanced_parameters=advanced)


RECIPES = {r.name: r for r in (
    Recipe("minmax-float-ends"), Recipe("histogram-float-ends", ranges="histogram"),
    Recipe("minmax-all-int8", float_convolutions="none"),
    Recipe("histogram-all-int8", ranges="histogram", float_convolutions="none"),
    Recipe("histogram-all-int8-bias-correction", ranges="histogram", float_convolutions="none",
           fast_bias_correction=False),
    Recipe("histogram-float-last", ranges="histogram", float_convolutions="last"),
    Recipe("histogram-all-int8-equalized", ranges="histogram", float_convolutions="none", fast_bias_correction=False,
           equalization=1.0))}


def line_art_image(seed: int, width: int = 320, height: int = 240) -> np.ndarray:
    """A generated (height, width) uint8 luma picture of the content photos lack: line art and
    screen content at full contrast in video's range (black 16, white 235), black on white or
    white on black. Outlined flat shapes, solid silhouettes, strokes and curves of 1-6 pixels,
    hard-edged or antialiased, and text in OpenCV's Hershey fonts; half of them drawn at twice
    the size and shrunk with area averaging, as vector art is rasterized. For calibration only:
    nothing in it comes from the gate's clips or an evaluation set."""
    import cv2

    rng = np.random.default_rng([seed, 0x11AE])
    supersample = 2 if rng.random() < 0.5 else 1
    w, h = width * supersample, height * supersample
    black, white = 16, 235
    paper, ink = (white, black) if rng.random() < 0.6 else (black, white)
    if rng.random() < 0.2:  # a flat grey ground, with either ink
        paper = int(rng.integers(60, 200))
    art = np.full((h, w), paper, np.uint8)

    def point():
        return int(rng.integers(-w // 8, w + w // 8)), int(rng.integers(-h // 8, h + h // 8))

    def stroke():
        return int(rng.choice([1, 1, 2, 2, 3, 4, 6])) * supersample

    def line_type():
        return cv2.LINE_AA if rng.random() < 0.5 else cv2.LINE_8

    for _ in range(int(rng.integers(3, 12))):  # outlined shapes, filled flat or with the ink (silhouettes)
        fill = int(rng.choice([ink, paper, int(rng.integers(black, white + 1))]))
        if rng.random() < 0.5:
            centre, axes = point(), (int(rng.integers(4, w // 4)), int(rng.integers(4, h // 4)))
            angle = float(rng.uniform(0, 180))
            cv2.ellipse(art, centre, axes, angle, 0, 360, fill, -1, line_type())
            cv2.ellipse(art, centre, axes, angle, 0, 360, ink, stroke(), line_type())
        else:
            centre = np.array(point())
            points = (centre + rng.integers(-w // 4, w // 4, (int(rng.integers(3, 9)), 2))).astype(np.int32)
            cv2.fillPoly(art, [points], fill, line_type())
            cv2.polylines(art, [points], True, ink, stroke(), line_type())
    for _ in range(int(rng.integers(3, 15))):  # straight strokes and smooth curves
        if rng.random() < 0.5:
            cv2.line(art, point(), point(), ink, stroke(), line_type())
        else:
            t = np.linspace(0, 1, 40)[:, None]
            a, b, c = (np.array(point()) for _ in range(3))
            curve = ((1 - t) ** 2 * a + 2 * t * (1 - t) * b + t ** 2 * c).astype(np.int32)
            cv2.polylines(art, [curve], False, ink, stroke(), line_type())
    fonts = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_PLAIN,
             cv2.FONT_HERSHEY_COMPLEX, cv2.FONT_HERSHEY_TRIPLEX, cv2.FONT_HERSHEY_SCRIPT_SIMPLEX)
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.,:;()[]{}<>=+-*/#%&"
    for _ in range(int(rng.integers(0, 8))):  # text
        size = float(rng.uniform(0.3, 2.0)) * supersample
        text = "".join(rng.choice(list(letters), int(rng.integers(3, 20))))
        cv2.putText(art, text, point(), fonts[int(rng.integers(len(fonts)))], size, ink,
                    max(1, int(size * rng.uniform(0.8, 2.0))), line_type())
    if supersample > 1:
        art = cv2.resize(art, (width, height), interpolation=cv2.INTER_AREA)
    return art


def calibration_samples(folders, checkpoint_meta: dict, scale: int, count: int = 300, patch: int = 64,
                        seed: int = 0, line_art: float = 0.0) -> tuple[list[np.ndarray], int]:
    """``count`` (1, 1, patch, patch) float32 LR luma patches (/255) cut at random from clips of
    training photos in ``folders`` (their holdout left out) and, a ``line_art`` share of them,
    of generated line art (:func:`line_art_image`), all made as the checkpoint's training made
    its inputs: the degradations its meta names (shrink kernels, x264 crf range, lossless and
    JPEG shares, pan clips); and how many photos they came from."""
    import cv2

    from srpipe.images import image_paths

    holdout = set(checkpoint_meta.get("holdout", ()))
    paths = [p for folder in folders for p in image_paths(folder) if Path(p).name not in holdout]
    rng = np.random.default_rng(seed)
    drawn = round(count * line_art)
    chosen = sorted(rng.choice(len(paths), min(len(paths), count - drawn), replace=False))
    samples = _patches([paths[i] for i in chosen], checkpoint_meta, scale, count - drawn, patch, seed)
    if drawn:
        with tempfile.TemporaryDirectory(prefix="srpipe-line-art-") as tmp:
            pictures = []
            for i in range(drawn):
                pictures.append(Path(tmp, f"line-art-{i}.png"))
                cv2.imwrite(str(pictures[-1]), line_art_image(seed * 100_003 + i))  # other pictures per seed
            samples += _patches(pictures, checkpoint_meta, scale, drawn, patch, seed + 1)
    return samples, len(chosen)


def _patches(paths, checkpoint_meta: dict, scale: int, count: int, patch: int, seed: int) -> list[np.ndarray]:
    """``count`` random patches of the LR frames of one degraded clip of each picture in ``paths``."""
    from srpipe.default_plugins.espcn.data import degraded_clips

    rng = np.random.default_rng([seed, 1])
    _, frames = degraded_clips(paths, scale, variants=1, frames=checkpoint_meta.get("clip_frames", 6),
                               kernels=checkpoint_meta.get("down_kernels", ("matlab-bicubic",)),
                               crf_range=tuple(checkpoint_meta.get("crf_range", (18, 36))),
                               lossless=checkpoint_meta.get("lossless", 0.15), jpeg=checkpoint_meta.get("jpeg", 0.0),
                               seed=seed)
    frames = [lr for lr, *_ in frames if min(lr.shape) >= patch]
    samples = []
    for i in rng.permutation(len(frames))[:count]:
        lr = frames[i]
        y, x = rng.integers(0, lr.shape[0] - patch + 1), rng.integers(0, lr.shape[1] - patch + 1)
        samples.append((lr[y:y + patch, x:x + patch].astype(np.float32) / 255.0)[None, None])
    return samples


def equalized(network, samples: list[np.ndarray], strength: float):
    """A copy of ``network`` computing the same function with each hidden activation's channels
    rescaled towards the widest one's range on ``samples``: channel c of a layer whose widest
    channel spans R and c spans r is multiplied by (R / r) ** ``strength`` (its convolution's
    output row and bias multiplied, the next convolution's input column divided: PReLU commutes
    with a positive factor). int8 quantizes each activation with one step for all its channels,
    set by the widest; narrow channels, scaled up, are then rounded less coarsely (cross-layer
    equalization, Nagel et al. 2019). 0 leaves the network as it is."""
    import copy

    import torch

    network = copy.deepcopy(network).eval()
    if not strength:
        return network
    convolutions = [m for m in network.body if isinstance(m, torch.nn.Conv2d)]
    activations = [m for m in network.body if isinstance(m, torch.nn.PReLU)]
    with torch.no_grad():
        seen = {}
        hooks = [a.register_forward_hook(lambda m, i, o: seen.setdefault(m, []).append(
            torch.stack([o.amin((0, 2, 3)), o.amax((0, 2, 3))]))) for a in activations]
        for x in samples:
            network.body(network.blocks(torch.from_numpy(x)))
        for hook in hooks:
            hook.remove()
        for i, activation in enumerate(activations):
            lows, highs = torch.stack(seen[activation]).unbind(1)
            spans = (highs.amax(0) - lows.amin(0)).clamp_min(1e-6)
            factor = (spans.max() / spans) ** strength
            convolutions[i].weight *= factor[:, None, None, None]
            convolutions[i].bias *= factor
            convolutions[i + 1].weight /= factor[None, :, None, None]
    return network


def quantized(network, samples: list[np.ndarray], recipe: Recipe):
    """The OpenVINO model of ``network.convolved`` (as the float backends convert it), its
    channels equalized as ``recipe`` says, with NNCF's int8 quantizers, calibrated on ``samples``."""
    import nncf

    from srpipe.default_plugins.espcn.openvino_backend import _converted

    model = _converted(equalized(network, samples, recipe.equalization))
    return nncf.quantize(model, nncf.Dataset(samples), **recipe.nncf_arguments(model))


# Gate clips -------------------------------------------------------------------------------------

def write_luma_clip(frames: np.ndarray, out: Path, rate: int = 25) -> None:
    """(N, H, W) uint8 luma as a lossless H.264 clip (x264 crf 0, flat grey chroma): its luma
    decodes exactly as given."""
    import av

    n, h, w = frames.shape
    chroma = np.full((h // 2, w), 128, np.uint8)
    with av.open(str(out), "w") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": "0", "preset": "medium"}
        for i, y in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.concatenate([y, chroma]), format="yuv420p")
            frame.pts, frame.time_base = i, Fraction(1, rate)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def region_clips(video: Path, columns: int = 3, rows: int = 2) -> dict[str, np.ndarray]:
    """A real clip cut into ``columns`` x ``rows`` regions, each a clip of its own content (Big
    Buck Bunny's one shot: sky and trees, rocks, grass, the rabbit)."""
    from srpipe.default_plugins.espcn.video_eval import luma_frames

    frames = np.stack(list(luma_frames(video)))
    _, h, w = frames.shape
    ch, cw = h // rows // CLIP_SIDE * CLIP_SIDE, w // columns // CLIP_SIDE * CLIP_SIDE
    clips = {}
    for r in range(rows):
        for c in range(columns):
            y, x = r * (h - ch) // max(rows - 1, 1), c * (w - cw) // max(columns - 1, 1)
            clips[f"{video.stem}-r{r}c{c}"] = frames[:, y:y + ch, x:x + cw]
    return clips


def text_clip(frames: int = 48, width: int = 480, height: int = 360, seed: int = 0) -> np.ndarray:
    """Screen content: lines of text of several sizes and fonts, dark on light and light on dark,
    with boxes and rules, scrolling up 3 pixels a frame as a document does."""
    import cv2

    rng = np.random.default_rng(seed)
    canvas = np.full((height + 3 * frames, width), 235, np.uint8)
    fonts = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_PLAIN, cv2.FONT_HERSHEY_COMPLEX)
    words = "the quick brown fox jumps over lazy dog 0123456789 srpipe int8 VNNI AMX QUANTIZE Video".split()
    y = 14
    while y < canvas.shape[0] - 8:
        size = float(rng.choice([0.4, 0.5, 0.7, 1.0, 1.4]))
        band = int(30 * size) + 6
        dark = rng.random() < 0.25
        if dark:
            cv2.rectangle(canvas, (0, y - band + 4), (width, y + 6), 40, -1)
        line = " ".join(rng.choice(words, 8))
        cv2.putText(canvas, line, (int(rng.integers(4, 30)), y), fonts[int(rng.integers(len(fonts)))], size,
                    225 if dark else 20, 1 + int(size > 0.9), cv2.LINE_AA)
        if rng.random() < 0.2:
            cv2.line(canvas, (0, y + 8), (width, y + 8), 128, 1)
        y += band + 4
    return np.stack([canvas[3 * i:3 * i + height] for i in range(frames)])


def line_art_clip(frames: int = 48, width: int = 480, height: int = 360, seed: int = 1) -> np.ndarray:
    """Cartoon line art: flat grey shapes with dark antialiased outlines and strokes, turning and
    zooming slowly (sub-pixel motion everywhere)."""
    import cv2

    rng = np.random.default_rng(seed)
    side = 2 * max(width, height)
    art = np.full((side, side), 200, np.uint8)
    for _ in range(60):
        shade, ink = int(rng.integers(60, 250)), int(rng.integers(0, 50))
        centre = tuple(int(v) for v in rng.integers(0, side, 2))
        if rng.random() < 0.5:
            axes = tuple(int(v) for v in rng.integers(10, 90, 2))
            angle = float(rng.uniform(0, 180))
            cv2.ellipse(art, centre, axes, angle, 0, 360, shade, -1, cv2.LINE_AA)
            cv2.ellipse(art, centre, axes, angle, 0, 360, ink, int(rng.integers(1, 4)), cv2.LINE_AA)
        else:
            points = (np.array(centre) + rng.integers(-80, 80, (int(rng.integers(3, 7)), 2))).astype(np.int32)
            cv2.fillPoly(art, [points], shade, cv2.LINE_AA)
            cv2.polylines(art, [points], True, ink, int(rng.integers(1, 4)), cv2.LINE_AA)
    for _ in range(40):
        a, b = (tuple(int(v) for v in rng.integers(0, side, 2)) for _ in range(2))
        cv2.line(art, a, b, int(rng.integers(0, 60)), int(rng.integers(1, 3)), cv2.LINE_AA)
    out = []
    for i in range(frames):
        t = i / max(frames - 1, 1)
        matrix = cv2.getRotationMatrix2D((side / 2, side / 2), 8 * t, 1 + 0.15 * t)
        matrix[:, 2] += (width / 2 - side / 2, height / 2 - side / 2)
        out.append(cv2.warpAffine(art, matrix, (width, height), flags=cv2.INTER_CUBIC))
    return np.stack(out)


def two_tone_clip(frames: int = 48, width: int = 480, height: int = 360, seed: int = 2) -> np.ndarray:
    """Black-and-white art (a woodcut, a silhouette, a scanned ink drawing): blobs of smoothed
    noise cut at a threshold, black 16 on white 235 with edges antialiased by drawing at four
    times the size, panning 0.7 pixels right and 0.4 down a frame. The hardest content for int8:
    full-contrast edges drive the network's activations furthest (the x2 graph calibrated on
    photos alone lost 0.46 / 0.30 / 0.11 dB here at crf 0 / 23 / 30)."""
    import cv2

    rng = np.random.default_rng(seed)
    shape = (4 * (height + 32), 4 * (width + 32))

    def field(sigma):
        field = cv2.GaussianBlur(rng.standard_normal(shape).astype(np.float32), (0, 0), sigma)
        return field / field.std()

    blobs, lines = field(48), field(96)
    # silhouettes where the coarse field is high; ink lines (1-3 pixels) along the other's contours
    ink = (blobs > 0.8) | (np.abs(np.sin(4 * lines)) < 0.06 * (2 + blobs))
    art = cv2.resize(np.where(ink, 16, 235).astype(np.float32), (shape[1] // 4, shape[0] // 4),
                     interpolation=cv2.INTER_AREA)
    out = []
    for i in range(frames):
        matrix = np.float32([[1, 0, -0.7 * i], [0, 1, -0.4 * i]])
        out.append(cv2.warpAffine(art, matrix, (width, height), flags=cv2.INTER_CUBIC))
    return np.clip(np.rint(np.stack(out)), 16, 235).astype(np.uint8)


def gate_clips(video: Path) -> dict[str, np.ndarray]:
    """The gate's clips: ``video``'s regions and the generated screen text, line art and
    black-and-white art."""
    return {**region_clips(video), "text": text_clip(), "line-art": line_art_clip(), "two-tone": two_tone_clip()}


# The gate -------------------------------------------------------------------------------------

def _candidate(model):
    """A backend that runs the int8 ``model`` as ``openvino-int8`` would."""
    from srpipe.backends import Backend
    from srpipe.default_plugins.espcn.openvino_backend import INT8_PRECISION, _runner

    return Backend("int8-candidate", ("cpu",), 0, lambda: True, lambda network, device: _runner(model, INT8_PRECISION))


def gate_scores(checkpoint: Path, clips: dict[str, np.ndarray], candidates: dict[str, object],
                crfs=GATE_CRFS, log=print) -> dict:
    """Mean luma PSNR of each clip at each crf for ``openvino`` (float32), ``openvino-bf16``
    (where native) and each candidate int8 model: ``{crf: {clip: {upscaler: dB}}}``."""
    from srpipe.default_plugins.espcn.metrics import psnr
    from srpipe.default_plugins.espcn.openvino_backend import OPENVINO, OPENVINO_BF16, has_native_bf16
    from srpipe.default_plugins.espcn.upscaler import ESPCNUpscaler
    from srpipe.default_plugins.espcn.video_eval import luma_frames, shrink_and_encode

    backends = {"openvino": OPENVINO, **({"openvino-bf16": OPENVINO_BF16} if has_native_bf16() else {}),
                **{name: _candidate(model) for name, model in candidates.items()}}
    upscalers = {name: ESPCNUpscaler(checkpoint, backend=backend) for name, backend in backends.items()}
    scale = next(iter(upscalers.values())).scale
    scores: dict = {}
    with tempfile.TemporaryDirectory(prefix="srpipe-gate-") as tmp:
        for clip, frames in clips.items():
            original = Path(tmp, f"{clip}.mp4")
            write_luma_clip(frames, original)
            for crf in crfs:
                lr = Path(tmp, f"{clip}-crf{crf}.mp4")
                w, h = shrink_and_encode(original, lr, scale, crf)
                luma = np.stack(list(luma_frames(lr)))
                row = scores.setdefault(crf, {}).setdefault(clip, {})
                for name, upscaler in upscalers.items():
                    up = np.concatenate([upscaler.upscale(luma[i:i + 8], bit_depth=8, full_range=False)
                                         for i in range(0, len(luma), 8)])
                    row[name] = float(np.mean([psnr(u, o[:h, :w], scale) for u, o in zip(up, frames)]))
                log(f"crf {crf:2d} {clip:24s} " + "  ".join(f"{n} {v:.3f}" for n, v in row.items()))
    return scores


def verdict(scores: dict, candidate: str, reference: str = "openvino") -> dict:
    """Per crf: the candidate's mean and worst clip loss against ``reference`` (dB, positive:
    worse), and whether the gate holds at every crf."""
    per_crf = {}
    for crf, clips in scores.items():
        losses = [row[reference] - row[candidate] for row in clips.values()]
        per_crf[crf] = {"mean_loss_db": float(np.mean(losses)), "worst_clip_loss_db": float(max(losses))}
    passed = all(v["mean_loss_db"] <= MEAN_LOSS_DB and v["worst_clip_loss_db"] <= CLIP_LOSS_DB
                 for v in per_crf.values())
    return {"passed": passed, "crfs": per_crf}


# Run in a child process: OpenVINO 2026.4 crashed (SIGSEGV) on the x3 and x4 int8 graphs at some shapes.
_SHAPES_CHECK = """
import sys, numpy as np
from srpipe.default_plugins.espcn.openvino_backend import _int8_runner, import_openvino
run = _int8_runner(import_openvino().Core().read_model(sys.argv[1]))
# small tiles, the blocks tile reuse reads (srpipe.reuse: 32-128 pixels, the radius each side), whole frames
spans = [int(span) for span in sys.argv[2].split(",")]
widths = [*range(1, 9), 15, 16, 17, 33, 47, 64, 97, 191, *spans, 640]
for n in (1, 4):
    for h in [*range(1, 65), *spans, 360, 480]:
        for w in widths:
            run(np.random.default_rng(h).random((n, 1, h, w), np.float32))
"""


def survives_shapes(model, config) -> bool:
    """Whether the int8 ``model`` of a network of ``config`` (an ESPCNConfig) runs, as the backend
    runs it, on every tile shape from 1 to 64 LR pixels high, the blocks tile reuse reads and
    whole frames, at a range of widths, batches of 1 and 4, without crashing its process."""
    import subprocess
    import sys

    from srpipe.default_plugins.espcn.openvino_backend import import_openvino
    from srpipe.reuse import ReusePolicy, read_span

    policy, radius = ReusePolicy(), config.output_radius()  # what tile reuse reads around a block
    alignment = config.crop_alignment()
    spans = [read_span(size, 10**6, radius, alignment) + more
             for size in range(policy.step, policy.block + 1, policy.step) for more in range(alignment)]

    with tempfile.TemporaryDirectory(prefix="srpipe-shapes-") as tmp:
        xml = Path(tmp, "model.xml")
        import_openvino().save_model(model, str(xml), compress_to_fp16=False)
        return subprocess.run([sys.executable, "-c", _SHAPES_CHECK, str(xml), ",".join(map(str, spans))],
                              capture_output=True).returncode == 0


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def ship(model, checkpoint: Path, recipe: Recipe, scores: dict, calibration: dict, out_dir: Path) -> Path:
    """Save the int8 ``model`` beside ``checkpoint``'s name in ``out_dir`` with its record."""
    import nncf

    from srpipe import cache
    from srpipe.default_plugins.espcn.openvino_backend import import_openvino, int8_paths

    ov = import_openvino()
    xml, binary, record = int8_paths(out_dir, checkpoint.stem)
    ov.save_model(model, str(xml), compress_to_fp16=False)
    references = next(iter(next(iter(scores.values())).values()))  # the upscalers one clip was scored with
    gate = {"mean_loss_db_at_most": MEAN_LOSS_DB, "clip_loss_db_at_most": CLIP_LOSS_DB,
            "against": {ref: verdict(scores, recipe.name, ref) for ref in ("openvino", "openvino-bf16")
                        if ref in references},
            "psnr_db": {str(crf): clips for crf, clips in scores.items()}}
    record.write_text(json.dumps({
        "checkpoint": checkpoint.name, "checkpoint_sha256": cache.file_digest(checkpoint),
        "xml_sha256": sha256(xml.read_bytes()), "bin_sha256": sha256(binary.read_bytes()),
        "openvino": ov.__version__, "nncf": nncf.__version__, "recipe": recipe.__dict__,
        "calibration": calibration, "gate": gate}, indent=1) + "\n")
    return record


def network_speed(checkpoint: Path, seconds: float = 3.0, log=print) -> dict:
    """LR pixels a second of the network alone (the backend's prepared function, no tiling or
    residual) on each CPU backend: ``openvino-int8`` (its shipped graph, where this CPU runs int8),
    ``openvino-bf16`` (where native), ``openvino``, ``onnxruntime`` and ``torch``, on a 640x480
    frame and on a batch of 64 crops of 46x46: ``{backend: {case: pixels/s}}``."""
    import time

    from srpipe.default_plugins.espcn import TORCH
    from srpipe.default_plugins.espcn.onnxruntime_backend import ONNXRUNTIME
    from srpipe.default_plugins.espcn.openvino_backend import OPENVINO, OPENVINO_BF16, OPENVINO_INT8
    from srpipe.default_plugins.espcn.upscaler import ESPCNUpscaler

    rng = np.random.default_rng(0)
    cases = {"640x480 frame": rng.random((1, 1, 480, 640), np.float32),
             "64 crops of 46x46": rng.random((64, 1, 46, 46), np.float32)}
    speeds = {}
    for backend in (OPENVINO_INT8, OPENVINO_BF16, OPENVINO, ONNXRUNTIME, TORCH):
        if not backend.is_available():
            continue
        upscaler = ESPCNUpscaler(checkpoint, backend=backend)
        if upscaler.backend in speeds:  # openvino-int8 without a graph for this CPU runs what auto would
            continue
        for case, x in cases.items():
            upscaler.convolved(x)  # the first call compiles the kernels for this shape
            runs, start = 0, time.perf_counter()
            while time.perf_counter() - start < seconds:
                upscaler.convolved(x)
                runs += 1
            took = (time.perf_counter() - start) / runs
            speeds.setdefault(upscaler.backend, {})[case] = x.size / took
            log(f"{upscaler.backend:14s} {case:18s} {took * 1000:7.1f} ms  {x.size / took / 1e6:5.2f} M LR pixels/s")
    return speeds
