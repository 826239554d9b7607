import contextlib
import functools
import http.server
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import av  # noqa: F401  before cv2: the two bundle different FFmpeg builds, and PyAV's x11grab crashes otherwise
import pytest
from click.testing import CliRunner

from srpipe.cli import build_cli

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
def session_cache_folder(tmp_path_factory):
    """srpipe's cache folder (entry points, converted networks) is the session's own, not the
    user's: the CLI in this process and every child srpipe see it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SRPIPE_CACHE_DIR", str(tmp_path_factory.mktemp("srpipe-cache")))
        yield


SCHEDULING = (os.sched_getscheduler(0), os.sched_getparam(0)) if hasattr(os, "sched_getscheduler") else None


@pytest.fixture(autouse=True)
def scheduling_left_as_it_was():
    """A test that changes this process's scheduling fails, and it is put back: every later test's
    processes inherit it (SVT-AV1 opened as root makes the opening thread real time), and two
    batch runs side by side then stopped for ever on two cores."""
    yield
    if SCHEDULING is not None and (os.sched_getscheduler(0), os.sched_getparam(0)) != SCHEDULING:
        os.sched_setscheduler(0, *SCHEDULING)
        pytest.fail("the test changed this process's scheduling (a real-time policy?)")


@pytest.fixture
def cli_run():
    """Run the real CLI in-process; returns click's Result."""
    runner = CliRunner()
    cli = build_cli()

    def run(*args):
        return runner.invoke(cli, [str(a) for a in args], catch_exceptions=False)

    return run


def default_sigint():
    """For children that tests interrupt: a shell running them in the background ignores SIGINT."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_until_blocked(process, still=0.5, seconds=60):
    """Wait until the child ``process`` waits on something: each of its threads asleep, and none of
    them on the CPU for ``still`` seconds (start-up, and any frames it had, done). Where there is
    no /proc to tell, ``seconds`` / 10 of waiting stand in for it."""
    tasks = Path(f"/proc/{process.pid}/task")
    if not tasks.is_dir():
        time.sleep(seconds / 10)
        assert process.poll() is None
        return

    def threads():
        """Each thread's state letter and CPU time (clock ticks)."""
        found = []
        try:
            for task in tasks.iterdir():
                fields = (task / "stat").read_text().rpartition(")")[2].split()
                found.append((fields[0], int(fields[11]) + int(fields[12])))
        except (FileNotFoundError, ProcessLookupError):  # a thread, or the process, that has just ended
            return []
        return found

    deadline = time.monotonic() + seconds
    since, ticks = None, None
    while True:
        assert process.poll() is None, "the process ended before it blocked"
        now, found = time.monotonic(), threads()
        total = sum(used for _, used in found)
        if found and all(state == "S" for state, _ in found) and total == ticks:
            if now - since >= still:
                return
        else:
            since, ticks = now, total
        assert now < deadline, f"the process did not block within {seconds} s"
        time.sleep(0.05)


def wait_for(condition, process, seconds=60):
    """Wait until ``condition()`` holds, while the child ``process`` runs."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)


def _release_fifo_open(fifo, waiting_mode: str) -> None:
    """Be the other end of ``fifo`` for a moment, so that an open of it in ``waiting_mode``, which
    waits for that end, returns."""
    other = (os.O_WRONLY if "r" in waiting_mode else os.O_RDONLY) | os.O_NONBLOCK
    with contextlib.suppress(OSError):  # ENXIO: nothing waits to read
        os.close(os.open(fifo, other))


def open_fifo(fifo, mode, process, seconds=60):
    """``open(fifo, mode)`` for a FIFO whose other end srpipe's ``process`` opens. That open waits for
    the other end for ever: where srpipe ends (or seconds pass) first, the test fails with what
    srpipe said instead of hanging, and its worker's exit does not wait on the opening thread."""
    opened = []
    opener = threading.Thread(target=lambda: opened.append(open(fifo, mode)), daemon=True)
    opener.start()
    deadline = time.monotonic() + seconds
    while opener.is_alive() and process.poll() is None and time.monotonic() < deadline:
        opener.join(0.05)
    opener.join(0.5)  # srpipe may have opened its end just before it ended
    if opened:
        return opened[0]
    _release_fifo_open(fifo, mode)
    opener.join(5)
    for file in opened:
        file.close()
    if process.poll() is None:  # seconds passed: it is not left waiting
        process.kill()
        process.wait()
    stderr = process.stderr.read().decode() if process.stderr else ""
    pytest.fail(f"srpipe did not open {fifo} (exit status {process.poll()}): {stderr}")


class FifoReader:
    """Reads a FIFO to its end in a thread, as the program srpipe streams to would."""

    def __init__(self, fifo):
        self.fifo, self.data = fifo, bytearray()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        with open(self.fifo, "rb") as reader:
            self.data.extend(reader.read())

    def result(self, seconds=60) -> bytes:
        """What was read, once the writer has ended. Where it never opened the FIFO, the reader's
        open would wait for ever: it is released to read nothing."""
        _release_fifo_open(self.fifo, "rb")
        self.thread.join(seconds)
        return bytes(self.data)


def run_srpipe(*args, env=None, input=None, cwd=None, timeout=300):
    """Run ``python -m srpipe`` in a subprocess; returns CompletedProcess with bytes stdout."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "srpipe", *[str(a) for a in args]],
        capture_output=True,
        env=full_env,
        input=input,
        cwd=cwd,
        timeout=timeout,
    )


def run_srpipe_measured(*args):
    """:func:`run_srpipe`, and the child's own peak resident memory in bytes, measured by the
    bench's launcher: Linux counts a child started from this (large) test process, by fork or
    vfork, at this process's size at least."""
    import tempfile

    from srpipe.default_plugins.bench.bench import run_whole_process

    command = [sys.executable, "-m", "srpipe", *[str(a) for a in args]]
    with tempfile.TemporaryDirectory() as folder:
        run = run_whole_process(command, Path(folder))
    return subprocess.CompletedProcess(command, run.code, run.stdout.encode(), run.stderr.encode()), \
        round(run.peak_mib * 2**20)


def run_in_terminal(*args, columns=120, timeout=300):
    """Run ``python -m srpipe`` with its standard error on a pseudo-terminal of ``columns``
    columns (standard output a pipe); returns (exit code, stdout bytes, what the terminal got)."""
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    process = subprocess.Popen([sys.executable, "-m", "srpipe", *[str(a) for a in args]], stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    screen = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child closed its end
            break
        if not chunk:
            break
        screen += chunk
    os.close(master)
    stdout = process.stdout.read()
    process.wait(timeout=timeout)
    return process.returncode, stdout, screen.decode(errors="replace")


@contextlib.contextmanager
def served(folder, handler=http.server.SimpleHTTPRequestHandler):
    """The address (``http://127.0.0.1:PORT``) of an HTTP server in this process serving ``folder``
    through ``handler`` (a request handler that takes ``directory``), while the block runs."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def file_size_limit(limit: int):
    """A ``preexec_fn`` under which a child's files may grow to ``limit`` bytes: a write past it
    fails (EFBIG), as on a full disk, rather than the signal killing the child."""
    def limit_in_child():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return limit_in_child
