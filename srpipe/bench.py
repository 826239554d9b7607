"""Stage-by-stage throughput: decode, upscale, encode, end to end, and ffmpeg for reference.

Each measurement is repeated; the report gives the median and the spread (min, max) of
frames per second. End-to-end runs happen in a child process, so its peak resident memory
is the pipeline's own. Neural models are measured on each backend asked for, and their
GFLOP/s set against the device's float32 matrix-multiply rate.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import av

from srpipe.backends import AUTO, load_upscaler
from srpipe.device import resolve_device
from srpipe.frames import Frame
from srpipe.media import SinkOptions, SourceOptions
from srpipe.pipeline import upscale_frames
from srpipe.plugins import collect_backends, collect_models, get_plugin_manager
from srpipe.resize import SWSCALE_FLAGS
from srpipe.testing import make_test_video
from srpipe.video import PyAVSink, PyAVSource


@dataclass
class Measurement:
    stage: str
    model: str | None
    fps: list[float]
    extra: dict = field(default_factory=dict)
    backend: str | None = None

    def to_dict(self) -> dict:
        return {
            "stage": self.stage,
            "model": self.model,
            **({"backend": self.backend} if self.backend else {}),
            "fps_median": round(statistics.median(self.fps), 2),
            "fps_min": round(min(self.fps), 2),
            "fps_max": round(max(self.fps), 2),
            **self.extra,
        }


def generated_clip(folder: Path, width: int = 640, height: int = 360, frames: int = 60) -> Path:
    """A clip with fine detail and motion, so the encoder has real work."""
    return make_test_video(folder / f"bench_{width}x{height}.mp4", width=width, height=height, frames=frames,
                           codec_options={"crf": "12", "preset": "veryfast"})


def _timed(function, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return times


def _decode_all(path: str) -> list[Frame]:
    source = PyAVSource(path, SourceOptions())
    try:
        return [item for item in source.items() if isinstance(item, Frame)]
    finally:
        source.close()


def bench_decode(path: str, repeats: int) -> Measurement:
    frames = len(_decode_all(path))
    times = _timed(lambda: _decode_all(path), repeats)
    return Measurement("decode", None, [frames / t for t in times], {"frames": frames})


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def bench_matmul(device: str, size: int = 2048, repeats: int = 5) -> float:
    """The float32 matrix-multiply rate in GFLOP/s: a practical peak for the device."""
    import torch

    a, b = torch.rand(size, size, device=device), torch.rand(size, size, device=device)
    a @ b
    _sync(device)
    times = _timed(lambda: (a @ b, _sync(device)), repeats)
    return round(2 * size**3 / min(times) / 1e9, 1)


def bench_upscale(frames: list[Frame], name: str, scale: int, device: str, batch_size: int, repeats: int,
                  backend: str = AUTO, peak_gflops: float | None = None) -> Measurement:
    pm = get_plugin_manager()
    spec = collect_models(pm).get(name, kind="upscaler")
    upscaler = load_upscaler(spec, collect_backends(pm), scale=scale, device=device, weights=None, backend=backend)

    def run():
        for i in range(0, len(frames), batch_size):
            upscale_frames(frames[i:i + batch_size], upscaler, name)
        _sync(device)

    run()  # warm-up: caches, lazy initialisation, kernel selection
    times = _timed(run, repeats)
    extra = {"batch_size": batch_size, "frames": len(frames)}
    network = getattr(upscaler, "network", None)
    if network is not None and hasattr(network, "macs_per_lr_pixel"):
        pixels = frames[0].width * frames[0].height
        flops = 2 * network.macs_per_lr_pixel() * pixels
        extra["gflops"] = round(flops * len(frames) / statistics.median(times) / 1e9, 1)
        if peak_gflops:
            extra["pct_of_matmul"] = round(100 * extra["gflops"] / peak_gflops, 1)
    backend_used = upscaler.backend if spec.accepts_backend else None
    return Measurement("upscale", name, [len(frames) / t for t in times], extra, backend_used)


def bench_encode(path: str, upscaled: list[Frame], repeats: int, folder: Path, sink_options: SinkOptions) -> Measurement:
    def run():
        source = PyAVSource(path, SourceOptions())
        sink = PyAVSink(str(folder / "encode.mp4"), source, sink_options)
        try:
            for frame in upscaled:
                sink.write_frame(frame)
            sink.finish()
        finally:
            source.close()
        os.unlink(folder / "encode.mp4")

    times = _timed(run, repeats)
    return Measurement("encode", None, [len(upscaled) / t for t in times])


def bench_end_to_end(path: str, name: str, scale: int, device: str, folder: Path, backend: str = AUTO) -> Measurement:
    """One run of ``srpipe upscale`` in a child process."""
    command = [sys.executable, "-m", "srpipe", "upscale", path, "-o", str(folder / "e2e.mp4"), "-m", name,
               "-s", str(scale), "--device", device, "--backend", backend, "--json", "-q", "--overwrite"]
    summary, peak = _run_measured(command, folder / "e2e.json")
    return Measurement("end-to-end", name, [summary["fps"]], {"peak_rss_mib": round(peak)}, summary.get("backend"))


def _peak_of_running(pid: int) -> float:
    """VmHWM of a running process in MiB (0 once it has exited): its peak resident memory."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _run_measured(command: list[str], stdout_path: Path) -> tuple[dict, float]:
    """Run a command; its JSON output and its own peak resident memory in MiB.

    The peak is the child's VmHWM, read until it exits: the rusage of a waited-for child
    would also count this process's memory, which a forked child starts out with."""
    peak = 0.0
    with open(stdout_path, "w") as stdout:
        process = subprocess.Popen(command, stdout=stdout, stderr=subprocess.DEVNULL)
        while process.poll() is None:
            peak = max(peak, _peak_of_running(process.pid))
            time.sleep(0.02)
    if process.returncode:
        raise RuntimeError(f"{' '.join(command)} exited with {process.returncode}")
    return json.loads(stdout_path.read_text()), peak


# ffmpeg's scale filter: Lanczos with srpipe's 4 lobes (the same output as srpipe's); bicubic with
# ffmpeg's own C = 0.6, the same 4x4 taps and cost as srpipe's a = -0.75, because FFmpeg 5.1's
# CLI scales up to 20 levels away from that kernel when given param0=0:param1=0.75
FFMPEG_SCALERS = {"bicubic": "bicubic", "lanczos": SWSCALE_FLAGS["lanczos"]}


def bench_ffmpeg(ffmpeg: str, path: str, method: str, scale: int, frames: int, folder: Path) -> Measurement:
    """One run of ffmpeg's CLI doing the same job: its scale filter with the same method (FFMPEG_SCALERS), same encoder settings."""
    command = [ffmpeg, "-v", "error", "-y", "-i", path, "-vf", f"scale=iw*{scale}:ih*{scale}:flags={FFMPEG_SCALERS[method]}",
               "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-c:a", "copy", str(folder / "ffmpeg.mp4")]
    [seconds] = _timed(lambda: subprocess.run(command, check=True), 1)
    return Measurement("ffmpeg end-to-end", method, [frames / seconds])


def bench_memory_growth(model: str, scale: int, device: str, frames: int, folder: Path) -> dict:
    """Peak memory of the end-to-end run on a generated clip and on one 10 times longer."""
    peaks = {}
    for length in (frames, 10 * frames):
        clip = make_test_video(folder / f"len{length}.mp4", width=640, height=360, frames=length, audio=True)
        command = [sys.executable, "-m", "srpipe", "upscale", str(clip), "-o", str(folder / "mem.mp4"), "-m", model,
                   "-s", str(scale), "--device", device, "--json", "-q", "--overwrite"]
        peaks[length] = _run_measured(command, folder / "mem.json")[1]
    short, long = peaks[frames], peaks[10 * frames]
    return {"frames": [frames, 10 * frames], "peak_rss_mib": [round(short), round(long)], "growth": round(long / short, 3)}


def _in_turns(measures, repeats: int) -> list[Measurement]:
    """Each of ``measures`` (one run each) called in turn, ``repeats`` rounds; one
    Measurement per function, its runs' figures together (the highest peak memory)."""
    rounds = [[measure() for measure in measures] for _ in range(repeats)]
    merged = []
    for runs in zip(*rounds):
        first = runs[0]
        extra = dict(first.extra)
        if "peak_rss_mib" in extra:
            extra["peak_rss_mib"] = max(run.extra["peak_rss_mib"] for run in runs)
        merged.append(Measurement(first.stage, first.model, [f for run in runs for f in run.fps], extra, first.backend))
    return merged


def run_bench(input: str | None = None, models: tuple[str, ...] = ("bicubic",), scale: int = 2, device: str = "auto",
              batch_sizes: tuple[int, ...] = (1, 8), repeats: int = 3, memory_frames: int = 0,
              log=lambda line: None, backends: tuple[str, ...] = (AUTO,)) -> dict:
    """Measure every stage; returns the report as a dict. Neural models are measured once
    per name in ``backends``. ``memory_frames`` > 0 adds the memory-growth check on
    generated clips of that many frames and ten times more."""
    device = resolve_device(device)
    registry = collect_models(get_plugin_manager())
    runs = [(name, backend) for name in models
            for backend in (backends if registry.get(name, kind="upscaler").accepts_backend else (AUTO,))]
    peak = bench_matmul(device)
    log({"stage": "matmul", "model": None, "gflops": peak})
    with tempfile.TemporaryDirectory(prefix="srpipe-bench-") as temp:
        folder = Path(temp)
        path = input or str(generated_clip(folder))
        with av.open(path) as container:
            stream = container.streams.video[0]
            size = f"{stream.codec_context.width}x{stream.codec_context.height}"
        frames = _decode_all(path)
        results = []

        def record(measurement):
            if measurement is not None:
                results.append(measurement)
                log(measurement.to_dict())

        record(bench_decode(path, repeats))
        for name, backend in runs:
            for batch_size in batch_sizes:
                record(bench_upscale(frames, name, scale, device, batch_size, repeats, backend, peak))
        spec = collect_models(get_plugin_manager()).get("bicubic")
        upscaled = upscale_frames(frames, spec.load(scale=scale, device="cpu"), "bicubic")
        record(bench_encode(path, upscaled, repeats, folder, SinkOptions(scale=scale)))
        # srpipe and ffmpeg take turns, so that both see the same state of a shared machine
        whole_runs = [lambda name=name, backend=backend: bench_end_to_end(path, name, scale, device, folder, backend)
                      for name, backend in runs]
        ffmpeg = shutil.which("ffmpeg")
        if ffmpeg:
            whole_runs += [lambda method=method: bench_ffmpeg(ffmpeg, path, method, scale, len(frames), folder)
                           for method in FFMPEG_SCALERS if method in models]
        for measurement in _in_turns(whole_runs, repeats):
            record(measurement)
        memory = bench_memory_growth(models[0], scale, device, memory_frames, folder) if memory_frames else None
    report = {
        "input": input or f"generated {size}",
        "size": size,
        "scale": scale,
        "device": device,
        "cores": os.cpu_count(),
        "matmul_gflops": peak,
        "repeats": repeats,
        "results": [m.to_dict() for m in results],
    }
    report["ratios"] = _ratios(results)
    if memory:
        report["memory_growth"] = memory
        log({"stage": "memory", "model": models[0], "fps_median": 0, "fps_min": 0, "fps_max": 0, **memory})
    return report


def _ratios(results: list[Measurement]) -> dict:
    """End to end against ffmpeg with the same method, and against the rate the stages' own costs allow."""
    by = {(m.stage, m.model, m.backend): statistics.median(m.fps) for m in results}
    ratios = {}
    decode, encode = by.get(("decode", None, None)), by.get(("encode", None, None))
    for (stage, model, backend), fps in by.items():
        if stage != "end-to-end":
            continue
        label = f"{model} ({backend})" if backend else model
        ffmpeg = by.get(("ffmpeg end-to-end", model, None))
        if ffmpeg:
            ratios[f"{label} vs ffmpeg"] = round(fps / ffmpeg, 2)
        upscale = max((m for m in results if m.stage == "upscale" and m.model == model and m.backend == backend),
                      key=lambda m: statistics.median(m.fps), default=None)
        if upscale and decode and encode:
            allowed = 1 / (1 / decode + 1 / statistics.median(upscale.fps) + 1 / encode)
            ratios[f"{label} vs sum of stages"] = round(fps / allowed, 2)
    return ratios
