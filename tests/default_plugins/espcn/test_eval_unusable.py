"""srpipe eval on files it cannot score: each is named and skipped as a clip is, never scored as
something it is not, never an unexpected error; and its wording."""

import json
import shutil
import subprocess

import pytest

from srpipe.testing import make_test_image, make_test_video

from conftest import run_srpipe


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="no system ffmpeg")
def test_a_songs_cover_picture_is_not_scored_as_a_clip(tmp_path, cli_run):
    """Its one picture was scored as a clip of one frame."""
    song = tmp_path / "song.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=d=0.3", "-f", "lavfi", "-i",
                    "color=red:s=64x48:d=0.04", "-map", "0", "-map", "1", "-frames:v", "1", "-c:a", "aac",
                    "-c:v", "png", "-disposition:v:0", "attached_pic", str(song)], check=True)
    done = cli_run("eval", "-m", "bicubic", "--video", song, "--crfs", "23")
    assert done.exit_code == 1
    assert done.stderr == f"Error: {song} holds no video but a cover picture; give a video file\n"


def test_a_clip_x264_refuses_is_skipped_and_direct_clips_are_named_after_their_folder(tmp_path, cli_run):
    """33000 pixels wide, 16500 shrunk: x264's 'unexpected ExternalError' stopped the folder. The
    clips directly in the folder made a category named '.'."""
    folder = tmp_path / "set"
    folder.mkdir()
    make_test_video(folder / "a.mp4", frames=2, audio=False)
    make_test_video(folder / "wide.mkv", codec="ffv1", width=33000, height=16, frames=1, audio=False)
    done = run_srpipe("eval", "-m", "bicubic", "--video", folder, "--crfs", "23", "--json")
    assert done.returncode == 1
    assert f"Warning: skipped: {folder / 'wide.mkv'} cannot be scored: x264 refused its 16500x8 small copy (" \
        in done.stderr.decode()
    report = json.loads(done.stdout)
    assert list(report["categories"]) == ["set"] and [c["category"] for c in report["clips"]] == ["set"]
    assert [row["clip"] for row in report["not_scored"]] == [str(folder / "wide.mkv")]
    table = cli_run("eval", "-m", "bicubic", "--video", folder, "--crfs", "23")
    assert "crf 23 set " in table.stdout and "crf 23 . " not in table.stdout


def test_pictures_that_cannot_be_scored_are_skipped_and_hidden_files_passed_over(tmp_path):
    """An unreadable or too small picture stopped the folder; macOS's ._a.png beside a.png was read."""
    folder = tmp_path / "set"
    folder.mkdir()
    make_test_image(folder / "a.png", width=40, height=32)
    (folder / "._a.png").write_bytes(b"\0\5\26\7 Mac OS X resource fork")
    (folder / "broken.png").write_bytes(b"not a picture")
    make_test_image(folder / "tiny.png", width=6, height=6)
    done = run_srpipe("eval", "-m", "bicubic", "--data", folder, "--json")
    stderr = done.stderr.decode()
    assert done.returncode == 1 and "._a.png" not in stderr, stderr
    assert f"Warning: skipped: cannot read {folder / 'broken.png'} as an image" in stderr
    assert f"Warning: skipped: {folder / 'tiny.png'} is 6x6, too small to score at x2" in stderr
    assert stderr.endswith("Error: 2 of 3 images could not be scored (each named above); the scores are of the "
                           "others\n")
    report = json.loads(done.stdout)
    assert [row["name"] for row in report["images"]] == ["a.png"]
    assert [row["image"] for row in report["not_scored"]] == [str(folder / "broken.png"), str(folder / "tiny.png")]


def test_a_folder_whose_images_lie_in_sub_folders_says_so(tmp_path, cli_run):
    for name in ("set5", "set14"):
        (tmp_path / "sets" / name).mkdir(parents=True)
        make_test_image(tmp_path / "sets" / name / "a.png", width=40, height=32)
    done = cli_run("eval", "-m", "bicubic", "--data", tmp_path / "sets")
    assert done.exit_code == 1 and done.stderr == (
        f"Error: no images in {tmp_path / 'sets'}; its sub-folders with images (set14, set5) are not searched: "
        "give each as --data\n")


@pytest.mark.parametrize("args, message", [
    (("eval", "-m", "bicubic", "--video", "-"),
     "- is standard input, not a file; srpipe eval reads its clip several times: give a file"),
    (("bench", "{folder}"),
     "{folder} is a folder; srpipe bench times one video file: give one, or none for a generated clip"),
])
def test_refusals_say_what_the_command_takes(tmp_path, cli_run, args, message):
    clip = make_test_video(tmp_path / "clip.mp4", frames=2, audio=False)
    done = cli_run(*[arg.format(clip=clip, folder=tmp_path) for arg in args])
    assert done.exit_code == 1 and done.stderr == f"Error: {message.format(folder=tmp_path)}\n"


def test_a_classical_model_is_scored_once_whatever_score_asks(tmp_path, cli_run):
    """Its --exact column repeated the default's, with a 'vs exact' of +0.00 on every row."""
    clip = make_test_video(tmp_path / "clip.mp4", frames=2, audio=False)
    done = run_srpipe("eval", "-m", "lanczos", "--video", clip, "--crfs", "23", "--score", "both")
    assert done.returncode == 0, done.stderr
    assert b"--exact" not in done.stdout and b"vs exact" not in done.stdout
    assert done.stderr.decode() == ("Warning: lanczos runs the same with --exact (it has no tile reuse or int8 to "
                                    "leave out): it is scored once, not as --score both would\n")
    quiet = run_srpipe("eval", "-m", "lanczos", "--video", clip, "--crfs", "23")  # --score left at its default
    assert quiet.returncode == 0 and quiet.stderr == b"" and b"--exact" not in quiet.stdout


def test_a_difference_that_rounds_to_nothing_has_no_minus_sign():
    from srpipe.default_plugins.espcn.commands import _difference

    assert [_difference(value) for value in (-0.001, 0.0, 0.004, -0.006)] == ["+0.00", "+0.00", "+0.00", "-0.01"]
