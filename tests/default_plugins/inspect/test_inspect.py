import json
import os
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch import nn

import srpipe.plugins
from srpipe import hookimpl
from srpipe.default_plugins.classifier.networks import LeNet, LeNetConfig, SmallCNN, SmallCNNConfig
from srpipe.default_plugins.espcn.network import ESPCN, ESPCNConfig
from srpipe.default_plugins.inspect.kernels import KERNELS, apply_kernel
from srpipe.default_plugins.inspect.layers import conv_output_size, summarize
from srpipe.models import ModelSpec
from srpipe.testing import make_plugin_manager

from conftest import run_srpipe


def png_size(path) -> tuple[int, int]:
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def rows(summary, *types):
    return [layer for layer in summary.layers if layer.type in types]


def test_small_cnn_by_hand():
    s = summarize(SmallCNN(SmallCNNConfig()), (1, 28, 28))
    convs, pools, linear = rows(s, "Conv2d"), rows(s, "MaxPool2d"), rows(s, "Linear")
    assert [(layer.weights, layer.biases) for layer in convs + linear] == [(400, 16), (12800, 32), (15680, 10)]
    assert [layer.output_shape for layer in convs + pools] == [(16, 28, 28), (32, 14, 14), (16, 14, 14), (32, 7, 7)]
    # r: 5 -> pool 5+1*1=6 (jump 2) -> 6+4*2=14 -> pool 14+1*2=16
    assert ([layer.receptive_field for layer in (convs[0], pools[0], convs[1], pools[1])]
            == [(5, 5), (6, 6), (14, 14), (16, 16)])
    assert [layer.macs for layer in convs + linear] == [28 * 28 * 16 * 25, 14 * 14 * 32 * 16 * 25, 1568 * 10]
    assert (s.parameters, s.weights, s.biases) == (28938, 28880, 58)
    assert all(layer.shape_checked for layer in s.layers)


def test_lenet_by_hand():
    s = summarize(LeNet(LeNetConfig()), (3, 32, 32))
    assert ([layer.output_shape for layer in rows(s, "Conv2d", "MaxPool2d")]
            == [(6, 28, 28), (6, 14, 14), (16, 10, 10), (16, 5, 5)])
    assert [layer.weights + layer.biases for layer in rows(s, "Conv2d", "Linear")] == [456, 2416, 48120, 10164, 850]
    assert [layer.receptive_field for layer in rows(s, "Conv2d", "MaxPool2d")] == [(5, 5), (6, 6), (14, 14), (16, 16)]
    assert s.macs == 28 * 28 * 6 * 75 + 10 * 10 * 16 * 150 + 400 * 120 + 120 * 84 + 84 * 10
    assert s.parameters == 62006


def test_stride_padding_dilation_against_formula_and_forward():
    net = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.Conv2d(4, 4, 3, dilation=2, padding=2),
                        nn.Conv2d(4, 2, (5, 3), stride=(1, 3)), nn.MaxPool2d(2, stride=2, ceil_mode=True))
    s = summarize(net, (1, 21, 30))
    assert conv_output_size(21, 3, 2, 1) == 11 and conv_output_size(30, 3, 2, 1) == 15
    # ceil_mode: 7 -> 4
    assert [layer.output_shape for layer in s.layers] == [(4, 11, 15), (4, 11, 15), (2, 7, 5), (2, 4, 3)]
    assert all(layer.shape_checked for layer in s.layers)
    # r: 3; dilated k_eff 5 after stride 2: 3+4*2=11; (5,3) kernel: 11+4*2=19, 11+2*2=15
    # 2x2 pool after strides (2, 6): 19+1*2=21, 15+1*6=21
    assert [layer.receptive_field for layer in s.layers] == [(3, 3), (11, 11), (19, 15), (21, 21)]


def test_espcn_geometry():
    s = summarize(ESPCN(ESPCNConfig(scale=2)), (1, 20, 24))
    assert s.layers[-1].output_shape == (1, 40, 48) and s.layers[-1].receptive_field == (9, 9)
    assert s.parameters == sum(p.numel() for p in ESPCN(ESPCNConfig(scale=2)).parameters())


class ToyUpscaler(nn.Module):
    def __init__(self, scale):
        super().__init__()
        self.conv = nn.Conv2d(1, scale * scale, 3, padding=1, dilation=1)
        self.shuffle = nn.PixelShuffle(scale)

    def forward(self, x):
        return self.shuffle(self.conv(x))


class ToyPlugin:
    @hookimpl
    def register_models(self, register):
        register(ModelSpec(name="toy", scales=(2, 3), description="toy", load=lambda **kw: None,
                           network=ToyUpscaler))


@pytest.fixture
def toy_pm(monkeypatch):
    pm = make_plugin_manager()
    pm.register(ToyPlugin(), name="toy-plugin")
    monkeypatch.setattr(srpipe.plugins, "get_plugin_manager", lambda: pm)
    return pm


def test_inspect_third_party_model_json(cli_run, toy_pm):
    result = cli_run("inspect", "toy-x3", "--input-size", "1,10,12", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["model"] == "toy-x3" and data["parameters"] == 9 * 9 + 9
    assert [layer["output_shape"] for layer in data["layers"]] == [[9, 10, 12], [1, 30, 36]]
    assert all(layer["shape_checked"] for layer in data["layers"])
    text = cli_run("inspect", "toy", "--scale", "2")
    assert "1x64x64" in text.stdout and "matches the forward pass" in text.stdout


def test_inspect_plots_are_pngs(cli_run, toy_pm, tmp_path):
    image = tmp_path / "photo.png"
    cv2.imwrite(str(image), np.random.default_rng(0).integers(0, 255, (30, 40, 3), dtype=np.uint8))
    result = cli_run("inspect", "toy-x2", "--filters", "--feature-maps", image, "--receptive-field",
                     "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["features_00_conv.png", "filters_00_conv.png", "receptive_fields.png"]
    assert png_size(tmp_path / "out" / "receptive_fields.png") == (420, 480)
    for name in written:
        width, height = png_size(tmp_path / "out" / name)
        assert width >= 400 and height >= 400



def test_inspect_refuses_what_it_cannot_write_before_printing_the_table(cli_run, toy_pm, tmp_path):
    """The table came first, then the error, as if it had worked: now nothing is printed."""
    result = cli_run("inspect", "toy-x2", "--filters")
    assert result.exit_code == 2 and result.stdout == "", result.output
    assert "Usage:" in result.stderr and "give a folder with -o DIR" in result.stderr
    assert cli_run("inspect", "toy-x2", "--filters", "-o", tmp_path / "out").exit_code == 0
    again = cli_run("inspect", "toy-x2", "--filters", "-o", tmp_path / "out")
    assert again.exit_code == 1 and again.stdout == "", again.output
    assert again.stderr == (f"Error: {tmp_path / 'out' / 'filters_00_conv.png'} already exists; pass -y to replace "
                            "it, or choose another -o\n")

def test_feature_maps_of_a_large_picture_are_drawn_from_it_shrunk(cli_run, toy_pm, tmp_path):
    image = tmp_path / "large.png"
    cv2.imwrite(str(image), np.zeros((1500, 2000, 3), np.uint8))  # 4 KB: drawn whole, its maps took gigabytes
    result = cli_run("inspect", "toy-x2", "--feature-maps", image, "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert f"note: {image}: resized 2000x1500 to 128x96" in result.stderr
    assert (tmp_path / "out" / "features_00_conv.png").exists()


def test_inspect_errors(cli_run, toy_pm):
    for args, message in [(["nosuch"], "unknown model 'nosuch'"),
                          (["toy-x2", "--input-size", "3,10,12"],
                           "the network cannot take an input of 3x10x12 (C x H x W): Given groups=1"),
                          # this module imported srpipe.default_plugins.espcn.network, which must not hide
                          # the plugin's own function of that name
                          (["espcn-x2", "--input-size", "3,64,64"],
                           "the network cannot take an input of 3x64x64 (C x H x W): Given groups=1"),
                          (["bicubic"], "has no torch network")]:
        result = cli_run("inspect", *args)
        assert result.exit_code == 1 and result.output.startswith("Error: ") and message in result.output, args


def test_classic_kernels(cli_run, tmp_path):
    image = np.zeros((40, 50), np.uint8)
    image[:, 25:] = 200
    cv2.imwrite(str(tmp_path / "step.png"), image)
    pixels = image[..., None].astype(np.float32) / 255
    sobel_x = apply_kernel(pixels, KERNELS["sobel-x"])[..., 0]
    assert np.abs(sobel_x[:, :23]).max() == 0 and sobel_x[:, 24:26].min() > 0
    assert np.allclose(apply_kernel(pixels, KERNELS["box-blur"])[5:-5, 5:20], 0)
    reference = torch.nn.functional.conv2d(torch.from_numpy(pixels[..., 0])[None, None],
                                           torch.tensor(KERNELS["laplacian-edge"], dtype=torch.float32)[None, None])
    assert np.allclose(apply_kernel(pixels, KERNELS["laplacian-edge"])[1:-1, 1:-1, 0], reference[0, 0].numpy())
    result = cli_run("inspect", "kernels", tmp_path / "step.png", "-o", tmp_path / "k")
    assert result.exit_code == 0, result.output
    assert sorted(p.stem for p in (tmp_path / "k").iterdir()) == sorted(KERNELS)
    assert all(png_size(p)[0] == 1100 for p in (tmp_path / "k").iterdir())


def test_a_photo_is_shown_at_what_a_panel_shows_and_a_huge_one_refused(cli_run, tmp_path, monkeypatch):
    """A 3000x3000 picture took 3.5 GB and 17 s (filtered copies at full size, 400 bytes a pixel,
    for a panel 550 pixels wide), and a 13300x13300 one was killed for memory."""
    from srpipe.default_plugins.inspect import kernels
    from srpipe.testing import make_huge_claim_png

    cv2.imwrite(str(tmp_path / "photo.png"), np.full((1500, 2100, 3), 90, np.uint8))
    filtered = []
    apply = kernels.apply_kernel
    monkeypatch.setattr(kernels, "apply_kernel", lambda image, kernel: filtered.append(image.shape) or
                        apply(image, kernel))
    result = cli_run("inspect", "kernels", tmp_path / "photo.png", "-o", tmp_path / "k")
    assert result.exit_code == 0, result.output
    assert set(filtered) == {(731, 1024, 3)}
    make_huge_claim_png(tmp_path / "huge.png", 13300, 13300)
    result = cli_run("inspect", "kernels", tmp_path / "huge.png", "-o", tmp_path / "h")
    assert result.exit_code == 1
    assert result.stderr == (f"Error: {tmp_path / 'huge.png'} is 13300x13300, larger than srpipe reads; crop or "
                             "shrink it\n")
    assert not (tmp_path / "h").exists()


def test_inspect_replaces_existing_pngs_only_with_y(cli_run, tmp_path):
    """Its PNGs replaced files of the same names without a word, and it had no -y."""
    cv2.imwrite(str(tmp_path / "in.png"), np.full((20, 30), 90, np.uint8))
    (tmp_path / "k").mkdir()
    (tmp_path / "k" / "sharpen.png").write_bytes(b"mine")
    result = cli_run("inspect", "kernels", tmp_path / "in.png", "-o", tmp_path / "k")
    assert result.exit_code == 1 and result.stderr == (
        f"Error: {tmp_path / 'k' / 'sharpen.png'} already exists; pass -y to replace it, or choose another -o\n")
    assert sorted(p.name for p in (tmp_path / "k").iterdir()) == ["sharpen.png"]  # checked before any is drawn
    assert (tmp_path / "k" / "sharpen.png").read_bytes() == b"mine"
    assert cli_run("inspect", "kernels", tmp_path / "in.png", "-o", tmp_path / "k", "-y").exit_code == 0
    assert png_size(tmp_path / "k" / "sharpen.png")[0] == 1100
    (tmp_path / "rf").mkdir()
    (tmp_path / "rf" / "receptive_fields.png").write_bytes(b"mine")
    result = cli_run("inspect", "espcn-x2", "--receptive-field", "-o", tmp_path / "rf")
    assert result.exit_code == 1 and (tmp_path / "rf" / "receptive_fields.png").read_bytes() == b"mine"


def special_file(path, kind):
    """A FIFO or a folder made at ``path``, where a figure would be written."""
    path.parent.mkdir(exist_ok=True)
    if kind == "FIFO":
        os.mkfifo(path)
    else:
        path.mkdir()
    return path


@pytest.mark.parametrize("kind", ["FIFO", "folder"])
@pytest.mark.parametrize("command,name", [
    (["kernels", "IMAGE"], "sobel-x.png"),
    (["espcn-x2", "--filters"], "filters_03_body-6.png"),
    (["espcn-x2", "--filters", "--feature-maps", "IMAGE", "--receptive-field"], "receptive_fields.png"),
])
def test_a_special_file_at_a_figures_name_is_refused_before_any_figure_is_drawn(tmp_path, kind, command, name):
    """With -y, the figures before it were written, then PIL failed on the FIFO ('File or stream is
    not seekable'), or the rename on the folder; now every figure's name is checked first."""
    image = tmp_path / "in.png"
    cv2.imwrite(str(image), np.full((24, 32), 90, np.uint8))  # grey, as espcn takes it: no note
    there = special_file(tmp_path / "out" / name, kind)
    args = [image if arg == "IMAGE" else arg for arg in command]
    done = run_srpipe("inspect", *args, "-o", tmp_path / "out", "-y", timeout=120)
    assert done.returncode == 1 and done.stdout == b"", done.stderr.decode()
    assert done.stderr.decode() == (f"Error: {there} is a {kind}, not a file a figure may replace; remove it, or "
                                    "choose another -o\n")
    assert [path.name for path in (tmp_path / "out").iterdir()] == [name]  # no figure, nor a partial one
    assert there.is_fifo() if kind == "FIFO" else there.is_dir()


def test_a_figure_refused_without_y_leaves_none_of_the_others(cli_run, tmp_path):
    """inspect MODEL checked each figure only as it was drawn: the filters before one already there were written."""
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "filters_03_body-6.png").write_bytes(b"mine")
    result = cli_run("inspect", "espcn-x2", "--filters", "-o", tmp_path / "out")
    assert result.exit_code == 1 and result.stderr == (f"Error: {tmp_path / 'out' / 'filters_03_body-6.png'} already "
                                                       "exists; pass -y to replace it, or choose another -o\n")
    assert [path.name for path in (tmp_path / "out").iterdir()] == ["filters_03_body-6.png"]


@pytest.mark.parametrize("model, parameters", [("mnist", 28938), ("fashion-mnist", 83466)])
def test_inspect_shipped_classifiers(cli_run, model, parameters):
    data = json.loads(cli_run("inspect", model, "--json").stdout)
    assert data["input_shape"] == [1, 28, 28] and data["parameters"] == parameters
    assert data["layers"][-1]["output_shape"] == [10] and all(layer["shape_checked"] for layer in data["layers"])


def test_a_model_named_with_its_scale_is_not_named_twice(cli_run):
    assert json.loads(cli_run("inspect", "espcn-x2", "--json").stdout)["model"] == "espcn-x2"  # was espcn-x2-x2
    assert json.loads(cli_run("inspect", "espcn", "-s", "3", "--json").stdout)["model"] == "espcn-x3"


def test_feature_maps_of_a_large_input_take_little_more_memory_than_the_forward_pass(tmp_path):
    """Every conv activation was kept whole and drawn at full size: 11.9 GB for --input-size
    1,1024,1024 of espcn-x2 (about 3 GB at 512). What a figure shows is kept, shrunk, as each layer
    runs: beyond the table (which runs on no data), the forward pass's own activations (64 channels
    of 512x512 in float32 are 64 MiB each)."""
    from conftest import run_srpipe_measured

    image = tmp_path / "photo.png"
    cv2.imwrite(str(image), np.random.default_rng(0).integers(0, 255, (300, 400, 3), dtype=np.uint8))
    size = ["--input-size", "1,512,512"]
    done, summary = run_srpipe_measured("inspect", "espcn-x2", *size)
    assert done.returncode == 0, done.stderr.decode()
    done, maps = run_srpipe_measured("inspect", "espcn-x2", *size, "--feature-maps", image, "-o", tmp_path / "out")
    assert done.returncode == 0, done.stderr.decode()
    assert maps < summary + (512 << 20), (maps, summary)
    assert len([png_size(path) for path in (tmp_path / "out").iterdir()]) == 8  # a figure per conv layer


def test_the_table_of_a_large_input_takes_no_memory_for_activations():
    """The table's forward pass ran on real data: 1.6 GB for --input-size 1,1024,1024 of
    espcn-x2, tens of GB at the 4096 a side the option takes. It follows shapes on torch's meta
    device."""
    from conftest import run_srpipe_measured

    small, small_peak = run_srpipe_measured("inspect", "espcn-x2", "--input-size", "1,64,64")
    large, large_peak = run_srpipe_measured("inspect", "espcn-x2", "--input-size", "1,1024,1024")
    assert small.returncode == large.returncode == 0, large.stderr.decode()
    assert large_peak < small_peak + (64 << 20), (large_peak, small_peak)
    assert "matches the forward pass at every layer" in large.stdout.decode()
