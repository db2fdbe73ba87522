"""Start-up and exit of ``thresher run``: in parallel at the start, without teardown at the end.

Before its first stage a run waits for three things that do not depend on each other:
Prefect's embedded API (a server subprocess: about 5 s on 2 cores, most of it spent waiting),
importing Prefect's server module (about 2-4 s) and importing what the stages use, PyTorch,
OpenVINO, timm and the report's plotting libraries (about 5-7 s). One after the other they
took most of a small run. :class:`ParallelStartup` runs them in two background threads while
the command finishes its checks, and :meth:`ParallelStartup.wait` joins them before the flow
starts.

Nothing here changes what a run computes: a failure in either thread is only logged, and the
flow then starts the API itself and imports what it needs, as it would have without this.
``THRESHER_PARALLEL_STARTUP=0`` turns this and :class:`FastExit` off.

At the end, tearing down the interpreter (freeing PyTorch, OpenVINO, Prefect and thousands of
modules one by one) took another 3-5 s after the summary was printed. :class:`FastExit` ends
the process with ``os._exit`` once every ``atexit`` handler has run (Prefect's API server
stopped, its logs and events flushed, log files closed), skipping only that teardown.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Callable

log = logging.getLogger("thresher")

ENV = "THRESHER_PARALLEL_STARTUP"

#: Imported in the background: modules no module of the flow imports at load time (so the two
#: threads never import the same thresher module at once), but the stages need later.
WARM_MODULES = (
    "torch",
    "torchvision.transforms.v2",
    "timm",
    "thresher.models.inference",
    "thresher.reports",
)


def _start_api() -> None:
    """Import the flow (and Prefect), then start the ephemeral API if the run will use it."""
    importlib.import_module("thresher.flows")  # sets Prefect's offline defaults, then loads it
    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_ENABLED

    if PREFECT_API_URL.value() or not PREFECT_SERVER_EPHEMERAL_ENABLED.value():
        return
    from prefect.server.api.server import SubprocessASGIServer

    # The same instance Prefect's get_client() uses (one per port; None = any free port).
    server = SubprocessASGIServer()
    server.start()
    if server.server_process is not None:
        end_with_this_process(server.server_process.pid)


#: The reaper's program. Its stdin is a pipe from the thresher process: when that process ends,
#: however it ends (SIGKILL, the OOM killer), the pipe closes and the reaper ends the process
#: it watches. psutil checks the process is still the one it watched, not a reused pid.
_REAPER = """
import sys, psutil
try:
    watched = psutil.Process(int(sys.argv[1]))
except psutil.Error:
    sys.exit(0)
sys.stdin.buffer.read()
try:
    watched.terminate()
    watched.wait(5)
except psutil.TimeoutExpired:
    watched.kill()
except psutil.Error:
    pass
"""

#: The reapers started (kept referenced: collecting one would close its pipe).
_reapers: list[subprocess.Popen[bytes]] = []


def end_with_this_process(pid: int) -> None:
    """End process ``pid`` when this process ends, even by SIGKILL.

    Prefect's embedded API server is a child process that nothing stops when the thresher
    process is killed alone (the OOM killer does that): it ran on for good, a server and its
    database connections per killed run. A small reaper process (a pipe from this one on its
    stdin) stops it instead. A normal exit stops the server first (Prefect's ``atexit``
    handler); the reaper then finds it gone and ends too.

    Args:
        pid: The process to end with this one.
    """
    _reapers.append(
        subprocess.Popen(
            [sys.executable, "-c", _REAPER, str(pid)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    )


def _warm_imports() -> None:
    for name in WARM_MODULES:
        importlib.import_module(name)
    from thresher.models.backends import import_openvino, openvino_available

    if openvino_available():
        import_openvino()  # with its telemetry blocked


class ParallelStartup:
    """Start Prefect's API and the heavy imports in background threads.

    Example:
        >>> startup = ParallelStartup()  # doctest: +SKIP
        >>> ...  # the command's own checks
        >>> startup.wait()  # doctest: +SKIP
        >>> curate(...)  # doctest: +SKIP
    """

    def __init__(self) -> None:
        self._threads: list[threading.Thread] = []
        if os.environ.get(ENV, "1") == "0":
            return
        for target in (_start_api, _warm_imports):
            t = threading.Thread(
                target=self._guard, args=(target,), name=f"thresher-{target.__name__}"
            )
            t.daemon = True
            t.start()
            self._threads.append(t)

    @staticmethod
    def _guard(target: Callable[[], None]) -> None:
        try:
            target()
        except Exception as e:  # the flow redoes it and reports a real problem itself
            log.debug("parallel start-up: %s failed: %s", target.__name__, e)

    def wait(self) -> None:
        """Block until both threads are done (the flow must not start before the API)."""
        for t in self._threads:
            t.join()


class FastExit:
    """End the process right after the ``atexit`` handlers, skipping the interpreter teardown.

    Create it before the command imports anything that registers ``atexit`` handlers (they
    run last-registered first, so this one runs after them all), then set :attr:`code` to
    the command's exit code. Until it is set, the code is 1, as for an uncaught exception.
    """

    def __init__(self) -> None:
        self.code = 1
        if os.environ.get(ENV, "1") != "0":
            atexit.register(self._exit)

    def _exit(self) -> None:
        logging.shutdown()  # registered by the logging module before this handler
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):  # closed: nothing left to write
                stream.flush()
        os._exit(self.code)


__all__ = ["ENV", "WARM_MODULES", "FastExit", "ParallelStartup"]
