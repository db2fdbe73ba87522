"""Run ``thresher`` and SIGKILL it at a chosen point: a fault injector for the kill tests.

``python kill_points.py run INPUT --lightly LIGHTLY ...`` is ``thresher run ...``, plus an audit
hook (:func:`sys.addaudithook`, nothing of thresher is replaced) that numbers what the run
does, in the thresher process itself (not its decode workers):

- ``stage``: a stage starts (its ``stage <name>`` log line);
- ``read``: a file under INPUT is opened for reading (the corruption check reads every file);
- ``write``: a file under LIGHTLY is opened for writing (the temporary name, before any byte);
- ``commit``: a file is moved into place under LIGHTLY (the temporary file is complete);
- ``remove``: a file under LIGHTLY is deleted (the embed stage drops its joined shards).

Environment:

- ``KILL_RECORD``: a file that gets one line per event, ``<n> <kind> <stage> <path>``.
- ``KILL_AT``: where to kill: ``<n>`` (the n-th event), ``<kind>:<n>``, ``<stage>/<n>`` or
  ``<stage>/<kind>:<n>`` (counted from that stage's start); unset: never (a reference run).
- ``KILL_DELAY``: seconds between reaching the point and the kill (default 0: at once, inside
  the hook, so a ``commit`` kill always lands between the write and the move).
- ``KILL_SCOPE``: ``group`` (default: the process group, as a machine losing power or a
  container's stop does) or ``process`` (the thresher process only, as the OOM killer does).
"""

from __future__ import annotations

import logging
import os
import runpy
import signal
import sys
import threading
from typing import Any

_FLAGS_WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


class _KillPoints:
    def __init__(self, input_dir: str, lightly_dir: str) -> None:
        self.input = os.path.realpath(input_dir) + os.sep
        self.lightly = os.path.realpath(lightly_dir) + os.sep
        self.pid = os.getpid()
        self.lock = threading.Lock()
        self.n = 0
        self.stage = "-"
        self.counts: dict[str, int] = {}
        record = os.environ.get("KILL_RECORD")
        self.fd = os.open(record, os.O_WRONLY | os.O_CREAT | os.O_APPEND) if record else -1
        self.target = self._parse(os.environ.get("KILL_AT", ""))
        self.delay = float(os.environ.get("KILL_DELAY", "0") or 0)
        self.scope = os.environ.get("KILL_SCOPE", "group")
        self.fired = False

    @staticmethod
    def _parse(spec: str) -> tuple[str, str, int] | None:
        if not spec:
            return None
        stage, _, rest = spec.rpartition("/")
        kind, _, n = rest.rpartition(":")
        return stage, kind, int(n)

    def event(self, kind: str, path: str) -> None:
        with self.lock:
            if os.getpid() != self.pid:
                return  # a forked decode worker: only the thresher process is counted
            self.n += 1
            # Counted per stage and kind, per stage, per kind and in all.
            for key in (f"{self.stage}/{kind}", f"{self.stage}/", f"/{kind}", "/"):
                self.counts[key] = self.counts.get(key, 0) + 1
            if self.fd >= 0:
                os.write(self.fd, f"{self.n} {kind} {self.stage} {path}\n".encode())
            if self.target is None or self.fired:
                return
            stage, want, n = self.target
            if (stage and stage != self.stage) or (want and want != kind):
                return
            if self.counts[f"{stage}/{want}"] != n:
                return
            self.fired = True
        if self.fd >= 0:
            os.write(self.fd, f"KILL {self.n} {kind} {self.stage} {path}\n".encode())
        if self.delay > 0:
            threading.Timer(self.delay, self.kill).start()
        else:
            self.kill()

    def kill(self) -> None:
        if self.scope == "process":
            os.kill(os.getpid(), signal.SIGKILL)
        os.killpg(os.getpgid(0), signal.SIGKILL)

    def audit(self, name: str, args: tuple[Any, ...]) -> None:
        if name == "open":
            path, mode, flags = args
            if not isinstance(path, str | bytes | os.PathLike):
                return
            p = os.fsdecode(path)
            writing = (
                any(c in mode for c in "wax+") if isinstance(mode, str) else flags & _FLAGS_WRITE
            )
            if writing and p.startswith(self.lightly):
                self.event("write", p)
            elif not writing and p.startswith(self.input):
                self.event("read", p)
        elif name in ("os.rename", "os.replace"):
            dst = os.fsdecode(args[1])
            if dst.startswith(self.lightly):
                self.event("commit", dst)
        elif name == "os.remove":
            p = os.fsdecode(args[0])
            if p.startswith(self.lightly):
                self.event("remove", p)


class _StageHandler(logging.Handler):
    def __init__(self, points: _KillPoints) -> None:
        super().__init__(logging.INFO)
        self.points = points

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg == "stage %s" and record.args:
            name = str(record.args[0])  # type: ignore[index]
            with self.points.lock:
                self.points.stage = name
            self.points.event("stage", name)


def main() -> None:
    """Install the hook, then run ``thresher`` with this script's arguments."""
    argv = sys.argv[1:]
    points = _KillPoints(argv[1], argv[argv.index("--lightly") + 1])
    logging.getLogger("thresher").addHandler(_StageHandler(points))
    sys.addaudithook(points.audit)
    sys.argv = ["thresher", *argv]
    runpy.run_module("thresher", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
