"""The ESPCN models through the CLI: shipped weights, user weights, refused checkpoints."""

import os
import pickle

import numpy as np
import pytest
import torch

from srpipe.default_plugins.espcn.network import ESPCN, ESPCNConfig
from srpipe.default_plugins.espcn.shipped import shipped_weights
from srpipe.nn.checkpoint import load_checkpoint, make_checkpoint, save_checkpoint
from srpipe.testing import make_test_video

from conftest import run_srpipe
from media import video_info


@pytest.mark.parametrize("model, scale", [("espcn", 2), ("espcn-x3", 3), ("espcn-x4", 4)])
def test_shipped_models_upscale_a_clip(tmp_path, model, scale):
    assert shipped_weights(scale).exists()
    clip = make_test_video(tmp_path / "clip.mp4", frames=3)
    done = run_srpipe("upscale", clip, "-m", model, "-q")
    assert done.returncode == 0, done.stderr.decode()
    info = video_info(tmp_path / f"clip_x{scale}.mp4")
    assert (info["width"], info["height"], len(info["times"])) == (64 * scale, 48 * scale, 3)


def test_user_weights_set_the_scale(cli_run, tmp_path):
    net = ESPCN(ESPCNConfig(scale=3, features=(4,), kernels=(3, 3)))
    save_checkpoint(make_checkpoint(net, {}), tmp_path / "mine.pt")
    clip = make_test_video(tmp_path / "clip.mp4", frames=2, audio=False)
    done = cli_run("upscale", clip, "-m", "espcn", "--weights", tmp_path / "mine.pt", "-q")
    assert done.exit_code == 0, done.stderr
    assert video_info(tmp_path / "clip_x3.mp4")["width"] == 192
    done = cli_run("upscale", clip, "-m", "espcn", "--weights", tmp_path / "mine.pt", "-s", "2")
    assert done.exit_code == 1 and "is an x3 model, and x2 was asked for" in done.stderr


class Exploit:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("kind", ["module", "exploit", "garbage"])
def test_unsafe_or_broken_weights_are_one_line_errors(tmp_path, kind):
    weights, marker = tmp_path / "w.pt", tmp_path / "pwned"
    if kind == "module":
        torch.save(ESPCN(ESPCNConfig(scale=2)), weights)
    elif kind == "exploit":
        weights.write_bytes(pickle.dumps({"format": "srpipe-checkpoint/1", "state_dict": Exploit(marker)}))
    else:
        weights.write_bytes(np.arange(1000, dtype=np.uint8).tobytes())
    clip = make_test_video(tmp_path / "clip.mp4", frames=2, audio=False)
    done = run_srpipe("upscale", clip, "-m", "espcn", "--weights", weights)
    assert done.returncode == 1
    lines = done.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "w.pt" in lines[0], lines
    assert not marker.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "w.pt"]


def test_eval_scores_the_shipped_model_above_bicubic(tmp_path):
    import cv2

    from srpipe.testing import test_pattern

    folder = tmp_path / "images"
    folder.mkdir()
    for index in range(2):
        image = cv2.GaussianBlur(test_pattern(96, 72, index), (3, 3), 0.8)
        cv2.imwrite(str(folder / f"{index}.png"), image)
    done = run_srpipe("eval", "-m", "espcn-x2", "--data", folder, "--json")
    assert done.returncode == 0, done.stderr.decode()
    import json

    mean = json.loads(done.stdout)["mean"]
    assert mean["psnr"] > mean["bicubic_psnr"]


def test_train_command_writes_weights_that_upscale(tmp_path):
    import cv2

    from srpipe.testing import test_pattern

    for name, count in (("train", 3), ("val", 1)):
        (tmp_path / name).mkdir()
        for index in range(count):
            cv2.imwrite(str(tmp_path / name / f"{index}.png"), test_pattern(64, 64, index + 5 * (name == "val")))
    weights = tmp_path / "mine.pt"
    done = run_srpipe("train", "espcn", "--data", tmp_path / "train", "--val", tmp_path / "val", "-s", "2",
                      "--epochs", "1", "--steps-per-epoch", "3", "--batch-size", "4", "-o", weights,
                      env={"XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert done.returncode == 0, done.stderr.decode()
    assert (tmp_path / "mine.pt.run" / "last.pt").exists()
    clip = make_test_video(tmp_path / "clip.mp4", frames=2, audio=False)
    done = run_srpipe("upscale", clip, "-m", "espcn", "--weights", weights, "-q")
    assert done.returncode == 0, done.stderr.decode()
    assert video_info(tmp_path / "clip_x2.mp4")["width"] == 128


def test_train_command_expand_trains_branches_and_writes_the_plain_network(tmp_path, cli_run, monkeypatch):
    import cv2

    import srpipe.default_plugins.espcn.training
    from srpipe.default_plugins.espcn.upscaler import ESPCNUpscaler
    from srpipe.testing import test_pattern

    monkeypatch.setattr(srpipe.default_plugins.espcn.training, "CACHE", tmp_path / "cache")
    (tmp_path / "train").mkdir()
    for index in range(3):
        cv2.imwrite(str(tmp_path / "train" / f"{index}.png"), test_pattern(64, 64, index))
    weights = tmp_path / "mine.pt"
    done = cli_run("train", "espcn", "--data", tmp_path / "train", "-s", "2", "--expand", "--epochs", "2",
                   "--steps-per-epoch", "2", "--batch-size", "4", "-o", weights)
    assert done.exit_code == 0, done.output
    plain = load_checkpoint(weights)
    assert plain["meta"]["expanded"] is True
    assert not any("spread" in name for name in plain["state_dict"])  # saved as the one kernel per layer
    run = load_checkpoint(tmp_path / "mine.pt.run" / "last.pt")
    assert any("spread" in name for name in run["train"]["expanded_state_dict"])  # the branches, to resume
    for name, tensor in plain["state_dict"].items():  # the exported network is the run's, folded
        torch.testing.assert_close(tensor, run["state_dict"][name], rtol=0, atol=0)
    upscaler = ESPCNUpscaler(str(weights), "cpu")
    assert upscaler.config.features == (64, 24, 24, 24, 24, 24, 64)  # --arch shipped, as without --expand


def test_train_command_starts_an_unfinished_run_afresh_only_with_overwrite(tmp_path, cli_run, monkeypatch):
    import cv2

    import srpipe.default_plugins.espcn.training
    from srpipe.default_plugins.espcn.training import main
    from srpipe.testing import test_pattern

    monkeypatch.setattr(srpipe.default_plugins.espcn.training, "CACHE", tmp_path / "cache")
    (tmp_path / "train").mkdir()
    for index in range(2):
        cv2.imwrite(str(tmp_path / "train" / f"{index}.png"), test_pattern(64, 64, index))
    weights, run = tmp_path / "mine.pt", tmp_path / "mine.pt.run"
    main(["--scale", "2", "--features", "8", "--kernels", "3,3", "--epochs", "3", "--steps-per-epoch", "1",
          "--stop-after", "1", "--train", str(tmp_path / "train"), "--val", "--out", str(run)])  # stopped, unfinished
    args = ("train", "espcn", "--data", tmp_path / "train", "-s", "2", "--epochs", "1", "--steps-per-epoch", "1",
            "--batch-size", "4", "-o", weights)
    refused = cli_run(*args)
    assert refused.exit_code == 1 and ("holds an earlier run (last.pt, log.jsonl); pass -y to replace it, --resume "
                                       "to continue it") in refused.output
    assert load_checkpoint(run / "last.pt")["train"]["epoch"] == 1  # kept
    with pytest.warns(UserWarning, match="the unfinished run in .*mine.pt.run is started afresh"):
        done = cli_run(*args, "-y")
    assert done.exit_code == 0, done.output
    assert load_checkpoint(weights)["config"]["features"] == (64, 24, 24, 24, 24, 24, 64)  # this run's network


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_shipped_weights_beat_bicubic_on_the_bundled_clip(scale):
    """A frame of samples/bigbuckbunny.mp4, shrunk with MATLAB bicubic and upscaled back."""
    import av

    from srpipe.default_plugins.espcn.evaluate import bicubic_upscale, make_lr
    from srpipe.default_plugins.espcn.metrics import psnr
    from srpipe.default_plugins.espcn.upscaler import ESPCNUpscaler
    from srpipe.video import frame_from_av

    from conftest import REPO

    with av.open(str(REPO / "samples" / "bigbuckbunny.mp4")) as container:
        frame = next(f for i, f in enumerate(container.decode(video=0)) if i == 100)
    hr = frame_from_av(frame).planes[0][120:480, 300:780].astype(np.float64)  # 360x480, divisible by 2, 3, 4
    lr = make_lr(hr, scale)
    espcn = ESPCNUpscaler(shipped_weights(scale)).upscale(lr[None], bit_depth=8, full_range=False)[0]
    gain = psnr(espcn, hr, scale) - psnr(bicubic_upscale(lr, scale), hr, scale)
    assert gain > 0.3, gain


def test_video_weights_beat_bicubic_on_a_compressed_frame_of_the_bundled_clip():
    """Frames of samples/bigbuckbunny.mp4 shrunk x2 as ffmpeg does, encoded by x264 at crf 23;
    a P/B frame upscaled by the shipped video weights, by bicubic (the pipeline's) and by the
    clean weights."""
    import av

    from srpipe.default_plugins.espcn.degrade import downscale, x264_roundtrip
    from srpipe.default_plugins.espcn.metrics import psnr
    from srpipe.default_plugins.espcn.shipped import default_weights
    from srpipe.default_plugins.espcn.upscaler import ESPCNUpscaler
    from srpipe.resize import PlaneScaler
    from srpipe.video import frame_from_av

    from conftest import REPO

    assert default_weights(2) == shipped_weights(2, "video") and default_weights(2).exists()
    with av.open(str(REPO / "samples" / "bigbuckbunny.mp4")) as container:
        frames = [frame_from_av(f).planes[0][120:480, 300:780] for i, f in
                  zip(range(104), container.decode(video=0)) if i >= 96]
    lr = x264_roundtrip(np.stack([downscale(f, 2, "swscale-bicubic") for f in frames]), 23)
    hr, lr = frames[4].astype(np.float64), lr[4]
    bicubic = np.empty(hr.shape, np.uint8)
    PlaneScaler((240, 180), (480, 360), 8, "bicubic").resize(lr, bicubic)
    scores = {kind: psnr(ESPCNUpscaler(shipped_weights(2, kind)).upscale(lr[None], bit_depth=8, full_range=False)[0],
                         hr, 2) - psnr(bicubic, hr, 2) for kind in ("video", "clean")}
    assert scores["video"] > 0.3 and scores["video"] > scores["clean"] + 0.1, scores


def test_models_list_tells_the_video_and_clean_weights_apart(cli_run):
    import json

    from srpipe.default_plugins.espcn.shipped import default_weights
    from srpipe.plugins import collect_models, get_plugin_manager

    rows = {m["name"]: m for m in json.loads(cli_run("models", "list", "--json").stdout)}
    assert {"espcn", "espcn-x2", "espcn-clean", "espcn-clean-x2", "espcn-clean-x3", "espcn-clean-x4"} <= set(rows)
    assert "compressed" in rows["espcn"]["description"] and "clean" in rows["espcn-clean"]["description"]
    models = collect_models(get_plugin_manager())
    video, clean = models.get("espcn").load(scale=2, exact=True), models.get("espcn-clean").load(scale=2)
    assert video.meta["degrade"] == "video" and "degrade" not in clean.meta
    assert models.get("espcn-x2").load().meta == video.meta  # espcn-x2 names the video weights
    for scale in (3, 4):
        assert default_weights(scale) == shipped_weights(scale, "video")
        expected = load_checkpoint(default_weights(scale))["meta"]
        assert models.get("espcn").load(scale=scale).meta == models.get(f"espcn-x{scale}").load().meta == expected
        assert models.get(f"espcn-clean-x{scale}").load().meta == load_checkpoint(shipped_weights(scale))["meta"]


def test_espcn_runs_the_image_weights_on_a_picture_and_the_video_weights_on_video(cli_run, tmp_path):
    """An image upscaled with -m espcn gets espcn-image (shipped at x2, x3 and x4); video keeps espcn."""
    import json

    from srpipe.testing import make_test_image

    image = make_test_image(tmp_path / "photo.png", width=24, height=16)
    for scale in (2, 3, 4):
        assert shipped_weights(scale, "image").exists()
        done = cli_run("upscale", image, "-m", "espcn", "-s", scale, "-o", tmp_path / f"big{scale}.png", "--json")
        assert done.exit_code == 0, done.stderr
        summary = json.loads(done.stdout)
        assert summary["model"] == "espcn-image" and summary["scale"] == scale and summary["encoder"] == "png"
    clip = make_test_video(tmp_path / "clip.mp4", frames=2, audio=False)
    done = cli_run("upscale", clip, "-m", "espcn", "--json")
    assert json.loads(done.stdout)["model"] == "espcn"
    listing = cli_run("models", "list").stdout
    assert "espcn-image" in listing and "what 'espcn' runs on an image" in listing


def test_espcn_runs_its_fast_network_on_the_cpu_and_the_video_weights_under_exact():
    from srpipe.default_plugins.espcn.shipped import fast_weights
    from srpipe.plugins import collect_models, get_plugin_manager

    models = collect_models(get_plugin_manager())
    espcn = models.get("espcn")
    fast = espcn.load(scale=2, device="cpu", weights=None, exact=False)
    assert fast.variant == "fast network" and fast.config.features == (32,) * 5
    assert fast.config.receptive_radius() == 7  # tile reuse reads the halos it read before
    exact = espcn.load(scale=2, device="cpu", weights=None, exact=True)
    assert exact.variant is None and exact.config.features == (64, 40, 40, 40, 40, 40, 64)
    assert fast.macs_per_lr_pixel <= 0.6 * exact.macs_per_lr_pixel
    teacher = load_checkpoint(fast_weights(2))["meta"]["teacher"]
    assert teacher["path"].endswith("espcn_video_x2.pt")
    # the user's weights are never swapped, -m espcn-x2 names the video weights, x3 has no fast network
    mine = espcn.load(scale=2, device="cpu", weights=str(shipped_weights(2, "video")), exact=False)
    fixed = models.get("espcn-x2").load(scale=2, device="cpu", weights=None)
    assert mine.variant is fixed.variant is None
    assert mine.config.features == fixed.config.features == exact.config.features
    assert espcn.load(scale=3, device="cpu", weights=None, exact=False).variant is None


def test_upscale_says_the_fast_network_ran_and_exact_leaves_it_out(tmp_path):
    import json

    clip = make_test_video(tmp_path / "clip.mp4", frames=3, audio=False)
    done = run_srpipe("upscale", clip, "-m", "espcn", "-o", tmp_path / "fast.mp4", "--json", "-q")
    assert done.returncode == 0, done.stderr.decode()
    assert json.loads(done.stdout)["variant"] == "fast network"
    done = run_srpipe("upscale", clip, "-m", "espcn", "--exact", "-o", tmp_path / "exact.mp4", "--json", "-q")
    assert done.returncode == 0, done.stderr.decode()
    assert json.loads(done.stdout).get("variant") is None
    done = run_srpipe("upscale", clip, "-m", "espcn", "-o", tmp_path / "fast2.mp4")
    assert "espcn (fast network) x2 on cpu" in done.stderr.decode()


@pytest.mark.parametrize("ending", [b"", b"PK\x05\x06" + bytes(18)])  # no zip; an empty zip's end record
def test_a_large_file_that_is_no_checkpoint_is_refused_without_being_read_whole(tmp_path, ending):
    """A --weights file was hashed (for the backend's cache) as one read of all its bytes: a 3 GB
    junk file took 3.2 GB of memory before it was refused. One that is no zip, as torch.save
    writes, is refused unhashed; another is hashed a block at a time."""
    pytest.importorskip("openvino")  # the backend whose prepared networks are cached by the file's digest
    import cv2

    from conftest import run_srpipe_measured

    size = 1 << 30
    junk, image = tmp_path / "junk.pt", tmp_path / "photo.png"
    with open(junk, "wb") as file:  # sparse: no disk taken
        file.write(b"PK\x03\x04 not a checkpoint")
        file.truncate(size - len(ending))
        file.seek(0, os.SEEK_END)
        file.write(ending)
    cv2.imwrite(str(image), np.full((24, 24, 3), 128, np.uint8))
    done, peak = run_srpipe_measured("upscale", image, "-m", "espcn", "--backend", "openvino", "--weights", junk)
    assert done.returncode == 1
    assert done.stderr.decode() == (f"Error: {junk} is corrupt or not a checkpoint file; it was not loaded; use a "
                                    "checkpoint written by 'srpipe train'\n")
    assert peak < size, peak


@pytest.mark.parametrize("command", [["upscale", "{image}", "-m", "espcn"],
                                     ["eval", "-m", "espcn-x2", "--data", "{folder}"],
                                     ["classify", "{image}", "-m", "mnist"]])
def test_a_fifo_or_device_as_weights_is_named_for_what_it_is(tmp_path, command):
    """A FIFO or device given as --weights was reported as a weights file that does not exist (or,
    for classify, waited for a writer, or read /dev/zero without end)."""
    import subprocess
    import sys

    import cv2

    folder = tmp_path / "images"
    folder.mkdir()
    cv2.imwrite(str(folder / "photo.png"), np.full((24, 24, 3), 128, np.uint8))
    os.mkfifo(tmp_path / "f.pt")
    (tmp_path / "zero.pt").symlink_to("/dev/zero")
    for weights, kind in ((tmp_path / "f.pt", "FIFO"), ("/dev/zero", "character device"),
                          (tmp_path / "zero.pt", "character device")):
        args = [a.format(image=folder / "photo.png", folder=folder) for a in command]
        done = subprocess.run([sys.executable, "-m", "srpipe", *args, "--weights", str(weights)],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 1
        assert done.stderr == f"Error: --weights {weights} is a {kind}, not a file; give a checkpoint file\n"
