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
from collections.abc import Callable, Iterator
from typing import Any

import thresher.prefect_defaults  # noqa: F401  (the API's process inherits them)

log = logging.getLogger("thresher")

ENV = "THRESHER_PARALLEL_STARTUP"

#: Imported in the background once the flow's modules are (so the two threads never import
#: the same thresher module at once): modules the stages import only when they run. The
#: report's (matplotlib, fpdf, the selection engine: about 1 s) and the results' writers
#: (pandas, pyarrow's parquet). ``thresher.reports`` alone imports none of them: its names
#: load on first use (for the UMAP worker process). Prefect's flow call imports the last two
#: (the parameters' JSON encoder and the flow's graph helpers: 0.25 s after the API is up).
WARM_MODULES = (
    "thresher.reports.build",
    "pandas",
    "pyarrow.parquet",
    "fastapi.encoders",
    "prefect.utilities.visualization",
)

#: Also imported in the background when the run will use PyTorch (:func:`needs_pytorch`).
TORCH_MODULES = (
    "torch",
    "torchvision.transforms.v2",
    "timm",
    "thresher.models.inference",
)


def needs_pytorch(cfg: Any, dataset_type: str = "images") -> bool:
    """Whether a run with configs ``cfg`` (a ``RunConfig``) will import PyTorch.

    A default run embeds with the pretrained model's converted OpenVINO file and never imports
    PyTorch, timm or torchvision (:mod:`thresher.models.openvino_embed`); importing them in
    the background anyway would cost about 600 MB and seconds of a 2-core CPU for nothing.
    Training, a checkpoint, a named model, the ``torch`` backend or a GPU, videos, object
    level, or the first run on a machine (the model is converted) need it; int8 on the default
    model does not (NNCF runs in a child process).
    """
    from thresher.models.backends import (
        PRETRAINED_DEFAULT,
        openvino_available,
        pretrained_openvino,
    )
    from thresher.selection._device import cuda_available
    from thresher.stages.objects import object_task

    w = cfg.worker
    if w.embeddings:  # precomputed embeddings: no model at all
        return False
    return bool(
        w.enable_training
        or w.checkpoint
        or w.checkpoint_run_id
        or "name" in cfg.lightly.model.model_fields_set
        or w.embedding_backend == "torch"
        or dataset_type != "images"
        or object_task(cfg) is not None
        or not openvino_available()
        or cuda_available()
        or pretrained_openvino(PRETRAINED_DEFAULT) is None
    )


def _start_api(flow_imported: threading.Event | None = None) -> None:
    """Import the flow (and Prefect), then start the ephemeral API if the run will use it."""
    try:
        importlib.import_module("thresher.flows")  # loads Prefect
    finally:
        if flow_imported is not None:
            flow_imported.set()
    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_ENABLED

    if PREFECT_API_URL.value() or not PREFECT_SERVER_EPHEMERAL_ENABLED.value():
        return
    from prefect.server.api.server import SubprocessASGIServer

    # The same instance Prefect's get_client() uses (one per port; None = any free port).
    server = SubprocessASGIServer()
    server.start()
    if server.server_process is not None:
        end_with_this_process(server.server_process.pid)


#: Prefect's settings the early API leaves to Prefect: any of them set in the environment (or
#: ``PREFECT_API_URL`` in the active profile, or a settings file in the working folder) and
#: the run starts Prefect's ephemeral API the usual way.
_PREFECT_CONFIG_ENV = ("PREFECT_API_URL", "PREFECT_PROFILE", "PREFECT_PROFILES_PATH")


def _prefect_configured() -> bool:
    """Whether the user's Prefect configuration might name an API (read without Prefect)."""
    import tomllib
    from pathlib import Path

    if any(os.environ.get(k) for k in _PREFECT_CONFIG_ENV):
        return True
    if os.environ.get("PREFECT_SERVER_EPHEMERAL_ENABLED", "").lower() in ("0", "false", "no"):
        return True
    cwd = Path.cwd()
    if (cwd / "prefect.toml").exists() or (cwd / ".env").exists():
        return True
    try:
        if "tool.prefect" in (cwd / "pyproject.toml").read_text(encoding="utf-8"):
            return True
    except OSError:
        pass
    home = Path(os.environ.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser()
    try:
        profiles = tomllib.loads((home / "profiles.toml").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return False
    except (OSError, ValueError):  # unreadable: let Prefect read it and say what is wrong
        return True
    active = profiles.get("active", "ephemeral")
    settings = profiles.get("profiles", {}).get(active, {})
    return not isinstance(settings, dict) or any(
        k in settings for k in ("PREFECT_API_URL", "PREFECT_SERVER_EPHEMERAL_ENABLED")
    )


#: Settings that move Prefect's database or memo store away from their default places.
_PREFECT_DB_ENV = (
    "PREFECT_API_DATABASE_CONNECTION_URL",
    "PREFECT_SERVER_DATABASE_CONNECTION_URL",
    "PREFECT_MEMO_STORE_PATH",
    "PREFECT_SERVER_MEMO_STORE_PATH",
)


def _blocks_registered() -> bool:
    """Whether Prefect's default database has had its block types registered already.

    Each start of Prefect's server imports every installed Prefect collection (prefect-dask:
    about 0.3 s of a start that is on a run's critical path) to hash the block types, and
    registers them only when the hash differs from the one in ``memo_store.toml``. Where the
    database and that record exist, :class:`EarlyAPI`'s server skips both, and leaves the
    record as it is: Prefect's next own start compares and registers any new block types.
    A first run (no database, or no record) registers them as Prefect does.
    """
    from pathlib import Path

    if any(os.environ.get(k) for k in _PREFECT_DB_ENV):
        return False
    home = Path(os.environ.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser()
    try:
        memo = (home / "memo_store.toml").read_text(encoding="utf-8")
    except OSError:
        return False
    return "block_auto_registration" in memo and (home / "prefect.db").is_file()


class EarlyAPI:
    """Prefect's embedded API server, started at the first line of ``thresher run``.

    The same server Prefect's ephemeral mode starts (``uvicorn`` on Prefect's ``create_app``,
    in ephemeral mode, on 127.0.0.1 and a free port, stopped when the run ends), but started
    before this process imports Prefect at all, so its ~4 s start runs beside everything
    else instead of after the imports. The run finds it through ``PREFECT_API_URL``, set in
    this process's environment before Prefect reads its settings. Like Prefect's, it is
    stopped when the command exits and, by :func:`end_with_this_process`, when the command
    is killed.

    Only where the user's Prefect configuration cannot name an API (no ``PREFECT_API_URL``,
    profile or settings file, :func:`_prefect_configured`); otherwise :attr:`url` is None and
    :class:`ParallelStartup` starts the API the usual way.
    """

    def __init__(self) -> None:
        self.url: str | None = None
        self.process: subprocess.Popen[bytes] | None = None
        if os.environ.get(ENV, "1") == "0" or "prefect" in sys.modules:
            return
        if _prefect_configured():
            return
        import importlib.util
        import socket
        from pathlib import Path

        found = importlib.util.find_spec("prefect")
        if found is None or not found.submodule_search_locations:
            return
        package_dir = Path(next(iter(found.submodule_search_locations)))
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        env = dict(os.environ)  # with thresher's defaults for Prefect (thresher.prefect_defaults)
        env.update(PREFECT_UI_ENABLED="0", PREFECT__SERVER_EPHEMERAL="1")
        if _blocks_registered():
            env.setdefault("PREFECT_MEMOIZE_BLOCK_AUTO_REGISTRATION", "false")
            env.setdefault("PREFECT_API_BLOCKS_REGISTER_ON_START", "false")
        env["PREFECT__SERVER_FINAL"] = "1"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--app-dir",
                str(package_dir.parent),
                "--factory",
                "prefect.server.api.server:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "error",
                "--lifespan",
                "on",
            ],
            env=env,
            stdin=subprocess.DEVNULL,
        )
        atexit.register(self.stop)
        end_with_this_process(self.process.pid)
        self.url = f"http://127.0.0.1:{port}/api"
        os.environ["PREFECT_API_URL"] = self.url  # before this process imports Prefect

    def wait(self) -> None:
        """Block until the server answers ``/health``.

        Raises:
            RuntimeError: It exited or did not answer within
                ``PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS`` (90 s).
        """
        if self.process is None:
            return
        import time

        import httpx

        limit = float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS") or 90)
        deadline = time.monotonic() + limit
        with httpx.Client() as client:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"Prefect's embedded API server exited with code "
                        f"{self.process.returncode} while starting (its messages are above). "
                        "Set THRESHER_PARALLEL_STARTUP=0 to let Prefect start it instead."
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(f"{self.url}/health", timeout=2).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"Prefect's embedded API server did not answer {self.url}/health within "
                        f"{limit:g} s; raise PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS on "
                        "a busy machine."
                    )
                time.sleep(0.05)

    def stop(self) -> None:
        """Ask the server to stop (SIGTERM), without waiting for it.

        Its shutdown takes 0.2 s that the command need not wait: the reaper
        (:func:`end_with_this_process`) waits for it when this process has ended, and kills
        it after 5 s.
        """
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()


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


#: Longest wait of the warm-up thread for the flow's modules before it imports the rest.
_FLOW_IMPORT_WAIT_S = 120.0


def _warm_imports(torch: bool = True, flow_imported: threading.Event | None = None) -> None:
    for name in TORCH_MODULES if torch else ():
        importlib.import_module(name)
    from thresher.models.backends import import_openvino, openvino_available

    if openvino_available():
        import_openvino()  # with its telemetry blocked
    if flow_imported is not None and not flow_imported.wait(_FLOW_IMPORT_WAIT_S):
        return  # the flow's import hangs: leave the rest to the stages
    for name in WARM_MODULES:
        importlib.import_module(name)
    from thresher.caching import code_version
    from thresher.stages import STAGE_NAMES

    for stage in STAGE_NAMES:  # each stage's cache key hashes its code: read it now
        code_version(stage)


class ParallelStartup:
    """Start Prefect's API and the heavy imports in background threads.

    Args:
        torch: Also import PyTorch, torchvision and timm (:func:`needs_pytorch`); a callable
            is asked in the background thread.

    Example:
        >>> startup = ParallelStartup()  # doctest: +SKIP
        >>> ...  # the command's own checks
        >>> startup.wait()  # doctest: +SKIP
        >>> curate(...)  # doctest: +SKIP
    """

    def __init__(self, torch: bool | Callable[[], bool] = True) -> None:
        self._threads: list[threading.Thread] = []
        if os.environ.get(ENV, "1") == "0":
            return

        flow_imported = threading.Event()

        def start_api() -> None:
            _start_api(flow_imported)

        def warm() -> None:
            _warm_imports(torch() if callable(torch) else torch, flow_imported)

        targets: tuple[Callable[[], None], ...] = (start_api, warm)
        for target, name in zip(targets, ("start_api", "warm_imports"), strict=True):
            t = threading.Thread(target=self._guard, args=(target,), name=f"thresher-{name}")
            t.daemon = True
            t.start()
            self._threads.append(t)

    @staticmethod
    def _guard(target: Callable[[], None]) -> None:
        try:
            target()
        except Exception as e:  # the flow redoes it and reports a real problem itself
            log.debug("parallel start-up: %s failed: %s", getattr(target, "__name__", ""), e)

    def wait(self) -> None:
        """Block until both threads are done (the flow must not start before the API)."""
        for t in self._threads:
            t.join()


@contextlib.contextmanager
def no_heartbeats(own_api: bool) -> Iterator[None]:
    """Run a flow without Prefect's flow-run heartbeats when the API is this command's own.

    Heartbeats let a lasting Prefect server mark a flow run whose process died as crashed. The
    embedded API of ``thresher run`` (:class:`EarlyAPI`) ends with the command, so nothing
    could ever read them; yet the heartbeat thread sleeps in 1 s steps and the end of every
    run waited for it to wake (0.5 s on average, up to 1 s). With ``own_api`` False (the user's
    Prefect server, or Prefect's own ephemeral start) the settings are left as they are.

    Args:
        own_api: Whether the run reports to the command's own :class:`EarlyAPI`.
    """
    if not own_api:
        yield
        return
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


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


__all__ = [
    "ENV",
    "TORCH_MODULES",
    "WARM_MODULES",
    "EarlyAPI",
    "FastExit",
    "ParallelStartup",
    "needs_pytorch",
    "no_heartbeats",
]
