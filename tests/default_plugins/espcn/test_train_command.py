"""``srpipe train espcn`` through the CLI: what it trains on, what it refuses, what a resume must share."""

import cv2
import pytest

import srpipe.default_plugins.espcn.training
from srpipe.testing import test_pattern


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(srpipe.default_plugins.espcn.training, "CACHE", tmp_path / "cache")


def pictures(folder, count, width=64, height=64, first=0):
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(first, first + count):
        cv2.imwrite(str(folder / f"{index}.png"), test_pattern(width, height, index))
    return folder


def train(cli_run, *args):
    """A run of one step: the shipped network, 4 patches."""
    return cli_run("train", "espcn", "-s", "2", "--epochs", "1", "--steps-per-epoch", "1", "--batch-size", "4",
                   *args)


def test_max_pixels_is_an_option_of_its_own(cli_run, tmp_path):
    """An image over the limit was refused with "pass --max-pixels N", an option train espcn did not have."""
    data, val = pictures(tmp_path / "data", 2, 96, 64), pictures(tmp_path / "val", 1, 96, 64)
    refused = train(cli_run, "--data", data, "--val", val, "--max-pixels", "5000", "-o", tmp_path / "w.pt")
    assert refused.exit_code == 1 and refused.stderr.endswith("pass --max-pixels 6144\n"), refused.output
    done = train(cli_run, "--data", data, "--val", val, "--max-pixels", "6144", "-o", tmp_path / "w.pt")
    assert done.exit_code == 0, done.output  # the --val image is scored at the end under the same limit
    assert "--max-pixels" in cli_run("train", "espcn", "--help").output


def test_a_finished_run_is_not_replaced_when_its_weights_were_removed(cli_run, tmp_path):
    """With -o k.pt removed, the same command again replaced k.pt.run/final.pt and last.pt without a word."""
    data, weights, run = pictures(tmp_path / "data", 2), tmp_path / "k.pt", tmp_path / "k.pt.run"
    assert train(cli_run, "--data", data, "-o", weights).exit_code == 0
    weights.unlink()
    kept = {name: (run / name).read_bytes() for name in ("last.pt", "final.pt", "log.jsonl")}
    refused = train(cli_run, "--data", data, "-o", weights)
    assert refused.exit_code == 1 and refused.stderr == (
        f"Error: {run} holds an earlier run (last.pt, final.pt, log.jsonl); pass -y to replace it, --resume to "
        "continue it, or choose another -o\n")
    assert {name: (run / name).read_bytes() for name in kept} == kept and not weights.exists()
    assert train(cli_run, "--data", data, "-o", weights, "--resume").exit_code == 0  # nothing left to train
    assert (run / "last.pt").read_bytes() == kept["last.pt"] and weights.exists()
    (run / "final.pt").unlink()
    (run / "final.pt").symlink_to(data / "0.png")
    refused = train(cli_run, "--data", data, "-o", weights, "-y")
    assert refused.exit_code == 1 and "final.pt is a link; a run writes its own files" in refused.stderr


def trained_on(result) -> int:
    """The count of training images the run reported."""
    import re

    return int(re.search(r"(\d+) training images", result.stderr)[1])


def test_each_file_is_trained_on_once_and_a_held_out_one_never(cli_run, tmp_path, monkeypatch, recwarn):
    """Paths were compared, not files: the same folder given twice, a link or a hard link held an
    image out and trained on it at once, and counted each link as an image of its own."""
    import torch

    clean = pictures(tmp_path / "clean", 4)
    monkeypatch.chdir(tmp_path)
    done = train(cli_run, "--data", clean, "--data", "clean", "--holdout", "1", "-o", tmp_path / "a.pt")
    assert done.exit_code == 0, done.output
    assert trained_on(done) == 3  # 4 images, the held-out one under neither name
    assert torch.load(tmp_path / "a.pt", weights_only=True)["meta"]["holdout"] == ["0.png"]

    other = tmp_path / "other"
    other.mkdir()
    (other / "held.png").hardlink_to(clean / "0.png")
    (other / "hard.png").hardlink_to(clean / "1.png")
    (other / "soft.png").symlink_to(clean / "2.png")
    pictures(other, 1, first=7)
    done = train(cli_run, "--data", other, "--data", clean, "--holdout", "1", "-o", tmp_path / "b.pt")
    assert done.exit_code == 0, done.output
    assert trained_on(done) == 4  # 7.png, and 1, 2, 3 once each; 0 is held out
    said = {str(warning.message) for warning in recwarn}
    assert {f"skipped {clean / '1.png'}: the same file as {other / 'hard.png'}",
            f"skipped {clean / '2.png'}: the same file as {other / 'soft.png'}"} <= said, said


def test_images_only_in_sub_folders_are_named(cli_run, tmp_path):
    """Sub-folders are not searched, and training said only "no images in X", or nothing when X had some."""
    top = tmp_path / "top"
    pictures(top / "cats", 2)
    pictures(top / "dogs", 2)
    refused = train(cli_run, "--data", top, "-o", tmp_path / "a.pt")
    assert refused.exit_code == 1 and refused.stderr == (
        f"Error: no images in {top}; its sub-folders with images (cats, dogs) are not searched: give each as --data\n")
    pictures(top, 2)
    with pytest.warns(UserWarning, match=f"^trained only on the images directly in {top}; its sub-folders with "
                                         r"images \(cats, dogs\) are not searched: give each as --data$"):
        done = train(cli_run, "--data", top, "-o", tmp_path / "a.pt")
    assert done.exit_code == 0, done.output
    assert trained_on(done) == 2


def test_a_resume_is_refused_other_data_of_the_same_name_or_another_batch_size(cli_run, tmp_path):
    """The check knew the data by its folders' names only, and not the batch size (result.json then
    recorded the new one)."""
    first, second = pictures(tmp_path / "a" / "photos", 2), pictures(tmp_path / "b" / "photos", 2, first=5)
    weights = tmp_path / "k.pt"
    args = ("train", "espcn", "-s", "2", "--epochs", "2", "--steps-per-epoch", "1", "-o", weights)
    started = cli_run(*args, "--data", first, "--batch-size", "4")
    assert started.exit_code == 0, started.output
    weights.unlink()  # a finished run resumed: the check comes before anything is left to train
    again = "; resume it with the options it was started with, or start a new run in another folder"
    refused = cli_run(*args, "--data", second, "--batch-size", "4", "--resume")
    assert refused.exit_code == 1 and refused.stderr.splitlines()[-1] == (
        f"Error: the run in {tmp_path / 'k.pt.run'} was started with another data folders, another data files"
        + again), refused.stderr
    (first / "9.png").write_bytes((first / "0.png").read_bytes())  # the same folder with another file
    refused = cli_run(*args, "--data", first, "--batch-size", "4", "--resume")
    assert refused.exit_code == 1 and refused.stderr.splitlines()[-1] == (
        f"Error: the run in {tmp_path / 'k.pt.run'} was started with another data files" + again), refused.stderr
    (first / "9.png").unlink()
    refused = cli_run(*args, "--data", first, "--batch-size", "8", "--resume")
    assert refused.exit_code == 1 and refused.stderr.splitlines()[-1] == (
        f"Error: the run in {tmp_path / 'k.pt.run'} was started with batch size 4 (now 8)" + again), refused.stderr
    assert cli_run(*args, "--data", first, "--batch-size", "4", "--resume").exit_code == 0
