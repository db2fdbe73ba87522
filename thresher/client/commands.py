"""``thresher download``: a tag's files (and embeddings) from a server (parsing; lazy imports).

Example::

  THRESHER_TOKEN=... thresher download --dataset 646b40d6c06aae1b91294a9e --tag initial-tag out/

Exit codes: 0 every file was written, 1 some files failed (the summary names them), 2 nothing
could be downloaded (no such dataset or tag, a wrong token, no server).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

EXIT_SOME_FAILED = 1
EXIT_ERROR = 2


def add_commands(sub: Any) -> None:
    """Add ``download`` to the ``thresher`` parser's subparsers ``sub``."""
    d = sub.add_parser(
        "download",
        help="download a tag's files (byte-identical) from a thresher server",
        description=(
            "Write every file of a dataset's tag into DIR under its relative name, "
            "byte-identical to the original, several at once, with a progress bar. Names that "
            "would land outside DIR are refused. Exits 1 with a summary when any file failed."
        ),
    )
    d.add_argument("output_dir", metavar="DIR", help="where to write the files")
    d.add_argument("--dataset", metavar="ID", required=True, help="the dataset's id")
    d.add_argument(
        "--tag", metavar="NAME", default="initial-tag", help="the tag (default initial-tag)"
    )
    d.add_argument(
        "--embeddings",
        metavar="FILE",
        default=None,
        help="also download the dataset's latest embeddings CSV to FILE",
    )
    d.add_argument("--workers", type=int, default=8, help="files downloaded at once (default 8)")
    d.add_argument("--quiet", action="store_true", help="no count, no progress bar")
    d.add_argument(
        "--server",
        metavar="URL",
        default=None,
        help="server URL (default: THRESHER_SERVER_URL, else http://127.0.0.1:8360)",
    )
    d.add_argument(
        "--token", metavar="TOKEN", help="API token (default: THRESHER_TOKEN or LIGHTLY_TOKEN)"
    )
    d.set_defaults(func=cmd_download)


def _fail(message: str, code: int) -> int:
    print(f"thresher download: error: {message}", file=sys.stderr)
    return code


def cmd_download(args: argparse.Namespace) -> int:
    """Download the tag (and the embeddings); the exit code says what happened."""
    from thresher.client._download import DownloadError
    from thresher.client.api_workflow_client import ApiWorkflowClient
    from thresher.client.errors import ApiException, ServerUnreachableError

    if args.workers < 1:
        return _fail(f"--workers must be 1 or more, not {args.workers}.", EXIT_ERROR)
    try:
        client = ApiWorkflowClient(token=args.token, server_url=args.server)
        client.dataset_id = args.dataset
        client.download_dataset(
            args.output_dir, tag_name=args.tag, max_workers=args.workers, verbose=not args.quiet
        )
        if args.embeddings:
            client.download_embeddings_csv(args.embeddings)
    except DownloadError as e:
        return _fail(str(e), EXIT_SOME_FAILED)
    except (ValueError, RuntimeError, ApiException, ServerUnreachableError, OSError) as e:
        return _fail(str(e), EXIT_ERROR)
    if not args.quiet:
        print(f"Downloaded the tag {args.tag!r} to {args.output_dir}.")
    return 0
