"""Overlapping runs on the same local sinks take turns: an exclusive flock per sink location.

Two cron runs that overlap would otherwise both see a credential missing and both create it.
The lock only covers runs on one machine; runs elsewhere (e.g. on a shared Vault) still converge,
because the planner keeps the credential the sinks hold and deletes the other.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import anyio
import structlog

from provisioner.errors import LockTimeout, LockUnavailable
from provisioner.fs.atomic import describe, unwritable_dir

log = structlog.get_logger("provisioner.sinks.locking")
POLL = 0.1


@asynccontextmanager
async def hold_locks(paths: Iterable[Path], patience: float) -> AsyncIterator[None]:
    """Hold every lock, taken in sorted order so two runs never wait on each other in a cycle."""
    async with AsyncExitStack() as stack:
        # The directory is resolved (one lock however it is reached), never the lock itself: a
        # symlink planted there must be refused by O_NOFOLLOW, not followed.
        for path in sorted({p.parent.resolve() / p.name for p in paths}):
            fd = await _acquire(path, patience)
            if fd is not None:
                stack.callback(os.close, fd)  # closing the descriptor releases the flock
        yield


async def _acquire(path: Path, patience: float) -> int | None:
    """Wait up to `patience` seconds for the lock at `path`; return its descriptor.

    A sink directory that cannot even be created means the sink is broken for every run: each
    credential that uses it fails on its own, so no lock is needed. A lock file that cannot be
    opened (a directory, a symlink, another user's file) fails the run before any write: going on
    without it would let two runs both create everything.
    """
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        log.warning("lock.unavailable", path=str(path), error=_why_no_dir(path.parent, exc))
        return None
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise LockUnavailable(
            f"{_why_no_lock(path, exc)}; stopping before any write, since another "
            "run could be writing the same sink (remove or fix that file)"
        ) from None
    deadline = time.monotonic() + patience
    waited = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                raise LockTimeout(f"another run still holds {path} after {patience:g} s") from None
        if not waited:
            log.warning("lock.waiting", path=str(path))
            waited = True
        await anyio.sleep(POLL)


def _why_no_dir(directory: Path, exc: OSError) -> str:
    """The path at fault and why, when the lock's directory could not be made."""
    problem = unwritable_dir(directory)
    where, why = problem if problem is not None else (directory, describe(exc))
    return f"{where}: {why}"


def _why_no_lock(path: Path, exc: OSError) -> str:
    """What is wrong: the lock file that is there, or the directory it could not be made in."""
    if os.path.lexists(path):
        reason = "is a symbolic link" if exc.errno == errno.ELOOP else describe(exc)
        return f"cannot open the lock {path}: {reason}"
    problem = unwritable_dir(path.parent)
    where, why = problem if problem is not None else (path.parent, describe(exc))
    return f"cannot create the lock {path}: {where}: {why}"
