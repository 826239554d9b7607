"""srpipe batch: a mirror tree, resumable, failures isolated, interrupts clean."""

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from srpipe.default_plugins.batch.engine import TERMINATE_WAIT_S
from srpipe.outputs import _HOST, process_exists
from srpipe.testing import damage_video, make_test_image, make_test_video

from conftest import default_sigint, run_srpipe, wait_for
from media import video_info
from plugin_helpers import SLOW_PLUGIN, exiting_plugin, fake_plugin


def tree(root):
    return sorted(
        os.path.relpath(os.path.join(folder, name), root)
        for folder, _, names in os.walk(root) for name in names
    )


@pytest.fixture
def inputs(tmp_path):
    root = tmp_path / "in"
    (root / "sub").mkdir(parents=True)
    make_test_video(root / "a.mp4", frames=6)
    make_test_video(root / "sub" / "b.mkv", frames=4, subtitles=True)
    make_test_video(root / "sub" / "c.avi", frames=3, audio=False)
    make_test_image(root / "sub" / "d.jpg")
    (root / "notes.txt").write_text("not media")
    return root


def batch(*args, **kwargs):
    done = run_srpipe("batch", *args, "--json", "-q", **kwargs)
    return done, json.loads(done.stdout) if done.stdout else None


def test_mirror_tree_and_report(inputs, tmp_path):
    out = tmp_path / "out"
    done, report = batch(inputs, out, "-s", "3")
    assert done.returncode == 0, done.stderr.decode()
    assert tree(out) == [".srpipe-batch.json", "a.mp4", "sub/b.mkv", "sub/c.mp4", "sub/d.png"]
    assert (report["done"], report["skipped"], report["failed"], report["frames"]) == (4, 0, 0, 14)
    info = video_info(out / "sub" / "b.mkv")
    assert (info["width"], len(info["times"]), info["types"]) == (192, 4, ["video", "audio", "subtitle"])
    assert video_info(out / "a.mp4")["times"] == video_info(inputs / "a.mp4")["times"]


def test_damaged_frames_skipped_or_mended_are_told(tmp_path):
    """A batch says which frames of which file it left out (--on-decode-error skip) or took as the
    decoder mended them, as upscale does: none goes silently."""
    folder = tmp_path / "in"
    folder.mkdir()
    mjpeg = make_test_video(tmp_path / "clip.mkv", codec="mjpeg", pix_fmt="yuvj420p", frames=10, codec_options={})
    damage_video(mjpeg, folder / "rejected.mkv", frames=(4, 5))  # frames the decoder refuses
    damage_video(make_test_video(tmp_path / "clip.mp4", frames=12, audio=False), folder / "mended.mp4", frames=(3, 7))
    done, report = batch(folder, tmp_path / "out", "-m", "bicubic", "--on-decode-error", "skip")
    assert done.returncode == 0 and report["done"] == 2, done.stderr.decode()
    stderr = done.stderr.decode()
    assert f"Warning: 2 damaged frames of {folder / 'rejected.mkv'} were skipped" in stderr, stderr
    mended = re.search(rf"Warning: (\d+) frames? of {re.escape(str(folder / 'mended.mp4'))} came out of the decoder "
                       "damaged", stderr)
    assert mended, stderr
    counts = [(f["frames"], f["frames_skipped"], f["frames_concealed"])
              for f in sorted(report["files"], key=lambda f: f["input"])]
    assert counts == [(12, 0, int(mended[1])), (8, 2, 0)]  # and in --json


def test_resume_skips_finished_and_redoes_changed(inputs, tmp_path):
    out = tmp_path / "out"
    batch(inputs, out)
    _, report = batch(inputs, out)
    assert (report["done"], report["skipped"]) == (0, 4)

    os.utime(inputs / "a.mp4", ns=(1, 1))  # input changed
    (out / "sub" / "c.mp4").write_bytes(b"half")  # output damaged after the run
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True).stdout
    killed = f".d.srpipe-{_HOST}-{int(dead)}-abc.partial.png"
    (out / killed).write_bytes(b"left by a killed run")
    (out / ".d.mine.partial.png").write_bytes(b"the user's own file")
    _, report = batch(inputs, out)
    redone = sorted(f["input"] for f in report["files"] if f["status"] == "done")
    assert redone == ["a.mp4", "sub/c.avi"]
    assert killed not in tree(out) and ".d.mine.partial.png" in tree(out)
    (out / ".d.mine.partial.png").unlink()
    assert len(video_info(out / "sub" / "c.mp4")["times"]) == 3

    _, report = batch(inputs, out, "-s", "4")  # new settings: everything again
    assert report["done"] == 4


def test_a_bad_file_does_not_stop_the_batch(inputs, tmp_path):
    (inputs / "broken.mp4").write_text("this is not a video")
    (inputs / "sub" / "d.png").write_bytes((inputs / "sub" / "d.jpg").read_bytes())  # same output name
    done, report = batch(inputs, tmp_path / "out")
    assert done.returncode == 1
    failed = {f["input"]: f["error"] for f in report["files"] if f["status"] == "failed"}
    assert "cannot read" in failed["broken.mp4"]
    for name, other in (("sub/d.png", "sub/d.jpg"), ("sub/d.jpg", "sub/d.png")):  # neither takes the name
        assert failed[name] == f"its output sub/d.png is also the output of {other}; rename one (none of them is " \
            "upscaled)"
    assert report["done"] == 3 and not (tmp_path / "out" / "sub" / "d.png").exists()


def test_two_inputs_of_one_output_name_clash_across_runs_too(tmp_path):
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    make_test_video(inputs / "c.avi", frames=3, audio=False)  # both become c.mp4
    make_test_video(inputs / "c.mp4", frames=7, audio=False)
    done, report = batch(inputs, out, "--pattern", "*.avi")
    assert done.returncode == 0 and report["done"] == 1
    written = (out / "c.mp4").read_bytes()
    done, report = batch(inputs, out, "--pattern", "*.mp4")  # replaced c.avi's output without a word
    assert done.returncode == 1
    (failed,) = report["files"]
    assert failed["input"] == "c.mp4" and failed["error"] == "its output c.mp4 is also the output of c.avi; rename one"
    assert (out / "c.mp4").read_bytes() == written


def test_parallel_jobs_give_the_same_frames(inputs, tmp_path):
    done, report = batch(inputs, tmp_path / "one")
    done, report2 = batch(inputs, tmp_path / "two", "--jobs", "2")
    assert done.returncode == 0, done.stderr.decode()
    assert report2["frames"] == report["frames"] == 14
    assert done.stderr == b"", done.stderr.decode()  # the worker pool's semaphores released at exit, no warning
    for name in ("a.mp4", "sub/b.mkv"):
        assert video_info(tmp_path / "one" / name)["times"] == video_info(tmp_path / "two" / name)["times"]


def test_pattern_and_output_inside_input(inputs):
    out = inputs / "upscaled"
    done, report = batch(inputs, out, "--pattern", "*.mkv")
    assert done.returncode == 0
    assert tree(out) == [".srpipe-batch.json", "sub/b.mkv"]
    _, report = batch(inputs, out, "--pattern", "*.mkv")
    assert report["skipped"] == 1 and len(report["files"]) == 1  # its own outputs are not inputs


def test_outputs_cannot_escape_through_links(inputs, tmp_path):
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (out / "sub").symlink_to(elsewhere)
    done, report = batch(inputs, out)
    assert done.returncode == 1
    failed = [f for f in report["files"] if f["status"] == "failed"]
    assert {f["input"] for f in failed} == {"sub/b.mkv", "sub/c.avi", "sub/d.jpg"}
    assert all("outside" in f["error"] for f in failed)
    assert os.listdir(elsewhere) == []


@pytest.mark.parametrize("args, message", [
    (["{missing}", "{out}"], "does not exist or is not a folder"),
    (["{inputs}", "{inputs}"], "the output folder is the input folder"),
    (["{inputs}", "{inputs}/a.mp4"], "is a file; give a folder"),
    (["{inputs}", "{out}", "-m", "nosuch"], "unknown upscaler model 'nosuch'"),
    (["{inputs}", "{out}", "-s", "7"], "does not support --scale 7"),
    (["{inputs}", "{out}", "-m", "espcn", "--backend", "nosuch"], "unknown backend 'nosuch'"),
])
def test_bad_arguments_are_one_line_errors(inputs, tmp_path, args, message):
    names = {"missing": tmp_path / "nope", "out": tmp_path / "out", "inputs": inputs}
    done = run_srpipe("batch", *[a.format(**names) for a in args])
    assert done.returncode == 1
    assert done.stderr.decode().splitlines() == [done.stderr.decode().splitlines()[0]]
    assert done.stderr.startswith(b"Error: ") and message.encode() in done.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_ctrl_c_stops_cleanly_and_resumes(tmp_path, jobs):
    site = fake_plugin(tmp_path / "site", "slow_plugin", SLOW_PLUGIN)
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    for name in ("a", "b", "c"):
        make_test_video(inputs / f"{name}.mp4", frames=30, audio=False)
    env = {**os.environ, "PYTHONPATH": str(site)}
    command = [sys.executable, "-m", "srpipe", "batch", str(inputs), str(out), "-m", "slow", "--batch-size", "1",
               "-j", jobs]
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, preexec_fn=default_sigint)
    deadline = time.monotonic() + 90
    while not any(".partial." in name for name in (tree(out) if out.exists() else [])):
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr.decode()
    assert b"Traceback" not in stderr  # workers stop quietly
    assert b"Warning" not in stderr, stderr.decode()  # srpipe's own handlers are no plugin's doing
    assert not [name for name in tree(out) if ".partial" in name]
    done = subprocess.run(command + ["-q", "--json"], env={**env, "SRPIPE_TEST_SLOW_SECONDS": "0"},
                          capture_output=True, timeout=300)
    report = json.loads(done.stdout)
    assert report["done"] + report["skipped"] == 3 and report["failed"] == 0
    assert tree(out) == [".srpipe-batch.json", "a.mp4", "b.mp4", "c.mp4"]


# A model that does not let its worker stop: SIGTERM ignored, and each call long
STUBBORN_PLUGIN = SLOW_PLUGIN.replace("    scale = 2\n", """    scale = 2

    def __init__(self):  # loaded in the worker's main thread, which alone sets signal handlers
        import signal
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
""").replace("time.sleep(SECONDS)", "time.sleep(5)")


def test_ctrl_c_ends_a_batch_whose_workers_do_not_stop(tmp_path):
    site = fake_plugin(tmp_path / "site", "stubborn_plugin", STUBBORN_PLUGIN)
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    for name in ("a", "b"):
        make_test_video(inputs / f"{name}.mp4", frames=30, audio=False)
    command = [sys.executable, "-m", "srpipe", "batch", str(inputs), str(out), "-m", "slow", "--batch-size", "1",
               "-j", "2"]
    process = subprocess.Popen(command, env={**os.environ, "PYTHONPATH": str(site)}, stderr=subprocess.PIPE,
                               preexec_fn=default_sigint)
    deadline = time.monotonic() + 90
    while len([name for name in (tree(out) if out.exists() else []) if ".partial." in name]) < 2:
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    time.sleep(0.5)  # both workers in the model's call
    process.send_signal(signal.SIGINT)
    started = time.monotonic()
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and time.monotonic() - started < 30, stderr.decode()
    assert not [name for name in tree(out) if ".partial" in name]


# A model whose load takes long: a Ctrl-C of the batch lands in it, in each worker
SLOW_LOADING_PLUGIN = SLOW_PLUGIN.replace("load=lambda **kw: Slow()", "load=load").replace("@hookimpl", """
def load(**kw):
    import os
    open(os.path.join(os.environ["SLOW_LOADING"], str(os.getpid())), "w").close()
    time.sleep(60)
    return Slow()


@hookimpl""")


def test_ctrl_c_ends_workers_in_a_plugins_load_at_once(tmp_path):
    """The workers' stop is a SystemExit raised where they are, here in the plugin's load: it
    must end them, not fail their file as a SystemExit of the plugin's (the batch then waited
    for them, and killed them after 10 s)."""
    site = fake_plugin(tmp_path / "site", "slow_loading_plugin", SLOW_LOADING_PLUGIN)
    inputs, out, loading = tmp_path / "in", tmp_path / "out", tmp_path / "loading"
    inputs.mkdir()
    loading.mkdir()
    for name in ("a", "b"):
        make_test_video(inputs / f"{name}.mp4", frames=3, audio=False)
    command = [sys.executable, "-m", "srpipe", "batch", str(inputs), str(out), "-m", "slow", "-j", "2"]
    process = subprocess.Popen(command, env={**os.environ, "PYTHONPATH": str(site), "SLOW_LOADING": str(loading)},
                               stderr=subprocess.PIPE, preexec_fn=default_sigint)
    deadline = time.monotonic() + 90
    while len(list(loading.iterdir())) < 2:
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    started = time.monotonic()
    _, stderr = process.communicate(timeout=60)
    # at once: before the workers would be killed for not stopping
    assert process.returncode == 130 and time.monotonic() - started < TERMINATE_WAIT_S - 1, stderr.decode()
    assert b"SystemExit" not in stderr


# The slow model, noting the pid of each process that runs it in the folder WORKER_PIDS
PID_NOTING_PLUGIN = SLOW_PLUGIN.replace("        time.sleep(SECONDS)", """\
        open(os.path.join(os.environ["WORKER_PIDS"], str(os.getpid())), "w").close()
        time.sleep(SECONDS)""")


def wait_gone(pids, seconds):
    deadline = time.monotonic() + seconds
    while left := [pid for pid in pids if process_exists(pid)]:
        assert time.monotonic() < deadline, f"processes still running {seconds} s on: {left}"
        time.sleep(0.05)


@pytest.fixture
def killed_batch(tmp_path):
    """A ``--jobs 2`` batch of three slow files (15 s each) started and, once each worker is in
    its first file, given to the test as (its process, the command, its environment, the
    workers' pids); whatever is left of it is killed at the end."""
    site = fake_plugin(tmp_path / "site", "pid_noting_plugin", PID_NOTING_PLUGIN)
    inputs, out, pids = tmp_path / "in", tmp_path / "out", tmp_path / "pids"
    inputs.mkdir()
    pids.mkdir()
    for name in "abc":
        make_test_video(inputs / f"{name}.mp4", frames=30, audio=False)
    env = {**os.environ, "PYTHONPATH": str(site), "WORKER_PIDS": str(pids), "SRPIPE_TEST_SLOW_SECONDS": "0.5"}
    command = [sys.executable, "-m", "srpipe", "batch", str(inputs), str(out), "-m", "slow", "--batch-size", "1",
               "-j", "2", "-q", "--json"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    workers = []
    try:
        wait_for(lambda: len(list(pids.iterdir())) == 2, process, seconds=120)
        workers[:] = [int(name.name) for name in pids.iterdir()]
        yield process, command, env, workers
    finally:
        for pid in [process.pid, *workers]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        process.communicate(timeout=60)


def test_the_workers_of_a_killed_batch_end_with_it_and_the_next_run_redoes_their_files(killed_batch, tmp_path):
    """Orphaned by ``kill -9``, they went on and put their outputs in place without the batch's
    lock, while the next run wrote the same files: it failed them ("appeared while writing") and
    from then on took them for the user's ("exists and this batch did not write it")."""
    process, command, env, workers = killed_batch
    out = tmp_path / "out"
    process.kill()
    process.wait(timeout=60)  # its standard error ends with the workers, which had it too
    wait_gone(workers, 5)  # at once: each was 15 s from the end of its file
    _, stderr = process.communicate(timeout=60)
    assert b"Traceback" not in stderr, stderr.decode()  # no BrokenPipeError of orphans writing to it
    assert [name for name in tree(out) if name.endswith(".mp4") and not name.startswith(".")] == []
    again = subprocess.run(command, env={**env, "SRPIPE_TEST_SLOW_SECONDS": "0"}, capture_output=True, timeout=300)
    report = json.loads(again.stdout)
    assert again.returncode == 0 and (report["done"], report["failed"], report["exists"]) == (3, 0, 0), \
        again.stderr.decode()
    assert tree(out) == [".srpipe-batch.json", "a.mp4", "b.mp4", "c.mp4"]  # the killed workers' partials removed


# The first upscale call of the whole batch (or the first load: the moment a worker has taken
# its job) ends its process: killed, as the system's out-of-memory killer ends a worker, or by
# the plugin itself (os._exit)
DYING_PLUGIN = '''
import os, signal
from srpipe import hookimpl
from srpipe.models import ModelSpec


def die_once():
    try:
        os.close(os.open(os.environ["DYING_ONCE"], os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        return
    if os.environ["DYING_HOW"] == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    os._exit(5)


class DiesOnce:
    scale = 2

    def upscale(self, luma, *, bit_depth, full_range):
        if os.environ["DYING_WHEN"] == "upscale":
            die_once()
        return luma.repeat(2, axis=1).repeat(2, axis=2)


def load(**kw):
    if os.environ["DYING_WHEN"] == "load":
        die_once()
    return DiesOnce()


@hookimpl
def register_models(register):
    register(ModelSpec(name="dies-once", scales=(2,), description="ends its process", load=load))
'''


@pytest.mark.parametrize("how, when", [("kill", "upscale"), ("exit", "upscale"), ("kill", "load")])
def test_a_worker_that_dies_fails_its_file_and_the_batch_goes_on(tmp_path, how, when):
    """Killed as it takes its job (``load``), a worker's only word of the job it had (a message
    its queue's thread had not yet handed over) was lost, and the batch waited for ever."""
    site = fake_plugin(tmp_path / "site", "dying_plugin", DYING_PLUGIN)
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    for name in "abcd":
        make_test_video(inputs / f"{name}.mp4", frames=4, audio=False)
    env = {**os.environ, "PYTHONPATH": str(site), "DYING_ONCE": str(tmp_path / "once"), "DYING_HOW": how,
           "DYING_WHEN": when}
    done, report = batch(inputs, out, "-m", "dies-once", "--jobs", "2", env=env)
    assert done.returncode == 1, done.stderr.decode()
    assert (report["done"], report["failed"]) == (3, 1)
    (failed,) = [f for f in report["files"] if f["status"] == "failed"]
    assert failed["error"].startswith("the worker process upscaling it died (killed by the system, out of memory?")
    assert tree(out) == sorted([".srpipe-batch.json", *(f"{n}.mp4" for n in "abcd" if f"{n}.mp4" != failed["input"])])
    done, report = batch(inputs, out, "-m", "dies-once", "--jobs", "2", env=env)  # the next run does it
    assert done.returncode == 0 and (report["done"], report["skipped"]) == (1, 3)


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_plugins_system_exit_fails_its_file_and_the_batch_goes_on(tmp_path, jobs):
    """It ended the batch at its first file, in this process or in the worker's."""
    site = exiting_plugin(tmp_path / "site", "upscale", 3, once=tmp_path / "once")
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    for name in "abc":
        make_test_video(inputs / f"{name}.mp4", frames=4, audio=False)
    done, report = batch(inputs, out, "-m", "exits", "--jobs", jobs, env={"PYTHONPATH": str(site)})
    assert done.returncode == 1, done.stderr.decode()
    assert (report["done"], report["failed"]) == (2, 1)
    (failed,) = [f for f in report["files"] if f["status"] == "failed"]
    assert failed["error"] == ("SystemExit in plugin 'exiting_plugin' (1.0): 3; report it to the plugin's authors, "
                               "or run without it: SRPIPE_DISABLE_PLUGINS=exiting_plugin")
    assert tree(out) == sorted([".srpipe-batch.json", *(f"{n}.mp4" for n in "abc" if f"{n}.mp4" != failed["input"])])


def test_backend_choice_and_kept_model(inputs, tmp_path, monkeypatch):
    from srpipe import upscaling

    monkeypatch.setattr(upscaling, "_kept_models", {})  # nothing kept from other tests

    done, report = batch(inputs, tmp_path / "out", "-m", "espcn", "--backend", "onnxruntime", "--pattern", "*.mp4")
    assert done.returncode == 0, done.stderr.decode()
    assert report["done"] == 1 and len(video_info(tmp_path / "out" / "a.mp4")["times"]) == 6
    clip = inputs / "a.mp4"
    upscaling.upscale(str(clip), str(tmp_path / "1.mp4"), model="espcn", keep_model=True)
    kept = list(upscaling._kept_models.values())
    upscaling.upscale(str(clip), str(tmp_path / "2.mp4"), model="espcn", keep_model=True)
    assert len(kept) == 1 and list(upscaling._kept_models.values())[0] is kept[0]  # loaded once
    upscaling.upscale(str(clip), str(tmp_path / "3.mp4"), model="espcn-x3", keep_model=True)
    assert list(upscaling._kept_models.values())[-1] is not kept[0]  # other settings: loaded
    for index, model in enumerate(("espcn-x4", "espcn-clean-x2", "espcn-clean-x3"), start=4):
        upscaling.upscale(str(clip), str(tmp_path / f"{index}.mp4"), model=model, keep_model=True)
    assert len(upscaling._kept_models) == 5 and kept[0] in upscaling._kept_models.values()
    third = list(upscaling._kept_models.values())[1]  # espcn-x3's
    upscaling.upscale(str(clip), str(tmp_path / "7.mp4"), model="espcn", keep_model=True)  # used again: kept longer
    upscaling.upscale(str(clip), str(tmp_path / "8.mp4"), model="espcn-clean-x4", keep_model=True)
    assert len(upscaling._kept_models) == 5 and kept[0] in upscaling._kept_models.values()  # five at most
    assert third not in upscaling._kept_models.values()  # the one used longest ago went


def test_another_batchs_output_folder_and_linked_folders_are_left_out_with_a_warning(tmp_path):
    """A second batch of a photo folder (x4 after x2, each into a sub-folder) upscaled the first's
    outputs again, at 8x; a linked folder was passed over without a word."""
    photos, elsewhere = tmp_path / "photos", tmp_path / "elsewhere"
    photos.mkdir()
    elsewhere.mkdir()
    make_test_image(photos / "a.jpg")
    make_test_image(photos / "b.jpg").rename(photos / "b.jfif")  # a browser's name for a JPEG
    make_test_image(elsewhere / "c.png")
    (photos / "linked").symlink_to(elsewhere)
    done, report = batch(photos, photos / "x2")
    assert done.returncode == 0, done.stderr.decode()
    assert sorted(f["input"] for f in report["files"]) == ["a.jpg", "b.jfif"]
    assert "linked/ is left out: it is a link to a folder" in done.stderr.decode()
    done, report = batch(photos, photos / "x4", "-s", "4")
    assert done.returncode == 0, done.stderr.decode()
    assert sorted(f["input"] for f in report["files"]) == ["a.jpg", "b.jfif"]
    assert "x2/ is left out: it is another srpipe batch's OUT_DIR" in done.stderr.decode()
    assert tree(photos / "x4") == [".srpipe-batch.json", "a.png", "b.png"]


def test_hidden_files_and_folders_are_left_out_unless_the_pattern_names_them(tmp_path):
    """On a shared drive macOS writes ._NAME beside each clip (AppleDouble: not a video), and
    .Trashes holds deleted files: read as clips, the first failed the batch with exit 1."""
    photos = tmp_path / "in"
    (photos / ".Trashes").mkdir(parents=True)
    make_test_video(photos / "a.mp4", frames=3)
    (photos / "._a.mp4").write_bytes(b"\x00\x05\x16\x07" + bytes(4092))
    make_test_video(photos / ".Trashes" / "deleted.mp4", frames=3)
    make_test_video(photos / ".draft.mp4", frames=3)
    done, report = batch(photos, tmp_path / "out")
    assert done.returncode == 0, done.stderr.decode()
    assert [f["input"] for f in report["files"]] == ["a.mp4"]
    done, report = batch(photos, tmp_path / "drafts", "--pattern", ".d*.mp4")
    assert done.returncode == 0, done.stderr.decode()
    assert [f["input"] for f in report["files"]] == [".draft.mp4"]
    (photos / "a.mp4").unlink()  # only hidden ones left: said, not an empty report without a word
    done, report = batch(photos, tmp_path / "none")
    assert done.returncode == 0 and report["files"] == []
    assert ("(3 hidden files or folders, left out unless --pattern names them by their leading dot); --pattern picks "
            "files by name") in done.stderr.decode()


def test_a_folder_with_no_media_names_says_so(tmp_path):
    (tmp_path / "in").mkdir()
    make_test_image(tmp_path / "in" / "photo.png").rename(tmp_path / "in" / "photo")  # no name to tell it by
    (tmp_path / "in" / "notes.txt").write_text("not media")
    done, report = batch(tmp_path / "in", tmp_path / "out")
    assert done.returncode == 0 and report["files"] == []
    assert "no file under" in done.stderr.decode() and "(2 other files); --pattern picks files by name" in \
        done.stderr.decode()


def test_a_stopped_worker_that_missed_its_signal_is_sent_it_again():
    """A SIGTERM that lands as a worker starts to wait for its next job is acted on only when
    another signal comes: the pool's own single signal left such a worker waiting until it was
    killed 10 s later (Ctrl-C, and a pool that lost a job to a dead worker)."""
    import multiprocessing
    import signal
    import time

    from srpipe.default_plugins.batch.engine import _terminate

    ready = multiprocessing.get_context("fork").Event()

    def acts_on_the_second_signal():
        signals = []

        def handler(signum, frame):
            signals.append(signum)
            if len(signals) == 2:
                os._exit(0)

        signal.signal(signal.SIGTERM, handler)
        ready.set()
        while True:
            time.sleep(0.05)

    worker = multiprocessing.get_context("fork").Process(target=acts_on_the_second_signal, daemon=True)
    worker.start()
    assert ready.wait(10)

    class Pool:  # as multiprocessing's: one SIGTERM to each worker, then a wait for them
        def terminate(self):
            os.kill(worker.pid, signal.SIGTERM)
            worker.join()

    assert _terminate(Pool(), []) is True  # ended by itself: not killed after TERMINATE_WAIT_S
    assert worker.exitcode == 0


def test_an_animated_png_named_apng_is_upscaled_as_one(tmp_path):
    """Its own name, .apng, is a video name too: it was passed over without a word."""
    folder = tmp_path / "in"
    folder.mkdir()
    make_test_video(folder / "a.apng", codec="apng", pix_fmt="rgb24", frames=3, audio=False, title=None)
    done = run_srpipe("batch", folder, tmp_path / "out", "-q", "--json")
    assert done.returncode == 0, done.stderr.decode()
    assert json.loads(done.stdout)["done"] == 1
    upscaled = video_info(tmp_path / "out" / "a.apng")
    assert upscaled["width"] == 128 and len(upscaled["times"]) == 3


def test_a_batch_says_how_many_frames_it_deinterlaced(tmp_path):
    from srpipe.testing import make_interlaced_clip, test_pattern

    folder = tmp_path / "in"
    folder.mkdir()
    make_interlaced_clip(folder / "tv.mp4", [test_pattern(64, 48, i) for i in range(8)])
    done = run_srpipe("batch", folder, tmp_path / "out")
    assert done.returncode == 0, done.stderr.decode()
    assert re.search(r"done +tv\.mp4 -> tv\.mp4 \(4 frames, [0-9.]+ s, 4 deinterlaced\)", done.stderr.decode())
