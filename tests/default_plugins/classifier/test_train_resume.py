"""``srpipe train classifier --resume``: what a resume must share with the run it continues."""

import pytest

from classifier_data import write_fake_mnist


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A finished one-epoch run (a resume of it checks the options, then has nothing left to train)."""
    from click.testing import CliRunner

    from srpipe.cli import build_cli

    root = write_fake_mnist(tmp_path_factory.mktemp("data"), train=64, test=32)
    out = tmp_path_factory.mktemp("run")
    common = ["train", "classifier", "--dataset", "mnist", "--root", str(root), "--epochs", "1", "--threads", "1",
              "-o", str(out)]
    result = CliRunner().invoke(build_cli(), [*common, "--batch-size", "32"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return common, out


@pytest.mark.parametrize("changed, says", [
    (["--batch-size", "16"], "--batch-size 32 (now 16)"),
    (["--batch-size", "32", "--no-augment"], "--no-augment False (now True)"),
    (["--batch-size", "32", "--label-smoothing", "0.1"], "--label-smoothing 0.0 (now 0.1)"),
    (["--batch-size", "32", "--weight-decay", "0.01"], "--weight-decay 0.0001 (now 0.01)"),
    (["--batch-size", "32", "--seed", "3"], "--seed 0 (now 3)"),
])
def test_a_resume_that_changes_an_option_of_the_run_is_refused_naming_it(cli_run, run, changed, says):
    """--batch-size, --no-augment, --label-smoothing, --weight-decay and --seed were changed on a
    resume without a word (the weight decay then ignored, the optimizer's state restored)."""
    common, out = run
    result = cli_run(*common, "--resume", *changed)
    assert result.exit_code == 1 and result.stderr == (
        f"Error: the run in {out} was started with {says}; resume it with the options it was started with, or "
        "start a new run in another folder\n"), result.output


def test_a_resume_with_the_same_options_goes_on_and_the_weights_record_them(cli_run, run):
    import torch

    common, out = run
    assert cli_run(*common, "--resume", "--batch-size", "32").exit_code == 0
    assert torch.load(out / "final.pt", weights_only=True)["meta"]["training"] == {
        "--batch-size": 32, "--no-augment": False, "--label-smoothing": 0.0, "--weight-decay": 0.0001, "--seed": 0}


def test_each_epoch_is_told_as_it_ends_and_ctrl_c_says_how_to_go_on(tmp_path):
    """The epochs' lines came only when the whole run ended (none for a run stopped half-way), and
    Ctrl-C said only 'Interrupted.'."""
    import os
    import signal
    import subprocess
    import sys

    from conftest import default_sigint

    root = write_fake_mnist(tmp_path / "data", train=2000, test=64)
    env = {key: value for key, value in os.environ.items() if key != "PYTHONUNBUFFERED"}  # a pipe, as into tee
    process = subprocess.Popen([sys.executable, "-m", "srpipe", "train", "classifier", "--dataset", "mnist", "--root",
                                str(root), "--epochs", "50", "--threads", "1", "-o", str(tmp_path / "run")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, preexec_fn=default_sigint)
    first = process.stdout.readline().decode()
    assert first.startswith("epoch   1  loss ") and process.poll() is None  # while the run goes on
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130
    hint = [line for line in stderr.decode().splitlines() if line][-2]
    assert hint.startswith("stopped in epoch ") and hint.endswith(
        f"{tmp_path / 'run' / 'last.pt'} holds epoch {int(hint.split()[3]) - 1}: the same command with --resume "
        "continues from there"), stderr.decode()
