"""The ``thresher`` command.

    thresher run INPUT [--lightly DIR_OR_URL] [--n-samples N | --proportion-samples P]
                 [--config FILE] [--worker-config JSON] [--selection-config JSON]
                 [--lightly-config JSON] [--dataset-type images|videos]
    thresher example DIR      # write a small example dataset with planted defects

``run`` works in this process on Prefect's embedded (ephemeral) API: no server to start.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
from typing import Any

from thresher.errors import ThresherError


def _json_arg(flag: str, text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise ThresherError(f"{flag}: not valid JSON ({e.msg} at position {e.pos}).") from None
    if not isinstance(value, dict):
        raise ThresherError(f"{flag}: must be a JSON object, e.g. '{{\"n_samples\": 50}}'.")
    return value


def _merge(base: dict[str, Any] | None, extra: dict[str, Any] | None) -> dict[str, Any] | None:
    """Deep-merge ``extra`` over ``base`` (flags override the config file)."""
    if base is None:
        return extra
    if extra is None:
        return base
    out = dict(base)
    for k, v in extra.items():
        out[k] = (
            _merge(out.get(k), v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
        )
    return out


def _configs(args: argparse.Namespace) -> dict[str, Any]:
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
    cfg = load_configs(
        worker, selection, lightly
    )  # validate here: clear errors before Prefect starts
    return {
        "worker_config": cfg.worker,
        "selection_config": cfg.selection,
        "lightly_config": cfg.lightly,
    }


def _summary(result: Any) -> str:
    s = result.sizes
    rows = [
        ("input", s["n_input"]),
        ("filtered (relevant filenames)", s["n_filtered"]),
        ("corrupt", s["n_corrupt"]),
        ("duplicate", s["n_duplicate"]),
        ("removed (not selected)", s["n_removed"]),
        ("selected", s["n_selected"]),
    ]
    width = max(len(r[0]) for r in rows)
    lines = [f"\nthresher run {result.run_id} finished"]
    lines += [f"  {name:<{width}}  {count:>8}" for name, count in rows]
    lines += [
        f"  outputs: {result.run_dir}",
        f"  report:  {result.report_pdf}",
        f"  tags:    {', '.join(result.tags)}",
        f"  peak memory: {result.peak_memory_mb:.0f} MB",
    ]
    return "\n".join(lines)


def _quiet_console() -> None:
    """Keep thresher's INFO lines out of the terminal (they still reach log.txt and the Prefect
    API): the terminal shows progress bars, warnings and the summary."""
    import logging

    from prefect.logging.handlers import PrefectConsoleHandler

    for name in ("thresher", ""):  # Prefect puts its console handler on the root logger
        for handler in logging.getLogger(name).handlers:
            if isinstance(handler, PrefectConsoleHandler):
                handler.setLevel(logging.WARNING)


def cmd_run(args: argparse.Namespace) -> int:
    # Quiet by default: the terminal shows progress bars, thresher's warnings and, on failure,
    # one paragraph (not Prefect's traceback of a ThresherError). log.txt keeps the full log.
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "DEBUG" if args.verbose else "CRITICAL")
    configs = _configs(args)
    input_url = args.input
    if "://" not in input_url:
        input_url = os.path.abspath(input_url)
        if not os.path.isdir(input_url):
            raise ThresherError(
                f"INPUT {args.input} is not a folder. Pass a folder of images "
                "or a bucket URL such as s3://bucket/images."
            )
    lightly = args.lightly
    if lightly and "://" not in lightly:
        lightly = os.path.abspath(lightly)
    print(f"thresher: curating {args.input} (starting Prefect's embedded API)...", file=sys.stderr)
    from thresher.flows import curate

    if not args.verbose:
        _quiet_console()
    result = curate(input=input_url, lightly=lightly, dataset_type=args.dataset_type, **configs)
    print(_summary(result))
    return 0


def cmd_example(args: argparse.Namespace) -> int:
    from thresher.examples import make_example_dataset

    ds = make_example_dataset(args.dir, n_clusters=args.clusters, per_cluster=args.per_cluster)
    print(
        f"wrote {len(ds.all_files)} files to {args.dir}: {ds.n_clusters} clusters, "
        f"{len(ds.duplicates)} exact duplicates, {len(ds.corrupt)} corrupt files"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="thresher", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="curate a folder or bucket of images")
    r.add_argument("input", help="INPUT folder or fsspec URL (s3://, gs://, az://, memory://)")
    r.add_argument("--lightly", help="LIGHTLY folder or URL for outputs (default: <INPUT>-lightly)")
    size = r.add_mutually_exclusive_group()
    size.add_argument("--n-samples", type=int, help="how many samples to select")
    size.add_argument("--proportion-samples", type=float, help="fraction of samples to select")
    r.add_argument(
        "--config", help="YAML/JSON file with worker_config, selection_config, lightly_config"
    )
    r.add_argument("--worker-config", help="worker_config as JSON")
    r.add_argument("--selection-config", help="selection_config as JSON")
    r.add_argument("--lightly-config", help="lightly_config as JSON")
    r.add_argument("--dataset-type", choices=["images", "videos"], default="images")
    r.add_argument("-v", "--verbose", action="store_true", help="show Prefect's own logs")
    r.set_defaults(func=cmd_run)
    e = sub.add_parser("example", help="write a small example dataset with planted defects")
    e.add_argument("dir")
    e.add_argument("--clusters", type=int, default=5)
    e.add_argument("--per-cluster", type=int, default=12)
    e.set_defaults(func=cmd_example)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ThresherError as e:
        msg = str(e)
        print(
            "\n".join(
                ["thresher: error:", *(textwrap.fill(line, 100) for line in msg.splitlines())]
            ),
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print(
            "thresher: interrupted; finished stages are cached and a re-run resumes.",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
