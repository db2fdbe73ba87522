"""The ``thresher`` command: curate a folder or bucket of images from the terminal.

``thresher run`` checks paths and configs first, in about a second and before Prefect starts,
so a mistake is reported at once as one paragraph (exit code 2). Then it runs the curate flow
in this process on Prefect's embedded API (no server to start), shows progress bars and prints
a summary. Ctrl-C stops it within seconds (exit code 130); re-running the same command resumes.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys
import textwrap
import time
from typing import Any

import thresher
from thresher.errors import ThresherError

EXIT_USER_ERROR = 2

_EPILOG = """\
examples (thresher COMMAND --help shows each command's options and more examples):
  thresher example ./example                     # 68 files: 5 clusters, duplicates, corrupt files
  thresher run ./example --n-samples 10          # results in ./example-lightly/.lightly/runs/
  thresher run s3://bucket/images --lightly s3://bucket/lightly --proportion-samples 0.1

exit codes: 0 done, 2 a problem with the input, the output location or a config (the message
says which and how to fix it), 130 interrupted (re-run the same command to resume).
"""

_RUN_DESCRIPTION = """\
Curate the images at INPUT: remove corrupt files and exact duplicates, embed the rest, select
the samples most worth labeling and write a PDF/JSON report. Outputs go to the LIGHTLY
location, <INPUT>-lightly by default; INPUT is only ever read. Unchanged stages are reused
from the cache, so re-running a command (also after Ctrl-C or a failure) resumes it."""

_RUN_EPILOG = """\
examples:
  thresher run ./images --n-samples 100
  thresher run ./images --proportion-samples 0.1 --lightly ./curation
  thresher run ./images --config my_config.yaml --n-samples 50     # the flag wins over the file
  thresher run ./images --worker-config '{"remove_exact_duplicates": false}' \\
      --selection-config '{"n_samples": 20, "strategies": [{"input": {"type": "EMBEDDINGS"},
      "strategy": {"type": "DIVERSITY"}}]}'
  thresher run s3://bucket/images --lightly s3://bucket/lightly --n-samples 1000
  thresher run s3://bucket/images --lightly s3://bucket/lightly --n-samples 1000 \\
      --cluster tcp://scheduler:8786                    # embed on a Dask cluster

The size comes from --n-samples, --proportion-samples or the config's selection_config (one
of them is needed). Config keys are the Lightly Worker's (README.md, docs/selection.md).
selected.txt lists the picks most wanted first. THRESHER_PROGRESS=0 hides the progress bars.
"""

_EXAMPLE_DESCRIPTION = """\
Write a small image dataset with planted defects to DIR: clusters of similar synthetic images,
a few exact duplicates and a few corrupt files (empty, truncated, not an image, a decompression
bomb). Curating it shows every stage at work in about a minute."""

_EXAMPLE_EPILOG = """\
examples:
  thresher example ./example && thresher run ./example --n-samples 10
  thresher example /tmp/big --clusters 10 --per-cluster 100     # about 1,000 images
"""


_JSON_EXAMPLES = {
    "--worker-config": '{"remove_exact_duplicates": false}',
    "--selection-config": '{"n_samples": 50}',
    "--lightly-config": '{"seed": 1}',
}


def _json_arg(flag: str, text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise ThresherError(
            f"{flag}: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno}). Quote the "
            f"whole object for the shell, e.g. {flag} '{_JSON_EXAMPLES[flag]}'."
        ) from e
    if not isinstance(value, dict):
        raise ThresherError(f"{flag}: must be a JSON object, e.g. {flag} '{_JSON_EXAMPLES[flag]}'.")
    return value


def _merge(base: dict[str, Any] | None, extra: dict[str, Any] | None) -> dict[str, Any] | None:
    """Deep-merge ``extra`` over ``base`` (flags override the config file)."""
    if base is None:
        return extra
    if extra is None:
        return base
    out = dict(base)
    for k, v in extra.items():
        old = out.get(k)
        out[k] = _merge(old, v) if isinstance(v, dict) and isinstance(old, dict) else v
    return out


def _configs(args: argparse.Namespace) -> dict[str, Any]:
    """Read, merge and validate the three configs (before Prefect starts: errors come fast)."""
    from thresher.config import load_config_file, load_configs

    file_cfg = load_config_file(args.config) if args.config else {}
    worker = _merge(file_cfg.get("worker_config"), _json_arg("--worker-config", args.worker_config))
    selection = _merge(
        file_cfg.get("selection_config"), _json_arg("--selection-config", args.selection_config)
    )
    if args.n_samples is not None or args.proportion_samples is not None:
        selection = dict(selection or {})
        selection.pop("n_samples", None)
        selection.pop("proportion_samples", None)
        if args.n_samples is not None:
            selection["n_samples"] = args.n_samples
        else:
            selection["proportion_samples"] = args.proportion_samples
    lightly = _merge(
        file_cfg.get("lightly_config"), _json_arg("--lightly-config", args.lightly_config)
    )
    cfg = load_configs(worker, selection, lightly)
    return {
        "worker_config": cfg.worker,
        "selection_config": cfg.selection,
        "lightly_config": cfg.lightly,
    }


def _location(text: str) -> str:
    """A URL stays as it is; a local path becomes absolute."""
    return text if "://" in text else os.path.abspath(os.path.expanduser(text))


def _summary(result: Any) -> str:
    s = result.sizes
    rows = [
        ("input", s["n_input"]),
        ("filtered (relevant filenames)", s.get("n_filtered", 0)),
        ("corrupt", s["n_corrupt"]),
        ("duplicate", s["n_duplicate"]),
        ("removed (not selected)", s["n_removed"]),
        ("selected", s["n_selected"]),
    ]
    width = max(len(r[0]) for r in rows)
    lines = [f"\nthresher run {result.run_id} finished"]
    lines += [f"  {name:<{width}}  {count:>8}" for name, count in rows]
    v: dict[str, int] | None = getattr(result, "video_sizes", None)
    if v:  # a video run: the rows above count frames
        lines.append(
            f"  the counts above are frames of {v['nInput']} videos ({v['nCorrupt']} corrupt, "
            f"{v['nFiltered']} filtered out); the {v['nSelectedFrames']} selected frames, "
            f"from {v['nVideosWithSelectedFrames']} videos, are in .lightly/frames/"
        )
    cached: dict[str, str] = getattr(result, "cached", None) or {}
    if cached:
        lines.append(
            "  from cache: " + "; ".join(f"{stage} ({what})" for stage, what in cached.items())
        )
    lines += [
        f"  outputs: {result.run_dir}",
        f"  report:  {result.report_pdf}",
        f"  tags:    {', '.join(result.tags)}",
        f"  peak memory: {result.peak_memory_mb:.0f} MB",
    ]
    for note in getattr(result, "notes", None) or []:
        lines.append(textwrap.fill(note, 100, initial_indent="  note: ", subsequent_indent="    "))
    return "\n".join(lines)


class _NoTraceback(logging.Formatter):
    """Formats a record for the terminal without its traceback (log.txt keeps it)."""

    def __init__(self, inner: logging.Formatter | None) -> None:
        super().__init__()
        self._inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        plain = logging.makeLogRecord(record.__dict__)
        plain.exc_info = None
        plain.exc_text = None
        plain.stack_info = None
        return self._inner.format(plain)


def _is_reported_by_cli(record: logging.LogRecord) -> bool:
    """Records about an error that the CLI itself reports in one line or one paragraph."""
    exc = record.exc_info[1] if record.exc_info else None
    return isinstance(exc, ThresherError | KeyboardInterrupt)


def _quiet_console() -> None:
    """Keep the terminal to progress bars, warnings, the summary and one-paragraph errors.

    thresher's INFO lines and every traceback still reach log.txt (and the Prefect API).
    """
    from prefect.logging.handlers import PrefectConsoleHandler

    for name in ("thresher", "prefect", ""):  # Prefect puts its console handler on the root too
        for handler in logging.getLogger(name).handlers:
            if isinstance(handler, PrefectConsoleHandler) and not isinstance(
                handler.formatter, _NoTraceback
            ):
                handler.setLevel(max(handler.level, logging.WARNING))
                handler.addFilter(lambda r: not _is_reported_by_cli(r))
                handler.setFormatter(_NoTraceback(handler.formatter))


def cmd_run(args: argparse.Namespace) -> int:
    """``thresher run``: check everything cheap first, then run the curate flow."""
    # Quiet by default: the terminal shows progress bars, thresher's warnings and, on failure,
    # one paragraph (not Prefect's traceback of a ThresherError). log.txt keeps the full log.
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "DEBUG" if args.verbose else "CRITICAL")
    os.environ["THRESHER_STARTED_AT"] = repr(args.started_at)
    os.environ["THRESHER_COMMAND_LINE"] = args.command_line
    from thresher.cli_startup import EarlyAPI, ParallelStartup, needs_pytorch, no_heartbeats

    # Prefect's API server first, before Prefect is imported here (only when the process is
    # this command's: it sets PREFECT_API_URL for the process). Its start (3 s, mostly
    # imports) runs beside the checks and the imports; a failed check stops it at exit.
    api = EarlyAPI() if getattr(args, "own_process", False) else None
    from thresher.cli_interrupt import InterruptGuard
    from thresher.config import RunConfig
    from thresher.stages._user_files import check_user_files
    from thresher.stages.list_input import default_lightly_url, preflight

    configs = _configs(args)
    input_url = _location(args.input)
    lightly_url = _location(args.lightly) if args.lightly else default_lightly_url(input_url)

    # a second, writes nothing; Prefect takes ~10 s to start
    preflight(input_url, lightly_url, args.dataset_type)
    run_cfg = RunConfig(
        configs["worker_config"], configs["selection_config"], configs["lightly_config"]
    )
    if args.dataset_type == "videos":
        from thresher.stages.list_input import refuse_for_videos

        refuse_for_videos(run_cfg.worker, run_cfg.selection)
    else:  # a video run's names are frames, known after decoding: its stages check them
        check_user_files(run_cfg, input_url, lightly_url)  # reads the user's files only
    if run_cfg.worker.checkpoint or run_cfg.worker.checkpoint_run_id:
        from thresher.stages.train import resolve_checkpoint

        resolve_checkpoint(run_cfg.worker, lightly_url)  # the checkpoint is there and readable
    if args.cluster:
        from thresher.cluster import check_scheduler

        check_scheduler(args.cluster)  # a wrong address fails now, not after Prefect starts
    local_lightly = None if "://" in lightly_url else lightly_url
    with InterruptGuard(local_lightly, args.started_at):
        print(
            f"thresher: curating {args.input} (starting Prefect's embedded API)...", file=sys.stderr
        )
        # The imports beside the API's start, PyTorch's only if the run needs it.
        startup = ParallelStartup(torch=lambda: needs_pytorch(run_cfg, args.dataset_type))
        from thresher.reports import umap_2d

        try:
            # The report's UMAP worker imports umap-learn while the cores wait for the API.
            umap_2d.prestart(run_cfg.worker.report_umap_neighbors)
            startup.wait()
            if api is not None:
                api.wait()
            from thresher.flows import curate

            if not args.verbose:
                _quiet_console()
            with no_heartbeats(api is not None and api.url is not None):
                result = curate(
                    input=input_url,
                    lightly=lightly_url,
                    dataset_type=args.dataset_type,
                    cluster=args.cluster,
                    **configs,
                )
        finally:
            umap_2d.discard_prestarted()  # the flow's report took it, or the run never got there
    print(_summary(result))
    return 0


def cmd_example(args: argparse.Namespace) -> int:
    """``thresher example``: write the example dataset."""
    from thresher.examples import make_example_dataset

    ds = make_example_dataset(args.dir, n_clusters=args.clusters, per_cluster=args.per_cluster)
    print(
        f"wrote {len(ds.all_files)} files to {args.dir}: {ds.n_clusters} clusters, "
        f"{len(ds.duplicates)} exact duplicates, {len(ds.corrupt)} corrupt files\n"
        f"next: thresher run {shlex.quote(args.dir)} --n-samples 10"
    )
    return 0


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``thresher`` command (``thresher --help`` shows it)."""
    fmt = argparse.RawDescriptionHelpFormatter
    p = argparse.ArgumentParser(
        prog="thresher",
        description=(
            "Self-hosted data curation: remove corrupt files and duplicates from a folder or\n"
            "bucket of images, pick the samples most worth labeling, and write a report."
        ),
        epilog=_EPILOG,
        formatter_class=fmt,
    )
    p.add_argument("--version", action="version", version=f"thresher {thresher.__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", title="commands")

    r = sub.add_parser(
        "run",
        help="curate a folder or bucket of images",
        description=_RUN_DESCRIPTION,
        epilog=_RUN_EPILOG,
        formatter_class=fmt,
    )
    r.add_argument(
        "input",
        metavar="INPUT",
        help="folder or fsspec URL of the images (s3://, gs://, az://, memory://); only read",
    )
    r.add_argument(
        "--lightly",
        metavar="DIR_OR_URL",
        help="where outputs go, outside INPUT (default: <INPUT>-lightly beside it)",
    )
    size = r.add_mutually_exclusive_group()
    size.add_argument(
        "--n-samples",
        type=int,
        metavar="N",
        help="how many images to select: 1 or more, or -1 to select until every stopping "
        "condition is met (all usable images when there is none)",
    )
    size.add_argument(
        "--proportion-samples",
        type=float,
        metavar="P",
        help="fraction of the usable images to select, in (0, 1]",
    )
    r.add_argument(
        "--config",
        metavar="FILE",
        help="YAML or JSON file with worker_config, selection_config, lightly_config",
    )
    r.add_argument(
        "--worker-config", metavar="JSON", help="worker_config as JSON; overrides --config"
    )
    r.add_argument(
        "--selection-config", metavar="JSON", help="selection_config as JSON; overrides --config"
    )
    r.add_argument(
        "--lightly-config", metavar="JSON", help="lightly_config as JSON; overrides --config"
    )
    r.add_argument(
        "--dataset-type",
        choices=["images", "videos"],
        default="images",
        help="images (the default), or videos (mp4, m4v, hevc, mpg, mpeg, avi, mov, webm): "
        "every frame is a sample named <video>-<frame>-<ext>.png, as Lightly names them",
    )
    r.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help="embed in shards on the Dask cluster whose scheduler is at ADDRESS, e.g. "
        "tcp://scheduler:8786; its workers need thresher installed and access to INPUT and "
        "LIGHTLY (docs/cluster.md). Default: embed in this process",
    )
    r.add_argument(
        "-v", "--verbose", action="store_true", help="show Prefect's own logs on the terminal"
    )
    r.set_defaults(func=cmd_run)

    e = sub.add_parser(
        "example",
        help="write a small example dataset with planted defects",
        description=_EXAMPLE_DESCRIPTION,
        epilog=_EXAMPLE_EPILOG,
        formatter_class=fmt,
    )
    e.add_argument("dir", metavar="DIR", help="folder to write (created if missing)")
    e.add_argument(
        "--clusters", type=_positive_int, default=5, help="groups of similar images (default 5)"
    )
    e.add_argument(
        "--per-cluster", type=_positive_int, default=12, help="images per group (default 12)"
    )
    e.set_defaults(func=cmd_example)

    # The platform's commands; their modules import nothing heavy until a command runs.
    from thresher.client.commands import add_commands as add_client_commands
    from thresher.server.commands import add_commands as add_server_commands
    from thresher.worker.commands import add_commands as add_worker_commands

    add_server_commands(sub)  # thresher server start, thresher user add
    add_worker_commands(sub)  # thresher worker start
    add_client_commands(sub)  # thresher download
    return p


def _print_error(message: str) -> None:
    lines = ["thresher: error:"]
    for line in message.splitlines():
        # Paths and URLs stay whole, so they can be copied from the terminal.
        wrapped = textwrap.fill(line, 100, break_long_words=False, break_on_hyphens=False)
        lines.append(wrapped if line.strip() else "")
    print("\n".join(lines), file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run the ``thresher`` command.

    Args:
        argv: The arguments after ``thresher``; default ``sys.argv[1:]``.

    Returns:
        The exit code: 0 done, 2 a user error (one paragraph on stderr), 130 interrupted.
    """
    started_at = time.time()  # the report's timing counts Prefect's start-up from here
    from_command_line = argv is None
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USER_ERROR
    if from_command_line and args.command == "run":  # not when a test calls main([...])
        from thresher.cli_startup import FastExit

        fast_exit = FastExit()
        args.own_process = True  # the process ends with the command
        code = _run_command(args, argv, started_at)
        fast_exit.code = code
        return code
    return _run_command(args, argv, started_at)


def _run_command(args: argparse.Namespace, argv: list[str], started_at: float) -> int:
    args.started_at = started_at
    args.command_line = shlex.join(["thresher", *argv])
    from thresher import cli_interrupt

    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        cli_interrupt.announce()  # prints once: the guard may have printed already
        return cli_interrupt.EXIT_CODE
    except ThresherError as e:
        if cli_interrupt.interrupted():  # an error while unwinding is the interrupt's
            return cli_interrupt.EXIT_CODE
        _print_error(str(e))
        return EXIT_USER_ERROR
    except Exception:
        if cli_interrupt.interrupted():  # e.g. Prefect failing to report the crash
            return cli_interrupt.EXIT_CODE
        raise


if __name__ == "__main__":
    sys.exit(main())
