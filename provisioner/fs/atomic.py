"""Crash-safe file replacement: private directories, temp file, fsync, rename, fsync.

The one way the provisioner replaces a file: sinks, the run report and the metrics textfile.
Everything here blocks; async callers go through `anyio.to_thread.run_sync`. Functions raise
OSError and leave it to the caller to name the path it knows.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700

#: The temp names `write_atomic` makes: `.<name>.<12 hex digits>.tmp`.
TEMP_NAME = re.compile(r"\.(?P<name>.+)\.[0-9a-f]{12}\.tmp")

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


@contextmanager
def open_dir(path: Path, *, follow: bool) -> Iterator[int]:
    """A descriptor of the directory `path`; with follow=False, not through a final symlink."""
    try:
        fd = os.open(path, _DIR_FLAGS if follow else _DIR_FLAGS | os.O_NOFOLLOW)
    except NotADirectoryError:
        # O_DIRECTORY reports a final symlink as "not a directory"; say what it really is.
        if not follow and path.is_symlink():
            raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), str(path)) from None
        raise
    try:
        yield fd
    finally:
        os.close(fd)


def ensure_dir(path: Path) -> None:
    """Create `path` and any missing parents as 0700 directories; existing ones are left alone."""
    try:
        os.mkdir(path, DIR_MODE)
    except FileExistsError:
        return
    except FileNotFoundError:
        ensure_dir(path.parent)
        try:
            os.mkdir(path, DIR_MODE)
        except FileExistsError:
            return
    # mkdir's mode is filtered through the umask; set it exactly, on the directory we just made.
    with open_dir(path, follow=False) as fd:
        os.fchmod(fd, DIR_MODE)
    with open_dir(path.parent, follow=True) as parent:
        os.fsync(parent)


def refuse_symlink(dir_fd: int, name: str) -> None:
    """Raise ELOOP when `name` in the directory is a symbolic link: we never write through one."""
    try:
        mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISLNK(mode):
        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), name)


def replace_file(path: Path, data: bytes, *, mode: int = FILE_MODE) -> None:
    """Replace the file at `path` (its directory must exist) as `write_atomic` does."""
    with open_dir(path.absolute().parent, follow=True) as dir_fd:
        write_atomic(dir_fd, path.name, data, mode=mode)


def write_atomic(
    dir_fd: int, name: str, data: bytes, *, sync_dir: bool = True, mode: int = FILE_MODE
) -> None:
    """Replace `name` in the directory with `data` (0600); readers see old or new, not half.

    The temp file has a random name, is created exclusively and never through a symlink, and its
    name does not end like the target's (a textfile collector never reads it half-written).

    With sync_dir=False the rename is durable only once the caller fsyncs the directory (done
    once for many files).
    """
    refuse_symlink(dir_fd, name)
    temp = f".{name}.{secrets.token_hex(6)}.tmp"
    fd = os.open(temp, _TEMP_FLAGS, mode, dir_fd=dir_fd)
    try:
        try:
            os.fchmod(fd, mode)  # the umask may have narrowed it
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        _unlink_quietly(dir_fd, temp)
        raise
    if sync_dir:
        os.fsync(dir_fd)  # make the rename itself durable


def sweep_stale_temps(dir_fd: int, before: float, owns: Callable[[str], bool]) -> int:
    """Unlink temp files `write_atomic` left behind (killed mid-write), holding live secrets.

    Only regular files named exactly as it names them, for a target name `owns` accepts, and
    last modified before `before` (the run's start: a live writer's files are newer). Returns
    how many were removed.
    """
    removed = 0
    for entry in os.listdir(dir_fd):
        found = TEMP_NAME.fullmatch(entry)
        if found is None or not owns(found["name"]):
            continue
        try:
            info = os.stat(entry, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            continue
        if stat.S_ISREG(info.st_mode) and info.st_mtime < before:
            _unlink_quietly(dir_fd, entry)
            removed += 1
    if removed:
        os.fsync(dir_fd)
    return removed


def remove(dir_fd: int, name: str) -> None:
    """Unlink `name` from the directory durably."""
    os.unlink(name, dir_fd=dir_fd)
    os.fsync(dir_fd)


def unwritable_dir(path: Path) -> tuple[Path, str] | None:
    """Why files could not be written in the directory `path` (made first if missing); blocking.

    None when they can: `path` is a directory we may write in, or it is missing and its nearest
    existing ancestor is one (`ensure_dir` would make it). Otherwise the path at fault and why.
    Nothing is written: permissions are asked of the kernel (effective ids, read-only mounts).
    """
    current = path
    while True:
        try:
            info = os.stat(current)
        except (FileNotFoundError, NotADirectoryError):
            if current.parent == current:
                return current, "not found"
            current = current.parent  # missing, or under something that is not a directory
            continue
        except OSError as exc:
            return current, describe(exc)
        break
    if not stat.S_ISDIR(info.st_mode):
        return current, "not a directory"
    if not _may_write(current):
        return current, _why_not_writable(current)
    return None


def unreplaceable_file(path: Path) -> str | None:
    """Why the file at `path` could not be replaced by `write_atomic`, or None; blocking."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None
    except OSError as exc:
        return describe(exc)
    if stat.S_ISLNK(mode):
        return describe(OSError(errno.ELOOP, os.strerror(errno.ELOOP)))
    if not stat.S_ISREG(mode):
        return "not a regular file (refusing to replace it)"
    return None


def _may_write(directory: Path) -> bool:
    flags = os.W_OK | os.X_OK
    if os.access in os.supports_effective_ids:
        return os.access(directory, flags, effective_ids=True)
    return os.access(directory, flags)  # pragma: no cover - every Linux supports effective ids


def _why_not_writable(directory: Path) -> str:
    try:
        read_only = bool(os.statvfs(directory).f_flag & os.ST_RDONLY)
    except OSError:
        read_only = False
    return "read-only file system" if read_only else "permission denied (not writable)"


def describe(exc: OSError) -> str:
    """A short reason for an OSError, without the paths it may carry."""
    if exc.errno == errno.ELOOP:
        return "is a symbolic link (refusing to follow it)"
    return exc.strerror or exc.__class__.__name__


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _unlink_quietly(dir_fd: int, name: str) -> None:
    with suppress(OSError):
        os.unlink(name, dir_fd=dir_fd)
