"""``thresher worker start`` (argument parsing only; imports lazily)."""

from __future__ import annotations

import argparse
from typing import Any

_EPILOG = """\
Local datasources (set_local_config) resolve inside the mounts: INPUT inside --input-mount,
LIGHTLY inside --lightly-mount. Cloud credentials come from the server with each run.

examples:
  thresher worker start --worker-id gpu-1 --labels gpu --input-mount /data --lightly-mount /out
  THRESHER_SERVER_URL=http://server:8360 THRESHER_TOKEN=... thresher worker start --worker-id w1
  thresher worker start --worker-id w2 --cluster tcp://scheduler:8786   # embed on a Dask cluster
"""


def _labels(text: str) -> list[str]:
    return [label.strip() for label in text.split(",") if label.strip()]


def cmd_worker_start(args: argparse.Namespace) -> int:
    """``thresher worker start``: run a worker until stopped."""
    from thresher.worker.loop import WorkerOptions, start

    return start(
        WorkerOptions(
            name=args.worker_id,
            labels=args.labels,
            input_mount=args.input_mount,
            lightly_mount=args.lightly_mount,
            server=args.server,
            token=args.token,
            once=args.once,
            cluster=args.cluster,
        )
    )


def add_commands(sub: Any) -> None:
    """Add the worker's subcommands to the ``thresher`` parser's subparsers ``sub``."""
    w = sub.add_parser("worker", help="a worker that takes scheduled runs from a thresher server")
    wsub = w.add_subparsers(dest="worker_command", metavar="COMMAND", required=True)
    s = wsub.add_parser(
        "start",
        help="register and run scheduled runs until stopped",
        description="Register with the server (or re-use the worker of this name), heartbeat, "
        "take the scheduled runs whose runs_on labels this worker has (highest priority, then "
        "oldest, first) and run them as Prefect flow runs. SIGTERM or Ctrl-C stops it.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_argument("--worker-id", required=True, metavar="ID", help="the worker's name")
    s.add_argument(
        "--labels", type=_labels, default=[], metavar="A,B", help="labels, comma-separated"
    )
    s.add_argument("--input-mount", metavar="DIR", help="folder local INPUT datasources are in")
    s.add_argument("--lightly-mount", metavar="DIR", help="folder local LIGHTLY datasources are in")
    s.add_argument(
        "--server",
        metavar="URL",
        help="server URL (default: THRESHER_SERVER_URL, else http://127.0.0.1:8360)",
    )
    s.add_argument(
        "--token", metavar="TOKEN", help="API token (default: THRESHER_TOKEN or LIGHTLY_TOKEN)"
    )
    s.add_argument("--once", action="store_true", help="take one run, then exit")
    s.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help="embed every run's images in shards on the Dask cluster at ADDRESS, e.g. "
        "tcp://scheduler:8786 (the flow parameter cluster; docs/cluster.md)",
    )
    s.set_defaults(func=cmd_worker_start)
