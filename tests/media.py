"""Media for tests the library does not make (srpipe.testing), and reading back what srpipe wrote, for assertions."""

from fractions import Fraction

import av
import cv2
import numpy as np

from srpipe.video import frame_from_av


def video_info(path):
    """Stream types, video size/format/colour tags, frame times and planes."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        cc = video.codec_context
        info = {
            "types": [s.type for s in container.streams],
            "width": video.width,
            "height": video.height,
            "pix_fmt": cc.pix_fmt,
            "colour": (cc.color_range, cc.colorspace, cc.color_primaries, cc.color_trc),
            "title": container.metadata.get("title"),
        }
        frames = list(container.decode(video=0))
        info["times"] = [Fraction(f.pts) * Fraction(f.time_base) for f in frames]
        info["rotation"] = frames[0].rotation if frames else None
        info["luma"] = [frame_from_av(f).planes[0].copy() for f in frames]
    return info


def packets(path, kind):
    """(pts seconds, bytes) of every packet of the streams of ``kind``."""
    with av.open(str(path)) as container:
        streams = [s for s in container.streams if s.type == kind]
        return [
            (Fraction(p.pts) * Fraction(p.time_base), bytes(p))
            for p in container.demux(*streams)
            if p.dts is not None
        ]


def audio_only_file(path, rate: int = 48000):
    """A file of one AAC frame of silence and no video stream."""
    import numpy as np

    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=rate)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = rate, 0
        container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def sited_cubic(plane: np.ndarray, width: int, height: int, siting: str = "left") -> np.ndarray:
    """The exact kernel (OpenCV's) resizing 4:2:0 chroma sited as FFmpeg names it: on the left,
    output sample m of a resize by s lies at input sample (m + 1/4) / s - 1/4 across; centred
    across, at (m + 1/2) / s - 1/2; down, (m + 1/2) / s - 1/2 between the rows, (m + 1/4) / s - 1/4
    on the top one, (m + 3/4) / s - 3/4 on the bottom one."""
    offset_across = 0.25 if siting.endswith("left") else 0.5
    offset_down = 0.25 if siting.startswith("top") else 0.75 if siting.startswith("bottom") else 0.5
    across = (np.arange(width) + offset_across) * plane.shape[1] / width - offset_across
    down = (np.arange(height) + offset_down) * plane.shape[0] / height - offset_down
    x, y = np.meshgrid(across.astype(np.float32), down.astype(np.float32))
    return cv2.remap(plane, x, y, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)


def upscale_plugin_frames(frames, output, **source_attributes):
    """``srpipe.upscaling.upscale`` of ``frames`` (srpipe Frames) as a third-party source plugin
    gives them ("listed://frames", no file), into ``output``; ``source_attributes``: more of the
    source's (``time_base``, ``frame_rate``)."""
    from srpipe import hookimpl
    from srpipe.media import Source
    from srpipe.testing import make_plugin_manager
    from srpipe.upscaling import upscale

    class Listed(Source):
        location = "listed://frames"
        is_file = False

        def items(self):
            yield from frames

    for name, value in source_attributes.items():
        setattr(Listed, name, value)

    class ListedPlugin:
        @hookimpl(tryfirst=True)
        def open_source(self, location, options):
            return Listed() if location.startswith("listed:") else None

    pm = make_plugin_manager()
    pm.register(ListedPlugin(), name="listed")
    return upscale("listed://frames", str(output), pm=pm)


def remux(source, target, *, chapters=(), flags=None, sound_before=0.0):
    """``source``'s streams copied into ``target`` as they are, with ``chapters`` (seconds, titles),
    the audio's disposition ``flags`` added, and its first ``sound_before`` seconds moved before the
    start, where an MP4's edit list hides them (as ``ffmpeg -ss ... -c copy`` leaves a cut's sound)."""
    with av.open(str(source)) as src, av.open(str(target), "w") as out:
        streams = {stream.index: out.add_stream_from_template(stream) for stream in src.streams}
        for stream in src.streams.audio:
            if flags is not None:
                streams[stream.index].disposition = stream.disposition | flags
        out.set_chapters([{"id": i + 1, "start": round(1000 * start), "end": round(1000 * end),
                           "time_base": Fraction(1, 1000), "metadata": {"title": title}}
                          for i, (start, end, title) in enumerate(chapters)])
        for packet in src.demux():
            if packet.dts is None:
                continue
            if packet.stream.type == "audio" and sound_before:
                shift = round(sound_before / packet.time_base)
                packet.pts, packet.dts = packet.pts - shift, packet.dts - shift
            packet.stream = streams[packet.stream.index]
            out.mux(packet)
    return target


def make_wmv(path, rate: int, frames: int, sound_seconds: float):
    """A Windows Media file, as archives hold them: ASF states one end for all its streams."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("wmv2", rate=rate)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        sound = container.add_stream("wmav2", rate=44100)
        sound.layout, sound.bit_rate = "mono", 64000  # (WMA takes no default rate)
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 4 * index, np.uint8), format="rgb24")
            frame.pts = index
            container.mux(video.encode(frame))
        container.mux(video.encode())
        for start in range(0, int(sound_seconds * 44100), 2048):
            tone = np.sin(np.arange(start, start + 2048, dtype=np.float32) / 20)[None, :] * 0.2
            chunk = av.AudioFrame.from_ndarray(tone.astype(np.float32), format="fltp", layout="mono")
            chunk.sample_rate, chunk.pts = 44100, start
            container.mux(sound.encode(chunk))
        container.mux(sound.encode())
    return path
