"""``thresher server start`` and ``thresher user add`` (argument parsing only; imports lazily)."""

from __future__ import annotations

import argparse
from typing import Any

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8360


def add_commands(sub: Any) -> None:
    """Add the server's subcommands to the ``thresher`` parser's subparsers ``sub``."""
    server = sub.add_parser("server", help="the platform's API server")
    server_sub = server.add_subparsers(dest="server_command", metavar="COMMAND", required=True)
    start = server_sub.add_parser(
        "start",
        help="start the API server (SQLite under $THRESHER_HOME unless --database is given)",
        description=(
            "Serve Lightly's /v1 API and the worker routes. State lives under $THRESHER_HOME "
            "(default ~/.thresher): thresher.db (SQLite) and secret.key. Migrations run at "
            "start, so an upgrade keeps the data. Unless PREFECT_API_URL is set (or "
            "THRESHER_PREFECT_SERVER=off), it starts a Prefect server of its own (SQLite under "
            "$THRESHER_HOME/prefect, port THRESHER_PREFECT_PORT or 4200) so that runs show in the "
            "Prefect UI, and stops it when it stops. In that Prefect API it registers the "
            "deployment curate/platform (work pool thresher-platform) the runs are flow runs of."
        ),
    )
    start.add_argument("--host", default=DEFAULT_HOST, help=f"address (default {DEFAULT_HOST})")
    start.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})"
    )
    start.add_argument(
        "--database",
        metavar="URL",
        default=None,
        help="SQLAlchemy URL, e.g. postgresql://user:pw@host/db (default: SQLite under "
        "$THRESHER_HOME; also THRESHER_DATABASE_URL)",
    )
    start.set_defaults(func=cmd_server_start)

    user = sub.add_parser("user", help="manage platform users")
    user_sub = user.add_subparsers(dest="user_command", metavar="COMMAND", required=True)
    add = user_sub.add_parser(
        "add",
        help="create a user and print its API token",
        description="Create a user and print its API token (stored hashed: shown only now).",
    )
    add.add_argument("email", metavar="EMAIL")
    add.add_argument(
        "--token",
        default=None,
        help="keep this token (e.g. the one a team's scripts already use); default: random",
    )
    add.add_argument("--database", metavar="URL", default=None, help="as for thresher server start")
    add.set_defaults(func=cmd_user_add)
    tok = user_sub.add_parser(
        "token",
        help="give a user a new API token (after one expired)",
        description="Give an existing user a new API token and print it; its other tokens keep "
        "working until they expire (THRESHER_TOKEN_DAYS, default 365).",
    )
    tok.add_argument("email", metavar="EMAIL")
    tok.add_argument("--token", default=None, help="use this token; default: random")
    tok.add_argument("--database", metavar="URL", default=None, help="as for thresher server start")
    tok.set_defaults(func=cmd_user_add)


def cmd_server_start(args: argparse.Namespace) -> int:
    """Run the server until Ctrl-C."""
    import logging
    import os

    import uvicorn

    from thresher.platform.core import Platform
    from thresher.platform.settings import Settings
    from thresher.server import prefect_server
    from thresher.server.app import create_app
    from thresher.server.logs import uvicorn_log_config

    settings = Settings.from_env(database_url=args.database)
    prefect = None
    if prefect_server.wanted():
        if not logging.getLogger().handlers:
            logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
        logging.getLogger("thresher").setLevel(logging.INFO)
        prefect = prefect_server.PrefectServer(settings.home / "prefect", args.host)
        # The workers get this URL with each claimed run (ClaimedRun.prefect_api_url).
        os.environ["PREFECT_API_URL"] = prefect.start()
    if os.environ.get("PREFECT_API_URL"):
        from thresher.server import prefect_deployment

        # Workers make each run a flow run of this deployment (curate/platform). Failing to
        # register is no reason to stop: the workers then run the flow without it.
        prefect_deployment.register_or_warn()
    try:
        platform = Platform(settings)
        platform.migrate()  # before serving: a failing migration stops the start with its error
        app = create_app(platform=platform, migrate=False)
        uvicorn.run(app, host=args.host, port=args.port, log_config=uvicorn_log_config())
    finally:
        if prefect is not None:
            prefect.stop()
    return 0


def cmd_user_add(args: argparse.Namespace) -> int:
    """Create a user, or give one a new token; print the token on stdout (nothing else)."""
    import sys

    from thresher.platform import users
    from thresher.platform.core import Platform
    from thresher.platform.settings import Settings

    platform = Platform(Settings.from_env(database_url=args.database))
    try:
        platform.migrate()
        if args.user_command == "token":
            user, token = users.new_token(platform, args.email, args.token)
            done = "new API token for"
        else:
            user, token = users.add_user(platform, args.email, args.token)
            done = "created user"
    finally:
        platform.close()
    days = platform.settings.token_days
    lasts = f"valid {days:g} days" if days > 0 else "never expires"
    print(f"{done} {user.email} (id {user.id}); API token ({lasts}):", file=sys.stderr)
    print(token)
    return 0
