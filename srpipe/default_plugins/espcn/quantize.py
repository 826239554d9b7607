"""int8 graphs of the shipped ESPCN networks for the ``openvino-int8`` backend: post-training
quantization by NNCF, calibrated on the training photos, and the quality gate a graph must pass
to be shipped (issue #24).

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
    ``histogram`` clips rare extremes for finer steps."""

    name: str
    ranges: str = "minmax"
    float_convolutions: str = "ends"
    preset: str = "mixed"  # asymmetric activations: PReLU outputs are lopsided
    subset_size: int = 300
    fast_bias_correction: bool = True

    def nncf_arguments(self, model) -> dict:
        import nncf
        from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix
        from nncf.quantization.range_estimator import RangeEstimatorParametersSet

        convolutions = [op.get_friendly_name() for op in model.get_ordered_ops() if op.get_type_name() == "Convolution"]
        kept = {"ends": [convolutions[0], convolutions[-1]], "last": [convolutions[-1]], "none": []}[
            self.float_convolutions]
        ranges = {"minmax": RangeEstimatorParametersSet.MINMAX, "histogram": RangeEstimatorParametersSet.HISTOGRAM}
        # No overflow fix (7-bit weights): it is for CPUs without VNNI, where the backend is never used.
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
    Recipe("histogram-float-last", ranges="histogram", float_convolutions="last"))}


def calibration_samples(folders, checkpoint_meta: dict, scale: int, count: int = 300, patch: int = 64,
                        seed: int = 0) -> tuple[list[np.ndarray], int]:
    """``count`` (1, 1, patch, patch) float32 LR luma patches (/255) cut at random from clips of
    up to ``count`` training photos in ``folders`` (their holdout left out), made as the
    checkpoint's training made its inputs: the degradations its meta names (shrink kernels, x264
    crf range, lossless and JPEG shares, pan clips); and how many photos they came from."""
    from srpipe.default_plugins.espcn.data import degraded_clips
    from srpipe.default_plugins.espcn.evaluate import image_paths

    holdout = set(checkpoint_meta.get("holdout", ()))
    paths = [p for folder in folders for p in image_paths(folder) if Path(p).name not in holdout]
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(len(paths), min(len(paths), count), replace=False))
    _, frames = degraded_clips([paths[i] for i in chosen], scale, variants=1,
                               frames=checkpoint_meta.get("clip_frames", 6),
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
    return samples, len(chosen)


def quantized(network, samples: list[np.ndarray], recipe: Recipe):
    """The OpenVINO model of ``network.convolved`` (as the float backends convert it) with
    NNCF's int8 quantizers, calibrated on ``samples``."""
    import nncf

    from srpipe.default_plugins.espcn.openvino_backend import _converted

    model = _converted(network)
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


def gate_clips(video: Path) -> dict[str, np.ndarray]:
    """The gate's clips: ``video``'s regions and the generated screen text and line art."""
    return {**region_clips(video), "text": text_clip(), "line-art": line_art_clip()}


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
# small tiles, the blocks tile reuse reads (srpipe.reuse: 32-128 pixels and a radius of 7 each side), whole frames
spans = [46, 78, 110, 142]
widths = [*range(1, 9), 15, 16, 17, 33, 47, 64, 97, 191, *spans, 640]
for n in (1, 4):
    for h in [*range(1, 65), *spans, 360, 480]:
        for w in widths:
            run(np.random.default_rng(h).random((n, 1, h, w), np.float32))
"""


def survives_shapes(model) -> bool:
    """Whether the int8 ``model`` runs, as the backend runs it, on every tile shape from 1 to 64
    LR pixels high, the blocks tile reuse reads and whole frames, at a range of widths, batches
    of 1 and 4, without crashing its process."""
    import subprocess
    import sys

    from srpipe.default_plugins.espcn.openvino_backend import import_openvino

    with tempfile.TemporaryDirectory(prefix="srpipe-shapes-") as tmp:
        xml = Path(tmp, "model.xml")
        import_openvino().save_model(model, str(xml), compress_to_fp16=False)
        return subprocess.run([sys.executable, "-c", _SHAPES_CHECK, str(xml)], capture_output=True).returncode == 0


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
    residual) for ``openvino``, ``openvino-bf16`` (where native) and ``openvino-int8`` (its shipped
    graph), on a 640x480 frame and on a batch of 64 crops of 46x46: ``{backend: {case: pixels/s}}``."""
    import time

    from srpipe.default_plugins.espcn.openvino_backend import OPENVINO, OPENVINO_BF16, OPENVINO_INT8, has_native_bf16
    from srpipe.default_plugins.espcn.upscaler import ESPCNUpscaler

    rng = np.random.default_rng(0)
    cases = {"640x480 frame": rng.random((1, 1, 480, 640), np.float32),
             "64 crops of 46x46": rng.random((64, 1, 46, 46), np.float32)}
    speeds = {}
    for backend in (OPENVINO_INT8, *((OPENVINO_BF16,) if has_native_bf16() else ()), OPENVINO):
        upscaler = ESPCNUpscaler(checkpoint, backend=backend)
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
