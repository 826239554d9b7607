import cv2
import numpy as np
import torch

from srpipe.default_plugins.espcn.data import PatchSampler, eval_batches, make_pairs
from srpipe.default_plugins.espcn.evaluate import evaluate_folder
from srpipe.default_plugins.espcn.network import ESPCN, ESPCNConfig
from srpipe.default_plugins.espcn.task import SRTask
from srpipe.default_plugins.espcn.training import main
from srpipe.default_plugins.espcn.upscaler import ESPCNUpscaler
from srpipe.images import image_paths
from srpipe.nn.checkpoint import make_checkpoint
from srpipe.nn.trainer import TrainConfig, Trainer


def draw_images(folder, n, seed):
    """Sums of random gratings below the LR Nyquist frequency, which bicubic blurs."""
    folder.mkdir()
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:64, 0:64]
    for k in range(n):
        img = np.full((64, 64), 128.0)
        for _ in range(3):
            f, angle, phase = rng.uniform(0.08, 0.22), rng.uniform(0, np.pi), rng.uniform(0, 2 * np.pi)
            img += 35 * np.cos(2 * np.pi * f * (xx * np.cos(angle) + yy * np.sin(angle)) + phase)
        cv2.imwrite(str(folder / f"{k}.png"), np.clip(img, 0, 255).astype(np.uint8))
    return folder


def test_short_training_lowers_loss_and_beats_bicubic(tmp_path):
    train, held_out = draw_images(tmp_path / "train", 6, 0), draw_images(tmp_path / "test", 3, 1)
    torch.manual_seed(0)
    net = ESPCN(ESPCNConfig(scale=2, features=(16, 8, 8, 16), kernels=(5, 1, 3, 1, 3),
                            activation="prelu", residual=True))
    sampler = PatchSampler(make_pairs(image_paths(train), 2), 2, patch=16, batch_size=16, steps=100)
    cfg = TrainConfig(epochs=3, lr=5e-3, device="cpu", out_dir=str(tmp_path / "run"))
    history = Trainer(net, SRTask(2), sampler, {"held_out": eval_batches(held_out, 2)}, cfg).fit()
    assert history[-1]["train_loss"] < 0.6 * history[0]["train_loss"]
    up = ESPCNUpscaler(make_checkpoint(net))
    mean = evaluate_folder(held_out, 2, lambda x: up.upscale(x, bit_depth=8, full_range=False))["mean"]
    assert mean["psnr"] > mean["bicubic_psnr"] + 3
    # trainer and evaluation agree (the upscaler adds OpenCV's bicubic, the trainer torch's: float rounding apart)
    assert abs(mean["psnr"] - history[-1]["held_out/psnr"]) < 1e-3


def test_training_command_exports_a_scored_checkpoint(tmp_path):
    data = draw_images(tmp_path / "data", 2, 2)
    out, weights = tmp_path / "run", tmp_path / "w.pt"
    main(["--scale", "2", "--features", "8", "--kernels", "3,3", "--patch", "8", "--batch", "4",
          "--epochs", "2", "--steps-per-epoch", "3", "--train", str(data), "--val", str(data),
          "--out", str(out), "--cache-dir", str(tmp_path / "cache"), "--export", str(weights)])
    up = ESPCNUpscaler(weights)
    assert up.scale == 2 and up.meta["epochs"] == 2 and "--scale 2" in up.meta["command"]
    assert set(up.meta["scores"]["data"]) == {"psnr", "ssim", "bicubic_psnr", "bicubic_ssim"}
    assert (out / "result.json").exists() and (out / "final.pt").exists()


def test_the_training_command_refuses_what_it_cannot_train_or_resume(tmp_path):
    import pytest

    from srpipe.errors import SrpipeError

    data, other = draw_images(tmp_path / "data", 2, 2), draw_images(tmp_path / "other", 2, 3)
    out = tmp_path / "run"

    def run(*extra, train=data):
        main(["--scale", "2", "--features", "8", "--kernels", "3,3", "--patch", "8", "--batch", "4",
              "--epochs", "2", "--steps-per-epoch", "2", "--train", str(train), "--val", "--out", str(out),
              "--cache-dir", str(tmp_path / "cache"), *extra])

    with pytest.raises(SrpipeError, match="^no such network: .*odd"):
        run("--kernels", "4,3")
    with pytest.raises(SrpipeError, match="^--expand trains 3x3 and larger convolutions as branches, and this "
                                          "network has none"):
        run("--kernels", "1,1", "--expand")
    run("--stop-after", "1")
    with pytest.raises(SrpipeError, match=r"trains another network than this one: padding_mode zeros \(now reflect\)"):
        run("--resume", "--padding-mode", "reflect")
    with pytest.raises(SrpipeError, match=r"was started with data \['data'\] \(now \['other'\]\), another data "
                                         r"folders, another data files;"):
        run("--resume", train=other)
    with pytest.raises(SrpipeError, match=r"was started with another teacher, teacher_weight None \(now 0.5\);"):
        run("--resume", "--teacher", str(out / "last.pt"))
    run("--resume")
    assert torch.load(out / "last.pt", weights_only=True)["train"]["epoch"] == 2


def test_the_training_script_refuses_in_a_line(tmp_path):
    import subprocess
    import sys

    from conftest import REPO

    done = subprocess.run([sys.executable, str(REPO / "scripts" / "train_espcn.py"), "--scale", "2", "--features", "8",
                           "--kernels", "4,3", "--train", str(draw_images(tmp_path / "data", 1, 2)), "--val",
                           "--out", str(tmp_path / "run")], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.startswith("error: no such network: ") and len(done.stderr.splitlines()) == 1, done.stderr
