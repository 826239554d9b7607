"""What `srpipe eval` (and the other research commands) make of hostile paths: special files in
the --data folder are skipped with a warning instead of hanging, and missing folders, non-videos
and unusable output folders are one-line errors, not bare errno texts (issue #27)."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from srpipe.testing import make_test_image, make_test_video

from conftest import run_srpipe
from media import audio_only_file


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "set"
    folder.mkdir()
    make_test_image(folder / "a.png", width=40, height=32)
    make_test_image(folder / "c.png", width=36, height=30)
    return folder


def eval_data(folder, *args):
    """``srpipe eval --data FOLDER`` in a subprocess with a timeout: a FIFO that hangs it fails
    the test instead of stalling the suite."""
    return subprocess.run([sys.executable, "-m", "srpipe", "eval", "-m", "bicubic", "--data", str(folder), *args],
                          capture_output=True, text=True, timeout=120)


def test_special_files_in_the_data_folder_are_skipped_with_a_warning(images):
    os.mkfifo(images / "b-fifo.png")  # opening it for reading waits for a writer that never comes
    (images / "d-missing.png").symlink_to(images / "nowhere.png")
    (images / "e-folder.png").mkdir()  # a folder: passed over, as batch does
    listener = socket.socket(socket.AF_UNIX)
    try:
        listener.bind(str(images / "f-socket.png"))
        done = eval_data(images, "--json")
    finally:
        listener.close()
    assert done.returncode == 0, done.stderr
    assert [row["name"] for row in json.loads(done.stdout)["images"]] == ["a.png", "c.png"]
    warnings = done.stderr.splitlines()
    assert f"Warning: skipped {images / 'b-fifo.png'}: a FIFO, not an image file" in warnings
    assert f"Warning: skipped {images / 'd-missing.png'}: a link to nothing, not an image file" in warnings
    assert f"Warning: skipped {images / 'f-socket.png'}: a socket, not an image file" in warnings
    assert len(warnings) == 3  # nothing about the folder



def test_each_image_file_counts_once_and_jpegs_other_names_count(images):
    """--data scored a link or a hard link to a picture as often as it was named (the mean of a,
    a, a and c), where --video counts each clip once; a .jfif, which batch takes, was passed over;
    and two columns were both headed bicubic."""
    (images / "b.png").symlink_to("a.png")
    os.link(images / "a.png", images / "d.png")
    make_test_image(images / "e.jpg", width=36, height=30).rename(images / "e.jfif")
    done = eval_data(images, "--json")
    assert done.returncode == 0, done.stderr
    assert [row["name"] for row in json.loads(done.stdout)["images"]] == ["a.png", "c.png", "e.jfif"]
    assert sorted(done.stderr.splitlines()) == [f"Warning: skipped {images / name}: the same file as {images / 'a.png'}"
                                                for name in ("b.png", "d.png")]
    table = eval_data(images).stdout.splitlines()
    assert table[0].split() == ["image", "bicubic", "PSNR/SSIM", "MATLAB", "bicubic", "PSNR/SSIM"]
    assert [line.split()[0] for line in table[1:]] == ["a.png", "c.png", "e.jfif", "mean"]

def test_a_folder_of_nothing_but_special_files_has_no_images(images):
    for name in ("a.png", "c.png"):
        (images / name).unlink()
    os.mkfifo(images / "b.png")
    done = eval_data(images)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [f"Warning: skipped {images / 'b.png'}: a FIFO, not an image file",
                                        f"Error: no images in {images}; give a folder of PNG/BMP/JPEG/TIFF images"]


@pytest.mark.parametrize("args, message", [
    (["--data", "{tmp}/nodir"], "Error: image folder {tmp}/nodir does not exist; give a folder of PNG/BMP/JPEG/TIFF"),
    (["--data", "{tmp}/fifo"], "Error: image folder {tmp}/fifo is not a folder; give a folder of PNG/BMP/JPEG/TIFF"),
    (["--video", "{tmp}/fifo"], "Error: {tmp}/fifo is a FIFO, not a file; give a video file"),
    (["--video", "{tmp}/text.mp4"], "Error: {tmp}/text.mp4 cannot be opened as a video (Invalid data found when"),
    (["--video", "{tmp}/still.png"], None),  # a still image is a one-frame video: scored, as before
])
def test_eval_paths_get_one_line_errors(cli_run, tmp_path, args, message):
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "text.mp4").write_text("not a video\n")
    make_test_image(tmp_path / "still.png", width=40, height=32)
    crfs = ["--crfs", "0"] if args[0] == "--video" else []
    done = cli_run("eval", "-m", "bicubic", *[a.format(tmp=tmp_path) for a in args], *crfs)
    if message is None:
        assert done.exit_code == 0, done.output
        return
    assert done.exit_code == 1 and done.stderr.startswith(message.format(tmp=tmp_path)), done.stderr
    assert done.stderr.count("\n") == 1 and "Errno" not in done.stderr


@pytest.mark.parametrize("frames", ["0", "-3"])
def test_eval_frames_counts_from_one(cli_run, tmp_path, frames):
    clip = make_test_video(tmp_path / "clip.mp4", frames=2, audio=False)
    done = cli_run("eval", "-m", "bicubic", "--video", clip, "--frames", frames)
    assert done.exit_code == 2 and f"Invalid value for '--frames': {frames} is not in the range x>=1" in done.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any folder")
def test_classify_on_an_unreadable_folder_is_a_one_line_error(cli_run, images):
    images.chmod(0o300)
    try:
        done = cli_run("classify", images, "-m", "fashion-mnist")
    finally:
        images.chmod(0o700)
    assert done.exit_code == 1
    assert done.stderr == f"Error: cannot list the folder {images} (Permission denied); check that you may read it\n"


@pytest.mark.parametrize("args", [
    ["train", "espcn", "--data", "{images}", "-s", "2", "-o", "{tmp}/afile/x.pt"],
    ["inspect", "kernels", "{images}/a.png", "-o", "{tmp}/afile/kernels"],
    ["inspect", "espcn-x2", "--receptive-field", "-o", "{tmp}/afile/figures"],
    ["train", "classifier", "--dataset", "fashion-mnist", "-o", "{tmp}/afile/run"],
    ["classifier", "embed", "-m", "fashion-mnist", "-o", "{tmp}/afile/tsne.png"],
])
def test_output_folders_under_a_file_are_one_line_errors(cli_run, tmp_path, images, args):
    (tmp_path / "afile").write_text("a file, not a folder\n")
    args = [a.format(tmp=tmp_path, images=images) for a in args]
    done = cli_run(*args)
    assert done.exit_code == 1, done.output
    folder = tmp_path / "afile"
    assert done.stderr == f"Error: cannot write -o {args[-1]}: {folder} is not a folder; choose another path\n"


@pytest.mark.parametrize("args, named", [
    (["train", "espcn", "--data", "{images}", "-s", "2", "-o", "{images}/a.png"], "{images}/a.png"),
    (["train", "espcn", "--data", "{images}", "-s", "2", "-o", "{tmp}/link.png"], "{images}/a.png"),
    (["inspect", "kernels", "{images}/emboss.png", "-o", "{images}"], "{images}/emboss.png"),
    (["inspect", "espcn-x2", "--feature-maps", "{images}/features_00_body-0.png", "-o", "{images}"],
     "{images}/features_00_body-0.png"),
])
def test_an_output_that_is_an_input_is_refused_and_the_input_kept(cli_run, tmp_path, images, args, named):
    """Named as an input (the training images, the picture inspected), or a hard link to one."""
    os.link(images / "a.png", tmp_path / "link.png")
    for name in ("emboss.png", "features_00_body-0.png"):  # named as what inspect writes
        (images / name).write_bytes((images / "a.png").read_bytes())
    kept = {path.name: path.read_bytes() for path in images.iterdir()}
    args = [a.format(tmp=tmp_path, images=images) for a in args]
    done = cli_run(*args)
    assert done.exit_code == 1, done.output
    named = named.format(images=images)
    output = args[args.index("-o") + 1] if "train" in args else named
    assert done.stderr.splitlines()[-1] == (f"Error: output {output} is the input {named}, or a link to it; writing it "
                                            "would replace the input: choose another name with -o")
    assert all((images / name).read_bytes() == data for name, data in kept.items())  # figures before it may be new


@pytest.mark.parametrize("args, message", [
    (["classify", "{fifo}", "-m", "fashion-mnist"],
     "{fifo} is a FIFO, not a file; give an image, a folder of images or a video file"),
    (["inspect", "kernels", "{fifo}", "-o", "{tmp}/k"],
     "{fifo} is a FIFO, not an image file; give a PNG/JPEG/WebP/BMP/TIFF file"),
])
def test_a_fifo_given_as_a_picture_is_refused_not_waited_on(tmp_path, args, message):
    fifo = tmp_path / "x.png"
    os.mkfifo(fifo)
    args = [a.format(tmp=tmp_path, fifo=fifo) for a in args]
    done = run_srpipe(*args)  # a subprocess: a wait for a writer would end in its timeout, failing the test
    assert done.returncode == 1
    assert done.stderr.decode() == f"Error: {message.format(fifo=fifo)}\n"


@pytest.mark.parametrize("command", ["upscale", "eval"])
def test_a_classifiers_weights_given_to_espcn_are_one_line(cli_run, tmp_path, images, command):
    from srpipe.default_plugins import classifier

    mnist = Path(classifier.__file__).parent / "weights" / "mnist.pt"
    args = ["upscale", images / "a.png", "-o", tmp_path / "out.png"] if command == "upscale" else \
        ["eval", "--data", images]
    done = cli_run(*args, "-m", "espcn-x2", "--weights", mnist)
    assert done.exit_code == 1
    assert done.stderr == (f"Error: {mnist} holds a small-cnn network, not an ESPCN upscaler; give weights from "
                           "'srpipe train espcn'\n")
    assert not (tmp_path / "out.png").exists()


def test_train_refuses_to_replace_existing_weights_without_overwrite(cli_run, tmp_path, images):
    (tmp_path / "x.pt").write_bytes(b"weights of an earlier run")
    done = cli_run("train", "espcn", "--data", images, "-s", "2", "-o", tmp_path / "x.pt")
    assert done.exit_code == 1
    assert done.stderr == f"Error: output {tmp_path / 'x.pt'} already exists; pass --overwrite to replace it\n"
    assert (tmp_path / "x.pt").read_bytes() == b"weights of an earlier run"
    assert not (tmp_path / "x.pt.run").exists()  # refused before any work


@pytest.mark.parametrize("option", ["--epochs", "--steps-per-epoch", "--batch-size", "--threads"])
def test_train_counts_start_at_one(cli_run, images, tmp_path, option):
    done = cli_run("train", "espcn", "--data", images, "-s", "2", "-o", tmp_path / "x.pt", option, "0")
    assert done.exit_code == 2 and f"Invalid value for '{option}': 0 is not in the range x>=1" in done.stderr
    assert not (tmp_path / "x.pt.run").exists()


@pytest.mark.parametrize("args, message", [
    (["--video", "{clip}", "--downscale", "area"], "--downscale goes with --data: --video clips are shrunk as"),
    (["--video", "{clip}", "--degrade", "jpeg:quality=5"], "--degrade goes with --data: --video clips are encoded"),
    (["--data", "{images}", "--crfs", "23"], "--crfs goes with --video: --data images are compressed by --degrade"),
    (["--data", "{images}", "--frames", "1"], "--frames goes with --video: --data scores every image"),
    (["--video", "{clip}", "--crfs", "2_3"], "Invalid value for '--crfs': '2_3' is not comma-separated integers"),
    (["--video", "{clip}", "--crfs", "\u0662\u0663"], "Invalid value for '--crfs': '\u0662\u0663'"),  # Arabic-Indic 23
    (["--video", "{clip}", "--crfs", "23,30,23"], "Invalid value for '--crfs': 23,30,23 names a crf twice; give each"),
])
def test_options_that_would_change_nothing_are_refused(cli_run, tmp_path, images, args, message):
    """An option of the other kind of evaluation (or a crf given twice) would leave the scores as
    they are while the user believes they measured it."""
    clip = make_test_video(tmp_path / "clip.mp4", frames=2, audio=False)
    done = cli_run("eval", "-m", "bicubic", *[a.format(clip=clip, images=images) for a in args])
    assert done.exit_code == 2 and done.stderr.startswith("Usage: "), done.stderr  # whatever the files
    assert done.stderr.splitlines()[-1].startswith(f"Error: {message}"), done.stderr


def test_an_image_claiming_a_huge_size_is_refused_before_it_is_decoded(cli_run, images):
    from srpipe.testing import make_huge_claim_png

    make_huge_claim_png(images / "big.png", 20000, 20000)  # 400 megapixels in a file of a few hundred KB
    done = cli_run("eval", "-m", "bicubic", "--data", images)
    assert done.exit_code == 1 and done.stderr.startswith(
        f"Error: {images / 'big.png'} has 20000x20000 frames (400.0 megapixels), over the limit of"), done.stderr
    done = cli_run("eval", "-m", "bicubic", "--data", images, "--max-pixels", "1000", "--json")
    assert done.exit_code == 1 and "a.png has 40x32 frames" in done.stderr  # the limit is the user's to set
    (images / "big.png").unlink()
    done = cli_run("eval", "-m", "bicubic", "--data", images, "--json")
    assert done.exit_code == 0, done.stderr
    assert [row["name"] for row in json.loads(done.stdout)["images"]] == ["a.png", "c.png"]  # with their suffix


def test_an_option_of_the_other_kind_at_its_default_is_accepted(cli_run, tmp_path):
    """A wrapper that always passes every option, at its default for the other kind of run."""
    clip = make_test_video(tmp_path / "clip.mp4", frames=2, audio=False)
    done = cli_run("eval", "-m", "bicubic", "--video", clip, "--crfs", "23", "--score", "default",
                   "--downscale", "matlab-bicubic", "--degrade", "none")
    assert done.exit_code == 0, done.stderr


@pytest.mark.parametrize("args, message", [
    (["train", "classifier", "--dataset", "mnist", "--lr", "nan", "-o", "{tmp}/run"],
     "Invalid value for '--lr': 'nan' is not a finite number"),
    (["train", "classifier", "--dataset", "mnist", "--weight-decay", "nan", "-o", "{tmp}/run"],
     "Invalid value for '--weight-decay': 'nan' is not a finite number"),
    (["train", "classifier", "--dataset", "mnist", "--dropout", "2", "-o", "{tmp}/run"],
     "Invalid value for '--dropout': 2.0 is not in the range 0<=x<1"),
    (["train", "classifier", "--dataset", "mnist", "--features", "100000,100000", "-o", "{tmp}/run"],
     "Invalid value for '--features': give two whole numbers from 1 to 1024, such as 16,32 (got '100000,100000')"),
    (["bench", "--repeats", "0"], "Invalid value for '--repeats': 0 is not in the range x>=1"),
    (["bench", "--batch-size", "-5"], "Invalid value for '--batch-size': -5 is not in the range x>=1"),
    (["batch", "{tmp}", "{tmp}/out", "--chunk-seconds", "nan"],
     "Invalid value for '--chunk-seconds': 'nan' is not a finite number"),
    (["batch", "{tmp}", "{tmp}/out", "--chunk-seconds", "-1"],
     "Invalid value for '--chunk-seconds': -1.0 is not in the range x>=0"),
])
def test_numbers_out_of_range_are_usage_errors(cli_run, tmp_path, args, message):
    done = cli_run(*[a.format(tmp=tmp_path) for a in args])
    assert done.exit_code == 2 and message in done.stderr, done.output
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("name, message", [
    ("in.png", "{input} is a still image; srpipe bench times video"),
    ("in.m4a", "{input} has no video stream"),
])
def test_bench_refuses_an_input_without_video_before_any_stage(cli_run, tmp_path, name, message):
    made = make_test_image(tmp_path / name) if name.endswith(".png") else audio_only_file(tmp_path / name)
    done = cli_run("bench", tmp_path / name, "--no-startup", "--repeats", "1")
    assert done.exit_code == 1
    assert done.stderr.startswith(f"Error: {message.format(input=made)}"), done.stderr


def test_bench_names_an_unknown_backend_before_any_stage(cli_run):
    done = cli_run("bench", "-m", "espcn", "--backend", "nonsense", "--no-startup")
    assert done.exit_code == 1 and done.stderr.startswith("Error: unknown backend 'nonsense'; available: auto")
    assert "fps" not in done.stderr  # no stage ran


@pytest.mark.parametrize("args, message", [
    (["--data", "{big}", "--val", "{empty}"], "no images in {empty}; give a folder of PNG/BMP/JPEG/TIFF images"),
    (["--data", "{big}", "--val", "{tiny}"],
     "{tiny}/t.png is 12x12, too small to score at x2: it needs 16x16 pixels; leave it out of the folder"),
    (["--data", "{tiny}"], "no image in {tiny} is 48x48 pixels or more, what a training patch takes at x2; "
                           "add larger images"),
    (["--data", "{big}", "--degrade", "video", "--holdout", "2"],
     "--holdout 2 would hold out every image of {big} (2); hold out fewer"),
])
def test_train_refuses_what_would_fail_later_before_training(cli_run, tmp_path, args, message):
    """Each was found only after an epoch, or after all of them, or as an unexpected error."""
    folders = {name: tmp_path / name for name in ("big", "tiny", "empty")}
    for folder in folders.values():
        folder.mkdir()
    for index in range(2):
        make_test_image(folders["big"] / f"b{index}.png", width=64, height=56)
    make_test_image(folders["tiny"] / "t.png", width=12, height=12)
    done = cli_run("train", "espcn", "-s", "2", "-o", tmp_path / "x.pt", *[a.format(**folders) for a in args])
    assert done.exit_code == 1
    assert done.stderr == f"Error: {message.format(**folders)}\n"
    assert not (tmp_path / "x.pt.run").exists()


def test_train_names_the_images_it_leaves_out_once_each(tmp_path):
    """A link to nothing was warned of twice (the folder is listed by the checks and again by the
    trainer), and a picture too small for a training patch was left out without a word while the
    count of training images still took it in."""
    data = tmp_path / "data"
    data.mkdir()
    for name in ("a.png", "b.png"):
        make_test_image(data / name, width=64, height=64)
    make_test_image(data / "tiny.png", width=20, height=12)
    (data / "gone.png").symlink_to(tmp_path / "nowhere.png")
    done = run_srpipe("train", "espcn", "--data", data, "-s", "2", "--epochs", "1", "--steps-per-epoch", "2",
                      "--batch-size", "2", "-o", tmp_path / "x.pt")
    assert done.returncode == 0, done.stderr.decode()
    lines = done.stderr.decode().splitlines()
    assert [line for line in lines if line.startswith("Warning:")] == [
        f"Warning: skipped {data / 'gone.png'}: a link to nothing, not an image file",
        f"Warning: left {data / 'tiny.png'} out: it is 20x12, smaller than a training patch at x2 (48x48)"]
    assert any(line.endswith(", 2 training images") for line in lines), done.stderr
    assert (tmp_path / "x.pt").is_file()
