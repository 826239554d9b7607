"""Score an upscaler on real, compressed video: shrink a clip as ``ffmpeg -vf scale`` does,
encode it with x264 at each crf, upscale it through srpipe's own pipeline, and compare the luma
of every frame with the original's.

    ffmpeg -i clip.mp4 -vf crop=W:H:0:0,scale=W/s:H/s -c:v libx264 -preset medium -crf C lr.mp4
    srpipe upscale lr.mp4 -m MODEL --codec ffv1 -o up.mkv      # lossless, so only the model counts
    srpipe upscale lr.mp4 -m MODEL --codec ffv1 -o up.mkv --exact   # the network on every pixel
    mean over frames of Y-PSNR(up, original), border = scale
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import av
import numpy as np

from srpipe.default_plugins.espcn.evaluate import first_of_its_file
from srpipe.default_plugins.espcn.metrics import psnr
from srpipe.errors import SrpipeError
from srpipe.memory import check_frame_size, decoder_pixels, default_max_pixels
from srpipe.outputs import special_kind
from srpipe.video import (
    FILE_END_FORMATS,
    add_video_encoder,
    ffmpeg_errors,
    main_video,
    plane_view,
    refuse_claimed_size,
    refused_size,
    stated_end,
    tell_concealed,
)


def luma_frames(path: str | Path, limit: int | None = None) -> Iterator[np.ndarray]:
    """The 8-bit luma planes of a clip's first ``limit`` frames (all: None), in presentation order."""
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(main_video(container))):
            if limit is not None and i >= limit:
                return
            if frame.format.name not in ("yuv420p", "yuvj420p", "yuv422p", "yuv444p", "gray"):
                frame = frame.reformat(format="yuv420p")
            yield plane_view(frame.planes[0], np.dtype(np.uint8)).copy()


class UnreadableClip(SrpipeError):
    """A clip that cannot be scored for what it holds (damaged, not video, too small): in a
    folder, it is skipped and the others are scored."""


def _filtered_frames(clip: str | Path, steps: Sequence[tuple[str, str]], limit: int | None, size=None,
                     max_pixels: int | None = None):
    """The first ``limit`` frames (all: None) of ``clip``'s video through FFmpeg's filters
    ``steps`` ((name, arguments) in order), with the first frame's (width, height) before them
    (``size``: a function of the video stream and that size that returns the steps instead). A
    file that cannot be read, whose frames are larger than ``max_pixels`` (None: the default of
    ``--max-pixels``; refused before decoding), or whose frames change size or format, is
    refused naming it."""
    limit_pixels = default_max_pixels() if max_pixels is None else max_pixels
    try:  # max_pixels: the probe decodes a first frame; a header claiming a huge one fails instead
        with ffmpeg_errors() as logs:
            inp = av.open(str(clip), options={"max_pixels": decoder_pixels(limit_pixels)})
    except av.error.FFmpegError as exc:
        try:  # a size FFmpeg's probe refused: said as the other commands say it
            refuse_claimed_size(str(clip), logs)
            if (refused := refused_size(logs)) is not None:
                check_frame_size(str(clip), *refused, limit_pixels)
        except SrpipeError as refusal:
            raise UnreadableClip(str(refusal)) from None
        raise UnreadableClip(f"{clip} cannot be opened as a video ({exc.strerror or exc}); give a video file") from None
    with inp:
        src = main_video(inp)
        if src is None:
            raise UnreadableClip(f"{clip} has no video stream; give a video file")
        if src.disposition & av.stream.Disposition.attached_pic:  # a song's cover: one picture, not a clip
            raise UnreadableClip(f"{clip} holds no video but a cover picture; give a video file")
        if src.codec_context is None:  # a header cut short, or a codec FFmpeg does not know
            raise UnreadableClip(f"{clip} has a video stream that cannot be decoded (no codec: the file may be cut "
                                 "short); check the file")
        try:
            check_frame_size(str(clip), src.codec_context.width, src.codec_context.height, limit_pixels)
        except SrpipeError as exc:
            raise UnreadableClip(str(exc)) from None
        # a far larger frame later is refused too
        src.codec_context.options = {"max_pixels": decoder_pixels(limit_pixels)}
        # as upscale decodes: FFmpeg conceals damage (fills in lost blocks) only without slice threads
        src.thread_type = "AUTO"
        graph, first, concealed, first_concealed, last = None, None, 0, None, None
        try:
            for index, frame in enumerate(inp.decode(src)):
                if limit is not None and index >= limit:
                    break
                last = frame.pts if frame.pts is not None else last
                if frame.is_corrupt:
                    concealed += 1
                    first_concealed = frame.time if first_concealed is None else first_concealed
                if graph is None:
                    first = (frame.width, frame.height, frame.format.name)
                    graph = _graph(frame, src.time_base, size(src, first[:2]) if size else steps)
                elif (frame.width, frame.height, frame.format.name) != first:
                    raise UnreadableClip(f"{clip} changes from {first[0]}x{first[1]} {first[2]} frames to "
                                         f"{frame.width}x{frame.height} {frame.format.name}; srpipe eval scores clips "
                                         "of one size and pixel format")
                graph.push(frame)
                yield graph.pull()
            else:
                _tell_cut_short(clip, src, last)
        except (av.error.FFmpegError, ValueError) as exc:  # damaged data, or a header cut short
            raise UnreadableClip(f"{clip} cannot be decoded ({getattr(exc, 'strerror', None) or exc}); "
                                 "check the file") from None
        if graph is None and limit != 0:
            raise UnreadableClip(f"{clip} has no frame that decodes; check the file")
        if concealed:
            tell_concealed(concealed, str(clip), first_concealed, "and are scored as they show; check the clip")


def _tell_cut_short(clip, stream, last: int | None) -> None:
    """Warn where ``stream`` ended, its last frame at ``last``, frames before the end its header
    states (a file cut short): upscale refuses such a file, or with --on-decode-error skip counts
    them as skipped; eval scores what decoded, and says so."""
    stated, rate = stated_end(stream), stream.average_rate
    if stated is None or last is None or not rate or not stream.time_base:
        return
    if stream.container.format.name in FILE_END_FORMATS:  # the file's end, which its sound may reach alone
        return
    step = 1 / (Fraction(rate) * stream.time_base)
    missing = (stated - last) / step - 1
    if missing > 1.5:  # one frame short is a writer's rounding, as upscale takes it
        warnings.warn(f"{clip} ends about {round(missing)} frames before the end its header states (cut short?): "
                      "the frames that decode are scored; check the clip")


def _graph(first, time_base, steps: Sequence[tuple[str, str]]):
    """FFmpeg's filters ``steps`` for frames like ``first`` (its size and format, not the stream
    header's, which a damaged or hostile file may state otherwise)."""
    graph = av.filter.Graph()
    source = graph.add_buffer(width=first.width, height=first.height, format=first.format.name,
                              time_base=time_base or Fraction(1, 25))
    chain = [source, *(graph.add(name, args) for name, args in steps), graph.add("buffersink")]
    for a, b in zip(chain, chain[1:]):
        a.link_to(b)
    graph.configure()
    return graph


def _cropped(width: int, height: int, scale: int) -> tuple[int, int]:
    """A frame's size cropped to a multiple of ``2 * scale`` (so 4:2:0 fits shrunk)."""
    return width - width % (2 * scale), height - height % (2 * scale)


def shrink_and_encode(clip: str | Path, out: str | Path, scale: int, crf: int, limit: int | None = None,
                      preset: str = "medium", max_pixels: int | None = None) -> tuple[int, int]:
    """Write ``clip`` cropped to a multiple of ``2 * scale`` (so 4:2:0 fits), shrunk by FFmpeg's
    ``scale`` filter (its default bicubic), made 8-bit 4:2:0 and encoded by x264 at ``crf``;
    returns the HR size. A clip is refused where nothing would be left to score inside the
    border of ``scale`` pixels, or where its frames are over ``max_pixels``."""
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be at least 1 frame, not {limit}")
    found = {}  # the HR size and the frame rate, from the stream and its first frame

    def steps(src, first):
        w, h = _cropped(*first, scale)
        if min(w, h) <= 2 * scale:
            raise UnreadableClip(f"{clip} is {first[0]}x{first[1]}, too small to score at x{scale}: it needs "
                                 f"{4 * scale}x{4 * scale} pixels or more")
        found.update(size=(w, h), rate=Fraction(src.average_rate or src.guessed_rate or 25))
        return [("crop", f"{w}:{h}:0:0"), ("scale", f"{w // scale}:{h // scale}:flags=bicubic"), ("format", "yuv420p")]

    with av.open(str(out), "w") as dst:
        stream = None
        for index, shrunk in enumerate(_filtered_frames(clip, (), limit, size=steps, max_pixels=max_pixels)):
            rate = found["rate"]
            with _refused_by_x264(clip, shrunk):
                if stream is None:
                    stream = add_video_encoder(dst, "libx264", rate=rate, time_base=1 / rate, crf=crf, preset=preset)
                    stream.width, stream.height, stream.pix_fmt = shrunk.width, shrunk.height, "yuv420p"
                shrunk.pts, shrunk.time_base = index, 1 / rate
                dst.mux(stream.encode(shrunk))
        with _refused_by_x264(clip, shrunk):
            dst.mux(stream.encode())
    return found["size"]


@contextlib.contextmanager
def _refused_by_x264(clip, shrunk):
    """An error of x264 on ``clip``'s small copy (frames like ``shrunk``) as the clip's: x264 takes
    no frame over 16384 pixels a side, say, so such a clip cannot be scored, and the others can."""
    try:
        with ffmpeg_errors() as logs:
            yield
    except av.error.FFmpegError as exc:
        said = next((message.strip() for _, _, message in logs if message.strip()), exc.strerror or str(exc))
        raise UnreadableClip(f"{clip} cannot be scored: x264 refused its {shrunk.width}x{shrunk.height} small copy "
                             f"({said})") from None


def reference_lumas(clip: str | Path, width: int, height: int, limit: int | None = None,
                    max_pixels: int | None = None) -> Iterator[np.ndarray]:
    """The 8-bit luma that :func:`shrink_and_encode` shrinks: ``clip`` cropped to ``width`` x
    ``height`` and made 4:2:0 by the same filters, so that a gray clip, say, is scored against
    the limited-range luma its small copy was made from, not its own full-range values."""
    for frame in _filtered_frames(clip, [("crop", f"{width}:{height}:0:0"), ("format", "yuv420p")], limit,
                                  max_pixels=max_pixels):
        yield plane_view(frame.planes[0], np.dtype(np.uint8)).copy()


def evaluate_video(clip: str | Path, models: Mapping[str, str | None], scale: int,
                   crfs: Sequence[int] = (0, 23, 30), *, backend: str = "auto", frames: int | None = None,
                   device: str = "cpu", exact: bool = False,
                   exact_models: Mapping[str, str | None] | None = None, max_pixels: int | None = None) -> dict:
    """Mean Y-PSNR over the first ``frames`` frames (all: None) of each model (name -> weights
    or None) at each crf: ``{"clip", "scale", "crfs": [{"crf", "frames", "psnr": {name: dB}, "ran":
    {name: what ran}}]}`` (``"espcn-lossless (clean weights)"`` for ``espcn`` on a lossless encode).
    All upscale the same encoded clip through :func:`srpipe.upscaling.upscale`, ``models`` with
    its ``exact``; ``exact_models`` are also scored with ``exact=True`` (the network on every
    pixel), under ``"NAME --exact"``: beside the default path, what tile reuse and int8 cost.
    The output is written losslessly (FFV1), so the scores are the upscaler's alone. A clip whose
    frames are over ``max_pixels`` (None: ``--max-pixels``'s default) is refused before decoding."""
    from srpipe.media import SinkOptions
    from srpipe.upscaling import upscale

    if str(clip) == "-":  # as bench says it
        raise UnreadableClip("- is standard input, not a file; srpipe eval reads its clip several times: give a file")
    if not Path(clip).is_file():  # a FIFO could be read once, and the clip is read once per crf and model
        problem = f"is a {special_kind(clip)}, not a file" if special_kind(clip) else "does not exist"
        raise UnreadableClip(f"{clip} {problem}; give a video file")
    runs = {name: (name, name_weights, exact) for name, name_weights in models.items()}
    runs.update({f"{name} --exact": (name, name_weights, True) for name, name_weights in (exact_models or {}).items()})
    results = []
    with tempfile.TemporaryDirectory(prefix="srpipe-eval-") as tmp:
        for crf in crfs:
            lr = Path(tmp, f"lr-crf{crf}.mp4")
            w, h = shrink_and_encode(clip, lr, scale, crf, frames, max_pixels=max_pixels)
            row = {"crf": crf, "frames": 0, "psnr": {}, "ran": {}}
            for label, (name, name_weights, run_exact) in runs.items():
                up = Path(tmp, f"up-crf{crf}.mkv")
                ran = upscale(str(lr), str(up), model=name, scale=scale, device=device, backend=backend,
                              weights=name_weights, threaded=False, exact=run_exact,
                              sink_options=SinkOptions(codec="ffv1", crf=None, preset=None, overwrite=True))
                # what ran, where a stand-in (espcn-lossless on a crf 0 encode) or a variant did
                row["ran"][label] = ran.model + (f" ({ran.variant})" if ran.variant else "")
                scores = [psnr(u, o, scale) for u, o in zip(luma_frames(up),
                                                             reference_lumas(clip, w, h, frames, max_pixels))]
                row["psnr"][label], row["frames"] = float(np.mean(scores)), len(scores)
                up.unlink()
            results.append(row)
    return {"clip": str(clip), "scale": scale, "crfs": results}


def clips_by_category(folder: str | Path) -> dict[str, list[Path]]:
    """The video files under ``folder``, by category: the sub-folder of ``folder`` they are in
    (the name of ``folder`` itself for those directly in it), each list sorted by path; hidden files
    and folders left out.
    Linked folders are followed, each once, after the folders themselves: a clip belongs where it
    lies, and a link to it (a linked folder, a linked or hard-linked file) adds nothing. Special
    files and broken links are passed over with a warning, as a FIFO would be read once and a
    device might never end."""
    from srpipe.media import VIDEO_SUFFIXES

    folder = Path(folder)
    categories: dict[str, list[Path]] = {}
    clips, read = {}, set()  # each clip's path by the file's identity; the folders read in the first two stages
    # The files of the folders themselves, then the links among them (a linked file belongs where
    # its target lies, when that is in the folder), then what only linked folders lead to
    root = os.path.realpath(folder)
    for stage in ("files", "links", "linked folders"):
        seen = set()
        for top, folders, files in os.walk(folder, followlinks=stage == "linked folders"):
            real = os.path.realpath(top)
            if real != root and root.startswith(os.path.join(real, "")):  # a link up to a folder holding this one
                warnings.warn(f"skipped {top}: a link to {real}, which holds {folder}; its clips are not under it")
                folders.clear()
                continue
            in_place = real == os.path.normpath(os.path.join(root, os.path.relpath(top, folder)))
            if real in seen or (real in read and not in_place):  # a loop, or a link to a folder read where it lies
                folders.clear()
                continue
            seen.add(real)
            # hidden entries are a system's, not clips: macOS's ._IMG_0001.MOV beside each clip on a
            # shared drive, .Trashes; and folders go before links
            folders[:] = sorted((name for name in folders if not name.startswith(".")),
                                key=lambda name: (os.path.islink(os.path.join(top, name)), name))
            if stage != "linked folders":
                read.add(real)
            elif real in read:  # its files were taken: the links in its sub-folders are followed from here
                continue
            for name in sorted(files):
                path = Path(top, name)
                if name.startswith(".") or path.suffix.lower() not in VIDEO_SUFFIXES or (
                        stage != "linked folders" and path.is_symlink() != (stage == "links")):
                    continue
                if not path.is_file():
                    kind = special_kind(path)
                    warnings.warn(f"skipped {path}: {f'a {kind}' if kind else 'a link to nothing'}, not a video file")
                    continue
                if not first_of_its_file(path, clips):  # a hard link too
                    continue
                relative = path.relative_to(folder)
                category = relative.parts[0] if len(relative.parts) > 1 else None  # None: in the folder itself
                categories.setdefault(category, []).append(path)
    if None in categories:  # named after the folder, but for a sub-folder of that name
        own = Path(root).name
        categories[f"{own} (top)" if own in categories else own] = categories.pop(None)
    if not categories:
        raise SrpipeError(f"no video clips in {folder}; give a folder of clips (.mp4, .mkv, .mov, ...), "
                          "in sub-folders by category if you want scores per category")
    return {name: sorted(paths) for name, paths in sorted(categories.items(), key=lambda item: min(item[1]))}


def evaluate_folder_of_clips(folder: str | Path, models: Mapping[str, str | None], scale: int,
                             crfs: Sequence[int] = (0, 23, 30), **options) -> dict:
    """:func:`evaluate_video` on every clip under ``folder`` (``options`` as it takes them), and
    the means by category (:func:`clips_by_category`) and over all clips, each clip counting
    once however many frames it has: ``{"folder", "scale", "clips": [report + "category"],
    "categories": {name: [{"crf", "clips", "psnr"}]}, "all": [{"crf", "clips", "psnr"}],
    "not_scored": [{"clip", "category", "error"}]}``. A clip that cannot be scored (damaged, say)
    is warned about and listed in ``not_scored``, and the others are scored; where none can be,
    that is an error. Any other error (the model's) stops the run."""
    categories = clips_by_category(folder)
    clips, not_scored = [], []
    for category, paths in categories.items():
        for path in paths:
            try:
                clips.append({**evaluate_video(path, models, scale, crfs, **options), "category": category})
            except UnreadableClip as exc:
                if len(categories) == 1 and len(paths) == 1:
                    raise  # the folder's one clip: its error is the answer
                warnings.warn(f"skipped: {exc}")  # which names the clip
                not_scored.append({"clip": str(path), "category": category, "error": str(exc)})
    if not clips:
        raise SrpipeError(f"none of the {len(not_scored)} clips in {folder} could be scored (each named above)")

    def means(reports: list[dict]) -> list[dict]:
        rows = []
        for index, crf in enumerate(crfs):
            labels = reports[0]["crfs"][index]["psnr"]
            rows.append({"crf": crf, "clips": len(reports),
                         "psnr": {label: float(np.mean([r["crfs"][index]["psnr"][label] for r in reports]))
                                  for label in labels}})
        return rows

    scored = [name for name in categories if any(c["category"] == name for c in clips)]
    return {"folder": str(folder), "scale": scale, "clips": clips,
            "categories": {name: means([c for c in clips if c["category"] == name]) for name in scored},
            "all": means(clips), "not_scored": not_scored}
