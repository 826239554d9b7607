"""Around a plugin's code: standard output, the working folder and the stop signals kept srpipe's,
and its SystemExit made an error of the plugin's."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import warnings

from srpipe.errors import PluginWarning


class _PrintsToStderr:
    """Standard output as a plugin's code sees it: what it prints (text) goes to standard error,
    while srpipe's own writers still reach standard output itself through its ``buffer`` and
    descriptor (the video of ``-o -``, written while a model's ``upscale`` and a source's
    ``items`` run)."""

    def __init__(self, stdout):
        self._stdout = stdout

    def write(self, text: str) -> int:
        return sys.stderr.write(text) if sys.stderr is not None else len(text)

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name):  # buffer, fileno, flush, encoding: standard output's own
        return getattr(self._stdout, name)


# Plugin code runs in several threads at once (a run's decoder, upscaler and writer; runs in
# threads of a program using srpipe), and standard output is one per process: it is swapped while
# any of them runs and put back when the last ends, whatever the order they end in.
_diverted = 0
_diverted_from = None
_diverting = threading.Lock()


@contextlib.contextmanager
def prints_to_stderr():
    """While it lasts, what Python code prints goes to standard error (the counted swap above)."""
    global _diverted, _diverted_from
    with _diverting:
        if not _diverted:
            _diverted_from = sys.stdout
            sys.stdout = _PrintsToStderr(sys.stdout)
        _diverted += 1
    try:
        yield
    finally:
        with _diverting:
            _diverted -= 1
            if not _diverted and isinstance(sys.stdout, _PrintsToStderr):  # unless the program set its own since
                sys.stdout = _diverted_from


@contextlib.contextmanager
def plugin_code(what: str = "a plugin", prints: bool = True):
    """Around a plugin's code (``what`` names it in warnings): what it prints goes to standard
    error, as a log would, since standard output carries srpipe's own (the video of ``-o -``,
    JSON): a stray debug print there broke the stream, with nothing on screen to say so
    (``prints=False`` leaves standard output to the plugin: a run into a file, whose sink may
    print its result there; ``--json`` diverts prints for its whole command). The working folder
    and the Ctrl-C and SIGTERM handlers are put back, with a warning, where it changed them: a
    relative ``-o`` then landed elsewhere, and a run could not be stopped."""
    folder = _current_folder()
    watched = (signal.SIGINT, signal.SIGTERM) if threading.current_thread() is threading.main_thread() else ()
    handlers = {signum: signal.getsignal(signum) for signum in watched}
    try:
        with prints_to_stderr() if prints else contextlib.nullcontext():
            yield
    except Stop:  # srpipe's own handler stopped the run, and set the handlers its ending needs
        handlers = {}
        raise
    finally:
        if folder is not None and _current_folder() != folder:
            os.chdir(folder)
            warnings.warn(f"{what} changed the working folder; srpipe put it back", PluginWarning, stacklevel=3)
        for signum, handler in handlers.items():
            if signal.getsignal(signum) is not handler:
                signal.signal(signum, handler)
                warnings.warn(f"{what} changed how {signal.Signals(signum).name} is handled; srpipe put it back",
                              PluginWarning, stacklevel=3)


class PluginExit(Exception):
    """A ``SystemExit`` that a plugin's code raised (its ``__cause__``) where srpipe ran it (a
    model's ``load`` or ``upscale``, a source's ``items``, a sink's methods). It is an error of
    the plugin's, told and handled as any other (``srpipe.plugins.failure_text``): as
    ``SystemExit`` it ended srpipe without a word, with status 0 (``sys.exit(0)``), 2 (a ported
    script's ``argparse``, the status of usage errors) or its own, and ended a whole batch at its
    first file."""


class Stop(SystemExit):
    """srpipe's own exit from a signal handler (a batch worker's SIGTERM): it may land while a
    plugin's code runs, and is not the plugin's."""


@contextlib.contextmanager
def exits_as_errors():
    """Around a call of a plugin's code: a ``SystemExit`` it raises comes out as a
    :class:`PluginExit`. Ctrl-C goes through as it is, and so does a ``SystemExit`` that a signal
    handler raised while the plugin's code ran: srpipe's own :class:`Stop`, a host program's
    (``signal(SIGTERM, lambda *a: sys.exit())``), Ray's in its workers; made an error, the
    process it was to end went on to its next job."""
    try:
        yield
    except Stop:
        raise
    except SystemExit as exc:
        if _raised_by_a_signal_handler(exc):
            raise
        raise PluginExit(*exc.args) from exc


def _raised_by_a_signal_handler(exc: BaseException) -> bool:
    """Whether a frame of ``exc``'s traceback runs the code of a Python signal handler now set
    (a handler runs as a frame on top of whatever it interrupted)."""
    handlers = set()
    for signum in signal.valid_signals():
        try:
            handler = signal.getsignal(signum)
        except (OSError, ValueError):
            continue
        code = getattr(getattr(handler, "__func__", handler), "__code__", None)  # a function or a bound method
        if code is not None:
            handlers.add(code)
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code in handlers:
            return True
        tb = tb.tb_next
    return False


def _current_folder() -> str | None:
    """The working folder; None where it was removed (nothing to keep)."""
    try:
        return os.getcwd()
    except OSError:
        return None
