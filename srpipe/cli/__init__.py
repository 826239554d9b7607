"""The ``srpipe`` command line: a click group whose commands come from plugins."""

from __future__ import annotations

import os
import signal
import sys
import traceback
import warnings

import click

from srpipe import __version__
from srpipe.device import sleep_idle_threads
from srpipe.errors import SrpipeError
from srpipe.memory import retain_freed_memory

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
            raise click.ClickException(str(exc)) from exc
        except (click.ClickException, click.exceptions.Exit, click.Abort, KeyboardInterrupt, Terminated):
            raise
        except Exception as exc:
            if _debug(ctx):
                raise
            raise click.ClickException(
                f"unexpected {type(exc).__name__}: {exc} (rerun with --debug for the traceback)"
            ) from exc


def _debug(ctx) -> bool:
    return bool(ctx.params.get("debug")) or bool(os.environ.get("SRPIPE_DEBUG"))


def build_cli() -> click.Group:
    """The root group with every plugin's commands added."""
    from srpipe.plugins import get_plugin_manager

    @click.group(cls=SrpipeGroup, context_settings={"help_option_names": ["-h", "--help"]})
    @click.version_option(__version__, prog_name="srpipe")
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

    get_plugin_manager().hook.register_commands(cli=cli)
    return cli


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    print(f"Warning: {message}", file=file or sys.stderr)


def _raise_terminated(signum, frame):
    raise Terminated()


def main(argv=None) -> None:
    """Entry point of the ``srpipe`` command."""
    warnings.showwarning = _one_line_warning
    signal.signal(signal.SIGTERM, _raise_terminated)
    retain_freed_memory()
    sleep_idle_threads()
    try:
        cli = build_cli()
        code = cli.main(args=argv, prog_name="srpipe", standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (click.Abort, KeyboardInterrupt):
        print("Interrupted.", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    except Terminated:
        print("Terminated.", file=sys.stderr)
        sys.exit(EXIT_TERMINATED)
    except Exception:  # --debug: let the traceback out
        traceback.print_exc()
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
