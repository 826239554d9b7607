"""Upscale every video and image of a folder tree into a mirror tree, resumably.

A manifest in the output folder (``.srpipe-batch.json``, with a journal while a batch
runs) records each finished file with its input's size and mtime and the settings used;
the next run skips those and redoes everything else. A batch replaces only the outputs
it wrote itself (with ``overwrite``, any file but an input). The work runs on an engine: ``local`` worker
processes, each given an equal share of the cores for its decoder, model and
encoder, or ``ray`` workers on a cluster (srpipe.default_plugins.batch.ray_engine). With more than
one worker, long videos are split into keyframe-aligned chunks (srpipe.default_plugins.batch.chunks)
whose parts, kept in ``OUT_DIR/.srpipe-parts`` until joined, also resume.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import fnmatch
import hashlib
import json
import multiprocessing
import os
import shutil
import signal
import stat
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from queue import Empty
from typing import TYPE_CHECKING, Callable

from srpipe.cli.progress import shown
from srpipe.device import gpus_to_share, limit_threads, sleep_idle_threads
from srpipe.errors import SrpipeError
from srpipe.media import (
    FOLDER_IMAGE_SUFFIXES,
    VIDEO_SUFFIXES,
    SinkOptions,
    SourceOptions,
    is_image_file,
)
from srpipe.memory import retain_freed_memory
from srpipe.outputs import (
    is_partial,
    partial_affixes,
    process_exists,
    remove_dead_partials,
    special_kind,
    write_atomically,
)
from srpipe.plugin_guard import Stop

if TYPE_CHECKING:  # the chunks module loads PyAV: imported where chunks are made (a path error loads neither)
    from srpipe.default_plugins.batch.chunks import Chunk, VideoIndex

MANIFEST = ".srpipe-batch.json"
JOURNAL = ".srpipe-batch.journal"  # one line per change since the last fold (Manifest)
MANIFEST_FORMAT = "srpipe-batch/1"
PARTS_DIR = ".srpipe-parts"
WHOLE_AGAIN = "whole again"  # a chunk's status where it gave other frames than planned, which the join cannot place
RAN = "ran.json"  # in a video's parts folder: the model and variant that made its parts, the frames they mended
ENGINES = ("local", "ray")


@dataclass(frozen=True)
class BatchSettings:
    """What every file is upscaled with; part of the manifest's identity of a finished file."""

    model: str = "bicubic"
    scale: int | float | None = None  # a scale the model has, or a fraction such as 1.5
    weights: str | None = None
    device: str = "auto"
    backend: str = "auto"
    batch_size: int = 8
    sink: SinkOptions = field(default_factory=SinkOptions)
    on_decode_error: str = "stop"
    deinterlace: str = "auto"  # SourceOptions.deinterlace
    max_pixels: int | None = None
    width: int | None = None  # a target size instead of a scale (srpipe.sizing)
    height: int | None = None
    exact: bool = False  # no tile reuse and no inexact backend (srpipe.upscaling.upscale)

    def key(self) -> dict:
        """The settings that change the output (not the device or batch size)."""
        data = asdict(self)
        for name in ("device", "backend", "batch_size", "max_pixels"):
            data.pop(name)
        for name in ("width", "height", "exact"):  # absent unless given: manifests of earlier versions stay valid
            if data[name] in (None, False):
                data.pop(name)
        if data["deinterlace"] == "auto":  # likewise
            data.pop("deinterlace")
        for name in ("overwrite", "scale"):
            data["sink"].pop(name)
        return json.loads(json.dumps(data))


@dataclass
class FileResult:
    input: str  # relative to the input folder
    # "done", "skipped", "exists" (an output this batch did not write is in the way) or "failed"; a chunk's
    # WHOLE_AGAIN asks for its file to run whole
    status: str
    output: str | None = None  # relative to the output folder
    frames: int = 0
    seconds: float = 0.0
    error: str | None = None
    frames_skipped: int = 0  # damaged input frames left out (--on-decode-error skip), as upscale's --json
    frames_concealed: int = 0  # damaged input frames the decoder mended and passed on
    frames_deinterlaced: int = 0  # interlaced input frames made progressive
    input_stamp: dict | None = None  # the input's size and mtime before it was read (for the manifest)
    model: str | None = None  # what ran where a stand-in ran for the batch's model (espcn-lossless, espcn-image...)
    variant: str | None = None  # which of its variants ran, as upscale's summary says ("image weights, 8 views")


@dataclass
class BatchReport:
    files: list[FileResult]
    seconds: float

    def count(self, status: str) -> int:
        return sum(1 for f in self.files if f.status == status)

    @property
    def frames(self) -> int:
        return sum(f.frames for f in self.files if f.status == "done")

    def to_dict(self) -> dict:
        return {
            "done": self.count("done"),
            "skipped": self.count("skipped"),
            "exists": self.count("exists"),
            "failed": self.count("failed"),
            "frames": self.frames,
            "seconds": round(self.seconds, 3),
            "files": [{k: v for k, v in asdict(f).items() if k != "input_stamp"} for f in self.files],
        }


def _inside(path: Path, folder: Path) -> bool:
    return os.path.commonpath([os.path.realpath(path), os.path.realpath(folder)]) == os.path.realpath(folder)


def find_inputs(in_dir: Path, out_dir: Path, pattern: str | None) -> tuple[list[Path], list[FileResult]]:
    """Media files under ``in_dir`` (relative paths, sorted), and a failure for each folder under
    it that cannot be read (its files cannot be upscaled, nor even named); leaving out ``out_dir``,
    other batches' output folders (where their manifest is: upscaling those again is never meant)
    and links to folders, with a warning for each folder left out, and one where no file is
    taken although there are files; srpipe's own partial outputs (an unfinished run's, or one
    still writing) are never taken, nor hidden files and folders unless ``pattern`` names them
    by a leading dot."""
    out_real = os.path.realpath(out_dir)
    if os.path.lexists(in_dir / MANIFEST) or os.path.lexists(in_dir / JOURNAL):
        warnings.warn(f"{shown(os.fspath(in_dir))} is another srpipe batch's OUT_DIR: its outputs are upscaled again")
    # Hidden entries are a system's, not media: macOS writes ._IMG_0001.MOV beside each clip on a
    # shared drive, which would fail as a damaged video; .Trashes holds deleted files.
    hidden_taken = pattern is not None and (pattern.startswith(".") or "/." in pattern)
    found, others, hidden, unreadable = [], 0, 0, []
    for root, dirs, files in os.walk(in_dir, onerror=unreadable.append):
        kept = []
        for name in sorted(dirs):
            if name.startswith(".") and not hidden_taken:
                hidden += 1
                continue
            folder = os.path.join(root, name)
            rel = Path(os.path.relpath(folder, in_dir)).as_posix()
            if os.path.realpath(folder) == out_real:
                continue
            if os.path.islink(folder):
                warnings.warn(f"{shown(rel)}/ is left out: it is a link to a folder, which batch does not follow "
                              "(give that folder as IN_DIR)")
            elif os.path.lexists(os.path.join(folder, MANIFEST)) or os.path.lexists(os.path.join(folder, JOURNAL)):
                warnings.warn(f"{shown(rel)}/ is left out: it is another srpipe batch's OUT_DIR")
            else:
                kept.append(name)
        dirs[:] = kept
        for name in sorted(files):
            if is_partial(name) or name in (MANIFEST, JOURNAL):
                continue
            if name.startswith(".") and not hidden_taken:
                hidden += 1
                continue
            rel = Path(os.path.relpath(os.path.join(root, name), in_dir))
            if pattern is not None:
                taken = fnmatch.fnmatch(rel.as_posix(), pattern) or fnmatch.fnmatch(name, pattern)
            else:
                taken = rel.suffix.lower() in VIDEO_SUFFIXES | FOLDER_IMAGE_SUFFIXES
            if taken:
                found.append(rel)
            else:
                others += 1
    if (others or hidden) and not found:
        what = f"matching {pattern!r}" if pattern is not None else "named as videos or pictures"
        left = [f"{others} other file{'s' * (others != 1)}"] if others else []
        if hidden:
            left.append(f"{hidden} hidden file{'s' * (hidden != 1)} or folder{'s' * (hidden != 1)}, left out unless "
                        "--pattern names them by their leading dot")
        warnings.warn(f"no file under {shown(os.fspath(in_dir))} is {what} ({'; '.join(left)}); --pattern picks "
                      "files by name")
    for error in unreadable:
        if error.filename == os.fspath(in_dir):  # os.walk names its top as given
            raise SrpipeError(f"cannot read the folder {in_dir} ({error.strerror}); check its permissions")
    failed = [FileResult(Path(os.path.relpath(error.filename, in_dir)).as_posix() + "/", "failed", error=(
        f"the folder cannot be read ({error.strerror}); nothing in it is upscaled: check its permissions"))
        for error in unreadable if error.errno != errno.ENOENT  # gone since it was listed: nothing there
        and not _fsck_folder(error.filename)]
    return found, failed


def _fsck_folder(path: str) -> bool:
    """Whether ``path`` is the lost+found at a file system's top, which only root may read: a batch
    over a drive's top would fail there on every run, for what fsck keeps, not the user's files."""
    return os.path.basename(path) == "lost+found" and os.path.ismount(os.path.dirname(path))


def output_name(in_dir: Path, rel: Path) -> Path:
    """Same relative path; the extension follows ``srpipe upscale``'s rules."""
    from srpipe.video import video_output_suffix

    if is_image_file(str(in_dir / rel)):
        return rel.with_suffix(".png")
    return rel.with_suffix(video_output_suffix(str(in_dir / rel)))


class Manifest:
    """What a batch has done in its output folder: the finished files (with their input's size
    and mtime, the settings and the output's size), and every output it has written or may have
    written (``outputs``: the only existing files it may replace without ``-y``).

    ``.srpipe-batch.json`` holds them as of the last fold; while a batch runs, each change is
    one line appended to ``.srpipe-batch.journal``, so that a file costs the same however large
    the tree. Opening a manifest and :meth:`close` fold the journal into the JSON. A kill at any
    moment loses at most the line being written, which the next run ignores (it redoes that file).
    """

    def __init__(self, out_dir: Path):
        self.out_dir = out_dir
        self.path = out_dir / MANIFEST
        self.journal_path = out_dir / JOURNAL
        self.entries: dict[str, dict] = {}
        self._writers: dict[str, str] = {}  # each finished output's input, as in entries: found at once
        self.outputs: set[str] = set()
        self._unwritten: set[str] = set()  # claimed by this run and not written yet (see claim)
        self._journal: int | None = None  # the journal's descriptor, open once something is appended
        for path in (self.path, self.journal_path):
            _check_own_file(path)
        base = _read_json(self.path)
        if isinstance(base, dict):
            if isinstance(base.get("files"), dict):
                for rel, entry in base["files"].items():
                    self._add(rel, entry)
            if isinstance(base.get("outputs"), list):
                self.outputs.update(o for o in base["outputs"] if isinstance(o, str))
        journal = _read_regular(self.journal_path)
        if journal is not None:
            for line in journal.split(b"\n")[:-1]:  # after the last newline: nothing, or a torn line
                try:
                    change = json.loads(line)
                except ValueError:
                    continue
                if isinstance(change, dict):
                    self._replay(change)
        if os.path.lexists(self.journal_path):
            self._fold()

    def _add(self, rel, entry) -> None:
        if isinstance(rel, str) and isinstance(entry, dict):
            self.entries[rel] = entry
            if isinstance(entry.get("output"), str):
                self.outputs.add(entry["output"])
                self._writers[entry["output"]] = rel

    def _replay(self, change: dict) -> None:
        if "done" in change:
            self._add(change["done"], change.get("entry"))
        elif isinstance(change.get("output"), str):
            self.outputs.add(change["output"])
        elif isinstance(change.get("writing"), str):
            self.outputs.add(change["writing"])
        elif isinstance(change.get("unclaim"), str):
            self.outputs.discard(change["unclaim"])

    @staticmethod
    def _stamp(path: Path) -> dict:
        st = path.stat()
        return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}

    def is_done(self, rel: Path, source: Path, output: Path, settings_key: dict) -> bool:
        entry = self.entries.get(rel.as_posix())
        return (
            entry is not None
            and entry.get("input") == self._stamp(source)
            and entry.get("settings") == settings_key
            and output.is_file()
            and output.stat().st_size == entry.get("output_size")
        )

    def writer(self, out_rel: str) -> str | None:
        """The input (relative, as recorded) whose finished output is ``out_rel``, if any."""
        rel = self._writers.get(out_rel)
        return rel if rel is not None and self.entries[rel].get("output") == out_rel else None

    def wrote(self, out_rel: str) -> bool:
        """Whether this batch wrote ``out_rel``, or began to: it may replace it."""
        return out_rel in self.outputs

    def claim(self, out_rels: list[str]) -> None:
        """Record the outputs about to be written, before writing them: a kill between an
        output's rename into place and its :meth:`record` leaves it known as the batch's own.
        Those not written after all are withdrawn (:meth:`release`, :meth:`close`)."""
        new = sorted(set(out_rels) - self.outputs)
        self.outputs.update(new)
        self._unwritten.update(new)
        self._append([{"output": out_rel} for out_rel in new])

    def release(self, out_rels) -> None:
        """Withdraw this run's claims of ``out_rels``, not written after all (their job failed or
        never ran): a file there now, such as one a user put there meanwhile, is not the batch's.
        Outputs that were the batch's before this run stay its own."""
        withdrawn = sorted(self._unwritten.intersection(out_rels))
        self.outputs.difference_update(withdrawn)
        self._unwritten.difference_update(withdrawn)
        self._append([{"unclaim": out_rel} for out_rel in withdrawn])

    def record(self, rel: Path, stamp: dict, output: Path, out_rel: str, settings_key: dict, frames: int) -> None:
        """``stamp``: the input's, taken before it was read (a change since makes the next run redo it)."""
        entry = {
            "input": stamp,
            "settings": settings_key,
            "output": out_rel,
            "output_size": output.stat().st_size,
            "frames": frames,
        }
        self._add(rel.as_posix(), entry)
        self._unwritten.discard(out_rel)
        self._append([{"done": rel.as_posix(), "entry": entry}])

    def close(self) -> None:
        """Withdraw the claims of outputs not written, and fold what this run appended into the JSON.
        The output of a job that began but whose result never came (Ctrl-C, a kill) stays claimed:
        its worker may have put it in place, and said in the journal that it began (:func:`note_writing`)."""
        self.release(self._unwritten - self._begun_by_workers())
        if self._journal is not None:
            os.close(self._journal)
            self._journal = None
            self._fold()

    def _begun_by_workers(self) -> set[str]:
        journal = _read_regular(self.journal_path) or b""
        begun = set()
        for line in journal.split(b"\n")[:-1]:
            try:
                change = json.loads(line)
            except ValueError:
                continue
            if isinstance(change, dict) and isinstance(change.get("writing"), str):
                begun.add(change["writing"])
        return begun

    def _append(self, changes: list[dict]) -> None:
        if not changes:
            return
        data = b"".join(json.dumps(change).encode() + b"\n" for change in changes)
        with self._writing(self.journal_path):
            if self._journal is None:  # no links followed, no wait on a FIFO: the folder's own file or an error
                self._journal = os.open(self.journal_path,
                                        os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o666)
            while data:
                data = data[os.write(self._journal, data):]

    @staticmethod
    @contextlib.contextmanager
    def _writing(path: Path):
        """The batch's own record cannot be written (a full disk): one line saying so."""
        try:
            yield
        except OSError as exc:
            raise SrpipeError(f"cannot write {path}, the batch's record of what it did ({exc.strerror}); check free "
                              "space and run the batch again") from exc

    def _fold(self) -> None:
        """The JSON with everything, then no journal (killed in between, the journal replays
        what the JSON already holds). Outputs that are gone are forgotten: a file that
        appears there later is not the batch's."""
        self.outputs = {o for o in self.outputs if os.path.lexists(self.out_dir / o)}
        data = {"format": MANIFEST_FORMAT, "files": self.entries, "outputs": sorted(self.outputs)}
        _check_own_file(self.path)  # not written into a FIFO made there since the start
        with self._writing(self.path):
            if self.path.is_symlink():  # replace the link itself, never a file it points to
                self.path.unlink()
            write_atomically(self.path, json.dumps(data, indent=1).encode())
        self.journal_path.unlink(missing_ok=True)


def _check_own_file(path: Path) -> None:
    """Refuse a manifest or journal name that holds a folder, FIFO, socket or device: it would
    be read or written through (a FIFO waits forever) or could not be replaced. A link there is
    never followed (:func:`_read_regular`) and is replaced by the fold."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
        kind = "folder" if stat.S_ISDIR(mode) else special_kind(path) or "special file"
        raise SrpipeError(f"{path} is a {kind}, where srpipe batch keeps its manifest; remove it and run again")


def _read_regular(path: Path) -> bytes | None:
    """The bytes of ``path`` if it is a regular file (never blocking on a FIFO, never through a link), else ``None``."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as file:
        return file.read() if stat.S_ISREG(os.fstat(fd).st_mode) else None


def _read_json(path: Path):
    data = _read_regular(path)
    try:
        return json.loads(data) if data is not None else None
    except (ValueError, RecursionError):  # damaged: nested deeper than json reads
        return None


# Workers -----------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """One unit of work: a whole file into its output, or one chunk of a video into a part."""

    rel: Path
    source: Path
    output: Path  # the final output, or the part file for a chunk
    out_rel: str
    settings: BatchSettings
    threads: int = 0  # 0: the libraries' own choice
    chunk: Chunk | None = None
    overwrite: bool = False  # the output existed when planned, and may be replaced (the batch's own, or -y)


_progress_queue = None
# The pid of the worker that took each job, by the job's place in the batch (shared memory), and
# each job's place: written at once, with no lock and no queue's thread to hand it over, so that
# a worker killed right after it took a job is still seen to have had it
_takers = None
_job_places: dict[tuple, int] = {}


def init_worker(threads: int, progress_queue=None, gpus: list[str] | None = None, gpu_owners=None,
                takers=None, local: bool = False) -> None:
    """Give a worker process its share of the cores, and where ``gpus`` are shared out
    (:func:`srpipe.device.gpus_to_share`) a GPU of its own (:func:`take_gpu`); only the parent
    handles Ctrl-C. ``takers``: a shared array of a pid per job and the jobs' keys, in which the
    worker notes each job it takes. ``local``: a worker of this machine's pool, which ends with the
    batch's process (:func:`end_with_parent`)."""
    global _progress_queue, _takers, _job_places
    from srpipe.cli import show_warnings_on_one_line

    if local:
        end_with_parent()
    show_warnings_on_one_line()
    # The batch's standard output is its parent's summary or JSON alone: a plugin's prints go with the logs
    os.dup2(2, 1)
    if gpus:
        take_gpu(gpus, gpu_owners)
    sleep_idle_threads()
    retain_freed_memory()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _exit_quietly)
    if threads:
        limit_threads(threads)
    _progress_queue = progress_queue
    if takers is not None:
        _takers, keys = takers
        _job_places = {key: place for place, key in enumerate(keys)}
    if progress_queue is not None:
        # A worker's exit must not wait to hand its last progress to the queue: another worker
        # killed in the middle of a put holds the queue's lock for ever (pool.terminate would hang)
        progress_queue.cancel_join_thread()


def end_with_parent() -> None:
    """End this worker at once when the batch's process is gone (``kill -9`` of the batch; Ctrl-C
    and SIGTERM stop the workers themselves): an orphan would go on putting outputs in place,
    and the next run would take them for a user's files. multiprocessing's pipe from the parent
    reaches its end as the parent ends, on every system; not Linux's PR_SET_PDEATHSIG, which acts
    when the *thread* that started the worker ends, and the pool starts its replacements from a
    thread of its own. What the worker was writing is left as after any kill: a partial output,
    which the next run removes, and an output it had put in place stays the batch's (:func:`note_writing`)."""
    parent = multiprocessing.parent_process()

    def watch():
        parent.join()
        os._exit(1)  # at once, from this thread: the main thread does not go on to put its output in place

    threading.Thread(target=watch, name="srpipe-parent-watch", daemon=True).start()


def take_gpu(gpus: list[str], owners) -> str:
    """The GPU of the first free slot of ``owners`` (a shared array of worker pids, a slot per
    worker, the slots taking ``gpus`` in turn; a slot whose worker died is free again, so the
    pool's replacement takes over its GPU), made this process's only visible GPU before torch
    starts CUDA: its ``cuda`` is then that GPU."""
    with owners.get_lock():
        free = [slot for slot, pid in enumerate(owners) if not pid or not process_exists(pid)]
        slot = free[0] if free else os.getpid() % len(owners)
        owners[slot] = os.getpid()
    gpu = gpus[slot % len(gpus)]
    os.environ["CUDA_VISIBLE_DEVICES"] = gpu
    return gpu


def _exit_quietly(signum, frame):
    """The parent stops its workers with SIGTERM: unwind (each output aborts) and exit
    without the traceback a pool worker prints for other exceptions (a SystemExit, srpipe's
    own: it may land in a plugin's ``load``, whose SystemExit would fail the file instead).
    The parent may send it again (:func:`_terminate`): once unwinding, a worker lets it be."""
    signal.signal(signal.SIGTERM, _already_stopping)
    raise Stop(128 + signum)


def _already_stopping(signum, frame):
    pass


def _report_frames(total):
    queue = _progress_queue
    return (lambda: queue.put(1)) if queue is not None else None


def run_job(job: Job) -> FileResult:
    """Upscale one file or chunk; a user-caused failure is returned, not raised."""
    from srpipe.default_plugins.batch.chunks import PART_FORMAT
    from srpipe.upscaling import upscale
    from srpipe.video import default_codec

    if _takers is not None:
        _takers[_job_places[_job_key(job)]] = os.getpid()  # whether the job's worker dies, the batch sees
    if _progress_queue is not None:
        _progress_queue.put(("start", job))
    settings, threads = job.settings, job.threads
    sink = replace(settings.sink, overwrite=job.overwrite or job.chunk is not None)  # parts are the batch's own
    if threads:
        sink = replace(sink, codec_options={"threads": str(threads), **sink.codec_options})
    pts_range = None
    if job.chunk is not None:
        final_suffix = Path(job.out_rel).suffix.lstrip(".")
        sink = replace(sink, container_format=PART_FORMAT, codec=sink.codec or default_codec(final_suffix))
        pts_range = (job.chunk.start, job.chunk.end)
    if job.chunk is None:
        note_writing(job)
    started = time.perf_counter()
    try:
        stamp = Manifest._stamp(job.source)
        result = upscale(
            str(job.source), str(job.output), model=settings.model, scale=settings.scale, weights=settings.weights,
            width=settings.width, height=settings.height,
            device=settings.device, backend=settings.backend, batch_size=settings.batch_size, sink_options=sink,
            source_options=SourceOptions(decode_threads=threads, on_decode_error=settings.on_decode_error,
                                         deinterlace=settings.deinterlace, pts_range=pts_range,
                                         max_pixels=settings.max_pixels),
            progress=_report_frames, keep_model=True, exact=settings.exact,
        )
        frames = result.stats.frames_out
        if job.chunk is not None and frames != job.chunk.frames:
            # Damaged frames skipped, or packets that gave no picture: the join puts each frame
            # at its place by count, so the file runs whole, which keeps and counts what it can
            job.output.unlink()
            return FileResult(str(job.rel), WHOLE_AGAIN, job.out_rel)
        check_unchanged(job.source, stamp, job.output)
        if job.chunk is not None:
            note_part(job.output, job.chunk)
    except Exception as exc:  # a broken file must not stop the batch
        return _failed(job, exc)
    return FileResult(str(job.rel), "done", job.out_rel, frames, time.perf_counter() - started,
                      frames_skipped=result.stats.frames_skipped, frames_concealed=result.stats.frames_concealed,
                      frames_deinterlaced=result.stats.frames_deinterlaced,
                      input_stamp=stamp, model=result.model if result.model != settings.model else None,
                      variant=result.variant)


def _failed(job: Job, exc: Exception) -> FileResult:
    """The result of a file (or chunk) that failed: what went wrong, in a line."""
    from srpipe.plugins import failure_text

    if isinstance(exc, SrpipeError):
        error = str(exc)
    elif isinstance(exc, OSError):  # the input vanished under the batch, say
        error = f"{exc.strerror or exc}: {exc.filename or job.rel}"
    else:
        error = failure_text(exc)
    return FileResult(str(job.rel), "failed", job.out_rel, error=error)


def note_writing(job: Job) -> None:
    """A worker's line in its batch's journal as it starts on an output, one write of one line
    (appends of whole lines do not interleave): a run that ends before the result reaches it
    (Ctrl-C, a kill) still knows the output as its own, whether the worker was stopped before or
    after putting it in place (:meth:`Manifest.close`); a result that comes back failed withdraws it."""
    out_dir = job.output
    for _ in Path(job.out_rel).parts:
        out_dir = out_dir.parent
    try:
        fd = os.open(out_dir / JOURNAL, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o666)
    except OSError:  # a folder or link in its place, refused when the batch started: the claim is withdrawn
        return
    try:
        os.write(fd, json.dumps({"writing": job.out_rel}).encode() + b"\n")
    finally:
        os.close(fd)


def note_part(part: Path, chunk: Chunk) -> None:
    """Note beside a finished ``part`` which chunk of which file it holds, and its digest: a later
    run takes a part it finds only where the two agree (:meth:`_ChunkedFile.part_is_done`), never
    one moved to another part's name (the join would put its frames at the other's place) or
    changed since."""
    write_atomically(_part_note(part), json.dumps(_part_identity(part, chunk)).encode())


def _part_note(part: Path) -> Path:
    return part.with_suffix(".json")


def _part_identity(part: Path, chunk: Chunk) -> dict:
    """The file (its parts folder, named for its input and settings) and chunk that ``part`` holds, and its digest."""
    digest = hashlib.sha256()
    with open(part, "rb") as file:
        while block := file.read(1 << 20):
            digest.update(block)
    return {"file": part.parent.name, "chunk": asdict(chunk), "sha256": digest.hexdigest()}


def check_unchanged(source: Path, stamp: dict, output: Path) -> None:
    """Fail (removing the output) when ``source`` was rewritten while it was read: the output
    would hold a mix of old and new, and the manifest would call it done."""
    try:
        now = Manifest._stamp(source)
    except OSError:
        now = None
    if now != stamp:
        output.unlink(missing_ok=True)
        raise SrpipeError(f"{source.name} changed while it was read; its output was removed; "
                          "run the batch again when it is complete")


# The batch -------------------------------------------------------------------


def check_folders(in_dir: Path, out_dir: Path) -> None:
    if not in_dir.is_dir():
        raise SrpipeError(f"input folder {in_dir} does not exist or is not a folder")
    if os.path.realpath(in_dir) == os.path.realpath(out_dir):
        raise SrpipeError("the output folder is the input folder; choose another OUT_DIR")
    if _inside(in_dir, out_dir):  # outputs would land among the inputs, and be inputs of the next run
        raise SrpipeError(f"the input folder {in_dir} is inside the output folder {out_dir}; "
                          "choose an OUT_DIR outside IN_DIR")
    if out_dir.exists() and not out_dir.is_dir():
        raise SrpipeError(f"output {out_dir} is a file; give a folder")


def check_settings(settings: BatchSettings, engine: str = "local") -> None:
    """Fail once, before any file, on a setting that would fail every file (the device and
    backend only for the local engine: Ray workers may have what this machine lacks)."""
    from srpipe.device import resolve_device
    from srpipe.plugins import collect_backends, collect_models, get_plugin_manager
    from srpipe.sizing import SizePlan, is_fractional

    pm = get_plugin_manager()
    resized = is_fractional(settings.scale) or settings.width is not None or settings.height is not None
    spec, _ = collect_models(pm).upscaler(settings.model, None if resized else settings.scale, settings.weights)
    if resized:
        sizes = SizePlan(settings.scale, settings.width, settings.height)
        if sizes.scale is not None:
            sizes.model_scale(spec.scales, spec.name)
    if spec.accepts_backend and engine == "local":
        collect_backends(pm).select(settings.backend, resolve_device(settings.device), exact=settings.exact)
    if settings.batch_size < 1:
        raise SrpipeError("--batch-size must be at least 1")


def remove_partials(out_dir: Path) -> None:
    """Outputs half-written by a run that was killed (their files are redone): only srpipe's
    own partial files whose process is gone, never a user's ``*.partial.*`` files."""
    for root, _, _ in os.walk(out_dir):
        remove_dead_partials(Path(root))


def make_writable_folder(out_dir: Path) -> None:
    """Make ``out_dir`` (and its parents), and refuse it, before any work, where a file cannot be
    made in it: permissions, a read-only or full file system, an immutable folder (which stops
    root too, where permission bits do not)."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out_dir):  # without a name on Linux: nothing is left, whatever happens
            pass
    except OSError as exc:
        raise SrpipeError(f"cannot write into the output folder {out_dir}: {exc.strerror or exc}; "
                          "choose another OUT_DIR") from None


def lock_out_dir(out_dir: Path) -> int:
    """Hold an exclusive lock on ``out_dir`` (the folder itself, no lock file) for this batch;
    returns the descriptor to close. A second batch into the same folder would redo, and
    clean up, the first one's files: it is refused."""
    fd = os.open(out_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise SrpipeError(f"another srpipe batch is writing into {out_dir}; "
                          "wait for it to end or choose another OUT_DIR") from None
    return fd


def plan(in_dir: Path, out_dir: Path, pattern: str | None, settings: BatchSettings, manifest: Manifest,
         overwrite: bool = False):
    """(tasks to run, results already known: skipped files, outputs in the way and name clashes).
    A task is (rel, source, output, out_rel, whether the output exists and may be replaced)."""
    key = settings.key()
    found, known = find_inputs(in_dir, out_dir, pattern)
    tasks, regular = [], {}
    for rel in found:
        try:
            st = os.stat(in_dir / rel)
        except OSError:
            st = None
        if st is None or not stat.S_ISREG(st.st_mode):  # reading a FIFO, socket or device would hang or never end
            kind = special_kind(in_dir / rel) or "link to nothing"
            known.append(FileResult(str(rel), "skipped", error=f"a {kind}, not a regular file"))
        else:
            regular[rel] = st
    inputs = {}  # by identity, so that links and hard links count: each file's first path
    for rel, st in regular.items():
        inputs.setdefault((st.st_dev, st.st_ino), rel)
    out_rels = {rel: output_name(in_dir, rel) for rel in regular}
    claimants: dict[Path, list[Path]] = {}
    for rel, out_rel in out_rels.items():
        claimants.setdefault(out_rel, []).append(rel)
    for rel, out_rel in out_rels.items():
        output = out_dir / out_rel
        others = [other.as_posix() for other in claimants[out_rel] if other != rel]
        if others:  # none of them: the one written would stand under a name that tells the others' too
            known.append(FileResult(str(rel), "failed", str(out_rel), error=(
                f"its output {out_rel} is also the output of {', '.join(others)}; rename one (none of them is "
                "upscaled)")))
            continue
        writer = manifest.writer(str(out_rel))  # by an earlier run, of an input this one may leave out (--pattern)
        if writer is not None and writer != rel.as_posix() and (in_dir / writer).is_file():
            known.append(FileResult(str(rel), "failed", str(out_rel),
                                    error=f"its output {out_rel} is also the output of {writer}; rename one"))
            continue
        if manifest.is_done(rel, in_dir / rel, output, key):
            known.append(FileResult(str(rel), "skipped", str(out_rel)))
            continue
        try:
            existing = os.stat(output)
        except OSError:  # nothing there (a link to nothing fails when written)
            tasks.append((rel, in_dir / rel, output, str(out_rel), False))
            continue
        if (existing.st_dev, existing.st_ino) in inputs:
            known.append(FileResult(str(rel), "failed", str(out_rel), error=(
                f"its output {out_rel} is the input {inputs[existing.st_dev, existing.st_ino]} itself; "
                "it was left alone; choose an OUT_DIR apart from IN_DIR")))
        elif not stat.S_ISREG(existing.st_mode):
            kind = special_kind(output) or "folder"
            known.append(FileResult(str(rel), "failed", str(out_rel),
                                    error=f"its output {out_rel} is a {kind}; it was left alone"))
        elif manifest.wrote(str(out_rel)) or overwrite:
            tasks.append((rel, in_dir / rel, output, str(out_rel), True))
        else:
            known.append(FileResult(str(rel), "exists", str(out_rel), error=(
                f"{out_rel} exists and this batch did not write it; left alone (-y replaces it)")))
    return tasks, known


@dataclass
class _ChunkedFile:
    """A long video upscaled as chunks: what is left to do before joining its parts."""

    job: Job  # the whole-file job the chunks stand for
    stamp: dict  # the input's size and mtime when it was indexed
    index: VideoIndex
    chunks: list[Chunk]
    parts_dir: Path
    pending: set[int]
    frames: int = 0
    seconds: float = 0.0
    failed: bool = False
    model: str | None = None  # a stand-in that ran its chunks (FileResult.model)
    variant: str | None = None  # which of its variants ran them (FileResult.variant)
    concealed: dict[int, int] = field(default_factory=dict)  # by chunk: its damaged frames the decoder mended
    deinterlaced: dict[int, int] = field(default_factory=dict)  # by chunk: its interlaced frames made progressive

    def part(self, chunk: Chunk) -> Path:
        from srpipe.default_plugins.batch.chunks import PART_FORMAT

        return self.parts_dir / f"part-{chunk.index:04d}.{PART_FORMAT}"

    def part_is_done(self, chunk: Chunk) -> bool:
        """Whether an earlier run finished ``chunk``'s part: it is there, and as its note says (:func:`note_part`)."""
        part, note = self.part(chunk), _read_json(_part_note(self.part(chunk)))
        return note is not None and part.is_file() and note == _part_identity(part, chunk)

    def chunk_jobs(self) -> list[Job]:
        return [replace(self.job, output=self.part(c), chunk=c) for c in self.chunks if c.index in self.pending]

    def note_ran(self, chunk: Chunk, result: FileResult) -> None:
        """What ran a finished chunk (its model and variant), its frames the decoder mended and those
        made progressive, kept beside the parts too, so that a later run that only joins them (every
        part done before it) says it as well."""
        self.model = result.model or self.model
        self.variant = result.variant or self.variant
        self.concealed[chunk.index] = result.frames_concealed
        self.deinterlaced[chunk.index] = result.frames_deinterlaced
        try:  # a new file moved into place: whatever had the name is never opened
            with tempfile.NamedTemporaryFile("w", dir=self.parts_dir, prefix=".ran-", delete=False) as kept:
                json.dump({"model": self.model, "variant": self.variant, "concealed": self.concealed,
                           "deinterlaced": self.deinterlaced}, kept)
            os.replace(kept.name, self.parts_dir / RAN)
        except OSError:  # only the names are lost: the parts are what counts
            pass

    def read_ran(self) -> None:
        """What ran the parts an earlier run made (:meth:`note_ran`); nothing where it cannot be
        read, or is not two names: it only names them, and decides nothing."""
        ran = _read_json(self.parts_dir / RAN)
        if isinstance(ran, dict):
            self.model, self.variant = (value if isinstance(value, str) else None
                                        for value in (ran.get("model"), ran.get("variant")))
            chunks = {str(chunk.index): chunk for chunk in self.chunks}
            for kept, counts in ((self.concealed, ran.get("concealed")), (self.deinterlaced, ran.get("deinterlaced"))):
                for key, count in (counts.items() if isinstance(counts, dict) else ()):
                    if key in chunks and type(count) is int and 0 <= count <= chunks[key].frames:
                        kept[chunks[key].index] = count


def _split(job: Job, out_dir: Path, chunk_seconds: float, makers: str) -> _ChunkedFile | None:
    """The chunks of a video of at least two chunks' length; ``None`` for anything else.
    Parts finished by an earlier run with the same input, settings and ``makers``
    (:func:`_makers`) are kept."""
    from srpipe.default_plugins.batch.chunks import index_video, plan_chunks

    if is_image_file(str(job.source)):
        return None
    index = index_video(job.source, min_seconds=2 * chunk_seconds)
    chunks = plan_chunks(index, chunk_seconds) if index else []
    if len(chunks) < 2:
        return None
    stamp = Manifest._stamp(job.source)
    identity = [job.rel.as_posix(), stamp, job.settings.key(), chunk_seconds, makers]
    parts_dir = out_dir / PARTS_DIR / hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:16]
    if parts_dir.is_symlink():  # not srpipe's: its parts stay in OUT_DIR
        parts_dir.unlink()
    parts_dir.mkdir(parents=True, exist_ok=True)
    file = _ChunkedFile(job, stamp, index, chunks, parts_dir, set())
    file.pending = {c.index for c in chunks if not file.part_is_done(c)}
    file.read_ran()
    return file


def _makers(settings: BatchSettings) -> str:
    """A digest of the files that make a part's pictures: srpipe's own (its code and shipped
    weights), those of the plugin whose model runs, and ``--weights``. A part made before any of
    them changed (srpipe upgraded or a checkpoint retrained between two runs of a batch) is not
    joined with parts made after: the weights ``-m espcn`` picks, or their pictures, may differ."""
    import srpipe
    from srpipe.plugins import collect_models, get_plugin_manager

    spec = collect_models(get_plugin_manager()).get(settings.model, kind="upscaler")
    roots = [Path(srpipe.__file__).parent]
    module = sys.modules.get(spec.plugin)
    if module is not None and getattr(module, "__file__", None):
        plugin = Path(module.__file__)
        roots.append(plugin.parent if hasattr(module, "__path__") else plugin)  # a package, or one module
    digest = hashlib.sha256()
    files = [*(path for root in dict.fromkeys(roots) for path in _files(root)),
             *([Path(settings.weights)] if settings.weights else [])]
    for path in files:
        digest.update(str(path).encode() + b"\0")
        try:
            digest.update(path.read_bytes())
        except OSError:  # unreadable: only its name counts (the run itself says what is wrong)
            pass
    return digest.hexdigest()[:16]


def _files(root: Path) -> list[Path]:
    """``root`` if a file, else the files under it, compiled Python left out."""
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")


def _check_parts_folder(out_dir: Path) -> None:
    """Refuse a ``.srpipe-parts`` in ``out_dir`` that is not a folder of its own: through a link,
    the parts would be written, and stale ones removed, in the folder it leads to."""
    root = out_dir / PARTS_DIR
    try:
        mode = os.lstat(root).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(mode):
        kind = "link" if stat.S_ISLNK(mode) else special_kind(root) or "file"
        raise SrpipeError(f"{root} is a {kind}, where srpipe batch keeps the parts of files it upscales in chunks; "
                          "move it away and run again")


def _remove_stale_parts(out_dir: Path, keep: set[Path]) -> None:
    """Parts of inputs or settings that changed since they were written (:func:`_check_parts_folder`
    checked the folder; a link in it is removed, never followed)."""
    root = out_dir / PARTS_DIR
    if root.is_dir():
        for folder in root.iterdir():
            if folder in keep:
                continue
            if folder.is_symlink():
                folder.unlink()
            else:
                shutil.rmtree(folder, ignore_errors=True)
        if not any(root.iterdir()):
            root.rmdir()


def _join(file: _ChunkedFile) -> FileResult:
    from srpipe.default_plugins.batch.chunks import join_parts

    job = file.job
    started = time.perf_counter()
    try:
        frames = join_parts(job.source, file.index, [file.part(c) for c in file.chunks], job.output,
                            overwrite=job.overwrite)
        check_unchanged(job.source, file.stamp, job.output)
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            return _failed(job, exc)
        file.failed = True  # its parts are kept: the next run only joins them
        return FileResult(str(job.rel), "failed", job.out_rel,
                          error=f"cannot write {job.out_rel}: {exc.strerror}; its parts are kept, and the next run "
                                "only joins them: free as much space as they take and run again")
    except Exception as exc:  # a file whose parts cannot be joined must not stop the batch
        return _failed(job, exc)
    shutil.rmtree(file.parts_dir, ignore_errors=True)
    return FileResult(str(job.rel), "done", job.out_rel, frames, file.seconds + time.perf_counter() - started,
                      frames_concealed=sum(file.concealed.values()),
                      frames_deinterlaced=sum(file.deinterlaced.values()), input_stamp=file.stamp, model=file.model,
                      variant=file.variant)


def run_batch(
    in_dir: str | Path,
    out_dir: str | Path,
    settings: BatchSettings = BatchSettings(),
    *,
    jobs: int | None = None,
    engine: str = "local",
    address: str | None = None,
    chunk_seconds: float = 60.0,
    pattern: str | None = None,
    on_file: Callable[[FileResult], None] | None = None,
    on_frame: Callable[..., None] | None = None,
    on_plan: Callable[[list[Job]], None] | None = None,
    on_start: Callable[[Job], None] | None = None,
    overwrite: bool = False,
) -> BatchReport:
    """Upscale the tree ``in_dir`` into ``out_dir``; see the module docstring.

    ``jobs``: parallel workers (local default 1; Ray default: one per GPU, else per CPU).
    ``chunk_seconds``: split videos at least twice this long when there is more than
    one worker (0: never). ``on_frame(n=1)`` is called as frames are written, ``on_plan(jobs)``
    with the files and chunks about to run (before the first starts, and again before files a chunk
    of which skipped damaged frames run whole), ``on_start(job)`` as each
    starts (local engine; Ray reports files as they end). ``overwrite``: replace existing files
    in ``out_dir`` that the batch did not write (never an input).
    """
    in_dir, out_dir = Path(in_dir), Path(out_dir)
    check_folders(in_dir, out_dir)
    if engine not in ENGINES:
        raise SrpipeError(f"unknown engine {engine!r}; use {' or '.join(ENGINES)}")
    check_settings(settings, engine)
    if jobs is not None and jobs < 1:
        raise SrpipeError("--jobs must be at least 1")
    if address is not None and engine != "ray":
        raise SrpipeError("--address is for --engine ray")
    if chunk_seconds < 0:
        raise SrpipeError("--chunk-seconds must be 0 (no chunks) or more")
    if engine == "ray":
        from srpipe.default_plugins.batch.ray_engine import check_address

        check_address(address)
    make_writable_folder(out_dir)
    lock = lock_out_dir(out_dir)
    try:
        _check_parts_folder(out_dir)
        remove_partials(out_dir)
        manifest = Manifest(out_dir)
        try:
            return _run_batch(in_dir, out_dir, settings, manifest, jobs, engine, address, chunk_seconds, pattern,
                              on_file, on_frame, on_plan, on_start, overwrite)
        finally:
            manifest.close()
    finally:
        os.close(lock)


def _run_batch(in_dir, out_dir, settings, manifest, jobs, engine, address, chunk_seconds, pattern, on_file, on_frame,
               on_plan=None, on_start=None, overwrite=False):
    started = time.perf_counter()
    tasks, results = plan(in_dir, out_dir, pattern, settings, manifest, overwrite)

    def report(result: FileResult) -> None:
        if result.status == "done":
            manifest.record(Path(result.input), result.input_stamp, out_dir / result.output,
                            result.output, settings.key(), result.frames)
        else:
            manifest.release([result.output])
        results.append(result)
        if on_file:
            on_file(result)

    for result in results:
        if on_file:
            on_file(result)
    whole = []
    for rel, source, output, out_rel, replaceable in tasks:
        try:
            output.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):  # a file, or a link to nothing, where its folder goes
            report(FileResult(str(rel), "failed", out_rel, error=f"a file or a broken link in {out_dir} stands "
                              "where its folder goes; move it away and rerun"))
            continue
        if not _inside(output, out_dir):  # its folder, or the output itself, a link that leads out
            report(FileResult(str(rel), "failed", out_rel,
                              error=f"{out_rel} would be written outside {out_dir} (a link)"))
        else:
            whole.append(Job(rel, source, output, out_rel, settings, overwrite=replaceable))
    manifest.claim([job.out_rel for job in whole])

    # Local workers: --jobs, else one on each GPU that --device cuda (or auto, meaning CUDA) shares out
    gpus = gpus_to_share(settings.device, _uses_gpu(settings)) if engine != "ray" else []
    local_jobs = jobs or max(1, len(gpus))
    chunking = chunk_seconds > 0 and (engine == "ray" or local_jobs > 1)
    makers = _makers(settings) if chunking and whole else ""
    chunked = {str(job.rel): file for job in whole
               if chunking and (file := _split(job, out_dir, chunk_seconds, makers))}
    _remove_stale_parts(out_dir, {file.parts_dir for file in chunked.values()})
    work = [job for job in whole if str(job.rel) not in chunked]
    for file in chunked.values():
        if file.pending:
            work[:0] = file.chunk_jobs()  # long videos first: they take longest
        else:
            report(_join(file))  # every part was done by an earlier run

    if on_plan:
        on_plan(work)

    def run(work: list[Job]):
        if engine == "ray":
            from srpipe.default_plugins.batch.ray_engine import run_on_ray

            return run_on_ray(work, jobs, address, init_worker, run_and_pair, on_frame)
        workers = min(local_jobs, max(1, len(work)))
        threads = max(1, (os.cpu_count() or 1) // workers) if workers > 1 else 0
        return _run_locally([replace(job, threads=threads) for job in work], workers, threads, on_frame, on_start,
                            gpus)

    again: list[_ChunkedFile] = []  # files a chunk of which skipped damaged frames: run whole after
    with contextlib.closing(run(work)) as done:  # Ctrl-C here stops the workers before the manifest is closed
        for job, result in done:
            file = chunked.get(str(job.rel))
            if file is None:
                report(result)
            elif file.failed:
                continue  # its failure was reported with its first failed chunk
            elif result.status == WHOLE_AGAIN:
                file.failed = True  # its other chunks are passed over
                again.append(file)
                warnings.warn(f"the chunk {job.chunk.index} of {job.source} did not give the frames it holds (damaged "
                              "frames skipped, or packets that gave no picture), and a file upscaled in chunks keeps "
                              "each frame in its place: it is upscaled again whole")
            elif result.status == "failed":
                file.failed = True
                report(result)
            else:
                file.pending.discard(job.chunk.index)
                file.frames += result.frames
                file.seconds += result.seconds
                file.note_ran(job.chunk, result)
                if not file.pending:
                    report(_join(file))
    if again:
        if on_plan:
            on_plan([file.job for file in again])
        with contextlib.closing(run([file.job for file in again])) as done:
            for job, result in done:
                report(result)
    redone = {file.parts_dir for file in again}
    _remove_stale_parts(out_dir, {file.parts_dir for file in chunked.values() if file.failed} - redone)
    return BatchReport(results, time.perf_counter() - started)


def run_and_pair(job: Job) -> tuple[Job, FileResult]:
    """The job with its result, so that results arriving in any order can be matched."""
    return job, run_job(job)


def _uses_gpu(settings: BatchSettings) -> bool:
    from srpipe.plugins import collect_models, get_plugin_manager

    return collect_models(get_plugin_manager()).get(settings.model, kind="upscaler").uses_gpu


def _run_locally(work: list[Job], jobs: int, threads: int, on_frame, on_start, gpus: list[str]):
    """(job, result) in completion order: in this process for one job, else in a process pool,
    each worker on a GPU of its own where ``gpus`` are shared out (:func:`take_gpu`)."""
    global _progress_queue
    if jobs == 1:
        _progress_queue = _CallbackQueue(on_frame, on_start) if on_frame or on_start else None
        for job in work:
            yield run_and_pair(job)
        return
    context = multiprocessing.get_context("spawn")
    # A Queue, not a SimpleQueue: a worker killed while it held a SimpleQueue's lock, in one of
    # its puts for every frame, would block every other worker's (a kill can lose its last
    # messages instead, which only the progress shown misses)
    progress = context.Queue()
    drained = threading.Event()  # set when the pool is done: the drain thread stops
    drain = threading.Thread(target=_drain, args=(progress, drained, on_frame, on_start), daemon=True)
    drain.start()
    owners = context.Array("i", jobs) if gpus else None
    keys = [_job_key(job) for job in work]
    takers = context.RawArray("q", len(work))
    pool = context.Pool(jobs, initializer=init_worker,
                        initargs=(threads, progress, gpus, owners, (takers, keys), True))
    finished, suspects, lost, stopped = set(), set(), False, True
    try:
        # The pool replaces a worker that dies (the system killed it for memory; a plugin raised
        # SystemExit) but never answers for its job: the job is failed here once its worker is
        # gone and no result came for it over one more check (one may be on its way).
        results = pool.imap_unordered(run_and_pair, work)
        while len(finished) < len(work):
            try:
                job, result = results.next(timeout=WORKER_CHECK_S)
            except multiprocessing.TimeoutError:
                for key in sorted(suspects - finished):
                    job = next(job for job in work if _job_key(job) == key)
                    finished.add(key)
                    lost = True
                    yield job, _worker_died(job)
                suspects = {key for key, pid in zip(keys, takers) if pid and key not in finished
                            and not process_exists(pid)}
                continue
            if _job_key(job) not in finished:
                finished.add(_job_key(job))
                yield job, result
        if lost:  # the pool keeps waiting for the lost jobs: close() would never end, and terminate() may not
            stopped = _terminate(pool, work)
        else:
            pool.close()
    except BaseException:
        stopped = _terminate(pool, work)
        raise
    finally:
        if stopped:  # else the pool's own threads wait on what was killed: the process's exit ends them
            pool.join()
        # Not a sentinel put into the queue: this process's put would wait for the queue's lock,
        # which a worker killed in the middle of its own put holds for ever, and so would its exit
        drained.set()
        drain.join(timeout=5)


def _terminate(pool, work: list[Job]) -> bool:
    """Stop ``pool``'s workers: SIGTERM, on which each aborts its output and exits. Where that has
    not ended within ``TERMINATE_WAIT_S`` (a worker that does not end, or the pool waiting on a lock
    a worker holds), they are killed and their partial outputs removed, so that Ctrl-C ends the
    batch. Whether the pool ended by itself."""
    stopping = threading.Thread(target=pool.terminate, name="srpipe-pool-stop", daemon=True)
    stopping.start()
    # A SIGTERM that lands as a worker starts to wait for its next job (between Python's look for
    # signals and the wait itself) is not acted on until another signal comes, and that worker
    # waited until it was killed: the signal goes again, to each worker left, until the pool has ended
    waited_until = time.monotonic() + TERMINATE_WAIT_S
    while True:
        stopping.join(RESIGNAL_S)
        if not stopping.is_alive():
            return True
        if time.monotonic() >= waited_until:
            break
        for child in multiprocessing.active_children():
            with contextlib.suppress(OSError):
                os.kill(child.pid, signal.SIGTERM)
    children = multiprocessing.active_children()
    for child in children:
        child.kill()
    for child in children:  # gone, not dying: a partial output is removed only when its process is
        child.join(TERMINATE_WAIT_S)
    for job in work:
        remove_dead_partials(job.output.parent, *partial_affixes(job.output))
    return False


TERMINATE_WAIT_S = 10.0  # how long stopped workers have to abort their outputs before they are killed
RESIGNAL_S = 0.5  # how often a stopped worker that has not ended is sent SIGTERM again
WORKER_CHECK_S = 1.0  # how often the batch looks whether a worker running a job has died
DRAIN_WAIT_S = 0.2  # how long the progress thread waits for a message before looking whether to stop


def _job_key(job: Job) -> tuple:
    return str(job.rel), job.chunk.index if job.chunk is not None else None


def _worker_died(job: Job) -> FileResult:
    """The failure of a job whose worker process died under it; its partial output is removed."""
    remove_dead_partials(job.output.parent, *partial_affixes(job.output))
    return FileResult(str(job.rel), "failed", job.out_rel,
                      error="the worker process upscaling it died (killed by the system, out of memory?, or a "
                            "plugin ended it); run the batch again to retry it, or with fewer --jobs")


class _CallbackQueue:
    """Progress in this process: the queue interface, calling back directly."""

    def __init__(self, on_frame, on_start=None):
        self.on_frame, self.on_start = on_frame, on_start

    def put(self, item):
        _dispatch(item, self.on_frame, self.on_start)


def _dispatch(item, on_frame, on_start) -> None:
    """A worker's progress message: ``1`` per frame written, ``("start", job)`` as a job starts."""
    if isinstance(item, tuple):
        if on_start:
            on_start(item[1])
    elif on_frame:
        on_frame()


def _drain(queue, drained: threading.Event, on_frame, on_start=None) -> None:
    """Progress from the workers until ``drained`` is set."""
    while True:
        done = drained.is_set()  # then what is left in the queue, and no waiting
        try:
            item = queue.get(timeout=DRAIN_WAIT_S) if not done else queue.get_nowait()
        except Empty:
            if done:
                return
            continue
        _dispatch(item, on_frame, on_start)
