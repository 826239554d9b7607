"""srpipe's cache folder: what srpipe makes once and keeps for later runs.

The cache is not trusted input: whatever is in it must neither make srpipe write anywhere else
nor run or show something srpipe did not make. So every read and write goes through here:

- each folder from the cache root down (a folder outside it, such as training's ``--cache-dir``:
  that folder) is opened without following a link, made 0700 where missing, and used only if it
  belongs to this user and no one else may write in it, so only this user (or root) can have put
  anything there;
- a file is used only if it is a regular file of this user's that no one else may write, opened
  without following a link; it is written as a new file in the checked folder and renamed over
  the name, which replaces a link there instead of writing through it;
- :func:`write_recorded` also keeps the SHA-256 of what it wrote, under ``records/``, apart from
  the files, and :func:`read_recorded` gives back only bytes that match it. The checks above
  keep other users out, so what this catches is a stray file: one renamed or copied over another
  (the x3 network under the x2 key, its record with it: a record is of the name and the bytes),
  changed by hand or damaged, or left by another program.

A cache that cannot be used only costs the work it saves: nothing here raises, and a folder or
file refused, or a file that no longer matches its record, is named in one warning line.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import warnings
from pathlib import Path
from typing import BinaryIO, Iterator

# Where folders cannot be opened relative to a checked one without following links (Windows), no
# cache is used at all.
_CHECKABLE = os.open in os.supports_dir_fd and hasattr(os, "O_NOFOLLOW")
_FOLDER_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_FILE_FLAGS = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


class CacheWarning(UserWarning):
    """A cache folder or file was not used; what it held is made again."""


def cache_root() -> Path:
    """``$SRPIPE_CACHE_DIR`` (default ``~/.cache/srpipe``, or ``srpipe`` under ``$XDG_CACHE_HOME``),
    links resolved: where the user keeps the cache is the user's choice (a link to a larger disk);
    only what lies inside it is checked (see the module)."""
    return Path(os.path.realpath(os.environ.get("SRPIPE_CACHE_DIR")
                                 or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "srpipe"))


def cache_dir(kind: str) -> Path:
    """The folder of one kind of cached thing, ``kind`` under :func:`cache_root`."""
    return cache_root() / kind


def file_digest(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, in hex, read a block at a time: a file of gigabytes (a
    --weights file that is no checkpoint) must not be held in memory whole."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while block := file.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


_refused: set[tuple[Path, str]] = set()  # named once a run, however often a command looks there


def _refuse(path: Path, problem: str) -> None:
    if (path, problem) not in _refused:
        _refused.add((path, problem))
        warnings.warn(f"{path} {problem}; srpipe does not use it as a cache and makes what it would hold again",
                      CacheWarning, stacklevel=2)


def _trusted(fd: int, path: Path, folder: bool) -> bool:
    """Whether the open ``fd`` is a folder (``folder``) or regular file of this user's that no one
    else may write; a refusal is named in a warning."""
    info = os.fstat(fd)
    if not (stat.S_ISDIR if folder else stat.S_ISREG)(info.st_mode):
        _refuse(path, "is not a folder" if folder else "is not a regular file")
    elif info.st_uid != os.getuid():
        _refuse(path, "belongs to another user")
    elif info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        mode = stat.S_IMODE(info.st_mode)
        _refuse(path, f"can be written by other users (mode {mode:o}; chmod go-w makes it usable)")
    else:
        return True
    return False


def _open_unfollowed(name: str | Path, flags: int, parent: int | None, shown: Path, folder: bool) -> int | None:
    """``name`` (in the folder ``parent``) opened without following a link, if trusted."""
    try:
        fd = os.open(name, flags, dir_fd=parent)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):  # O_NOFOLLOW met a link, or O_DIRECTORY a non-folder
            try:
                is_link = stat.S_ISLNK(os.lstat(name, dir_fd=parent).st_mode)
            except OSError:
                is_link = False
            _refuse(shown, "is a link" if is_link else "is not a folder")
        return None  # missing, or unreadable: no cache, without a word (as when it cannot be written)
    if _trusted(fd, shown, folder):
        return fd
    os.close(fd)
    return None


def _open_folder(folder: Path, create: bool) -> int | None:
    """A descriptor of ``folder``, each level from the cache root down opened and checked (see the
    module), made where missing when ``create``; None where one is missing or refused."""
    if not _CHECKABLE:
        return None
    folder = Path(folder)
    try:
        root = cache_root()
        parts = folder.relative_to(root).parts
    except (RuntimeError, ValueError):  # no home folder to find the root under, or a folder outside it
        root, parts = folder, ()
    if create:
        with contextlib.suppress(OSError):  # read-only or not allowed: the open below says whether it is there
            root.parent.mkdir(parents=True, exist_ok=True)
    fd, shown, name = None, root, str(root)
    for part in (None, *parts):
        if part is not None:
            shown, name = shown / part, part
        if create:
            with contextlib.suppress(OSError):
                os.mkdir(name, 0o700, dir_fd=fd)
        opened = _open_unfollowed(name, _FOLDER_FLAGS, fd, shown, folder=True)
        if fd is not None:
            os.close(fd)
        if opened is None:
            return None
        fd = opened
    return fd


@contextlib.contextmanager
def opened(folder: Path, name: str) -> Iterator[BinaryIO | None]:
    """``folder/name`` open for reading where it and its folders are trusted (see the module),
    else None."""
    parent = _open_folder(folder, create=False)
    fd = None
    if parent is not None:
        try:  # O_NONBLOCK: opening a FIFO put there does not wait for a writer (it is then refused)
            fd = _open_unfollowed(name, os.O_RDONLY | os.O_NONBLOCK | _FILE_FLAGS, parent, Path(folder, name),
                                  folder=False)
        finally:
            os.close(parent)
    if fd is None:
        yield None
        return
    with os.fdopen(fd, "rb") as file:
        yield file


@contextlib.contextmanager
def replacing(folder: Path, name: str) -> Iterator[BinaryIO | None]:
    """A new file to write, which becomes ``folder/name`` when the block ends (a link of that name
    is replaced, never written through), or None where the folder is refused or cannot be made.
    An ``OSError`` in the block (a full disk) only leaves the cache without the file."""
    parent = _open_folder(folder, create=True)
    temp = f".{name}.{os.getpid()}-{os.urandom(4).hex()}.tmp"
    fd = None
    if parent is not None:
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _FILE_FLAGS, 0o600, dir_fd=parent)
        except OSError:
            os.close(parent)
    if fd is None:
        yield None
        return
    try:
        with os.fdopen(fd, "wb") as file:
            yield file
        os.replace(temp, name, src_dir_fd=parent, dst_dir_fd=parent)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temp, dir_fd=parent)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp, dir_fd=parent)
        raise
    finally:
        os.close(parent)


def read(kind: str, name: str) -> bytes | None:
    """The bytes of ``name`` in the cache folder ``kind``, or None (missing or refused)."""
    try:
        with opened(cache_dir(kind), name) as file:
            return file.read() if file else None
    except (OSError, RuntimeError):  # a read error; no home folder
        return None


def write(kind: str, name: str, data: bytes) -> None:
    """Keep ``data`` as ``name`` in the cache folder ``kind``, where it can."""
    try:
        with replacing(cache_dir(kind), name) as file:
            if file:
                file.write(data)
    except RuntimeError:  # no home folder
        pass


def _record_folder(kind: str) -> str:
    return f"records/{kind}"


def _record(kind: str, name: str, data: bytes) -> bytes:
    """What :func:`write_recorded` keeps of ``data`` written as ``name``: the SHA-256 of the two
    together, so that a file and its record copied to another name (one network's under
    another's key) match no longer."""
    import hashlib

    return hashlib.sha256(f"{kind}/{name}".encode() + b"\0" + data).hexdigest().encode()


def read_recorded(kind: str, name: str, what: str) -> bytes | None:
    """Like :func:`read`, for what :func:`write_recorded` kept: bytes that do not match their
    record are refused, with a warning naming ``what`` they held; one without a record (an older
    srpipe's, or a stray file) is refused without a word."""
    data = read(kind, name)
    record = read(_record_folder(kind), f"{name}.record") if data is not None else None
    if record is None:
        return None
    if record != _record(kind, name, data):
        warnings.warn(f"the cached {what} did not match srpipe's record of it; it is made again", CacheWarning,
                      stacklevel=2)
        return None
    return data


def write_recorded(kind: str, name: str, data: bytes) -> None:
    """:func:`write`, and its record (:func:`_record`) kept apart for :func:`read_recorded`."""
    write(kind, name, data)
    write(_record_folder(kind), f"{name}.record", _record(kind, name, data))
