"""The batch on a real local Ray cluster (loopback, 2 CPUs): same frames and timestamps
as one process, chunked long videos, a manifest shared with the local engine."""

import json
import os
import signal
import socket
import subprocess
import sys

import numpy as np
import pytest
from test_chunks import GOP, assert_same_video, decoded

from srpipe.default_plugins.batch.engine import BatchSettings, run_batch
from srpipe.default_plugins.batch.ray_engine import _connect, check_address, worker_layout
from srpipe.errors import SrpipeError
from srpipe.media import SinkOptions
from srpipe.testing import make_test_video

from conftest import default_sigint, run_srpipe, wait_for
from plugin_helpers import SLOW_PLUGIN, exiting_plugin, fake_plugin

ray = pytest.importorskip("ray")
# one test worker runs them all (pyproject.toml: --dist loadgroup), against one local cluster
pytestmark = pytest.mark.xdist_group("ray")


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, logging_level="warning")
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture
def clips(tmp_path):
    root = tmp_path / "in"
    (root / "sub").mkdir(parents=True)
    make_test_video(root / "long.mp4", frames=60, codec_options=GOP, rotation=90)
    make_test_video(root / "sub" / "subs.mkv", frames=40, subtitles=True, codec_options=GOP)
    make_test_video(root / "sub" / "short.mp4", frames=5)
    return root


def test_ray_run_equals_one_process_losslessly(cluster, clips, tmp_path):
    settings = BatchSettings(sink=SinkOptions(codec="ffv1"))
    local = run_batch(clips, tmp_path / "local", settings)
    frames = []
    on_ray = run_batch(clips, tmp_path / "ray", settings, engine="ray", chunk_seconds=0.5,
                       on_frame=lambda n=1: frames.append(n))
    assert on_ray.to_dict()["done"] == local.to_dict()["done"] == 3
    assert on_ray.frames == local.frames == sum(frames) == 105
    for name in ("long.mp4", "sub/subs.mkv", "sub/short.mp4"):
        assert_same_video(tmp_path / "ray" / name, tmp_path / "local" / name)
        for (pts_a, a), (pts_b, b) in zip(decoded(tmp_path / "ray" / name), decoded(tmp_path / "local" / name),
                                          strict=True):
            assert pts_a == pts_b and all(np.array_equal(x, y) for x, y in zip(a, b))


def test_cli_joins_a_running_cluster_and_shares_the_manifest(cluster, clips, tmp_path):
    out = tmp_path / "out"
    done = run_srpipe("batch", clips, out, "--pattern", "long.mp4", "-q")
    assert done.returncode == 0, done.stderr.decode()
    done = run_srpipe("batch", clips, out, "--engine", "ray", "--address", cluster, "--chunk-seconds", "0.5",
                      "-q", "--json")
    assert done.returncode == 0, done.stderr.decode()
    report = json.loads(done.stdout)
    assert (report["done"], report["skipped"], report["failed"]) == (2, 1, 0)  # long.mp4 done by the local run
    assert sorted(p.name for p in out.iterdir()) == [".srpipe-batch.json", "long.mp4", "sub"]


def test_a_plugins_system_exit_fails_its_file_and_the_batch_goes_on(tmp_path):
    """The actor died with it, and the whole batch with ActorDiedError. On a cluster of the
    batch's own: the actors of one already running do not have the plugin."""
    site = exiting_plugin(tmp_path / "site", "load", 3, once=tmp_path / "once")
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in "abc":
        make_test_video(inputs / f"{name}.mp4", frames=4, audio=False)
    done = run_srpipe("batch", inputs, tmp_path / "out", "-m", "exits", "--engine", "ray", "--jobs", "2", "-q",
                      "--json", env={"PYTHONPATH": str(site)})
    assert done.returncode == 1, done.stderr.decode()
    report = json.loads(done.stdout)
    assert (report["done"], report["failed"]) == (2, 1)
    (failed,) = [f for f in report["files"] if f["status"] == "failed"]
    assert failed["error"].startswith("SystemExit in plugin 'exiting_plugin' (1.0): 3; report it")


def test_ctrl_c_and_sigterm_stop_cleanly_and_leave_no_half_written_outputs(tmp_path):
    """The actors were killed with their outputs half-written, whole files' and chunks' parts alike;
    and Ray's SIGTERM handlers, in place of srpipe's, dumped a crash report and aborted (exit 134)."""
    site = fake_plugin(tmp_path / "site", "slow_plugin", SLOW_PLUGIN)
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in "ab":
        make_test_video(inputs / f"{name}.mp4", frames=30, audio=False, codec_options=GOP)
    for stop, code, words, chunk_seconds in ((signal.SIGINT, 130, "Interrupted.", 0),
                                             (signal.SIGTERM, 143, "Terminated.", 0.5)):
        out = tmp_path / f"out-{code}"

        def partials():
            return [name for _, _, names in os.walk(out) for name in names if ".partial." in name]

        process = subprocess.Popen([sys.executable, "-m", "srpipe", "batch", inputs, out, "-m", "slow", "--batch-size",
                                    "1", "--engine", "ray", "--jobs", "2", "--chunk-seconds", str(chunk_seconds)],
                                   env={**os.environ, "PYTHONPATH": str(site)}, stderr=subprocess.PIPE,
                                   preexec_fn=default_sigint)
        wait_for(partials, process, seconds=120)
        process.send_signal(stop)
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == code and words in stderr.decode().splitlines(), stderr.decode()
        assert b"Traceback" not in stderr and b"received at time" not in stderr, stderr.decode()
        assert not partials()


def test_worker_layout_one_actor_per_gpu_else_per_cpu():
    assert worker_layout({"CPU": 16.0, "GPU": 2.0}, None) == (2, {"num_gpus": 1, "num_cpus": 8})
    assert worker_layout({"CPU": 16.0, "GPU": 2.0}, 1) == (1, {"num_gpus": 1, "num_cpus": 16})
    assert worker_layout({"CPU": 2.0}, None) == (2, {"num_cpus": 1})
    assert worker_layout({"CPU": 16.0}, 4) == (4, {"num_cpus": 4})
    assert worker_layout({"CPU": 2.0}, 8) == (2, {"num_cpus": 1})


def test_without_ray_installed_the_error_says_what_to_install(clips, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(SrpipeError, match=r"pip install 'srpipe\[ray\]'"):
        run_batch(clips, tmp_path / "out", engine="ray")


def test_address_needs_the_ray_engine(clips, tmp_path):
    done = run_srpipe("batch", clips, tmp_path / "out", "--address", "auto")
    assert done.returncode == 2 and b"--address is for --engine ray" in done.stderr


def test_an_address_where_nothing_answers_fails_at_once_before_making_out_dir(clips, tmp_path):
    """Ray itself tried again for ever there, printing warnings, with OUT_DIR made and locked."""
    with socket.socket() as port:  # bound, not listening: connections to it are refused
        port.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{port.getsockname()[1]}"
        done = run_srpipe("batch", clips, tmp_path / "out", "--engine", "ray", "--address", address,
                          env={"RAY_ADDRESS": ""}, timeout=60)
    assert done.returncode == 1
    assert done.stderr.decode() == (f"Error: no Ray cluster answers at {address}: Connection refused; start it "
                                    "(ray start --head) or check --address (e.g. auto, or HOST:6379)\n")
    assert not (tmp_path / "out").exists()


def test_rays_own_connection_error_reads_as_one_sentence(monkeypatch):
    def init(**kwargs):  # Ray's words for --address auto where no cluster runs
        raise ConnectionError("Could not find any running Ray instance. Please specify the one to connect to by "
                              "setting `--address` flag or `RAY_ADDRESS` environment variable.")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", init)
    with pytest.raises(SrpipeError, match=r"`RAY_ADDRESS` environment variable; check --address \(e\.g\. auto"):
        _connect("auto")


def test_ray_address_is_taken_where_ray_takes_it(monkeypatch):
    """Ray reads RAY_ADDRESS only where --address is left out or auto: a given HOST:PORT is checked alone."""
    with socket.socket() as listening, socket.socket() as refusing:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        refusing.bind(("127.0.0.1", 0))
        live, dead = (f"127.0.0.1:{s.getsockname()[1]}" for s in (listening, refusing))
        monkeypatch.setenv("RAY_ADDRESS", dead)
        check_address(live)
        for address in (None, "auto"):
            with pytest.raises(SrpipeError, match=f"^no Ray cluster answers at {dead} \\(RAY_ADDRESS\\)"):
                check_address(address)
