"""Stage-by-stage throughput: decode, upscale, encode, end to end, and ffmpeg for reference.

Each measurement is repeated; the report gives the median and the spread (min, max) of
frames per second. End-to-end runs happen in a child process, so its peak resident memory
is the pipeline's own. Neural models are measured on each backend asked for, and their
GFLOP/s set against the device's float32 matrix-multiply rate.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import av

from srpipe.backends import AUTO, load_upscaler
from srpipe.device import resolve_device
from srpipe.errors import SrpipeError
from srpipe.frames import Frame
from srpipe.media import SinkOptions, SourceOptions, is_image_file
from srpipe.memory import check_frame_size
from srpipe.models import UpscalerTraits
from srpipe.outputs import special_kind
from srpipe.pipeline import upscale_frames
from srpipe.plugin_guard import plugin_code
from srpipe.plugins import collect_backends, collect_models, get_plugin_manager
from srpipe.resize import SWSCALE_FLAGS
from srpipe.testing import make_test_video
from srpipe.upscaling import check_input
from srpipe.video import PyAVSink, PyAVSource, main_video


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


def generated_clip(folder: Path, width: int = 640, height: int = 360, frames: int = 125) -> Path:
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


# The stage rows hold the frames they time in memory, decoded and upscaled (bicubic's, the encoder's
# input): on a long or large clip they are timed on its first frames that fit in this many bytes
# (1 GiB: 125 frames of 640x360 upscaled x4, 69 of 1920x1080 x2); the whole processes run it all.
STAGE_MEMORY = 1 << 30


def _decoded(path: str, options: SourceOptions | None = None) -> Iterator[Frame]:
    source = PyAVSource(path, options or SourceOptions())
    try:
        yield from (item for item in source.items() if isinstance(item, Frame))
    finally:
        source.close()


def _decode_all(path: str, options: SourceOptions | None = None, limit: int | None = None) -> list[Frame]:
    """The first ``limit`` frames of ``path`` (None: all)."""
    with contextlib.closing(_decoded(path, options)) as frames:
        return list(itertools.islice(frames, limit))


def stage_frames(path: str, options: SourceOptions, scale: int) -> tuple[list[Frame], bool]:
    """The first frames of ``path`` that fit in STAGE_MEMORY with their upscales by ``scale``, and
    whether they are all of its frames."""
    frames, used = [], 0
    with contextlib.closing(_decoded(path, options)) as decoded:
        for frame in decoded:
            planes = [*frame.planes, *([] if frame.alpha is None else [frame.alpha])]
            used += sum(plane.nbytes for plane in planes) * (1 + scale * scale)
            if frames and used > STAGE_MEMORY:
                return frames, False
            frames.append(frame)
    return frames, True


def bench_decode(path: str, repeats: int, options: SourceOptions, frames: int) -> Measurement:
    """Decoding the first ``frames`` frames of ``path``."""
    times = _timed(lambda: _decode_all(path, options, frames), repeats)
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
                  backend: str = AUTO, peak_gflops: float | None = None, weights: str | None = None) -> Measurement:
    pm = get_plugin_manager()
    spec = collect_models(pm).get(name, kind="upscaler")
    upscaler = load_upscaler(spec, collect_backends(pm), scale=scale, device=device, weights=weights, backend=backend)

    def run():
        for i in range(0, len(frames), batch_size):
            with plugin_code(f"model {name!r}"):  # its prints, working folder and handlers: as upscale's
                upscale_frames(frames[i:i + batch_size], upscaler, name)
        _sync(device)

    run()  # warm-up: caches, lazy initialisation, kernel selection
    times = _timed(run, repeats)
    extra = {"batch_size": batch_size, "frames": len(frames)}
    traits = UpscalerTraits.of(upscaler)
    if traits.variant:  # the fast network, say, where the model has several
        extra["variant"] = traits.variant
    macs = traits.macs_per_lr_pixel
    if macs is not None:
        pixels = frames[0].width * frames[0].height
        flops = 2 * macs * pixels
        extra["gflops"] = round(flops * len(frames) / statistics.median(times) / 1e9, 1)
        if peak_gflops:
            extra["pct_of_matmul"] = round(100 * extra["gflops"] / peak_gflops, 1)
    backend_used = traits.backend if spec.accepts_backend else None
    return Measurement("upscale", name, [len(frames) / t for t in times], extra, backend_used)


def bench_encode(path: str, upscaled: list[Frame], repeats: int, folder: Path,
                 sink_options: SinkOptions, suffix: str = ".mp4") -> Measurement:
    output = folder / f"encode{suffix}"

    def run():
        source = PyAVSource(path, SourceOptions())
        sink = PyAVSink(str(output), source, sink_options)
        try:
            for frame in upscaled:
                sink.write_frame(frame)
            sink.finish()
        finally:
            source.close()
        os.unlink(output)

    times = _timed(run, repeats)
    return Measurement("encode", None, [len(upscaled) / t for t in times])


def srpipe_command() -> list[str]:
    """How a user starts srpipe: the installed ``srpipe`` script beside this interpreter."""
    script = Path(sys.executable).with_name("srpipe")
    return [str(script)] if script.exists() else [sys.executable, "-m", "srpipe"]


# Runs a command and reports its wall time and its own peak resident memory. A small process of
# its own, because a child's ru_maxrss also counts the memory of the process that spawned it
# (this one's small footprint is then the floor of what it reports).
_LAUNCHER = """
import json, os, sys, time
out = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
err = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
actions = [(os.POSIX_SPAWN_DUP2, out, 1), (os.POSIX_SPAWN_DUP2, err, 2)]
start = time.perf_counter()
pid = os.posix_spawnp(sys.argv[3], sys.argv[3:], os.environ, file_actions=actions)
_, status, usage = os.wait4(pid, 0)
print(json.dumps({"seconds": time.perf_counter() - start, "peak_kib": usage.ru_maxrss,
                  "code": os.waitstatus_to_exitcode(status)}))
"""


@dataclass
class WholeRun:
    command: list[str]
    seconds: float
    peak_mib: float
    code: int
    stdout: str
    stderr: str

    def check(self, expected: int = 0) -> "WholeRun":
        """Refuse a run that did not end with ``expected``, giving its reason (:meth:`reason`)."""
        if self.code != expected:
            raise SrpipeError(f"{shlex.join(self.command)} exited with {self.code}, not {expected}: {self.reason()}")
        return self

    def reason(self) -> str:
        """Why the command failed: srpipe's ``Error:`` line where it printed one, else the first line
        (ffmpeg, at ``-v error``, says the cause first, then each thing that failed after it), without
        the address FFmpeg gives its component ("[mp4 @ 0x5645...] flac in MP4 ...": "mp4: flac ...")."""
        lines = [line.strip() for line in self.stderr.splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("Error:")]
        line = errors[-1] if errors else lines[0] if lines else "no message"
        return re.sub(r"^\[(\w+) @ 0x[0-9a-f]+\] ", r"\1: ", line)


def run_whole_process(command: list[str], folder: Path) -> WholeRun:
    """``command`` as a user runs it, start-up included: wall time, peak memory, exit code, output."""
    stdout, stderr = folder / "whole-process.out", folder / "whole-process.err"
    launched = subprocess.run([sys.executable, "-S", "-c", _LAUNCHER, str(stdout), str(stderr), *command],
                              capture_output=True, text=True)
    if launched.returncode:
        raise RuntimeError(f"cannot run {command[0]}: {launched.stderr.strip().splitlines()[-1]}")
    result = json.loads(launched.stdout)
    return WholeRun(command, result["seconds"], result["peak_kib"] / 1024, result["code"], stdout.read_text(),
                    stderr.read_text())


def upscale_command(path: str, name: str, scale: int, device: str, output: Path, weights: str | None = None,
                    options: tuple[str, ...] = ()) -> list[str]:
    """``srpipe upscale -m NAME ... --json -- PATH`` as a user types it, with ``options`` added (PATH
    after ``--``: a file named -clip.mp4 is not an option)."""
    return [*srpipe_command(), "upscale", "-o", str(output), "-m", name, "-s", str(scale), "--device", device,
            "--json", "-q", "--overwrite", *(["--weights", weights] if weights else []), *options, "--", path]


def bench_end_to_end(path: str, name: str, scale: int, device: str, folder: Path, backend: str = AUTO,
                     weights: str | None = None, suffix: str = ".mp4", options: tuple[str, ...] = ()) -> Measurement:
    """One ``srpipe upscale`` as a user runs it, with ``options`` added: frames per second of the
    whole process, start-up included, and of the pipeline alone (its own summary)."""
    command = upscale_command(path, name, scale, device, folder / f"e2e{suffix}", weights,
                              ("--backend", backend, *options))
    run = run_whole_process(command, folder).check()
    summary = json.loads(run.stdout)
    extra = {"peak_rss_mib": round(run.peak_mib), "pipeline_fps": summary["fps"]}
    return Measurement("end-to-end", name, [summary["frames"] / run.seconds], extra, summary.get("backend"))


# ffmpeg's scale filter: Lanczos with srpipe's 4 lobes (the same output as srpipe's); bicubic with
# ffmpeg's own C = 0.6, the same 4x4 taps and cost as srpipe's a = -0.75, because FFmpeg 5.1's
# CLI scales up to 20 levels away from that kernel when given param0=0:param1=0.75
FFMPEG_SCALERS = {"bicubic": "bicubic", "lanczos": SWSCALE_FLAGS["lanczos"]}


def ffmpeg_command(ffmpeg: str, path: str, method: str, scale: int, output: Path) -> list[str]:
    """ffmpeg's CLI doing srpipe's job: its scale filter with the same method (FFMPEG_SCALERS),
    srpipe's encoder settings, frame for frame (each frame keeps its time, as srpipe's do: no
    frames made up or dropped for a constant rate), the video srpipe upscales and every audio and
    subtitle stream copied, as srpipe copies them."""
    with av.open(path) as container:
        video = main_video(container).index
    return [ffmpeg, "-v", "error", "-y", "-i", f"file:{path}", "-map", f"0:{video}", "-map", "0:a?", "-map", "0:s?",
            "-vf", f"scale=iw*{scale}:ih*{scale}:flags={FFMPEG_SCALERS[method]}", *_frame_for_frame(ffmpeg),
            "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-c:a", "copy", "-c:s", "copy", str(output)]


# The sound and subtitle codecs an MP4 holds both in srpipe's FFmpeg and in the system's (FFmpeg 5.1's
# takes no PCM, and FLAC only with -strict -2)
MP4_HOLDS = frozenset({"aac", "mp3", "ac3", "eac3", "opus", "alac", "mov_text"})


def output_suffix(path: str) -> str:
    """The container bench's runs write ``path``'s job to: .mp4, or .mkv where a stream srpipe and
    ffmpeg copy would not fit an MP4 (PCM, FLAC, SRT or ASS subtitles), so that both do the same job."""
    with av.open(path) as container:
        copied = [stream for stream in container.streams if stream.type in ("audio", "subtitle")]
        fits = all(stream.codec_context is not None and stream.codec_context.name in MP4_HOLDS for stream in copied)
    return ".mp4" if fits else ".mkv"


def written_frames(path: Path) -> int:
    """The video frames a file holds: its first video stream's packets (one a frame, as x264 writes)."""
    with av.open(str(path)) as container:
        return sum(1 for packet in container.demux(container.streams.video[0]) if packet.size)


@functools.cache
def _frame_for_frame(ffmpeg: str) -> tuple[str, ...]:
    """The option that makes ``ffmpeg`` write each frame at its own time: -fps_mode from FFmpeg 5.1,
    -vsync before it (Ubuntu 22.04's 4.4), which later versions may drop."""
    try:
        options = subprocess.run([ffmpeg, "-hide_banner", "-h", "long"], capture_output=True, text=True,
                                 timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        options = ""
    return ("-fps_mode", "passthrough") if "-fps_mode" in options else ("-vsync", "passthrough")


def system_ffmpeg() -> str | None:
    """The ffmpeg on PATH that can run srpipe's job (some builds, Fedora's ffmpeg-free, lack
    libx264), or None."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        return None
    try:
        encoders = subprocess.run([ffmpeg, "-hide_banner", "-encoders"], capture_output=True, text=True,
                                  timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return ffmpeg if " libx264 " in encoders else None


def bench_ffmpeg(ffmpeg: str, path: str, method: str, scale: int, folder: Path, suffix: str = ".mp4") -> Measurement:
    """One run of ffmpeg's CLI doing the same job (:func:`ffmpeg_command`), at the rate of the
    frames it wrote."""
    output = folder / f"ffmpeg{suffix}"
    run = run_whole_process(ffmpeg_command(ffmpeg, path, method, scale, output), folder).check()
    frames = written_frames(output)
    return Measurement("ffmpeg end-to-end", method, [frames / run.seconds],
                       {"peak_rss_mib": round(run.peak_mib), "frames": frames})


def bench_memory_growth(model: str, scale: int, device: str, frames: int, folder: Path) -> dict:
    """Peak memory of the end-to-end run on a generated clip and on one 10 times longer."""
    peaks = {}
    for length in (frames, 10 * frames):
        clip = make_test_video(folder / f"len{length}.mp4", width=640, height=360, frames=length, audio=True)
        command = [*srpipe_command(), "upscale", str(clip), "-o", str(folder / "mem.mp4"), "-m", model,
                   "-s", str(scale), "--device", device, "-q", "--overwrite"]
        peaks[length] = run_whole_process(command, folder).check().peak_mib
    short, long = peaks[frames], peaks[10 * frames]
    return {"frames": [frames, 10 * frames], "peak_rss_mib": [round(short), round(long)],
            "growth": round(long / short, 3)}


FLOOR = "python -c 'import av, numpy'"


def bench_startup(models: tuple[str, ...], scale: int, device: str, folder: Path, repeats: int,
                  ffmpeg: str | None = None, ffmpeg_methods: tuple[str, ...] = ()) -> list[dict]:
    """Whole commands on a 3-frame 64x64 clip, where start-up is nearly all the time, beside
    the floor, a bare interpreter importing PyAV and NumPy, and beside ``ffmpeg`` doing the job
    of each of ``ffmpeg_methods``: what each costs a file before its frames. In turns,
    ``repeats`` rounds."""
    tiny = make_test_video(folder / "tiny.mp4", width=64, height=64, frames=3)
    (folder / "exists.mp4").write_bytes(b"")
    (folder / "a-folder").mkdir(exist_ok=True)
    srpipe = srpipe_command()
    upscale = [*srpipe, "upscale", str(tiny), "--device", device, "-s", str(scale)]
    commands = {
        FLOOR: ([sys.executable, "-c", "import av, numpy"], 0),
        "srpipe --help": ([*srpipe, "--help"], 0),
        "srpipe models list": ([*srpipe, "models", "list"], 0),
        "unsupported scale (--scale 7)": ([*srpipe, "upscale", str(tiny), "-s", "7"], 1),
        "missing input": ([*srpipe, "upscale", str(folder / "missing.mp4")], 1),
        "output exists": ([*upscale, "-o", str(folder / "exists.mp4")], 1),
        "output is a folder": ([*upscale, "-o", str(folder / "a-folder")], 1),
        **{f"upscale -m {model} (3 frames, 64x64)": ([*upscale, "-m", model, "-o", str(folder / "tiny_out.mp4"),
                                                      "--overwrite", "-q"], 0)
           for model in models},
    }
    for method in ffmpeg_methods:
        command = ffmpeg_command(ffmpeg, str(tiny), method, scale, folder / "tiny_ffmpeg.mp4")
        commands[f"ffmpeg -vf scale {method} (3 frames, 64x64)"] = (command, 0)
    runs: dict[str, list[WholeRun]] = {label: [] for label in commands}
    for _ in range(repeats):
        for label, (command, expected) in commands.items():
            runs[label].append(run_whole_process(command, folder).check(expected))
    floor = statistics.median(run.seconds for run in runs[FLOOR])
    rows = []
    for label, done in runs.items():
        seconds = [run.seconds for run in done]
        rows.append({"command": label, "seconds_median": round(statistics.median(seconds), 3),
                     "seconds_min": round(min(seconds), 3), "seconds_max": round(max(seconds), 3),
                     "vs_floor": round(statistics.median(seconds) / floor, 2),
                     "peak_rss_mib": round(max(run.peak_mib for run in done))})
    return rows


def _in_turns(measures, repeats: int) -> list[Measurement]:
    """Each of ``measures`` (one run each) called in turn, ``repeats`` rounds; one
    Measurement per function, its runs' figures together (the highest peak memory, the median
    of the pipeline's own frame rate)."""
    rounds = [[measure() for measure in measures] for _ in range(repeats)]
    merged = []
    for runs in zip(*rounds):
        first = runs[0]
        extra = dict(first.extra)
        if "peak_rss_mib" in extra:
            extra["peak_rss_mib"] = max(run.extra["peak_rss_mib"] for run in runs)
        if "pipeline_fps" in extra:
            extra["pipeline_fps"] = round(statistics.median(run.extra["pipeline_fps"] for run in runs), 2)
        merged.append(Measurement(first.stage, first.model, [f for run in runs for f in run.fps], extra, first.backend))
    return merged


# Speed features (issue #24): each of tile reuse, flat tiles and int8 on and off, on a fixed camera and a zoom

FFMPEG_REFERENCE = "ffmpeg bicubic + x264 veryfast"
EVERY_TILE = "network on every tile"


def stage_policies() -> dict:
    """The upscale stage's runs: the network on every tile, then each :class:`srpipe.reuse.ReusePolicy`
    that turns on reuse, flat tiles or both."""
    from srpipe.reuse import ReusePolicy

    return {EVERY_TILE: None, "reuse + flat tiles": ReusePolicy(), "reuse only": ReusePolicy(flat=False),
            "flat tiles only": ReusePolicy(reuse=False)}


@dataclass
class SpeedRow:
    """A row of the speed-features section: ``measure()`` runs it once and returns its figures
    (``fps``, or for live ``shown``, ``p50_ms`` and ``p99_ms``; ``backend``, ``reuse``)."""

    clip: str
    kind: str  # "whole" (a process as a user runs it), "stage" (the upscale stage in this process) or "live"
    run: str  # what was run, as a user reads it
    measure: Callable[[], dict]
    model: str | None = None
    results: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        row = {"clip": self.clip, "kind": self.kind, "model": self.model, "run": self.run,
               "backend": self.results[-1].get("backend")}
        figures = ("shown", "p50_ms", "p99_ms") if self.kind == "live" else ("fps",)
        for figure in figures:
            values = [result[figure] for result in self.results]
            digits = 3 if figure == "shown" else 2
            row.update({f"{figure}_median": round(statistics.median(values), digits),
                        f"{figure}_min": round(min(values), digits), f"{figure}_max": round(max(values), digits)})
        if self.kind == "live":
            for share in ("reused", "late"):
                shares = [result[share] for result in self.results if result[share] is not None]
                row[share] = round(statistics.median(shares), 2) if shares else None
        else:
            row["reuse"] = self.results[-1].get("reuse")  # the same pixels give the same decisions each run
        return row


def _whole_upscale(clip: Path, name: str, scale: int, device: str, folder: Path, weights: str | None,
                   options: tuple[str, ...]) -> dict:
    command = upscale_command(str(clip), name, scale, device, folder / "speed.mp4", weights, options)
    run = run_whole_process(command, folder).check()
    summary = json.loads(run.stdout)
    return {"fps": summary["frames"] / run.seconds, "backend": summary.get("backend"), "reuse": summary.get("reuse")}


def _whole_ffmpeg(ffmpeg: str, clip: Path, scale: int, folder: Path) -> dict:
    output = folder / "speed-ffmpeg.mp4"
    run = run_whole_process(ffmpeg_command(ffmpeg, str(clip), "bicubic", scale, output), folder).check()
    return {"fps": written_frames(output) / run.seconds}


def _stage(frames: list[Frame], upscaler, name: str, policy) -> dict:
    """The upscale stage over the clip in order (batches of 8, as the pipeline's), with a fresh
    reuse wrapper when ``policy`` is not None."""
    from srpipe.reuse import with_reuse

    used = upscaler if policy is None else with_reuse(upscaler, policy, name)
    start = time.perf_counter()
    for i in range(0, len(frames), 8):
        with plugin_code(f"model {name!r}"):
            upscale_frames(frames[i:i + 8], used, name)
    seconds = time.perf_counter() - start
    return {"fps": len(frames) / seconds, "backend": UpscalerTraits.of(upscaler).backend,
            "reuse": used.stats.to_dict() if used is not upscaler else None}


# what `srpipe live --no-window` prints at the end (srpipe.default_plugins.live.stats.LiveStats.summary)
LIVE_SUMMARY = re.compile(r"(\d+) frames shown, \d+ dropped of (\d+) read .*latency ms: p50 (\d+), p90 \d+, "
                          r"p99 (\d+)(?:.*; (\d+)% of tiles reused(?:, (\d+)% late)?)?")


def _live(clip: Path, name: str, scale: int, device: str, folder: Path, weights: str | None,
          options: tuple[str, ...]) -> dict:
    command = [*srpipe_command(), "live", "--source", str(clip), "--no-window", "-m", name, "-s", str(scale),
               "--device", device, *(["--weights", weights] if weights else []), *options]
    run = run_whole_process(command, folder).check()
    found = LIVE_SUMMARY.search(run.stderr)
    if found is None:
        raise RuntimeError(f"{' '.join(command)} printed no summary: {run.stderr.strip()[-300:]}")
    shown, read, p50, p99, reused, late = found.groups()
    return {"shown": int(shown) / max(int(read), 1), "p50_ms": int(p50), "p99_ms": int(p99),
            "reused": int(reused) / 100 if reused else None,
            "late": int(late) / 100 if late else 0.0 if reused else None}


def speed_clips(folder: Path, width: int, height: int, frames: int) -> tuple[dict[str, Path], tuple[str, Path]]:
    """The section's clips (:mod:`srpipe.testing`, x264 crf 23 at 30 fps): a fixed camera and a
    zoom at ``width`` x ``height``, and for live preview the fixed camera at 4:3 of the same
    width (640x480 beside 640x360)."""
    from srpipe.testing import make_fixed_camera_clip, make_zoom_clip

    live_height = width * 3 // 4 // 2 * 2
    clips = {f"fixed-camera {width}x{height}": make_fixed_camera_clip(folder / "fixed-camera.mp4", width=width,
                                                                      height=height, frames=frames),
             f"zoom {width}x{height}": make_zoom_clip(folder / "zoom.mp4", width=width, height=height, frames=frames)}
    live = make_fixed_camera_clip(folder / "live-camera.mp4", width=width, height=live_height, frames=frames)
    return clips, (f"fixed-camera {width}x{live_height}", live)


def reusing_models(specs, scale: int, device: str, weights: dict) -> tuple[str, ...]:
    """The models of ``specs`` whose upscaler declares its receptive radius: those tile reuse
    works for (:func:`srpipe.reuse.with_reuse`)."""
    backends = collect_backends(get_plugin_manager())
    return tuple(spec.name for spec in specs
                 if UpscalerTraits.of(load_upscaler(spec, backends, scale=scale, device=device,
                                                    weights=weights.get(spec.name))).receptive_radius is not None)


def _upscale_variants(spec, backends, device: str) -> list[tuple[str, ...]]:
    """The ``srpipe upscale`` options to time for a model: the default, --exact and, where an
    inexact (int8) backend is available for a model that takes one, int8 on and off with tile
    reuse on: each inexact backend and the exact one that --exact picks."""
    variants = [(), ("--exact",)]
    kind = device.split(":")[0]
    inexact = [b.name for b in backends if not b.exact and backends.available(b) and kind in b.devices]
    if spec.accepts_backend and inexact:
        variants += [("--backend", name) for name in (*inexact, backends.select(AUTO, device, exact=True).name)]
    return variants


def bench_speed_features(names: tuple[str, ...], scale: int, device: str, folder: Path, repeats: int,
                         ffmpeg: str | None, width: int = 640, height: int = 360, frames: int = 120,
                         weights: dict | None = None, log=lambda row: None) -> list[dict]:
    """For each model of ``names`` (:func:`reusing_models`), each speed feature on and off (docs/speed.md), on
    :func:`speed_clips`: whole ``srpipe upscale`` processes (:func:`_upscale_variants`) beside
    ffmpeg's bicubic + x264 (when ``ffmpeg``), the upscale stage with each of
    :func:`stage_policies`, and ``srpipe live`` as it runs, with --drop-frames and with --exact. All take turns,
    ``repeats`` rounds; returns the rows, each with its ratios to ffmpeg and to the exact run."""
    weights = weights or {}
    pm = get_plugin_manager()
    registry, backends = collect_models(pm), collect_backends(pm)
    clips, (live_label, live_clip) = speed_clips(folder, width, height, frames)
    decoded = {label: _decode_all(str(clip)) for label, clip in clips.items()}
    variants, stage_upscalers = {}, {}
    for name in names:
        spec = registry.get(name, kind="upscaler")
        variants[name] = _upscale_variants(spec, backends, device)
        # every backend the runs use, loaded (converted and kept, see srpipe.cache) before the turns
        for backend in {AUTO, *(options[-1] for options in variants[name] if "--backend" in options)}:
            load_upscaler(spec, backends, scale=scale, device=device, weights=weights.get(name), backend=backend)
        upscaler = load_upscaler(spec, backends, scale=scale, device=device, weights=weights.get(name), exact=True)
        with plugin_code(f"model {name!r}"):
            upscale_frames(next(iter(decoded.values()))[:2], upscaler, name)  # lazy initialisation
        stage_upscalers[name] = upscaler
    rows: list[SpeedRow] = []
    for label, clip in clips.items():
        if ffmpeg:
            rows.append(SpeedRow(label, "whole", FFMPEG_REFERENCE,
                                 lambda clip=clip: _whole_ffmpeg(ffmpeg, clip, scale, folder)))
        for name in names:
            for options in variants[name]:
                rows.append(SpeedRow(label, "whole", " ".join(["upscale -m", name, *options]),
                                     lambda clip=clip, name=name, options=options: _whole_upscale(
                                         clip, name, scale, device, folder, weights.get(name), options), name))
            for run, policy in stage_policies().items():
                rows.append(SpeedRow(label, "stage", f"upscale stage, {run}",
                                     lambda frames=decoded[label], name=name, policy=policy: _stage(
                                         frames, stage_upscalers[name], name, policy), name))
    for name in names:
        for options in ((), ("--drop-frames",), ("--exact",)):
            rows.append(SpeedRow(live_label, "live", " ".join(["live -m", name, *options]),
                                 lambda name=name, options=options: _live(live_clip, name, scale, device, folder,
                                                                          weights.get(name), options), name))
    for _ in range(repeats):
        for row in rows:
            row.results.append(row.measure())
    reports = [row.to_dict() for row in rows]
    _speed_ratios(reports)
    for report in reports:
        log(report)
    return reports


def _speed_ratios(rows: list[dict]) -> None:
    """Each whole run's frame rate against ffmpeg's on its clip (``vs_ffmpeg``), and each whole
    or stage run against its model's exact run on the clip (``vs_exact``: --exact, the network
    on every tile)."""
    fps = {(row["clip"], row["model"], row["run"]): row["fps_median"] for row in rows if row["kind"] != "live"}
    for row in rows:
        if row["kind"] == "live" or row["model"] is None:
            continue
        exact = f"upscale -m {row['model']} --exact" if row["kind"] == "whole" else f"upscale stage, {EVERY_TILE}"
        if (row["clip"], row["model"], exact) in fps:
            row["vs_exact"] = round(row["fps_median"] / fps[row["clip"], row["model"], exact], 2)
        if row["kind"] == "whole" and (row["clip"], None, FFMPEG_REFERENCE) in fps:
            row["vs_ffmpeg"] = round(row["fps_median"] / fps[row["clip"], None, FFMPEG_REFERENCE], 3)


def run_bench(input: str | None = None, models: tuple[str, ...] = ("bicubic",), scale: int | None = None,
              device: str = "auto", batch_sizes: tuple[int, ...] = (1, 8), repeats: int = 3, memory_frames: int = 0,
              log=lambda line: None, backends: tuple[str, ...] = (AUTO,), startup: bool = True,
              weights: str | None = None, speed_features: bool = False, speed_size: tuple[int, int] = (640, 360),
              speed_frames: int = 120, max_pixels: int | None = None, on_decode_error: str = "stop") -> dict:
    """Measure every stage; returns the report as a dict. Neural models are measured once
    per name in ``backends``. ``memory_frames`` > 0 adds the memory-growth check on
    generated clips of that many frames and ten times more. ``startup`` adds whole commands
    on a tiny clip against a bare interpreter (:func:`bench_startup`). ``speed_features`` adds
    :func:`bench_speed_features` for the models tile reuse works for, on clips of ``speed_size``
    and ``speed_frames``. ``scale`` defaults to the first model's own; ``weights`` goes to the
    models that take a checkpoint. ``max_pixels`` and ``on_decode_error`` are upscale's options,
    for bench's own reads of the clip and its ``srpipe upscale`` runs. The stage rows time the
    first frames of the clip that fit in STAGE_MEMORY, the whole processes all of it."""
    source_options = SourceOptions(max_pixels=max_pixels, on_decode_error=on_decode_error)
    upscale_options = (*(("--max-pixels", str(max_pixels)) if max_pixels else ()),
                       "--on-decode-error", on_decode_error)
    if input is not None:
        if os.path.isdir(input):  # check_input's advice (srpipe batch) is upscale's: batch times nothing
            raise SrpipeError(f"{input} is a folder; srpipe bench times one video file: give one, or none for a "
                              "generated clip")
        check_input(input)
        kind = "standard input" if input == "-" else special_kind(input)
        if kind:  # it would give its frames once, then wait
            raise SrpipeError(f"{input} is a {kind}, not a file; srpipe bench reads its clip several times: give a "
                              "file")
        if is_image_file(input):
            raise SrpipeError(f"{input} is a still image; srpipe bench times video: give a clip, or none for a "
                              "generated one")
        source = PyAVSource(input, source_options)  # a file with no video, or none at all, is refused now
        source.close()
        check_frame_size(input, source.width, source.height, max_pixels)  # a header may claim a huge frame
    registry = collect_models(get_plugin_manager())
    specs = [registry.get(name, kind="upscaler") for name in models]
    scale = scale or specs[0].default_scale
    for spec in specs:
        registry.resolve_scale(spec, scale)
    with_weights = {spec.name: weights for spec in specs if weights and spec.accepts_weights}
    if weights and not with_weights:
        raise SrpipeError(f"none of the models takes --weights ({', '.join(models)})")
    for name in with_weights:
        registry.upscaler(name, scale, weights)  # the file exists
    asked_device = device  # what the start-up rows pass on, as a user would
    device = resolve_device(device, uses_gpu=any(spec.uses_gpu for spec in specs))
    speed_models = reusing_models(specs, scale, device, with_weights) if speed_features else ()
    if speed_features and not speed_models:
        raise SrpipeError(f"--speed-features times models that reuse tiles, and none of {', '.join(models)} does; "
                          "add one with -m, e.g. -m espcn")
    runs = [(spec.name, backend) for spec in specs for backend in (backends if spec.accepts_backend else (AUTO,))]
    for backend in {backend for _, backend in runs if backend != AUTO}:  # unknown or unavailable: said before any stage
        collect_backends(get_plugin_manager()).select(backend, device)
    with tempfile.TemporaryDirectory(prefix="srpipe-bench-") as temp:
        folder = Path(temp)
        path = input or str(generated_clip(folder))
        with av.open(path) as container:
            stream = main_video(container)
            size = f"{stream.codec_context.width}x{stream.codec_context.height}"
        frames, whole = stage_frames(path, source_options, scale)
        if not frames:  # said before any row
            raise SrpipeError(f"{path} has no frame that decodes; check the file")
        suffix = output_suffix(path)
        peak = None
        if any(spec.accepts_backend for spec in specs):  # the yardstick of networks' arithmetic
            peak = bench_matmul(device)
            log({"stage": "matmul", "model": None, "gflops": peak})
        if not whole:
            log({"stage": "note", "text": f"stages: the first {len(frames)} frames (what fits in "
                                          f"{STAGE_MEMORY >> 20} MiB decoded and upscaled); whole processes: all"})
        results = []

        def record(measurement):
            if measurement is not None:
                results.append(measurement)
                log(measurement.to_dict())

        record(bench_decode(path, repeats, source_options, len(frames)))
        for name, backend in runs:
            for batch_size in batch_sizes:
                record(bench_upscale(frames, name, scale, device, batch_size, repeats, backend, peak,
                                     with_weights.get(name)))
        spec = collect_models(get_plugin_manager()).get("bicubic")
        upscaled = upscale_frames(frames, spec.load(scale=scale, device="cpu"), "bicubic")
        record(bench_encode(path, upscaled, repeats, folder, SinkOptions(scale=scale), suffix))
        # srpipe and ffmpeg take turns, so that both see the same state of a shared machine
        whole_runs = [lambda name=name, backend=backend: bench_end_to_end(path, name, scale, device, folder, backend,
                                                                          with_weights.get(name), suffix,
                                                                          upscale_options)
                      for name, backend in runs]
        ffmpeg = system_ffmpeg()
        ffmpeg_methods = tuple(method for method in FFMPEG_SCALERS if ffmpeg and method in models)
        whole_runs += [lambda method=method: bench_ffmpeg(ffmpeg, path, method, scale, folder, suffix)
                       for method in ffmpeg_methods]
        for measurement in _in_turns(whole_runs, repeats):
            record(measurement)
        speed_rows = (bench_speed_features(speed_models, scale, device, folder, repeats, ffmpeg, *speed_size,
                                           speed_frames, with_weights, lambda row: log({"stage": "speed", **row}))
                      if speed_models else [])
        memory = bench_memory_growth(models[0], scale, device, memory_frames, folder) if memory_frames else None
        startup_rows = (bench_startup(models, scale, asked_device, folder, repeats, ffmpeg, ffmpeg_methods)
                        if startup else [])
        for row in startup_rows:
            log({"stage": "startup", **row})
    report = {
        "input": input or f"generated {size}",
        "size": size,
        "scale": scale,
        "device": device,
        "cores": os.cpu_count(),
        "matmul_gflops": peak,
        "repeats": repeats,
        "stage_frames": len(frames),  # the stage rows' (all the clip's where "stage_frames_whole")
        "stage_frames_whole": whole,
        "results": [m.to_dict() for m in results],
    }
    report["ratios"] = _ratios(results)
    if startup_rows:
        report["startup"] = startup_rows
    if speed_rows:
        report["speed_features"] = speed_rows
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
