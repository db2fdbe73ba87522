"""Temporary folders that a killed run does not leave behind.

A run keeps its log buffer, the report's pages, the UMAP worker's files and training's
checkpoint in folders under the system's temporary folder, and removes them when it ends. A
run killed with SIGKILL (the OOM killer, ``kill -9``, a lost machine) cannot: its folders
stayed, one set per kill. Beside each folder made here lies ``<folder>.lock``, on which its
owner holds an exclusive ``flock`` for as long as it lives (the kernel drops the lock when the
owner's last descriptor closes, however the owner ends), and :func:`sweep`, called when a run
starts, removes the folders whose lock nobody holds. A lock is a fact about a living process:
unlike a process ID in the folder's name, it cannot be mistaken for another process that
reused the ID, nor for one in another PID namespace that shares the same ``/tmp``. The lock
lies beside the folder, not in it, so the folder holds only what its owner puts there.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import tempfile
import weakref

log = logging.getLogger(__name__)

#: Every folder made here is named ``thresher-<kind>-<random>``.
PREFIX = "thresher-"
#: The name of a folder's lock file is the folder's with this added.
LOCK_SUFFIX = ".lock"


class TempDir:
    """A temporary folder, locked by this process until :meth:`cleanup` (or its death).

    Used as :class:`tempfile.TemporaryDirectory` is: ``name`` is the folder, ``with`` gives
    it, :meth:`cleanup` removes it (once; later calls do nothing), and so does the end of the
    interpreter (an exception, Ctrl-C). Forked children share the lock (they hold the same
    open file); programs started with ``subprocess`` do not (it closes descriptors).
    """

    def __init__(self, kind: str) -> None:
        self.name = tempfile.mkdtemp(prefix=f"{PREFIX}{kind}-")
        lock = self.name + LOCK_SUFFIX
        making = f"{lock}-{os.getpid()}"  # a name the sweep ignores, until it is locked
        try:
            fd = os.open(making, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.rename(making, lock)
        except BaseException:
            shutil.rmtree(self.name, ignore_errors=True)
            with contextlib.suppress(OSError):
                os.unlink(making)
            raise
        self._finalizer = weakref.finalize(self, _remove, self.name, fd)

    def __enter__(self) -> str:
        return self.name

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    def cleanup(self) -> None:
        """Remove the folder and its lock file, then let go of the lock."""
        self._finalizer()


def _remove(name: str, fd: int) -> None:
    shutil.rmtree(name, ignore_errors=True)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(name + LOCK_SUFFIX)
    os.close(fd)


def sweep(root: str | None = None) -> int:
    """Remove the folders of :class:`TempDir` whose owner has ended; return how many.

    Only ``thresher-*.lock`` files this process can open are looked at: another user's
    folders, folders of older versions (no lock file) and anything else are left as they are.
    """
    removed = 0
    try:
        entries = list(os.scandir(root or tempfile.gettempdir()))
    except OSError:
        return 0
    for entry in entries:
        name = entry.name
        if not (name.startswith(PREFIX) and name.endswith(LOCK_SUFFIX)):
            continue
        try:
            fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:  # gone, a link, or not ours to open
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # held: its owner is alive
            os.close(fd)
            continue
        try:
            folder = entry.path[: -len(LOCK_SUFFIX)]
            if not os.path.islink(folder):
                shutil.rmtree(folder, ignore_errors=True)
            os.unlink(entry.path)
            removed += 1
        except FileNotFoundError:  # its owner was removing it just now
            pass
        finally:
            os.close(fd)
    if removed:
        log.debug("removed %d temporary folders of ended runs", removed)
    return removed
