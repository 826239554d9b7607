"""scripts/quantize_espcn.py --check: the gate run again on a shipped int8 graph on this CPU
(on a small clip here; the script's own clips take minutes)."""

import importlib.util
import sys

import pytest

from srpipe.default_plugins.espcn import quantize
from srpipe.default_plugins.espcn.openvino_backend import has_fast_int8
from srpipe.default_plugins.espcn.shipped import WEIGHTS_DIR

from conftest import REPO

spec = importlib.util.spec_from_file_location("quantize_espcn", REPO / "scripts" / "quantize_espcn.py")
script = importlib.util.module_from_spec(spec)
spec.loader.exec_module(script)


@pytest.fixture
def small_gate(monkeypatch):
    monkeypatch.setattr(quantize, "gate_clips", lambda video: {"two-tone": quantize.two_tone_clip(4, 96, 64)})


def check(monkeypatch, *names):
    monkeypatch.setattr(sys, "argv", ["quantize_espcn.py", "--check", *(str(WEIGHTS_DIR / name) for name in names)])
    with pytest.raises(SystemExit) as exited:
        script.main()
    return exited.value.code


@pytest.mark.skipif(not has_fast_int8(), reason="this CPU has none of the instructions int8 runs on (or no OpenVINO)")
def test_a_shipped_graph_is_scored_on_this_cpu_beside_its_record(monkeypatch, capsys, small_gate):
    assert check(monkeypatch, "espcn_fast_x2.pt") == 0
    out = capsys.readouterr().out
    assert "espcn_fast_x2.pt: the shipped int8 graph on this CPU (" in out
    lines = [line for line in out.splitlines() if "loss against float32" in line]
    assert [line.split(":")[0].strip() for line in lines] == ["crf  0", "crf 23", "crf 30"]
    assert all("where it was made: " in line for line in lines)
    assert "passes the gate here" in out


def test_a_checkpoint_without_a_graph_fails_the_check(monkeypatch, capsys, small_gate):
    assert check(monkeypatch, "espcn_x3.pt") == 1
    assert "espcn_x3.pt: no int8 graph shipped for it" in capsys.readouterr().out


@pytest.mark.skipif(not has_fast_int8(), reason="this CPU has none of the instructions int8 runs on (or no OpenVINO)")
def test_a_graph_over_the_gate_fails_the_check_and_the_rest_are_still_checked(monkeypatch, capsys, small_gate):
    monkeypatch.setattr(quantize, "CLIP_LOSS_DB", -1.0)  # no graph is better than float32 on every clip
    assert check(monkeypatch, "espcn_fast_x2.pt", "espcn_midbitrate_x2.pt") == 1
    out = capsys.readouterr().out
    assert out.count("FAILS the gate here") == 2
