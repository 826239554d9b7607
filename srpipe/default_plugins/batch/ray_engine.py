"""The batch on a Ray cluster: the same jobs as the local engine, run by Ray actors.

Each actor loads the model once and keeps it: one actor per GPU where the cluster
has GPUs, otherwise one per ``jobs`` share of the cluster's CPUs. Inputs and the
output folder must be at the same path on every node (a shared filesystem).
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from dataclasses import replace
from typing import Callable, Iterator

from srpipe.errors import SrpipeError
from srpipe.outputs import process_exists, remove_dead_partials


class BatchWorker:
    """A Ray actor running batch jobs with ``threads`` cores: ``setup(threads)`` once, then
    ``run(job)`` per job (the local engine's own functions, handed over so that this module
    needs nothing from it)."""

    def __init__(self, threads: int, setup: Callable[[int], None], run: Callable):
        setup(threads)
        self.threads = threads
        self._run = run

    def run(self, job):
        return self._run(replace(job, threads=self.threads))

    def process(self) -> tuple[str, int]:
        """The actor's machine and process id."""
        return socket.gethostname(), os.getpid()


ANSWER_WAIT_S = 5  # how long a cluster's address may take to accept a connection


def check_address(address: str | None) -> None:
    """Refuse a cluster's ``HOST:PORT`` where nothing accepts a connection, before the batch makes
    or locks its OUT_DIR: Ray itself tries again for many minutes there, printing warnings, and
    reacts to Ctrl-C only after half a minute. Ray takes ``RAY_ADDRESS`` where ``--address`` is
    not given, or is ``auto``."""
    env = os.environ.get("RAY_ADDRESS") if address in (None, "auto") else None
    given = env or address
    host, _, port = (given or "").removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():  # auto, local, or no address: Ray finds or starts the cluster
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=ANSWER_WAIT_S).close()
    except OSError as exc:
        where = f"{given} (RAY_ADDRESS)" if env else given
        reason = exc.strerror or f"no answer in {ANSWER_WAIT_S} s"
        raise SrpipeError(f"no Ray cluster answers at {where}: {reason}; start it (ray start --head) or check "
                          "--address (e.g. auto, or HOST:6379)") from None


def _connect(address: str | None):
    try:
        import ray
    except ImportError:
        raise SrpipeError("--engine ray needs Ray: pip install 'srpipe[ray]'") from None
    if not ray.is_initialized():
        terminate = signal.getsignal(signal.SIGTERM)
        try:
            ray.init(address=address, include_dashboard=False, logging_level="warning")
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = address or "a new local cluster"
            raise SrpipeError(f"cannot start Ray on {where}: {str(exc).rstrip('.')}; check --address (e.g. auto, "
                              "or HOST:6379)") from exc
        finally:
            # Ray puts its own SIGTERM handlers (its core's, which dumps a crash report and aborts) in place
            # of the one srpipe's CLI set, which unwinds the batch: outputs removed, "Terminated.", exit 143
            if threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGTERM, terminate)
    return ray


def worker_layout(resources: dict, jobs: int | None) -> tuple[int, dict]:
    """(number of actors, each actor's Ray resources) for a cluster's resources."""
    gpus, cpus = int(resources.get("GPU", 0)), max(1, int(resources.get("CPU", 1)))
    if gpus:  # the CPUs are shared out too: decoding and encoding stay on them
        count = min(jobs or gpus, gpus)
        return count, {"num_gpus": 1, "num_cpus": max(1, cpus // count)}
    count = min(jobs or cpus, cpus)
    return count, {"num_cpus": max(1, cpus // count)}


def run_on_ray(work: list, jobs: int | None, address: str | None, setup: Callable[[int], None], run: Callable,
               on_frame: Callable[..., None] | None = None) -> Iterator[tuple]:
    """``run(job)`` for every job on Ray actors (each began with ``setup(threads)``): (job, result)
    pairs in completion order; frames are reported as each job ends."""
    if not work:
        return
    ray = _connect(address)
    from ray.util import ActorPool

    count, resources = worker_layout(ray.cluster_resources(), jobs)
    count = min(count, len(work))
    actor = ray.remote(BatchWorker).options(**resources)
    actors = [actor.remote(resources["num_cpus"], setup, run) for _ in range(count)]
    processes = [a.process.remote() for a in actors]  # asked first: an actor answers before its first job
    unfinished = {job.output: job for job in work}
    try:
        for job, result in ActorPool(actors).map_unordered(lambda a, job: a.run.remote(job), work):
            del unfinished[job.output]
            if on_frame is not None and result.frames:
                on_frame(result.frames)
            yield job, result
    except SystemError as exc:
        # Ray's waits turn what a signal handler raised in them into a SystemError caused by it, all but
        # KeyboardInterrupt: let the signal's own (the CLI's Terminated, on SIGTERM) out
        if exc.__cause__ is None or isinstance(exc.__cause__, Exception):
            raise
        raise exc.__cause__ from None
    finally:
        for a in actors:
            ray.kill(a)
        if unfinished:  # stopped (Ctrl-C, SIGTERM, an error)
            _remove_killed_partials(ray, processes, unfinished.values())


KILL_WAIT_S = 10  # how long killed actors may take to end


def _remove_killed_partials(ray, processes: list, jobs) -> None:
    """Remove the partial outputs of ``jobs`` that killed actors left: ``ray.kill`` ends an actor at
    once, without aborting its output. Once an actor's process has ended, its partials are dead
    (:func:`srpipe.outputs.is_dead_partial`); those of actors on other machines are left, this
    machine cannot tell whether their process has ended."""
    ready, _ = ray.wait(processes, num_returns=len(processes), timeout=KILL_WAIT_S)
    here = socket.gethostname()
    pids = []
    for answer in ready:
        try:
            host, pid = ray.get(answer)
        except ray.exceptions.RayActorError:  # killed before it answered: it had begun no job
            continue
        if host == here:
            pids.append(pid)
    deadline = time.monotonic() + KILL_WAIT_S
    while any(process_exists(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    for folder in {job.output.parent for job in jobs}:
        remove_dead_partials(folder)
