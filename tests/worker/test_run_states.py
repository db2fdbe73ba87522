"""The flow's log lines become run states and messages; the end messages are one paragraph."""

import io
import json
import logging

from thresher.errors import InputError
from thresher.worker.commands import add_commands
from thresher.worker.run_one import StateHandler, _Events, one_paragraph, summary


def _handler():
    stream = io.StringIO()
    return StateHandler(_Events(stream)), stream


def test_stage_lines_become_states_and_human_lines_messages():
    handler, stream = _handler()
    log = logging.getLogger("thresher.test_run_states")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        log.info("stage %s", "corruption_check")
        log.info("checked %d files: %d corrupt", 68, 4)
        log.warning("corrupt: a.png: truncated")  # one per file: not sent
        log.info("stage %s", "embed")
        log.info("embed: %d img in %.1f s (%.1f img/s)", 60, 2.0, 30.0)
        log.info("stage %s", "report")
    finally:
        log.removeHandler(handler)
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(e["state"], e["message"].split(":")[0]) for e in events] == [
        ("CHECKING_CORRUPTNESS", "corruption_check"),
        ("CHECKING_CORRUPTNESS", "checked 68 files"),
        ("EMBEDDING", "embed"),
        ("EMBEDDING", "embed"),
        ("GENERATING_REPORT", "report"),
    ]
    assert events[3]["message"] == "embed: 60 img in 2.0 s (30.0 img/s)"


def test_messages_are_redacted():
    handler, stream = _handler()
    record = logging.LogRecord("thresher.x", logging.INFO, "", 0, "url %s", ("a?sig=XYZ",), None)
    handler.emit(record)
    assert "XYZ" not in stream.getvalue()


def test_end_messages():
    sizes = {"n_input": 68, "n_corrupt": 4, "n_duplicate": 4, "n_removed": 55, "n_selected": 5}
    assert summary(sizes, "r.pdf").startswith("selected 5 of 68 files (4 corrupt, 4 duplicates")
    assert one_paragraph(InputError("INPUT is empty: put images there")) == (
        "INPUT is empty: put images there"
    )
    assert one_paragraph(RuntimeError("boom\nstack")) == "RuntimeError: boom"


def test_worker_start_parses_its_options():
    import argparse

    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        ["worker", "start", "--worker-id", "w1", "--labels", "gpu, big", "--once"]
    )
    assert (args.worker_id, args.labels, args.once, args.input_mount) == (
        "w1",
        ["gpu", "big"],
        True,
        None,
    )
