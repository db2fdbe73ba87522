"""The run's own log (``log.txt``) and memory log (``memlog.txt``).

Both are collected locally while the run works and copied to the run's output folder at the end,
also when the run fails, so a failed run still explains itself.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from pathlib import Path

import psutil

from thresher.tempdirs import TempDir

LOGGER_NAME = "thresher"

# Anything that looks like a credential is masked before it reaches a log file.
_SECRET_PATTERNS = [
    re.compile(
        r"(?i)((?:sig|se|sv|sp|skoid|sktid|signature|x-amz-signature|x-amz-credential)=)[^&\s]+"
    ),
    re.compile(
        r"(?i)((?:accountkey|sharedaccesssignature|secret_access_key|secret|password|token"
        r"|access_key|private_key|credentials)\s*[=:]\s*['\"]?)[^'\"\s;,&]+"
    ),
]


def redact(text: str) -> str:
    """Mask credential-looking values (SAS signatures, keys, tokens) in ``text``."""
    for pat in _SECRET_PATTERNS:
        text = pat.sub(r"\1***", text)
    return text


class _RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class MemorySampler:
    """Samples the RSS of this process and its children in a background thread."""

    def __init__(self, interval_s: float = 0.5) -> None:
        self.interval_s = interval_s
        self.samples: list[tuple[float, float, float, str]] = []
        self.stage = "start"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="thresher-memlog", daemon=True)
        self._t0 = time.monotonic()
        self._proc = psutil.Process()

    def _sample(self) -> None:
        try:
            own = self._proc.memory_info().rss
            kids = 0
            for child in self._proc.children(recursive=True):
                try:
                    # USS: forked workers share the parent's pages; RSS would count them twice.
                    kids += child.memory_full_info().uss
                except psutil.Error:
                    continue
        except psutil.Error:
            return
        self.samples.append((time.monotonic() - self._t0, own / 2**20, kids / 2**20, self.stage))

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def start(self) -> MemorySampler:
        """Take a first sample and start sampling in the background."""
        self._sample()
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop sampling (after one last sample)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)
        self._sample()

    @property
    def peak_mb(self) -> float:
        """The highest total (own RSS plus children's USS) seen, in MB."""
        return max((own + kids for _, own, kids, _ in self.samples), default=0.0)

    def text(self) -> str:
        """memlog.txt's content: one tab-separated line per sample."""
        lines = ["# elapsed_s\trss_mb\tchildren_uss_mb\ttotal_mb\tstage"]
        for t, own, kids, stage in self.samples:
            lines.append(f"{t:.1f}\t{own:.1f}\t{kids:.1f}\t{own + kids:.1f}\t{stage}")
        lines.append(f"# peak_total_mb\t{self.peak_mb:.1f}")
        return "\n".join(lines) + "\n"


class RunLog:
    """Collects the run's log records (logger ``thresher`` and below) and memory samples."""

    def __init__(self) -> None:
        self._tmp = TempDir("run")
        self.dir = Path(self._tmp.name)
        self.log_path = self.dir / "log.txt"
        self.memlog_path = self.dir / "memlog.txt"
        self._handler = logging.FileHandler(self.log_path, encoding="utf-8")
        self._handler.setFormatter(
            _RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        )
        self.memory = MemorySampler()
        self._logger = logging.getLogger(LOGGER_NAME)
        self._old_level = self._logger.level

    def __enter__(self) -> RunLog:
        self._logger.addHandler(self._handler)
        if self._logger.level == logging.NOTSET or self._logger.level > logging.INFO:
            self._logger.setLevel(logging.INFO)
        self.memory.start()
        return self

    def stage(self, name: str) -> None:
        """Note that stage ``name`` starts (log line and memory samples)."""
        self.memory.stage = name
        self._logger.info("stage %s", name)

    def __exit__(self, *exc: object) -> None:
        """Close, and delete the temporary folder (the run has copied its logs by now)."""
        self.close()
        self._tmp.cleanup()

    def close(self) -> None:
        """Stop collecting and write memlog.txt (safe to call twice)."""
        if self._handler not in self._logger.handlers:
            return  # already closed
        self.memory.stop()
        self._logger.removeHandler(self._handler)
        self._logger.setLevel(self._old_level)
        self._handler.close()
        self.memlog_path.write_text(self.memory.text(), encoding="utf-8")
