"""Stage ``report``: report.json, report.pdf and plots/ in the run folder, written atomically."""

from __future__ import annotations

import io
import tempfile
from datetime import datetime
from pathlib import Path

from thresher.config import RunConfig
from thresher.stages import _store
from thresher.stages.corruption_check import CorruptionChecked
from thresher.stages.deduplicate import Deduplicated
from thresher.stages.embed import Embedded
from thresher.stages.list_input import Listing
from thresher.stages.select import Selected
from thresher.stages.write_results import run_dir, sizes
from thresher.storage.location import Location


def report(
    run_id: str,
    *,
    started_at: datetime,
    ended_at: datetime,
    stage_seconds: dict[str, float],
    versions: dict[str, str],
    cfg: RunConfig,
    listing: Listing,
    scan: CorruptionChecked,
    dedup: Deduplicated,
    embedded: Embedded,
    selected: Selected,
) -> list[str]:
    """Build report.json, report.pdf and plots/ and copy them into the run folder atomically."""
    from PIL import Image

    from thresher.reports import ReportInputs, build_report

    lightly = _store.lightly_location(listing.lightly_url)
    inp = Location(listing.input_url)

    def load_image(name: str) -> Image.Image:
        return Image.open(io.BytesIO(inp.read_bytes(name)))

    s = sizes(listing, scan, dedup, selected)
    inputs = ReportInputs(
        run_id=run_id,
        started_at=started_at,
        ended_at=ended_at,
        stage_seconds=stage_seconds,
        versions=versions,
        config=cfg.to_dict(),
        input_url=inp.display,
        sizes=s.as_dict(),
        filenames=embedded.filenames(),
        embeddings=embedded.embeddings(),
        selected=selected.indices(),
        corrupt=scan.corrupt(),
        duplicates=dedup.duplicates(),
        load_image=load_image,
        distributions=selected.distributions(),
        seed=cfg.lightly.seed,
        n_example_images=cfg.worker.n_example_images,
        memory_requirement_in_GB=cfg.worker.memory_requirement_in_GB,
        strategies=[
            e.model_dump(mode="json", exclude_none=True)
            for e in cfg.selection.effective_strategies()
        ],
    )
    written = []
    with tempfile.TemporaryDirectory(prefix="thresher-report-") as tmp:
        build_report(inputs, Path(tmp))
        for path in sorted(Path(tmp).rglob("*")):
            if path.is_file():
                rel = f"{run_dir(run_id)}/{path.relative_to(tmp).as_posix()}"
                lightly.put_file(str(path), rel)
                written.append(rel)
    return written
