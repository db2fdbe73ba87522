"""Stage ``list_input``: list the INPUT location and apply ``relevant_filenames_file``.

It runs on every run (the listing is what tells whether anything changed); its key
fingerprints the names, sizes and change tokens of the files, and keys every later stage.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from thresher.caching import digest, stage_dir, stage_key
from thresher.errors import ConfigError, InputError, StorageError
from thresher.stages import _store
from thresher.storage.location import IMAGE_EXTENSIONS, Location
from thresher.storage.relevant import RelevantFilenames

log = logging.getLogger("thresher.stages")


@dataclass(frozen=True)
class Listing:
    """The files a run works on. ``key`` fingerprints names, sizes and change tokens."""

    key: str
    input_url: str
    lightly_url: str
    n_input: int  # media files listed (before relevant_filenames; refused names not counted)
    n_filtered: int  # dropped by relevant_filenames_file
    n_relevant: int

    cached: str = ""  # the listing is never cached: it is how a run sees what changed

    def _read(self, field: str) -> list[str]:
        lightly = _store.lightly_location(self.lightly_url)
        names: list[str] = _store.read_json(lightly, f"{stage_dir(self.key)}/names.json")[field]
        return names

    def names(self) -> list[str]:
        """The relevant files, sorted, relative to the INPUT root."""
        return self._read("names")

    def sizes(self) -> list[int] | None:
        """The listed size of each of :meth:`names`, in bytes (None for an older listing)."""
        lightly = _store.lightly_location(self.lightly_url)
        data = _store.read_json(lightly, f"{stage_dir(self.key)}/names.json")
        sizes: list[int] | None = data.get("sizes")
        return sizes

    def filtered(self) -> list[str]:
        """The files dropped by ``relevant_filenames_file``."""
        return self._read("filtered")

    def refused(self) -> dict[str, str]:
        """Files not listed because of their name: printable name -> reason.

        See :func:`name_problem`. They are not part of ``n_input``.
        """
        lightly = _store.lightly_location(self.lightly_url)
        data = _store.read_json(lightly, f"{stage_dir(self.key)}/names.json")
        refused: dict[str, str] = data.get("refused", {})
        return refused


def name_problem(name: str) -> str | None:
    """Why a file name cannot be carried through the outputs, or None when it can.

    The file lists (``filenames/*.txt``, tags) hold one name per line, so a name with a line
    break would read back as two names; a name that is not valid UTF-8 (possible on Linux)
    cannot be written into any UTF-8 output. Such files are refused at listing, with this
    reason, instead of corrupting every output that names them.
    """
    if name.splitlines() != [name]:
        return (
            "its name contains a line break, which the one-name-per-line file lists cannot "
            "hold: rename the file"
        )
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "its name is not valid UTF-8, which the outputs cannot hold: rename the file"
    return None


def printable_name(name: str) -> str:
    r"""``name`` for logs and messages: undecodable bytes and unprintable characters escaped.

    Line breaks, tabs and terminal escape sequences come out as ``\n``, ``\t``, ``\x1b``,
    so a hostile name cannot split a log line or restyle a terminal.
    """
    try:  # a byte that is not UTF-8 reached Python as a surrogate escape: show the byte
        escaped = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:
        escaped = name.encode("utf-8", "backslashreplace").decode("utf-8")
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in escaped)


def _inside(inner: Location, outer: Location) -> bool:
    """Whether ``inner`` is ``outer`` or below it (local paths compared after resolving links)."""
    if type(inner.fs) is not type(outer.fs):
        return False
    a, b = outer.root, inner.root
    if getattr(outer.fs, "protocol", None) in ("file", ("file", "local")):
        a, b = os.path.realpath(a), os.path.realpath(b)
    a, b = a.rstrip("/") + "/", b.rstrip("/") + "/"
    return b.startswith(a)


def default_lightly_url(input_url: str) -> str:
    """The default LIGHTLY location: a folder beside the input, ``<input>-lightly``."""
    return input_url.rstrip("/") + "-lightly"


def preflight(input_url: str, lightly_url: str) -> None:
    """Check in a second what can be checked before anything starts or is written.

    INPUT must exist and hold at least one image; LIGHTLY must be outside INPUT (INPUT is never
    written, not even on the way to an error). Nothing is written by this check.

    Raises:
        InputError: INPUT is missing or holds no image.
        ConfigError: LIGHTLY is inside INPUT.
    """
    inp = Location(input_url)
    lightly = _store.lightly_location(lightly_url)
    if not inp.exists():
        raise InputError(
            f"The INPUT location {inp.display} does not exist. Check the path or URL "
            "(and the credentials for a bucket)."
        )
    if _inside(lightly, inp):
        raise ConfigError(
            f"The LIGHTLY location {lightly.display} is inside the INPUT location "
            f"{inp.display}, but INPUT is never written. Put LIGHTLY beside it, e.g. "
            f"{inp.display.rstrip('/')}-lightly."
        )
    if not inp.has_file(IMAGE_EXTENSIONS):
        raise InputError(
            f"No images found in {inp.display} (looked recursively for "
            f"{', '.join(e.lstrip('.') for e in IMAGE_EXTENSIONS)}, any case). Point INPUT at "
            "the folder or bucket prefix that holds the images."
        )


def read_relevant(lightly: Location, path: str) -> RelevantFilenames:
    """Read and parse ``worker_config.relevant_filenames_file`` from the LIGHTLY location."""
    if path.startswith(("/", "./", "../")) or "://" in path:
        raise ConfigError(
            f"worker_config.relevant_filenames_file: '{path}' must be a path relative to the "
            "LIGHTLY location, such as '.lightly/relevant_filenames.txt'."
        )
    try:
        text = lightly.read_text(path)
    except StorageError as e:
        raise ConfigError(
            f"worker_config.relevant_filenames_file: '{path}' was not found in the LIGHTLY "
            f"location {lightly.display}. Upload it there (e.g. .lightly/relevant_filenames.txt)."
        ) from e
    return RelevantFilenames.parse(text, source=path)


def list_input(input_url: str, lightly_url: str, relevant_filenames_file: str = "") -> Listing:
    """List every image below INPUT (recursively, sorted) and keep the relevant ones.

    A file whose name the outputs cannot hold (a line break, not UTF-8) is not listed: it is
    logged and kept in :meth:`Listing.refused` with the reason, outside the accounting.

    Raises:
        InputError: INPUT is missing or holds no image.
        ConfigError: the relevant filenames file is missing or malformed.
    """
    preflight(input_url, lightly_url)
    inp = Location(input_url)
    lightly = _store.lightly_location(lightly_url)
    lightly.check_writable()
    files = inp.list_files(IMAGE_EXTENSIONS)
    if not files:
        raise InputError(
            f"No images found in {inp.display} (looked recursively for "
            f"{', '.join(e.lstrip('.') for e in IMAGE_EXTENSIONS)}, any case)."
        )
    refused = {printable_name(f.name): p for f in files if (p := name_problem(f.name))}
    for shown, reason in list(refused.items())[:20]:
        log.warning("not listed: %s: %s", shown, reason)
    files = [f for f in files if name_problem(f.name) is None]
    if not files:
        raise InputError(
            f"No usable images in {inp.display}: every image's name was refused "
            f"({'; '.join(f'{n}: {r}' for n, r in list(refused.items())[:3])})."
        )
    names = [f.name for f in files]
    filtered: list[str] = []
    rules_digest = ""
    if relevant_filenames_file:
        rules = read_relevant(lightly, relevant_filenames_file)
        rules_digest = digest(lightly.read_text(relevant_filenames_file))
        names, filtered = rules.filter(names)
        missing = sorted(rules.exact_names - set(names) - set(filtered))
        if missing:
            log.warning(
                "%d name(s) in %s are not in INPUT, e.g. %s",
                len(missing),
                relevant_filenames_file,
                ", ".join(missing[:5]),
            )
        if not names:
            raise InputError(
                f"{relevant_filenames_file} matches none of the {len(files)} images in "
                f"{inp.display}. Check the names: they are relative to the INPUT root."
            )
    keep = set(names)
    size_of = {f.name: f.size for f in files}
    fingerprint = digest(
        inp.display,
        [(f.name, f.size, f.token) for f in files if f.name in keep],
        rules_digest,
        sorted(refused),
    )
    key = stage_key("list_input", fingerprint)
    listing = Listing(key, input_url, lightly_url, len(files), len(filtered), len(names))
    if _store.cached(lightly, key) is None:
        _store.write_json(
            lightly,
            f"{stage_dir(key)}/names.json",
            {
                "names": names,
                "sizes": [size_of[n] for n in names],
                "filtered": filtered,
                "refused": refused,
            },
        )
        _store.finish(
            lightly, key, {"n_input": len(files), "n_filtered": len(filtered)}, ["names.json"]
        )
    log.info(
        "listed %d images in %s (%d filtered out by relevant filenames, %d not listed for "
        "their names)",
        len(files),
        inp.display,
        len(filtered),
        len(refused),
    )
    return listing
