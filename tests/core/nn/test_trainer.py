import json

import pytest
import torch

from srpipe.default_plugins.espcn.network import ESPCN, ESPCNConfig
from srpipe.default_plugins.espcn.task import SRTask
from srpipe.errors import SrpipeError
from srpipe.nn.checkpoint import load_checkpoint, make_checkpoint, save_checkpoint
from srpipe.nn.trainer import TrainConfig, Trainer


class RandomBatches:
    """Fresh random batches each epoch from torch's global generator (restored on resume)."""

    def __len__(self):
        return 4

    def __iter__(self):
        for _ in range(4):
            hr = torch.rand(2, 1, 8, 8)
            yield torch.nn.functional.avg_pool2d(hr, 2), hr


class Crash(Exception):
    pass


class CrashingTask(SRTask):
    """Raises after ``after`` training steps, like a killed run."""

    def __init__(self, after):
        super().__init__(2)
        self.after = after

    def loss(self, model, batch):
        self.after -= 1
        if self.after < 0:
            raise Crash
        return super().loss(model, batch)


def make(out, task=None, epochs=3):
    torch.manual_seed(0)
    net = ESPCN(ESPCNConfig(scale=2, features=(4,), kernels=(3, 3), activation="prelu"))
    hr = torch.rand(1, 1, 32, 32)
    val = [(torch.nn.functional.avg_pool2d(hr, 2), hr)]
    cfg = TrainConfig(epochs=epochs, lr=1e-2, seed=3, device="cpu", out_dir=str(out))
    return Trainer(net, task or SRTask(2), RandomBatches(), {"toy": val}, cfg, meta={"who": "test"})


def test_resume_equals_uninterrupted_run(tmp_path):
    straight = make(tmp_path / "a")
    straight.fit()
    with pytest.raises(Crash):
        make(tmp_path / "b", CrashingTask(after=6)).fit()  # dies in epoch 2
    assert load_checkpoint(tmp_path / "b" / "last.pt")["train"]["epoch"] == 1
    resumed = make(tmp_path / "b")
    resumed.fit(resume=True)
    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert straight.optimizer.state_dict()["state"][0]["exp_avg"].equal(
        resumed.optimizer.state_dict()["state"][0]["exp_avg"])
    assert [h["train_loss"] for h in straight.history] == [h["train_loss"] for h in resumed.history]


def test_a_run_is_resumed_only_as_it_was_started(tmp_path):
    first = make(tmp_path / "run")
    first.config.stop_after = 1
    first.fit()
    with pytest.raises(SrpipeError, match=r"holds an unfinished run \(last.pt\); pass --resume to continue it"):
        make(tmp_path / "run").fit()  # afresh, it would replace the run's checkpoint
    with pytest.raises(SrpipeError, match=r"was started with epochs 3 \(now 6\): its learning rate follows"):
        make(tmp_path / "run", epochs=6).fit(resume=True)
    wider = make(tmp_path / "run")
    wider.model = ESPCN(ESPCNConfig(scale=2, features=(8,), kernels=(3, 3), activation="prelu"))
    with pytest.raises(SrpipeError, match=r"trains another network than this one: features \(4,\) \(now \(8,\)\)"):
        wider.fit(resume=True)
    # settings that hold no weights of their own are the network too
    reflecting = make(tmp_path / "run")
    reflecting.model = ESPCN(ESPCNConfig(scale=2, features=(4,), kernels=(3, 3), activation="prelu",
                                         padding_mode="reflect"))
    with pytest.raises(SrpipeError, match=r"another network than this one: padding_mode zeros \(now reflect\)"):
        reflecting.fit(resume=True)
    save_checkpoint(make_checkpoint(first.model, {}), tmp_path / "run" / "last.pt")  # weights only
    with pytest.raises(SrpipeError, match="holds weights, not a run to resume"):
        make(tmp_path / "run").fit(resume=True)


def test_a_finished_run_may_be_run_again_afresh(tmp_path):
    first = make(tmp_path / "run", epochs=2)
    first.fit()
    again = make(tmp_path / "run", epochs=2)
    again.fit()
    lines = (tmp_path / "run" / "log.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]  # this run's log only


def test_logs_and_checkpoints(tmp_path):
    history = make(tmp_path, epochs=2).fit()
    lines = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2]
    assert {"train_loss", "lr", "toy/psnr", "toy/ssim"} <= set(lines[0])
    assert lines[-1]["lr"] == pytest.approx(0.0, abs=1e-12)  # cosine to zero
    final = load_checkpoint(tmp_path / "final.pt")
    assert "train" not in final and final["meta"]["who"] == "test"
    assert final["meta"]["history"] == history


def test_each_epoch_is_told_in_a_line_where_progress_is_shown(tmp_path, capsys):
    """Long training said nothing between its start and its end but a bar that each epoch's end
    cleared: each epoch's figures now stay, one line each (stderr; on a terminal by default)."""
    trainer = make(tmp_path, epochs=2)
    trainer.config.progress = True
    trainer.fit()
    lines = [line for line in capsys.readouterr().err.replace("\r", "\n").splitlines() if "train_loss" in line]
    assert [line.split(":")[0] for line in lines] == ["epoch 1/2", "epoch 2/2"]  # not the bars' own lines
    assert "toy/psnr" in lines[0]
    trainer = make(tmp_path / "quiet", epochs=1)
    trainer.config.progress = False
    trainer.fit()
    assert capsys.readouterr().err == ""


def test_stop_after_then_resume_equals_uninterrupted_run(tmp_path):
    straight = make(tmp_path / "a")
    straight.fit()
    first = make(tmp_path / "b")
    first.config.stop_after = 2
    first.fit()
    assert first.epoch == 2 and not (tmp_path / "b" / "final.pt").exists()
    resumed = make(tmp_path / "b")
    resumed.fit(resume=True)
    assert resumed.epoch == 3 and (tmp_path / "b" / "final.pt").exists()
    for a, b in zip(straight.model.parameters(), resumed.model.parameters()):
        assert torch.equal(a, b)


def test_overwrite_starts_an_unfinished_run_afresh(tmp_path):
    """-y of 'srpipe train classifier': an unfinished run is replaced rather than refused."""
    first = make(tmp_path / "run")
    first.config.stop_after = 1
    first.fit()
    again = make(tmp_path / "run")
    with pytest.warns(UserWarning, match="the unfinished run in .* is started afresh"):
        again.fit(overwrite=True)
    assert load_checkpoint(tmp_path / "run" / "last.pt")["train"]["epoch"] == 3
    lines = (tmp_path / "run" / "log.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3]


def test_a_run_is_resumed_only_on_the_data_it_was_started_on(tmp_path):
    """What a trainer is told makes the run (its data, a teacher or none) must be the same on resume."""
    def on(data, teacher=None):
        trainer = make(tmp_path / "run")
        trainer.same_on_resume = {"data": data, "teacher": teacher}
        return trainer
    first = on(["photos"])
    first.config.stop_after = 1
    first.fit()
    with pytest.raises(SrpipeError, match=r"was started with data \['photos'\] \(now \['other-photos'\]\);"):
        on(["other-photos"]).fit(resume=True)
    with pytest.raises(SrpipeError, match=r"was started with teacher None \(now 5e1f\);"):  # none at the start
        on(["photos"], "5e1f").fit(resume=True)
    with pytest.raises(SrpipeError, match="was started with another data;"):  # too long for the line
        on(["photos-" + "x" * 80]).fit(resume=True)
    on(["photos"]).fit(resume=True)


def test_the_log_is_the_checkpoints_after_a_resume(tmp_path):
    """A run stopped between an epoch's log line and its checkpoint resumed with that epoch twice
    in its log: now with one record an epoch, as the checkpoint knows them."""
    first = make(tmp_path / "run")
    first.config.stop_after = 2
    first.fit()
    log = tmp_path / "run" / "log.jsonl"
    lines = log.read_text().splitlines()
    with open(log, "a") as f:  # the third epoch logged, its checkpoint never written
        f.write(json.dumps({"epoch": 3, "train_loss": 1.0}) + "\n")
    resumed = make(tmp_path / "run")
    resumed.fit(resume=True)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3]
    assert records[:2] == [json.loads(line) for line in lines] and records[2] == resumed.history[2]


def test_a_run_whose_checkpoint_cannot_be_read_says_how_to_start_afresh(tmp_path):
    first = make(tmp_path / "run")
    first.config.stop_after = 1
    first.fit()
    last = tmp_path / "run" / "last.pt"
    last.write_bytes(last.read_bytes()[:1000])  # cut short, as a full disk leaves it
    for resume in (False, True):
        with pytest.raises(SrpipeError, match=f"last.pt is corrupt .*; pass --overwrite \\(or remove the folder "
                                              f"{tmp_path / 'run'}\\) to start afresh"):
            make(tmp_path / "run").fit(resume=resume)
    with pytest.warns(UserWarning, match="the unfinished run in .* is started afresh"):
        make(tmp_path / "run").fit(overwrite=True)
    assert load_checkpoint(last)["train"]["epoch"] == 3
