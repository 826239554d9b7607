"""One trainer for every task: AdamW, cosine schedule, validation, checkpoints and resume.

A task says how to compute the loss of a training batch and the metrics of a validation
batch; the trainer does everything else.
"""

from __future__ import annotations

import json
import math
import random
import sys
import time
import warnings
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Protocol

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from srpipe.errors import CheckpointError, SrpipeError
from srpipe.nn.checkpoint import (
    check_finite,
    load_checkpoint,
    make_checkpoint,
    network_from_checkpoint,
    save_checkpoint,
)
from srpipe.nn.expanded import folded, is_expanded
from srpipe.nn.registry import describe
from srpipe.outputs import write_atomically


class Task(Protocol):
    """What a trainer needs to know about a task."""

    def loss(self, model: nn.Module, batch: Any) -> torch.Tensor:
        """The scalar loss to minimise on a training batch."""

    def metrics(self, model: nn.Module, batch: Any) -> dict[str, float]:
        """Validation metrics of one batch (the trainer averages them over batches)."""


# What a resumed run must share with the run it continues: its learning-rate schedule follows them
SCHEDULE = ("epochs", "steps_per_epoch", "lr")


@dataclass
class TrainConfig:
    """``steps_per_epoch`` None means one pass over the training data per epoch."""

    epochs: int = 10
    steps_per_epoch: int | None = None
    lr: float = 1e-3
    weight_decay: float = 0.0
    seed: int = 0
    device: str | None = None  # None: CUDA when present
    amp: bool = True  # bfloat16 autocast, CUDA only
    grad_clip: float | None = None
    out_dir: str | None = None  # last.pt, final.pt, log.jsonl
    stop_after: int | None = None  # end fit() after this epoch, to resume later; schedule unchanged
    progress: bool | None = None  # None: when stderr is a terminal


def _afresh(run: Path) -> str:
    """What to do with a run that cannot be resumed."""
    return f"pass --overwrite (or remove the folder {run}) to start afresh"


def _run_checkpoint(last: Path) -> dict:
    """The run's checkpoint ``last``, refused, where it cannot be read, with what to do."""
    return load_checkpoint(last, _afresh(last.parent))


def _unfinished(last: Path, overwrite: bool = False) -> bool:
    """Whether the run whose checkpoint is ``last`` stopped before its last epoch (with
    ``overwrite``, one that cannot be read counts as unfinished rather than being refused)."""
    try:
        train = _run_checkpoint(last).get("train")
    except CheckpointError:
        if overwrite:
            return True
        raise
    if not isinstance(train, dict):
        return False
    return train.get("epoch", 0) < train.get("train_config", {}).get("epochs", 0)


def _change(name: str, started: Any, now: Any) -> str:
    """``teacher x (now y)``, the values left out where they would not fit a line."""
    told = f"{name} {started} (now {now})"
    return told if len(told) <= 80 else f"another {name}"


def to_device(batch: Any, device: torch.device) -> Any:
    """Move the tensors of a (nested) batch to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def get_rng_state() -> dict:
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].copy()), *np_state[2:]],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(_tuples(state["python"]))
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy(), *rest))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _tuples(x):
    return tuple(_tuples(v) for v in x) if isinstance(x, (list, tuple)) else x


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class Trainer:
    """Train ``model`` on ``task``.

    ``train_data`` yields batches; ``val_data`` is an iterable of batches, or a mapping from a
    name to one (metrics are then logged as ``name/metric``). ``param_groups`` optionally
    replaces ``model.parameters()`` for AdamW (e.g. a lower learning rate on one layer).
    ``meta`` goes into every checkpoint. ``same_on_resume`` names what makes the run besides its
    network and schedule (its data, what the loss learns from): a resume is refused where a value
    differs from the one the run was started with. A model with expanded convolutions
    (:mod:`srpipe.nn.expanded`) is saved folded, as the plain network it computes; ``last.pt``
    also keeps its branches, to resume from.
    """

    def __init__(
        self,
        model: nn.Module,
        task: Task,
        train_data: Iterable,
        val_data: Iterable | Mapping[str, Iterable] | None = None,
        config: TrainConfig | None = None,
        *,
        param_groups: list[dict] | None = None,
        meta: dict | None = None,
        same_on_resume: Mapping[str, Any] | None = None,
    ):
        self.config = config or TrainConfig()
        cfg = self.config
        self.device = torch.device(cfg.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.to(self.device)
        self.task = task
        self.train_data = train_data
        self.val_data = val_data
        self.steps_per_epoch = cfg.steps_per_epoch or len(train_data)
        self.optimizer = torch.optim.AdamW(
            param_groups or model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay
        )
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            self.optimizer, T_max=cfg.epochs * self.steps_per_epoch
        )
        self.meta = dict(meta or {})
        self.same_on_resume = dict(same_on_resume or {})
        self.epoch = 0
        self.history: list[dict] = []
        self.out_dir = Path(cfg.out_dir) if cfg.out_dir else None
        self._writer = None

    # -- checkpoints -------------------------------------------------------------------------
    def state(self) -> dict:
        """A checkpoint of the model with everything needed to resume."""
        train = {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "epoch": self.epoch,
            "rng": get_rng_state(),
            "history": self.history,
            "train_config": asdict(self.config),
            "same_on_resume": self.same_on_resume,
        }
        if is_expanded(self.model):
            train["expanded_state_dict"] = {k: v.detach().cpu() for k, v in self.model.state_dict().items()}
        return make_checkpoint(self.saved_model(), self.meta, train=train)

    def saved_model(self) -> nn.Module:
        """The model as checkpoints hold it: folded, where its convolutions are expanded."""
        return folded(self.model) if is_expanded(self.model) else self.model

    def resume(self, path: str | Path) -> None:
        """Continue from a checkpoint written by :meth:`state`: refused, naming why, where it is
        not one, or is of another network, schedule or data than this run's."""
        path = Path(path)
        ckpt = _run_checkpoint(path)
        train = ckpt.get("train")
        if not isinstance(train, dict):
            raise SrpipeError(f"{path} holds weights, not a run to resume; remove it to start afresh")
        again = "resume it with the options it was started with, or start a new run in another folder"
        started = train.get("train_config", {})
        changed = [_change(name, started[name], getattr(self.config, name)) for name in SCHEDULE
                   if name in started and started[name] != getattr(self.config, name)]
        if changed:
            raise SrpipeError(f"the run in {path.parent} was started with {', '.join(changed)}: its learning "
                              f"rate follows that schedule; {again}")
        arch, config = describe(self.saved_model())
        started_arch, started_config = describe(network_from_checkpoint(ckpt, str(path)))
        if started_arch != arch:
            changed = [f"{started_arch} (now {arch})"]
        else:
            changed = [_change(name, started_config.get(name), value) for name, value in config.items()
                       if started_config.get(name) != value]
        if changed:
            raise SrpipeError(f"the run in {path.parent} trains another network than this one: {', '.join(changed)}; "
                              f"{again}")
        started = train.get("same_on_resume", {})  # none in runs of srpipe before 2026-12-07
        changed = [_change(name, started[name], value) for name, value in self.same_on_resume.items()
                   if name in started and started[name] != value]
        if changed:
            raise SrpipeError(f"the run in {path.parent} was started with {', '.join(changed)}; {again}")
        expanded = train.get("expanded_state_dict")
        if is_expanded(self.model) != ("expanded_state_dict" in train):
            how = "without" if is_expanded(self.model) else "with"
            raise SrpipeError(f"the run in {path.parent} was started {how} expanded convolutions; {again}")
        if "expanded_state_dict" in train:
            if not isinstance(expanded, dict):
                raise CheckpointError(f"{path} holds no valid expanded weights; {_afresh(path.parent)}")
            check_finite(expanded, path)
        try:
            self.model.load_state_dict(expanded if expanded is not None else ckpt["state_dict"])
        except RuntimeError as exc:  # the same config with other branches: a checkpoint made otherwise
            detail = " ".join(line.strip() for line in str(exc).splitlines()[:2])
            raise SrpipeError(f"the run in {path.parent} trains another network than this one ({detail}); "
                              f"{again}") from None
        self.optimizer.load_state_dict(train["optimizer"])
        self.scheduler.load_state_dict(train["scheduler"])
        self.epoch = train["epoch"]
        self.history = list(train["history"])
        set_rng_state(train["rng"])

    # -- loops --------------------------------------------------------------------------------
    def fit(self, resume: bool = False, overwrite: bool = False,
            on_epoch: Callable[[dict], None] | None = None) -> list[dict]:
        """Train to ``config.epochs``; with ``resume``, continue from ``out_dir/last.pt`` if any;
        with ``overwrite``, an unfinished run there is started afresh rather than refused.
        ``on_epoch(record)`` is called as each epoch ends, its checkpoint written, in place of the
        line written to standard error on a terminal: a command's own line, which a log gets too."""
        last = self.out_dir / "last.pt" if self.out_dir else None
        if resume and last is not None and last.exists():
            self.resume(last)
            # the log again as the checkpoint knows it: a run stopped between its log line and
            # its checkpoint must not log that epoch twice
            write_atomically(self.out_dir / "log.jsonl", "".join(json.dumps(r) + "\n" for r in self.history).encode())
        else:
            # starting afresh would lose an unfinished run, unless told to replace it
            if last is not None and last.exists() and _unfinished(last, overwrite):
                if not overwrite:
                    raise SrpipeError(f"{self.out_dir} holds an unfinished run (last.pt); pass --resume to continue "
                                      "it, or --overwrite (or remove the folder) to start it afresh")
                warnings.warn(f"the unfinished run in {self.out_dir} is started afresh (--overwrite)", stacklevel=2)
            if self.out_dir is not None:
                (self.out_dir / "log.jsonl").unlink(missing_ok=True)  # a log of no checkpoint's run
            seed_everything(self.config.seed)
        end = min(self.config.epochs, self.config.stop_after or self.config.epochs)
        try:
            while self.epoch < end:
                t0 = time.perf_counter()
                loss = self.train_epoch()
                self.epoch += 1
                record = {"epoch": self.epoch, "step": self.epoch * self.steps_per_epoch,
                          "lr": self.scheduler.get_last_lr()[0], "train_loss": loss,
                          **self.validate(), "epoch_s": round(time.perf_counter() - t0, 2)}
                self.history.append(record)
                self._log(record)
                if last is not None:  # before the epoch is told: what is told done is kept
                    save_checkpoint(self.state(), last)
                if on_epoch is not None:
                    on_epoch(record)
                elif self._shows_progress():  # the bar of each epoch goes when it ends: its figures stay, a line each
                    tqdm.write(self._described(record), file=sys.stderr)
        except BaseException as exc:
            if not isinstance(exc, Exception) and last is not None and last.exists():  # Ctrl-C, SIGTERM
                print(f"stopped in epoch {self.epoch + 1} of {self.config.epochs}; {last} holds epoch {self.epoch}: "
                      "the same command with --resume continues from there", file=sys.stderr, flush=True)
            raise
        if self.out_dir is not None and self.epoch == self.config.epochs:
            final = make_checkpoint(self.saved_model(), {**self.meta, "history": self.history})
            save_checkpoint(final, self.out_dir / "final.pt")
        if self._writer:
            self._writer.close()
        self._writer = None
        return self.history

    def _batches(self) -> Iterator:
        """``steps_per_epoch`` batches, starting the training data over when it runs out."""
        it = iter(self.train_data)
        for _ in range(self.steps_per_epoch):
            try:
                yield next(it)
            except StopIteration:
                it = iter(self.train_data)
                yield next(it)

    def _autocast(self):
        if self.device.type == "cuda" and self.config.amp:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return nullcontext()

    def _shows_progress(self) -> bool:
        return self.config.progress if self.config.progress is not None else sys.stderr.isatty()

    def _described(self, record: dict) -> str:
        """``epoch 3/20: train_loss 0.0123, toy/psnr 31.2 (41 s)``: an epoch's log record, in a line."""
        figures = ", ".join(f"{name} {value:.4g}" for name, value in record.items()
                            if name not in ("epoch", "step", "lr", "epoch_s") and isinstance(value, (int, float)))
        return f"epoch {record['epoch']}/{self.config.epochs}: {figures} ({record['epoch_s']:.0f} s)"

    def train_epoch(self) -> float:
        """One epoch of optimisation; returns the mean training loss."""
        self.model.train()
        show = self._shows_progress()
        bar = tqdm(self._batches(), total=self.steps_per_epoch, disable=not show, file=sys.stderr,
                   desc=f"epoch {self.epoch + 1}/{self.config.epochs}", unit="step", leave=False)
        total = torch.zeros((), device=self.device)
        for i, batch in enumerate(bar):
            batch = to_device(batch, self.device)
            with self._autocast():
                loss = self.task.loss(self.model, batch)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if self.config.grad_clip:
                nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
            self.optimizer.step()
            self.scheduler.step()
            total += loss.detach().float()
            if show and i % 20 == 0:
                bar.set_postfix(loss=f"{loss.item():.4g}")
        mean = total.item() / self.steps_per_epoch
        if not math.isfinite(mean):
            raise FloatingPointError(f"training loss is {mean} in epoch {self.epoch + 1}")
        return mean

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Mean of the task's metrics over each validation set."""
        if self.val_data is None:
            return {}
        self.model.eval()
        sets = self.val_data if isinstance(self.val_data, Mapping) else {"": self.val_data}
        out: dict[str, float] = {}
        for name, data in sets.items():
            sums: dict[str, float] = {}
            n = 0
            for batch in data:
                with self._autocast():
                    m = self.task.metrics(self.model, to_device(batch, self.device))
                for k, v in m.items():
                    sums[k] = sums.get(k, 0.0) + float(v)
                n += 1
            prefix = f"{name}/" if name else "val_"
            out.update({prefix + k: v / max(n, 1) for k, v in sums.items()})
        return out

    # -- logging ------------------------------------------------------------------------------
    def _log(self, record: dict) -> None:
        if self.out_dir is None:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        with open(self.out_dir / "log.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        if self._writer is None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                self._writer = False
            else:
                self._writer = SummaryWriter(str(self.out_dir / "tb"))
        if self._writer:
            for k, v in record.items():
                if k not in ("epoch", "step"):
                    self._writer.add_scalar(k, v, record["step"])
