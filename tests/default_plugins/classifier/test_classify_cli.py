import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from srpipe.testing import make_test_video

from classifier_data import png_size, write_fake_mnist


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A checkpoint trained for one epoch through 'srpipe train classifier' on fake MNIST files."""
    from click.testing import CliRunner

    from srpipe.cli import build_cli

    root = write_fake_mnist(tmp_path_factory.mktemp("data"))
    out = tmp_path_factory.mktemp("run")
    result = CliRunner().invoke(build_cli(), ["train", "classifier", "--dataset", "mnist", "--root", str(root),
                                              "--epochs", "2", "--batch-size", "32", "--threads", "1",
                                              "-o", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "epoch   2" in result.output and "test accuracy" in result.output
    return root, out / "final.pt"


def test_classify_image_folder_and_notes(cli_run, trained, tmp_path):
    _, weights = trained
    image = np.zeros((60, 100, 3), np.uint8)
    image[28:32, 20:80] = 255  # a horizontal bar, wider than tall, in colour
    cv2.imwrite(str(tmp_path / "bar.png"), image)
    cv2.imwrite(str(tmp_path / "white.jpg"), np.full((28, 28), 250, np.uint8))
    (tmp_path / "notes.txt").write_text("not an image, skipped in a folder")
    result = cli_run("classify", tmp_path, "--model", "mnist", "--weights", weights, "--json", "-k", "2")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["source"].rsplit("/", 1)[1] for r in rows] == ["bar.png", "white.jpg"]
    assert all(len(r["predictions"]) == 2 for r in rows)
    probabilities = [p["probability"] for p in rows[0]["predictions"]]
    assert probabilities == sorted(probabilities, reverse=True) and 0 < sum(probabilities) <= 1 + 1e-6
    assert rows[0]["notes"] == ["resized 100x60 to 28x17", "converted colour to grey",
                                "padded to 28x28 with its background"]
    assert any(n.startswith("inverted") for n in rows[1]["notes"])
    text = cli_run("classify", tmp_path / "bar.png", "--model", "mnist", "--weights", weights)
    assert text.stdout.startswith(f"{tmp_path / 'bar.png'}: ") and "resized 100x60" in text.stderr


def test_classify_names_the_links_to_nothing_it_skips_in_a_folder(trained, tmp_path):
    """A link to nothing among the pictures was passed over without a word, where eval and train
    say that they skip it."""
    _, weights = trained
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((28, 28), np.uint8))
    (tmp_path / "b.png").symlink_to(tmp_path / "moved-away.png")
    done = subprocess.run([sys.executable, "-m", "srpipe", "classify", str(tmp_path), "--model", "mnist",
                           "--weights", str(weights)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert [line.split(":")[0] for line in done.stdout.splitlines()] == [str(tmp_path / "a.png")]
    assert f"Warning: skipped {tmp_path / 'b.png'}: a link to nothing, not an image file" in done.stderr.splitlines()


def test_a_file_of_a_folder_that_cannot_be_read_leaves_the_others_classified(trained, tmp_path):
    """One damaged picture (or a video named .png) in a folder threw away every result before it
    in its batch of 64 and all after it: the command said only what was wrong with that file."""
    _, weights = trained
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((28, 28), np.uint8))
    (tmp_path / "b.png").write_bytes((tmp_path / "a.png").read_bytes()[:40])
    make_test_video(tmp_path / "c.mp4", frames=2).rename(tmp_path / "c.png")
    cv2.imwrite(str(tmp_path / "d.png"), np.zeros((28, 28), np.uint8))
    for json_flag in ([], ["--json"]):
        done = subprocess.run([sys.executable, "-m", "srpipe", "classify", str(tmp_path), "--model", "mnist",
                               "--weights", str(weights), *json_flag], capture_output=True, text=True, timeout=120)
        assert done.returncode == 1
        if json_flag:
            rows = [json.loads(line) for line in done.stdout.splitlines()]
            assert [(r["source"].rsplit("/", 1)[1], "error" in r) for r in rows] == \
                [("a.png", False), ("b.png", True), ("c.png", True), ("d.png", False)]
            assert "is a video" in rows[2]["error"]
        else:
            assert [line.split(":")[0] for line in done.stdout.splitlines()] == \
                [str(tmp_path / "a.png"), str(tmp_path / "d.png")]
        errors = [line for line in done.stderr.splitlines() if line.startswith("Error: ")]
        assert errors[0].startswith(f"Error: cannot read {tmp_path / 'b.png'}")
        assert errors[-1] == (f"Error: 2 of the files in {tmp_path} could not be read (above; the first: "
                              f"{tmp_path / 'b.png'}); the others were classified")


def test_transparency_animation_and_pages_are_not_dropped_without_a_word(cli_run, trained, tmp_path):
    """A dark digit cut out on a transparent sticker became black on black (its alpha dropped); an
    animated PNG gave its first frame only, a multi-page TIFF its first page, without a word."""
    from PIL import Image

    _, weights = trained
    sticker = np.zeros((28, 28, 4), np.uint8)
    sticker[6:22, 12:16] = (0, 0, 0, 255)  # a black bar, opaque; around it transparent black
    cv2.imwrite(str(tmp_path / "sticker.png"), sticker)
    frames = [Image.fromarray(np.full((28, 28), 60 * i, np.uint8)) for i in range(3)]
    frames[0].save(tmp_path / "moving.png", save_all=True, append_images=frames[1:], duration=100)
    frames[0].save(tmp_path / "pages.tif", save_all=True, append_images=frames[1:])
    rows = {}
    for name in ("sticker.png", "moving.png", "pages.tif"):
        result = cli_run("classify", tmp_path / name, "-m", "mnist", "--weights", weights, "--json", "--every", "1")
        assert result.exit_code == 0, result.output
        rows[name] = [json.loads(line) for line in result.stdout.splitlines()]
    assert rows["sticker.png"][0]["notes"][0] == "put its transparent parts on white"
    assert [row["frame"] for row in rows["moving.png"]] == [0, 1, 2]
    assert rows["pages.tif"][0]["notes"][0] == "only its first picture of 3 is classified"


def test_a_picture_is_fitted_before_it_is_padded():
    """A 1x40000 strip was padded to a 40000x40000 square before it was shrunk (gigabytes for a
    40 kB picture; a longer one failed in OpenCV's allocator)."""
    from srpipe.nn.inputs import to_model_input

    array, notes = to_model_input(np.full((1, 40000), 200, np.uint8), (1, 28, 28), dark_background=False)
    assert array.shape == (1, 28, 28) and notes == ["resized 40000x1 to 28x1", "padded to 28x28 with its background"]
    assert np.allclose(array[0, 13], 200 / 255) and np.allclose(array[0, 0], 200 / 255)  # the background is its own
    strip_alpha = np.zeros((1, 40000), np.uint8)  # transparent: put on a background after it is fitted, not before
    _, notes = to_model_input(np.full((1, 40000), 200, np.uint8), (1, 28, 28), dark_background=False, alpha=strip_alpha)
    assert notes[0] == "resized 40000x1 to 28x1" and notes[1].startswith("put its transparent parts on ")
    sticker = np.zeros((28, 28), np.uint8)
    alpha = np.zeros((28, 28), np.uint8)
    alpha[6:22, 12:16] = 255
    array, notes = to_model_input(sticker, (1, 28, 28), dark_background=True, alpha=alpha)
    assert notes[0] == "put its transparent parts on white" and notes[-1].startswith("inverted")
    assert array[0, 10, 13] == 1 and array[0, 0, 0] == 0  # the black bar, now light on black as MNIST draws


def test_classify_video_every_nth_frame_with_timestamps(cli_run, trained, tmp_path):
    _, weights = trained
    clip = make_test_video(tmp_path / "clip.mp4", frames=12, rate=25, audio=False)
    result = cli_run("classify", clip, "--model", "mnist", "--weights", weights, "--every", "5", "--json")
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["frame"] for r in rows] == [0, 5, 10]
    assert [r["time"] for r in rows] == pytest.approx([0.0, 0.2, 0.4])


def test_embed_writes_tsne_and_confusion_pngs(cli_run, trained, tmp_path):
    root, weights = trained
    result = cli_run("classifier", "embed", "--model", "mnist", "--weights", weights, "--root", root,
                     "--samples", "100", "-o", tmp_path / "tsne.png")
    assert result.exit_code == 0, result.output
    assert "test accuracy" in result.stdout
    assert png_size(tmp_path / "tsne.png") == (900, 800)
    assert png_size(tmp_path / "tsne_confusion.png") == (900, 800)


def test_embed_never_writes_over_its_inputs(cli_run, trained, tmp_path):
    root, weights = trained
    data_file = next(path for path in root.rglob("*") if path.is_file())
    kept = {path: path.read_bytes() for path in (weights, data_file)}
    common = ["classifier", "embed", "--model", "mnist", "--weights", weights, "--root", root, "--samples", "100"]
    for extra, message in [
        (["-o", weights], f"output {weights} is the input {weights}, or a link to it; writing it would replace the "
                          "input: choose another name with -o"),
        (["-o", tmp_path / "t.png", "--confusion", data_file],
         f"output {data_file} is the input {data_file}, or a link to it; writing it would replace the input: "
         "choose another name with --confusion"),
        (["-o", tmp_path / "t.png", "--confusion", tmp_path / "t.png"],
         f"-o and --confusion both name {tmp_path / 't.png'}; give the confusion matrix a name of its own"),
    ]:
        result = cli_run(*common, *extra)
        assert result.exit_code == 1 and result.stderr == f"Error: {message}\n", result.output
    assert all(path.read_bytes() == data for path, data in kept.items())
    assert not (tmp_path / "t.png").exists()


def _bad_inputs(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("hello, I am text")
    make_test_video(tmp_path / "real.mp4", frames=3, audio=False)
    (tmp_path / "video.png").write_bytes((tmp_path / "real.mp4").read_bytes())
    ok, png = cv2.imencode(".png", np.full((20, 20), 128, np.uint8))
    (tmp_path / "truncated.png").write_bytes(png.tobytes()[:40])
    (tmp_path / "folder").mkdir()
    from srpipe.testing import make_huge_claim_png

    make_huge_claim_png(tmp_path / "huge.png", 12000, 12000)  # 1.8 GB decoded, where the others refuse 40 MP
    (tmp_path / "huge.y4m").write_bytes(b"YUV4MPEG2 W9000 H9000 F25:1 Ip A1:1 C420jpeg\nFRAME\n" + bytes(5000))
    return {
        "huge.png": "is 12000x12000, larger than srpipe reads",
        "huge.y4m": "has 9000x9000 frames, larger than srpipe reads",
        "missing.png": "does not exist",
        "folder": "holds no images",
        "empty.png": "is empty",
        "text.png": "as an image (corrupt, truncated or not an image)",
        "video.png": "is a video",
        "truncated.png": "as an image (corrupt, truncated or not an image)",
    }


def test_bad_inputs_give_one_error_line(cli_run, tmp_path):
    for name, message in _bad_inputs(tmp_path).items():
        result = cli_run("classify", tmp_path / name, "--model", "mnist")
        assert result.exit_code == 1, name
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
        assert name in lines[0] and message in lines[0], lines[0]


def test_unknown_model_in_a_real_process(tmp_path):
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((28, 28), np.uint8))
    for args in (["--model", "nosuch"], ["--model", "bicubic"]):
        done = subprocess.run([sys.executable, "-m", "srpipe", "classify", str(tmp_path / "a.png"), *args],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 1
        assert done.stderr.strip().splitlines() == [done.stderr.strip()]
        assert "unknown classifier model" in done.stderr and "mnist" in done.stderr
        assert "Traceback" not in done.stderr


def test_the_same_seed_gives_the_same_weights(cli_run, tmp_path):
    import torch

    root = write_fake_mnist(tmp_path / "data")
    weights = []
    for run in ("a", "b"):
        result = cli_run("train", "classifier", "--dataset", "mnist", "--root", root, "--epochs", "1",
                         "--batch-size", "32", "--threads", "1", "--seed", "5", "-o", tmp_path / run)
        assert result.exit_code == 0, result.output
        weights.append(torch.load(tmp_path / run / "final.pt", weights_only=True)["state_dict"])
    assert all(torch.equal(weights[0][name], weights[1][name]) for name in weights[0])


def test_embed_replaces_an_existing_plot_only_with_y(cli_run, trained, tmp_path):
    root, weights = trained
    (tmp_path / "tsne.png").write_bytes(b"mine")
    common = ["classifier", "embed", "--model", "mnist", "--weights", weights, "--root", root, "--samples", "100",
              "-o", tmp_path / "tsne.png"]
    result = cli_run(*common)
    assert result.exit_code == 1 and result.stderr == (
        f"Error: {tmp_path / 'tsne.png'} already exists; pass -y to replace it, or choose another -o\n")
    assert (tmp_path / "tsne.png").read_bytes() == b"mine" and not (tmp_path / "tsne_confusion.png").exists()
    assert cli_run(*common, "-y").exit_code == 0
    assert png_size(tmp_path / "tsne.png") == (900, 800)


def test_embed_refuses_a_fifo_at_a_plots_name_before_drawing_either(cli_run, trained, tmp_path):
    """With -y, the t-SNE plot was written, then PIL failed on the FIFO ('File or stream is not seekable')."""
    root, weights = trained
    os.mkfifo(tmp_path / "tsne_confusion.png")
    result = cli_run("classifier", "embed", "--model", "mnist", "--weights", weights, "--root", root, "--samples",
                     "100", "-o", tmp_path / "tsne.png", "-y")
    assert result.exit_code == 1 and result.stderr == (
        f"Error: {tmp_path / 'tsne_confusion.png'} is a FIFO, not a file a figure may replace; remove it, or choose "
        "another --confusion\n")
    assert [path.name for path in tmp_path.iterdir()] == ["tsne_confusion.png"]
    assert (tmp_path / "tsne_confusion.png").is_fifo()


def test_train_replaces_an_earlier_run_only_with_y_and_never_through_a_link(cli_run, tmp_path):
    """A second run into a run folder silently replaced the first's final.pt, last.pt and
    log.jsonl, and wrote through a link there: into the data set's own file."""
    root = write_fake_mnist(tmp_path / "data", train=64, test=32)
    run = tmp_path / "run"
    common = ["train", "classifier", "--dataset", "mnist", "--root", root, "--epochs", "1", "--batch-size", "32",
              "--threads", "1"]
    assert cli_run(*common, "-o", run).exit_code == 0
    kept = {name: (run / name).read_bytes() for name in ("final.pt", "last.pt", "log.jsonl")}
    result = cli_run(*common, "--seed", "5", "-o", run)
    assert result.exit_code == 1 and result.stderr == (
        f"Error: {run} holds an earlier run (last.pt, final.pt, log.jsonl); pass -y to replace it, --resume to "
        "continue it, or choose another -o\n")
    assert {name: (run / name).read_bytes() for name in kept} == kept
    assert cli_run(*common, "--resume", "-o", run).exit_code == 0  # a finished run: nothing left to train
    assert cli_run(*common, "--seed", "5", "-o", run, "-y").exit_code == 0
    assert (run / "final.pt").read_bytes() != kept["final.pt"]

    data_file = root / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    other = tmp_path / "mine.txt"
    other.write_text("mine")
    data = data_file.read_bytes()
    for name, target, message in [
        ("final.pt", data_file, "is a link; a run writes its own files, never through a link: remove it, or "
                                "choose another -o"),
        ("last.pt", other, "is a link; a run writes its own files, never through a link: remove it, or choose "
                           "another -o"),
        ("log.jsonl", None, f"is the input {data_file}, or a link to it; writing it would replace the input: "
                            "choose another name with -o")]:
        folder = tmp_path / f"linked-{name}"
        folder.mkdir()
        if target is None:
            (folder / name).hardlink_to(data_file)
        else:
            (folder / name).symlink_to(target)
        result = cli_run(*common, "-o", folder, "-y")
        assert result.exit_code == 1 and message in result.stderr and str(folder / name) in result.stderr, \
            result.output
        assert sorted(path.name for path in folder.iterdir()) == [name]
    assert data_file.read_bytes() == data and other.read_text() == "mine"


@pytest.mark.parametrize("field, value, says", [
    ("input", [1, 20000, 20000], "its meta's input is 1x20000x20000, its network takes 1x28x28"),
    ("input", [3, 28, 28], "its meta's input is 3x28x28, its network takes 1x28x28"),
    ("input", "x", "its meta's input is not [channels, height, width]"),
    ("input", [1, 28.0, 28], "its meta's input is not [channels, height, width]"),
    ("classes", ["a", "b"], "its meta names 2 classes, its network has 10 outputs"),
    ("classes", list(range(10)), "its meta's classes are not a list of names"),
    ("dark_background", "yes", "its meta's dark_background or dataset is not a bool or a name"),
])
def test_a_classifier_whose_meta_does_not_fit_its_network_is_refused_in_one_line(cli_run, trained, tmp_path,
                                                                                    field, value, says):
    """A checkpoint's meta was trusted: an input of 20000x20000 allocated gigabytes for each
    picture, two class names for ten outputs gave 'unexpected IndexError', an input of three
    channels or of 'x' an unexpected RuntimeError or ValueError."""
    import torch

    root, weights = trained
    checkpoint = torch.load(weights, weights_only=True)
    checkpoint["meta"][field] = value
    damaged = tmp_path / "damaged.pt"
    torch.save(checkpoint, damaged)
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((28, 28), np.uint8))
    want = (f"Error: {damaged}: {says}; it is damaged or not a classifier of srpipe's; use one written by "
            "'srpipe train classifier'\n")
    for command in (["classify", tmp_path / "a.png"],
                    ["classifier", "embed", "--root", root, "--samples", "100", "-o", tmp_path / "t.png"]):
        result = cli_run(*command, "--model", "mnist", "--weights", damaged)
        assert result.exit_code == 1 and result.stderr == want, result.output
    assert not (tmp_path / "t.png").exists()


def test_embed_refuses_weights_trained_on_another_data_set_than_the_model(cli_run, trained, tmp_path):
    """-m fashion-mnist with MNIST weights reported a test accuracy on MNIST as fashion-mnist's."""
    root, weights = trained
    result = cli_run("classifier", "embed", "--model", "fashion-mnist", "--weights", weights, "--root", root,
                     "--samples", "100", "-o", tmp_path / "tsne.png")
    assert result.exit_code == 1 and result.stderr == (
        f"Error: {weights} was trained on mnist, not on fashion-mnist; give -m mnist, or weights trained on "
        "fashion-mnist\n"), result.output
    assert not (tmp_path / "tsne.png").exists()


def test_a_data_set_that_cannot_be_downloaded_is_named_and_leaves_no_folders(cli_run, tmp_path, monkeypatch):
    """Offline, embed said the test split could not be downloaded, naming the train file that
    failed (torchvision fetches both splits' files), and it and train left DATA/FashionMNIST/raw."""
    from torchvision import datasets

    monkeypatch.setattr(datasets.FashionMNIST, "mirrors", ["http://127.0.0.1:9/"])  # nothing listens there
    (tmp_path / "kept").mkdir()
    (tmp_path / "kept" / "mine").mkdir()
    runs = [(tmp_path / "DATA" / "new", ["classifier", "embed", "-m", "fashion-mnist", "-o", tmp_path / "t.png"]),
            (tmp_path / "kept", ["train", "classifier", "--dataset", "fashion-mnist", "-o", tmp_path / "run"])]
    for root, args in runs:
        result = cli_run(*args, "--root", root)
        assert result.exit_code == 1, result.output
        assert result.stderr.startswith(f"Error: the fashion-mnist data set (its train and test files) is not under "
                                        f"{root} and could not be downloaded (Error downloading train-images-idx3-"
                                        "ubyte.gz: "), result.stderr
        assert "split" not in result.stderr
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["kept", "mine"]  # what was there before, alone
