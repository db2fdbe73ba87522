"""``relevant_filenames_file``: which input files a run considers.

Semantics (reference 3.3, the Lightly Worker's):

- One entry per line, relative to the INPUT root. Blank lines are skipped. ``./`` and ``../``
  are refused.
- A line without ``*`` names one file exactly.
- A line with ``*``: everything before the first ``*`` is a **prefix**. The first
  whitespace-separated token selects every file under that prefix that matches it as a glob.
  The tokens after it are **gitignore patterns** evaluated in order, last match wins: a pattern
  drops the files it matches, ``!pattern`` re-includes them.
  Example: ``subdir/* subdir/image_4* !subdir/image_41.png`` keeps every file in ``subdir/``
  except ``image_4*``, but keeps ``image_41.png``.

Glob syntax as in gitignore: ``*`` matches within one path segment, ``**`` across segments,
``?`` one character, ``[abc]`` a class. A pattern without ``/`` matches the file's base name at
any depth.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from thresher.errors import ConfigError


@lru_cache(maxsize=1024)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    anchored = "/" in pattern.rstrip("/")
    pat = pattern.lstrip("/")
    i, out = 0, []
    while i < len(pat):
        c = pat[i]
        if pat.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pat.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            j = pat.find("]", i + 1)
            if j == -1:
                out.append(re.escape(c))
                i += 1
            else:
                cls = pat[i + 1 : j].replace("\\", "\\\\")
                if cls.startswith("!"):
                    cls = "^" + cls[1:]
                out.append(f"[{cls}]")
                i = j + 1
        else:
            out.append(re.escape(c))
            i += 1
    body = "".join(out)
    # A trailing slash (directory pattern) or a match on a folder covers everything below it.
    body = body.rstrip("/")
    if anchored:
        return re.compile(f"^{body}(?:/.*)?$")
    return re.compile(f"^(?:.*/)?{body}(?:/.*)?$")


def glob_match(pattern: str, name: str) -> bool:
    """True if ``name`` (a relative path with forward slashes) matches the gitignore ``pattern``."""
    return _glob_regex(pattern).match(name) is not None


@dataclass(frozen=True)
class _Rule:
    line_no: int
    prefix: str
    select: str | None  # exact name (no '*') or the first glob token
    exact: bool
    patterns: tuple[str, ...]


@dataclass(frozen=True)
class RelevantFilenames:
    """A parsed relevant-filenames file. Use :meth:`is_relevant` or :meth:`filter`."""

    source: str
    rules: tuple[_Rule, ...]

    @classmethod
    def parse(cls, text: str, source: str = "relevant_filenames_file") -> RelevantFilenames:
        rules = []
        for no, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if not line:
                continue
            tokens = line.split()
            for tok in tokens:
                bare = tok.lstrip("!")
                if bare.startswith(("./", "../", "/")) or "/./" in bare or "/../" in bare:
                    raise ConfigError(
                        f"{source}, line {no}: '{tok}' uses './', '../' or a leading '/'. "
                        "Write paths relative to the INPUT root, e.g. 'subdir/image_1.png'."
                    )
            if "*" not in line:
                if len(tokens) > 1:
                    raise ConfigError(
                        f"{source}, line {no}: '{line}' has several names but no '*'. Put one "
                        "filename per line (names with spaces are not supported)."
                    )
                rules.append(_Rule(no, "", tokens[0], True, ()))
                continue
            prefix = line[: line.index("*")]
            if tokens[0].startswith("!"):
                raise ConfigError(
                    f"{source}, line {no}: a line cannot start with '!'. Start with the files to "
                    "include, e.g. 'subdir/* !subdir/skip.png'."
                )
            rules.append(_Rule(no, prefix, tokens[0], False, tuple(tokens[1:])))
        if not rules:
            raise ConfigError(
                f"{source} is empty: it lists no file. Add one filename per line, or drop "
                "worker_config.relevant_filenames_file to use every input file."
            )
        return cls(source, tuple(rules))

    @property
    def exact_names(self) -> set[str]:
        return {r.select for r in self.rules if r.exact and r.select}

    def is_relevant(self, name: str) -> bool:
        for rule in self.rules:
            if rule.exact:
                if name == rule.select:
                    return True
                continue
            if not name.startswith(rule.prefix) or not glob_match(rule.select or "*", name):
                continue
            keep = True
            for pat in rule.patterns:
                negate = pat.startswith("!")
                if glob_match(pat.lstrip("!"), name):
                    keep = negate
            if keep:
                return True
        return False

    def filter(self, names: list[str]) -> tuple[list[str], list[str]]:
        """Split ``names`` into (relevant, filtered out), keeping the order."""
        keep: list[str] = []
        drop: list[str] = []
        for n in names:
            (keep if self.is_relevant(n) else drop).append(n)
        return keep, drop
