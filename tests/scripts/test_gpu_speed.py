"""scripts/gpu_speed.py, what scripts/gpu_check.sh runs on a GPU machine, run here on the CPU at a
small size: each way of running the network is timed and compared with float32, and the pipeline's
two runs are read from srpipe's own summaries."""

import json
import subprocess
import sys

from conftest import REPO


def test_network_and_pipeline_figures_on_the_cpu(tmp_path):
    figures = tmp_path / "figures.json"
    refusing = tmp_path / "py-spy"  # a profiler the machine does not let trace: the figures still come
    refusing.write_text("#!/bin/sh\necho 'Permission denied' >&2\nexit 1\n")
    refusing.chmod(0o755)
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "gpu_speed.py"), "network", "pipeline",
                           "--device", "cpu", "--size", "64x48", "--batch", "2", "--seconds", "0.05",
                           "--frames", "3", "--json", str(figures), "--py-spy", str(refusing)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    result = json.loads(figures.read_text())
    ways = {row["way"]: row for row in result["network"]}
    assert set(ways) == {"float32", "float16 channels_last", "float16 channels_last cudnn.benchmark",
                         "bfloat16 channels_last", "bfloat16 channels_last cudnn.benchmark"}
    assert ways["float32"]["levels_from_float32"] == 0
    assert all(row["fps"] > 0 for row in ways.values())
    # float16 keeps 11 bits, bfloat16 8: both near float32, neither equal to it
    assert 0 < ways["float16 channels_last"]["levels_from_float32"] < 1
    assert 0 < ways["bfloat16 channels_last"]["levels_from_float32"] < 8
    pipeline = result["pipeline"]
    assert pipeline["espcn_device"] == pipeline["bicubic_device"] == "cpu"
    assert pipeline["ratio"] == pipeline["espcn_fps"] / pipeline["bicubic_fps"] > 0
    assert pipeline["gpu_busy_mean"] is None  # nvidia-smi is asked only on CUDA
    assert "pipeline 960x540 -> 1920x1080, 3 frames: espcn (cpu" in done.stdout
    assert "profile: py-spy failed (Permission denied)" in done.stdout
    assert not list(tmp_path.glob("*.mp4"))  # its clips and outputs stay in its own temporary folder


def test_all_parts_are_the_default_and_an_unknown_one_is_refused(tmp_path):
    """What gpu_check.sh runs: no PART names all three (Python before 3.12 refused an empty list
    checked against choices)."""
    script = [sys.executable, str(REPO / "scripts" / "gpu_speed.py"), "--device", "cpu", "--size", "32x24",
              "--batch", "1", "--seconds", "0.01", "--frames", "2", "--rounds", "1",
              "--json", str(tmp_path / "all.json")]
    done = subprocess.run(script, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert set(json.loads((tmp_path / "all.json").read_text())) == {"device", "network", "startup", "pipeline"}
    refused = subprocess.run([*script[:2], "speed"], capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "PART is one of network, startup, pipeline, not speed" in refused.stderr
