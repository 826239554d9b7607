"""Long videos in keyframe-aligned chunks: plan the split, then join the parts.

Each chunk is upscaled on its own (any process, any machine) into a video-only
part file holding the source's timestamps. :func:`join_parts` then remuxes the
parts' packets into the final output, copying audio, subtitles and metadata once
from the source, and checks the frame count against the source's.
"""

from __future__ import annotations

import bisect
import heapq
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av

from srpipe.errors import SrpipeError
from srpipe.outputs import AtomicOutput

# Demuxers that seek by an index to the exact keyframe asked for.
SEEKABLE_FORMATS = {"mov", "mp4", "matroska", "webm"}
PART_FORMAT = "nut"  # keeps any codec and the stream's own time base exactly


@dataclass(frozen=True)
class Chunk:
    """The frames with ``start <= pts < end`` (``None``: open end); ``start`` is a keyframe."""

    index: int
    start: int | None
    end: int | None
    frames: int


@dataclass(frozen=True)
class VideoIndex:
    """The presentation timestamps of a video stream and which of them are keyframes."""

    pts: list[int]  # sorted
    keyframes: list[int]  # sorted
    time_base: Fraction
    # how long each frame is shown, by pts, where its packet says: the parts' format (NUT) keeps no
    # durations, and a frame's (the last's, above all) is the source's, as a whole run writes it
    durations: dict[int, int] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        if len(self.pts) < 2:
            return 0.0
        return float((self.pts[-1] - self.pts[0]) * self.time_base)


def index_video(path: str | Path, min_seconds: float = 0.0) -> VideoIndex | None:
    """Read the video packets' timestamps without decoding; ``None`` if the file cannot be
    split exactly (a container without a seek index, packets without timestamps or with
    repeated ones: a whole file's run times those by the frame rate, which a chunk, starting
    mid-way, cannot; a first packet that is not a keyframe), its alpha lies beside the picture
    (VP9 in WebM: the parts' format would drop it) or it is shorter than ``min_seconds`` by its
    header."""
    from srpipe.video import carries_alpha_aside, main_video

    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError):
        return None
    with container:
        video = main_video(container)
        if video is None or not SEEKABLE_FORMATS & set(container.format.name.split(",")) or \
                carries_alpha_aside(video):
            return None
        if container.duration is not None and container.duration / av.time_base < min_seconds:
            return None
        pts, keyframes, durations, began = [], [], {}, False
        for packet in container.demux(video):
            if packet.size and not began and not packet.is_keyframe:
                return None  # a stream joined mid-way: what comes before its first keyframe, a whole run counts
            began = began or packet.size > 0
            # the demuxer's end-of-stream marker; or a frame before an edit list's start (an MP4 trimmed
            # without encoding), which the decoder decodes and drops
            if packet.size == 0 or packet.is_discard:
                continue
            if packet.pts is None:
                return None
            pts.append(packet.pts)
            if packet.duration:
                durations[packet.pts] = packet.duration
            if packet.is_keyframe:
                keyframes.append(packet.pts)
        if len(set(pts)) != len(pts):
            return None
        return VideoIndex(sorted(pts), sorted(keyframes), Fraction(video.time_base), durations)


def plan_chunks(index: VideoIndex, chunk_seconds: float) -> list[Chunk]:
    """Chunks of about ``chunk_seconds``, each starting at a keyframe; one chunk if the
    video is shorter than two chunks or has too few keyframes."""
    wanted = int(index.seconds // chunk_seconds) if chunk_seconds > 0 else 1
    cuts: list[int] = []
    if wanted >= 2:
        first = index.pts[0]
        candidates = [k for k in index.keyframes if k > first]
        for i in range(1, wanted):
            target = index.pts[len(index.pts) * i // wanted]
            at = bisect.bisect_left(candidates, target)
            nearest = min(candidates[max(at - 1, 0):at + 1], key=lambda k: abs(k - target), default=None)
            if nearest is not None and (not cuts or nearest > cuts[-1]):
                cuts.append(nearest)
    bounds = [None, *cuts, None]
    chunks = []
    for i, (start, end) in enumerate(zip(bounds, bounds[1:])):
        lo = 0 if start is None else bisect.bisect_left(index.pts, start)
        hi = len(index.pts) if end is None else bisect.bisect_left(index.pts, end)
        chunks.append(Chunk(i, start, end, hi - lo))
    return chunks


def _video_packets(part: Path):
    container = av.open(str(part))
    with container:
        for packet in container.demux(container.streams.video[0]):
            if packet.size:
                yield packet


def _cover_packet(source: str | Path, stream) -> list[av.Packet]:
    """A cover picture's packet, which Matroska's writer takes as an attachment before the file
    begins (:func:`srpipe.video.add_copied_stream`), read on its own; none for another stream."""
    if not stream.disposition & av.stream.Disposition.attached_pic:
        return []
    with av.open(str(source)) as container:
        first = next((packet for packet in container.demux(container.streams[stream.index]) if packet.size), None)
    return [first] if first is not None else []


def _source_timestamps(parts: list[Path], index: VideoIndex) -> list[list[int]]:
    """Each part's packets' presentation times, in decoding order, as the source's own pts.

    The part container may shift and rescale timestamps (it avoids negative decoding
    times); the order of frames within a part survives that, and the parts together
    hold the source's frames in order, so rank i of the whole is the source's pts i."""
    timestamps, taken = [], 0
    for part in parts:
        pts = [packet.pts for packet in _video_packets(part)]
        rank = {p: i for i, p in enumerate(sorted(set(pts)))}
        if len(rank) != len(pts) or taken + len(pts) > len(index.pts):
            break
        timestamps.append([index.pts[taken + rank[p]] for p in pts])
        taken += len(pts)
    if taken != len(index.pts) or len(timestamps) != len(parts):
        raise SrpipeError(
            f"the upscaled chunks hold {taken} frames but the source has {len(index.pts)}; "
            "process it unchunked (--chunk-seconds 0)"
        )
    return timestamps


def _decode_timestamps(pts: list[int]) -> list[int]:
    """Decoding timestamps for packets in decoding order with presentation times ``pts``.

    Each part was encoded on its own, so its decoding times restart below its first
    frame. The joined stream gets the scheme an encoder gives one continuous stream:
    the sorted presentation times, delayed by the largest reordering depth."""
    ordered = sorted(pts)
    rank = {p: i for i, p in enumerate(ordered)}
    delay = max(0, max(i - rank[p] for i, p in enumerate(pts)))
    step = ordered[1] - ordered[0] if len(ordered) > 1 else 1
    return [ordered[i - delay] if i >= delay else ordered[0] - (delay - i) * step for i in range(len(pts))]


def join_parts(source: str | Path, index: VideoIndex, parts: list[Path], output: Path, *,
               container_format: str | None = None, overwrite: bool = False) -> int:
    """Mux the parts' video and the source's other streams into ``output`` (atomically),
    with the source's timestamps, started at zero as a whole file's upscale is (its
    ``PyAVSource.origin``); returns the number of frames, checked against ``index``."""
    from srpipe.video import (
        SUFFIX_FORMATS,
        CutAwaySound,
        add_copied_stream,
        colour_as_shown,
        date_cover,
        file_origin,
        first_frame_layout,
        main_video,
        move_packet,
        output_metadata,
        started_at_zero,
        tag_hevc_for_apple,
        tag_video_stream,
        tell_what_is_not_kept,
        upscaled_colour,
        upscaled_disposition,
        upscaled_tags,
    )

    timestamps = _source_timestamps(parts, index)
    all_pts = [p for part in timestamps for p in part]
    dts = iter(_decode_timestamps(all_pts))
    target = AtomicOutput(output, overwrite)
    try:
        with av.open(str(source)) as src, av.open(str(parts[0])) as first:
            origin = file_origin(src, index.pts[0] * index.time_base)
            metadata, options = output_metadata(dict(src.metadata), container_format or
                                                SUFFIX_FORMATS.get(Path(output).suffix.lower()))
            with av.open(str(target.temp), "w", format=container_format, options=options) as out:
                video = out.add_stream_from_template(first.streams.video[0])
                video.time_base = index.time_base
                tag_hevc_for_apple(out, video)
                src_video = main_video(src)
                # The source's mean rate, which a whole file's writer declares (its encoder's rate): the
                # parts' own is their codec's (x264's timing, 1000 fps in a source timed in ms), which
                # Matroska writes as the track's frame duration, and a remux times the video by
                rate = src_video.average_rate or src_video.guessed_rate
                if rate:
                    video.codec_context.framerate = rate
                matrix, full_range = first_frame_layout(str(source))
                colour = colour_as_shown(upscaled_colour(src_video), (src_video.width, src_video.height),
                                         (video.width, video.height))
                tag_video_stream(video, full_range, colour, matrix)
                video.metadata.update(upscaled_tags(src_video))
                video.disposition = upscaled_disposition(src_video)
                copied = {}
                for stream in src.streams:
                    if stream.index != src_video.index:
                        out_stream = add_copied_stream(out, stream, str(source), _cover_packet(source, stream))
                        if out_stream is not None:
                            copied[stream.index] = out_stream
                out.metadata.update(metadata)
                if src.chapters():
                    out.set_chapters(started_at_zero(src.chapters(), origin))

                def video_packets():
                    for part, pts in zip(parts, timestamps):
                        for packet, true_pts in zip(_video_packets(part), pts):
                            duration = index.durations.get(true_pts) or (
                                round(packet.duration * packet.time_base / index.time_base) if packet.duration else 0)
                            packet.time_base = index.time_base
                            packet.pts, packet.dts, packet.duration = true_pts, next(dts), duration
                            move_packet(packet, -round(origin / index.time_base))
                            yield video, packet

                def other_packets():
                    cut_away = CutAwaySound(out.format.name.split(",")[0])
                    if copied:
                        for packet in src.demux(*[src.streams[i] for i in copied]):
                            date_cover(packet)
                            if packet.dts is not None:
                                move_packet(packet, -round(origin / Fraction(packet.time_base)))
                                for kept in cut_away.pass_on(packet):
                                    yield copied[kept.stream.index], kept

                written, muxer = len(out.streams), out.format.name.split(",")[0]
                by_time = heapq.merge(video_packets(), other_packets(), key=lambda sp: sp[1].dts * sp[1].time_base)
                for stream, packet in by_time:
                    packet.stream = stream
                    out.mux(packet)
        if not target.direct:
            with av.open(str(source)) as src, av.open(str(parts[0])) as first:
                shape = first.streams.video[0].codec_context.sample_aspect_ratio
                tell_what_is_not_kept(target.temp, muxer, written, str(source), len(src.chapters()),
                                      [(src.streams[index], stream.index) for index, stream in copied.items()],
                                      (video.index, shape) if shape and shape != 1 else None)
    except BaseException:
        target.discard()
        raise
    target.commit()
    return len(all_pts)
