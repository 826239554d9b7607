"""Output paths: default names, safety checks, and write-then-rename."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import socket
import stat
import sys
import tempfile
from pathlib import Path
from typing import Callable, Iterator

from srpipe.errors import SrpipeError


def write_all(file, data) -> int:
    """Write all of ``data`` to ``file``, whose write may take only part of it where it is unbuffered
    (standard output under PYTHONUNBUFFERED, a FIFO, a device): a nearly full disk takes what fits,
    a signal cuts a pipe's write short. The rest is written again, so that an error there raises
    instead of a cut-short output counting as written."""
    view = memoryview(data).cast("B")
    done = 0
    while done < len(view):
        written = file.write(view[done:])
        if not written:  # None from a non-blocking descriptor that is full
            raise OSError(errno.EAGAIN, os.strerror(errno.EAGAIN))
        done += written
    return done


def default_output_path(input_path: str, scale: int, suffix: str) -> Path:
    """``NAME_x2.mp4`` next to the input."""
    path = Path(input_path)
    return path.with_name(f"{path.stem}_x{scale}{suffix}")


def special_kind(path: str | Path) -> str | None:
    """What a path that is not a regular file or folder is (links followed); ``None`` otherwise."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    for test, name in ((stat.S_ISFIFO, "FIFO"), (stat.S_ISCHR, "character device"),
                       (stat.S_ISSOCK, "socket"), (stat.S_ISBLK, "block device")):
        if test(mode):
            return name
    return None


def writes_through(path: str | Path) -> bool:
    """Outputs written into, never replaced: FIFOs and character devices (``/dev/null``)."""
    return special_kind(path) in ("FIFO", "character device")


_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):(.*)$", re.DOTALL)  # two or more letters: C:\ is a path

# FFmpeg's network protocols (and the RTSP demuxer's, and unix sockets'): an input through one
# reads no file on this machine, and an output through one is no file srpipe could write.
NETWORK_SCHEMES = frozenset({
    "amqp", "dtls", "ffrtmpcrypt", "ffrtmphttp", "ftp", "gopher", "gophers", "http", "httpproxy", "https", "icecast",
    "ipfs", "ipns", "mmsh", "mmst", "prompeg", "rist", "rtmp", "rtmpe", "rtmps", "rtmpt", "rtmpte", "rtmpts", "rtp",
    "rtsp", "rtsps", "sctp", "sftp", "smb", "srt", "srtp", "tcp", "tls", "udp", "udplite", "unix", "zmq",
})


def is_stream_location(location: str) -> bool:
    """Standard input and ``scheme:...`` locations (URLs, devices): no file to check."""
    return location == "-" or bool(_SCHEME.match(location)) or _is_subfile_form(location)


def local_name_hint(location: str) -> str:
    """For a ``scheme:...`` location that is also the name of a local file (``take1:good.mp4``),
    which FFmpeg reads as a URL of protocol ``take1`` as its own command does: how to name the file."""
    return f"; for the local file of that name write ./{location}" if (
        _SCHEME.match(location) and os.path.lexists(location)) else ""


def _is_subfile_form(location: str) -> bool:
    """FFmpeg's one ``scheme,options:`` form: ``subfile,,start,N,end,M,,:PATH``."""
    return location.startswith("subfile,") and ":" in location


def is_network_location(location: str | os.PathLike) -> bool:
    """A URL of one of FFmpeg's network protocols (``rtmp://host/live``)."""
    found = _SCHEME.match(os.fspath(location))
    return bool(found) and found[1] in NETWORK_SCHEMES


def _standard_input() -> list[int]:
    """What srpipe reads ``-`` from."""
    try:
        return [sys.stdin.fileno()]
    except (AttributeError, ValueError, OSError):  # closed, or replaced by one without a descriptor
        return []


def _ffmpeg_reads(location: str) -> tuple[list[str | int], bool]:
    """The paths and file descriptors FFmpeg reads for ``location``, and whether it may also
    read local files that the location does not name.

    As FFmpeg's protocols do: ``file:`` opens the text after it as it is (no percent-decoding);
    ``pipe:N`` reads descriptor N (0 without a number); ``fd:`` standard input; ``async:``,
    ``cache:`` and ``concat:a|b`` the locations inside them; network protocols nothing here.
    Any other scheme (``subfile``, ``concatf``, ``crypto``, ``data``, ``hls``, a plugin's) may
    read files that cannot be told from the text. The location read as a plain path is always
    included: srpipe's still-image reader opens it so when such a file exists."""
    if _is_subfile_form(location):
        return [location], True
    found = _SCHEME.match(location)
    if not found:
        return [location], False
    scheme, rest = found[1], found[2]
    if scheme in NETWORK_SCHEMES:
        return [location], False
    if scheme == "file":
        return [location, rest], False
    if scheme == "pipe":
        return [location, int(rest) if re.fullmatch(r"[ \t\n\v\f\r]*[+-]?[0-9]+", rest) else 0], False  # as strtol
    if scheme == "fd":  # descriptors other than standard input are given as an option srpipe never sets
        return [location, 0], False
    if scheme in ("async", "cache"):
        inner, unnamed = _ffmpeg_reads(rest)
        return [location, *inner], unnamed
    if scheme == "concat":
        parts = [_ffmpeg_reads(part) for part in rest.split("|") if part]
        return [location, *(target for inner, _ in parts for target in inner)], any(unnamed for _, unnamed in parts)
    if scheme == "camera":  # srpipe's camera plugin: a device index, else what FFmpeg or OpenCV open by that name
        device = rest.partition("?")[0]
        inner, unnamed = _ffmpeg_reads(f"/dev/video{device}" if device.isdigit() else device)
        return [location, *inner], unnamed
    return [location], True


def _reads(location: str | os.PathLike) -> tuple[list[str | int], bool]:
    """What srpipe reads for an input ``location`` on this machine (see :func:`_ffmpeg_reads`);
    ``-`` is standard input, a path object a path."""
    if isinstance(location, os.PathLike):
        return [os.fspath(location)], False
    if location == "-":
        return _standard_input(), False
    return _ffmpeg_reads(location)


def _identities(targets: list[str | int]) -> set[tuple[int, int]]:
    """(device, inode) of each existing file among ``targets``, links followed."""
    found = set()
    for target in targets:
        try:
            info = os.fstat(target) if isinstance(target, int) else os.stat(target)
        except (OSError, ValueError):  # missing, unreadable, or a name the system cannot take
            continue
        found.add((info.st_dev, info.st_ino))
    return found


def file_identities(location: str | os.PathLike) -> set[tuple[int, int]]:
    """(device, inode) of each existing file ``location`` names, by identity: links and hard links
    to it, a ``file:`` URL of it, a ``concat:`` list holding it, or standard input (``-``)
    redirected from it. A string is a location as srpipe takes inputs, a path object a path."""
    return _identities(_reads(location)[0])


def input_files(paths) -> dict[tuple[int, int], Path]:
    """(device, inode) -> path of each file among ``paths`` (files and folders, the folders'
    files found by walking them), for :func:`check_not_input`."""
    found = {}
    for path in map(Path, paths):
        files = [Path(root, name) for root, _, names in os.walk(path) for name in names] if path.is_dir() else [path]
        for file in files:
            for identity in _identities([file]):
                found[identity] = file
    return found


def check_not_input(output: str | os.PathLike, inputs: dict[tuple[int, int], Path], option: str) -> None:
    """Refuse, whatever --overwrite says, an output that is one of the command's ``inputs``
    (:func:`input_files`): the file itself, a link or a hard link to it."""
    for identity in _identities([Path(output)]):
        if identity in inputs:
            raise SrpipeError(f"output {output} is the input {inputs[identity]}, or a link to it; writing it would "
                              f"replace the input: choose another name with {option}")


def name_limit(folder: str | Path) -> int:
    """The longest file name, in bytes, that ``folder``'s file system takes."""
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):  # a missing folder; a system without pathconf
        return 255


def check_name_length(path: Path, option: str | None = None) -> None:
    """Refuse a file name longer than its file system takes (checked before anything stats it:
    the system would answer every call on it with 'File name too long'). ``option``: what names
    the output on the command line (``-o``, ``--record``), where one does."""
    size, limit = len(os.fsencode(path.name)), name_limit(path.parent)
    if size > limit:
        raise SrpipeError(f"output name {path.name} is {size} bytes long; file names here take at most "
                          f"{limit} bytes: choose a shorter name{f' with {option}' if option else ''}")


def check_not_network(output: str | os.PathLike, option: str | None = None) -> None:
    """Refuse a network URL as an output: srpipe's writers write files, FIFOs, devices and standard output."""
    if is_network_location(output):
        hint = ("--record writes a file: record to one, and stream that with ffmpeg" if option == "--record" else
                "srpipe writes files and standard output: to stream, pipe -o - into ffmpeg")
        raise SrpipeError(f"output {os.fspath(output)} is a network address; {hint}")


def check_output(output: str | Path, input_location: str, overwrite: bool, option: str = "-o",
                 plugin_sinks: bool = False) -> None:
    """The check, before anything runs, of an output as the user named it: ``-`` is standard
    output (:func:`check_standard_output`); a network URL is a sink plugin's to judge where a
    plugin other than srpipe's own writes outputs (``plugin_sinks``), and refused otherwise;
    anything else, ``file:x.mp4`` and ``pipe:1`` too, is the file srpipe's writers write
    (:func:`check_output_path`). A path object is always a path."""
    if isinstance(output, str) and output == "-":
        check_standard_output(input_location)
        return
    if plugin_sinks and is_network_location(output):
        return
    check_not_network(output, option)
    check_not_folder_name(output, option)
    check_output_path(Path(output), input_location, overwrite, option)


def check_not_folder_name(output: str | os.PathLike, option: str) -> None:
    """Refuse an output named as a folder is (``out.png/``, ``out.png/.``): a path object drops
    the ending, and the writers would make a file ``out.png`` where a folder was asked for."""
    output = os.fspath(output)
    if os.path.basename(output) in ("", ".", ".."):
        raise SrpipeError(f"output {output} is a folder's name, not a file's; give a file name with {option}")


def plugins_write_outputs(pm) -> bool:
    """Whether a plugin other than srpipe's own writes outputs (``open_sink``): a URL output is then its to judge."""
    from srpipe.plugins import DEFAULT_PLUGINS

    return any(impl.plugin_name not in DEFAULT_PLUGINS for impl in pm.hook.open_sink.get_hookimpls())


def check_standard_output(input_location: str) -> None:
    """Refuse ``-o -`` where standard output is a file the input reads (``-o - >> in.mp4``), as
    cat refuses "input file is output file"; or is a file with data, where the input may read
    files that cannot be told (:func:`_ffmpeg_reads`). Pipes, terminals and devices are streams."""
    try:
        info = os.fstat(sys.stdout.fileno())
    except (AttributeError, ValueError, OSError):  # closed, or without a descriptor: the sink says so
        return
    if not stat.S_ISREG(info.st_mode):
        return
    targets, unnamed = _reads(input_location)
    if (info.st_dev, info.st_ino) in _identities(targets):
        raise SrpipeError(f"standard output is the input file {input_location}; redirect it to another file, "
                          "or name one with -o")
    if unnamed and info.st_size > 0:
        raise SrpipeError(f"cannot tell whether {input_location} reads the file standard output goes to; give "
                          "the input as a plain path, or redirect standard output to a new file")


def check_output_path(output: Path, input_location: str, overwrite: bool, option: str = "-o") -> None:
    """Refuse an output that would clobber the input or an existing file, or cannot be written.

    ``input_location`` is compared by file identity, in whatever form it was given
    (:func:`file_identities`); an existing output is refused, even with ``overwrite``, where the input
    may read files that cannot be told from it (``concatf:list``, a plugin's scheme:
    :func:`_ffmpeg_reads`). ``option`` is what names the output on the command line, for the messages.
    FIFOs and character devices are written into (no --overwrite needed: nothing is replaced);
    a link to a file stands for its target, which is replaced, the link kept."""
    check_name_length(output, option)
    if output.is_symlink() and not output.exists():
        raise SrpipeError(f"output {output} is a link to a missing file; give the target itself with {option}")
    kind = special_kind(output)
    if kind is not None and not writes_through(output):
        raise SrpipeError(f"output {output} is a {kind}; write to a file, a FIFO or a device such as /dev/null")
    if kind is not None:
        return
    targets, unnamed = _reads(input_location)
    if not file_identities(output).isdisjoint(_identities(targets)):
        raise SrpipeError(f"output {output} is the input file, or a link to it; choose another name with {option}")
    if output.is_dir():
        raise SrpipeError(f"output {output} is a directory; give a file name with {option}")
    if unnamed and output.exists():
        raise SrpipeError(f"cannot tell whether {input_location} reads {output}; give the input as a plain path, "
                          f"or remove {output} first")
    if output.exists() and not overwrite:
        raise SrpipeError(f"output {output} already exists; pass --overwrite to replace it")
    parent = Path(os.path.realpath(output)).parent
    if not parent.is_dir():
        if parent.exists():
            raise SrpipeError(f"output folder {parent} is a file, not a folder; choose another name with {option}")
        raise SrpipeError(f"output folder {parent} does not exist; create it first")
    given = os.path.dirname(output) or "."  # "sub/.." resolves by name, but the file system needs sub itself
    try:
        os.stat(given)
    except OSError as exc:
        raise SrpipeError(f"output folder {given} cannot be reached ({exc.strerror}); name the output without it, "
                          f"or make the way to it") from exc
    if not os.access(parent, os.W_OK | os.X_OK):
        raise SrpipeError(f"output folder {parent} is not writable; choose another with {option}")


# Partial outputs are named for their owner, ``.NAME.srpipe-HOST-PID-XXXX.partial.EXT``, so that
# a later run removes only what srpipe made and what is provably dead (the owner's process is
# gone), never another run's file or a user's own ``*.partial.*`` file.
_HOST = re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname()) or "host"
_OWNED_PARTIAL = re.compile(r"\.srpipe-(?P<host>[A-Za-z0-9._]+)-(?P<pid>\d+)-[a-z0-9_]+\.partial(\.[^./]*)?$")
# What goes between a partial's prefix and suffix: HOST-PID-XXXXXXXX (mkstemp's 8 random
# characters), with room for the longest process id Linux gives (pid_max is at most 2**22).
_OWNER_BYTES = len(_HOST) + len(f"-{2**22}-") + 8


def partial_affixes(final: Path) -> tuple[str, str]:
    """How the partial names of ``final`` begin and end: ``.NAME.srpipe-`` and ``.partial.EXT``.

    Where the whole name would be longer than the file system takes, NAME is cut and a hash
    of it added (``.NA~1a2b3c4d.srpipe-``): the partial still shows what it is the partial of,
    and its start is still that output's alone, for the dead-partial clean-up to find."""
    prefix, suffix = f".{final.stem}.srpipe-", f".partial{final.suffix}"
    limit = name_limit(final.parent)
    fixed = _OWNER_BYTES + len(os.fsencode(prefix + suffix))
    if fixed <= limit:
        return prefix, suffix
    import hashlib  # here: it costs every command's start-up a few milliseconds

    digest = hashlib.sha256(os.fsencode(final.stem)).hexdigest()[:8]
    room = limit - fixed + len(os.fsencode(final.stem)) - len(f"~{digest}")
    if room < 0:
        raise SrpipeError(f"output name {final.name} leaves no room for srpipe's temporary name beside it (file "
                          f"names here take at most {limit} bytes); choose a shorter name or extension")
    stem = final.stem
    while len(os.fsencode(stem)) > room:
        stem = stem[:-1]
    return f".{stem}~{digest}.srpipe-", suffix


def _process_fields(pid: int) -> list[str] | None:
    """The fields of process ``pid``'s /proc/PID/stat after its name (its state first), where Linux tells."""
    try:
        with open(f"/proc/{pid}/stat") as file:
            return file.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _process_start(pid: int) -> float | None:
    """When process ``pid`` started (seconds since the epoch), where /proc tells."""
    fields = _process_fields(pid)
    if fields is None:
        return None
    try:
        ticks = int(fields[19])
        with open("/proc/stat") as file:
            boot = next(int(line.split()[1]) for line in file if line.startswith("btime "))
    except (OSError, ValueError, IndexError, StopIteration):
        return None
    return boot + ticks / os.sysconf("SC_CLK_TCK")


def process_exists(pid: int) -> bool:
    """Whether a process of id ``pid`` runs on this machine (another user's counts too). One that
    has ended and waits to be reaped does not (a zombie: a killed batch's worker, adopted by a
    system whose first process reaps what it adopts only now and then)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # gone, or a number no process id can be
        return False
    except PermissionError:  # another user's process
        pass
    fields = _process_fields(pid)
    return fields is None or fields[0] != "Z"


def is_partial(name: str) -> bool:
    """Whether ``name`` is a partial output of srpipe's (of any run, on any machine)."""
    return name.startswith(".") and _OWNED_PARTIAL.search(name) is not None


def is_dead_partial(path: Path) -> bool:
    """Whether ``path`` is a partial output srpipe made on this machine whose process is gone
    (or whose process id now belongs to a process started after the file was last written)."""
    found = _OWNED_PARTIAL.search(path.name)
    if not found or found["host"] != _HOST:
        return False
    pid = int(found["pid"])
    if pid == os.getpid():
        return False
    if not process_exists(pid):
        return True
    started = _process_start(pid)
    try:
        return started is not None and started > path.lstat().st_mtime + 2  # /proc's boot time is whole seconds
    except OSError:
        return False


def remove_dead_partials(folder: Path, prefix: str = "", suffix: str = "") -> None:
    """Remove the dead partial outputs (see :func:`is_dead_partial`) in ``folder`` whose names
    start with ``prefix`` and end with ``suffix``."""
    _remove_partials(folder, prefix, suffix, is_dead_partial)


def _remove_partials(folder: Path, prefix: str, suffix: str, chosen: Callable[[Path], bool]) -> None:
    """Remove the files in ``folder`` whose names start with ``prefix`` and end with ``suffix``
    and that ``chosen`` picks."""
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        path = Path(folder, name)
        if name.startswith(prefix) and name.endswith(suffix) and path.is_file() and chosen(path):
            path.unlink(missing_ok=True)


def remove_own_partials(final: str | Path) -> None:
    """Remove the partial outputs of ``final`` that this process made (:class:`AtomicOutput`):
    for a stop (a signal) that lands while the output is being opened, before it can be
    discarded by its writer."""
    try:
        final = Path(os.path.realpath(final)) if Path(final).is_symlink() else Path(final)
        prefix, suffix = partial_affixes(final)
    except (OSError, ValueError):  # not a file's name (a URL, a name no file system takes): no partial
        return
    _remove_partials(final.parent, f"{prefix}{_HOST}-{os.getpid()}-", suffix, lambda path: True)  # this process's


def _umask() -> int:
    """The process's umask, read without setting it (setting it, even back, races with other
    threads creating files) where Linux shows it."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


class AtomicOutput:
    """A temporary file beside ``final`` that becomes ``final`` only on :meth:`commit`.

    A FIFO or character device is written directly (``temp`` is ``final``; ``direct``) and never
    replaced; through a link to a file, the target is replaced and the link kept. A file replaced
    keeps its permissions, as FFmpeg's command, which writes into it, keeps them."""

    def __init__(self, final: str | os.PathLike, overwrite: bool):
        self.overwrite = overwrite
        self.direct = writes_through(final)
        if not self.direct:
            check_not_network(final)  # a URL that no sink plugin took, told as given: Path() makes // one /
        # Absolute: written from the first frame and renamed into place at the end, it must stay where
        # it was named if a plugin's code changes the working folder meanwhile (a model's upscale)
        final = Path(final).absolute()
        if self.direct:
            self.final = self.temp = final
            return
        check_name_length(final)
        self.final = Path(os.path.realpath(final)) if final.is_symlink() else final
        prefix, suffix = partial_affixes(self.final)
        remove_dead_partials(self.final.parent, prefix, suffix)  # a killed run's leftovers of this output
        fd, temp = tempfile.mkstemp(prefix=f"{prefix}{_HOST}-{os.getpid()}-", suffix=suffix, dir=self.final.parent)
        os.close(fd)
        self.temp = Path(temp)
        try:
            self.mode = stat.S_IMODE(os.stat(self.final).st_mode) & 0o777  # of the file replaced
        except OSError:
            self.mode = 0o666 & ~_umask()  # mkstemp makes 0600: the usual mode of a new file
        # none wider while written (a private file's replacement stays private), and its owner's to write
        os.chmod(self.temp, self.mode | stat.S_IWUSR)

    def commit(self) -> None:
        if self.direct:
            return
        if not self.overwrite and self.final.exists():
            self.discard()
            raise SrpipeError(f"output {self.final} appeared while writing; pass --overwrite to replace it")
        if special_kind(self.final) or self.final.is_dir():
            self.discard()
            raise SrpipeError(f"output {self.final} became a {special_kind(self.final) or 'folder'} while writing; "
                              "it was not replaced")
        if not self.mode & stat.S_IWUSR:  # a read-only file replaced: read-only again
            os.chmod(self.temp, self.mode)
        os.replace(self.temp, self.final)

    def discard(self) -> None:
        if not self.direct:
            self.temp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """A temporary path beside ``final`` to write; it becomes ``final`` when the block ends
    and is removed if the block raises (see :class:`AtomicOutput`)."""
    Path(final).parent.mkdir(parents=True, exist_ok=True)
    output = AtomicOutput(Path(final), True)
    try:
        yield output.temp
    except BaseException:
        output.discard()
        raise
    output.commit()


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` as ``path``: a concurrent reader sees the old file or the whole new one."""
    with atomic_path(path) as temp:
        temp.write_bytes(data)
