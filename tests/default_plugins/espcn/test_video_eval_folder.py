"""`srpipe eval --video FOLDER`: every clip scored, the means per category (sub-folder) and in all."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from srpipe.default_plugins.espcn.video_eval import evaluate_video
from srpipe.testing import make_test_video


@pytest.fixture
def clips(tmp_path):
    root = tmp_path / "clips"
    (root / "text").mkdir(parents=True)
    (root / "faces").mkdir()
    make_test_video(root / "text" / "a.mp4", width=70, height=54, frames=4, audio=False)
    make_test_video(root / "text" / "b.mkv", width=64, height=48, frames=3, audio=False, codec="ffv1")
    make_test_video(root / "faces" / "c.mp4", width=80, height=60, frames=5, audio=False)
    make_test_video(root / "top.mp4", width=64, height=48, frames=3, audio=False)
    (root / "faces" / "notes.txt").write_text("not a clip")
    return root


def test_each_category_is_the_mean_of_its_clips_and_all_of_every_clip(clips, cli_run):
    done = cli_run("eval", "-m", "espcn", "--video", clips, "--crfs", "0,23", "--score", "default", "--json")
    assert done.exit_code == 0, done.output
    report = json.loads(done.output)
    by_clip = {clip["clip"]: clip for clip in report["clips"]}
    assert {(name.split("/clips/")[1], clip["category"]) for name, clip in by_clip.items()} == {
        ("text/a.mp4", "text"), ("text/b.mkv", "text"), ("faces/c.mp4", "faces"), ("top.mp4", "clips")}
    direct = evaluate_video(clips / "faces" / "c.mp4", {"bicubic": None, "espcn": None}, 2, (0, 23))
    assert by_clip[str(clips / "faces" / "c.mp4")]["crfs"] == direct["crfs"]
    for index, crf in enumerate((0, 23)):
        text = [by_clip[str(clips / "text" / name)]["crfs"][index]["psnr"]["espcn"] for name in ("a.mp4", "b.mkv")]
        assert report["categories"]["text"][index] == {
            "crf": crf, "clips": 2, "psnr": pytest.approx({
                "espcn": np.mean(text),
                "bicubic": np.mean([by_clip[str(clips / "text" / n)]["crfs"][index]["psnr"]["bicubic"]
                                    for n in ("a.mp4", "b.mkv")])})}
        every = [clip["crfs"][index]["psnr"]["espcn"] for clip in report["clips"]]
        assert report["all"][index]["clips"] == 4
        assert report["all"][index]["psnr"]["espcn"] == pytest.approx(np.mean(every))  # each clip once


def test_the_table_has_a_row_per_category_and_one_for_all(clips, cli_run):
    done = cli_run("eval", "-m", "espcn", "--video", clips, "--crfs", "12")  # finely enough that espcn itself runs
    assert done.exit_code == 0, done.output
    lines = done.output.splitlines()
    assert "vs exact" in lines[0]  # both paths, as for one clip
    assert [line.split()[2] for line in lines[1:]] == ["faces", "text", "clips", "all"]  # by path, then all
    assert lines[-1].split()[:4] == ["crf", "12", "all", "4"]


def test_a_category_named_with_a_newline_keeps_to_its_row(tmp_path, cli_run):
    odd = tmp_path / "clips" / "two\nlines\x1b[2J"
    odd.mkdir(parents=True)
    make_test_video(odd / "a.mp4", width=64, height=48, frames=3, audio=False)
    make_test_video(tmp_path / "clips" / "top.mp4", width=64, height=48, frames=3, audio=False)
    done = cli_run("eval", "-m", "espcn", "--video", tmp_path / "clips", "--crfs", "23", "--score", "default")
    assert done.exit_code == 0, done.output
    assert [line.split()[2] for line in done.output.splitlines()[1:4]] == ["clips", "two\\nlines\\x1b[2J", "all"]


def test_the_stand_ins_are_counted_over_the_clips(clips, cli_run):
    """Below the table, each stand-in that ran, with the number of clips it ran on: at crf 45 every
    encode is coded coarsely enough for espcn-lowbitrate; at crf 0 espcn-lossless runs on each,
    with the weights its look picks."""
    import re

    done = cli_run("eval", "-m", "espcn", "--video", clips, "--crfs", "0,45", "--score", "default")
    assert done.exit_code == 0, done.output
    note = done.output.strip().splitlines()[-1]
    counts = re.findall(r"at crf 0, espcn ran as espcn-lossless \([^)]+\) on (\d) of 4 clips", note)
    assert sum(map(int, counts)) == 4, note
    assert note.endswith("; at crf 45, espcn ran as espcn-lowbitrate on 4 of 4 clips"), note


def test_a_folder_without_clips_is_one_line(tmp_path, cli_run):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "sub" / "photo.png").write_bytes(b"")
    done = cli_run("eval", "-m", "bicubic", "--video", tmp_path / "empty")
    assert done.exit_code == 1 and "no video clips in" in done.output and len(done.output.splitlines()) == 1


def eval_video(folder, *args):
    """``srpipe eval -m bicubic --video FOLDER --crfs 23`` in a subprocess (its warnings as a user
    sees them; a FIFO that hangs it fails the test)."""
    return subprocess.run([sys.executable, "-m", "srpipe", "eval", "-m", "bicubic", "--video", str(folder), "--crfs",
                           "23", *args], capture_output=True, text=True, timeout=300)


def test_a_clip_that_cannot_be_scored_is_named_and_the_others_are_scored(tmp_path):
    """One damaged clip among good ones: warned about, left out of the means, listed in --json,
    and the run ends with an error (non-zero) after the others' scores."""
    folder = tmp_path / "mine"
    for name in ("all/a.mp4", "trips/b.mp4"):  # a category called "all", beside the row of all clips
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        make_test_video(folder / name, width=64, height=48, frames=3, audio=False)
    (folder / "trips" / "cut.mp4").write_bytes((folder / "trips" / "b.mp4").read_bytes()[:200])
    done = eval_video(folder)
    assert done.returncode == 1
    assert [line.split()[2] for line in done.stdout.splitlines()[1:]] == ["all/", "trips", "all"]
    errors = done.stderr.splitlines()
    assert errors[0].startswith(f"Warning: skipped: {folder / 'trips' / 'cut.mp4'} ") and len(errors) == 2
    assert errors[1] == "Error: 1 of 3 clips could not be scored (each named above); the scores are of the others"
    done = eval_video(folder, "--json")
    report = json.loads(done.stdout)
    assert [entry["clip"] for entry in report["not_scored"]] == [str(folder / "trips" / "cut.mp4")]
    assert report["all"][0]["clips"] == 2 and report["categories"]["trips"][0]["clips"] == 1


def test_linked_folders_are_read_once_and_special_files_are_named(tmp_path):
    folder = tmp_path / "mine"
    (folder / "real").mkdir(parents=True)
    make_test_video(folder / "real" / "a.mp4", width=64, height=48, frames=2, audio=False)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    make_test_video(elsewhere / "b.mp4", width=64, height=48, frames=2, audio=False)
    (folder / "linked").symlink_to(elsewhere)  # a category kept somewhere else
    (folder / "real" / "loop").symlink_to(folder)  # a link back up the tree
    (folder / "an-alias").symlink_to(folder / "real")  # sorts first: the folder keeps its category
    (folder / "real" / "again.mp4").symlink_to(folder / "real" / "a.mp4")
    (folder / "real" / "gone.mp4").symlink_to(tmp_path / "missing.mp4")
    os.mkfifo(folder / "real" / "pipe.mp4")
    done = eval_video(folder, "--json")
    assert done.returncode == 0, done.stderr
    assert sorted((c["category"], Path(c["clip"]).name) for c in json.loads(done.stdout)["clips"]) == [
        ("linked", "b.mp4"), ("real", "a.mp4")]
    assert sorted(done.stderr.splitlines()) == sorted([
        f"Warning: skipped {folder / 'real' / 'gone.mp4'}: a link to nothing, not a video file",
        f"Warning: skipped {folder / 'real' / 'pipe.mp4'}: a FIFO, not a video file",
        f"Warning: skipped {folder / 'real' / 'again.mp4'}: the same file as {folder / 'real' / 'a.mp4'}"])


def test_a_link_up_to_a_folder_holding_the_set_is_not_read(tmp_path):
    """It led out of the set (a link to / read the whole machine), its clips under the link's category."""
    folder = tmp_path / "parent" / "set"
    (folder / "cat").mkdir(parents=True)
    make_test_video(folder / "cat" / "a.mp4", width=64, height=48, frames=2, audio=False)
    make_test_video(tmp_path / "parent" / "other.mp4", width=64, height=48, frames=2, audio=False)
    (folder / "cat" / "up").symlink_to("../..")
    done = eval_video(folder, "--json")
    assert done.returncode == 0, done.stderr
    assert [Path(c["clip"]).name for c in json.loads(done.stdout)["clips"]] == ["a.mp4"]
    assert done.stderr.splitlines() == [f"Warning: skipped {folder / 'cat' / 'up'}: a link to {tmp_path / 'parent'}, "
                                        f"which holds {folder}; its clips are not under it"]


def test_hidden_files_and_folders_are_not_clips(tmp_path):
    """A drive written by a Mac has ._NAME beside each clip (not a video): the run ended in an error."""
    folder = tmp_path / "drive"
    (folder / "trips").mkdir(parents=True)
    make_test_video(folder / "trips" / "IMG_0001.mov", width=64, height=48, frames=2, audio=False)
    (folder / "trips" / "._IMG_0001.mov").write_bytes(b"\0\5\26\7" + bytes(60))  # AppleDouble
    (folder / ".Trashes").mkdir()
    make_test_video(folder / ".Trashes" / "old.mp4", width=64, height=48, frames=2, audio=False)
    done = eval_video(folder, "--json")
    assert done.returncode == 0 and done.stderr == "", done.stderr
    report = json.loads(done.stdout)
    assert [(c["category"], Path(c["clip"]).name) for c in report["clips"]] == [("trips", "IMG_0001.mov")]


def test_an_empty_path_is_refused_not_taken_for_the_current_folder(tmp_path, cli_run):
    for args in (("eval", "-m", "bicubic", "--video", ""), ("batch", "", tmp_path / "out")):
        done = cli_run(*args)
        assert done.exit_code == 2 and "is empty (an unset shell variable?); give a path" in done.output
    assert not (tmp_path / "out").exists()


def test_a_folder_where_no_clip_can_be_scored_says_so(tmp_path):
    folder = tmp_path / "junk"
    for name in ("x/a.mp4", "y/b.mkv"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"not a video at all" * 10)
    done = eval_video(folder)
    assert done.returncode == 1 and done.stdout == ""
    errors = done.stderr.splitlines()
    assert [line.split(":")[0] for line in errors] == ["Warning", "Warning", "Error"]
    assert errors[-1] == f"Error: none of the 2 clips in {folder} could be scored (each named above)"


def test_a_link_to_another_category_leaves_its_clips_there(tmp_path):
    """Each clip belongs to the category it lies in, whatever links lead to it and in what order
    the folders are read; a hard link is the same file."""
    root = tmp_path / "set"
    for category in ("animation", "text"):
        (root / category).mkdir(parents=True)
    make_test_video(root / "animation" / "cartoon.mp4", width=64, height=48, frames=2, audio=False)
    make_test_video(root / "text" / "terminal.mp4", width=64, height=48, frames=2, audio=False)
    (root / "animation" / "see-also").symlink_to("../text")  # read before text/ itself
    (root / "animation" / "also-terminal.mp4").symlink_to("../text/terminal.mp4")  # so is this link
    os.link(root / "text" / "terminal.mp4", root / "text" / "z-same.mp4")
    outside = tmp_path / "outside"  # reached only through a link in text/, which a link sorting first leads to
    outside.mkdir()
    make_test_video(outside / "far.mp4", width=64, height=48, frames=2, audio=False)
    (root / "text" / "far-away").symlink_to(outside)
    (root / "a-link").symlink_to("text")
    done = eval_video(root, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert sorted((clip["category"], Path(clip["clip"]).name) for clip in report["clips"]) == [
        ("animation", "cartoon.mp4"), ("text", "far.mp4"), ("text", "terminal.mp4")]
    assert report["categories"]["text"][0]["clips"] == 2 and report["categories"]["animation"][0]["clips"] == 1
    assert sorted(done.stderr.splitlines()) == [
        f"Warning: skipped {root / 'animation' / 'also-terminal.mp4'}: the same file as "
        f"{root / 'text' / 'terminal.mp4'}",
        f"Warning: skipped {root / 'text' / 'z-same.mp4'}: the same file as {root / 'text' / 'terminal.mp4'}"]


def test_clips_too_large_or_too_small_are_skipped_and_the_others_scored(tmp_path, cli_run):
    from srpipe.testing import make_huge_claim_h264

    root = tmp_path / "set"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    make_test_video(root / "a" / "ok.mp4", width=64, height=48, frames=2, audio=False)
    make_huge_claim_h264(root / "b" / "huge.mp4")  # raw H.264 under a .mp4 name, as downloads come
    make_test_video(root / "b" / "tiny.mkv", codec="ffv1", width=6, height=6, frames=2, audio=False)
    done = cli_run("eval", "-m", "bicubic", "--video", root, "--crfs", "23", "--json")
    assert done.exit_code == 1
    report = json.loads(done.stdout)
    assert [Path(clip["clip"]).name for clip in report["clips"]] == ["ok.mp4"]
    assert sorted(Path(entry["clip"]).name for entry in report["not_scored"]) == ["huge.mp4", "tiny.mkv"]
    assert report["all"][0]["clips"] == 1 and 10 < report["all"][0]["psnr"]["bicubic"] < 60


def test_an_mp4_cut_short_within_its_index_is_skipped_by_name(tmp_path):
    """An MP4 cut where its index leaves the video stream without a codec: the folder's run said
    "unexpected AttributeError" and stopped; it is skipped by name as other damaged clips are."""
    import av

    folder = tmp_path / "mine"
    folder.mkdir()
    make_test_video(folder / "a.mp4", width=64, height=48, frames=3, audio=False)
    whole = make_test_video(tmp_path / "whole.mp4", width=64, height=48, frames=6, audio=False).read_bytes()
    for cut in range(len(whole) - 1, len(whole) // 2, -10):  # where FFmpeg opens it with no codec for the video
        (folder / "cut.mp4").write_bytes(whole[:cut])
        try:
            with av.open(str(folder / "cut.mp4")) as container:
                if container.streams.video and container.streams.video[0].codec_context is None:
                    break
        except av.FFmpegError:
            continue
    else:
        pytest.skip("no cut of this MP4 opens without a codec")
    done = eval_video(folder)
    assert done.returncode == 1
    assert f"Warning: skipped: {folder / 'cut.mp4'} has a video stream that cannot be decoded (no codec" in done.stderr


def test_clips_in_the_folder_itself_keep_apart_from_a_sub_folder_of_its_name(tmp_path):
    from srpipe.default_plugins.espcn.video_eval import clips_by_category

    folder = tmp_path / "test"
    for name in ("a.mp4", "test/b.mp4", "faces/c.mp4"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        make_test_video(folder / name, frames=1, audio=False)
    assert {name: [p.name for p in paths] for name, paths in clips_by_category(folder).items()} == {
        "test (top)": ["a.mp4"], "faces": ["c.mp4"], "test": ["b.mp4"]}
