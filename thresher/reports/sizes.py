"""Dataset sizes per stage, checked to add up.

Example:
    >>> dataset_sizes(dict(n_input=3, n_filtered=0, n_corrupt=1, n_duplicate=0,
    ...                    n_removed=1, n_selected=1))["nSelected"]
    1
"""

from __future__ import annotations

_SIZE_KEYS = (
    ("n_input", "nInput"),
    ("n_filtered", "nFiltered"),
    ("n_corrupt", "nCorrupt"),
    ("n_duplicate", "nDuplicate"),
    ("n_removed", "nRemoved"),
    ("n_selected", "nSelected"),
)


def dataset_sizes(sizes: dict[str, int]) -> dict[str, int]:
    """Convert the flow's sizes to camelCase DatasetSizes and check that they add up.

    Args:
        sizes: Keys ``n_input``, ``n_filtered`` (dropped by relevant_filenames), ``n_corrupt``,
            ``n_duplicate``, ``n_removed``, ``n_selected``; non-negative ints.

    Returns:
        ``{"nInput", "nFiltered", "nCorrupt", "nDuplicate", "nRemoved", "nSelected"}``; with
        an ``n_preselected_datapool`` key (the datapool's earlier picks) also
        ``nPreselectedDatapool`` and ``nSelectedWithDatapool`` (earlier plus new picks).

    Raises:
        ValueError: If a key is missing or negative, or
            input != filtered + corrupt + duplicate + removed + selected.
    """
    missing = [k for k, _ in _SIZE_KEYS if k not in sizes]
    if missing:
        raise ValueError(f"sizes is missing {missing}; expected keys {[k for k, _ in _SIZE_KEYS]}.")
    out = {camel: int(sizes[k]) for k, camel in _SIZE_KEYS}
    negative = {k: v for k, v in out.items() if v < 0}
    if negative:
        raise ValueError(f"sizes must be non-negative, got {negative}.")
    parts = out["nFiltered"] + out["nCorrupt"] + out["nDuplicate"] + out["nRemoved"]
    parts += out["nSelected"]
    if parts != out["nInput"]:
        raise ValueError(
            f"sizes do not add up: nInput={out['nInput']} but nFiltered + nCorrupt + nDuplicate"
            f" + nRemoved + nSelected = {out['nFiltered']} + {out['nCorrupt']} + "
            f"{out['nDuplicate']} + {out['nRemoved']} + {out['nSelected']} = {parts}. "
            "Every input file must be counted in exactly one stage."
        )
    if "n_preselected_datapool" in sizes:  # use_datapool: earlier runs' picks, and all picks
        out["nPreselectedDatapool"] = int(sizes["n_preselected_datapool"])
        out["nSelectedWithDatapool"] = out["nSelected"] + out["nPreselectedDatapool"]
    return out
