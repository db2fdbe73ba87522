"""Ctrl-C for ``thresher run``: one line, exit code 130 within seconds, no half-written file.

A terminal's Ctrl-C reaches the whole process group: thresher, its image-decoding workers and
Prefect's embedded API server. The server dies at once, so Prefect's engine, unwinding the
interrupted flow, retries reporting the crash to it for about 70 seconds and then prints
connection tracebacks. The guard below takes over SIGINT instead:

1. the first Ctrl-C prints one line at once (a thread woken by the signal's wakeup fd, since
   the main thread may be inside a torch batch), silences the terminal's stderr (log.txt keeps
   the details) and lets the run unwind with a KeyboardInterrupt, so the flow saves its log;
2. a watchdog gives that unwinding a few seconds; then it terminates the child processes,
   removes temporary files of interrupted writes and ends the process with ``os._exit(130)``;
3. a second Ctrl-C does step 2 at once.

``os._exit`` is safe here because every output is written atomically (a temporary name, then
a move): what is not moved into place yet is a temporary file, and those are removed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import threading
import time
from types import FrameType, TracebackType
from typing import Any

import psutil

from thresher.storage.location import TEMP_NAME

MESSAGE = "thresher: interrupted; re-run the same command to resume"
EXIT_CODE = 130


def remove_temporary_files(folder: str, since: float) -> list[str]:
    """Remove the temporary files of interrupted atomic writes below a local ``folder``.

    Only files changed at or after ``since`` (a ``time.time()`` value) are touched, so the
    temporary files of another run writing to the same place at the same time are left alone
    unless they are younger than this run.

    Args:
        folder: A local LIGHTLY folder; missing folders are fine.
        since: The start of this run.

    Returns:
        The paths removed.
    """
    removed: list[str] = []
    for root, _dirs, files in os.walk(folder):
        for name in files:
            if not TEMP_NAME.match(name):
                continue
            path = os.path.join(root, name)
            try:
                if os.stat(path).st_mtime >= since - 1:
                    os.remove(path)
                    removed.append(path)
            except OSError:
                continue  # moved into place or removed meanwhile: nothing half-written remains
    return removed


def terminate_children(timeout_s: float = 1.0) -> None:
    """Terminate this process's children (decode workers, Prefect's server).

    Any that outlive ``timeout_s`` are killed.
    """
    try:
        children = psutil.Process().children(recursive=True)
    except psutil.Error:
        return
    for child in children:
        try:
            child.terminate()
        except psutil.Error:
            continue
    _gone, alive = psutil.wait_procs(children, timeout=timeout_s)
    for child in alive:
        try:
            child.kill()
        except psutil.Error:
            continue


class InterruptGuard:
    """Owns SIGINT while a run works (a context manager; see the module docstring).

    Args:
        lightly_dir: The local LIGHTLY folder whose temporary files to remove on interrupt,
            or None for a remote location (object stores write atomically without them).
        started_at: When the run started (``time.time()``); only younger temporary files go.
        grace_s: How long the run may take to unwind after the first Ctrl-C.

    Example:
        >>> with InterruptGuard("/data/images-lightly", time.time()) as guard:
        ...     pass  # run the flow; on Ctrl-C a KeyboardInterrupt unwinds it
    """

    def __init__(self, lightly_dir: str | None, started_at: float, grace_s: float = 3.0) -> None:
        self.lightly_dir = lightly_dir
        self.started_at = started_at
        self.grace_s = grace_s
        self._previous: Any = None
        self._installed = False
        self._count = 0  # Ctrl-Cs seen
        self._count_lock = threading.Lock()
        self._finished = threading.Lock()
        self._done = False
        self._wakeup: tuple[socket.socket, socket.socket] | None = None
        self._previous_wakeup_fd = -1

    @property
    def interrupted(self) -> bool:
        """Whether a Ctrl-C arrived while the guard was active."""
        return self._count > 0

    def __enter__(self) -> InterruptGuard:
        previous = signal.getsignal(signal.SIGINT)
        # A shell starts background jobs with SIGINT ignored; such a run keeps ignoring it.
        if previous is signal.SIG_IGN or threading.current_thread() is not threading.main_thread():
            return self
        self._previous = previous
        signal.signal(signal.SIGINT, self._on_sigint)
        self._installed = True
        # Python runs signal handlers in the main thread between bytecodes, which can be seconds
        # late while torch computes a batch. The wakeup fd is written at once by the C-level
        # handler, so a listener thread reacts to Ctrl-C immediately.
        receiver, sender = socket.socketpair()
        sender.setblocking(False)
        try:
            self._previous_wakeup_fd = signal.set_wakeup_fd(
                sender.fileno(), warn_on_full_buffer=False
            )
        except ValueError:
            receiver.close()
            sender.close()
            return self
        self._wakeup = (receiver, sender)
        threading.Thread(
            target=self._listen, args=(receiver,), name="thresher-sigint", daemon=True
        ).start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
        if self._wakeup is not None:
            signal.set_wakeup_fd(self._previous_wakeup_fd)
            for sock in self._wakeup:
                sock.close()
            self._wakeup = None
        if self.interrupted or (exc_type is not None and issubclass(exc_type, KeyboardInterrupt)):
            self.finish()

    def _listen(self, receiver: socket.socket) -> None:
        while True:
            try:
                data = receiver.recv(64)
            except OSError:
                return
            if not data:
                return
            for _ in range(data.count(signal.SIGINT)):
                self._seen()

    def _seen(self) -> None:
        """One Ctrl-C, from the listener or the handler, whichever comes first."""
        with self._count_lock:
            self._count += 1
            count = self._count
        if count == 1:
            announce()
            threading.Thread(target=self._watchdog, name="thresher-interrupt", daemon=True).start()
        else:  # a second Ctrl-C: stop now
            self.finish()
            os._exit(EXIT_CODE)

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        if self._wakeup is None:  # no listener: count here
            self._seen()
        raise KeyboardInterrupt

    def _watchdog(self) -> None:
        time.sleep(self.grace_s)
        self.finish()
        os._exit(EXIT_CODE)

    def finish(self) -> None:
        """Terminate child processes and remove temporary files (once; thread-safe)."""
        with self._finished:
            if self._done:
                return
            self._done = True
            terminate_children()
            if self.lightly_dir:
                remove_temporary_files(self.lightly_dir, self.started_at)


_announced = False


def interrupted() -> bool:
    """Whether this process was interrupted (its one line is printed)."""
    return _announced


def announce() -> None:
    """Print the one line on the terminal, then send everything else on stderr to nowhere.

    Later writes to stderr (Prefect's crash reports, library warnings, tqdm's last redraw)
    would bury the line; the run's log.txt keeps them.
    """
    global _announced
    if _announced:
        return
    _announced = True
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.flush()
    try:
        # A progress bar may own the current line: start a fresh one.
        os.write(2, f"\n{MESSAGE}\n".encode())
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
    except OSError:
        pass
