"""Keys thresher accepts but does not implement yet: one table, checked by ``load_configs``.

The schemas accept every Lightly key so that a valid Lightly config never fails on an unknown
key; a key in this table set to anything but an allowed value is refused with
``not supported yet: KEY (hint)`` before anything runs, so nothing is silently ignored and a
bad config fails in a second rather than after training and embedding.

Example:
    >>> from thresher.config.worker import WorkerConfig
    >>> check_supported(worker=WorkerConfig(pretagging=True))
    Traceback (most recent call last):
    ...
    thresher.errors.NotSupportedYetError: not supported yet: worker_config.pretagging (...)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from thresher.errors import NotSupportedYetError

_DETECTOR = "no built-in detector ships offline"


@dataclass(frozen=True)
class NotYet:
    """One refused key.

    Attributes:
        key: Dotted path from the config's name; ``[]`` stands for every item of a list.
        allowed: The values that mean "not used" (the defaults).
        hint: What to do instead, shown in the message.
        only_type: Refuse only where the object holding the key has this ``type`` (the key
            is valid on other types, e.g. ``task`` on a SCORES input).
    """

    key: str
    allowed: tuple[Any, ...]
    hint: str
    only_type: str | None = None


NOT_YET: tuple[NotYet, ...] = (
    NotYet("worker_config.pretagging", (False,), _DETECTOR),
    NotYet("worker_config.pretagging_upload", (False,), _DETECTOR),
    NotYet("worker_config.pretagging_debug", (False,), _DETECTOR),
    NotYet("worker_config.pretagging_config", ("",), _DETECTOR),
    NotYet(
        "worker_config.dump_dataset",
        (False,),
        "copy the files listed in filenames/selected.txt instead",
    ),
    NotYet("worker_config.upload_dataset", (False,), "the platform upload is planned"),
    NotYet("worker_config.active_learning", (None,), "use a SCORES input in selection_config"),
    NotYet("worker_config.training.task_name", ("",), "object-level training is planned"),
    NotYet("worker_config.append_weak_labels", (False,), "an archive feature"),
    NotYet(
        "selection_config.lightly_path_regex",
        (None,),
        "select the files with worker_config.relevant_filenames_file instead",
    ),
    NotYet(
        "lightly_config.model.width",
        (1,),
        "only 1 is implemented; remove the key or set it to 1",
    ),
)


def _values(
    obj: Any, parts: list[str], path: str, only_type: str | None
) -> Iterator[tuple[str, Any]]:
    """``(path, value)`` for every value the remaining ``parts`` reach from ``obj``."""
    head, rest = parts[0], parts[1:]
    if head.endswith("[]"):
        for i, item in enumerate(getattr(obj, head[:-2]) or []):
            yield from _values(item, rest, f"{path}.{head[:-2]}[{i}]", only_type)
    elif rest:
        value = getattr(obj, head)
        if value is not None:
            yield from _values(value, rest, f"{path}.{head}", only_type)
    elif only_type is None or getattr(obj, "type", None) == only_type:
        yield f"{path}.{head}", getattr(obj, head)


def check_supported(worker: Any = None, selection: Any = None, lightly: Any = None) -> None:
    """Refuse the first key of :data:`NOT_YET` set to a value thresher cannot honour yet.

    Args:
        worker: The validated ``WorkerConfig`` (None skips its keys).
        selection: The validated ``SelectionConfig`` (None skips its keys).
        lightly: The validated ``LightlyConfig`` (None skips its keys).

    Raises:
        NotSupportedYetError: naming the key by its full path and what to do instead.
    """
    roots = {"worker_config": worker, "selection_config": selection, "lightly_config": lightly}
    for rule in NOT_YET:
        root, *parts = rule.key.split(".")
        if roots[root] is None:
            continue
        for path, value in _values(roots[root], parts, root, rule.only_type):
            if value not in rule.allowed:
                raise NotSupportedYetError(path, rule.hint)
