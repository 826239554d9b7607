"""The GPU figures that scripts/gpu_check.sh records, each as a ratio where one applies:

  network   the shipped x2 video network alone (its convolutions and sub-pixel shuffle) on a batch
            of 1920x1080 luma: frames a second in each way torch can run it (float32; float16 and
            bfloat16 on channels_last, with and without cudnn.benchmark; a CUDA graph of the
            float16 one; torch.compile, with its compile time), and each one's largest distance
            from float32 in 8-bit levels
  startup   a whole `srpipe upscale -m espcn` of a 3-frame clip against the floor, python's
            `import torch; torch.zeros(1).to(device)`: medians of three
  pipeline  `srpipe upscale` of a 960x540 clip (x2 to 1920x1080) with -m espcn on the device and
            with -m bicubic where auto runs it (the CPU): the pipeline's frames a second (--json)
            and their ratio; on CUDA, the share of time the GPU was busy during the espcn run
            (nvidia-smi, every 250 ms), and two runs with --backend torch-compile (the first
            compiles, the second reads what it kept); with --py-spy, where each thread spent one
            more espcn run

    python scripts/gpu_speed.py [network] [startup] [pipeline] [--device cuda] [--size 1920x1080]

All three by default. With --device cpu (and a small --size) the same code runs on the CPU, as
the tests run it; CUDA graphs and torch.compile are for CUDA only.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LEVEL = 1 / 255  # one 8-bit level, in the network's [0, 1] scale
PARTS = ("network", "startup", "pipeline")


def timed_rate(run, x, seconds: float, synchronize) -> float:
    """Frames a second of ``run`` on the batch ``x``, after two warm-up calls, over at least ``seconds``."""
    for _ in range(2):
        run(x)
    synchronize()
    calls, started = 0, time.perf_counter()
    while True:
        run(x)
        calls += 1
        synchronize()
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return calls * len(x) / elapsed


def network_ways(network, device: str, x):
    """(name, function of the float32 batch, giving float32, seconds spent preparing it) for each
    way of running ``network.convolved`` that ``device`` has."""
    import copy

    import torch

    def on(dtype, benchmark):
        module = copy.deepcopy(network).to(dtype=dtype, memory_format=torch.channels_last)

        def run(batch):
            torch.backends.cudnn.benchmark = benchmark
            return module.convolved(batch.to(dtype).contiguous(memory_format=torch.channels_last)).float()

        return run

    yield "float32", network.convolved, 0.0
    for dtype, name in ((torch.float16, "float16"), (torch.bfloat16, "bfloat16")):
        yield f"{name} channels_last", on(dtype, False), 0.0
        yield f"{name} channels_last cudnn.benchmark", on(dtype, True), 0.0
    if not device.startswith("cuda"):
        return
    half = on(torch.float16, True)
    static_in = x.clone()
    half(static_in)  # cudnn picks its kernels before the capture
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_out = half(static_in)

    def replay(batch):
        static_in.copy_(batch)
        graph.replay()
        return static_out

    yield "float16 CUDA graph", replay, 0.0
    torch.backends.cudnn.benchmark = True
    module = copy.deepcopy(network).to(dtype=torch.float16, memory_format=torch.channels_last)
    compiled = torch.compile(module.convolved, mode="max-autotune-no-cudagraphs")

    def run_compiled(batch):
        return compiled(batch.half().contiguous(memory_format=torch.channels_last)).float()

    started = time.perf_counter()
    run_compiled(x)
    torch.cuda.synchronize()
    yield "float16 torch.compile max-autotune-no-cudagraphs", run_compiled, time.perf_counter() - started


def measure_network(device: str, width: int, height: int, batch: int, seconds: float) -> list[dict]:
    import torch

    from srpipe.default_plugins.espcn.shipped import shipped_weights
    from srpipe.nn.checkpoint import load_checkpoint, network_from_checkpoint

    network = network_from_checkpoint(load_checkpoint(shipped_weights(2)), "espcn x2").to(device).eval()
    x = torch.rand(batch, 1, height, width, device=device, generator=torch.Generator(device).manual_seed(0))
    synchronize = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    rows = []
    with torch.inference_mode():
        reference = network.convolved(x).float()
        for name, run, preparing in network_ways(network, device, x):
            distance = float((run(x) - reference).abs().max()) / LEVEL
            rows.append({"way": name, "fps": timed_rate(run, x, seconds, synchronize),
                         "levels_from_float32": distance, "prepare_s": preparing})
            print(f"network {width}x{height} batch {batch}: {name}: {rows[-1]['fps']:.1f} fps, "
                  f"{distance:.3f} levels from float32" + (f", {preparing:.1f} s to prepare" if preparing else ""),
                  flush=True)
    return rows


def median_seconds(command: list[str], rounds: int = 3) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def srpipe(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "srpipe", *arguments]


def measure_startup(device: str, folder: Path, rounds: int = 3) -> dict:
    from srpipe.testing import make_fixed_camera_clip

    clip = make_fixed_camera_clip(folder / "three.mp4", width=640, height=360, frames=3)
    floor = median_seconds([sys.executable, "-c", f"import torch; torch.zeros(1).to({device!r})"], rounds)
    whole = median_seconds(srpipe("upscale", str(clip), "-m", "espcn", "--device", device, "-o",
                                  str(folder / "three_x2.mp4"), "-y", "-q"), rounds)
    print(f"startup on {device}: srpipe upscale of 3 frames {whole:.2f} s, floor {floor:.2f} s, "
          f"floor + {whole - floor:.2f} s", flush=True)
    return {"srpipe_s": whole, "floor_s": floor, "over_floor_s": whole - floor}


def busy_sampler():
    """nvidia-smi printing the GPU's busy percentage every 250 ms, or None where it is missing."""
    try:
        return subprocess.Popen(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
                                 "-lms", "250"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    except OSError:
        return None


def pipeline_fps(clip: Path, model: str, device: str, folder: Path, sample_busy: bool, *options: str,
                 env: dict | None = None) -> tuple[dict, list[int]]:
    """``srpipe upscale``'s summary for ``clip`` through ``model`` on ``device`` (with ``options``,
    and ``env`` added to the environment), its whole process's seconds added (``whole_s``), and the
    GPU's busy percentages meanwhile (``sample_busy``; else none)."""
    sampler = busy_sampler() if sample_busy else None
    started = time.perf_counter()
    try:
        done = subprocess.run(srpipe("upscale", str(clip), "-m", model, "--device", device, *options, "-o",
                                     str(folder / f"{model}.mp4"), "-y", "--json", "-q"),
                              check=True, capture_output=True, text=True, env={**os.environ, **(env or {})})
    finally:
        busy = []
        if sampler is not None:
            sampler.terminate()
            busy = [int(line) for line in sampler.communicate()[0].split() if line.strip().isdigit()]
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "whole_s": time.perf_counter() - started}, busy


def profile(py_spy: str, clip: Path, device: str, folder: Path, out: Path) -> None:
    """One more espcn run under py-spy (sampling every thread, waits included): its stacks go to
    ``out``; printed, the 12 places each thread spent the most samples in."""
    done = subprocess.run([py_spy, "record", "-r", "200", "--threads", "--idle", "-f", "raw", "-o", str(out), "--",
                           *srpipe("upscale", str(clip), "-m", "espcn", "--device", device, "-o",
                                   str(folder / "profiled.mp4"), "-y", "-q")], capture_output=True, text=True)
    if done.returncode != 0 or not out.exists():  # py-spy needs to trace its child: not every machine lets it
        said = done.stderr.strip().splitlines()
        print(f"profile: py-spy failed ({said[-1] if said else f'exit status {done.returncode}'})", flush=True)
        return
    by_thread: dict[str, Counter] = {}
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        by_thread.setdefault(frames[0], Counter())[frames[-1]] += int(count)
    for thread, places in sorted(by_thread.items(), key=lambda item: -item[1].total()):
        print(f"profile: {thread}: {places.total()} samples")
        for place, count in places.most_common(12):
            print(f"profile:   {count:6d} {place}")


def measure_pipeline(device: str, frames: int, folder: Path, py_spy: str | None = None,
                     profile_out: Path | None = None) -> dict:
    from srpipe.testing import make_fixed_camera_clip

    clip = make_fixed_camera_clip(folder / "540p.mp4", width=960, height=540, frames=frames)
    if py_spy:
        profile(py_spy, clip, device, folder, profile_out)
    espcn, busy = pipeline_fps(clip, "espcn", device, folder, device.startswith("cuda"))
    bicubic, _ = pipeline_fps(clip, "bicubic", "auto", folder, False)  # where auto runs it: the CPU
    result = {"espcn_fps": espcn["fps"], "bicubic_fps": bicubic["fps"], "ratio": espcn["fps"] / bicubic["fps"],
              "espcn_backend": espcn["backend"], "espcn_device": espcn["device"], "bicubic_device": bicubic["device"],
              "gpu_busy_mean": statistics.mean(busy) if busy else None,
              "gpu_busy_median": statistics.median(busy) if busy else None}
    print(f"pipeline 960x540 -> 1920x1080, {frames} frames: espcn ({espcn['device']}, {espcn['backend']}) "
          f"{espcn['fps']:.1f} fps, bicubic ({bicubic['device']}) {bicubic['fps']:.1f} fps, ratio {result['ratio']:.2f}"
          + (f"; GPU busy mean {result['gpu_busy_mean']:.0f}%, median {result['gpu_busy_median']:.0f}%"
             if busy else ""), flush=True)
    if device.startswith("cuda"):  # compiled: the first run compiles (an empty cache), the second reads it
        cache = {"SRPIPE_CACHE_DIR": str(folder / "cache")}
        for run in ("first", "second"):
            compiled, busy = pipeline_fps(clip, "espcn", device, folder, True, "--backend", "torch-compile", env=cache)
            result[f"compiled_{run}"] = {"fps": compiled["fps"], "whole_s": compiled["whole_s"],
                                         "ratio": compiled["fps"] / bicubic["fps"],
                                         "gpu_busy_mean": statistics.mean(busy) if busy else None}
            print(f"pipeline, espcn --backend torch-compile, {run} run: {compiled['fps']:.1f} fps (ratio "
                  f"{compiled['fps'] / bicubic['fps']:.2f}), whole process {compiled['whole_s']:.1f} s", flush=True)
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    # checked below, not by choices=: Python before 3.12 refuses an empty list against choices
    parser.add_argument("parts", nargs="*", metavar="PART", help="network, startup, pipeline (default: all three)")
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (default: cuda)")
    parser.add_argument("--size", default="1920x1080", help="the network's input, WxH (default: 1920x1080)")
    parser.add_argument("--batch", type=int, default=8, help="frames in the network's batch (default: 8)")
    parser.add_argument("--seconds", type=float, default=3.0, help="time each way of the network at least this long")
    parser.add_argument("--frames", type=int, default=240, help="frames of the pipeline's 960x540 clip")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each start-up command, median (default: 3)")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    parser.add_argument("--py-spy", help="py-spy's program: profile one more espcn run of the pipeline with it")
    parser.add_argument("--profile-out", type=Path, default=Path("pipeline-profile.txt"),
                        help="where --py-spy writes its stacks (default: pipeline-profile.txt)")
    args = parser.parse_args(argv)
    width, height = (int(side) for side in args.size.lower().split("x"))
    parts = args.parts or list(PARTS)
    if not set(parts) <= set(PARTS):
        parser.error(f"PART is one of {', '.join(PARTS)}, not {', '.join(sorted(set(parts) - set(PARTS)))}")
    figures = {"device": args.device}
    with tempfile.TemporaryDirectory(prefix="srpipe-gpu-speed-") as temp:
        folder = Path(temp)
        if "network" in parts:
            figures["network"] = measure_network(args.device, width, height, args.batch, args.seconds)
        if "startup" in parts:
            figures["startup"] = measure_startup(args.device, folder, args.rounds)
        if "pipeline" in parts:
            figures["pipeline"] = measure_pipeline(args.device, args.frames, folder, args.py_spy, args.profile_out)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
