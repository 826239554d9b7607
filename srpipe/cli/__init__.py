"""The ``srpipe`` command line: a click group whose commands come from plugins."""

from __future__ import annotations

import os
import signal
import sys
import threading
import traceback
import warnings

import click

from srpipe import __version__
from srpipe.device import sleep_idle_threads

sleep_idle_threads()  # before whatever command runs loads NumPy, and with it OpenBLAS

from srpipe.errors import SrpipeError  # noqa: E402
from srpipe.memory import retain_freed_memory  # noqa: E402

EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


class Terminated(BaseException):
    """SIGTERM arrived: unwind like Ctrl-C so that outputs are cleaned up."""


class SrpipeGroup(click.Group):
    """Turns errors a user can cause into one ``Error:`` line (exit 1)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except SrpipeError as exc:
            if _debug(ctx):
                raise
            raise click.ClickException(one_line(str(exc))) from exc
        except BrokenPipeError:
            # The reader of standard output left (srpipe plugins | head -1; upscale -o - | head -c 1000):
            # it had what it wanted, so nothing more to say, and 0, as when a pipeline's reader stops a
            # listing. (Standard error's reader leaving stops nothing: _StderrOutlivingItsReader.)
            _point_at_devnull(sys.stdout)
            raise click.exceptions.Exit(0) from None
        except (click.ClickException, click.exceptions.Exit, click.Abort, KeyboardInterrupt, Terminated):
            raise
        except Exception as exc:
            if _debug(ctx):
                raise
            from srpipe.plugins import failure_text

            raise click.ClickException(
                f"unexpected {one_line(failure_text(exc))} (rerun with --debug for the traceback)"
            ) from exc


def one_line(message: str) -> str:
    """A message on one line: library texts (OpenCV's assertions) and file names may hold newlines."""
    return " ".join(part.strip() for part in message.splitlines() if part.strip())


def _debug_first(argv: list[str]) -> list[str]:
    """``--debug`` is the group's option, but the error hint says to add it and users add it at
    the end: move it to the front from anywhere before a ``--``."""
    end = argv.index("--") if "--" in argv else len(argv)
    if "--debug" not in argv[:end]:
        return argv
    return ["--debug", *[a for i, a in enumerate(argv) if not (a == "--debug" and i < end)]]


def _debug(ctx) -> bool:
    return bool(ctx.params.get("debug")) or bool(os.environ.get("SRPIPE_DEBUG"))


def build_cli() -> click.Group:
    """The root group with every plugin's commands added."""
    from srpipe.plugins import call_per_plugin, get_plugin_manager

    @click.group(cls=SrpipeGroup, context_settings={"help_option_names": ["-h", "--help"]})
    @click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_version,
                  help="Show srpipe's version, the libraries it runs on, and the device it would use.")
    @click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
    def cli(debug):
        """Super-resolution for video, streams and images.

        \b
        Upscale a clip with the default model:
          srpipe upscale clip.mp4
        See what models and plugins are installed:
          srpipe models list
          srpipe plugins
        """

    @cli.group()
    def train():
        """Train a network; each kind of model adds its own subcommand."""

    # Plugin by plugin, built-ins first: one that raises or reuses a name is named and skipped.
    call_per_plugin(get_plugin_manager(), "register_commands", lambda plugin: {"cli": cli}, _keeping_names(cli))
    return cli


def _commands_under(group: click.Group, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], click.Command]:
    """Every command under ``group`` by its path (``("train", "espcn")``), each group before those in it."""
    found = {}
    for name, command in group.commands.items():
        found[(*path, name)] = command
        if isinstance(command, click.Group):
            found.update(_commands_under(command, (*path, name)))
    return found


def _keeping_names(cli: click.Group):
    """What checks, after each plugin's ``register_commands``, that it took no command (or
    subcommand) that one before it added, however it did (``cli.add_command``, or writing into
    ``cli.commands``, which replaced ``upscale`` without a word): a command it replaced or removed
    is put back, and the plugin named."""
    taken = _commands_under(cli)

    def put_back() -> None:
        now = _commands_under(cli)
        lost = [path for path, command in taken.items() if now.get(path) is not command]
        for path in lost:  # a group before the commands in it
            group = cli
            for name in path[:-1]:
                group = group.commands[name]
            group.commands[path[-1]] = taken[path]
        taken.update(_commands_under(cli))
        if lost:
            names = ", ".join(repr(" ".join(path)) for path in lost)
            raise ValueError(f"command{'s' * (len(lost) > 1)} {names} {'are' if len(lost) > 1 else 'is'} already "
                             "added by another plugin")

    return put_back


def _print_version(ctx, param, value) -> None:
    """srpipe's version, its libraries' (torch's and OpenVINO's read from their metadata, not imported),
    and what ``--device auto`` would run a neural model on."""
    if not value or ctx.resilient_parsing:
        return
    import importlib.metadata

    import av
    import cv2

    from srpipe.device import resolve_device
    from srpipe.plugins import collect_backends, get_plugin_manager

    def version(distribution: str) -> str:
        try:
            return importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    device = resolve_device("auto")
    try:
        backend = collect_backends(get_plugin_manager()).select("auto", device).name
    except SrpipeError:
        backend = "none available"
    click.echo(f"srpipe {__version__}")
    click.echo(f"PyAV {av.__version__} (FFmpeg {av.ffmpeg_version_info})")
    click.echo(f"OpenCV {cv2.__version__}")
    for name, distribution in (("torch", "torch"), ("OpenVINO", "openvino"), ("NumPy", "numpy")):
        click.echo(f"{name} {version(distribution)}")
    click.echo(f"device: {device} (--device auto for neural models; classical ones run on the CPU)")
    click.echo(f"neural backend: {backend} (--backend auto)")
    ctx.exit()


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    # one write, its newline included: standard error writes through, and print's two writes let
    # the batch workers' warnings run into each other ("... to keep itWarning: ...")
    (file or sys.stderr).write(f"Warning: {one_line(str(message))}\n")


def show_warnings_on_one_line() -> None:
    """Warnings as srpipe shows them, ``Warning: <text>`` on one line: in the command's process,
    and in the worker processes of ``srpipe batch``, which Python would give its two-line form."""
    warnings.showwarning = _one_line_warning


def _raise_terminated(signum, frame):
    raise Terminated()


def _flush_standard_streams() -> None:
    """Flush standard output and error before ``os._exit``, which does not; a closed or broken one is passed over."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass


def _exit_interrupted(code: int) -> None:
    """Exit after Ctrl-C or SIGTERM. A worker thread still blocked in FFmpeg (a stalled read)
    would take the GIL from its interrupt callback while the interpreter shuts down, which can
    crash it: with such a thread, leave without the shutdown (outputs are already removed)."""
    stuck = [t for t in threading.enumerate() if t.daemon and t.name.startswith("srpipe-") and t.is_alive()]
    if stuck:
        _flush_standard_streams()
        os._exit(code)
    sys.exit(code)


def _devnull_onto(fd: int) -> None:
    """Make descriptor ``fd`` /dev/null."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    if devnull != fd:  # fd was closed, and open() took its number
        os.dup2(devnull, fd)
        os.close(devnull)


def _point_at_devnull(stream) -> None:
    """Point ``stream``'s descriptor, whose reader left, at /dev/null: what is still buffered and
    whatever comes later (Python's exit flush, FFmpeg's own messages) goes nowhere, without error."""
    try:
        _devnull_onto(stream.fileno())
    except (OSError, AttributeError, ValueError):
        pass


def _fill_closed_outputs() -> None:
    """Standard output or error closed when srpipe started (``2>&-``): Python then has no stream
    for it, and the next file srpipe opens would take its descriptor and receive what is written
    there (FFmpeg's messages). Point the descriptor at /dev/null, so that the run goes on quietly."""
    for fd, name in ((1, "stdout"), (2, "stderr")):
        if getattr(sys, name) is not None:
            continue
        try:
            _devnull_onto(fd)
            setattr(sys, name, open(fd, "w", errors="backslashreplace", closefd=False))
        except OSError:
            pass


class _StderrOutlivingItsReader:
    """Standard error that survives its reader leaving (``srpipe batch IN OUT 2>&1 | head -1``):
    progress and warnings are not what a command runs for, so a broken pipe there drops them
    (:func:`_point_at_devnull`) and the work goes on, its exit status telling how it went."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text):
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            _point_at_devnull(self._stream)
            return len(text)

    def flush(self):
        try:
            self._stream.flush()
        except BrokenPipeError:
            _point_at_devnull(self._stream)

    def __getattr__(self, name):  # everything else is the stream's own (fileno, isatty, encoding)
        return getattr(self._stream, name)


def main(argv=None) -> None:
    """Entry point of the ``srpipe`` command."""
    show_warnings_on_one_line()
    _fill_closed_outputs()
    if sys.stderr is not None and not isinstance(sys.stderr, _StderrOutlivingItsReader):
        sys.stderr = _StderrOutlivingItsReader(sys.stderr)
    signal.signal(signal.SIGTERM, _raise_terminated)
    retain_freed_memory()
    argv = _debug_first(list(sys.argv[1:] if argv is None else argv))
    try:
        cli = build_cli()
        code = cli.main(args=argv, prog_name="srpipe", standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (click.Abort, KeyboardInterrupt):
        print("Interrupted.", file=sys.stderr)
        _exit_interrupted(EXIT_INTERRUPTED)
    except Terminated:
        print("Terminated.", file=sys.stderr)
        _exit_interrupted(EXIT_TERMINATED)
    except Exception:  # --debug: let the traceback out
        traceback.print_exc()
        sys.exit(1)
    try:
        sys.stdout.flush()  # a reader that left shows here, for output still buffered
    except BrokenPipeError:
        _point_at_devnull(sys.stdout)
    except (AttributeError, ValueError):
        pass  # standard output closed
    sys.exit(code if isinstance(code, int) else 0)


def run() -> None:
    """The ``srpipe`` command: :func:`main`, then an exit that skips the interpreter's teardown
    where nothing needs it. Freeing every module's objects one by one (NumPy, PyAV, OpenCV)
    costs a noticeable share of a short command (docs/design-notes.md); the outputs are
    already complete and closed when :func:`main` returns."""
    try:
        main()
    except SystemExit as exc:
        if not isinstance(exc.code, (int, type(None))) or _teardown_needed():
            raise
        _flush_standard_streams()
        os._exit(exc.code or 0)


def _teardown_needed() -> bool:
    """Whether something left behind relies on the interpreter's exit handlers: a Ray session
    (its shutdown stops the local cluster), multiprocessing's clean-up (batch's worker pool
    leaves semaphores that its exit handler releases), or threads still running."""
    if "ray" in sys.modules:
        return True
    if "multiprocessing" in sys.modules:
        from multiprocessing import active_children, util

        if active_children() or util._finalizer_registry:  # what util._exit_function would run
            return True
    return any(t is not threading.main_thread() and not t.daemon and t.is_alive() for t in threading.enumerate())
