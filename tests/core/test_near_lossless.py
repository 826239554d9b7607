"""Near-lossless and coarsely quantized video (``Source.near_lossless``, ``Source.quantizer``): what
the decoder says of a file's coding, read from real encodes, and the models that stand in on such
files (``ModelSpec.near_lossless_model``, ``coarse_quantizer_models``)."""

import subprocess
import sys

import av
import cv2
import numpy as np
import pytest

from srpipe.default_plugins.espcn import COARSE_QUANTIZER_KINDS
from srpipe.default_plugins.espcn.openvino_backend import has_fast_int8
from srpipe.media import SinkOptions, SourceOptions
from srpipe.plugins import make_plugin_manager
from srpipe.testing import make_test_video
from srpipe.video import LOSSLESS_CODECS, NEAR_LOSSLESS_QP, PyAVSource, mean_quantizer


def clip(path, **options):
    return make_test_video(path, width=96, height=64, frames=6, audio=False, **options)


def test_the_quantizer_of_x264_encodes(tmp_path):
    lossless = clip(tmp_path / "crf0.mp4", codec_options={"crf": "0", "preset": "ultrafast"})
    fine = clip(tmp_path / "qp6.mp4", codec_options={"qp": "6", "preset": "ultrafast"})
    coarse = clip(tmp_path / "qp30.mp4", codec_options={"qp": "30", "preset": "ultrafast"})
    assert mean_quantizer(str(lossless), 1 << 24) == 0.0
    assert 4 <= mean_quantizer(str(fine), 1 << 24) <= 8  # x264 gives I frames a little less than --qp
    assert 26 <= mean_quantizer(str(coarse), 1 << 24) <= 34


def test_ten_bit_quantizers_are_on_the_eight_bit_scale(tmp_path):
    """H.264 adds 6 to its quantizers per bit beyond 8: the same crf gives about the same figure."""
    eight = clip(tmp_path / "8.mp4", codec_options={"crf": "23", "preset": "ultrafast"})
    ten = clip(tmp_path / "10.mp4", pix_fmt="yuv420p10le", codec_options={"crf": "23", "preset": "ultrafast"})
    assert abs(mean_quantizer(str(ten), 1 << 24) - mean_quantizer(str(eight), 1 << 24)) < 4


def test_no_quantizer_where_the_decoder_reports_none(tmp_path):
    mpeg4 = clip(tmp_path / "a.mp4", codec="mpeg4")
    ffv1 = clip(tmp_path / "a.mkv", codec="ffv1")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4)
    truncated = tmp_path / "cut.mp4"
    truncated.write_bytes(clip(tmp_path / "whole.mp4").read_bytes()[:700])
    for path in (mpeg4, ffv1, junk, truncated, tmp_path / "missing.mp4"):
        assert mean_quantizer(str(path), 1 << 24) is None, path


def test_the_quantizers_are_read_from_the_first_packets_only(tmp_path, monkeypatch):
    """A file is not read to its end to find frames: past QUANTIZER_PACKETS packets the probe stops."""
    import srpipe.video as video

    # lossless from frame 1 to 69 (x264 zones), then coarse: only the first packets count
    path = make_test_video(tmp_path / "zones.mp4", width=96, height=64, frames=140, audio=False,
                           codec_options={"preset": "ultrafast", "crf": "35", "x264-params": "zones=0,69,q=0"})
    monkeypatch.setattr(video, "QUANTIZER_PACKETS", 64)
    assert mean_quantizer(str(path), 1 << 24, frames=1000) < 2
    monkeypatch.setattr(video, "QUANTIZER_PACKETS", 1000)
    assert mean_quantizer(str(path), 1 << 24, frames=1000) > 15
    with_audio = make_test_video(tmp_path / "audio.mp4", width=96, height=64, frames=140, audio=True,
                                 codec_options={"preset": "ultrafast", "crf": "35", "x264-params": "zones=0,69,q=0"})
    monkeypatch.setattr(video, "QUANTIZER_PACKETS", 64)  # the sound's packets do not count against the video's
    assert mean_quantizer(str(with_audio), 1 << 24, frames=1000) == mean_quantizer(str(path), 1 << 24, frames=1000)
    monkeypatch.setattr(video, "QUANTIZER_ALL_PACKETS", 40)  # but all packets are counted, so few frames are read
    assert mean_quantizer(str(with_audio), 1 << 24, frames=1000) > mean_quantizer(str(path), 1 << 24, frames=1000)


def test_sound_before_the_picture_leaves_the_quantizer_readable(tmp_path):
    """Six seconds of sound before the first frame (a recording whose picture starts late): its
    packets used up the probe's budget, and the file silently kept the weights for any bit rate."""
    picture = make_test_video(tmp_path / "picture.mp4", width=96, height=64, frames=12, audio=False,
                              codec_options={"qp": "40", "preset": "ultrafast"})
    late = tmp_path / "late.mp4"
    with av.open(str(picture)) as source, av.open(str(late), "w") as out:
        video_in = source.streams.video[0]
        video_out = out.add_stream_from_template(video_in)
        sound = out.add_stream("aac", rate=48000, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 48000
        for index in range(48000 * 8 // 1024):  # 8 s of silence
            frame.pts = index * 1024
            out.mux(sound.encode(frame))
        out.mux(sound.encode())
        for packet in source.demux(video_in):
            if packet.dts is not None:  # not the flushing packet
                late_by = int(6 / packet.time_base)
                packet.pts, packet.dts = packet.pts + late_by, packet.dts + late_by
                packet.stream = video_out
                out.mux(packet)
    assert 36 <= mean_quantizer(str(late), 1 << 24) <= 44


def test_blocks_the_decoder_concealed_do_not_count(tmp_path):
    """A crf 23 stream whose header claims a larger frame: the decoder conceals what the packets
    do not cover and reports those blocks at 0, which must not make it near lossless (the frame,
    mostly concealed and flat, now does not count at all)."""
    from srpipe.testing import make_huge_claim_h264

    path = make_huge_claim_h264(tmp_path / "claim.h264", width=1280, height=720)
    quantizer = mean_quantizer(str(path), 1 << 24)
    assert quantizer is None or quantizer > NEAR_LOSSLESS_QP


def _coded(path, frames, crf):
    """``frames`` (8-bit grey pictures) coded by x264 at ``crf`` as most files are (preset medium:
    adaptive quantization and mbtree on), on one thread so that every machine codes them alike."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25, options={"crf": str(crf), "preset": "medium", "threads": "1"})
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        for picture in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(np.dstack([picture] * 3), format="rgb24")))
        out.mux(stream.encode())
    return path


def _textured(rng, height, width):
    return cv2.GaussianBlur(rng.integers(0, 256, (height, width), np.uint8), (0, 0), 1.2)


def test_black_bars_and_a_title_card_do_not_make_a_file_look_finer(tmp_path):
    """x264 codes flat blocks (black bars, a plain background) finer than the picture, and a P
    frame's skipped blocks report the quantizer of the block before them: a letterboxed clip read
    far below the same picture without bars (a band of espcn's weights lower), and a title card
    before a crf 18 clip read as near lossless."""
    rng = np.random.default_rng(5)
    pictures = [np.roll(_textured(rng, 96, 192), 2 * i, axis=1) for i in range(6)]
    plain = mean_quantizer(str(_coded(tmp_path / "plain.mp4", pictures, 30)), 1 << 24)
    boxed = _coded(tmp_path / "boxed.mp4", [np.pad(p, ((48, 48), (0, 0))) for p in pictures], 30)
    assert abs(mean_quantizer(str(boxed), 1 << 24) - plain) <= 1  # it read 6.5 lower
    card = np.zeros((96, 192), np.uint8)
    cv2.putText(card, "My Holiday", (20, 55), cv2.FONT_HERSHEY_SIMPLEX, 0.8, 255, 2)
    untitled = mean_quantizer(str(_coded(tmp_path / "untitled.mp4", pictures, 18)), 1 << 24)
    titled = _coded(tmp_path / "titled.mp4", [card] * 30 + pictures, 18)
    assert abs(mean_quantizer(str(titled), 1 << 24) - untitled) <= 1  # it read 9.5: near lossless


def test_a_file_named_like_a_protocol_is_read_as_a_file(tmp_path, monkeypatch):
    """FFmpeg reads "pipe:0" from standard input; the probe opens the file of that name."""
    clip(tmp_path / "x.mp4", codec_options={"crf": "0", "preset": "ultrafast"}).rename(tmp_path / "pipe:0")
    monkeypatch.chdir(tmp_path)
    assert mean_quantizer("pipe:0", 1 << 24) == 0.0


def test_the_lossless_codecs_are_codecs_ffmpeg_calls_lossless_only_and_not_palette_ones():
    kinds = av.codec.codec.Properties
    for name in LOSSLESS_CODECS:
        properties = av.codec.Codec(name, "r").properties
        assert properties & kinds.LOSSLESS.value and not properties & kinds.LOSSY.value, name
    assert {"gif", "qtrle", "h264", "mjpeg", "prores"}.isdisjoint(LOSSLESS_CODECS)


def write_clip(path, pictures, **options):
    """A clip of the given 8-bit grey pictures, as x264 yuv420p."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25, options={"preset": "medium", **options})
        stream.height, stream.width = pictures[0].shape
        stream.pix_fmt = "yuv420p"
        for picture in pictures:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.stack([picture] * 3, -1), format="rgb24")))
        container.mux(stream.encode())
    return path


def test_a_black_intro_does_not_make_a_compressed_file_near_lossless(tmp_path):
    """x264 quantizes flat frames finely whatever the crf: they are passed over."""
    rng = np.random.default_rng(0)
    texture = cv2.GaussianBlur(rng.integers(0, 256, (64, 96)).astype(np.uint8), (0, 0), 1.0)
    moving = [np.roll(texture, 2 * i, axis=1) for i in range(12)]
    plain = write_clip(tmp_path / "plain.mp4", moving, crf="20")
    intro = write_clip(tmp_path / "intro.mp4", [np.zeros((64, 96), np.uint8)] * 8 + moving, crf="20")
    assert mean_quantizer(str(intro), 1 << 24) == pytest.approx(mean_quantizer(str(plain), 1 << 24), abs=3)
    assert mean_quantizer(str(intro), 1 << 24) > NEAR_LOSSLESS_QP
    black = write_clip(tmp_path / "black.mp4", [np.zeros((64, 96), np.uint8)] * 8, crf="20")
    assert mean_quantizer(str(black), 1 << 24) is None  # nothing to tell by


def test_a_cropped_stream_is_read_block_by_block(tmp_path):
    """H.264 coded 64 rows high and cropped to 32: PyAV cannot lay the blocks out as a map."""
    for options, low, high in (({"crf": "0"}, 0, 0), ({"qp": "30"}, 26, 34)):
        path = clip(tmp_path / f"crop{low}.mp4",
                    codec_options={"preset": "ultrafast", "x264-params": "crop-rect=0,0,0,32", **options})
        with av.open(str(path)) as container:
            assert container.streams.video[0].codec_context.height == 32
        assert low <= mean_quantizer(str(path), 1 << 24) <= high


def test_a_source_is_near_lossless_for_a_lossless_codec_or_fine_quantizers(tmp_path):
    cases = {
        clip(tmp_path / "ffv1.mkv", codec="ffv1"): True,
        clip(tmp_path / "crf0.mp4", codec_options={"crf": "0", "preset": "ultrafast"}): True,
        clip(tmp_path / "fine.mp4", codec_options={"qp": str(NEAR_LOSSLESS_QP - 4), "preset": "ultrafast"}): True,
        clip(tmp_path / "crf23.mp4", codec_options={"crf": "23", "preset": "ultrafast"}): False,
        clip(tmp_path / "mpeg4.mp4", codec="mpeg4", codec_options={"qscale": "1"}): False,  # no report: not known
        clip(tmp_path / "rgb8.nut", codec="rawvideo", pix_fmt="rgb8"): False,  # reduced colours: GIF-like
        clip(tmp_path / "monob.mov", codec="png", pix_fmt="monob"): False,
        clip(tmp_path / "rgb24.mov", codec="png", pix_fmt="rgb24"): True,
    }
    for path, expected in cases.items():
        with PyAVSource(str(path), SourceOptions()) as source:
            assert source.near_lossless() is expected, path
            assert len(list(source.items())) == 6  # asking leaves the source unread


def test_a_sources_quantizer_is_read_once_and_leaves_it_unread(tmp_path, monkeypatch):
    import srpipe.video as video

    coarse = clip(tmp_path / "qp40.mp4", codec_options={"qp": "40", "preset": "ultrafast"})
    reads = []
    monkeypatch.setattr(video, "mean_quantizer", lambda *args: reads.append(args) or 38.5)
    with PyAVSource(str(coarse), SourceOptions()) as source:
        assert source.quantizer() == 38.5 and source.near_lossless() is False and source.quantizer() == 38.5
        assert len(reads) == 1 and len(list(source.items())) == 6
    monkeypatch.undo()
    with PyAVSource(str(coarse), SourceOptions()) as source:
        assert 36 <= source.quantizer() <= 42


def test_standard_input_is_not_near_lossless(tmp_path):
    """Standard input is read once, so its quantizers are not read first, and what is piped in
    losslessly is often a lossy file decoded on the way: H.264 at crf 0 and 45 and FFV1 on it keep
    ``espcn``, and every frame arrives."""
    import json

    for path in (clip(tmp_path / "crf0.mkv", codec_options={"crf": "0", "preset": "ultrafast"}),
                 clip(tmp_path / "crf45.mkv", codec_options={"crf": "45", "preset": "ultrafast"}),
                 clip(tmp_path / "ffv1.mkv", codec="ffv1")):
        with open(path, "rb") as stdin:
            run = subprocess.run([sys.executable, "-m", "srpipe", "upscale", "-", "-o", str(tmp_path / "out.mkv"),
                                  "-m", "espcn", "--json", "--overwrite"], stdin=stdin, capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        payload = json.loads(run.stdout.strip().splitlines()[-1])
        assert payload["model"] == "espcn" and payload["frames"] == 6, path


@pytest.mark.parametrize("exact", [False, True])
def test_espcn_on_a_lossless_file_runs_espcn_lossless(tmp_path, cli_run, exact):
    """The real CLI: ``-m espcn`` on x264 crf 0 says which model and weights ran, and on a
    compressed file stays ``espcn``."""
    import json

    lossless = clip(tmp_path / "crf0.mp4", codec_options={"crf": "0", "preset": "ultrafast"})
    compressed = clip(tmp_path / "qp14.mp4", codec_options={"qp": "14", "preset": "ultrafast"})
    assert NEAR_LOSSLESS_QP <= mean_quantizer(str(compressed), 1 << 24) < COARSE_QUANTIZER_KINDS[0][0]
    flags = ["--exact"] if exact else []
    result = cli_run("upscale", lossless, "-m", "espcn", "-o", tmp_path / "a.mp4", "--json", *flags)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    assert payload["model"] == "espcn-lossless" and payload["frames"] == 6
    assert payload["variant"] in ("clean weights", "video weights" if exact else "fast network")
    result = cli_run("upscale", compressed, "-m", "espcn", "-o", tmp_path / "b.mp4", "--json", *flags)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["model"] == "espcn"
    with av.open(str(tmp_path / "a.mp4")) as container:
        frame = next(container.decode(video=0))
        assert (frame.width, frame.height) == (192, 128) and np.ptp(frame.to_ndarray()) > 0


@pytest.mark.parametrize("exact", [False, True])
def test_espcn_on_coarsely_quantized_h264_runs_the_weights_for_its_quantizer(tmp_path, cli_run, exact):
    """The real CLI: ``-m espcn`` on x264 at a quantizer in each band of COARSE_QUANTIZER_KINDS
    runs that band's weights (the int8 graph shipped for them unless --exact), and says so."""
    import json

    from srpipe.default_plugins.espcn import WEIGHT_KINDS

    for (least, kind), upper in zip(COARSE_QUANTIZER_KINDS, [*(qp for qp, _ in COARSE_QUANTIZER_KINDS[1:]), 52]):
        qp = (least + upper) // 2 + 1  # x264 codes its I frames a little finer than --qp
        path = clip(tmp_path / f"qp{qp}.mp4", codec_options={"qp": str(qp), "preset": "ultrafast"})
        assert least <= mean_quantizer(str(path), 1 << 24) < upper, (qp, mean_quantizer(str(path), 1 << 24))
        result = cli_run("upscale", path, "-m", "espcn", "-o", tmp_path / f"up{qp}.mp4", "--json",
                         *(["--exact"] if exact else []))
        assert result.exit_code == 0, result.output
        payload = json.loads(result.stdout.strip().splitlines()[-1])
        assert payload["model"] == WEIGHT_KINDS[kind][0] and payload["frames"] == 6, payload
        assert (payload["backend"] == "openvino-int8") is (not exact and has_fast_int8()), payload


class _FirstFrameFill:
    """Settles, per stream, the mean of the first frame it sees, and fills every output with it:
    a stand-in for an upscaler that picks its weights on a stream's first frame."""

    receptive_radius = 1

    def __init__(self, scale):
        self.scale, self.settled = scale, None

    def for_stream(self):
        return _FirstFrameFill(self.scale)

    def upscale(self, luma, *, bit_depth, full_range):
        if self.settled is None:
            self.settled = int(luma[0].mean())
        return np.full((len(luma), luma.shape[1] * self.scale, luma.shape[2] * self.scale), self.settled, luma.dtype)


def test_a_part_of_a_file_settles_on_the_files_first_frame(tmp_path):
    """``srpipe batch`` upscales a long file in parts (``pts_range``): each part must choose as
    the whole file does, on its first frame, or the weights could switch at a part's start."""
    from srpipe import hookimpl
    from srpipe.models import ModelSpec
    from srpipe.upscaling import upscale
    from srpipe.video import frame_from_av

    class Plugin:
        @hookimpl
        def register_models(self, register):
            register(ModelSpec(name="first", scales=(2,), description="", uses_gpu=False,
                               load=lambda scale, **kw: _FirstFrameFill(scale)))

    pm = make_plugin_manager()
    pm.register(Plugin())
    levels = [40, 40, 40, 200, 200, 200]
    path = tmp_path / "steps.mkv"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for index, level in enumerate(levels):
            frame = av.VideoFrame.from_ndarray(np.full((48, 32), level, np.uint8), format="yuv420p")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    with av.open(str(path)) as container:
        start = [frame.pts for frame in container.decode(video=0)][3]
    for options, expected in ((SourceOptions(), 6), (SourceOptions(pts_range=(start, None)), 3)):
        out = tmp_path / f"out{expected}.mkv"
        upscale(str(path), str(out), model="first", pm=pm, source_options=options,
                sink_options=SinkOptions(codec="ffv1", crf=None, preset=None))
        with av.open(str(out)) as container:
            lumas = [frame_from_av(frame).planes[0] for frame in container.decode(video=0)]
        assert len(lumas) == expected and all(abs(int(y.mean()) - 40) <= 1 for y in lumas)


def test_eval_says_what_ran_on_a_lossless_encode(tmp_path, cli_run):
    """``srpipe eval --video`` scores what upscale runs: at crf 0 the near-lossless stand-in and at
    crf 45 the low-bit-rate one, which it names."""
    import json

    path = clip(tmp_path / "clip.mp4", codec_options={"crf": "0", "preset": "ultrafast"})
    result = cli_run("eval", "-m", "espcn", "--video", path, "--crfs", "0,12,45", "--frames", "2")
    assert result.exit_code == 0, result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("at crf 0, espcn ran as espcn-lossless (") and \
        last.endswith(" weights); at crf 45, espcn ran as espcn-lowbitrate"), last
    result = cli_run("eval", "-m", "espcn", "--video", path, "--crfs", "0,12,45", "--frames", "2", "--json")
    ran = [row["ran"]["espcn"] for row in json.loads(result.stdout)["crfs"]]
    assert ran[0].startswith("espcn-lossless") and ran[1].startswith("espcn (") and ran[2] == "espcn-lowbitrate"


def test_batch_says_which_files_ran_a_stand_in(tmp_path):
    """A folder of a lossless, a coarsely and a finely compressed clip and a picture: the lines and
    --json entries name the stand-in that ran (none for the finely compressed clip: the batch's own
    model ran) and which of its variants, as upscale's summary does (batch said nothing of them)."""
    import json

    import cv2
    import numpy as np

    folder = tmp_path / "in"
    folder.mkdir()
    cv2.imwrite(str(folder / "picture.png"), np.random.default_rng(0).integers(0, 255, (48, 64, 3), np.uint8))
    clip(folder / "lossless.mkv", codec="ffv1")
    clip(folder / "coarse.mp4", codec_options={"qp": "45", "preset": "ultrafast"})
    clip(folder / "lossy.mp4", codec_options={"qp": "14", "preset": "ultrafast"})
    run = subprocess.run([sys.executable, "-m", "srpipe", "batch", str(folder), str(tmp_path / "out"), "-m", "espcn",
                          "--json"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    files = {entry["input"]: entry for entry in json.loads(run.stdout)["files"]}
    assert files["lossless.mkv"]["model"] == "espcn-lossless" and files["lossy.mp4"]["model"] is None
    assert files["coarse.mp4"]["model"] == "espcn-lowbitrate"
    assert files["lossy.mp4"]["variant"] == "fast network"
    assert files["picture.png"]["model"] == "espcn-image" and files["picture.png"]["variant"].endswith(", 8 views")
    lines = run.stderr.replace("\r", "\n").splitlines()
    assert any("done     lossless.mkv" in line and ", espcn-lossless" in line for line in lines), lines
    assert any("done     coarse.mp4" in line and ", espcn-lowbitrate" in line for line in lines), lines
    assert any("done     lossy.mp4" in line and "espcn" not in line and ", fast network)" in line
               for line in lines), lines
    assert any("done     picture.png" in line and ", espcn-image, " in line and " 8 views)" in line
               for line in lines), lines
