"""`srpipe eval --video`: shrink, x264 at each crf, upscale through the pipeline, score every frame."""

import json
import re

import numpy as np
import pytest

from srpipe.default_plugins.espcn.degrade import swscale_resize
from srpipe.default_plugins.espcn.metrics import psnr
from srpipe.default_plugins.espcn.video_eval import luma_frames, shrink_and_encode
from srpipe.resize import PlaneScaler
from srpipe.testing import damage_video, make_huge_claim_h264, make_test_video

from conftest import run_srpipe
from media import make_wmv


def test_eval_video_scores_bicubic_as_a_direct_computation(tmp_path, cli_run):
    clip = make_test_video(tmp_path / "clip.mp4", width=70, height=54, frames=6, audio=False)
    done = cli_run("eval", "-m", "espcn", "--video", clip, "--crfs", "0,30", "--json")
    report = json.loads(done.output)
    assert [row["crf"] for row in report["crfs"]] == [0, 30] and report["scale"] == 2
    original = list(luma_frames(clip))
    for row in report["crfs"]:
        assert row["frames"] == 6 and set(row["psnr"]) == {"bicubic", "espcn", "espcn --exact"}  # --score both
        lr_clip = tmp_path / f"lr{row['crf']}.mp4"
        assert shrink_and_encode(clip, lr_clip, 2, row["crf"]) == (68, 52)  # cropped to fit 4:2:0 at x2
        lr = list(luma_frames(lr_clip))
        if row["crf"] == 0:  # lossless: exactly ffmpeg's bicubic shrink of the (cropped) luma
            assert all((a == swscale_resize(o[:52, :68], 34, 26)).all() for a, o in zip(lr, original))
        scaler = PlaneScaler((34, 26), (68, 52), 8, "bicubic")
        direct = []
        for a, o in zip(lr, original):
            up = np.empty((52, 68), np.uint8)
            scaler.resize(a, up)
            direct.append(psnr(up, o[:52, :68], 2))
        assert row["psnr"]["bicubic"] == pytest.approx(np.mean(direct), abs=1e-9)
    assert report["crfs"][0]["psnr"]["bicubic"] > report["crfs"][1]["psnr"]["bicubic"]


def test_eval_video_refuses_bad_input(tmp_path, cli_run):
    folder = tmp_path / "images"
    folder.mkdir()
    done = cli_run("eval", "-m", "bicubic", "--video", tmp_path / "missing.mp4")
    assert done.exit_code == 1 and "does not exist" in done.output
    done = cli_run("eval", "-m", "bicubic", "--video", tmp_path / "missing.mp4", "--data", folder)
    assert done.exit_code == 2 and "Usage:" in done.output and "either --data" in done.output
    clip = make_test_video(tmp_path / "clip.mp4", frames=2, audio=False)
    done = cli_run("eval", "-m", "bicubic", "--video", clip, "--crfs", "0,x")
    assert done.exit_code == 2 and "Usage:" in done.output and "is not comma-separated integers" in done.output


def test_eval_video_tells_frames_the_decoder_mended(tmp_path):
    """A clip whose frames H.264 concealed (damaged, filled in from around them) is scored as it
    shows, as upscale reads it, and said so."""
    clip = make_test_video(tmp_path / "clip.mp4", frames=12, audio=False)
    bad = damage_video(clip, tmp_path / "bad.mp4", frames=(3, 7))
    done = run_srpipe("eval", "-m", "bicubic", "--video", bad, "--crfs", "23")
    assert done.returncode == 0, done.stderr.decode()
    told = rb"Warning: [12] frames? of \S*bad.mp4 came out of the decoder damaged \(the first at 0\.\d+ s\).*scored as"
    assert re.search(told, done.stderr), done.stderr.decode()
    done = run_srpipe("eval", "-m", "bicubic", "--video", clip, "--crfs", "23")
    assert done.returncode == 0 and b"decoder damaged" not in done.stderr, done.stderr.decode()


def test_eval_video_takes_a_wmv_whose_sound_runs_on_for_whole(tmp_path):
    """ASF states one end for the whole file: a picture that ends before its sound is no clip cut short."""
    clip = make_wmv(tmp_path / "clip.wmv", 30, 30, 3.0)
    done = run_srpipe("eval", "-m", "bicubic", "--video", clip, "--crfs", "0")
    assert done.returncode == 0 and b"cut short" not in done.stderr, done.stderr.decode()


def test_eval_video_tells_a_clip_cut_short(tmp_path):
    """A WebM cut short (a download that stopped) was scored on what decoded without a word, where
    upscale refuses it as damaged."""
    clip = make_test_video(tmp_path / "clip.webm", codec="libvpx-vp9", width=128, height=96, frames=50, audio=False,
                           codec_options={"deadline": "realtime", "cpu-used": "8"})
    data = clip.read_bytes()
    cut = tmp_path / "cut.webm"
    cut.write_bytes(data[:len(data) * 2 // 3])
    refused = run_srpipe("upscale", cut, "-m", "bicubic", "-o", tmp_path / "out.mkv")
    lost = re.search(rb"its container lost about (\d+) video frames", refused.stderr)
    assert refused.returncode == 1 and lost, refused.stderr.decode()
    done = run_srpipe("eval", "-m", "bicubic", "--video", cut, "--crfs", "23")
    assert done.returncode == 0, done.stderr.decode()
    assert (f"Warning: {cut} ends about {int(lost[1])} frames before the end its header states (cut short?): the "
            "frames that decode are scored; check the clip").encode() in done.stderr, done.stderr.decode()
    done = run_srpipe("eval", "-m", "bicubic", "--video", clip, "--crfs", "23")
    assert done.returncode == 0 and b"Warning" not in done.stderr, done.stderr.decode()


def _write(path, frames, pix_fmt, codec="ffv1"):
    """``frames`` (RGB arrays) as a clip of ``pix_fmt``, converted by FFmpeg's format filter."""
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], pix_fmt
        graph = av.filter.Graph()
        chain = [graph.add_buffer(width=stream.width, height=stream.height, format="rgb24", time_base="1/25"),
                 graph.add("format", pix_fmt), graph.add("buffersink")]
        for a, b in zip(chain, chain[1:]):
            a.link_to(b)
        graph.configure()
        for index, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = index
            graph.push(frame)
            out.mux(stream.encode(graph.pull()))
        out.mux(stream.encode())
    return path


def _pictures(count=3, width=96, height=64):
    rng = np.random.default_rng(5)
    y, x = np.mgrid[:height, :width]
    return [np.clip(np.stack([128 + 90 * np.sin(x / (3 + i) + c) * np.cos(y / 5) for c in range(3)], -1)
                    + rng.normal(0, 4, (height, width, 3)), 0, 255).astype(np.uint8) for i in range(count)]


def test_a_gray_or_rgb_clip_is_scored_against_the_luma_its_small_copy_was_made_from(tmp_path, cli_run):
    """Shrinking makes a clip 8-bit 4:2:0 in limited range; an RGB (or gray) clip's own luma is in
    full range, so the reference is the clip made 4:2:0 by the same filters: the same pictures
    stored as RGB or as 4:2:0 score alike."""
    pictures = _pictures()
    scores = {}
    for name, pix_fmt in (("gray.mkv", "gray"), ("rgb.mkv", "bgr0"), ("yuv.mkv", "yuv420p")):
        done = cli_run("eval", "-m", "bicubic", "--video", _write(tmp_path / name, pictures, pix_fmt), "--crfs", "0",
                       "--json")
        assert done.exit_code == 0, done.output
        scores[name] = json.loads(done.output)["crfs"][0]["psnr"]["bicubic"]
    assert scores["gray.mkv"] == pytest.approx(scores["yuv.mkv"], abs=0.1)  # on its own luma: 7 dB lower here
    assert scores["rgb.mkv"] == pytest.approx(scores["yuv.mkv"], abs=0.1)


def test_an_exact_frame_counts_as_the_cap_and_json_stays_standard(tmp_path, cli_run):
    """A black intro comes out exact: PSNR is capped there, so the clip's mean stays a number."""
    pictures = _pictures()
    pictures[0][:] = 0
    clip = _write(tmp_path / "fade.mkv", pictures, "yuv420p")
    done = cli_run("eval", "-m", "bicubic", "--video", clip, "--crfs", "0", "--json")
    assert done.exit_code == 0, done.output
    report = json.loads(done.output, parse_constant=lambda name: pytest.fail(f"{name} in the JSON"))
    assert 20 < report["crfs"][0]["psnr"]["bicubic"] < 100


def test_clips_that_cannot_be_scored_are_named(tmp_path, cli_run):
    clip = make_test_video(tmp_path / "clip.mkv", frames=4, audio=False)
    cut = tmp_path / "header-only.mkv"
    cut.write_bytes(clip.read_bytes()[:300])
    grows = tmp_path / "grows.ts"  # MPEG-TS joined end to end, as a recording whose size changes
    grows.write_bytes(b"".join(make_test_video(tmp_path / f"{w}.ts", width=w, height=h, frames=3, audio=False)
                               .read_bytes() for w, h in ((64, 48), (96, 64))))
    deepens = tmp_path / "deepens.ts"  # 8-bit, then 10-bit: read as 8-bit, its frames would score garbage
    deepens.write_bytes(b"".join(make_test_video(tmp_path / f"{pix_fmt}.ts", pix_fmt=pix_fmt, codec="libx264",
                                                 frames=3, audio=False).read_bytes()
                                 for pix_fmt in ("yuv420p", "yuv420p10le")))
    damaged = tmp_path / "damaged.ts"  # its first packets zeroed: the decoder fails on what follows
    data = bytearray(make_test_video(tmp_path / "whole.ts", frames=3, audio=False).read_bytes())
    data[188 * 3:188 * 4] = bytes(188)
    damaged.write_bytes(bytes(data))
    huge = make_huge_claim_h264(tmp_path / "huge.h264")  # a few KB claiming 16000x16000: refused before decoding
    tiny = make_test_video(tmp_path / "tiny.mkv", codec="ffv1", width=6, height=6, frames=2, audio=False)
    for path, message in ((cut, "has no frame that decodes|cannot be decoded|cannot be opened"),
                          (damaged, "cannot be decoded|has no frame that decodes"),
                          (grows, "changes from 64x48 yuv420p frames to 96x64 yuv420p"),
                          (deepens, "changes from 64x48 yuv420p frames to 64x48 yuv420p10le"),
                          (huge, "has 16000x16000 frames \\(256.0 megapixels\\), over the limit"),
                          (tiny, "is 6x6, too small to score at x2: it needs 8x8 pixels or more")):
        done = cli_run("eval", "-m", "bicubic", "--video", path, "--crfs", "23")
        assert done.exit_code == 1
        assert re.fullmatch(rf"Error: {re.escape(str(path))} ({message}).*\n", done.output), done.output
