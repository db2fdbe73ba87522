"""The small family of errors thresher raises.

Every error says what is wrong and how to fix it. Library code raises these and never swallows
them; tasks decide whether to skip-and-count (a corrupt image) or fail the run (a bad config).
"""

from __future__ import annotations


class ThresherError(Exception):
    """Base class of every error thresher raises on purpose."""


class ConfigError(ThresherError, ValueError):
    """A configuration value is wrong. The message names the key and what would be accepted."""


class NotSupportedYetError(ConfigError):
    """A valid Lightly key that this version of thresher does not implement yet."""

    def __init__(self, key: str, hint: str = "") -> None:
        self.key = key
        msg = f"not supported yet: {key}"
        if hint:
            msg += f" ({hint})"
        super().__init__(msg)


class StorageError(ThresherError, OSError):
    """A location cannot be listed, read or written. The message names the URL."""


class StorageUnavailableError(ThresherError):
    """The storage kept failing after the retries: throttling, server errors, timeouts, resets.

    Unlike StorageError, this says nothing about the object itself, so it is deliberately not an
    OSError: code that skips-and-counts an unreadable file (``except OSError``) lets it through,
    and the run ends with the message instead of counting a healthy file as corrupt. The message
    names the object and the location; re-running resumes from the finished stages.
    """


class InputError(ThresherError, ValueError):
    """The input data as a whole is unusable (missing, empty, mismatched)."""


class MediaError(ThresherError):
    """A single media file (or a frame of a video) cannot be used.

    Attributes:
        filename: The file's name relative to the INPUT root.
        frame: The frame index for videos, else None.
        reason: A short, human-readable reason.
    """

    def __init__(self, filename: str, reason: str, frame: int | None = None) -> None:
        self.filename = filename
        self.reason = reason
        self.frame = frame
        where = filename if frame is None else f"{filename} (frame {frame})"
        super().__init__(f"{where}: {reason}")


class CorruptMediaError(MediaError):
    """The file's bytes cannot be decoded into a valid image or video frame."""


class SchemaError(ThresherError, ValueError):
    """A user-provided file (predictions, metadata, embeddings CSV) does not match its schema.

    The message names the file and the field.
    """

    def __init__(self, path: str, field: str, problem: str) -> None:
        self.path = path
        self.field = field
        super().__init__(f"{path}: field '{field}': {problem}")
