"""The temporal ESPCN: aligned stacks of earlier frames, one window per stream, training, and
the network run through the real pipeline."""

import json

import cv2
import numpy as np
import pytest
import torch
from test_training import draw_images

from srpipe.default_plugins.espcn.config import ESPCNConfig
from srpipe.default_plugins.espcn.data import PatchSampler
from srpipe.default_plugins.espcn.network import ESPCN
from srpipe.default_plugins.espcn.temporal import TemporalWindow, global_shift, shifted, stack_clip
from srpipe.default_plugins.espcn.training import init_from, main
from srpipe.default_plugins.espcn.upscaler import ESPCNUpscaler
from srpipe.errors import SrpipeError
from srpipe.models import UpscalerTraits, for_stream
from srpipe.nn.checkpoint import make_checkpoint, save_checkpoint
from srpipe.testing import make_test_video
from srpipe.upscaling import reuses_tiles
from srpipe.video import plane_view


def texture(h=220, w=300, seed=0):
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.uniform(16, 235, (h, w)), (5, 5), 1.2).round().astype(np.uint8)


def pan(steps, h=120, w=160, seed=0):
    """Frames of a window moving by ``steps[i]`` = (dy, dx) whole pixels before frame i + 1."""
    big = texture(seed=seed)
    y, x, frames = 40, 60, []
    for dy, dx in [(0, 0), *steps]:
        y, x = y - dy, x - dx  # the picture moves by (dy, dx): the window by the opposite
        frames.append(big[y:y + h, x:x + w])
    return np.stack(frames)


def temporal_network(frames=3, seed=0, scale=2):
    torch.manual_seed(seed)
    net = ESPCN(ESPCNConfig(scale=scale, features=(8, 8), kernels=(3, 3, 3), activation="prelu", residual=True,
                            frames=frames))
    with torch.no_grad():
        for p in net.parameters():  # weights well away from zero, so every input frame counts
            p.add_(torch.randn_like(p) * 0.05)
    return net.eval()


@pytest.mark.parametrize("shift", [(0, 0), (3, -2), (-5, 7), (1, 0)])
def test_global_shift_finds_how_the_picture_moved(shift):
    previous, current = pan([shift])
    assert global_shift(previous, current) == shift
    aligned = shifted(previous, *shift)
    assert (aligned[10:-10, 10:-10] == current[10:-10, 10:-10]).all()


def test_global_shift_gives_up_on_frames_too_small_to_tell():
    a, b = pan([(2, 2)], h=12, w=40)
    assert global_shift(a, b) == (0, 0)


def test_stacks_hold_the_earlier_frames_aligned_oldest_first():
    frames = pan([(2, -3), (1, 4), (-2, 2)])
    stacks = stack_clip(frames, 3)
    assert stacks.shape == (4, 3, 120, 160)
    for i, stack in enumerate(stacks):
        assert (stack[2] == frames[i]).all()
        for k in range(2):  # away from the edges, where what came in is replicated
            assert (stack[k][12:-12, 12:-12] == frames[i][12:-12, 12:-12]).all(), (i, k)
    # where there is no earlier frame, the oldest there is stands in
    assert (stacks[0] == frames[0]).all()
    assert (stacks[1][0] == stacks[1][1]).all()


def test_the_window_carries_across_calls_and_restarts_on_a_new_size():
    frames = pan([(2, -3), (1, 4), (-2, 2), (0, 1)])
    window = TemporalWindow(3)
    parts = np.concatenate([window.stacks(frames[:2]), window.stacks(frames[2:])])
    assert (parts == stack_clip(frames, 3)).all()
    other = texture(64, 96, seed=5)[None]
    assert (window.stacks(other)[0] == other[0]).all()  # nothing of the other size is used


def test_a_temporal_network_started_from_a_single_frame_one_computes_what_it_does_on_a_still(tmp_path):
    single = temporal_network(frames=1)
    save_checkpoint(make_checkpoint(single), tmp_path / "single.pt")
    temporal = ESPCN(ESPCNConfig(**{**single.config.__dict__, "frames": 3})).eval()
    init_from(temporal, str(tmp_path / "single.pt"))
    still = torch.rand(2, 1, 20, 24).repeat(1, 3, 1, 1)  # a picture that does not change
    with torch.no_grad():
        assert torch.allclose(temporal(still), single(still[:, 2:]), atol=1e-5)
        moving = torch.rand(2, 3, 20, 24)
        assert not torch.allclose(temporal(moving), single(moving[:, 2:]), atol=1e-3)
    assert temporal.macs_per_lr_pixel() - single.macs_per_lr_pixel() == 2 * 9 * 8


def test_each_stream_has_its_own_earlier_frames_and_batches_do_not_matter():
    upscaler = ESPCNUpscaler(make_checkpoint(temporal_network()), "cpu", batch_size=2)
    clip_a, clip_b = pan([(1, 1), (2, 0), (0, 2)]), pan([(0, -1), (1, 2), (2, 2)], seed=3)
    alone = for_stream(upscaler, "model 'espcn'").upscale(clip_b, bit_depth=8, full_range=False)
    stream = for_stream(upscaler, "model 'espcn'")
    stream.upscale(clip_a, bit_depth=8, full_range=False)
    after_a = stream.upscale(clip_b, bit_depth=8, full_range=False)
    assert not (after_a[0] == alone[0]).all()  # the same stream goes on from clip_a's last frames
    fresh = for_stream(upscaler, "model 'espcn'")
    assert (fresh.upscale(clip_a, bit_depth=8, full_range=False)[-1] ==
            for_stream(upscaler, "model 'espcn'").upscale(clip_a, bit_depth=8, full_range=False)[-1]).all()
    split = for_stream(upscaler, "model 'espcn'")
    parts = np.concatenate([split.upscale(clip_b[:1], bit_depth=8, full_range=False),
                            split.upscale(clip_b[1:], bit_depth=8, full_range=False)])
    assert (parts == alone).all()
    # the network's own output on the stacks
    with torch.no_grad():
        x = torch.from_numpy(stack_clip(clip_b, 3)).float() / 255
        expected = (upscaler.network(x)[:, 0] * 255).round().clamp(0, 255).numpy()
    assert np.abs(alone.astype(int) - expected).max() <= 1


def test_a_temporal_upscaler_is_not_run_by_tile_reuse():
    upscaler = ESPCNUpscaler(make_checkpoint(temporal_network()), "cpu")
    traits = UpscalerTraits.of(upscaler)
    assert traits.receptive_radius is None and traits.flat_path is None and traits.for_stream is not None
    assert not reuses_tiles(upscaler, "cpu", exact=False)
    single = ESPCNUpscaler(make_checkpoint(temporal_network(frames=1)), "cpu")
    assert for_stream(single, "model 'espcn'") is single and reuses_tiles(single, "cpu", exact=False)


def test_srpipe_upscale_runs_a_temporal_checkpoint_on_video_and_on_an_image(tmp_path, cli_run):
    weights = tmp_path / "t.pt"
    save_checkpoint(make_checkpoint(temporal_network()), weights)
    clip = make_test_video(tmp_path / "in.mp4", width=64, height=48, frames=7)
    outputs = []
    for batch in (1, 4):
        out = tmp_path / f"out{batch}.mkv"
        result = cli_run("upscale", clip, "-m", "espcn", "--weights", weights, "-o", out, "--codec", "ffv1",
                         "--batch-size", batch, "--backend", "torch", "--json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["frames"] == 7
        outputs.append(out)
    import av

    def lumas(path):
        with av.open(str(path)) as c:
            return np.stack([plane_view(f.planes[0], np.dtype(np.uint8)).copy() for f in c.decode(video=0)])

    first, second = lumas(outputs[0]), lumas(outputs[1])
    assert first.shape == (7, 96, 128) and (first == second).all()
    image = tmp_path / "still.png"
    cv2.imwrite(str(image), cv2.cvtColor(texture(40, 56), cv2.COLOR_GRAY2BGR))
    result = cli_run("upscale", image, "-m", "espcn", "--weights", weights, "-o", tmp_path / "big.png")
    assert result.exit_code == 0, result.output
    assert cv2.imread(str(tmp_path / "big.png")).shape[:2] == (80, 112)


def test_training_misaligns_earlier_frames_only_as_often_as_asked():
    frame = torch.from_numpy(texture(60, 60))
    pairs = [(torch.stack([frame] * 3).numpy(), np.zeros((120, 120), np.float32))]
    torch.manual_seed(0)
    aligned, _ = PatchSampler(pairs, 2, 16, 64, 1).batch()
    assert aligned.shape == (64, 3, 16, 16) and (aligned[:, :2] == aligned[:, 2:]).all()
    moved, _ = PatchSampler(pairs, 2, 16, 64, 1, mismatch=1.0).batch()
    differs = (moved[:, :2] != moved[:, 2:]).flatten(2).any(-1)
    assert differs.float().mean() > 0.9


def test_training_a_temporal_network_on_clips(tmp_path):
    data = draw_images(tmp_path / "data", 5, 4)
    out = tmp_path / "run"
    main(["--scale", "2", "--features", "16,16", "--kernels", "3,3,3", "--activation", "prelu", "--residual",
          "--patch", "12", "--batch", "16", "--lr", "5e-3", "--epochs", "4", "--steps-per-epoch", "40",
          "--degrade", "video", "--variants", "2", "--clip-frames", "4", "--crf-range", "20,30",
          "--frames", "3", "--mismatch", "0.2", "--holdout", "1", "--val", "--train", str(data),
          "--out", str(out), "--cache-dir", str(tmp_path / "cache"), "--export", str(tmp_path / "w.pt")])
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert log[-1]["train_loss"] < log[0]["train_loss"]
    assert "holdout-crf23/psnr" in log[-1]
    result = json.loads((out / "result.json").read_text())
    assert result["mismatch"] == 0.2
    upscaler = ESPCNUpscaler(str(tmp_path / "w.pt"), "cpu")
    assert upscaler.config.frames == 3 and upscaler.network.body[0].in_channels == 3


def test_a_temporal_network_needs_clips_to_train_on(tmp_path):
    data = draw_images(tmp_path / "data", 2, 4)
    with pytest.raises(SrpipeError, match="--degrade video"):
        main(["--scale", "2", "--frames", "3", "--epochs", "1", "--train", str(data), "--val",
              "--out", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache")])


def test_srpipe_train_espcn_trains_a_temporal_network(tmp_path, cli_run, monkeypatch):
    import srpipe.default_plugins.espcn.training

    monkeypatch.setattr(srpipe.default_plugins.espcn.training, "CACHE", tmp_path / "cache")
    data = draw_images(tmp_path / "data", 3, 7)
    weights = tmp_path / "temporal.pt"
    done = cli_run("train", "espcn", "--data", data, "-s", "2", "--epochs", "1", "--steps-per-epoch", "2",
                   "--batch-size", "4", "--degrade", "video", "--temporal", "3", "-o", weights)
    assert done.exit_code == 0, done.output
    upscaler = ESPCNUpscaler(str(weights), "cpu")
    assert upscaler.config.frames == 3 and upscaler.meta["mismatch"] == 0.2
    done = cli_run("train", "espcn", "--data", data, "-s", "2", "--temporal", "3", "-o", weights)
    assert done.exit_code == 2 and "--temporal trains on clips: add --degrade video" in done.stderr


def test_live_gives_a_temporal_model_a_fresh_window_each_time_it_is_switched_to():
    from srpipe.default_plugins.live.upscalers import UpscalerCycle
    from srpipe.models import ModelRegistry, ModelSpec

    loaded = ESPCNUpscaler(make_checkpoint(temporal_network()), "cpu")
    registry = ModelRegistry()
    registry.register(ModelSpec("temporal", (2,), "a temporal network", lambda scale, device, weights: loaded),
                      plugin="test")
    registry.register(ModelSpec("other", (2,), "another", lambda scale, device, weights: loaded), plugin="test")
    cycle = UpscalerCycle(registry, "temporal", 2, "cpu")
    clip_a, clip_b = pan([(1, 1), (2, 0)]), pan([(0, -1), (1, 2)], seed=3)
    cycle.upscaler.upscale(clip_a, bit_depth=8, full_range=False)
    cycle.next()
    cycle.next()
    assert cycle.name == "temporal"
    after_switch = cycle.upscaler.upscale(clip_b[:1], bit_depth=8, full_range=False)
    fresh = for_stream(loaded, "model 'espcn'").upscale(clip_b[:1], bit_depth=8, full_range=False)
    assert (after_switch == fresh).all()  # nothing from before the switch


def test_a_temporal_network_refuses_a_single_frame_start_of_another_first_layer(tmp_path):
    save_checkpoint(make_checkpoint(temporal_network(frames=1)), tmp_path / "narrow.pt")
    wider = ESPCN(ESPCNConfig(scale=2, features=(16, 8), kernels=(3, 3, 3), activation="prelu", residual=True,
                              frames=3))
    with pytest.raises(SrpipeError, match="another first layer"):
        init_from(wider, str(tmp_path / "narrow.pt"), grow=True)
