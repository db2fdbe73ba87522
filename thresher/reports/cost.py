"""What not labeling the removed images saves: money and annotator time, per task type.

The estimate is linear: removed images x a price (USD) and a time (seconds) per image, for
image classification, object detection and semantic segmentation. The defaults are public
figures, rounded; set your own with ``worker_config.labeling_usd_per_image`` and
``worker_config.labeling_seconds_per_image`` (thresher's own keys; a partial dict overrides
only the tasks it names).

Prices, USD per image (:data:`USD_PER_IMAGE`):

- classification 0.05: Google Cloud's Data Labeling Service listed USD 35 per 1,000
  classification labels (tier 1); rounded up for review.
- detection 0.50: the same list priced a bounding box at USD 63 per 1,000 boxes; an image
  holds several objects (COCO: 7.7 on average, Lin et al., 2014), so about 0.49.
- segmentation 5.00: the same list priced segmentation at USD 870 per 1,000 segments (0.87
  each); an image holds several, and dense street scenes many, so 5 is a middle value.

Times, seconds per image (:data:`SECONDS_PER_IMAGE`):

- classification 5: one look and one click (an assumption, not a measurement).
- detection 60: drawing a box takes about 7 s with extreme clicking and 34.5 s the classic
  way (Papadopoulos et al., ICCV 2017); several boxes per image.
- segmentation 1,200: COCO's polygons took 79 s per instance (Lin et al., 2014: 22 worker
  hours per 1,000); Cityscapes' dense masks took over 1.5 h per image (Cordts et al., 2016).

CO2 savings are not estimated (``co2Savings`` is null).

Example:
    >>> annotation_savings(1000)["imageClassification"]["costSavings"]
    50.0
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: The task types, report_v2's ``annotationSavings`` keys.
TASK_TYPES = ("imageClassification", "objectDetection", "semanticSegmentation")

#: Default labeling price per image, USD (sources in the module docstring).
USD_PER_IMAGE: dict[str, float] = {
    "imageClassification": 0.05,
    "objectDetection": 0.50,
    "semanticSegmentation": 5.00,
}

#: Default annotator time per image, seconds (sources in the module docstring).
SECONDS_PER_IMAGE: dict[str, float] = {
    "imageClassification": 5.0,
    "objectDetection": 60.0,
    "semanticSegmentation": 1200.0,
}

#: Readable names of the task types.
TASK_LABELS = {
    "imageClassification": "image classification",
    "objectDetection": "object detection",
    "semanticSegmentation": "semantic segmentation",
}


def annotation_savings(
    n_removed: int,
    usd_per_image: Mapping[str, float] | None = None,
    seconds_per_image: Mapping[str, float] | None = None,
) -> dict[str, dict[str, Any]]:
    """Money and time not spent labeling ``n_removed`` images, per task type.

    Args:
        n_removed: Images the selection removed (they need no labels).
        usd_per_image: Overrides of :data:`USD_PER_IMAGE`, by task type.
        seconds_per_image: Overrides of :data:`SECONDS_PER_IMAGE`, by task type.

    Returns:
        ``{task: {"costSavings", "co2Savings", "hoursSaved", "usdPerImage",
        "secondsPerImage"}}`` for each of :data:`TASK_TYPES`; ``costSavings`` in USD and
        ``co2Savings`` None (report_v2's keys), ``hoursSaved`` in annotator hours.
    """
    usd = {**USD_PER_IMAGE, **dict(usd_per_image or {})}
    sec = {**SECONDS_PER_IMAGE, **dict(seconds_per_image or {})}
    n = max(0, int(n_removed))
    return {
        task: {
            "costSavings": round(n * float(usd[task]), 2),
            "co2Savings": None,
            "hoursSaved": round(n * float(sec[task]) / 3600.0, 2),
            "usdPerImage": float(usd[task]),
            "secondsPerImage": float(sec[task]),
        }
        for task in TASK_TYPES
    }
