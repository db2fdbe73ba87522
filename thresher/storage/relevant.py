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

Glob syntax as in gitignore (matched by ``pathspec``): ``*`` matches within one path
segment, ``**`` across segments, ``?`` one character, ``[abc]`` a class. A pattern without
``/`` matches the file's base name at any depth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import pathspec

from thresher.errors import ConfigError


@lru_cache(maxsize=1024)
def _spec(pattern: str) -> pathspec.GitIgnoreSpec:
    return pathspec.GitIgnoreSpec.from_lines([pattern])


def glob_match(pattern: str, name: str) -> bool:
    """True if ``name`` (a relative path with forward slashes) matches the gitignore ``pattern``."""
    return bool(_spec(pattern).match_file(name))


@dataclass(frozen=True)
class _Rule:
    line_no: int
    prefix: str
    select: str | None  # exact name (no '*') or the first glob token
    exact: bool
    patterns: tuple[str, ...]
    # The gitignore patterns after the first token: a match drops the file, '!' re-includes.
    drops: pathspec.GitIgnoreSpec = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "drops", pathspec.GitIgnoreSpec.from_lines(self.patterns))


@dataclass(frozen=True)
class RelevantFilenames:
    """A parsed relevant-filenames file. Use :meth:`is_relevant` or :meth:`filter`."""

    source: str
    rules: tuple[_Rule, ...]

    @classmethod
    def parse(cls, text: str, source: str = "relevant_filenames_file") -> RelevantFilenames:
        """Parse the file's text.

        Args:
            text: The file's content.
            source: Its name, for messages.

        Raises:
            ConfigError: naming the line of a path with ``./``, ``../`` or a leading ``/``, a
                line with several names but no ``*``, a line starting with ``!``, or an empty
                file.
        """
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
        """The names listed one per line without ``*``."""
        return {r.select for r in self.rules if r.exact and r.select}

    def is_relevant(self, name: str) -> bool:
        """Whether the file ``name`` (relative to INPUT) is considered by the run."""
        for rule in self.rules:
            if rule.exact:
                if name == rule.select:
                    return True
                continue
            if not name.startswith(rule.prefix) or not glob_match(rule.select or "*", name):
                continue
            if not rule.drops.match_file(name):
                return True
        return False

    def filter(self, names: list[str]) -> tuple[list[str], list[str]]:
        """Split ``names`` into (relevant, filtered out), keeping the order."""
        keep: list[str] = []
        drop: list[str] = []
        for n in names:
            (keep if self.is_relevant(n) else drop).append(n)
        return keep, drop
