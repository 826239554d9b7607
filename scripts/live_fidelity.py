"""What live preview puts on screen, against the network on every frame: ``--keep-up`` and
``--drop-frames`` side by side, on a clip played at its frame rate.

For each frame of CLIP, at the moment the next one arrives, the luma on screen is compared with
the model's network on that frame (PSNR): with --keep-up, that frame's upscale under the time
budget; with --drop-frames, the newest frame the worker finished by then (a frame it had no time
for is not shown, and the one before stays). The worker's times are the real ones, measured in
this one process (no window, no decoding thread: a live run has more to share the cores with).

    python scripts/live_fidelity.py clip.mp4 [--frames 240] [-m espcn]
"""

from __future__ import annotations

import argparse
import time

import av
import numpy as np

from srpipe.default_plugins.espcn.metrics import psnr
from srpipe.default_plugins.espcn.video_eval import luma_frames
from srpipe.default_plugins.live.loop import KeepUp
from srpipe.default_plugins.live.upscalers import UpscalerCycle
from srpipe.plugins import collect_models, get_plugin_manager
from srpipe.reuse import TileReuse


def lumas(path: str, count: int) -> tuple[list[np.ndarray], float]:
    """The first ``count`` luma planes of ``path`` (8-bit, limited range, as decoded), and its frame
    interval."""
    with av.open(path) as container:
        interval = 1 / float(container.streams.video[0].average_rate or 30)
    return list(luma_frames(path, count)), interval


def upscale(upscaler, y: np.ndarray) -> np.ndarray:
    return upscaler.upscale(y[None], bit_depth=8, full_range=False)[0].copy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("clip")
    parser.add_argument("--frames", type=int, default=240)
    parser.add_argument("-m", "--model", default="espcn")
    args = parser.parse_args()
    frames, interval = lumas(args.clip, args.frames)
    height, width = frames[0].shape

    def load() -> TileReuse:
        upscaler = UpscalerCycle(collect_models(get_plugin_manager()), args.model, 2, "cpu").upscaler
        if not isinstance(upscaler, TileReuse):
            raise SystemExit(f"{args.model} does not reuse tiles: live preview runs it on every frame")
        upscaler.warm_up(width, height)
        return upscaler

    reference = load()
    networks = [upscale(reference.inner, y) for y in frames]
    bicubic = [upscale(reference.stand_in, y) for y in frames]
    print(f"{args.clip}: {len(frames)} frames of {width}x{height}, x2, {1 / interval:.1f} fps")
    print(f"bicubic on every tile:  {np.mean([psnr(b, n) for b, n in zip(bicubic, networks)]):.2f} dB")

    keeping, pace, scores, stand_ins, over = load(), KeepUp(), [], [], 0
    for index, y in enumerate(frames):
        keeping.budget_s = pace.budget(interval if index else None)
        started = time.perf_counter()
        shown = upscale(keeping, y)
        took = time.perf_counter() - started
        pace.took(took, interval)
        over += took > interval
        if index:
            scores.append(psnr(shown, networks[index]))
            tiles = keeping.policy.tile * 2
            rows, cols = shown.shape[0] // tiles, shown.shape[1] // tiles

            def grid(image):
                return image[:rows * tiles, :cols * tiles].reshape(rows, tiles, cols, tiles)

            as_bicubic = (grid(shown) == grid(bicubic[index])).all(axis=(1, 3))
            as_network = (grid(shown) == grid(networks[index])).all(axis=(1, 3))
            stand_ins.append((as_bicubic & ~as_network).mean())
    print(f"--keep-up:     {np.mean(scores):.2f} dB (worst frame {np.min(scores):.2f}); tiles shown as bicubic "
          f"{np.mean(stand_ins):.1%}; frames over the interval {over} of {len(frames)}; {keeping.stats.describe()}")

    dropping, now, finished, index = load(), 0.0, [], 0
    while index < len(frames):
        index = max(index, min(int(now / interval), len(frames) - 1))  # the newest frame that has arrived
        started = time.perf_counter()
        output = upscale(dropping, frames[index])
        now = max(now, index * interval) + time.perf_counter() - started
        finished.append((now, output))
        index += 1
    scores = []
    for index in range(1, len(frames)):
        on_screen = [output for at, output in finished if at <= (index + 1) * interval]
        if on_screen:
            scores.append(psnr(on_screen[-1], networks[index]))
    print(f"--drop-frames: {np.mean(scores):.2f} dB (worst frame {np.min(scores):.2f}); "
          f"{len(finished)} of {len(frames)} frames shown")


if __name__ == "__main__":
    main()
